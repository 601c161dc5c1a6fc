"""physguard: hard physical guarantees for machine-learned PDE solutions.

Public surface::

    Gaussian, LinearConstraint, probconserv, hardc   # ProbConserv (Hansen et al., ICML 2023)
    Diffusion, PorousMedium, Stefan                   # the GPME benchmark problems
"""

from .constraints import (
    Gaussian,
    LinearConstraint,
    hardc,
    mass_constraint,
    moment_match,
    probconserv,
    trapezoid_weights,
)
from .pdes import Diffusion, PorousMedium, Stefan

__version__ = "0.1.0"

__all__ = [
    "Diffusion",
    "PorousMedium",
    "Stefan",
    "Gaussian",
    "LinearConstraint",
    "hardc",
    "mass_constraint",
    "moment_match",
    "probconserv",
    "trapezoid_weights",
]
