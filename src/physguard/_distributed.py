"""Training on several processes under ``torchrun`` (PyTorch DistributedDataParallel).

``torchrun --standalone --nproc-per-node N -m physguard run PROBLEM ...`` starts ``N``
processes with ``RANK`` / ``WORLD_SIZE`` set; :func:`init` joins them into one process group
(gloo on CPU, NCCL on GPU). The training loop (``physguard.training.fit_operator``) then wraps
the model in :class:`~torch.nn.parallel.DistributedDataParallel` and gives each process its
share of every *global* batch: the batches are those of a one-process run with the same seed
and batch size (one shared permutation per epoch, as a ``DistributedSampler`` over each
global batch), split ``index[rank::N]``, and each process's loss is weighted by its share so
that DDP's averaged gradient is the gradient of the global batch's mean loss. Rank 0 alone
shows progress bars and writes the run folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist

__all__ = ["init", "requested", "world", "is_main", "all_reduce_sum", "run_folder_on_main"]


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def requested() -> bool:
    """Whether this process was started for a multi-process run (``WORLD_SIZE > 1``).

    Raises:
        ValueError: ``WORLD_SIZE`` is set but not a positive integer.
    """
    size = os.environ.get("WORLD_SIZE")
    if size is None:
        return False
    if not size.isdigit() or int(size) < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {size!r}")
    return int(size) > 1


def init(device: str = "auto") -> bool:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1`` (once); returns whether
    this is a multi-process run. Backend: NCCL when the run uses CUDA, else gloo.

    Raises:
        ValueError: ``WORLD_SIZE`` is set but not a positive integer.
    """
    if not requested():
        return False
    if not dist.is_initialized():
        cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return True


def all_reduce_sum(value: float, device: torch.device) -> float:
    """The sum of ``value`` over the processes (itself in one process)."""
    if world()[1] == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor)


@contextlib.contextmanager
def run_folder_on_main(out, overwrite: bool) -> Iterator[Path]:
    """The run folder on rank 0 (:func:`physguard._io.run_folder`: complete or absent); a
    throw-away temporary folder on the other ranks, which compute the same things."""
    from ._io import run_folder

    if is_main():
        with run_folder(out, overwrite) as folder:
            yield folder
    else:
        with tempfile.TemporaryDirectory(prefix="physguard-rank-") as folder:
            yield Path(folder)
