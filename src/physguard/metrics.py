"""Accuracy, conservation and calibration metrics of probabilistic PDE predictions.

Definitions follow Hansen et al., ICML 2023, Sec. 4 (MSE, conservation error CE, log-likelihood
LL), plus the continuous ranked probability score of a Gaussian (Gneiting & Raftery, JASA 2007,
Eq. 21) and central-interval coverage. The probabilistic scores reduce over the last (spatial)
axis only, so ``(..., N)`` inputs give ``(...)`` outputs, e.g. ``(n_functions, n_times)``;
average those as the report needs. The operator metrics of any dimension (``dims`` trailing
spatial axes) are here too: the wall residuals of condition objects
(:func:`~physguard.conditions.wall_residuals`), the interior relative L2 and the wall-error
share (BOON's benchmark), and PDEBench's metrics (1-D and 2-D).
"""

from __future__ import annotations

import math

import torch

from .conditions import wall_residuals
from .constraints import trapezoid_weights

__all__ = [
    "mse",
    "relative_l2",
    "vrmse",
    "correlation",
    "conservation_error",
    "gaussian_log_likelihood",
    "crps_gaussian",
    "interval_coverage",
    "front_position",
    "step_front_position",
    "boundary_flux",
    "boundary_error",
    "boundary_residual",
    "brmse",
    "interior_relative_l2",
    "wall_error_share",
    "wall_residuals",
    "pdebench_metrics",
    "PDEBENCH_METRICS",
    "VAR_FLOOR",
]

#: Variances below this are raised to it in LL and CRPS, so that an exactly constrained
#: direction with round-off variance 0 gives a finite score instead of NaN.
VAR_FLOOR = 1e-30


def _check(mean: torch.Tensor, truth: torch.Tensor, *others: torch.Tensor) -> None:
    for name, t in (("truth", truth), *((f"arg{i}", o) for i, o in enumerate(others))):
        if t.shape[-1] != mean.shape[-1]:
            raise ValueError(
                f"{name} {tuple(t.shape)} and mean {tuple(mean.shape)} differ in N (last dim)"
            )


def mse(mean: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the last axis: ``mean_j (mu_j - u_j)^2`` (units ``u^2``)."""
    _check(mean, truth)
    return (mean - truth).square().mean(-1)


def relative_l2(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``||pred - truth||_2 / ||truth||_2`` over the last axis (dimensionless)."""
    _check(pred, truth)
    return (pred - truth).norm(dim=-1) / truth.norm(dim=-1)


def vrmse(pred: torch.Tensor, truth: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """The Well's VRMSE over the last axis: ``sqrt(mean (pred - truth)^2 / (std(truth)^2 +
    eps))`` with the unbiased standard deviation (``the_well.benchmark.metrics.VRMSE``, Ohana
    et al., NeurIPS 2024); dimensionless."""
    _check(pred, truth)
    return ((pred - truth).square().mean(-1) / (truth.std(-1).square() + eps)).sqrt()


def correlation(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of ``pred`` and ``truth`` over the last axis (a rollout's
    correlation time: the first step where it falls below a level)."""
    _check(pred, truth)
    p = pred - pred.mean(-1, keepdim=True)
    q = truth - truth.mean(-1, keepdim=True)
    return (p * q).sum(-1) / (p.norm(dim=-1) * q.norm(dim=-1)).clamp(min=1e-300)


def conservation_error(mean: torch.Tensor, x: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """Absolute conservation error ``|sum_j w_j mu_j - U|`` with trapezoid weights on ``x``.

    Args:
        mean: ``(..., N)`` predicted field on the grid ``x``.
        x: ``(N,)`` sorted grid.
        mass: ``(...)`` true conserved total ``U(t)``, broadcast against ``mean[..., 0]``.

    Returns:
        ``(...)`` absolute errors (units of ``u`` times length). The paper's tables show the
        signed value; ``|.|`` averaged over times is the issue's "CE over time".
    """
    w = trapezoid_weights(x).to(mean.dtype)
    if w.shape[-1] != mean.shape[-1]:
        raise ValueError(f"grid x has {w.shape[-1]} points but mean {tuple(mean.shape)} has N = "
                         f"{mean.shape[-1]}")
    return (mean @ w - mass).abs()


def gaussian_log_likelihood(mean: torch.Tensor, var: torch.Tensor,
                            truth: torch.Tensor) -> torch.Tensor:
    """Average pointwise log density ``mean_j log N(u_j | mu_j, sigma_j^2)`` (nats)."""
    _check(mean, truth, var)
    var = var.clamp(min=VAR_FLOOR)
    return (-0.5 * (math.log(2 * math.pi) + var.log() + (truth - mean).square() / var)).mean(-1)


def crps_gaussian(mean: torch.Tensor, var: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Average CRPS of ``N(mu_j, sigma_j^2)`` at ``u_j`` (units of ``u``; lower is better).

    ``CRPS = sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)]`` with ``z = (u - mu)/sigma``
    (Gneiting & Raftery 2007, Eq. 21). Equals the absolute error when ``sigma -> 0``.
    """
    _check(mean, truth, var)
    std = var.clamp(min=VAR_FLOOR).sqrt()
    z = (truth - mean) / std
    normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    pdf = normal.log_prob(z).exp()
    cdf = normal.cdf(z)
    return (std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))).mean(-1)


def interval_coverage(mean: torch.Tensor, var: torch.Tensor, truth: torch.Tensor,
                      level: float = 0.9) -> torch.Tensor:
    """Fraction of points inside the central ``level`` interval ``mu +- z sigma``."""
    _check(mean, truth, var)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    z = math.sqrt(2) * torch.special.erfinv(torch.tensor(level, dtype=torch.float64)).item()
    inside = (truth - mean).abs() <= z * var.clamp(min=0).sqrt()
    return inside.to(mean.dtype).mean(-1)


def front_position(samples: torch.Tensor, x: torch.Tensor, level: float = 0.0) -> torch.Tensor:
    """Shock (front) position of each sampled profile: the first grid point with ``u <= level``.

    The downstream task of Hansen et al., ICML 2023, Sec. 4.2 (with ``level = 0`` as there).

    Args:
        samples: ``(..., N)`` profiles on the sorted grid ``x`` ``(N,)``.
        level: threshold in units of ``u``.

    Returns:
        ``(...)`` positions; ``x[-1]`` where a profile never falls to ``level``.
    """
    _check(samples, x)
    below = samples <= level
    below[..., -1] = True
    return x.to(samples.dtype)[below.to(torch.int8).argmax(-1)]


def step_front_position(samples: torch.Tensor, x: torch.Tensor, level: float) -> torch.Tensor:
    """Front of each sampled profile as the best single step down across ``level``.

    The front is placed between grid points ``k - 1`` and ``k`` where ``k`` minimises the
    number of misclassified points, ``#{j < k: u_j <= level} + #{j >= k: u_j > level}`` (a
    one-change-point fit of the indicator ``u > level``; the first minimiser on ties). On a
    profile that falls below ``level`` once and stays there this is the same cell as
    :func:`front_position`; unlike that first-crossing rule, one noisy point on either side
    cannot move it. With ``level`` the middle of a jump (``p*/2`` for Stefan) it reads a
    smeared front where it crosses the mean of its two states; on the exact Stefan profile
    plus white noise of sd ``p*/2`` its mean over samples stays within half a cell of the
    front, with a quarter of the first-crossing rule's spread (``tests/test_fronts.py``).

    Args:
        samples: ``(..., N)`` profiles on the sorted grid ``x`` ``(N,)``, ``N >= 2``.
        level: threshold in units of ``u`` (the middle of the jump).

    Returns:
        ``(...)`` positions: the cell midpoint ``(x[k-1] + x[k]) / 2``; ``x[0]`` when the whole
        profile is below ``level`` and ``x[-1]`` when none of it is.

    Raises:
        ValueError: ``samples`` and ``x`` disagree in their last dimension, or ``N < 2``.
    """
    _check(samples, x)
    if x.shape[-1] < 2:
        raise ValueError(f"need at least 2 grid points, got {x.shape[-1]}")
    below = (samples <= level).to(torch.int32)
    zero = torch.zeros_like(below[..., :1])
    # misfit(k) for k = 0..N: points below before k, plus points above from k on
    below_before = torch.cat([zero, below.cumsum(-1)], dim=-1)
    above = 1 - below
    above_from = torch.cat([above.flip(-1).cumsum(-1).flip(-1), zero], dim=-1)
    k = (below_before + above_from).argmin(-1)
    grid = x.to(samples.dtype)
    cells = torch.cat([grid[:1], (grid[:-1] + grid[1:]) / 2, grid[-1:]])
    return cells[k]


# -- operator metrics (fields of shape (..., N) on a uniform grid) -----------------------------

def boundary_flux(u: torch.Tensor, h: float, side: str, order: int = 2) -> torch.Tensor:
    """``du/dx`` at one end of ``u (..., N)`` by the one-sided stencil of ``order`` (2 or 3)."""
    from .boundary import one_sided_stencil

    coeffs = one_sided_stencil(order)
    if side == "left":
        return sum(c * u[..., i] for i, c in enumerate(coeffs)) / h
    if side == "right":
        return -sum(c * u[..., -1 - i] for i, c in enumerate(coeffs)) / h
    raise ValueError(f"side must be 'left' or 'right', got {side!r}")


def boundary_residual(u: torch.Tensor, kind: str, values: torch.Tensor, side: str, h: float,
                      order: int = 2) -> torch.Tensor:
    """Signed violation of one boundary condition, shape ``u.shape[:-1]``: Dirichlet
    ``u_end - value``; Neumann ``stencil(u) - flux`` (one-sided stencil of ``order``);
    periodic ``u_0 - u_{N-1}`` (``values`` unused). Differentiable.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "periodic":
        return u[..., 0] - u[..., -1]
    if kind == "dirichlet":
        return u[..., 0 if side == "left" else -1] - values
    if kind == "neumann":
        return boundary_flux(u, h, side, order) - values
    raise ValueError(f"kind must be 'dirichlet' or 'neumann', got {kind!r}")


def boundary_error(u: torch.Tensor, kind: str, values: torch.Tensor, side: str, h: float,
                   order: int = 2) -> torch.Tensor:
    """Absolute violation of one boundary condition, shape ``u.shape[:-1]``:
    ``|boundary_residual|`` (use ``order=3`` for a higher-order reference than the enforced
    stencil)."""
    return boundary_residual(u, kind, values, side, h, order).abs()


def brmse(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """PDEBench bRMSE: RMSE over the two boundary points of each field, shape ``(...)``."""
    _check(pred, truth)
    err = torch.stack([pred[..., 0] - truth[..., 0], pred[..., -1] - truth[..., -1]], dim=-1)
    return err.square().mean(-1).sqrt()


def _interior_index(dims: int) -> tuple:
    """The index of the points off the walls of the last ``dims`` (spatial) axes."""
    if dims < 1:
        raise ValueError(f"dims (the number of spatial axes) must be >= 1, got {dims}")
    return (Ellipsis,) + (slice(1, -1),) * dims


def _check_fields(pred: torch.Tensor, truth: torch.Tensor, dims: int) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)} differ")
    if pred.ndim < dims + 1 or any(n < 3 for n in pred.shape[-dims:]):
        raise ValueError(f"need (B, ..., *space) with {dims} spatial axes of at least 3 points "
                         f"(walls and an interior), got {tuple(pred.shape)}")


def interior_relative_l2(pred: torch.Tensor, truth: torch.Tensor, dims: int = 1
                         ) -> torch.Tensor:
    """Relative L2 over the points off the walls, per sample, in any dimension.

    The points ``1 .. N_d - 2`` along each of the last ``dims`` axes (1-D ``(B, T, N)``: all
    but the two end points; 2-D ``(B, C, Nx, Ny)``: the grid inside the perimeter), the rest
    of each sample flattened: ``||e_int|| / ||u_int||``. BOON's interior gain, without the
    wall values its output sets exactly (Saad et al., ICLR 2023, report the whole field).

    Returns:
        ``(B,)``, dimensionless, in float64.

    Raises:
        ValueError: shapes that differ, or fewer than 3 points along a spatial axis.
    """
    _check_fields(pred, truth, dims)
    inner = _interior_index(dims)
    err = (pred.double() - truth.to(pred.device).double())[inner].flatten(1)
    return err.norm(dim=1) / truth.to(pred.device).double()[inner].flatten(1).norm(dim=1)


def wall_error_share(pred: torch.Tensor, truth: torch.Tensor, dims: int = 1) -> float:
    """The share of the squared error that lies on the wall points, pooled over the batch.

    Wall points: those with index ``0`` or ``N_d - 1`` along any of the last ``dims`` axes
    (1-D: the two end points; 2-D: the perimeter). A model that kept ``pred``'s interior and
    had exact wall values would have ``1 - share`` of its squared error, so exact walls alone
    lower the pooled error at most ``1 / sqrt(1 - share)`` times.

    Returns:
        A float in ``[0, 1]`` (0 for a zero error).

    Raises:
        ValueError: shapes that differ, or fewer than 3 points along a spatial axis.
    """
    _check_fields(pred, truth, dims)
    err = (pred.double() - truth.to(pred.device).double()).square()
    total = float(err.sum())
    if total == 0:
        return 0.0
    # total minus interior: round-off can leave an exact model's share at -1e-16; clip it.
    return min(1.0, max(0.0, (total - float(err[_interior_index(dims)].sum())) / total))


PDEBENCH_METRICS = ("RMSE", "nRMSE", "cRMSE", "max_error", "bRMSE", "fRMSE_low",
                    "fRMSE_mid", "fRMSE_high")


def pdebench_metrics(pred: torch.Tensor, truth: torch.Tensor,
                     lengths: float | tuple[float, ...] = 1.0, i_low: int = 4,
                     i_high: int = 12) -> dict[str, float]:
    """PDEBench's error metrics, as its ``metric_func`` defines them (Takamoto et al., NeurIPS
    2022, App. D; ``pdebench/models/metrics.py``), over the whole test set taken as one batch.

    For each channel ``c`` and sample ``b`` with error ``e = pred - truth`` on the grid of
    ``M`` points (``M = nx`` in 1-D, ``nx ny`` in 2-D):

    * ``RMSE``: ``sqrt(mean_x e^2)``, averaged over samples; ``nRMSE``: the same divided by
      ``sqrt(mean_x truth^2)``, then averaged; ``max_error``: the largest ``|e|`` over points
      and samples.
    * ``cRMSE``: ``sqrt(mean_b (sum_x e / M)^2)``: the root mean square over samples of the
      error of the spatial mean.
    * ``bRMSE``: 1-D ``mean_b sqrt((e_0^2 + e_{N-1}^2) / 2)``; 2-D ``mean_b sqrt((sum over
      the x = 0, x = L_x walls of e^2 + sum over the y walls) / (2 nx + 2 ny))`` (corners
      counted on both walls, as PDEBench does).
    * ``fRMSE``: the discrete Fourier transform ``E_k`` of ``e`` (unnormalised, ``numpy``
      convention); 1-D per mode ``k`` of ``rfft``, 2-D summed over the shells
      ``floor(sqrt(i^2 + j^2)) = k`` of the quadrant ``0 <= i < nx // 2``,
      ``0 <= j < ny // 2`` (shells ``k < min(nx, ny) // 2``); then
      ``sqrt(mean_b |E_k|^2) / M * prod(lengths)``, averaged over the modes
      ``k < i_low`` (low), ``i_low <= k < i_high`` (mid) and ``k >= i_high`` (high). An
      empty band gives NaN, as in PDEBench.

    Every metric is computed per channel and then averaged over the channels, as
    ``metric_func(..., if_mean=True)`` averages over channels and time steps; so a
    physguard prediction's time steps and fields may share the channel axis.

    Args:
        pred, truth: ``(B, C, *spatial)`` with 1 or 2 spatial axes (physguard's operator
            layout: 1-D ``(n, T, N)``, 2-D ``(n, T * fields, Nx, Ny)``).
        lengths: the domain length per spatial axis (PDEBench's ``Lx``, ``Ly``; default 1,
            PDEBench's default), scaling ``fRMSE`` only.
        i_low, i_high: the band edges (PDEBench's defaults 4 and 12).

    Returns:
        ``{name: float}`` for the names in ``PDEBENCH_METRICS``.

    Raises:
        ValueError: shapes that differ, or not 1 or 2 spatial axes.
    """
    _check(pred, truth)
    dims = pred.ndim - 2
    if dims not in (1, 2):
        raise ValueError(f"pdebench_metrics takes (B, C, *spatial) with 1 or 2 spatial axes, "
                         f"got shape {tuple(pred.shape)}")
    lengths = (float(lengths),) * dims if isinstance(lengths, (int, float)) else \
        tuple(float(v) for v in lengths)
    if len(lengths) != dims:
        raise ValueError(f"lengths must give {dims} domain length(s), got {lengths}")
    err = (pred - truth).double()
    truth = truth.double()
    spatial = tuple(range(2, 2 + dims))
    points = math.prod(pred.shape[2:])
    rmse = err.square().mean(spatial).sqrt()  # (B, C)
    out = {"RMSE": rmse.mean(0), "nRMSE": (rmse / truth.square().mean(spatial).sqrt()).mean(0),
           "cRMSE": (err.sum(spatial) / points).square().mean(0).sqrt(),
           "max_error": err.abs().amax(spatial).amax(0)}
    if dims == 1:
        out["bRMSE"] = ((err[..., 0].square() + err[..., -1].square()) / 2).sqrt().mean(0)
        shells = torch.fft.rfft(err, dim=-1).abs().square()  # (B, C, N // 2 + 1)
    else:
        nx, ny = pred.shape[2:]
        walls = (err[:, :, 0].square() + err[:, :, -1].square()).sum(-1) \
            + (err[:, :, :, 0].square() + err[:, :, :, -1].square()).sum(-1)
        out["bRMSE"] = (walls / (2 * nx + 2 * ny)).sqrt().mean(0)
        power = torch.fft.fftn(err, dim=(2, 3)).abs().square()[:, :, :nx // 2, :ny // 2]
        n_shells = min(nx // 2, ny // 2)
        shell = torch.tensor([[math.isqrt(i * i + j * j) for j in range(ny // 2)]
                              for i in range(nx // 2)], dtype=torch.long).reshape(nx // 2,
                                                                                 ny // 2)
        keep = shell < n_shells
        shells = torch.zeros(*power.shape[:2], n_shells, dtype=power.dtype)
        shells.index_add_(2, shell[keep], power[:, :, keep])
    spectrum = shells.mean(0).sqrt() / points * math.prod(lengths)  # (C, modes)
    for band, part in (("low", spectrum[:, :i_low]), ("mid", spectrum[:, i_low:i_high]),
                       ("high", spectrum[:, i_high:])):
        out[f"fRMSE_{band}"] = part.mean(1)  # NaN for an empty band, as torch.mean gives
    return {name: float(out[name].mean()) for name in PDEBENCH_METRICS}
