"""The interface every black box of an experiment implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch

from ..constraints import Gaussian
from ..training import NPData

__all__ = ["GridPredictor"]


class GridPredictor(ABC):
    """A probabilistic model that predicts a whole ``(t, x)`` grid from context points.

    Attributes:
        name: the method name in tables and files (``"ANP"``, ``"GP"``, ``"Ensemble"``).
        constrain: whether the experiment also reports ``HardC-<name>`` and
            ``ProbConserv-<name>`` (``False`` for baselines such as ``SoftC-ANP``).
    """

    name: str
    constrain: bool = True

    @abstractmethod
    def predict(self, contexts: NPData, grid_inputs: torch.Tensor, nt: int, nx: int,
                generator: torch.Generator) -> Iterator[Gaussian]:
        """Yield, per function of ``contexts``, its mixture components on the grid.

        Args:
            contexts: ``xc (n, Nc, 2)`` scaled ``(t, x)`` inputs and ``yc (n, Nc)`` values.
            grid_inputs: ``(nt * nx, 2)`` scaled grid inputs, time-major.
            nt, nx: grid size.
            generator: CPU generator for any sampling the model does.

        Yields:
            ``n`` float64 CPU :class:`~physguard.Gaussian` objects with mean ``(S, nt, nx)``.
        """


def check_contexts(contexts: NPData) -> None:
    """Raise ``ValueError`` for context tensors of the wrong rank or with NaN."""
    if contexts.xc.dim() != 3 or contexts.xc.shape[-1] != 2 or contexts.yc.dim() != 2 \
            or contexts.yc.shape != contexts.xc.shape[:2]:
        raise ValueError(f"contexts must have xc (n, Nc, 2) and yc (n, Nc), got "
                         f"{tuple(contexts.xc.shape)} and {tuple(contexts.yc.shape)}")
    if not (torch.isfinite(contexts.xc).all() and torch.isfinite(contexts.yc).all()):
        raise ValueError("contexts contain NaN or infinite values")
