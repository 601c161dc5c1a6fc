"""Linear equality constraints and the ProbConserv / HardC updates.

Source: D. Hansen, D. C. Maddix, S. Alizadeh, G. Gupta, M. W. Mahoney, "Learning Physical Models
that Can Respect Conservation Laws", ICML 2023 (arXiv 2302.11002), Sec. 3, Eq. (5)-(6) (the
ProbConserv update, Step 2) and the HardC baseline of Sec. 4.

The integral form of a conservation law, discretised with quadrature weights, is a noisy linear
observation ``b = G u + eps, eps ~ N(0, noise_var I)``. Conditioning the prior ``N(mu, Sigma)`` on
it gives (Eq. 5-6)::

    mean~ = mu - Sigma G^T (noise_var I + G Sigma G^T)^-1 (G mu - b)
    cov~  = Sigma - Sigma G^T (noise_var I + G Sigma G^T)^-1 G Sigma

With ``noise_var = 0`` (the limit used for "ProbConserv-ANP" in the paper's tables) ``G mean~ =
b`` holds exactly and ``G cov~ G^T = 0``. Equivalently ``mean~`` is the point closest to ``mu`` in
the ``Sigma^-1`` norm on the constraint set, so the correction goes where the prior is uncertain.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import as_float_tensor, check_broadcastable, check_finite
from .gaussian import DiagonalCovariance, Gaussian
from .sparse import is_sparse

__all__ = ["LinearConstraint", "probconserv", "hardc"]

_SOLVE_DTYPE = torch.float64


class LinearConstraint:
    """The linear constraint ``G u = b + eps``, ``eps ~ N(0, noise_var I)`` (ProbConserv Eq. 4).

    Args:
        G: ``(..., M, N)`` constraint matrix (for conservation: one row per time, the quadrature
            weights of the spatial grid, units of length), or a SciPy sparse ``(M, N)`` matrix
            shared by the batch (local conservation, ``M`` of the order of ``N``: the update
            then runs through a sparse factorisation, :mod:`physguard.constraints.sparse`).
        b: ``(..., M)`` right-hand side (for conservation: the conserved total ``U(t)``, units of
            ``u`` times length). Batch dims broadcast against ``G``'s.
        noise_var: ``float >= 0`` or a tensor broadcastable to ``b``: variance of ``eps`` in
            units of ``b^2``. ``0`` enforces the constraint exactly.

    Raises:
        ValueError: ``G`` with fewer than 2 dims, ``M = 0`` rows, an all-zero row (rank-zero
            constraint), NaN/inf in ``G``/``b``/``noise_var``, ``b.shape[-1] != M``, batch shapes
            that do not broadcast, or a negative ``noise_var``. Messages name the argument and
            its shape.
    """

    def __init__(self, G, b, noise_var=0.0):
        if is_sparse(G):
            G = G.tocsr().astype(np.float64)
            if not np.isfinite(G.data).all():
                raise ValueError("G holds NaN or infinite values")
            G.eliminate_zeros()
            zero_rows = np.diff(G.indptr) == 0
        else:
            G = as_float_tensor("G", G, min_dim=2)
            check_finite("G", G)
            zero_rows = (G == 0).all(dim=-1).numpy() if G.numel() else np.zeros(0, bool)
        b = as_float_tensor("b", b, min_dim=1)
        check_finite("b", b)
        m = G.shape[-2]
        if m == 0 or G.shape[-1] == 0:
            raise ValueError(f"G must have at least one row and column, got shape {tuple(G.shape)}")
        if bool(zero_rows.any()):
            index = tuple(int(i) for i in np.argwhere(zero_rows)[0])
            raise ValueError(
                f"G (shape {tuple(G.shape)}) has an all-zero row at {index}: a rank-zero "
                "constraint carries no information"
            )
        if b.shape[-1] != m:
            raise ValueError(
                f"b must have shape (..., M) with M = {m} rows of G {tuple(G.shape)}, "
                f"got {tuple(b.shape)}"
            )
        check_broadcastable(("G", "b"), G.shape[:-2], b.shape[:-1])
        noise_var = as_float_tensor("noise_var", noise_var)
        check_finite("noise_var", noise_var)
        if bool((noise_var < 0).any()):
            raise ValueError(f"noise_var must be >= 0, got min {float(noise_var.min()):.3g}")
        try:
            torch.broadcast_shapes(noise_var.shape, b.shape)
            if noise_var.dim() and noise_var.shape[-1] not in (1, m):
                raise RuntimeError("one variance per constraint row")
        except RuntimeError as err:
            raise ValueError(
                f"noise_var of shape {tuple(noise_var.shape)} does not broadcast to b "
                f"{tuple(b.shape)} (its last dim must be 1 or M = {m})"
            ) from err
        self.G = G
        self.b = b
        self.noise_var = noise_var

    @property
    def is_sparse(self) -> bool:
        """Whether ``G`` is stored sparse (SciPy, shared by the batch)."""
        return is_sparse(self.G)

    @property
    def n_constraints(self) -> int:
        """M, the number of constraint rows."""
        return self.G.shape[-2]

    @property
    def n_points(self) -> int:
        """N, the number of points the constraint acts on."""
        return self.G.shape[-1]

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """``G u - b`` for ``u`` of shape ``(..., N)``; returns ``(..., M)``."""
        if self.is_sparse:
            flat = u.detach().to(torch.float64).reshape(-1, u.shape[-1]).numpy()
            gu = torch.from_numpy(np.asarray(self.G @ flat.T).T)
            return (gu.reshape(*u.shape[:-1], -1) - self.b).to(u.dtype)
        G = self.G.to(u.dtype)
        return (G @ u.unsqueeze(-1)).squeeze(-1) - self.b.to(u.dtype)

    def __repr__(self) -> str:
        return (
            f"LinearConstraint(G={tuple(self.G.shape)}, b={tuple(self.b.shape)}, "
            f"noise_var={self.noise_var.tolist() if self.noise_var.dim() == 0 else '...'})"
        )


def _check_compatible(pred: Gaussian, constraint: LinearConstraint) -> None:
    if not isinstance(pred, Gaussian):
        raise TypeError(f"pred must be a physguard.Gaussian, got {type(pred).__name__}")
    if not isinstance(constraint, LinearConstraint):
        raise TypeError(
            f"constraint must be a physguard.LinearConstraint, got {type(constraint).__name__}"
        )
    if constraint.n_points != pred.n_points:
        raise ValueError(
            f"constraint G {tuple(constraint.G.shape)} acts on N = {constraint.n_points} points "
            f"but the prediction mean {tuple(pred.mean.shape)} has N = {pred.n_points}: the grid "
            "does not match the constraint"
        )
    check_broadcastable(("pred", "constraint G"), pred.batch_shape, constraint.G.shape[:-2])
    check_broadcastable(("pred", "constraint b"), pred.batch_shape, constraint.b.shape[:-1])


def _noise_matrix(noise_var: torch.Tensor, m: int) -> torch.Tensor:
    """``noise_var I`` as ``(..., M, M)``; ``noise_var`` is a scalar or broadcasts to ``(M,)``."""
    ones = torch.ones(m, dtype=_SOLVE_DTYPE, device=noise_var.device)
    return torch.diag_embed(noise_var.to(_SOLVE_DTYPE) * ones)


def _cholesky(S: torch.Tensor, what: str) -> torch.Tensor:
    """Cholesky factor of the ``M x M`` system, refusing (numerically) singular ones.

    Round-off can make the Gram matrix of dependent rows numerically positive definite (a
    pivot of ``1e-17`` relative), and the update would then return a mean that misses the
    constraints by O(1). The test is on the pivots of the diagonally equilibrated matrix
    (``D^-1/2 S D^-1/2``, unit diagonal, so rows of any scale count alike): a squared pivot
    below ``1000 M eps`` means the rows are dependent to working precision.
    """
    L, info = torch.linalg.cholesky_ex(S)
    if not bool((info > 0).any()):
        d = torch.diagonal(S, dim1=-2, dim2=-1).clamp(min=torch.finfo(S.dtype).tiny).sqrt()
        pivots = torch.diagonal(L, dim1=-2, dim2=-1) / d
        info = (pivots.square() < 1e3 * S.shape[-1] * torch.finfo(S.dtype).eps).any(-1).int()
    if bool((info > 0).any()):
        raise ValueError(
            f"{what} (shape {tuple(S.shape)}) is not positive definite: the constraint rows are "
            "linearly dependent, or the prior has no variance along them. Drop redundant rows or "
            "use noise_var > 0."
        )
    return L


def probconserv(pred: Gaussian, constraint: LinearConstraint) -> Gaussian:
    """The ProbConserv update (Hansen et al., ICML 2023, Eq. 5-6): condition on ``G u = b``.

    ``mean~ = mu - Sigma G^T S^-1 (G mu - b)``, ``cov~ = Sigma - Sigma G^T S^-1 G Sigma`` with
    ``S = G Sigma G^T + noise_var I``. Batched over all leading dims (functions, times, latent
    samples), which broadcast between ``pred`` and ``constraint``.

    Cost: a diagonal prior returns a :class:`~physguard.constraints.LowRankPlusDiagonal`
    posterior (rank M) in ``O(N M^2)`` time and memory, never forming ``N x N``; a low-rank
    prior of rank K stays low rank (K + M); a dense prior costs ``O(N^2 M)``. The update is
    computed in float64 and cast back to ``pred``'s dtype; it is differentiable (autograd flows
    to the mean, covariance, ``G`` and ``b``).

    Args:
        pred: prior prediction, mean ``(..., N)``.
        constraint: ``G (..., M, N)``, ``b (..., M)``, ``noise_var``.

    Returns:
        The posterior :class:`Gaussian`, mean ``(..., N)``, in ``pred``'s dtype.

    Raises:
        ValueError: ``N`` of the constraint differs from the prediction's, batch shapes do not
            broadcast, or ``G Sigma G^T + noise_var I`` is not positive definite (dependent
            rows, or zero prior variance along a row, with ``noise_var = 0``).
        TypeError: arguments of the wrong type.
    """
    _check_compatible(pred, constraint)
    if constraint.is_sparse:
        from .sparse import probconserv_sparse

        return probconserv_sparse(pred, constraint)
    dtype = pred.dtype
    mean = pred.mean.to(_SOLVE_DTYPE)
    covariance = pred.covariance.to(_SOLVE_DTYPE)
    G = constraint.G.to(_SOLVE_DTYPE)
    b = constraint.b.to(_SOLVE_DTYPE)
    Gt = G.transpose(-1, -2)
    noise = _noise_matrix(constraint.noise_var, constraint.n_constraints)
    if isinstance(covariance, DiagonalCovariance):
        return _probconserv_diagonal(mean, covariance.var, G, b, noise, constraint).to(dtype)
    sigma_gt = covariance.matmul(Gt)  # (..., N, M)
    S = G @ sigma_gt + noise
    S = 0.5 * (S + S.transpose(-1, -2))
    L = _cholesky(S, "G Sigma G^T + noise_var I")
    residual = (G @ mean.unsqueeze(-1)).squeeze(-1) - b  # (..., M)
    weights = torch.cholesky_solve(residual.unsqueeze(-1), L)  # S^-1 (G mu - b)
    new_mean = mean - (sigma_gt @ weights).squeeze(-1)
    if bool((constraint.noise_var == 0).all()):
        # An exact constraint: the update is a projection, so repeating it on its own residual
        # changes nothing in exact arithmetic and removes the cond(S) eps left by one solve
        # (an ill-conditioned S: rows of very different prior variance).
        residual = (G @ new_mean.unsqueeze(-1)).squeeze(-1) - b
        new_mean = new_mean - (sigma_gt @ torch.cholesky_solve(residual.unsqueeze(-1),
                                                                L)).squeeze(-1)
    s_inv = torch.cholesky_inverse(L)
    if not (bool(torch.isfinite(new_mean).all()) and bool(torch.isfinite(s_inv).all())):
        raise ValueError(
            "G Sigma G^T + noise_var I is too small to invert in float64 (smallest diagonal "
            f"{float(torch.diagonal(S, dim1=-2, dim2=-1).min()):.3g}): the prior variance "
            "along the constraint rows is (sub)normal-tiny; rescale u or use noise_var > 0"
        )
    new_cov = covariance.downdate(sigma_gt, 0.5 * (s_inv + s_inv.transpose(-1, -2)))
    return Gaussian(new_mean.to(dtype), covariance=new_cov.to(dtype))


def _probconserv_diagonal(mean, var, G, b, noise, constraint) -> Gaussian:
    """The update for a diagonal prior ``D``, through the thin QR of ``V = D^1/2 G^T``.

    With ``V = Q R``: ``S = G D G^T + noise = R^T R + noise`` and the down-date is
    ``D G^T S^-1 G D = (D^1/2 Q) (R S^-1 R^T) (D^1/2 Q)^T``. For an exact constraint the core
    ``R S^-1 R^T`` is the identity, set exactly, so the posterior is ``D^1/2 (I - Q Q^T)
    D^1/2`` with an orthonormal ``Q``: its null directions are exact to round-off however
    ill-conditioned ``G D G^T`` is, and its samples satisfy ``G u = b`` as well as the mean
    does (forming ``S^-1`` from ``G D G^T`` instead loses ``cond(S) eps`` there).
    """
    sqrt_d = var.sqrt().unsqueeze(-1)
    V = sqrt_d * G.transpose(-1, -2)  # (..., N, M)
    q, r = torch.linalg.qr(V)  # q (..., N, min(N, M)), r (..., min(N, M), M)
    S = r.transpose(-1, -2) @ r + noise
    S = 0.5 * (S + S.transpose(-1, -2))
    L = _cholesky(S, "G Sigma G^T + noise_var I")
    residual = (G @ mean.unsqueeze(-1)).squeeze(-1) - b
    weights = torch.cholesky_solve(residual.unsqueeze(-1), L)
    new_mean = mean - (sqrt_d * (V @ weights)).squeeze(-1)
    if bool((constraint.noise_var == 0).all()):
        eye = torch.eye(r.shape[-2], dtype=r.dtype, device=r.device)
        core = eye.expand(*r.shape[:-2], *eye.shape)
    else:
        core = r @ torch.cholesky_solve(r.transpose(-1, -2), L)
        core = 0.5 * (core + core.transpose(-1, -2))
    if not bool(torch.isfinite(new_mean).all()):
        raise ValueError(
            "G Sigma G^T + noise_var I is too small to invert in float64 (smallest diagonal "
            f"{float(torch.diagonal(S, dim1=-2, dim2=-1).min()):.3g}): the prior variance "
            "along the constraint rows is (sub)normal-tiny; rescale u or use noise_var > 0"
        )
    new_cov = DiagonalCovariance(var).downdate(sqrt_d * q, core)
    return Gaussian(new_mean, covariance=new_cov)


def hardc(pred: Gaussian, constraint: LinearConstraint) -> Gaussian:
    """The HardC baseline (Hansen et al., ICML 2023, Sec. 4): project the mean, keep the variance.

    The ProbConserv mean update with ``Sigma`` replaced by the identity (the constant-variance
    assumption): the orthogonal projection ``mean~ = mu - G^T (G G^T + noise_var I)^-1 (G mu - b)``
    of the mean onto the constraint set. The covariance is returned unchanged, so the
    uncertainty does not know about the constraint. Computed in float64, cast back.

    Args / Returns / Raises: as :func:`probconserv` (the positive-definite check is on
    ``G G^T + noise_var I``).
    """
    _check_compatible(pred, constraint)
    if constraint.is_sparse:
        raise TypeError("hardc needs a dense G (it forms G G^T)")
    mean = pred.mean.to(_SOLVE_DTYPE)
    G = constraint.G.to(_SOLVE_DTYPE)
    b = constraint.b.to(_SOLVE_DTYPE)
    S = G @ G.transpose(-1, -2) + _noise_matrix(constraint.noise_var, constraint.n_constraints)
    L = _cholesky(S, "G G^T + noise_var I")
    residual = (G @ mean.unsqueeze(-1)).squeeze(-1) - b
    weights = torch.cholesky_solve(residual.unsqueeze(-1), L)
    new_mean = mean - (G.transpose(-1, -2) @ weights).squeeze(-1)
    return Gaussian(new_mean.to(pred.dtype), covariance=pred.covariance)
