"""Training loops: the neural operators' (:func:`fit_operator`, any dimension, DDP under
``torchrun``) and the neural processes' (:func:`train_anp`, early stopping, checkpoints).

Sits above ``models`` (what is trained) and below ``blackbox`` and ``experiments`` (what uses a
trained model).
"""

from .anp import NPData, TrainConfig, TrainResult, load_checkpoint, save_checkpoint, train_anp
from .operator import fit_operator, relative_l2_loss

__all__ = ["NPData", "TrainConfig", "TrainResult", "fit_operator", "load_checkpoint",
           "relative_l2_loss", "save_checkpoint", "train_anp"]
