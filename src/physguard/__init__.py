"""physguard: hard physical guarantees for machine-learned PDE solutions.

Public surface::

    Gaussian, LinearConstraint, probconserv, hardc   # ProbConserv (Hansen et al., ICML 2023)
    nonnegative                                       # ... plus u >= 0 (a QP, Clarabel)
    Diffusion, PorousMedium, Stefan                   # the GPME benchmark problems
    LidDrivenCavity, Wave2d, Heat2d                   # 2-D problems (BOON's cavity and wave)
    FNO1d, BOON, Dirichlet, Neumann, Periodic         # BOON (Saad et al., ICLR 2023)
    FNO2d, SpaceTimeFNO2d                             # ... in two space dimensions
    OperatorEnsemble, boundary_constraint,            # both guarantees with uncertainty:
    stack_constraints, divergence_constraint          # wall rows + mass / per-cell rows
    rollout                                           # autoregressive, guarantees per step
"""

from .boundary import BOON, Dirichlet, Neumann, Periodic
from .constraints import (
    Gaussian,
    LinearConstraint,
    boundary_constraint,
    divergence_constraint,
    hardc,
    mass_constraint,
    mass_from_fluxes,
    moment_match,
    nonnegative,
    probconserv,
    stack_constraints,
    trapezoid_weights,
)
from .models import FNO1d, FNO2d, OperatorEnsemble, SpaceTimeFNO1d, SpaceTimeFNO2d
from .pdes import Diffusion, Heat2d, LidDrivenCavity, PorousMedium, Stefan, Wave2d
from .rollouts import rollout

__version__ = "0.1.0"

__all__ = [
    "BOON",
    "Dirichlet",
    "FNO1d",
    "Neumann",
    "Periodic",
    "SpaceTimeFNO1d",
    "FNO2d",
    "SpaceTimeFNO2d",
    "Diffusion",
    "PorousMedium",
    "Stefan",
    "LidDrivenCavity",
    "Wave2d",
    "Heat2d",
    "Gaussian",
    "LinearConstraint",
    "OperatorEnsemble",
    "boundary_constraint",
    "divergence_constraint",
    "stack_constraints",
    "hardc",
    "mass_constraint",
    "mass_from_fluxes",
    "moment_match",
    "nonnegative",
    "probconserv",
    "rollout",
    "trapezoid_weights",
]
