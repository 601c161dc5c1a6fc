"""Surrogate models: the black boxes whose predictions physguard constrains."""

from .anp import ANP
from .training import NPData, TrainConfig, TrainResult, load_checkpoint, save_checkpoint, train_anp

__all__ = ["ANP", "NPData", "TrainConfig", "TrainResult", "load_checkpoint", "save_checkpoint",
           "train_anp"]
