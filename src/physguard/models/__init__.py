"""Surrogate models: the black boxes whose predictions physguard constrains."""

from .anp import ANP
from .ensemble import OperatorEnsemble, ensemble_gaussian, fit_ensemble_noise
from .fno import FNO1d, SpaceTimeFNO1d
from .fno_nd import FNO, FNO2d, SpaceTimeFNO2d
from .softc import pde_residual, softc_penalty

__all__ = ["ANP", "OperatorEnsemble", "ensemble_gaussian", "fit_ensemble_noise", "FNO1d",
           "SpaceTimeFNO1d", "FNO", "FNO2d", "SpaceTimeFNO2d", "pde_residual", "softc_penalty"]

#: Names that moved to :mod:`physguard.training` (the layer above the models), still served
#: from here on first use so that earlier scripts keep working; nothing here imports upward.
_MOVED = ("NPData", "TrainConfig", "TrainResult", "load_checkpoint", "save_checkpoint",
          "train_anp")


def __getattr__(name: str):
    if name in _MOVED:
        from .. import training

        return getattr(training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
