"""Viscous Burgers' equation ``u_t + (u^2/2)_x = nu u_xx`` with Dirichlet ends.

Two routes, each checking the other:

* :func:`cole_hopf_sine`: the exact solution for ``u(x, 0) = a sin(pi x)`` on ``[0, 1]`` with
  ``u(0, t) = u(1, t) = 0`` (Cole 1951): with ``r = a / (2 pi nu)`` and the modified Bessel
  functions ``I_n``,
  ``u = 4 pi nu sum_n n I_n(r) e^{-nu n^2 pi^2 t} sin(n pi x) /
  (I_0(r) + 2 sum_n I_n(r) e^{-nu n^2 pi^2 t} cos(n pi x))``
  (the Cole-Hopf transform ``u = -2 nu phi_x / phi`` of a heat solution whose initial value
  ``exp((a / (2 pi nu)) cos(pi x))`` has this Bessel series). Scaled Bessel functions keep it
  finite for small ``nu``.
* :func:`solve_burgers_dirichlet`: a finite-difference solver for any initial condition
  (second-order central differences in space, Crank-Nicolson for the viscous term and
  second-order Adams-Bashforth for the flux, i.e. an IMEX CN-AB2 scheme, second order in
  ``h`` and ``dt``), batched over samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import solve_banded
from scipy.special import ive

__all__ = ["cole_hopf_sine", "solve_burgers_dirichlet", "BurgersDirichlet", "BurgersPeriodic",
           "gaussian_random_field", "solve_burgers_periodic", "fourier_eval"]


def cole_hopf_sine(a: float, nu: float, t, x, n_terms: int = 200) -> torch.Tensor:
    """Exact solution for ``u(x, 0) = a sin(pi x)``, ``u(0) = u(1) = 0``; float64.

    ``t`` and ``x`` broadcast; ``t > 0`` (at ``t = 0`` the series is the initial condition only
    in the limit of many terms).
    """
    t = torch.as_tensor(np.asarray(t, dtype=np.float64))
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    r = a / (2 * math.pi * nu)
    n = torch.arange(1, n_terms + 1, dtype=torch.float64)
    # ive(n, r) = I_n(r) e^{-|r|}: the common factor cancels in the ratio.
    bessel = torch.as_tensor(ive(n.numpy(), r))
    b0 = float(ive(0, r))
    decay = torch.exp(-nu * (n * math.pi) ** 2 * t.unsqueeze(-1)) * bessel
    angle = math.pi * n * x.unsqueeze(-1)
    numerator = 4 * math.pi * nu * (n * decay * torch.sin(angle)).sum(-1)
    denominator = b0 + 2 * (decay * torch.cos(angle)).sum(-1)
    return numerator / denominator


def solve_burgers_dirichlet(u0: torch.Tensor, x: torch.Tensor, t_out: torch.Tensor, nu: float,
                            left=0.0, right=0.0, dt: float = 2e-4) -> torch.Tensor:
    """Solve ``u_t + (u^2/2)_x = nu u_xx`` with constant Dirichlet ends, batched.

    Args:
        u0: ``(n, N)`` initial conditions on the uniform grid ``x (N,)`` (ends included; the
            end values are replaced by ``left``/``right``).
        t_out: ``(T,)`` increasing output times ``> 0``.
        nu: viscosity ``> 0``.
        left, right: boundary values (floats or ``(n,)`` tensors).
        dt: time step (the last step to each output time is shortened to land on it).

    Returns:
        ``(n, T, N)`` float64 solution.

    Raises:
        ValueError: non-uniform or too small grid, non-increasing or negative ``t_out``.
    """
    u = torch.as_tensor(u0, dtype=torch.float64).numpy().copy()
    xs = torch.as_tensor(x, dtype=torch.float64).numpy()
    times = torch.as_tensor(t_out, dtype=torch.float64).numpy()
    if u.ndim != 2 or u.shape[1] != xs.shape[0] or xs.shape[0] < 4:
        raise ValueError(f"u0 must be (n, N) on x of N >= 4 points; got {u.shape}, {xs.shape}")
    h = xs[1] - xs[0]
    if not np.allclose(np.diff(xs), h, rtol=1e-9, atol=0):
        raise ValueError("x must be a uniform grid")
    if not nu > 0:
        raise ValueError(f"nu must be > 0, got {nu}")
    if times.ndim != 1 or (times <= 0).any() or (np.diff(times) <= 0).any():
        raise ValueError("t_out must be positive and strictly increasing")
    n_int = xs.shape[0] - 2
    lv = np.broadcast_to(np.asarray(left, dtype=np.float64), (u.shape[0],))
    rv = np.broadcast_to(np.asarray(right, dtype=np.float64), (u.shape[0],))
    u[:, 0], u[:, -1] = lv, rv

    def flux_term(v):  # -(v^2/2)_x at interior points, (n, N-2)
        return -(v[:, 2:] ** 2 - v[:, :-2] ** 2) / (4 * h)

    def laplacian(v):  # interior second difference, boundary values included
        return (v[:, 2:] - 2 * v[:, 1:-1] + v[:, :-2]) / h**2

    out = np.empty((u.shape[0], times.shape[0], xs.shape[0]))
    t, previous, banded = 0.0, None, {}
    for k, target in enumerate(times):
        while t < target - 1e-14:
            step = min(dt, target - t)
            if step not in banded:  # (I - step nu/2 D) in banded form, cached per step size
                c = step * nu / (2 * h**2)
                ab = np.zeros((3, n_int))
                ab[0, 1:], ab[1, :], ab[2, :-1] = -c, 1 + 2 * c, -c
                banded[step] = ab
            f = flux_term(u)
            conv = f if previous is None else 1.5 * f - 0.5 * previous
            rhs = u[:, 1:-1] + step * (nu / 2 * laplacian(u) + conv)
            c = step * nu / (2 * h**2)
            rhs[:, 0] += c * lv  # implicit half of the boundary values
            rhs[:, -1] += c * rv
            u[:, 1:-1] = solve_banded((1, 1), banded[step], rhs.T).T
            previous, t = f, t + step
        out[:, k] = u
    return torch.from_numpy(out)


class BurgersDirichlet:
    """Viscous Burgers on ``[0, 1]`` with ``u(0, t) = u(1, t) = 0``, ``nu = 0.1``, ``t in [0, 1]``.

    Random initial conditions ``u0 = sum_{k=1..4} c_k sin(k pi x)``, ``c_k ~ N(0, 1/k^2)``
    (so ``|u0| ~ 1``), solved by :func:`solve_burgers_dirichlet` on a fine grid and sampled on
    the requested one.
    """

    name = "burgers-dirichlet"
    domain = (0.0, 1.0)
    t_range = (0.0, 1.0)
    nu = 0.1
    left_type = right_type = "dirichlet"

    @classmethod
    def sample(cls, n: int, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator,
               min_fine_intervals: int = 512):
        """``(params, inputs (n, N), targets (n, T, N), left (n, T), right (n, T))``.

        Solved on a grid refined by an integer factor to at least ``min_fine_intervals``
        intervals (512 intervals: max error about 3e-5 against Cole-Hopf for ``|u| <= 2``),
        then sampled at the points of ``x`` (a uniform grid of ``domain``).
        """
        k = torch.arange(1, 5, dtype=torch.float64)
        coeffs = torch.randn(n, 4, generator=generator, dtype=torch.float64) / k
        stride = max(1, math.ceil(min_fine_intervals / (x.shape[0] - 1)))
        fine = torch.linspace(*cls.domain, stride * (x.shape[0] - 1) + 1, dtype=torch.float64)

        def initial(grid):
            return (coeffs.unsqueeze(-1) * torch.sin(math.pi * k[:, None] * grid)).sum(1)

        solution = solve_burgers_dirichlet(initial(fine), fine, t, cls.nu)[..., ::stride]
        zeros = torch.zeros(n, t.shape[0], dtype=torch.float64)
        return coeffs.norm(dim=1), initial(x), solution, zeros, zeros.clone()


def gaussian_random_field(n: int, x: torch.Tensor, generator: torch.Generator,
                          n_modes: int = 64) -> torch.Tensor:
    """Samples of ``N(0, 625 (-Delta + 25 I)^-2)`` on ``[0, 1)`` periodic (Li et al. 2021).

    The covariance operator has eigenvalues ``lambda_k = 625 (4 pi^2 k^2 + 25)^-2`` on the real
    Fourier basis ``1, sqrt2 cos(2 pi k x), sqrt2 sin(2 pi k x)``; modes above ``n_modes``
    (variance below 1e-9 of the first) are dropped. Returns ``(n, len(x))`` float64.
    """
    k = torch.arange(n_modes + 1, dtype=torch.float64)
    std = 25.0 / (4 * math.pi**2 * k**2 + 25)  # sqrt(lambda_k)
    xi = torch.randn(n, 2, n_modes + 1, generator=generator, dtype=torch.float64)
    phase = 2 * math.pi * k * x.unsqueeze(-1)  # (N, K)
    cos, sin = torch.cos(phase), torch.sin(phase)
    field = std[0] * xi[:, 0, :1] + math.sqrt(2) * (
        (std[1:] * xi[:, 0, 1:]) @ cos[:, 1:].T + (std[1:] * xi[:, 1, 1:]) @ sin[:, 1:].T)
    return field


def solve_burgers_periodic(u0: torch.Tensor, t_out: torch.Tensor, nu: float,
                           dt: float = 5e-4) -> torch.Tensor:
    """Pseudo-spectral solver of ``u_t + (u^2/2)_x = nu u_xx`` on ``[0, 1)`` periodic, batched.

    Fourier collocation on the ``M`` points of ``u0 (n, M)`` (``x_j = j / M``), the 2/3 rule
    against aliasing, and the integrating-factor fourth-order Runge-Kutta scheme (the viscous
    term integrated exactly). Returns the Fourier coefficients ``(n, T, M // 2 + 1)`` at
    ``t_out`` (evaluate them anywhere with :func:`fourier_eval`).
    """
    u0 = torch.as_tensor(u0, dtype=torch.float64)
    m = u0.shape[-1]
    k = torch.fft.rfftfreq(m, d=1.0 / m).to(torch.float64)  # 0 .. M/2
    lin = -nu * (2 * math.pi * k) ** 2
    dealias = (k <= m // 3).to(torch.float64)
    half = torch.exp(lin * dt / 2)

    def nonlinear(v_hat):  # -(u^2/2)_x in Fourier space, dealiased
        u = torch.fft.irfft(v_hat, n=m)
        return -1j * math.pi * k * torch.fft.rfft(u * u) * dealias

    u_hat = torch.fft.rfft(u0) * dealias
    times = torch.as_tensor(t_out, dtype=torch.float64)
    out = torch.empty(u0.shape[0], times.shape[0], k.shape[0], dtype=torch.complex128)
    t = 0.0
    for i, target in enumerate(times.tolist()):
        while t < target - 1e-12:
            h = min(dt, target - t)
            e_half = half if h == dt else torch.exp(lin * h / 2)
            e_full = e_half * e_half
            a = nonlinear(u_hat)
            b = nonlinear(e_half * (u_hat + h / 2 * a))
            c = nonlinear(e_half * u_hat + h / 2 * b)
            d = nonlinear(e_full * u_hat + h * e_half * c)
            u_hat = e_full * u_hat + h / 6 * (e_full * a + 2 * e_half * (b + c) + d)
            t += h
        out[:, i] = u_hat
    return out


def fourier_eval(u_hat: torch.Tensor, m: int, x: torch.Tensor) -> torch.Tensor:
    """Evaluate rfft coefficients of an ``m``-point periodic field at any points ``x``."""
    k = torch.arange(u_hat.shape[-1], dtype=torch.float64)
    weights = torch.full_like(k, 2.0)
    weights[0] = 1.0
    if m % 2 == 0:
        weights[-1] = 1.0
    basis = torch.exp(2j * math.pi * k * x.unsqueeze(-1))  # (N, K)
    return ((u_hat * weights) @ basis.T).real / m


class BurgersPeriodic:
    """Viscous Burgers on ``[0, 1]`` periodic, ``nu = 0.1``, ``t in [0, 1]``, initial condition
    from :func:`gaussian_random_field` (the classic FNO data set, Li et al. 2021).

    Solved by :func:`solve_burgers_periodic` on 512 collocation points and evaluated by
    Fourier interpolation on the requested grid (both ends included, so ``u_0 = u_{N-1}``).
    """

    name = "burgers-periodic"
    domain = (0.0, 1.0)
    t_range = (0.0, 1.0)
    nu = 0.1
    left_type = right_type = "periodic"

    @classmethod
    def sample(cls, n: int, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator,
               n_collocation: int = 512):
        """``(params, inputs (n, N), targets (n, T, N), left (n, T), right (n, T))``;
        ``params`` is each sample's conserved total ``int_0^1 u dx`` (the field's exact mean,
        its zeroth Fourier coefficient: a trapezoid sum of ``inputs`` on a coarse ``x``
        aliases the field's high modes)."""
        grid = torch.arange(n_collocation, dtype=torch.float64) / n_collocation
        u0 = gaussian_random_field(n, grid, generator)
        u_hat = solve_burgers_periodic(u0, t, cls.nu)
        inputs = fourier_eval(torch.fft.rfft(u0), n_collocation, x)
        targets = fourier_eval(u_hat, n_collocation, x)
        zeros = torch.zeros(n, t.shape[0], dtype=torch.float64)
        return u0.mean(dim=1), inputs, targets, zeros, zeros.clone()
