r"""Linear 2-D problems with exact separable series solutions: the wave and heat equations.

Both live on the rectangle ``[0, Lx] x [0, Ly]``; their solutions are finite double series of
one-dimensional eigenfunctions of ``d^2/dx^2`` that satisfy each wall's condition exactly:

===========  ==========================================  ===========================
condition    basis on ``[0, L]``, ``k = 0, 1, ...``       eigenvalue of ``d^2/dx^2``
===========  ==========================================  ===========================
Dirichlet    ``sin((k + 1) pi x / L)``                    ``-((k + 1) pi / L)^2``
Neumann      ``cos(k pi x / L)``                          ``-(k pi / L)^2``
periodic     ``1, cos(2 pi x / L), sin(2 pi x / L), ...``  ``-(2 pi ceil(k / 2) / L)^2``
===========  ==========================================  ===========================

(homogeneous conditions: ``u = 0``; ``du/dn = 0``; ``u(0) = u(L)`` with all derivatives).

* :class:`Wave2d`: ``u_tt = c^2 (u_xx + u_yy)``, Neumann walls, ``u_t(x, y, 0) = 0``, so
  ``u = sum a_mn cos(m pi x / Lx) cos(n pi y / Ly) cos(c sqrt(lambda_mn) t)``. The total
  ``int u dx dy = Lx Ly a_00`` is constant in time (insulated walls, zero initial velocity;
  ``shared/reference/two_d.md``). The 2-D wave problem that BOON (Saad et al., ICLR 2023,
  Sec. 4.2.2) names; the authors released no data for it, so the setting is ours.
* :class:`Heat2d`: ``u_t = kappa (u_xx + u_yy)`` with any condition type per axis:
  ``u = sum a_mn phi_m(x) psi_n(y) exp(kappa (lambda_m + mu_n) t)``; the exact reference
  for BOON's 2-D walls.

Coordinates: ``solution(t, x, y)`` broadcasts its three arguments; all in float64.
"""

from __future__ import annotations

import math

import torch

from .._validation import as_float_tensor, check_finite, check_in_domain, check_times

__all__ = ["Wave2d", "Heat2d", "series_basis"]

_KINDS = ("dirichlet", "neumann", "periodic")


def series_basis(kind: str, n_terms: int, x: torch.Tensor, length: float):
    """``(phi (..., n_terms), eigenvalues (n_terms,))`` of the table in the module docstring."""
    if kind not in _KINDS:
        raise ValueError(f"condition kind must be one of {_KINDS}, got {kind!r}")
    k = torch.arange(n_terms, dtype=torch.float64)
    arg = x.unsqueeze(-1) / length
    if kind == "dirichlet":
        wave = (k + 1) * math.pi
        return torch.sin(wave * arg), -wave**2 / length**2
    if kind == "neumann":
        wave = k * math.pi
        return torch.cos(wave * arg), -wave**2 / length**2
    wave = 2 * math.pi * torch.ceil(k / 2)
    phi = torch.where(k % 2 == 1, torch.cos(wave * arg), torch.sin(wave * arg))
    phi = torch.where(k == 0, torch.ones_like(phi), phi)
    return phi, -wave**2 / length**2


def _coefficients(coefficients) -> torch.Tensor:
    a = as_float_tensor("coefficients", coefficients).to(torch.float64)
    if a.dim() != 2 or 0 in a.shape:
        raise ValueError(f"coefficients must be a non-empty (M, N) matrix, got {tuple(a.shape)}")
    check_finite("coefficients", a)
    return a


def _lengths(lengths) -> tuple[float, float]:
    lx, ly = (float(v) for v in lengths)
    if not all(math.isfinite(v) and v > 0 for v in (lx, ly)):
        raise ValueError(f"lengths must be finite and > 0, got {lengths}")
    return lx, ly


def _random_coefficients(n_modes: int, decay: float, generator: torch.Generator):
    if n_modes < 1:
        raise ValueError(f"n_modes must be >= 1, got {n_modes}")
    k = torch.arange(n_modes, dtype=torch.float64)
    scale = (1.0 + k[:, None] ** 2 + k[None, :] ** 2) ** (-decay / 2)
    return scale * torch.randn(n_modes, n_modes, generator=generator, dtype=torch.float64)


class _SeriesProblem:
    """Shared parts: domain, argument checks, the separable sum at given time factors."""

    kinds: tuple[str, str]

    def __init__(self, coefficients, lengths=(1.0, 1.0)):
        self.coefficients = _coefficients(coefficients)
        self.lengths = _lengths(lengths)

    @property
    def domain(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((0, Lx), (0, Ly))``."""
        return (0.0, self.lengths[0]), (0.0, self.lengths[1])

    def _bases(self, x, y):
        x = as_float_tensor("x", x).to(torch.float64)
        y = as_float_tensor("y", y).to(torch.float64)
        check_finite("x", x)
        check_finite("y", y)
        check_in_domain("x", x, self.domain[0], self)
        check_in_domain("y", y, self.domain[1], self)
        m, n = self.coefficients.shape
        phi, lam = series_basis(self.kinds[0], m, x, self.lengths[0])
        psi, mu = series_basis(self.kinds[1], n, y, self.lengths[1])
        return phi, psi, lam[:, None] + mu[None, :]

    _times = staticmethod(check_times)

    def _sum(self, t, x, y, time_factor) -> torch.Tensor:
        t = self._times(t)
        phi, psi, eig = self._bases(x, y)
        try:
            shape = torch.broadcast_shapes(t.shape, phi.shape[:-1], psi.shape[:-1])
        except RuntimeError as err:
            raise ValueError(f"t {tuple(t.shape)}, x {tuple(phi.shape[:-1])} and y "
                             f"{tuple(psi.shape[:-1])} do not broadcast") from err
        phi = phi.expand(*shape, phi.shape[-1])
        psi = psi.expand(*shape, psi.shape[-1])
        weights = self.coefficients * time_factor(t.expand(shape)[..., None, None], eig)
        return torch.einsum("...m,...mn,...n->...", phi, weights, psi)


class Wave2d(_SeriesProblem):
    """``u_tt = c^2 (u_xx + u_yy)`` with Neumann walls and ``u_t(x, y, 0) = 0``.

    Args:
        coefficients: ``a (M, N)``, the cosine coefficients of ``u(x, y, 0)``.
        speed: ``c > 0`` (length / time).
        lengths: ``(Lx, Ly)``.

    Raises:
        ValueError: a non-finite or empty coefficient matrix, non-positive speed or lengths,
            and (from the methods) points outside the rectangle, negative times.
    """

    kinds = ("neumann", "neumann")

    def __init__(self, coefficients, speed: float = 1.0, lengths=(1.0, 1.0)):
        super().__init__(coefficients, lengths)
        speed = float(speed)
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be finite and > 0, got {speed}")
        self.speed = speed

    @classmethod
    def random(cls, n_modes: int = 6, decay: float = 2.0, speed: float = 1.0,
               lengths=(1.0, 1.0), generator: torch.Generator | None = None) -> Wave2d:
        """Random initial data: ``a_mn ~ N(0, (1 + m^2 + n^2)^-decay)`` (smooth for
        ``decay > 1``), ``n_modes`` per axis."""
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return cls(_random_coefficients(n_modes, decay, generator), speed, lengths)

    def solution(self, t, x, y) -> torch.Tensor:
        """``u(t, x, y)``, float64, the broadcast shape of ``t``, ``x``, ``y``."""
        c = self.speed
        return self._sum(t, x, y, lambda t, eig: torch.cos(c * torch.sqrt(-eig) * t))

    def mass(self, t) -> torch.Tensor:
        """``int u dx dy = Lx Ly a_00``, the same at every time ``t`` (shape of ``t``)."""
        t = self._times(t)
        lx, ly = self.lengths
        return torch.full_like(t, lx * ly * float(self.coefficients[0, 0]))

    def __repr__(self) -> str:
        return (f"Wave2d({tuple(self.coefficients.shape)} modes, c={self.speed:g}, "
                f"L={self.lengths})")


class Heat2d(_SeriesProblem):
    """``u_t = kappa (u_xx + u_yy)`` with a homogeneous condition type per axis.

    Args:
        coefficients: ``a (M, N)`` in the bases of ``kind_x`` and ``kind_y``.
        kind_x, kind_y: ``"dirichlet"``, ``"neumann"`` or ``"periodic"`` (both walls of the
            axis).
        kappa: diffusivity ``> 0`` (length^2 / time).
        lengths: ``(Lx, Ly)``.

    Raises:
        ValueError: an unknown kind, bad coefficients, ``kappa`` or lengths.
    """

    def __init__(self, coefficients, kind_x: str = "dirichlet", kind_y: str = "dirichlet",
                 kappa: float = 0.01, lengths=(1.0, 1.0)):
        super().__init__(coefficients, lengths)
        for kind in (kind_x, kind_y):
            if kind not in _KINDS:
                raise ValueError(f"condition kind must be one of {_KINDS}, got {kind!r}")
        kappa = float(kappa)
        if not (math.isfinite(kappa) and kappa > 0):
            raise ValueError(f"kappa must be finite and > 0, got {kappa}")
        self.kinds = (kind_x, kind_y)
        self.kappa = kappa

    @classmethod
    def random(cls, kind_x: str = "dirichlet", kind_y: str = "dirichlet", n_modes: int = 6,
               decay: float = 2.0, kappa: float = 0.01, lengths=(1.0, 1.0),
               generator: torch.Generator | None = None) -> Heat2d:
        """Random coefficients ``a_mn ~ N(0, (1 + m^2 + n^2)^-decay)``."""
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return cls(_random_coefficients(n_modes, decay, generator), kind_x, kind_y, kappa,
                   lengths)

    def solution(self, t, x, y) -> torch.Tensor:
        """``u(t, x, y)``, float64, the broadcast shape of ``t``, ``x``, ``y``."""
        kappa = self.kappa
        return self._sum(t, x, y, lambda t, eig: torch.exp(kappa * eig * t))

    def __repr__(self) -> str:
        return (f"Heat2d({tuple(self.coefficients.shape)} modes, {self.kinds[0]} x "
                f"{self.kinds[1]}, kappa={self.kappa:g})")
