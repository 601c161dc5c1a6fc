"""Moved to :mod:`physguard.conditions` (the bottom floor); kept so that imports from here
still work."""

from ..conditions import (  # noqa: F401
    BoundaryCondition,
    Dirichlet,
    Neumann,
    Periodic,
    _as_value,
    broadcast_to_boundary,
    one_sided_stencil,
)

__all__ = ["Dirichlet", "Neumann", "Periodic", "BoundaryCondition", "one_sided_stencil"]
