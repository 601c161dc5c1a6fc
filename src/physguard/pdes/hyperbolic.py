"""The hyperbolic conservation laws of ProbConserv (Hansen et al., ICML 2023, Sec. 4.3).

Both have discontinuous closed-form solutions and a conserved total that changes only by the
boundary fluxes (the inflow), so ``mass(t)`` is the initial mass plus the integrated inflow.
"""

from __future__ import annotations

import torch

from .base import ConservationProblem

__all__ = ["LinearAdvection", "InviscidBurgers"]


class _SpeedProblem(ConservationProblem):
    """Shared by both cases: one positive parameter ``a`` (a speed or an inflow value)."""

    parameter_name = "a"

    def __init__(self, a: float = 1.0):
        super().__init__(a)

    @property
    def a(self) -> float:
        return self.parameter

    def _check_parameter(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"a must be > 0, got {value}")


class LinearAdvection(_SpeedProblem):
    """``u_t + a u_x = 0`` on ``x in [0, 1]``, ``t in [0, 1]``, ``u(x, 0) = 1{x <= 0.5}``,
    inflow ``u(0, t) = 1``.

    Exact solution ``u = 1{x - a t <= 0.5}``: the step moves right at speed ``a``. The total
    ``U(t) = 0.5 + min(a t, 0.5)`` grows by the inflow flux ``a`` until the step leaves at
    ``t = 0.5 / a`` (then the outflow balances it). Paper settings: train ``a ~ U[1, 5]``,
    test ``a in {1, 3}``, tables at ``t* = 0.1``.

    Args:
        a: advection speed ``> 0`` (length / time).

    Raises:
        ValueError: ``a <= 0``.
    """

    name = "advection"
    domain = (0.0, 1.0)
    t_range = (0.0, 1.0)
    train_range = (1.0, 5.0)
    test_params = (1.0, 3.0)
    t_star = 0.1
    has_shock = True

    @staticmethod
    def flux(u, u_x, param):
        """``F = a u``."""
        return param * u

    def _solution(self, t, x):
        return (x - self.a * t <= 0.5).to(torch.float64)

    def _mass(self, t):
        return 0.5 + (self.a * t).clamp(max=0.5)

    def net_inflow(self, t: float) -> float:
        """``a u(0, t) - a u(1, t)``: flux ``a u`` in at the inflow, out at the outflow."""
        a, (left, right) = self.a, self.domain
        return a * float(self.solution(t, left)) - a * float(self.solution(t, right))

    def shock_position(self, t) -> torch.Tensor:
        """The step ``x*(t) = 0.5 + a t`` (clipped to the domain)."""
        return (0.5 + self.a * self._times(t)).clamp(max=self.domain[1])

    def jump_level(self, t: float) -> float | None:
        """0.5, the middle of the unit step, while the step is inside the domain."""
        return 0.5 if 0.5 + self.a * t < self.domain[1] else None


class InviscidBurgers(_SpeedProblem):
    """``u_t + (u^2 / 2)_x = 0`` on ``x in [-1, 1]``, ``t in [0, 1]``, inflow ``u(-1, t) = a``,
    ``u(x, 0) = a`` for ``x <= -1``, ``-a x`` on ``(-1, 0]``, ``0`` for ``x > 0``.

    Exact solution by characteristics: while ``t < 1/a`` the ramp steepens,
    ``u = a`` for ``x <= -1 + a t``, ``u = -a x / (1 - a t)`` up to ``x = 0``, and 0 beyond;
    at ``t = 1/a`` the characteristics meet at ``x = 0`` and a shock from ``a`` to ``0`` moves
    at the Rankine-Hugoniot speed ``a/2``: ``x_s = (a t - 1)/2``. The total is
    ``U(t) = (a/2)(1 + a t)`` (the inflow flux ``a^2/2`` integrated) until the shock leaves
    at ``t = 3/a``, then ``2a``. Paper settings: train ``a ~ U[1, 4]``, test ``a in {1, 3}``,
    tables at ``t* = 0.5``.

    Args:
        a: inflow value ``> 0`` (units of u).

    Raises:
        ValueError: ``a <= 0``.
    """

    name = "burgers"
    domain = (-1.0, 1.0)
    t_range = (0.0, 1.0)
    train_range = (1.0, 4.0)
    test_params = (1.0, 3.0)
    t_star = 0.5
    has_shock = True

    @staticmethod
    def flux(u, u_x, param):
        """``F = u^2 / 2`` (``param`` unused: it enters through the data only)."""
        return 0.5 * u.square()

    def _solution(self, t, x):
        a = self.a
        before = a * t < 1
        gap = torch.where(before, 1 - a * t, torch.ones_like(t))
        ramp = torch.where(x <= -1 + a * t, torch.full_like(x, a), -a * x / gap)
        ramp = torch.where(x > 0, torch.zeros_like(x), ramp)
        shock = torch.where(x <= (a * t - 1) / 2, torch.full_like(x, a), torch.zeros_like(x))
        return torch.where(before, ramp, shock)

    def _mass(self, t):
        front = torch.where(self.a * t < 1, torch.zeros_like(t), (self.a * t - 1) / 2)
        # Before the shock forms the total is (a/2)(1 + a t) too; after, a (x_s + 1).
        before = self.a / 2 * (1 + self.a * t)
        after = self.a * (front.clamp(max=self.domain[1]) + 1)
        return torch.where(self.a * t < 1, before, after)

    def net_inflow(self, t: float) -> float:
        """``u(-1, t)^2 / 2 - u(1, t)^2 / 2``: the Burgers flux in minus the flux out."""
        left, right = self.domain
        return (float(self.solution(t, left)) ** 2 - float(self.solution(t, right)) ** 2) / 2

    def jump_level(self, t: float) -> float | None:
        """``a / 2``, the middle of the shock from ``a`` to 0, from ``t = 1/a`` while the shock
        is inside the domain; ``None`` before (the ramp meets 0 continuously at ``x = 0``)."""
        formed = self.a * t >= 1 and (self.a * t - 1) / 2 < self.domain[1]
        return self.a / 2 if formed else None

    def shock_position(self, t) -> torch.Tensor:
        """Where ``u`` drops to 0: ``x = 0`` until the shock forms, then ``(a t - 1)/2``."""
        t = self._times(t)
        return ((self.a * t - 1) / 2).clamp(min=0.0, max=self.domain[1])
