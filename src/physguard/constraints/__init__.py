"""Constraints on probabilistic predictions: the ProbConserv update and its baselines."""

from .boundary_rows import (
    block_constraints,
    boundary_constraint,
    stack_constraints,
    trapezoid_weights_2d,
)
from .gaussian import (
    Covariance,
    DenseCovariance,
    DiagonalCovariance,
    Gaussian,
    LowRankPlusDiagonal,
    moment_match,
)
from .inequality import NonNegativeReport, nonnegative
from .linear import LinearConstraint, hardc, probconserv
from .local import (
    DIVERGENCE_STENCILS,
    cell_divergence,
    central_divergence,
    divergence_constraint,
    divergence_implied,
)
from .quadrature import mass_constraint, mass_from_fluxes, trapezoid_weights
from .sparse import ConditionedCovariance

__all__ = [
    "ConditionedCovariance",
    "Covariance",
    "block_constraints",
    "boundary_constraint",
    "cell_divergence",
    "central_divergence",
    "DIVERGENCE_STENCILS",
    "divergence_constraint",
    "divergence_implied",
    "stack_constraints",
    "trapezoid_weights_2d",
    "DenseCovariance",
    "DiagonalCovariance",
    "Gaussian",
    "LinearConstraint",
    "LowRankPlusDiagonal",
    "NonNegativeReport",
    "hardc",
    "mass_constraint",
    "mass_from_fluxes",
    "moment_match",
    "nonnegative",
    "probconserv",
    "trapezoid_weights",
]
