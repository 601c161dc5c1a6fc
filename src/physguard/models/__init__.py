"""Surrogate models: the black boxes whose predictions physguard constrains."""

from .anp import ANP
from .ensemble import OperatorEnsemble, ensemble_gaussian, fit_ensemble_noise
from .fno import FNO1d, SpaceTimeFNO1d
from .fno_nd import FNO, FNO2d, SpaceTimeFNO2d
from .softc import pde_residual, softc_penalty
from .training import NPData, TrainConfig, TrainResult, load_checkpoint, save_checkpoint, train_anp

__all__ = ["ANP", "OperatorEnsemble", "ensemble_gaussian", "fit_ensemble_noise", "FNO1d",
           "SpaceTimeFNO1d", "FNO", "FNO2d", "SpaceTimeFNO2d", "NPData",
           "TrainConfig", "TrainResult",
           "load_checkpoint", "save_checkpoint", "train_anp", "pde_residual", "softc_penalty"]
