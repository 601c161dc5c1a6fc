"""Common interface of the generalized porous medium equation (GPME) problems.

The GPME family of ProbConserv (Hansen et al., ICML 2023, Sec. 4 and App. B):
``u_t = (k(u) u_x)_x`` on ``x in [a, b]``, ``t in [0, T]``, with conserved total
``U(t) = int_a^b u(t, x) dx`` whose time derivative is the net boundary flux.
Each problem is a small object holding its one parameter; class attributes carry the paper's
domain, time range, training parameter range, test parameters and time of interest ``t*``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from .._validation import as_float_tensor, check_finite, check_in_domain, check_times

__all__ = ["ConservationProblem", "GPMEProblem"]


class ConservationProblem(ABC):
    """A 1-D conservation law with a closed-form solution and a closed-form conserved total.

    Class attributes:
        name: short name used by the CLI (``"stefan"``).
        parameter_name: the standard symbol of the varied parameter (``"k"``, ``"m"``, ``"p*"``).
        domain: ``(a, b)``, the spatial interval (dimensionless length).
        t_range: ``(0, T)``, the time interval (dimensionless time).
        train_range: ``(lo, hi)``, the paper's uniform training distribution of the parameter.
        test_params: the paper's test parameter values.
        t_star: the paper's time of interest for the tables.
        has_shock: whether the solution has a moving front (``shock_position`` is defined).
        nonnegative: whether every solution satisfies ``u >= 0`` (so the non-negativity QP of
            :func:`physguard.nonnegative` applies).
    """

    name: ClassVar[str]
    parameter_name: ClassVar[str]
    domain: ClassVar[tuple[float, float]]
    t_range: ClassVar[tuple[float, float]]
    train_range: ClassVar[tuple[float, float]]
    test_params: ClassVar[tuple[float, ...]]
    t_star: ClassVar[float]
    has_shock: ClassVar[bool] = False
    nonnegative: ClassVar[bool] = True

    def __init__(self, parameter: float):
        parameter = float(parameter)
        if not math.isfinite(parameter):
            raise ValueError(f"{self.parameter_name} must be finite, got {parameter}")
        self._check_parameter(parameter)
        self.parameter = parameter

    @abstractmethod
    def _check_parameter(self, value: float) -> None:
        """Raise ``ValueError`` for a parameter outside the problem's admissible set."""

    @abstractmethod
    def _solution(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def _mass(self, t: torch.Tensor) -> torch.Tensor: ...

    def solution(self, t, x) -> torch.Tensor:
        """The exact solution ``u(t, x)``.

        Args:
            t: times (any shape, broadcast against ``x``), ``t >= 0``.
            x: positions (any shape), inside ``domain``.

        Returns:
            float64 tensor of the broadcast shape of ``t`` and ``x``.

        Raises:
            ValueError: NaN/inf, negative times, positions outside ``domain`` (the closed
                forms are not extrapolated), or shapes that do not broadcast.
        """
        t = self._times(t)
        x = as_float_tensor("x", x).to(torch.float64)
        check_finite("x", x)
        check_in_domain("x", x, self.domain, self)
        try:
            t, x = torch.broadcast_tensors(t, x)
        except RuntimeError as err:
            raise ValueError(
                f"t {tuple(t.shape)} and x {tuple(x.shape)} do not broadcast"
            ) from err
        return self._solution(t, x)

    def mass(self, t) -> torch.Tensor:
        """The conserved total ``U(t) = int_a^b u(t, x) dx`` from its closed form.

        Args:
            t: times (any shape), ``t >= 0``.

        Returns:
            float64 tensor of ``t``'s shape (units of ``u`` times length).

        Raises:
            ValueError: NaN/inf or negative times, or times where the closed form does not hold.
        """
        return self._mass(self._times(t))

    def net_inflow(self, t: float) -> float:
        """``dU/dt``: the flux in through the left end minus the flux out at the right end.

        Written from the boundary values of the solution, independently of ``mass``, so that
        :func:`physguard.mass_from_fluxes` gives a second route to the constraint's ``b(t)``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not state its boundary fluxes")

    def shock_position(self, t) -> torch.Tensor:
        """The position of the moving front ``x*(t)`` (problems with ``has_shock`` only)."""
        raise NotImplementedError(f"{type(self).__name__} has no moving front")

    def jump_level(self, t: float) -> float | None:
        """The middle of the front's jump in ``u`` at time ``t`` (units of ``u``), or ``None``.

        Where the front at ``t`` is a jump between two known states inside the domain
        (Stefan: ``p*`` to 0; the advected step: 1 to 0; Burgers once the shock has formed:
        ``a`` to 0), its midpoint; the shock-position task then reads each sampled profile
        with :func:`physguard.metrics.step_front_position` at that level. ``None`` (the
        default: a front where ``u`` falls continuously to 0, as for the porous medium
        equation and Burgers before the shock) keeps the paper's rule, the first grid point
        with ``u <= 0`` (:func:`physguard.metrics.front_position`).
        """
        return None

    _times = staticmethod(check_times)

    @staticmethod
    @abstractmethod
    def flux(u: torch.Tensor, u_x: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        """The flux ``F`` of the differential form ``u_t + F(u, u_x)_x = 0``.

        Vectorised over the parameter (one value per point or broadcastable), so a physics
        penalty can evaluate the residual of many functions at once (SoftC, Hansen et al. 2023,
        Sec. 4). Units of ``u`` times length per time.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.parameter_name}={self.parameter:g})"


class GPMEProblem(ConservationProblem):
    """A generalized porous medium equation ``u_t = (k(u) u_x)_x`` (ProbConserv Sec. 4)."""

    def conductivity(self, u: torch.Tensor) -> torch.Tensor:
        """The diffusion coefficient ``k(u)`` of ``u_t = (k(u) u_x)_x``, same shape as ``u``."""
        return self.conductivity_of(u, torch.as_tensor(self.parameter, dtype=u.dtype))

    @staticmethod
    @abstractmethod
    def conductivity_of(u: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        """``k(u)`` for parameter values ``param`` broadcastable against ``u``."""

    @classmethod
    def flux(cls, u, u_x, param):
        """Fick's / Fourier's law ``F = -k(u) u_x``."""
        return -cls.conductivity_of(u, param) * u_x
