"""PDE problems with exact or validated solutions."""

from .base import ConservationProblem, GPMEProblem
from .burgers import (
    BurgersDirichlet,
    BurgersPeriodic,
    cole_hopf_sine,
    gaussian_random_field,
    solve_burgers_dirichlet,
    solve_burgers_periodic,
)
from .cavity import CavityField, LidDrivenCavity, random_stream_function
from .diffusion import Diffusion
from .hyperbolic import InviscidBurgers, LinearAdvection
from .linear_bc import HeatNeumann, StokesSecond
from .pme import PorousMedium
from .stefan import Stefan, stefan_z1
from .two_d import Heat2d, Wave2d, series_basis

GPME_PROBLEMS: dict[str, type[GPMEProblem]] = {
    cls.name: cls for cls in (Diffusion, PorousMedium, Stefan)
}
#: Every problem with a closed-form solution and conserved total (the ProbConserv cases).
CONSERVATION_PROBLEMS: dict[str, type[ConservationProblem]] = {
    **GPME_PROBLEMS, LinearAdvection.name: LinearAdvection, InviscidBurgers.name: InviscidBurgers
}



def get_problem(problem: str | type[ConservationProblem]) -> type[ConservationProblem]:
    """The problem class for a name (``"stefan"``) or a class.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: neither a name nor a :class:`GPMEProblem` subclass.
    """
    if isinstance(problem, str):
        if problem not in CONSERVATION_PROBLEMS:
            raise ValueError(f"unknown problem {problem!r}; known: "
                             f"{', '.join(CONSERVATION_PROBLEMS)}")
        return CONSERVATION_PROBLEMS[problem]
    if isinstance(problem, type) and issubclass(problem, ConservationProblem):
        return problem
    raise TypeError(f"problem must be a name or a ConservationProblem class, got {problem!r}")


__all__ = ["ConservationProblem", "CONSERVATION_PROBLEMS", "InviscidBurgers", "LinearAdvection",
           "GPMEProblem", "Diffusion", "HeatNeumann", "StokesSecond", "PorousMedium", "Stefan",
           "stefan_z1", "GPME_PROBLEMS", "get_problem", "BurgersDirichlet", "cole_hopf_sine",
           "solve_burgers_dirichlet", "BurgersPeriodic", "gaussian_random_field",
           "solve_burgers_periodic", "LidDrivenCavity", "CavityField", "random_stream_function",
           "Wave2d", "Heat2d", "series_basis"]
