"""Quadrature weights for the integral form of a conservation law on a 1-D grid.

The conserved total ``U(t) = int_a^b u(t, x) dx`` of a field sampled at grid points ``x_j`` is
approximated by ``sum_j w_j u(t, x_j)``; one row of weights per time gives the constraint matrix
``G`` of ProbConserv (Hansen et al., ICML 2023, Sec. 3, Eq. 4: "G is a matrix of quadrature
weights").
"""

from __future__ import annotations

import torch

from .._validation import as_float_tensor, check_finite
from .linear import LinearConstraint

__all__ = ["trapezoid_weights", "mass_constraint", "mass_from_fluxes"]


def trapezoid_weights(x) -> torch.Tensor:
    """Trapezoid-rule weights on a sorted, possibly non-uniform 1-D grid.

    ``w_0 = (x_1 - x_0)/2``, ``w_j = (x_{j+1} - x_{j-1})/2``, ``w_{N-1} = (x_{N-1} - x_{N-2})/2``,
    so ``sum_j w_j f(x_j)`` integrates ``f`` over ``[x_0, x_{N-1}]`` with error ``O(h^2)``
    (spectrally accurate for a periodic ``f`` on a uniform grid that spans one period).

    Args:
        x: ``(N,)`` strictly increasing grid, ``N >= 2`` (units of length).

    Returns:
        ``(N,)`` weights in float64 (units of length); they sum to ``x[-1] - x[0]``.

    Raises:
        ValueError: ``x`` not 1-D, fewer than 2 points, not finite, or not strictly increasing.
    """
    x = as_float_tensor("x", x).to(torch.float64)
    if x.dim() != 1 or x.shape[0] < 2:
        raise ValueError(f"x must be a 1-D grid of at least 2 points, got shape {tuple(x.shape)}")
    check_finite("x", x)
    dx = torch.diff(x)
    if bool((dx <= 0).any()):
        index = int(torch.nonzero(dx <= 0)[0])
        raise ValueError(f"x must be strictly increasing; x[{index + 1}] <= x[{index}]")
    w = torch.zeros_like(x)
    w[:-1] += 0.5 * dx
    w[1:] += 0.5 * dx
    return w


def mass_constraint(x, mass, noise_var=0.0) -> LinearConstraint:
    """The conservation constraint ``sum_j w_j u(t, x_j) = U(t)`` on a 1-D grid.

    One constraint row per prediction (``M = 1``), with trapezoid weights of ``x``; the batch
    dims of ``mass`` (e.g. ``(n_functions, n_times)``) index the predictions it applies to.

    Args:
        x: ``(N,)`` strictly increasing grid of the prediction.
        mass: ``(...)`` conserved totals ``U(t)`` (units of ``u`` times length), one per
            prediction; typically ``problem.mass(t)``.
        noise_var: variance of the constraint noise (0: exact conservation).

    Returns:
        :class:`LinearConstraint` with ``G`` of shape ``(1, N)`` and ``b`` of shape ``(..., 1)``.

    Raises:
        ValueError: as :func:`trapezoid_weights` and :class:`LinearConstraint`.
    """
    w = trapezoid_weights(x)
    mass = as_float_tensor("mass", mass).to(torch.float64)
    return LinearConstraint(w.unsqueeze(0), mass.unsqueeze(-1), noise_var=noise_var)


def mass_from_fluxes(initial_mass: float, net_inflow, t, *, rtol: float = 1e-10) -> torch.Tensor:
    """The conserved total from the integral form of the law: ``U(t) = U(0) + int_0^t F(s) ds``.

    For ``u_t + f(u)_x = 0`` on ``[a, b]``, ``dU/dt = f(u(a, t)) - f(u(b, t))``: the net inflow
    through the boundaries. Use this right-hand side for the conservation constraint when
    ``U(t)`` has no closed form (Hansen et al., ICML 2023, Sec. 3: "b" from the boundary
    fluxes). Integrated with adaptive Gauss-Kronrod quadrature (``scipy.integrate.quad``),
    which also copes with integrable singularities at ``s = 0`` such as the Stefan inflow
    ``c1 / sqrt(pi s)``.

    Args:
        initial_mass: ``U(0)`` (units of ``u`` times length).
        net_inflow: callable ``F(s) -> float``, the net inflow rate at time ``s``.
        t: times ``(...)``, ``t >= 0``.
        rtol: relative tolerance of each integral.

    Returns:
        float64 tensor of ``t``'s shape.

    Raises:
        ValueError: negative or non-finite times.
    """
    from scipy.integrate import quad

    t = as_float_tensor("t", t).to(torch.float64)
    check_finite("t", t)
    if bool((t < 0).any()):
        raise ValueError(f"t must be >= 0, got min {float(t.min()):.3g}")
    flat = t.reshape(-1).tolist()
    values = [initial_mass + (quad(lambda s: float(net_inflow(s)), 0.0, ti, epsabs=1e-13,
                                   epsrel=rtol, limit=200)[0] if ti > 0 else 0.0)
              for ti in flat]
    return torch.tensor(values, dtype=torch.float64).reshape(t.shape)
