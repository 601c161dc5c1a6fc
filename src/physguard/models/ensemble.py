"""Deep ensembles of neural operators as Gaussian predictions on the grid.

``M`` operators of the same architecture, trained from independent initialisations on the
same data (Lakshminarayanan et al., NeurIPS 2017, "Simple and scalable predictive uncertainty
estimation using deep ensembles"), predict ``u^(1..M)`` on the grid. Their prediction of one
sample and one output channel (time step) is the Gaussian::

    mean  = (1/M) sum_m u^(m)
    Sigma = diag(noise_var + local_scale v + uniform_scale mean(v)) + spread_scale U U^T,
    U = w [u^(1) - mean, ..., u^(M) - mean] / sqrt(M - 1),   v = diag(U U^T),
    w = (mean(v_0) / reference_var) ** (spread_power / 2)

(``v_0``: the members' variance before the factor ``w``, ``mean`` over the grid of that sample
and channel), a :class:`~physguard.constraints.LowRankPlusDiagonal` of rank ``M`` (the members'
sample covariance, scaled, plus a diagonal), so the ProbConserv update stays ``O(N M^2)`` per
constraint set. ``v`` is the members' pointwise variance: the diagonal part can carry the
members' uncertainty *locally* (point by point) as well as coherently (along ``U``).

**The diagonal part.** The members' spread has rank ``M - 1`` and is zero wherever the members
agree: exactly zero on BOON members' Dirichlet walls, and nearly zero wherever they learned the
same thing, right or wrong. A Gaussian with that covariance alone is singular and overconfident.
``noise_var`` (and ``spread_scale``) are therefore *fitted*, per output channel, by maximising
the pointwise Gaussian log-likelihood of held-out samples (:meth:`OperatorEnsemble.calibrate`):
``max_{a, s2} sum log N(u_true | mean, a var_members + s2)`` over the calibration samples and
grid points, a two-parameter smooth problem (L-BFGS-B on ``log a``, ``log s2``). Nothing is a
constant chosen by hand; the calibration samples must not be the test samples. Unconditioned,
only ``spread_scale + local_scale`` matters pointwise, so ``local_scale = uniform_scale = 0``
there.

**Calibrating the conditioned prediction.** Conditioning on ``K`` constraint rows removes up to
``K`` of the spread's ``M - 1`` directions, so parameters fitted for the unconstrained
Gaussian can leave a conditioned one with almost no variance (measured: coverage of the 90 %
interval below 1 % with 2 members). When a constraint is given, the parameters are fitted by
maximum likelihood of the *conditioned* Gaussian instead (the ProbConserv update is
differentiable: L-BFGS per channel, started from the unconstrained fit): the model is
calibrated as it is used.

**How the variance grows out of range: the spread power ``gamma``.** A deep ensemble's spread
grows out of range, but slower than its error: on the heat-neumann ``--uq`` BOON members
(omega 4.04 .. 5.96 against the training range 2 .. 4) the squared error over the members'
variance is about 1.3 in range and 10.7 out of range. A variance proportional to ``v`` fitted in
range therefore covers about 0.4-0.6 of the points out of range at a nominal 0.9 (issue 26).
The factor ``w`` lets the variance grow as ``mean(v) ** (1 + gamma)`` instead; ``gamma`` is
chosen from :data:`SPREAD_POWERS` by the likelihood of held-out samples, and can only be learned
from samples that reach a larger spread than the training data: ``physguard run --uq`` adds
calibration samples *outside* the training range, on the other side from the out-of-range
test samples (heat-neumann: omega 1.01 .. 1.99, test 4.04 .. 5.96), so the fit never sees the
test range. Measured on those members (``benchmarks/results/uq_calibration.md``): ``gamma =
1`` is chosen for the BOON ensembles and 0.5 for the FNO ones; ProbConserv-BOON's coverage of
the 90 % interval is 0.917 in range and 0.860 out of range (0.292 with the in-range fit alone,
``gamma = 0`` and the pointwise prior ``b v``); on seeds 1 and 2 it over-covers, 0.972 / 0.989
and 0.949 / 0.979 (``benchmarks/results/uq_heat_neumann.md``).
What is left is the per-sample error magnitude: with the error's true magnitude per sample and
step (an oracle) the same shape covers 0.93 in and out of range, and the members' spread
predicts that magnitude only loosely out of range (ratio 3.7 .. 21 over samples).

**Which prior is conditioned: the same variance at every point by default.** The update moves
the mean along ``Sigma G^T``. With the members' spread ``a U U^T`` in ``Sigma`` it moves the mean
where the members disagree, in the shape of their deviations. In range those resemble the
error; out of range they do not: on the heat-neumann ``--uq`` members the deviations' integral
relative to their norm falls from 0.44 in range to 0.28 out of range while the error's stays at
0.39-0.44, so a mass correction along ``U`` must be large and lands off the error, and the
conditioned ensemble became worse than the unconditioned one out of range in one run and better
in another (issue 26). A pointwise ``b v`` does the same in a milder form. With an isotropic
prior the update is instead the Euclidean projection of the mean onto the affine set of fields
that meet the rows; the truth lies in that set (up to the rows' discretisation error), so the
conditioned mean is never farther from it in L2, however wrong the model (Pythagoras). The
conditioned prior is therefore, by default,

    Sigma = diag(noise_var + uniform_scale mean(v)),   spread_scale = local_scale = 0,

with ``noise_var``, ``c = spread_scale`` and ``gamma`` those of the *unconditioned* fit
(:func:`isotropic_prior`): the calibrated pointwise variance, spread evenly over the grid, and
nothing refitted after conditioning. ``c mean(v)`` grows with the ensemble's overall spread (to
the power ``1 + gamma``), so it grows out of range. A refit of ``(s2, c)`` by the conditioned
likelihood (``refit=True``; ``local=True`` fits ``b`` too, ``spread=True`` the spread ``a``)
fits the calibration samples better and extrapolates worse: at some steps it puts the variance
in the constant ``s2``. Measured on new draws (``benchmarks/results/uq_conditioned_prior.md``),
ProbConserv-BOON against BOON-Ensemble out of range, LL / coverage90: Stokes 0.20 / 0.85
inherited, -0.83 / 0.73 refitted, against 0.46 / 0.86; heat-neumann 0.66 / 0.86 inherited,
0.38 / 0.74 refitted, against -0.01 / 0.75. Sparse rows (the cavity's divergence) keep the
unconditioned shape, spread included, times one fitted factor (:func:`fit_ensemble_noise`).

**Wall points of a BOON ensemble** (:func:`uninformative_at`): a BOON member sets its Dirichlet
and Neumann wall values from its interior, so the BOON ensembles' prior is given an
uninformative variance at those points before conditioning (``physguard run --uq``), and the
wall rows then set them from the interior without shrinking the interior's variance (the limit
of an infinite prior variance there). An FNO member predicts its walls, so the FNO ensembles
keep their fitted variance there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..constraints.gaussian import DiagonalCovariance, Gaussian, LowRankPlusDiagonal

__all__ = ["EnsembleNoise", "OperatorEnsemble", "SPREAD_POWERS", "ensemble_gaussian",
           "fit_ensemble_noise", "isotropic_prior", "uninformative_at"]


class EnsembleNoise(NamedTuple):
    """The fitted covariance parameters, each ``(C,)`` float64, in the order
    :func:`ensemble_gaussian` takes them (``ensemble_gaussian(samples, *fitted)``);
    ``spread_power`` and ``reference_var`` default to the members' covariance unwarped."""

    noise_var: torch.Tensor
    spread_scale: torch.Tensor
    local_scale: torch.Tensor
    uniform_scale: torch.Tensor
    spread_power: torch.Tensor | float = 0.0
    reference_var: torch.Tensor | float = 1.0

#: The exponents ``gamma`` that :func:`fit_ensemble_noise` chooses from by the held-out
#: likelihood (0: the members' covariance as it is).
SPREAD_POWERS = (0.0, 0.5, 1.0, 1.5, 2.0)

#: Bounds of the fitted parameters (log scale) relative to the data: keeps the optimiser
#: finite when a channel has zero spread or zero residual.
_LOG_BOUNDS = (-60.0, 20.0)

#: Members' variance and squared error both below this fraction of the mean squared error:
#: an exactly known point (left out of the noise fit, see :func:`fit_ensemble_noise`).
_EXACT = 1e-24


def _flat(samples: torch.Tensor) -> torch.Tensor:
    """``(M, B, C, *space) -> (M, B, C, N)`` (row-major over the space axes)."""
    if samples.dim() < 4:
        raise ValueError(f"member outputs must have shape (M, B, C, *space), got "
                         f"{tuple(samples.shape)}")
    return samples.flatten(3)


def ensemble_gaussian(samples: torch.Tensor, noise_var, spread_scale=1.0,
                      local_scale=0.0, uniform_scale=0.0, spread_power=0.0,
                      reference_var=1.0) -> Gaussian:
    """The ensemble's Gaussian prediction from member outputs.

    Args:
        samples: ``(M, B, C, *space)`` member outputs, ``M >= 2`` (``C``: output channels or
            time steps; ``space``: ``(N,)`` or ``(Nx, Ny)``).
        noise_var: the diagonal part, a scalar or ``(C,)`` (units of ``u^2``), ``> 0``.
        spread_scale: the factor ``a`` of the members' covariance, a scalar or ``(C,)``,
            ``>= 0``.
        local_scale: the factor ``b`` of the members' pointwise variance added to the
            diagonal, a scalar or ``(C,)``, ``>= 0``.
        uniform_scale: the factor ``c`` of the members' mean variance over the grid (of each
            sample and channel) added at every point, a scalar or ``(C,)``, ``>= 0``.
        spread_power: the exponent ``gamma`` of the spread's growth (module docstring): the
            members' deviations of a sample and channel are scaled by
            ``(mean(v) / reference_var) ** (gamma / 2)`` before the rest, so their variance
            grows as ``mean(v) ** (1 + gamma)``; a scalar or ``(C,)``, ``>= 0``; 0: unchanged.
        reference_var: the members' mean variance at which that scaling is 1 (units of
            ``u^2``), a scalar or ``(C,)``, ``> 0``.

    Returns:
        :class:`Gaussian` with batch shape ``(B, C)`` over ``N = prod(space)`` points (2-D:
        flattened row-major, index ``i * Ny + j`` for ``(x_i, y_j)``), covariance
        ``diag(noise_var + local_scale v + uniform_scale mean(v)) + spread_scale U U^T``, in
        ``samples``' dtype.

    Raises:
        ValueError: fewer than 2 members, a non-positive ``noise_var`` or negative
            ``spread_scale``, ``local_scale``, ``uniform_scale`` or ``spread_power``, a
            non-positive ``reference_var``, or parameters whose length is not ``C``.
    """
    flat = _flat(samples)
    m, _, c, n = flat.shape
    if m < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {m}")
    params = []
    for name, value, low in (("noise_var", noise_var, 0.0), ("spread_scale", spread_scale, None),
                             ("local_scale", local_scale, None),
                             ("uniform_scale", uniform_scale, None),
                             ("spread_power", spread_power, None),
                             ("reference_var", reference_var, 0.0)):
        value = torch.as_tensor(value, dtype=flat.dtype, device=flat.device).reshape(-1)
        if value.numel() not in (1, c):
            raise ValueError(f"{name} must be a scalar or have C = {c} entries, got "
                             f"{value.numel()}")
        bad = value <= 0 if low == 0.0 else value < 0
        if bool(bad.any()) or not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be finite and {'> 0' if low == 0.0 else '>= 0'}, "
                             f"got {value.tolist()}")
        params.append(value.expand(c))
    noise_var, spread_scale, local_scale, uniform_scale, spread_power, reference_var = params
    mean = flat.mean(0)  # (B, C, N)
    factor = _warp(((flat - mean) / math.sqrt(m - 1)).permute(1, 2, 3, 0), spread_power,
                   reference_var)  # (B, C, N, M)
    eye = torch.eye(m, dtype=flat.dtype, device=flat.device)
    core = spread_scale[:, None, None] * eye  # (C, M, M)
    v = factor.square().sum(-1)  # (B, C, N)
    diag = (noise_var[:, None] + local_scale[:, None] * v
            + uniform_scale[:, None] * v.mean(-1, keepdim=True))
    return Gaussian(mean, covariance=LowRankPlusDiagonal(diag, factor, core))


def _warp(factor: torch.Tensor, power: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The members' deviations ``(B, C, N, M)`` scaled by ``(mean(v) / reference) ** (power /
    2)`` per sample and channel (``power``, ``reference``: ``(C,)``); unchanged where
    ``power`` is 0."""
    if not bool((power != 0).any()):
        return factor
    spread = factor.square().sum(-1).mean(-1)  # (B, C): the members' mean variance
    scale = (spread / reference).pow(power / 2)
    return factor * torch.where(power == 0, torch.ones_like(scale), scale)[..., None, None]


def _reference_var(samples: torch.Tensor) -> torch.Tensor:
    """``(C,)``: the geometric mean over samples of the members' mean variance per channel
    (the samples with none left out; 1 where a channel has none at all)."""
    spread = _flat(samples).var(0).mean(-1)  # (B, C)
    positive = spread > 0
    logs = torch.where(positive, spread.clamp(min=1e-300).log(), torch.zeros_like(spread))
    count = positive.sum(0)
    return torch.where(count > 0, (logs.sum(0) / count.clamp(min=1)).exp(),
                       torch.ones_like(logs[0]))


#: Posterior variance below this fraction of the largest: a point the rows fix exactly (left
#: out of the conditioned fit, see :func:`_fit_conditioned`).
_FIXED = 1e-10

#: Prior variance of a point the rows determine, relative to the largest other variance: the
#: limit of an uninformative prior there (:func:`uninformative_at`).
_UNINFORMATIVE = 1e6


def uninformative_at(gaussian: Gaussian, determined: torch.Tensor | None) -> Gaussian:
    """The Gaussian with an uninformative prior variance at the ``determined`` points (a bool
    mask over the ``N`` points): ``1e6`` times the largest diagonal entry of its sample and
    channel is added there (the interior then differs from the
    limit by about 1e-6 relative).

    Conditioning on a wall row (a Dirichlet value, a Neumann stencil) whose wall point has
    such a variance sets that point from the row and leaves the rest of the field as it was:
    the limit of an infinite prior variance, which is BOON's own rule (the wall value follows
    from the interior). With the members' pointwise variance at the wall instead, a stencil
    row shrinks the variance of the points next to the wall as if their errors were
    independent, while the errors of a smooth prediction are not: measured on wave2d's
    ensembles, that lowered the conditioned LL by 0.08, all of it at and next to the walls.
    ``None``: unchanged. The covariance must be diagonal or
    :class:`~physguard.constraints.LowRankPlusDiagonal`.
    """
    if determined is None:
        return gaussian
    cov = gaussian.covariance
    if isinstance(cov, DiagonalCovariance):
        return Gaussian(gaussian.mean, var=_raised(cov.var, determined))
    if not isinstance(cov, LowRankPlusDiagonal):
        raise TypeError("uninformative_at needs a diagonal or LowRankPlusDiagonal covariance")
    return Gaussian(gaussian.mean, covariance=LowRankPlusDiagonal(
        _raised(cov.diag, determined), cov.factor, cov.core))


def _raised(diag: torch.Tensor, determined: torch.Tensor) -> torch.Tensor:
    """``diag`` plus ``_UNINFORMATIVE`` times its largest entry (per sample and channel) at
    the ``determined`` points."""
    big = _UNINFORMATIVE * diag.detach().amax(-1, keepdim=True)
    return diag + big * determined.to(diag.device, diag.dtype)


def isotropic_prior(fitted: EnsembleNoise) -> EnsembleNoise:
    """The conditioned prior inherited from an unconditioned calibration: at every point of a
    sample and channel, the mean over the grid of the calibrated pointwise variance.

    ``fitted`` gives the pointwise variance ``noise_var + (spread_scale + local_scale) w^2 v +
    uniform_scale w^2 mean(v)`` (:func:`ensemble_gaussian`); the result gives ``noise_var +
    (spread_scale + local_scale + uniform_scale) w^2 mean(v)`` at every point (no low-rank
    part), with the same spread power ``gamma``: the variance the calibration measured, spread
    evenly, so that conditioning projects the mean (module docstring) and nothing is refitted
    after it. Measured against a conditioned refit (``benchmarks/results/
    uq_conditioned_prior.md``): out of range the refit put the variance of some steps in the
    constant ``noise_var``, which does not grow with the spread (Stokes ProbConserv-BOON LL
    -0.83 against the unconditioned 0.46 on new draws); inherited, 0.20 against 0.46 and
    coverage90 0.85.

    Args:
        fitted: :class:`EnsembleNoise` of an unconditioned fit (each ``(C,)`` or scalar).

    Returns:
        :class:`EnsembleNoise` with ``spread_scale = local_scale = 0``.
    """
    zero = torch.zeros_like(torch.as_tensor(fitted.spread_scale, dtype=torch.float64))
    total = fitted.spread_scale + fitted.local_scale + fitted.uniform_scale
    return fitted._replace(spread_scale=zero, local_scale=zero,
                           uniform_scale=torch.as_tensor(total, dtype=torch.float64) + zero)


def fit_ensemble_noise(samples: torch.Tensor, truth: torch.Tensor, constraint=None,
                       spread: bool = False, determined: torch.Tensor | None = None,
                       local: bool = False, spread_power: float | None = None,
                       refit: bool = False) -> EnsembleNoise:
    """Fit ``(noise_var, spread_scale, local_scale)`` per channel by maximum likelihood on
    held-out data.

    Maximises ``sum_{b, j} log N(truth | mean, a v + s2)`` over ``a >= 0``, ``s2 > 0`` for each
    channel ``c`` separately, with ``v`` the members' unbiased variance at each point (see the
    module docstring for why the diagonal part is needed). Points where every member is
    exactly right (variance and error both zero, as on a BOON member's Dirichlet wall) are
    left out: they are known, and would drive ``s2`` to 0. Without a constraint, ``local_scale
    = uniform_scale = 0``. With a dense ``constraint``, by default the unconditioned fit is
    spread evenly over the grid (:func:`isotropic_prior`): nothing is fitted for the
    conditioned Gaussian; with ``refit=True`` the likelihood is that of the conditioned
    Gaussian ``probconserv(ensemble_gaussian(...), constraint)`` over ``(s2, b, c)`` with ``a =
    0`` (module docstring: why the spread is left out), or over all four with ``spread=True``.

    Args:
        samples: ``(M, B, C, *space)`` member outputs on the calibration samples.
        truth: ``(B, C, *space)`` the true fields there.
        constraint: optional :class:`~physguard.LinearConstraint` on the calibration samples,
            batch ``(B, C)`` over ``N = prod(space)``. A sparse ``G`` (not differentiable)
            keeps the unconditioned shape and fits one overall factor for the conditioned
            Gaussian, in closed form.

        spread: with a dense ``constraint`` and ``refit``, fit the members' low-rank spread
            too.
        determined: with a dense ``constraint`` and ``refit``, the points its rows determine,
            given an uninformative prior variance (:func:`uninformative_at`) in the fit.
        local: with a dense ``constraint`` and ``refit``, fit the members' pointwise variance
            ``b v`` too;
            by default ``b = 0``: the conditioned prior is the same at every point of a sample
            and step (``noise_var + c mean(v)``), so the update is the Euclidean projection of
            the mean onto the constraint set, which never moves it away from a truth that
            meets the rows (module docstring).
        spread_power: the exponent ``gamma`` of :func:`ensemble_gaussian` (``>= 0``); ``None``
            chooses it from :data:`SPREAD_POWERS` by the likelihood of these held-out samples
            (of the conditioned Gaussian with a ``constraint``), each with its own fit of the
            other parameters. Only validation data that reach the spread of the intended use
            can show a growth with the spread: fit on samples from inside *and* outside the
            training range to calibrate out of range.
        refit: with a dense ``constraint``, fit the conditioned Gaussian's own parameters by
            its likelihood instead of inheriting the unconditioned ones (the default before
            ``benchmarks/results/uq_conditioned_prior.md``: it fitted the calibration samples
            better and extrapolated worse).

    Returns:
        :class:`EnsembleNoise` ``(noise_var, spread_scale, local_scale, uniform_scale,
        spread_power, reference_var)``, each ``(C,)`` float64:
        ``ensemble_gaussian(samples, *fitted)``.

    Raises:
        ValueError: mismatched shapes, fewer than 2 members, or a negative ``spread_power``.
    """
    flat = _flat(samples).to(torch.float64)
    truth = truth.to(torch.float64).flatten(2)
    if flat.shape[0] < 2 or flat.shape[1:] != truth.shape:
        raise ValueError(f"samples {tuple(samples.shape)} (M >= 2 members) and truth "
                         f"{tuple(truth.shape)} do not match")
    if constraint is not None and not constraint.is_sparse and not refit:
        return isotropic_prior(fit_ensemble_noise(samples, truth, spread_power=spread_power))
    if spread_power is None:
        fits = [fit_ensemble_noise(samples, truth, constraint, spread, determined, local, power,
                                   refit)
                for power in SPREAD_POWERS]
        # Points every member gets exactly right are known (see below), left out here too.
        level = (flat.mean(0) - truth).square().mean()
        exact = ((flat.var(0) <= _EXACT * level)
                 & ((flat.mean(0) - truth).square() <= _EXACT * level))
        scores = [float(_mean_log_likelihood(ensemble_gaussian(flat, *fit), truth, constraint,
                                             determined, exact)) for fit in fits]
        return fits[int(np.nanargmax(scores))]
    if not math.isfinite(spread_power) or spread_power < 0:
        raise ValueError(f"spread_power must be finite and >= 0, got {spread_power}")
    reference = _reference_var(flat)
    power = torch.full_like(reference, float(spread_power))
    mean = flat.mean(0)
    root = math.sqrt(flat.shape[0] - 1)
    flat = mean + _warp(((flat - mean) / root).permute(1, 2, 3, 0), power,
                        reference).permute(3, 0, 1, 2) * root
    return _fit_warped(flat, truth, constraint, spread, determined, local)._replace(
        spread_power=power, reference_var=reference)


def _fit_warped(flat, truth, constraint, spread, determined, local) -> EnsembleNoise:
    """:func:`fit_ensemble_noise` for members ``(M, B, C, N)`` already scaled by the spread
    power (float64, ``truth (B, C, N)``)."""
    from scipy.optimize import minimize

    var = flat.var(0).transpose(0, 1).reshape(flat.shape[2], -1).numpy()  # (C, B N)
    sq = (flat.mean(0) - truth).square().transpose(0, 1).reshape(flat.shape[2], -1).numpy()
    noise, scale = [], []
    for v, r2 in zip(var, sq, strict=True):
        level = max(float(r2.mean()), 1e-300)
        # Points every member gets exactly right (a BOON member's Dirichlet wall) are known,
        # not noisy: with them the likelihood grows without bound as s2 -> 0.
        informative = (v > _EXACT * level) | (r2 > _EXACT * level)
        if informative.any():
            v, r2 = v[informative], r2[informative]
            level = max(float(r2.mean()), 1e-300)

        def objective(p, v=v, r2=r2, level=level):
            a, s2 = math.exp(p[0]), level * math.exp(p[1])
            total = a * v + s2
            value = np.mean(np.log(total) + r2 / total)
            grad_total = (1.0 / total - r2 / total**2) / total.size
            return value, np.array([np.sum(grad_total * a * v), np.sum(grad_total * s2)])

        start = np.array([0.0, math.log(0.5)])
        result = minimize(objective, start, jac=True, method="L-BFGS-B",
                          bounds=[_LOG_BOUNDS, _LOG_BOUNDS])
        scale.append(math.exp(result.x[0]))
        noise.append(level * math.exp(result.x[1]))
    noise = torch.tensor(noise, dtype=torch.float64)
    scale = torch.tensor(scale, dtype=torch.float64)
    zero = torch.zeros_like(scale)
    if constraint is None:
        return EnsembleNoise(noise, scale, zero, zero)
    if constraint.is_sparse:
        return _fit_conditioned_scale(flat, truth, constraint, noise, scale)
    return _fit_conditioned(flat, truth, constraint, noise, scale, spread, determined, local)


def _fit_conditioned_scale(samples, truth, constraint, noise, scale):
    """For a sparse (non-differentiable) exact constraint: the unconditioned shape, and one
    overall factor ``c`` fitted for the conditioned Gaussian. With ``noise_var = 0`` the
    posterior of ``c Sigma`` is ``c`` times that of ``Sigma`` with the same mean, so the
    maximum-likelihood ``c`` is the mean of ``r^2 / var_post`` over the points that are not
    exactly known; per channel."""
    from ..constraints.linear import probconserv

    zero = torch.zeros_like(scale)
    if not bool((constraint.noise_var == 0).all()):
        return EnsembleNoise(noise, scale, zero, zero)
    post = probconserv(ensemble_gaussian(samples, noise, scale), constraint)
    r2 = (post.mean - truth).square()
    var = post.var
    known = var <= _FIXED * var.amax(-1, keepdim=True)
    ratio = torch.where(known, torch.zeros_like(r2), r2 / var.clamp(min=1e-300))
    factor = ratio.sum((0, 2)) / (~known).sum((0, 2)).clamp(min=1)
    factor = torch.where(factor > 0, factor, torch.ones_like(factor))
    return EnsembleNoise(noise * factor, scale * factor, zero, zero)


def _mean_log_likelihood(prior: Gaussian, truth: torch.Tensor, constraint, determined,
                         exact: torch.Tensor | None = None) -> torch.Tensor:
    """The mean pointwise log density of ``truth (B, C, N)`` under ``prior`` conditioned on
    ``constraint`` (with :func:`uninformative_at` the ``determined`` points; no constraint:
    the prior itself). Points the rows fix (a Dirichlet wall: posterior variance zero up to
    round-off) and the ``exact`` ones (a ``(B, C, N)`` mask) are known, not predicted: their
    log density is round-off noise, left out."""
    from ..constraints.linear import probconserv

    post = prior if constraint is None else probconserv(uninformative_at(prior, determined),
                                                        constraint)
    var = post.var
    known = (var <= _FIXED * var.detach().amax(-1, keepdim=True)).detach()
    if exact is not None:
        known = known | exact
    var = torch.where(known, torch.ones_like(var), var)
    logpdf = -0.5 * (math.log(2 * math.pi) + var.log() + (truth - post.mean).square() / var)
    return (logpdf * ~known).sum() / (~known).sum().clamp(min=1)


def _fit_conditioned(samples, truth, constraint, noise, scale, spread: bool, determined,
                     local: bool):
    """Maximum likelihood of the conditioned Gaussian over ``log c``, ``log s2`` (with
    ``local``, ``log b`` too) per channel (``spread_scale = 0``, module docstring), from
    ``b = c = scale / 2``; with
    ``spread``, then over ``log a`` too, from that optimum and ``a = 1e-3 b``, so the larger
    family never fits worse. The channels' likelihoods are independent sums, so one joint
    L-BFGS fits all."""
    half = (scale / 2).clamp(min=1e-30).log()
    start = torch.stack([half, half, noise.log()], dim=-1)
    if spread:
        first = _fit_conditioned(samples, truth, constraint, noise, scale, False, determined,
                                 local)
        start = torch.stack([first.local_scale, first.uniform_scale, first.noise_var,
                             1e-3 * first.local_scale], dim=-1).clamp(min=1e-30).log()
    params = start.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([params], max_iter=50, line_search_fn="strong_wolfe")

    def unpack(p):
        a = p[:, 3].exp() if spread else torch.zeros_like(scale)
        b = p[:, 0].exp() if local else torch.zeros_like(scale)
        return EnsembleNoise(p[:, 2].exp(), a, b, p[:, 1].exp())

    def closure():
        optimiser.zero_grad()
        prior = ensemble_gaussian(samples, *unpack(params.clamp(*_LOG_BOUNDS)))
        loss = -_mean_log_likelihood(prior, truth, constraint, determined)
        loss.backward()
        return loss

    optimiser.step(closure)
    p = params.detach().clamp(*_LOG_BOUNDS)
    if not bool(torch.isfinite(p).all()):
        p = start
    return unpack(p)


class OperatorEnsemble:
    """A deep ensemble of operators whose prediction is a :class:`~physguard.Gaussian`.

    Args:
        members: ``M >= 2`` trained operators (FNO1d, SpaceTimeFNO1d, FNO2d, ...), each
            mapping ``(B, C_in, *space)`` to ``(B, C, *space)``.
        apply: optional ``apply(member, inputs) -> outputs`` used instead of ``member(inputs)``
            (for example ``lambda m, v: physguard.BOON(m, left=..., right=...)(v)`` for a
            BOON-ensemble with the samples' boundary values).
        noise_var, spread_scale, local_scale, uniform_scale, spread_power, reference_var:
            the covariance parameters (module docstring, :func:`ensemble_gaussian`); set by
            :meth:`calibrate`, or given (scalar or ``(C,)``).
        determined: optional ``(N,)`` bool over the flattened grid: the points a BOON member
            sets from its interior (its Dirichlet and Neumann wall points). With a
            constraint, they get an uninformative prior (:func:`uninformative_at`) in the fit
            and in the prediction, as ``physguard run --uq`` does for its BOON ensembles.

    Raises:
        ValueError: fewer than 2 members, or a ``determined`` mask that is not 1-D bool.
    """

    def __init__(self, members: Sequence[torch.nn.Module],
                 apply: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None,
                 noise_var=None, spread_scale=1.0, local_scale=0.0, uniform_scale=0.0,
                 spread_power=0.0, reference_var=1.0, determined: torch.Tensor | None = None):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if determined is not None and (determined.dtype != torch.bool or determined.dim() != 1):
            raise ValueError(f"determined must be a 1-D bool mask over the grid's points, got "
                             f"{determined.dtype} of shape {tuple(determined.shape)}")
        self.determined = determined
        self.members = list(members)
        self.apply = apply
        self.noise_var = noise_var
        self.spread_scale = spread_scale
        self.local_scale = local_scale
        self.uniform_scale = uniform_scale
        self.spread_power = spread_power
        self.reference_var = reference_var

    def _parameters(self) -> EnsembleNoise:
        return EnsembleNoise(self.noise_var, self.spread_scale, self.local_scale,
                             self.uniform_scale, self.spread_power, self.reference_var)

    @torch.no_grad()
    def member_outputs(self, inputs: torch.Tensor, apply=None) -> torch.Tensor:
        """``(M, B, C, *space)`` in float64: every member's output for ``inputs (B, C_in,
        *space)`` (``apply`` overrides the ensemble's own for this call). The members run in
        their own dtype; their statistics, and any constraint update after them, in float64,
        so that a conditioned mean meets its rows to round-off of float64, not float32."""
        apply = apply or self.apply
        return torch.stack([(member(inputs) if apply is None else apply(member, inputs))
                            .to(torch.float64) for member in self.members])

    def calibrate(self, inputs: torch.Tensor, targets: torch.Tensor, apply=None,
                  constraint=None) -> OperatorEnsemble:
        """Fit the covariance parameters on held-out ``(inputs, targets)`` (never
        the test samples) with :func:`fit_ensemble_noise`; with ``constraint`` (on these
        samples), for the conditioned prediction. Returns ``self``."""
        samples = self.member_outputs(inputs, apply)
        (self.noise_var, self.spread_scale, self.local_scale, self.uniform_scale,
         self.spread_power, self.reference_var) = fit_ensemble_noise(
            samples, targets, constraint, determined=self.determined)
        return self

    def predict(self, inputs: torch.Tensor, apply=None, constraint=None) -> Gaussian:
        """The Gaussian prediction, batch ``(B, C)`` over ``N = prod(space)`` points;
        conditioned on ``constraint`` by :func:`~physguard.probconserv` when one is given.

        Raises:
            RuntimeError: :meth:`calibrate` was not called and no ``noise_var`` was given.
        """
        if self.noise_var is None:
            raise RuntimeError("the ensemble has no noise_var: call calibrate() on held-out "
                               "samples first, or give noise_var")
        pred = ensemble_gaussian(self.member_outputs(inputs, apply), *self._parameters())
        if constraint is None:
            return pred
        from ..constraints.linear import probconserv

        return probconserv(uninformative_at(pred, self.determined), constraint)
