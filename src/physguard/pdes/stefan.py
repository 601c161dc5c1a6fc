"""One-phase Stefan problem as a degenerate GPME (ProbConserv's "hard" case)."""

from __future__ import annotations

import math

import torch
from scipy.optimize import brentq
from scipy.special import erf

from .base import GPMEProblem

__all__ = ["Stefan", "stefan_z1"]


def _z1_equation(z: float, p_star: float) -> float:
    # log of p* erf(z) z exp(z^2) sqrt(pi) / (1 - p*): finite for every p* in (0, 1), where
    # the product itself overflows for p* < 1e-43 (z1 > 10).
    return (math.log(p_star) + math.log(erf(z)) + math.log(z) + z * z
            + 0.5 * math.log(math.pi) - math.log1p(-p_star))


def stefan_z1(p_star: float) -> float:
    """Root ``z1`` of ``p* erf(z1) z1 exp(z1^2) = (1 - p*) / sqrt(pi)``.

    The jump condition ``p* dx*/dt = -u_x(x*-)`` of the self-similar solution (the classical
    one-phase Stefan condition ``sqrt(pi) z e^{z^2} erf z = 1/St`` with ``1/St = (1-p*)/p*``).
    The left side grows monotonically from 0, so the root is unique; found with Brent's method
    to ~1e-15 on the logarithm of both sides, bracketed in ``[1e-200, 40]`` (which holds the
    root for every double ``p*`` in ``(0, 1)``).

    Raises:
        ValueError: ``p*`` outside ``(0, 1)``.
    """
    if not 0.0 < p_star < 1.0:
        raise ValueError(f"p* must lie in (0, 1), got {p_star}")
    return brentq(_z1_equation, 1e-200, 40.0, args=(p_star,), xtol=1e-15, rtol=1e-15,
                  maxiter=400)


class Stefan(GPMEProblem):
    """``u_t = (k(u) u_x)_x``, ``k(u) = 1`` if ``u >= p*`` else ``0``, on ``x in [0, 1]``,
    ``t in [0, 0.1]``, ``u(x, 0) = 0``, ``u(0, t) = 1``.

    Self-similar solution with interface ``x*(t) = alpha sqrt(t)``, ``alpha = 2 z1``:
    ``u = 1 - c1 erf(x / (2 sqrt t))`` for ``x <= x*(t)`` and ``0`` beyond, ``c1 = (1-p*)/erf(z1)``
    (so ``u`` jumps from ``p*`` to ``0`` at the front), with ``z1`` from :func:`stefan_z1`.
    Conserved total (the time-integrated inflow flux) ``U(t) = 2 c1 sqrt(t / pi)``, valid while
    the front is inside the domain. Hansen et al., ICML 2023, App. B.3; paper settings: train
    ``p* ~ U[0.55, 0.70]``, test ``p* in {0.5, 0.6}``, tables at ``t* = 0.05``.

    Args:
        p_star: the phase-change value ``p*`` in ``(0, 1)`` (dimensionless, like ``u``).

    Raises:
        ValueError: ``p*`` outside ``(0, 1)``; ``mass(t)`` at a time when the front has left
            the domain (``t > 1 / alpha^2``).
    """

    name = "stefan"
    parameter_name = "p*"
    domain = (0.0, 1.0)
    t_range = (0.0, 0.1)
    train_range = (0.55, 0.70)
    test_params = (0.5, 0.6)
    t_star = 0.05
    has_shock = True

    def __init__(self, p_star: float = 0.6):
        super().__init__(p_star)
        self.z1 = stefan_z1(self.parameter)
        self.alpha = 2.0 * self.z1
        self.c1 = (1.0 - self.parameter) / erf(self.z1)

    @property
    def p_star(self) -> float:
        return self.parameter

    def _check_parameter(self, value: float) -> None:
        if not 0.0 < value < 1.0:
            raise ValueError(f"p* must lie in (0, 1), got {value}")

    def _solution(self, t, x):
        positive = t > 0
        safe_t = torch.where(positive, t, torch.ones_like(t))
        inside = 1.0 - self.c1 * torch.special.erf(x / (2.0 * safe_t.sqrt()))
        front = self.alpha * safe_t.sqrt()
        u = torch.where(x <= front, inside, torch.zeros_like(x))
        # t = 0: the initial condition u = 0, except the boundary value u(0, 0) = 1.
        initial = (x <= self.domain[0]).to(x.dtype)
        return torch.where(positive, u, initial)

    def _mass(self, t):
        t_max = (self.domain[1] / self.alpha) ** 2
        if bool((t > t_max).any()):
            raise ValueError(
                f"the front of {self!r} leaves [0, 1] at t = {t_max:.4g}; the closed-form mass "
                f"does not hold at t = {float(t.max()):.4g}"
            )
        return 2.0 * self.c1 * torch.sqrt(t / math.pi)

    def net_inflow(self, t: float) -> float:
        """Heat flux ``-u_x(0, t) = c1 / sqrt(pi t)`` in at ``x = 0``; none while the front is
        inside the domain (``u = 0`` and ``k = 0`` at ``x = 1``)."""
        return self.c1 / math.sqrt(math.pi * t) if t > 0 else math.inf

    @staticmethod
    def conductivity_of(u, param):
        return (u >= param).to(u.dtype)

    def shock_position(self, t) -> torch.Tensor:
        """Front ``x*(t) = alpha sqrt(t)`` where ``u`` drops from ``p*`` to 0 (clipped to the
        domain, like the hyperbolic problems' fronts)."""
        return (self.alpha * self._times(t).sqrt()).clamp(max=self.domain[1])

    def jump_level(self, t: float) -> float | None:
        """``p* / 2``, the middle of the jump from ``p*`` to 0, while the front is inside the
        domain at ``t > 0``."""
        inside = 0 < t and self.alpha * math.sqrt(t) < self.domain[1]
        return self.parameter / 2 if inside else None
