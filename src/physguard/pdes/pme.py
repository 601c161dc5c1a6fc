"""Porous medium equation ``k(u) = u^m`` (ProbConserv's "medium" GPME case)."""

from __future__ import annotations

import torch

from .base import GPMEProblem

__all__ = ["PorousMedium"]


class PorousMedium(GPMEProblem):
    """``u_t = (u^m u_x)_x`` on ``x in [0, 1]``, ``t in [0, 1]``, ``u(x, 0) = 0``,
    ``u(0, t) = (m t)^(1/m)``.

    Exact travelling-wave solution ``u = (m (t - x)_+)^(1/m)`` with front ``x*(t) = t``
    (Hansen et al., ICML 2023, App. B.2; the authors' generator with scale 1). The conserved
    total is ``U(t) = m^(1/m) m/(m+1) [t^((m+1)/m) - (t-1)_+^((m+1)/m)]``, which for
    ``t <= 1`` is ``m^(1+1/m) t^(1+1/m) / (m+1)``. Paper settings: train ``m ~ U[1, 6]``, test
    ``m in {1, 3, 6}``, tables at ``t* = 0.5``.

    Args:
        m: exponent of the nonlinearity, ``m > 0`` (dimensionless).

    Raises:
        ValueError: ``m <= 0`` or not finite.
    """

    name = "pme"
    parameter_name = "m"
    domain = (0.0, 1.0)
    t_range = (0.0, 1.0)
    train_range = (1.0, 6.0)
    test_params = (1.0, 3.0, 6.0)
    t_star = 0.5
    has_shock = True

    def __init__(self, m: float = 3.0):
        super().__init__(m)

    @property
    def m(self) -> float:
        return self.parameter

    def _check_parameter(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"m must be > 0, got {value}")

    def _solution(self, t, x):
        return (self.m * (t - x).clamp(min=0)) ** (1 / self.m)

    def _mass(self, t):
        m = self.m
        p = (m + 1) / m
        return m ** (1 / m) * m / (m + 1) * (t**p - (t - 1).clamp(min=0) ** p)

    def net_inflow(self, t: float) -> float:
        """Flux ``-u^m u_x = u`` in at ``x = 0`` (``(m t)^(1/m)``); none out while ``t < 1``."""
        u_in = float(self.solution(t, self.domain[0]))
        u_out = float(self.solution(t, self.domain[1]))
        return u_in - u_out

    @staticmethod
    def conductivity_of(u, param):
        return u.clamp(min=0) ** param

    def shock_position(self, t) -> torch.Tensor:
        """Front ``x*(t) = min(t, 1)``: the first point where ``u = 0``."""
        return self._times(t).clamp(max=self.domain[1])
