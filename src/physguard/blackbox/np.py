"""The attentive neural process as a grid predictor (the black box of the paper's tables)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..constraints import Gaussian
from ..models import ANP
from ..training import NPData
from .base import GridPredictor, check_contexts

__all__ = ["ANPPredictor"]


class ANPPredictor(GridPredictor):
    """An :class:`~physguard.models.ANP` predicting ``n_latent`` diagonal components per function.

    Args:
        model: a trained ANP (any device; predictions come back as float64 on the CPU).
        n_latent: latent samples ``S`` per function (ProbConserv is applied per sample).
        name: method name (``"ANP"``; ``"SoftC-ANP"`` for the physics-penalty baseline).
        constrain: report HardC / ProbConserv variants of this model.
    """

    def __init__(self, model: ANP, n_latent: int = 16, name: str = "ANP",
                 constrain: bool = True):
        if n_latent < 1:
            raise ValueError(f"n_latent must be >= 1, got {n_latent}")
        self.model, self.n_latent, self.name, self.constrain = model, n_latent, name, constrain

    def predict(self, contexts: NPData, grid_inputs: torch.Tensor, nt: int, nx: int,
                generator: torch.Generator) -> Iterator[Gaussian]:
        check_contexts(contexts)
        device = next(self.model.parameters()).device
        data = contexts.to(device)
        grid = grid_inputs.unsqueeze(0).to(device)
        self.model.eval()
        for i in range(len(data)):
            pred = self.model.predict(data.xc[i:i + 1], data.yc[i:i + 1], grid,
                                      n_samples=self.n_latent, generator=generator)
            yield Gaussian(pred.mean.reshape(-1, nt, nx).cpu().double(),
                           var=pred.var.reshape(-1, nt, nx).cpu().double())
