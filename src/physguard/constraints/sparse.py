r"""The ProbConserv update for many sparse constraint rows (local conservation).

A per-cell conservation law (the discrete divergence of a velocity field in every cell, the
balance of every control volume) is one row of ``G`` per cell: ``M`` of the order of ``N``,
each row with a handful of entries. The dense update solves ``G Sigma G^T`` as an ``M x M``
matrix: ``O(M^3)``, impossible at ``M = 10^4``. With a diagonal or diagonal-plus-low-rank
prior ``Sigma = D + U C U^T`` (what an ensemble gives, rank ``K`` small)::

    S = G Sigma G^T + noise_var I = A + W C W^T,   A = G D G^T + noise_var I (sparse),
                                                   W = G U (M x K, dense)

and ``S^-1`` follows from ``A^-1`` by the Woodbury identity,
``S^-1 r = A^-1 r - A^-1 W (I + C W^T A^-1 W)^-1 C W^T A^-1 r``. ``A`` is sparse symmetric
positive definite (``G`` of full row rank, ``D > 0``); with the rows of ``G`` scaled to unit
norm it is factorised once by SuperLU (``scipy.sparse.linalg.splu``, fill-reducing ordering of
``A + A^T``) and shared by every batch entry with the same diagonal. Each solve is refined
iteratively; for an exact constraint the mean update is repeated on its own residual (up to 3
times), which brings ``G mean - b`` to ``1e-14`` where one solve leaves ``1e-9``. For a 2-D
grid the factorisation costs about ``O(N^1.5)`` (nested-dissection-like fill); nothing ``M x M``
or ``N x N`` is formed (``benchmarks/local_conservation.py`` measures it).

The posterior covariance ``Sigma - Sigma G^T S^-1 G Sigma`` has rank up to ``M``: it is kept
implicit, as :class:`ConditionedCovariance` (products, exact marginal variances by blocks of
columns, and samples by Matheron's rule), never as a matrix.

Not differentiable (the sparse solves run in SciPy): use a dense ``G`` to train through the
update.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import splu

from .gaussian import Covariance, DenseCovariance, DiagonalCovariance, Gaussian, LowRankPlusDiagonal

__all__ = ["ConditionedCovariance", "is_sparse", "sparse_vstack", "probconserv_sparse",
           "SparseProjection"]

#: Columns per block when the marginal variances of a sparse-conditioned covariance are formed.
_BLOCK = 256


def is_sparse(G) -> bool:
    """Whether ``G`` is a SciPy sparse matrix or array (the sparse storage of a constraint)."""
    return sp.issparse(G)


def sparse_vstack(blocks) -> sp.csr_matrix:
    """Stack constraint matrices (SciPy sparse, or 2-D tensors / arrays without batch dims)
    into one CSR matrix in float64.

    Raises:
        ValueError: a dense block with batch dimensions (a sparse ``G`` is shared by the batch).
    """
    parts = []
    for G in blocks:
        if not sp.issparse(G):
            G = torch.as_tensor(G)
            if G.dim() != 2:
                raise ValueError(f"a constraint stacked with a sparse G must have a 2-D G "
                                 f"(no batch dims), got shape {tuple(G.shape)}")
            G = sp.csr_matrix(G.to(torch.float64).numpy())
        parts.append(G)
    return sp.vstack(parts, format="csr").astype(np.float64)


class _Solver:
    """``S^-1`` for ``S = A + W C W^T`` with ``A`` factorised (module docstring)."""

    def __init__(self, lu, A: sp.spmatrix, W: np.ndarray | None, C: np.ndarray | None):
        self.lu, self.A, self.W, self.C = lu, A, W, C
        if W is not None and W.shape[1]:
            self.AinvW = lu.solve(W)
            k = W.shape[1]
            try:
                self.inner = np.linalg.inv(np.eye(k) + C @ (W.T @ self.AinvW))
            except np.linalg.LinAlgError as err:
                raise ValueError(
                    "the low-rank part of the prior makes G Sigma G^T singular to working "
                    "precision (I + C W^T A^-1 W not invertible); check the prior's diagonal "
                    "(a zero or subnormal noise level?)") from err
        else:
            self.W = None

    def _apply(self, r: np.ndarray) -> np.ndarray:
        y = self.lu.solve(r)
        if self.W is not None:
            y = y - self.AinvW @ (self.inner @ (self.C @ (self.W.T @ y)))
        return y

    def multiply(self, y: np.ndarray) -> np.ndarray:
        """``S y``."""
        out = self.A @ y
        if self.W is not None:
            out = out + self.W @ (self.C @ (self.W.T @ y))
        return out

    def solve(self, r: np.ndarray, refinements: int = 3) -> np.ndarray:
        """``S^-1 r`` for ``r (M,)`` or ``(M, k)``, with up to ``refinements`` steps of
        iterative refinement (stopped when the residual no longer halves)."""
        y = self._apply(r)
        residual = r - self.multiply(y)
        size = np.abs(residual).max(initial=0.0)
        for _ in range(refinements):
            step = y + self._apply(residual)
            new_residual = r - self.multiply(step)
            new_size = np.abs(new_residual).max(initial=0.0)
            if not new_size < 0.5 * size:
                break
            y, residual, size = step, new_residual, new_size
        return y


def _prior_parts(covariance: Covariance, batch: torch.Size, n: int):
    """Per flattened batch entry: ``(d (N,), U (N, K) or None, C (K, K) or None)`` in numpy."""
    if isinstance(covariance, DiagonalCovariance):
        d = covariance.var.expand(*batch, n).reshape(-1, n).numpy()
        return [(row, None, None) for row in d]
    if isinstance(covariance, LowRankPlusDiagonal):
        k = covariance.rank
        d = covariance.diag.expand(*batch, n).reshape(-1, n).numpy()
        U = covariance.factor.expand(*batch, n, k).reshape(-1, n, k).numpy()
        C = covariance.core.expand(*batch, k, k).reshape(-1, k, k).numpy()
        return list(zip(d, U, C, strict=True))
    raise TypeError(f"a sparse constraint needs a diagonal or diagonal-plus-low-rank prior, got "
                    f"{type(covariance).__name__}")


def _factorise(G: sp.csr_matrix, d: np.ndarray, noise: np.ndarray):
    if bool((d <= 0).any()):
        raise ValueError("a sparse constraint needs a strictly positive diagonal prior variance "
                         f"(min {float(d.min()):.3g}); give the prediction a noise level")
    A = (G @ sp.diags(d) @ G.T + sp.diags(noise)).tocsc()
    try:
        lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True})
    except RuntimeError as err:  # SuperLU: "Factor is exactly singular"
        raise ValueError(f"G D G^T + noise_var I (shape {A.shape}) is singular: the sparse "
                         "constraint rows are linearly dependent (drop redundant rows) or use "
                         "noise_var > 0") from err
    pivots = np.abs(lu.U.diagonal())
    scale = np.sqrt(np.abs(A.diagonal()))
    rel = pivots / np.maximum(scale[lu.perm_c] ** 2, np.finfo(float).tiny)
    if not np.all(np.isfinite(pivots)) or rel.min() < 1e3 * A.shape[0] * np.finfo(float).eps:
        raise ValueError(
            f"G D G^T + noise_var I (shape {A.shape}) is numerically singular: the sparse "
            "constraint rows are linearly dependent (drop redundant rows) or use noise_var > 0")
    return lu, A


def _sigma_gt(G, d, U, C, W, y: np.ndarray) -> np.ndarray:
    """``Sigma G^T y`` for ``Sigma = diag(d) + U C U^T`` and ``W = G U`` (``y`` of shape
    ``(M,)`` or ``(M, k)``; ``W = None``: no low-rank part)."""
    out = (G.T @ y) * (d if y.ndim == 1 else d[:, None])
    if W is not None:  # None: no low-rank part (or rank 0)
        out = out + U @ (C @ (W.T @ y))
    return out


def _conditioned_mean(mean, b, G, d, U, C, solver, exact: bool, steps: int = 3):
    """``mean - Sigma G^T S^-1 (G mean - b)`` (``mean (N,)`` with ``b (M,)``, or a batch as
    columns: ``(N, B)`` with ``(M, B)``). For an exact constraint the step is repeated
    on the new residual (up to ``steps`` times, while it halves): the residual ``G mean - b``
    is then formed from the updated mean itself, whose rounding is ``eps |G| |mean|``, rather
    than from ``S y``, whose rounding grows with the (large) weights ``y``."""

    def step(mu):
        return mu - _sigma_gt(G, d, U, C, solver.W, solver.solve(G @ mu - b))

    mu = step(mean)
    if not exact:
        return mu
    size = np.abs(G @ mu - b).max(initial=0.0)
    for _ in range(steps):
        candidate = step(mu)
        new_size = np.abs(G @ candidate - b).max(initial=0.0)
        if not new_size < 0.5 * size:
            break
        mu, size = candidate, new_size
    return mu


def _unit_rows(G) -> tuple[np.ndarray, sp.csr_matrix]:
    """``(scale (M,), diag(scale) G)``: the rows scaled to unit norm (the same constraint set
    and the same update; a wall row of ones and a divergence row of 1 / (2h) would otherwise
    add cond(R^2) to A's conditioning). ``b`` and ``noise_var`` scale with them."""
    G = sp.csr_matrix(G, dtype=np.float64)
    scale = 1.0 / np.sqrt(np.asarray(G.multiply(G).sum(1)).ravel())
    return scale, (sp.diags(scale) @ G).tocsr()


def probconserv_sparse(pred: Gaussian, constraint) -> Gaussian:
    """The ProbConserv update for a sparse ``G`` (``M x N``, shared by the batch).

    Called by :func:`~physguard.probconserv` when ``constraint.G`` is sparse. Float64 inside;
    the mean is cast back to ``pred``'s dtype and the covariance is a
    :class:`ConditionedCovariance`.

    Raises:
        TypeError: a dense prior covariance (use a dense ``G``).
        ValueError: a zero prior variance, or dependent rows with ``noise_var = 0``.
    """
    scale, G = _unit_rows(constraint.G)
    n, m = pred.n_points, constraint.n_constraints
    batch = torch.broadcast_shapes(pred.batch_shape, constraint.b.shape[:-1])
    covariance = pred.covariance.to(torch.float64)
    if isinstance(covariance, DenseCovariance):
        raise TypeError("a sparse G with a dense prior covariance: use a dense G (the dense "
                        "update is O(N^2 M) anyway)")
    parts = _prior_parts(covariance, batch, n)
    mean = pred.mean.to(torch.float64).expand(*batch, n).reshape(-1, n).numpy()
    b = constraint.b.to(torch.float64).expand(*batch, m).reshape(-1, m).numpy() * scale
    noise = constraint.noise_var.to(torch.float64).expand(*batch, m).reshape(-1, m).numpy() \
        * scale**2
    solvers, new_mean, cache = [], np.empty_like(mean), {}
    for e, (d, U, C) in enumerate(parts):
        key = (d.tobytes(), noise[e].tobytes())
        if key not in cache:
            cache = {key: _factorise(G, d, noise[e])}  # consecutive entries share D mostly
        lu, A = cache[key]
        W = None if U is None else G @ U
        solver = _Solver(lu, A, W, C)
        new_mean[e] = _conditioned_mean(mean[e], b[e], G, d, U, C, solver,
                                        exact=bool((noise[e] == 0).all()))
        solvers.append(solver)
    mean_out = torch.from_numpy(new_mean).reshape(*batch, n).to(pred.dtype)
    exact = bool((constraint.noise_var == 0).all())
    posterior = ConditionedCovariance(covariance, G, solvers, batch, exact)
    return Gaussian(mean_out, covariance=posterior.to(pred.dtype))


class SparseProjection:
    """The exact ProbConserv mean update for a sparse ``G`` and a diagonal prior shared by a
    whole batch and by many calls: ``u - D G^T (G D G^T)^-1 (G u - b)``, ``G D G^T``
    factorised once (a rollout projects every step of every trajectory onto the same rows).
    The mean of :func:`probconserv_sparse` with a diagonal prior and ``noise_var = 0``
    (the same unit-norm rows and :func:`_conditioned_mean`), the batch solved at once.

    Args:
        G: sparse ``(M, N)`` rows of full row rank.
        var: ``(N,)`` the prior's diagonal, positive.

    Raises:
        ValueError: a non-positive variance or dependent rows.
    """

    def __init__(self, G, var):
        self.scale, self.G = _unit_rows(G)
        self.d = np.asarray(torch.as_tensor(var, dtype=torch.float64), dtype=np.float64)
        self.lu, A = _factorise(self.G, self.d, np.zeros(G.shape[0]))
        self.solver = _Solver(self.lu, A, None, None)

    def posterior_var(self) -> torch.Tensor:
        """``(N,)``: the marginal variances of the conditioned prior ``diag(d - d G^T (G D
        G^T)^-1 G d)``, computed once (one solve with ``N`` right-hand sides): for an
        isotropic prior ``c I`` (``d = 1``) the posterior's are ``c`` times these, whatever
        ``b``."""
        if getattr(self, "_posterior_var", None) is None:
            GD = self.G.multiply(self.d[None, :]).tocsc()  # (M, N): G D
            solved = self.solver.solve(GD.toarray())
            reduction = np.asarray(GD.multiply(solved).sum(0)).ravel()
            self._posterior_var = torch.from_numpy(np.clip(self.d - reduction, 0.0, None))
        return self._posterior_var

    def __call__(self, u: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``u (B, N)``, ``b (B, M)`` (or ``(M,)``) -> the projected ``(B, N)`` float64."""
        mean = u.to(torch.float64).numpy().T  # (N, B): the batch as right-hand sides
        rhs = np.broadcast_to(b.to(torch.float64).numpy().T,
                              (self.G.shape[0], mean.shape[1])) * self.scale[:, None]
        mu = _conditioned_mean(mean, rhs, self.G, self.d, None, None, self.solver, exact=True)
        return torch.from_numpy(np.ascontiguousarray(mu.T))


class ConditionedCovariance(Covariance):
    """``Sigma - Sigma G^T S^-1 G Sigma``, kept implicit (sparse ``G``, factorised ``S``).

    ``diagonal()`` is exact, formed by blocks of ``256`` columns (``O(N)`` solves, memory
    ``O(M 256)``); ``matmul`` costs two sparse solves per column; ``sample_white`` uses
    Matheron's rule (a prior sample minus ``Sigma G^T S^-1 G`` of it: exact for
    ``noise_var = 0``); ``dense`` builds the matrix (size-checked).
    """

    def __init__(self, prior: Covariance, G: sp.csr_matrix, solvers: list, batch: torch.Size,
                 exact: bool, dtype: torch.dtype = torch.float64):
        self.prior, self.G, self.solvers = prior, G, solvers
        self._batch, self.exact, self._dtype = torch.Size(batch), exact, dtype
        self._diag = None

    @property
    def n_points(self) -> int:
        return self.G.shape[1]

    @property
    def batch_shape(self) -> torch.Size:
        return self._batch

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    def _prior_flat(self) -> list:
        return _prior_parts(self.prior, self._batch, self.n_points)

    def _sigma_columns(self, d, U, C, W, columns: np.ndarray) -> np.ndarray:
        """``(G Sigma)[:, columns]``, shape ``(M, len(columns))`` (``W = G U``)."""
        block = self.G[:, columns].multiply(d[columns]).toarray()
        if W is not None:
            block = block + W @ (C @ U[columns].T)
        return block

    def diagonal(self) -> torch.Tensor:
        if self._diag is None:
            n = self.n_points
            prior_diag = self.prior.diagonal().expand(*self._batch, n).reshape(-1, n).numpy()
            out = np.empty_like(prior_diag)
            parts = zip(self._prior_flat(), self.solvers, strict=True)
            for e, ((d, U, C), solver) in enumerate(parts):
                reduction = np.empty(n)
                for start in range(0, n, _BLOCK):
                    columns = np.arange(start, min(start + _BLOCK, n))
                    g_sigma = self._sigma_columns(d, U, C, solver.W, columns)
                    reduction[columns] = (g_sigma * solver.solve(g_sigma)).sum(0)
                out[e] = np.maximum(prior_diag[e] - reduction, 0.0)
            self._diag = torch.from_numpy(out).reshape(*self._batch, n)
        return self._diag.to(self._dtype)

    def _apply(self, X: np.ndarray, e: int, part) -> np.ndarray:
        """``Sigma_post X`` for one batch entry, ``X (N, k)``."""
        d, U, C = part
        sigma_x = d[:, None] * X
        if U is not None:
            sigma_x = sigma_x + U @ (C @ (U.T @ X))
        solver = self.solvers[e]
        return sigma_x - _sigma_gt(self.G, d, U, C, solver.W, solver.solve(self.G @ sigma_x))

    def matmul(self, rhs: torch.Tensor) -> torch.Tensor:
        n, k = self.n_points, rhs.shape[-1]
        X = rhs.to(torch.float64).expand(*self._batch, n, k).reshape(-1, n, k).numpy()
        out = np.stack([self._apply(X[e], e, part) for e, part in enumerate(self._prior_flat())])
        return torch.from_numpy(out).reshape(*self._batch, n, k).to(rhs.dtype)

    def dense(self) -> torch.Tensor:
        from .gaussian import _check_dense_size

        _check_dense_size(self._batch, self.n_points, self._dtype)
        eye = torch.eye(self.n_points, dtype=torch.float64)
        cov = self.matmul(eye)
        return (0.5 * (cov + cov.transpose(-1, -2))).to(self._dtype)

    def downdate(self, factor: torch.Tensor, core: torch.Tensor) -> Covariance:
        return DenseCovariance(self.dense()).downdate(factor, core)

    def sample_white(self, eps: torch.Tensor) -> torch.Tensor:
        """Matheron's rule: ``z - Sigma G^T S^-1 G z`` for prior samples ``z``.

        Raises:
            ValueError: the update had ``noise_var > 0`` (the rule then needs the constraint
                noise as well, which ``eps (S, ..., N)`` does not carry).
        """
        if not self.exact:
            raise ValueError("samples of a sparse-constraint posterior need noise_var = 0")
        z = self.prior.sample_white(eps.to(torch.float64))  # (S, ..., N)
        s, n = z.shape[0], self.n_points
        Z = z.expand(s, *self._batch, n).reshape(s, -1, n).permute(1, 2, 0).numpy()
        out = np.empty_like(Z)
        for e, (d, U, C) in enumerate(self._prior_flat()):
            solver = self.solvers[e]
            out[e] = Z[e] - _sigma_gt(self.G, d, U, C, solver.W,
                                      solver.solve(self.G @ Z[e]))
        out = torch.from_numpy(out).permute(2, 0, 1).reshape(s, *self._batch, n)
        return out.to(eps.dtype)

    def to(self, dtype: torch.dtype) -> ConditionedCovariance:
        copy = ConditionedCovariance(self.prior, self.G, self.solvers, self._batch, self.exact,
                                     dtype)
        copy._diag = self._diag
        return copy

    def batch_index(self, index, batch_shape: torch.Size) -> ConditionedCovariance:
        flat = torch.arange(self._batch.numel()).reshape(self._batch)
        chosen = flat.expand(batch_shape)[index]
        prior = self.prior.to(torch.float64).batch_index(index, batch_shape)
        solvers = [self.solvers[int(i)] for i in chosen.reshape(-1)]
        copy = ConditionedCovariance(prior, self.G, solvers, chosen.shape, self.exact,
                                     self._dtype)
        if self._diag is not None:
            copy._diag = self._diag.expand(*batch_shape, self.n_points)[index]
        return copy
