"""Heat / diffusion equation with constant conductivity (ProbConserv's "easy" GPME case)."""

from __future__ import annotations

import math

import torch

from .base import GPMEProblem

__all__ = ["Diffusion"]


class Diffusion(GPMEProblem):
    """``u_t = k u_xx`` on ``x in [0, 2 pi]`` (periodic), ``t in [0, 1]``, ``u(x, 0) = sin x``.

    Exact solution ``u = exp(-k t) sin x``; the conserved total is ``U(t) = 0`` for all ``t``
    (Hansen et al., ICML 2023, Sec. 4.1 and App. B.1). Paper settings: train ``k ~ U[1, 5]``,
    test ``k in {1, 5}``, tables at ``t* = 0.5``.

    Args:
        k: conductivity (diffusivity), ``k > 0`` (units length^2 / time).

    Raises:
        ValueError: ``k <= 0`` or not finite.
    """

    name = "diffusion"
    nonnegative = False  # sin x changes sign
    parameter_name = "k"
    domain = (0.0, 2 * math.pi)
    t_range = (0.0, 1.0)
    train_range = (1.0, 5.0)
    test_params = (1.0, 5.0)
    t_star = 0.5

    def __init__(self, k: float = 1.0):
        super().__init__(k)

    @property
    def k(self) -> float:
        return self.parameter

    def _check_parameter(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"k must be > 0, got {value}")

    def _solution(self, t, x):
        return torch.exp(-self.k * t) * torch.sin(x)

    def _mass(self, t):
        return torch.zeros_like(t)

    def net_inflow(self, t: float) -> float:
        """Periodic ends: what leaves at ``2 pi`` enters at 0, so the net flux is 0."""
        return 0.0

    @staticmethod
    def conductivity_of(u, param):
        return torch.ones_like(u) * param
