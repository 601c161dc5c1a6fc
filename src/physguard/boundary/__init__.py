"""Exact boundary conditions for neural operators (BOON, Saad et al., ICLR 2023)."""

from ..conditions import Dirichlet, Neumann, Periodic, one_sided_stencil
from .boon import BOON

__all__ = ["BOON", "Dirichlet", "Neumann", "Periodic", "one_sided_stencil"]
