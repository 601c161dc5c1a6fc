"""The training loop of the neural processes (the ANP of ProbConserv, Hansen et al., ICML 2023):
Adam, mini-batches, early stopping, progress bar; ANP checkpoints."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from .._io import atomic_path
from ..models.anp import ANP

__all__ = ["TrainConfig", "TrainResult", "NPData", "train_anp", "save_checkpoint",
           "load_checkpoint"]


@dataclass(frozen=True)
class NPData:
    """Context/target tensors for a neural process, float32.

    Attributes:
        xc: ``(n, Nc, x_dim)`` context inputs; yc: ``(n, Nc)`` context values.
        xt: ``(n, Nt, x_dim)`` target inputs; yt: ``(n, Nt)`` target values (``None`` for
            prediction-only data).
        param: ``(n,)`` the PDE parameter of each function (needed by physics penalties;
            ``None`` when unknown).
    """

    xc: torch.Tensor
    yc: torch.Tensor
    xt: torch.Tensor
    yt: torch.Tensor
    param: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.xc.shape[0]

    def batch(self, index) -> NPData:
        return NPData(*(None if v is None else v[index]
                        for v in (self.xc, self.yc, self.xt, self.yt, self.param)))

    def to(self, device: torch.device | str) -> NPData:
        """The same data on ``device`` (absent targets stay ``None``)."""
        return NPData(*(None if v is None else v.to(device)
                        for v in (self.xc, self.yc, self.xt, self.yt, self.param)))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: maximum number of passes over the training functions.
        batch_size: functions per step.
        lr: Adam learning rate.
        patience: stop after this many epochs without a better validation loss.
        grad_clip: clip the gradient's global norm to this value (stabilises the ELBO).
        seed: seeds the initial weights' shuffling and the latent samples.

    The learning rate follows a cosine schedule from ``lr`` to ``lr / 100`` over ``epochs``.
    """

    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    patience: int = 20
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class TrainResult:
    """What training did: loss per epoch, the epoch kept, and why it stopped."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def best_val_loss(self) -> float:
        return self.val_loss[self.best_epoch] if self.val_loss else math.nan


def _val_loss(model: ANP, data: NPData, batch_size: int, seed: int) -> float:
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        total = 0.0
        for start in range(0, len(data), batch_size):
            part = data.batch(slice(start, start + batch_size))
            loss, _ = model.elbo_loss(part.xc, part.yc, part.xt, part.yt)
            total += float(loss) * len(part)
    return total / len(data)


def train_anp(model: ANP, train: NPData, val: NPData, config: TrainConfig,
              progress: bool = True, penalty=None, penalty_points: int = 32,
              desc: str = "training ANP") -> TrainResult:
    """Fit ``model`` by minimising the negative ELBO; keep the weights of the best epoch.

    Args:
        model: the neural process (modified in place; ends with the best validation weights).
        train, val: training and validation functions.
        config: optimisation settings.
        progress: show a tqdm progress bar over epochs.
        penalty: optional ``penalty(mean, xt, param) -> scalar`` added to the training loss,
            where ``mean (B, P)`` is the predicted mean (:meth:`ANP.mean_at`) at ``P`` target
            inputs ``xt (B, P, d)`` drawn afresh from the batch's targets at every step (they
            require grad, so the penalty may differentiate through the network) and
            ``param (B,)`` is ``train.param``. The validation loss (model selection) stays the
            negative ELBO.
        penalty_points: ``P``, residual points per function and step. The double backward
            through attention costs about 10x a plain step per point, so a subset keeps
            SoftC affordable on a CPU.
        desc: progress-bar label.

    Returns:
        :class:`TrainResult` with the per-epoch losses and the best epoch.
    """
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs,
                                                          eta_min=config.lr / 100)
    result = TrainResult()
    best_state = copy.deepcopy(model.state_dict())
    if penalty_points < 1:
        raise ValueError(f"penalty_points must be >= 1, got {penalty_points}")
    if penalty is not None and train.param is None:
        raise ValueError("a physics penalty needs train.param, the PDE parameter per function")
    bar = tqdm(range(config.epochs), desc=desc, unit="epoch", disable=not progress,
               dynamic_ncols=True)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=generator).to(train.xc.device)
        running = 0.0
        for start in range(0, len(train), config.batch_size):
            part = train.batch(order[start:start + config.batch_size])
            loss, _ = model.elbo_loss(part.xc, part.yc, part.xt, part.yt)
            if penalty is not None:
                # Residual points: a fresh random subset of the targets at every step.
                pick = torch.randperm(part.xt.shape[1], generator=generator)[:penalty_points]
                xt = part.xt[:, pick.to(part.xt.device)].detach().requires_grad_(True)
                # The fused attention kernels have no double backward; the penalty needs it.
                with sdpa_kernel(SDPBackend.MATH):
                    loss = loss + penalty(model.mean_at(part.xc, part.yc, xt), xt, part.param)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimiser.step()
            running += float(loss.detach()) * len(part)
        schedule.step()
        model.eval()
        result.train_loss.append(running / len(train))
        result.val_loss.append(_val_loss(model, val, config.batch_size, config.seed))
        if result.best_epoch < 0 or result.val_loss[-1] < result.best_val_loss:
            result.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{result.train_loss[-1]:.3f}", val=f"{result.val_loss[-1]:.3f}",
                        best=result.best_epoch)
        if epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
            break
    bar.close()
    model.load_state_dict(best_state)
    return result


def save_checkpoint(path: str | os.PathLike, model: ANP, **metadata) -> None:
    """Save weights, constructor arguments and JSON-like metadata atomically.

    The file holds only tensors, numbers and strings, so it loads with ``weights_only=True``.
    """
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    payload = {"model": "ANP", "config": dict(model.config), "state_dict": state,
               "metadata": metadata}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> tuple[ANP, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a physguard ANP checkpoint, or its configuration and
            weights do not fit together.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"{path} is not a readable checkpoint: {err}") from err
    if not isinstance(payload, dict) or payload.get("model") != "ANP":
        raise ValueError(f"{path} is not a physguard ANP checkpoint")
    try:
        model = ANP(**payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is an ANP checkpoint whose configuration or weights do not "
                         f"fit together: {str(err).splitlines()[0][:300]}") from err
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} has metadata of type {type(metadata).__name__}, not a dict")
    model.eval()
    return model, metadata


