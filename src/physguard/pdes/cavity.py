r"""Lid-driven cavity: incompressible Navier-Stokes in the unit square (vorticity-stream function).

``u_t + (u . grad) u = -grad p + nu lap u``, ``div u = 0`` on ``[0, 1]^2``; the top wall
``y = 1`` slides at ``U`` in ``+x``, the other walls are at rest (no slip). With
``Re = U L / nu`` (``L = 1``) and the stream function ``psi`` (``u = psi_y``, ``v = -psi_x``),
vorticity ``omega = v_x - u_y``::

    omega_t + u omega_x + v omega_y = (U / Re) lap omega,     lap psi = -omega,  psi = 0 on walls.

Discretisation (second order in space and time on the interior):

* uniform ``n x n`` node grid including the walls, spacing ``h = 1 / (n - 1)``; central
  differences for the advection and the 5-point Laplacian;
* Crank-Nicolson for diffusion, second-order Adams-Bashforth for advection (variable
  step; the first step is forward Euler); the implicit Helmholtz solve
  ``(I - dt nu / 2 lap_h) omega = rhs`` and the Poisson solve ``lap_h psi = -omega`` are
  exact, by type-I sine transforms (``scipy.fft.dstn``), in ``O(n^2 log n)``;
* wall vorticity from Thom's formula ``omega_w = -2 psi_1 / h^2 - 2 U_w / h`` (``psi_1`` the
  stream function one node inside, ``U_w`` the wall's tangential speed along the wall's
  positive direction); the implicit diffusion uses the new level's wall values extrapolated
  linearly from the last two levels, so the scheme is second order in time (measured:
  errors fall 4x per halving of ``dt``, ``tests/test_cavity.py``). Corners do not enter the
  5-point stencil.

Validated in ``tests/test_cavity.py`` against the steady centreline velocities of Ghia, Ghia &
Shin, J. Comput. Phys. 48 (1982) 387-411, Tables I and II, at Re = 100 and 400 on the 129 x 129
grid (within 1 % of the lid speed).

Arrays are indexed ``[i, j] = (x_i, y_j)``: ``x`` along the first axis, ``y`` along the second.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import fft

__all__ = ["LidDrivenCavity", "CavityField", "random_stream_function"]


class CavityField(NamedTuple):
    """A velocity field on the node grid: ``x (n,)``, ``y (n,)``, ``u``, ``v`` of shape
    ``(n, n)`` with ``u[i, j] = u(x_i, y_j)``, in units of the lid speed."""

    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _sine_eigenvalues(m: int, h: float) -> np.ndarray:
    """Eigenvalues of the 1-D Dirichlet second difference on ``m`` interior nodes."""
    k = np.arange(1, m + 1)
    return -4.0 / h**2 * np.sin(np.pi * k / (2 * (m + 1))) ** 2


class LidDrivenCavity:
    """The lid-driven cavity at Reynolds number ``reynolds`` (``Re = U L / nu``, ``L = 1``).

    Args:
        reynolds: ``Re > 0``.
        lid_velocity: ``U``, the speed of the top wall in ``+x`` (length / time), nonzero.

    Raises:
        ValueError: a non-finite or non-positive ``reynolds``, a non-finite or zero
            ``lid_velocity``.
    """

    domain = ((0.0, 1.0), (0.0, 1.0))

    def __init__(self, reynolds: float, lid_velocity: float = 1.0):
        reynolds, lid_velocity = float(reynolds), float(lid_velocity)
        if not (math.isfinite(reynolds) and reynolds > 0):
            raise ValueError(f"reynolds must be finite and > 0, got {reynolds}")
        if not (math.isfinite(lid_velocity) and lid_velocity != 0):
            raise ValueError(f"lid_velocity must be finite and nonzero, got {lid_velocity}")
        self.reynolds, self.lid_velocity = reynolds, lid_velocity
        self.nu = abs(lid_velocity) / reynolds

    def __repr__(self) -> str:
        return f"LidDrivenCavity(reynolds={self.reynolds:g}, lid_velocity={self.lid_velocity:g})"

    # -- the solver ------------------------------------------------------------------------------
    def _grid(self, n_points: int):
        if int(n_points) != n_points or n_points < 5:
            raise ValueError(f"n_points must be an integer >= 5, got {n_points}")
        n = int(n_points)
        h = 1.0 / (n - 1)
        lam = _sine_eigenvalues(n - 2, h)
        return n, h, lam[:, None] + lam[None, :]  # eigenvalues of lap_h on the interior

    def laplacian_eigenvalues(self, n_points: int) -> np.ndarray:
        """Eigenvalues ``(n - 2, n - 2)`` of the 5-point Laplacian on the interior nodes with
        zero wall values (the diagonal of ``lap_h`` in the type-I sine basis)."""
        return self._grid(n_points)[2]

    def stream_function(self, omega: np.ndarray, laplacian: np.ndarray) -> np.ndarray:
        """``psi (n, n)`` with ``lap_h psi = -omega`` inside and ``psi = 0`` on the walls;
        ``laplacian`` from :meth:`laplacian_eigenvalues`."""
        psi = np.zeros_like(omega)
        rhs = fft.dstn(-omega[1:-1, 1:-1], type=1, norm="ortho")
        psi[1:-1, 1:-1] = fft.idstn(rhs / laplacian, type=1, norm="ortho")
        return psi

    def _wall_vorticity(self, omega: np.ndarray, psi: np.ndarray, h: float) -> None:
        omega[0, :] = -2 * psi[1, :] / h**2  # left wall, at rest
        omega[-1, :] = -2 * psi[-2, :] / h**2  # right wall
        omega[:, 0] = -2 * psi[:, 1] / h**2  # bottom wall
        omega[:, -1] = -2 * psi[:, -2] / h**2 - 2 * self.lid_velocity / h  # lid: u = U

    @staticmethod
    def _advection(omega: np.ndarray, psi: np.ndarray, h: float) -> np.ndarray:
        """``u omega_x + v omega_y`` on the interior, central differences."""
        u = (psi[1:-1, 2:] - psi[1:-1, :-2]) / (2 * h)
        v = -(psi[2:, 1:-1] - psi[:-2, 1:-1]) / (2 * h)
        w_x = (omega[2:, 1:-1] - omega[:-2, 1:-1]) / (2 * h)
        w_y = (omega[1:-1, 2:] - omega[1:-1, :-2]) / (2 * h)
        return u * w_x + v * w_y

    @staticmethod
    def _laplacian(omega: np.ndarray, h: float) -> np.ndarray:
        return (omega[2:, 1:-1] + omega[:-2, 1:-1] + omega[1:-1, 2:] + omega[1:-1, :-2]
                - 4 * omega[1:-1, 1:-1]) / h**2

    #: Stability limits of the two time-stepping variants, measured
    #: (``benchmarks/cavity_stability.py``, ``benchmarks/results/cavity_stability.md``): the
    #: diffusion number ``nu dt / h^2`` (sharp: stable at 0.50, blown up at 0.52 for Re 10 to
    #: 100 on 33 to 129 nodes with the wall vorticity extrapolated; lagged: converged at 0.5,
    #: no steady state by t = 30 at 1.0, blown up at 1.6) and the advective CFL number
    #: ``speed dt / h`` (stable at 1.0, blown up at 1.25 to 1.5 for Re 400 to 5000).
    #: Crank-Nicolson alone is unconditionally stable; the explicit wall vorticity (Thom's
    #: formula, whose time stepping E & Liu, J. Comput. Phys. 124 (1996) 368-382, analyse)
    #: and the explicit AB2 advection set them.
    LIMITS = {"extrapolated": {"diffusion": 0.5, "cfl": 1.0},
              "lagged": {"diffusion": 0.5, "cfl": 1.0}}
    #: The default step's share of each limit.
    SAFETY = {"diffusion": 0.8, "cfl": 0.5}

    def time_step(self, n_points: int, dt: float | None = None, speed: float | None = None,
                  scheme: str = "extrapolated") -> float:
        """The step for a grid of ``n_points`` nodes per side: ``dt`` if given and within the
        scheme's stability limits (:attr:`LIMITS`), else the default
        ``min(0.8 D_max h^2 / nu, 0.5 h / speed)``: 80 % of the diffusion-number limit and
        CFL 0.5 (``speed``: the largest of the lid speed and the initial flow's).

        ``scheme``: ``"extrapolated"`` (:meth:`simulate`, second order in time) or
        ``"lagged"`` (:meth:`steady_state`).

        Raises:
            ValueError: a non-finite or non-positive ``dt``, or one beyond a limit (the
                message gives the limit and the largest stable step).
        """
        limits = self.LIMITS[scheme]
        h = 1.0 / (n_points - 1)
        speed = max(abs(self.lid_velocity), float(speed or 0.0))
        largest = min(limits["diffusion"] * h**2 / self.nu, limits["cfl"] * h / speed)
        if dt is None:
            return min(self.SAFETY["diffusion"] * limits["diffusion"] * h**2 / self.nu,
                       self.SAFETY["cfl"] * limits["cfl"] * h / speed)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be finite and > 0, got {dt}")
        diffusion, cfl = self.nu * dt / h**2, speed * dt / h
        if diffusion > limits["diffusion"] or cfl > limits["cfl"]:
            raise ValueError(
                f"dt = {dt:g} is beyond the scheme's stability limits on {n_points} nodes at "
                f"Re {self.reynolds:g}: diffusion number nu dt / h^2 = {diffusion:.3g} (limit "
                f"{limits['diffusion']:g}), CFL speed dt / h = {cfl:.3g} (limit "
                f"{limits['cfl']:g}); the largest stable step is {largest:.4g}, the default "
                f"{self.time_step(n_points, None, speed, scheme):.4g}")
        return float(dt)

    def simulate(self, n_points: int, times, psi0: np.ndarray | None = None,
                 dt: float | None = None) -> np.ndarray:
        """Vorticity snapshots ``omega (len(times), n, n)`` at ``times`` from ``psi0``.

        Args:
            n_points: ``n``, nodes per side (walls included).
            times: increasing times ``>= 0`` (units of ``L / U``) at which to store the field.
            psi0: initial stream function ``(n, n)`` (zero with zero normal derivative on the
                walls for a no-slip start); default rest, ``psi0 = 0``.
            dt: time step (default :meth:`time_step`, from the scheme's stability limits; a
                larger one is refused before the solve); the last step before each stored
                time is shortened to land on it.

        Raises:
            ValueError: bad ``n_points``, ``times`` not increasing / negative / non-finite,
                ``psi0`` of the wrong shape or non-finite, a ``dt`` beyond the stability
                limits, or a blown-up solution (the check stays on).
        """
        n, h, lap = self._grid(n_points)
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if times.size == 0 or not np.all(np.isfinite(times)) or times[0] < 0 \
                or np.any(np.diff(times) <= 0):
            raise ValueError(f"times must be finite, >= 0 and increasing, got {times}")
        psi = np.zeros((n, n)) if psi0 is None else np.asarray(psi0, dtype=np.float64)
        if psi.shape != (n, n) or not np.all(np.isfinite(psi)):
            raise ValueError(f"psi0 must be a finite ({n}, {n}) array, got {psi.shape}")
        omega = np.zeros((n, n))
        omega[1:-1, 1:-1] = -self._laplacian(psi, h)
        psi = self.stream_function(omega, lap)
        self._wall_vorticity(omega, psi, h)
        u, v = self.velocity(psi)
        step = self.time_step(n, dt, speed=float(np.hypot(u, v).max()) * abs(self.lid_velocity))
        out = np.empty((times.size, n, n))
        t, previous = 0.0, None
        for k, t_stop in enumerate(times):
            while t < t_stop - 1e-12 * max(1.0, t_stop):
                tau = min(step, t_stop - t)
                with np.errstate(over="ignore", invalid="ignore"):
                    omega, previous = self._step(omega, psi, previous, tau, h, lap)
                if not np.all(np.isfinite(omega)):
                    raise ValueError(f"the solution blew up at t = {t:.4g}; use a smaller dt")
                psi = self.stream_function(omega, lap)
                self._wall_vorticity(omega, psi, h)
                t += tau
            out[k] = omega
        return out

    def _step(self, omega, psi, history, tau, h, lap, extrapolate: bool = True):
        """One step; ``history`` is ``None`` or ``(advection, omega, tau)`` of the last step.

        Variable-step AB2 for the advection, and the wall vorticity of the new level
        extrapolated linearly from the last two levels, so the step is second order in time
        (the first step is forward Euler with the current wall values). ``extrapolate=False``
        lags the wall values instead: first order in time but stable for larger steps; the
        steady state, where both agree, is marched so."""
        nu = self.nu
        advection = self._advection(omega, psi, h)
        walls = omega.copy()
        if history is None:
            explicit = advection
        else:
            old_advection, old_omega, old_tau = history
            r = tau / old_tau
            explicit = (1 + 0.5 * r) * advection - 0.5 * r * old_advection
            if extrapolate:
                walls = omega + r * (omega - old_omega)  # only its wall values are used
        # (I - tau nu / 2 lap_h) omega+ = omega + tau nu / 2 lap_h omega - tau N, with the new
        # wall values moved to the right-hand side.
        rhs = omega[1:-1, 1:-1] + 0.5 * tau * nu * self._laplacian(omega, h) - tau * explicit
        boundary = np.zeros_like(rhs)
        boundary[0, :] += walls[0, 1:-1]
        boundary[-1, :] += walls[-1, 1:-1]
        boundary[:, 0] += walls[1:-1, 0]
        boundary[:, -1] += walls[1:-1, -1]
        rhs = rhs + 0.5 * tau * nu * boundary / h**2
        solved = fft.idstn(fft.dstn(rhs, type=1, norm="ortho") / (1 - 0.5 * tau * nu * lap),
                           type=1, norm="ortho")
        new = omega.copy()
        new[1:-1, 1:-1] = solved
        return new, (advection, omega, tau)

    # -- derived fields --------------------------------------------------------------------------
    def velocity(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(u, v)`` from the stream function (central differences inside; the walls carry
        the no-slip values and the lid speed), in units of the lid speed."""
        n = psi.shape[0]
        h = 1.0 / (n - 1)
        u = np.zeros_like(psi)
        v = np.zeros_like(psi)
        u[1:-1, 1:-1] = (psi[1:-1, 2:] - psi[1:-1, :-2]) / (2 * h)
        v[1:-1, 1:-1] = -(psi[2:, 1:-1] - psi[:-2, 1:-1]) / (2 * h)
        u[:, -1] = self.lid_velocity
        u[0, -1] = u[-1, -1] = 0.0  # corners: the fixed walls' no-slip value
        return u / self.lid_velocity, v / self.lid_velocity

    def steady_state(self, n_points: int, tol: float = 1e-7, max_time: float = 400.0,
                     dt: float | None = None) -> CavityField:
        """The converged steady flow on an ``n x n`` node grid.

        Marches from rest until the largest change of the vorticity per unit time, relative
        to its largest value, falls below ``tol``.

        Returns:
            :class:`CavityField` ``(x, y, u, v)``, velocities in units of the lid speed.

        Raises:
            ValueError: no convergence by ``max_time`` (the message gives the last rate).
        """
        n, h, lap = self._grid(n_points)
        step = self.time_step(n, dt, scheme="lagged")
        omega = np.zeros((n, n))
        psi = np.zeros((n, n))
        self._wall_vorticity(omega, psi, h)
        previous, t, rate = None, 0.0, math.inf
        check = max(1, int(round(1.0 / step)))  # test convergence once per unit of time
        k = 0
        while t < max_time:
            with np.errstate(over="ignore", invalid="ignore"):
                new, previous = self._step(omega, psi, previous, step, h, lap,
                                           extrapolate=False)
            psi = self.stream_function(new, lap)
            self._wall_vorticity(new, psi, h)
            k += 1
            t += step
            if k % check == 0:
                rate = np.abs(new - omega).max() / step / max(np.abs(new).max(), 1e-300)
                if not np.isfinite(rate):
                    raise ValueError("the solution blew up; use a smaller dt")
                if rate < tol:
                    omega = new
                    break
            omega = new
        else:
            raise ValueError(f"no steady state by t = {max_time:g} (relative rate {rate:.2e})")
        x = np.linspace(0.0, 1.0, n)
        return CavityField(x, x.copy(), *self.velocity(psi))


def random_stream_function(n_points: int, n_modes: int, amplitude: float,
                           rng: np.random.Generator) -> np.ndarray:
    """A smooth random stream function with ``psi = d psi / dn = 0`` on the walls.

    ``psi = (x (1 - x) y (1 - y))^2 sum_{k, l < n_modes} c_kl sin(pi (k + 1) x) ...`` with
    ``c_kl ~ N(0, 1) / (k + l + 1)^2``, scaled so that the largest speed is ``amplitude``:
    a divergence-free, no-slip initial velocity (the documented choice of
    ``shared/reference/two_d.md``: samples differ by their initial condition).
    """
    x = np.linspace(0.0, 1.0, n_points)
    bump = (x * (1 - x)) ** 2
    k = np.arange(n_modes)
    coeff = rng.standard_normal((n_modes, n_modes)) / (k[:, None] + k[None, :] + 1.0) ** 2
    sines = np.sin(np.pi * np.outer(x, k + 1))  # (n, modes)
    psi = bump[:, None] * bump[None, :] * (sines @ coeff @ sines.T)
    h = x[1] - x[0]
    speed = np.hypot(*np.gradient(psi, h))
    return psi * (amplitude / max(speed.max(), 1e-300))
