"""Linear boundary-value benchmarks of BOON (Saad et al., ICLR 2023) with exact solutions.

* :class:`HeatNeumann`: heat equation with an insulated left wall and a heated right wall.
* :class:`StokesSecond`: Stokes' second problem (an oscillating wall), Dirichlet on both ends.

Both evaluate their exact solution on any ``(t, x)`` grid in float64 and state their boundary
conditions, so data sets carry the condition values alongside the fields.
"""

from __future__ import annotations

import cmath
import math

import torch

from .._validation import as_float_tensor, check_finite, check_in_domain

__all__ = ["HeatNeumann", "StokesSecond"]


def _checked(t, x, problem) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` and ``x`` as float64 tensors, finite, ``t >= 0``, ``x`` inside the problem's
    domain, with broadcastable shapes (returned unbroadcast, so callers can build per-``t``
    and per-``x`` factors first)."""
    t = as_float_tensor("t", t).to(torch.float64)
    x = as_float_tensor("x", x).to(torch.float64)
    check_finite("t", t)
    check_finite("x", x)
    check_in_domain("x", x, problem.domain, problem)
    if bool((t < 0).any()):
        raise ValueError(f"t must be >= 0, got min {float(t.min()):.3g}")
    try:
        torch.broadcast_shapes(t.shape, x.shape)
    except RuntimeError as err:
        raise ValueError(f"t {tuple(t.shape)} and x {tuple(x.shape)} do not broadcast") from err
    return t, x


class HeatNeumann:
    """``u_t = kappa u_xx`` on ``x in [0, 1]``, ``u_x(0, t) = 0``, ``u_x(1, t) = U sin(pi t)``,
    ``u(x, 0) = cos(omega pi x)`` (BOON's heat problem with Neumann walls; the notebooks use
    ``kappa = 0.01``, ``U = 5``, ``omega ~ U[2.01, 3.99]``).

    Exact solution by lifting: ``u = w + g(t) x^2 / 2`` with ``g = U sin(pi t)`` turns the
    boundary flux into a source, and ``w`` is a cosine series with homogeneous Neumann ends,
    ``w = sum_n a_n(t) cos(n pi x)``, where ``a_n' = -lambda_n a_n + f_n(t)``,
    ``lambda_n = kappa (n pi)^2``, ``f_0 = kappa g - g'/6``, ``f_n = -2 (-1)^n g' / (n pi)^2``,
    integrated in closed form. The total heat obeys ``d/dt int u dx = kappa g(t)``, so
    ``mass(t) = sin(omega pi)/(omega pi) + kappa U (1 - cos(pi t)) / pi``.

    Args:
        omega: wave number of the initial condition (non-integer), dimensionless.
        kappa: diffusivity (length^2 / time), > 0.
        amplitude: ``U``, the amplitude of the right-wall flux ``du/dx`` (units of u / length).
        n_terms: cosine modes of the series. The initial data's coefficients decay as
            ``1/n^2`` and mode ``n`` is damped by ``exp(-kappa (n pi)^2 t)``: 1024 terms give
            round-off accuracy for ``t >= 0.01``; use :meth:`initial_condition` at ``t = 0``.

    Raises:
        ValueError: a non-positive ``kappa``, an integer ``omega``, or ``n_terms < 1``.
    """

    name = "heat-neumann"
    left_type = right_type = "neumann"
    domain = (0.0, 1.0)
    t_range = (0.0, 0.5)  # ends at the peak right-wall flux U sin(pi/2) = U
    omega_range = (2.01, 3.99)

    def __init__(self, omega: float = 3.5, kappa: float = 0.01, amplitude: float = 5.0,
                 n_terms: int = 1024):
        if not kappa > 0:
            raise ValueError(f"kappa must be > 0, got {kappa}")
        if abs(omega - round(omega)) < 1e-9:
            raise ValueError(f"omega must not be an integer (got {omega}): the series divides "
                             "by omega - n")
        if n_terms < 1:
            raise ValueError(f"n_terms must be >= 1, got {n_terms}")
        self.omega, self.kappa, self.amplitude, self.n_terms = omega, kappa, amplitude, n_terms

    def initial_condition(self, x) -> torch.Tensor:
        """``u(x, 0) = cos(omega pi x)`` exactly (the series converges only like 1/n there)."""
        return torch.cos(self.omega * math.pi * as_float_tensor("x", x).to(torch.float64))

    def left_flux(self, t) -> torch.Tensor:
        """``du/dx`` at ``x = 0``: 0 (insulated)."""
        return torch.zeros_like(as_float_tensor("t", t).to(torch.float64))

    def right_flux(self, t) -> torch.Tensor:
        """``du/dx`` at ``x = 1``: ``U sin(pi t)``."""
        return self.amplitude * torch.sin(math.pi * as_float_tensor("t", t).to(torch.float64))

    def _coefficients(self, t: torch.Tensor) -> torch.Tensor:
        """Cosine coefficients ``a_n(t)`` of ``w``: shape ``(*t.shape, n_terms + 1)``."""
        n = torch.arange(self.n_terms + 1, dtype=torch.float64)
        w, k, amp = self.omega, self.kappa, self.amplitude
        a0 = torch.where(n == 0, math.sin(w * math.pi) / (w * math.pi),
                         torch.sin((w - n) * math.pi) / ((w - n) * math.pi)
                         + torch.sin((w + n) * math.pi) / ((w + n) * math.pi))
        lam = k * (n * math.pi) ** 2
        t = t.unsqueeze(-1)
        decay = torch.exp(-lam * t)
        denom = lam**2 + math.pi**2
        # int_0^t e^{-lam (t-s)} sin(pi s) ds and the same with cos(pi s).
        i_sin = (lam * torch.sin(math.pi * t) - math.pi * torch.cos(math.pi * t)
                 + math.pi * decay) / denom
        i_cos = (lam * torch.cos(math.pi * t) + math.pi * torch.sin(math.pi * t)
                 - lam * decay) / denom
        # Source projections: f_n = s_n * g(s) + q_n * g'(s), g = U sin(pi s), g' = U pi cos.
        s_n = torch.where(n == 0, k, 0.0)
        q_n = torch.where(n == 0, -1.0 / 6.0, -2.0 * torch.cos(n * math.pi)
                          / (n.clamp(min=1) * math.pi) ** 2)
        forced = amp * (s_n * i_sin + q_n * math.pi * i_cos)
        return decay * a0 + forced

    def solution(self, t, x) -> torch.Tensor:
        """``u(t, x)``, float64, broadcast shape of ``t`` and ``x``."""
        t, x = _checked(t, x, self)  # coefficients and basis are built before broadcasting
        a = self._coefficients(t)  # (*t.shape, n)
        n = torch.arange(self.n_terms + 1, dtype=torch.float64)
        basis = torch.cos(math.pi * n * x.unsqueeze(-1))  # (*x.shape, n)
        series = (a * basis).sum(-1)
        return series + self.amplitude * torch.sin(math.pi * t) * x**2 / 2

    def mass(self, t) -> torch.Tensor:
        """Total heat ``int_0^1 u dx`` from the boundary fluxes (closed form)."""
        t = as_float_tensor("t", t).to(torch.float64)
        w = self.omega
        return (math.sin(w * math.pi) / (w * math.pi)
                + self.kappa * self.amplitude * (1 - torch.cos(math.pi * t)) / math.pi)

    def boundary_values(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """The prescribed ``du/dx`` at the left and right walls at times ``t``."""
        return self.left_flux(t), self.right_flux(t)

    def net_inflow(self, t: float) -> float:
        """``d/dt int_0^1 u dx = kappa (u_x(1, t) - u_x(0, t)) = kappa U sin(pi t)``: the heat
        flowing in through the walls (as :meth:`ConservationProblem.net_inflow`)."""
        return float(self.kappa * (self.right_flux(t) - self.left_flux(t)))

    @classmethod
    def sample(cls, n: int, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator,
               omega_range: tuple[float, float] | None = None):
        """``(params, inputs (n, N), targets (n, T, N), left (n, T), right (n, T))``;
        ``omega ~ U[omega_range]`` (default: the class's training range)."""
        return _sample_family(cls, n, x, t, generator, omega_range)

    def __repr__(self) -> str:
        return f"HeatNeumann(omega={self.omega:g}, kappa={self.kappa:g}, U={self.amplitude:g})"


class StokesSecond:
    """Stokes' second problem: ``u_t = nu u_yy`` on ``y in [0, 1]`` with the wall at ``y = 0``
    oscillating as ``u(0, t) = U cos(omega t)``.

    Exact (periodic-in-time) solution ``u = U exp(-k y) cos(omega t - k y)``,
    ``k = sqrt(omega / (2 nu))`` (Stokes 1851; e.g. Schlichting, Boundary-Layer Theory, Sec. 5.3).
    Both ends are Dirichlet, with the exact values: ``u(0, t) = U cos(omega t)`` and
    ``u(1, t) = U e^{-k} cos(omega t - k)``.

    Args:
        omega: wall frequency (1 / time), > 0.
        nu: kinematic viscosity (length^2 / time), > 0 (BOON's notebooks: 0.1).
        amplitude: ``U``, wall velocity amplitude.

    Raises:
        ValueError: non-positive ``omega`` or ``nu``.
    """

    name = "stokes"
    left_type = right_type = "dirichlet"
    domain = (0.0, 1.0)
    t_range = (0.0, 2.0)
    omega_range = (2.0, 6.0)

    def __init__(self, omega: float = 4.0, nu: float = 0.1, amplitude: float = 1.0):
        if not omega > 0 or not nu > 0:
            raise ValueError(f"omega and nu must be > 0, got omega={omega}, nu={nu}")
        self.omega, self.nu, self.amplitude = omega, nu, amplitude
        self.k = math.sqrt(omega / (2 * nu))

    def initial_condition(self, y) -> torch.Tensor:
        """``u(0, y) = U exp(-k y) cos(k y)``."""
        return self.solution(0.0, y)

    def solution(self, t, y) -> torch.Tensor:
        """``u(t, y)``, float64, broadcast shape of ``t`` and ``y``."""
        t, y = _checked(t, y, self)
        return self.amplitude * torch.exp(-self.k * y) * torch.cos(self.omega * t - self.k * y)

    def left_value(self, t) -> torch.Tensor:
        return self.solution(t, 0.0)

    def right_value(self, t) -> torch.Tensor:
        return self.solution(t, self.domain[1])

    def boundary_values(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """The prescribed wall values ``u(0, t)`` and ``u(1, t)``."""
        return self.left_value(t), self.right_value(t)

    def wall_shear(self, t, y) -> torch.Tensor:
        """``du/dy`` at ``y`` (a wall: 0 or 1): ``U k e^{-k y} (sin(w t - k y) - cos(w t -
        k y))``."""
        t, y = _checked(t, y, self)
        phase = self.omega * t - self.k * y
        return self.amplitude * self.k * torch.exp(-self.k * y) * (torch.sin(phase)
                                                                    - torch.cos(phase))

    def net_inflow(self, t: float) -> float:
        """``d/dt int_0^1 u dy = nu (u_y(1, t) - u_y(0, t))``: the momentum the wall shear
        brings in (as :meth:`ConservationProblem.net_inflow`)."""
        return float(self.nu * (self.wall_shear(t, self.domain[1]) - self.wall_shear(t, 0.0)))

    def mass(self, t) -> torch.Tensor:
        """``int_0^1 u dy = U Re[e^{i w t} (1 - e^{-(1+i) k}) / ((1+i) k)]`` (closed form);
        it changes by the wall shear, ``d/dt int u dy = nu (u_y(1, t) - u_y(0, t))``."""
        t = as_float_tensor("t", t).to(torch.float64)
        z = (1 - cmath.exp(-(1 + 1j) * self.k)) / ((1 + 1j) * self.k)
        return self.amplitude * (torch.exp(1j * self.omega * t) * z).real

    @classmethod
    def sample(cls, n: int, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator,
               omega_range: tuple[float, float] | None = None):
        """``(params, inputs (n, N), targets (n, T, N), left (n, T), right (n, T))``;
        ``omega ~ U[omega_range]`` (default: the class's training range)."""
        return _sample_family(cls, n, x, t, generator, omega_range)

    def __repr__(self) -> str:
        return f"StokesSecond(omega={self.omega:g}, nu={self.nu:g}, U={self.amplitude:g})"


def _sample_family(cls, n: int, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator,
                   omega_range: tuple[float, float] | None = None):
    """Solutions for ``omega ~ U[omega_range]`` from the closed forms."""
    lo, hi = omega_range or cls.omega_range
    params = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
    inputs = torch.empty(n, x.shape[0], dtype=torch.float64)
    targets = torch.empty(n, t.shape[0], x.shape[0], dtype=torch.float64)
    left = torch.empty(n, t.shape[0], dtype=torch.float64)
    right = torch.empty(n, t.shape[0], dtype=torch.float64)
    for i, omega in enumerate(params.tolist()):
        pde = cls(omega)
        inputs[i] = pde.initial_condition(x)
        targets[i] = pde.solution(t[:, None], x)
        left[i], right[i] = pde.boundary_values(t)
    return params, inputs, targets, left, right
