"""PDE problems with exact or validated solutions."""

from .base import GPMEProblem
from .burgers import (
    BurgersDirichlet,
    BurgersPeriodic,
    cole_hopf_sine,
    gaussian_random_field,
    solve_burgers_dirichlet,
    solve_burgers_periodic,
)
from .diffusion import Diffusion
from .linear_bc import HeatNeumann, StokesSecond
from .pme import PorousMedium
from .stefan import Stefan, stefan_z1

GPME_PROBLEMS: dict[str, type[GPMEProblem]] = {
    cls.name: cls for cls in (Diffusion, PorousMedium, Stefan)
}



def get_problem(problem: str | type[GPMEProblem]) -> type[GPMEProblem]:
    """The problem class for a name (``"stefan"``) or a class.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: neither a name nor a :class:`GPMEProblem` subclass.
    """
    if isinstance(problem, str):
        if problem not in GPME_PROBLEMS:
            raise ValueError(f"unknown problem {problem!r}; known: {', '.join(GPME_PROBLEMS)}")
        return GPME_PROBLEMS[problem]
    if isinstance(problem, type) and issubclass(problem, GPMEProblem):
        return problem
    raise TypeError(f"problem must be a name or a GPMEProblem class, got {problem!r}")


__all__ = ["GPMEProblem", "Diffusion", "HeatNeumann", "StokesSecond", "PorousMedium", "Stefan",
           "stefan_z1", "GPME_PROBLEMS", "get_problem", "BurgersDirichlet", "cole_hopf_sine",
           "solve_burgers_dirichlet", "BurgersPeriodic", "gaussian_random_field",
           "solve_burgers_periodic"]
