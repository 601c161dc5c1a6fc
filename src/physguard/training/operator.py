"""The training loop of the neural operators (FNO, BOON-FNO, any dimension): Adam with weight
decay, step decay of the rate, shuffled mini-batches, relative L2 loss; DistributedDataParallel
under ``torchrun`` (:mod:`physguard._distributed`).

Shared by every operator experiment (``physguard run``, ``bench boon``, ``--uq``) and usable
directly on a user's model (``apply`` wraps it, for example in :class:`~physguard.BOON`).
"""

from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .._distributed import all_reduce_sum, world

__all__ = ["fit_operator", "relative_l2_loss"]


def relative_l2_loss(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ``||pred - truth|| / ||truth||`` over the whole field."""
    diff = (pred - truth).flatten(1).norm(dim=1)
    return (diff / truth.flatten(1).norm(dim=1)).mean()


class _Applied(torch.nn.Module):
    """``apply(model, index, inputs)`` as a module, so that DistributedDataParallel sees the
    whole forward pass (a BOON wrapper calls the operator's layers directly)."""

    def __init__(self, model: torch.nn.Module, apply):
        super().__init__()
        self.model, self.apply = model, apply

    def forward(self, index, inputs):
        return self.apply(self.model, index, inputs)


def fit_operator(model, apply, inputs: torch.Tensor, targets: torch.Tensor, config,
                 name: str, progress: bool = True, loss=None) -> list[float]:
    """The training loop shared by the 1-D and 2-D BOON runs: Adam with weight decay, step
    decay of the rate, shuffled batches (``seed``), relative L2 loss on the whole field.

    ``apply(model, index, batch_inputs)`` returns the predictions of the samples ``index``;
    ``config`` has ``lr``, ``weight_decay``, ``lr_step``, ``lr_gamma``, ``epochs``,
    ``batch_size``, ``seed``. ``loss(pred, truth, index)`` replaces the relative L2 loss (the
    soft-constraint baseline of ``physguard bench boon`` adds a boundary penalty). ``inputs``
    and ``targets`` may be lazy (:class:`~physguard.datasets.well.LazyField`): each batch is
    then read from the file when it is used. Under ``torchrun`` each process trains on its
    share of every global batch through DistributedDataParallel
    (:mod:`physguard._distributed`). Returns the mean loss per epoch.
    """
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, config.lr_step, config.lr_gamma)
    lazy = not isinstance(inputs, torch.Tensor)  # a LazyField: read batch by batch
    if not lazy:
        inputs = inputs.float().to(device)
        targets = targets.float().to(device)

    def batch(array, index):
        return array[index].float().to(device) if lazy else array[index.to(device)]

    rank, size = world()
    forward = apply
    if size > 1:  # torchrun: DDP over the model as applied (BOON included), see _distributed
        wrapped = DistributedDataParallel(_Applied(model, apply))
        forward = lambda m, index, x: wrapped(index, x)  # noqa: E731
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    bar = tqdm(range(config.epochs), desc=f"training {name}", unit="epoch",
               disable=not progress or rank != 0, dynamic_ncols=True)
    n = inputs.shape[0]
    for _ in bar:
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            local = index[rank::size]
            share = len(local) * size / len(index)
            if len(local) == 0:  # fewer samples than processes: a zero-weight stand-in
                local, share = index[:1], 0.0
            pred = forward(model, local, batch(inputs, local))
            truth = batch(targets, local)
            value = relative_l2_loss(pred, truth) if loss is None else loss(pred, truth, local)
            optimiser.zero_grad(set_to_none=True)
            (value if size == 1 else value * share).backward()
            optimiser.step()
            total += float(value.detach()) * len(local) * (share > 0)
        schedule.step()
        losses.append(all_reduce_sum(total, device) / n)
        bar.set_postfix(rel_l2=f"{losses[-1]:.4f}")
    bar.close()
    return losses
