"""Deep ensemble of neural processes as a ProbConserv black box.

Lakshminarayanan, Pritzel, Blundell, "Simple and Scalable Predictive Uncertainty Estimation using
Deep Ensembles", NeurIPS 2017: ``M`` independently initialised networks with Gaussian outputs,
trained alone, combined as an equal mixture. Here each member is an
:class:`~physguard.models.ANP` (its latent samples moment-matched to one Gaussian
``N(mu_m, diag(v_m))``), and the ensemble keeps the *joint* spread of the member means::

    Sigma = diag(mean_m v_m) + (1/M) D D^T,   D = [mu_1 - mu, ..., mu_M - mu]   (N x M)

whose diagonal is the law-of-total-variance variance and whose rank-``M`` part says how the
members disagree *together* across the grid. The structure is
:class:`~physguard.constraints.LowRankPlusDiagonal`, so ProbConserv's update stays ``O(N M^2)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch

from ..constraints import Gaussian, LowRankPlusDiagonal, moment_match
from ..models import ANP
from ..training import NPData, TrainConfig, train_anp
from .base import GridPredictor
from .np import ANPPredictor

__all__ = ["EnsemblePredictor", "train_ensemble"]


def train_ensemble(train: NPData, val: NPData, n_members: int = 4, hidden: int = 32,
                   min_std: float = 1e-3, config: TrainConfig | None = None,
                   progress: bool = True) -> list[ANP]:
    """Train ``n_members`` ANPs from independent initialisations and data orders.

    Member ``m`` uses seed ``config.seed + 1000 m`` for its weights, batches and latent samples.

    Raises:
        ValueError: ``n_members < 2`` (one network has no ensemble spread).
    """
    if n_members < 2:
        raise ValueError(f"an ensemble needs n_members >= 2, got {n_members}")
    config = config or TrainConfig()
    device = train.xc.device
    members = []
    for m in range(n_members):
        seed = config.seed + 1000 * m
        torch.manual_seed(seed)
        model = ANP(x_dim=train.xc.shape[-1], hidden=hidden, min_std=min_std).to(device)
        train_anp(model, train, val, dataclasses.replace(config, seed=seed), progress=progress,
                  desc=f"ensemble member {m + 1}/{n_members}")
        members.append(model)
    return members


class EnsemblePredictor(GridPredictor):
    """An ensemble of ANPs; covariance diagonal plus the rank-``M`` spread of the member means.

    Args:
        members: ``M >= 2`` trained ANPs.
        n_latent: latent samples per member, moment-matched into the member's Gaussian.
        name: method name.

    Yields per function a :class:`~physguard.Gaussian` with mean ``(1, nt, nx)`` and a
    :class:`~physguard.constraints.LowRankPlusDiagonal` covariance of rank ``M`` per time.
    """

    def __init__(self, members: list[ANP], n_latent: int = 4, name: str = "Ensemble"):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if n_latent < 1:
            raise ValueError(f"n_latent must be >= 1, got {n_latent}")
        self.members, self.n_latent, self.name = list(members), n_latent, name

    def predict(self, contexts: NPData, grid_inputs: torch.Tensor, nt: int, nx: int,
                generator: torch.Generator) -> Iterator[Gaussian]:
        # One ANP stream per member, advanced together: function by function, member by
        # member (the order in which they draw from ``generator``).
        streams = [ANPPredictor(model, self.n_latent).predict(contexts, grid_inputs, nt, nx,
                                                             generator)
                   for model in self.members]
        n_members = len(self.members)
        core = torch.eye(n_members, dtype=torch.float64) / n_members
        for components in zip(*streams, strict=True):
            members = [moment_match(c, dim=0) for c in components]  # each mean (nt, nx)
            means = torch.stack([m.mean for m in members], dim=-1)  # (nt, nx, M)
            mean = means.mean(-1)
            variance = torch.stack([m.var for m in members], dim=-1).mean(-1)
            covariance = LowRankPlusDiagonal(variance.unsqueeze(0),
                                             (means - mean.unsqueeze(-1)).unsqueeze(0), core)
            yield Gaussian(mean.unsqueeze(0), covariance=covariance)
