"""Constraints on probabilistic predictions: the ProbConserv update and its baselines."""

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
from .quadrature import mass_constraint, mass_from_fluxes, trapezoid_weights

__all__ = [
    "Covariance",
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
