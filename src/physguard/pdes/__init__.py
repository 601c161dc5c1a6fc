"""PDE problems with exact or validated solutions."""

from .base import GPMEProblem
from .diffusion import Diffusion
from .pme import PorousMedium
from .stefan import Stefan, stefan_z1

GPME_PROBLEMS: dict[str, type[GPMEProblem]] = {
    cls.name: cls for cls in (Diffusion, PorousMedium, Stefan)
}

__all__ = ["GPMEProblem", "Diffusion", "PorousMedium", "Stefan", "stefan_z1", "GPME_PROBLEMS"]
