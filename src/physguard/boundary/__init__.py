"""Exact boundary conditions for neural operators (BOON, Saad et al., ICLR 2023)."""

from .boon import BOON
from .conditions import Dirichlet, Neumann, Periodic, one_sided_stencil

__all__ = ["BOON", "Dirichlet", "Neumann", "Periodic", "one_sided_stencil"]
