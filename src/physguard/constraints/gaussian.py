"""Gaussian predictions with structured covariance.

A probabilistic surrogate predicts the PDE solution at ``N`` points as a multivariate normal
``N(mean, Sigma)``, batched over any leading dimensions (functions, times, latent samples).
The covariance comes in one of three structures, each its own type so that every algorithm
dispatches on the type and never forms an ``N x N`` matrix it does not need:

* :class:`DiagonalCovariance` -- ``Sigma = diag(var)``: what a neural process, a per-point
  likelihood or a marginal prediction gives.
* :class:`DenseCovariance` -- ``Sigma = cov``: an exact Gaussian process posterior.
* :class:`LowRankPlusDiagonal` -- ``Sigma = diag(d) + U C U^T`` with ``U`` of shape ``(N, K)``
  and a symmetric ``C`` of shape ``(K, K)`` (not necessarily positive: a conditioning
  *down*-date has ``C`` negative definite). A deep ensemble's spread, and the ProbConserv
  posterior of a diagonal prior (rank ``M`` = number of constraints), have this form.

All three implement ``diagonal()``, ``matmul(X)`` (``Sigma @ X``), ``dense()``,
``downdate(W, A)`` (``Sigma - W A W^T``) and ``sample_white(eps)`` (a square root applied to
standard normal noise), which is everything the constraint updates and the metrics need.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from .._validation import as_float_tensor, check_broadcastable, check_finite

__all__ = [
    "Covariance",
    "DiagonalCovariance",
    "DenseCovariance",
    "LowRankPlusDiagonal",
    "Gaussian",
    "moment_match",
]


#: Largest dense covariance (in bytes) that :attr:`Gaussian.cov` builds from a structured
#: (diagonal or diagonal-plus-low-rank) covariance; raise it knowingly for bigger ones.
DENSE_LIMIT_BYTES = 2**31

#: Diagonal entries below this fraction of the largest are handled exactly as zeros when
#: sampling a diagonal-plus-low-rank covariance (see :meth:`LowRankPlusDiagonal.sample_white`).
_SMALL_DIAGONAL = 1e-8


def _psd_sqrt(evals: torch.Tensor, size: int, floor: float = 0.0) -> torch.Tensor:
    """Square roots of the eigenvalues of a PSD matrix; round-off is set to 0.

    Eigenvalues below ``32 size eps max(max |evals|, floor)`` count as round-off. ``size`` is
    the dimension over which the matrix was accumulated (``N``, plus the rank for a low-rank
    form), so the cut scales with the round-off of its entries (a variance that small relative
    to the largest is below float round-off anyway); ``floor`` is the scale of a matrix known
    to hold an identity part (``I + inner``: 1), where the largest eigenvalue of a rank-one
    down-date is itself the round-off of ``1 - 1``. Without the cut an eigenvalue of 1e-16
    that is exactly 0 in exact arithmetic (the constrained direction of an exact conservation
    update) would become a 1e-8 sample component.
    """
    scale = evals.abs().amax(-1, keepdim=True).clamp(min=floor)
    tol = 32 * size * torch.finfo(evals.dtype).eps * scale
    return torch.where(evals > tol, evals, torch.zeros_like(evals)).sqrt()


def _check_dense_size(batch_shape: torch.Size, n: int, dtype: torch.dtype) -> None:
    """Refuse to build an ``(..., N, N)`` matrix larger than :data:`DENSE_LIMIT_BYTES`."""
    size = batch_shape.numel() * n * n * torch.finfo(dtype).bits // 8
    if size > DENSE_LIMIT_BYTES:
        raise ValueError(
            f"the dense covariance {(*batch_shape, n, n)} would take {size / 2**30:.3g} GiB "
            f"(limit physguard.constraints.gaussian.DENSE_LIMIT_BYTES = "
            f"{DENSE_LIMIT_BYTES / 2**30:.3g} GiB); use .var / covariance.diagonal() for "
            "variances, covariance.matmul(X) for products and .sample(n) for joint samples, "
            "which never form it"
        )


class Covariance(ABC):
    """A symmetric positive semi-definite ``(..., N, N)`` matrix in a structured form."""

    @property
    @abstractmethod
    def n_points(self) -> int:
        """N, the size of the (square) matrix."""

    @property
    @abstractmethod
    def batch_shape(self) -> torch.Size:
        """The leading (batch) dimensions."""

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype: ...

    @abstractmethod
    def diagonal(self) -> torch.Tensor:
        """Marginal variances, shape ``(..., N)``."""

    @abstractmethod
    def matmul(self, rhs: torch.Tensor) -> torch.Tensor:
        """``Sigma @ rhs`` for ``rhs`` of shape ``(..., N, K)``; batch dims broadcast."""

    @abstractmethod
    def dense(self) -> torch.Tensor:
        """The full ``(..., N, N)`` matrix (memory ``O(N^2)``)."""

    @abstractmethod
    def downdate(self, factor: torch.Tensor, core: torch.Tensor) -> Covariance:
        """Return ``Sigma - factor @ core @ factor^T`` in the cheapest exact structure.

        ``factor`` has shape ``(..., N, M)`` and ``core`` is symmetric ``(..., M, M)``.
        """

    @abstractmethod
    def sample_white(self, eps: torch.Tensor) -> torch.Tensor:
        """Map standard normal ``eps`` of shape ``(S, ..., N)`` to samples ``N(0, Sigma)``."""

    @abstractmethod
    def to(self, dtype: torch.dtype) -> Covariance: ...

    @abstractmethod
    def batch_index(self, index, batch_shape: torch.Size) -> Covariance:
        """Broadcast the batch dims to ``batch_shape``, then index them; points are kept."""


class DiagonalCovariance(Covariance):
    """``Sigma = diag(var)`` with ``var`` of shape ``(..., N)``, all entries >= 0."""

    def __init__(self, var: torch.Tensor):
        self.var = var

    @property
    def n_points(self) -> int:
        return self.var.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return self.var.shape[:-1]

    @property
    def dtype(self) -> torch.dtype:
        return self.var.dtype

    def diagonal(self) -> torch.Tensor:
        return self.var

    def matmul(self, rhs: torch.Tensor) -> torch.Tensor:
        return self.var.unsqueeze(-1) * rhs

    def dense(self) -> torch.Tensor:
        _check_dense_size(self.batch_shape, self.n_points, self.dtype)
        return torch.diag_embed(self.var)

    def downdate(self, factor: torch.Tensor, core: torch.Tensor) -> Covariance:
        return LowRankPlusDiagonal(self.var, factor, -core)

    def sample_white(self, eps: torch.Tensor) -> torch.Tensor:
        return self.var.sqrt() * eps

    def to(self, dtype: torch.dtype) -> DiagonalCovariance:
        return DiagonalCovariance(self.var.to(dtype))

    def batch_index(self, index, batch_shape: torch.Size) -> DiagonalCovariance:
        return DiagonalCovariance(self.var.expand(*batch_shape, self.n_points)[index])


class DenseCovariance(Covariance):
    """``Sigma = cov`` with ``cov`` of shape ``(..., N, N)``, symmetric PSD."""

    def __init__(self, cov: torch.Tensor):
        self.cov = cov

    @property
    def n_points(self) -> int:
        return self.cov.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return self.cov.shape[:-2]

    @property
    def dtype(self) -> torch.dtype:
        return self.cov.dtype

    def diagonal(self) -> torch.Tensor:
        return torch.diagonal(self.cov, dim1=-2, dim2=-1)

    def matmul(self, rhs: torch.Tensor) -> torch.Tensor:
        return self.cov @ rhs

    def dense(self) -> torch.Tensor:
        return self.cov

    def downdate(self, factor: torch.Tensor, core: torch.Tensor) -> Covariance:
        new = self.cov - factor @ core @ factor.transpose(-1, -2)
        return DenseCovariance(0.5 * (new + new.transpose(-1, -2)))

    def sample_white(self, eps: torch.Tensor) -> torch.Tensor:
        # Symmetric square root via eigh: robust for the singular posteriors of exact constraints.
        evals, evecs = torch.linalg.eigh(self.cov)
        root = evecs * _psd_sqrt(evals, self.n_points).unsqueeze(-2)
        return (root @ (evecs.transpose(-1, -2) @ eps.unsqueeze(-1))).squeeze(-1)

    def to(self, dtype: torch.dtype) -> DenseCovariance:
        return DenseCovariance(self.cov.to(dtype))

    def batch_index(self, index, batch_shape: torch.Size) -> DenseCovariance:
        return DenseCovariance(self.cov.expand(*batch_shape, self.n_points, self.n_points)[index])


class LowRankPlusDiagonal(Covariance):
    """``Sigma = diag(d) + U C U^T``: ``d (..., N)``, ``U (..., N, K)``, ``C (..., K, K)``.

    ``C`` is symmetric and may be indefinite as long as the whole matrix is PSD (a
    conditioning down-date).
    Products cost ``O(N K)`` and sampling ``O(N K^2)``; nothing ``N x N`` is formed.
    """

    def __init__(self, diag: torch.Tensor, factor: torch.Tensor, core: torch.Tensor):
        self.diag = diag
        self.factor = factor
        self.core = core

    @property
    def n_points(self) -> int:
        return self.diag.shape[-1]

    @property
    def rank(self) -> int:
        """K, the number of columns of the low-rank factor."""
        return self.factor.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return torch.broadcast_shapes(
            self.diag.shape[:-1], self.factor.shape[:-2], self.core.shape[:-2]
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.diag.dtype

    def diagonal(self) -> torch.Tensor:
        low_rank = ((self.factor @ self.core) * self.factor).sum(-1)
        # A down-date can leave -1e-17 where the exact value is 0: clip the round-off.
        return (self.diag + low_rank).clamp(min=0)

    def matmul(self, rhs: torch.Tensor) -> torch.Tensor:
        u = self.factor
        return self.diag.unsqueeze(-1) * rhs + u @ (self.core @ (u.transpose(-1, -2) @ rhs))

    def dense(self) -> torch.Tensor:
        _check_dense_size(self.batch_shape, self.n_points, self.dtype)
        u = self.factor
        low_rank = u @ self.core @ u.transpose(-1, -2)
        return torch.diag_embed(self.diag) + 0.5 * (low_rank + low_rank.transpose(-1, -2))

    def downdate(self, factor: torch.Tensor, core: torch.Tensor) -> Covariance:
        batch = torch.broadcast_shapes(self.batch_shape, factor.shape[:-2], core.shape[:-2])
        n, k, m = self.n_points, self.rank, factor.shape[-1]
        u = torch.cat([self.factor.expand(*batch, n, k), factor.expand(*batch, n, m)], dim=-1)
        c = torch.zeros(*batch, k + m, k + m, dtype=core.dtype, device=core.device)
        c[..., :k, :k] = self.core
        c[..., k:, k:] = -core
        return LowRankPlusDiagonal(self.diag, u, c)

    def sample_white(self, eps: torch.Tensor) -> torch.Tensor:
        """Samples for any PSD ``diag(d) + U C U^T``, zeros in ``d`` included.

        Entries of ``d`` below ``1e-8`` of the largest (exact zeros too: a noise-free point)
        are raised to the largest, ``s``, and the difference is moved into the low-rank part
        exactly, with one unit column per such point and core entry ``d_i - s``; the
        covariance is unchanged. Cost ``O(N (K + Z)^2)`` for ``Z`` such points.
        """
        batch, n = self.batch_shape, self.n_points
        d = self.diag.expand(*batch, n)
        u = self.factor.expand(*batch, n, self.rank)
        c = self.core.expand(*batch, self.rank, self.rank)
        s = d.amax(-1, keepdim=True)
        s = torch.where(s > 0, s, torch.ones_like(s))  # all zero: any positive level works
        small = d < _SMALL_DIAGONAL * s
        n_small = int(small.sum(-1).max()) if bool(small.any()) else 0
        if n_small:
            # The small points of each batch entry first (stable), padded by unused columns.
            order = torch.argsort((~small).to(torch.int8), dim=-1, stable=True)[..., :n_small]
            used = torch.gather(small, -1, order).to(d.dtype)  # (..., Z)
            unit = torch.zeros(*batch, n, n_small, dtype=d.dtype, device=d.device)
            unit.scatter_(-2, order.unsqueeze(-2), used.unsqueeze(-2))
            extra = torch.diag_embed((torch.gather(d, -1, order) - s) * used)
            u = torch.cat([u, unit], dim=-1)
            c = torch.cat([
                torch.cat([c, c.new_zeros(*batch, self.rank, n_small)], dim=-1),
                torch.cat([c.new_zeros(*batch, n_small, self.rank), extra], dim=-1)], dim=-2)
            d = torch.where(small, s.expand_as(d), d)
        # Sigma = D^1/2 (I + V C V^T) D^1/2 with V = D^-1/2 U = Q R (thin QR). A square root of
        # I + Q (R C R^T) Q^T is I + Q ((I + R C R^T)^1/2 - I) Q^T, built from a small eigh.
        sqrt_d = d.sqrt()
        q, r = torch.linalg.qr(u / sqrt_d.unsqueeze(-1))
        inner = r @ c @ r.transpose(-1, -2)
        inner = 0.5 * (inner + inner.transpose(-1, -2))
        eye = torch.eye(inner.shape[-1], dtype=inner.dtype, device=inner.device)
        evals, evecs = torch.linalg.eigh(eye + inner)
        root = evecs * _psd_sqrt(evals, n + inner.shape[-1], floor=1.0).unsqueeze(-2)
        root = root @ evecs.transpose(-1, -2)
        coeff = (q.transpose(-1, -2) @ eps.unsqueeze(-1))
        white = eps + (q @ ((root - eye) @ coeff)).squeeze(-1)
        return sqrt_d * white

    def to(self, dtype: torch.dtype) -> LowRankPlusDiagonal:
        return LowRankPlusDiagonal(self.diag.to(dtype), self.factor.to(dtype), self.core.to(dtype))

    def batch_index(self, index, batch_shape: torch.Size) -> LowRankPlusDiagonal:
        batch = batch_shape
        return LowRankPlusDiagonal(
            self.diag.expand(*batch, self.n_points)[index],
            self.factor.expand(*batch, *self.factor.shape[-2:])[index],
            self.core.expand(*batch, *self.core.shape[-2:])[index],
        )


def _check_psd(cov: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the smallest eigenvalue if ``cov`` is not PSD.

    Tolerance: eigenvalues down to ``-N eps max_i cov_ii`` (``eps`` of ``cov``'s dtype) are
    round-off. Tested by a Cholesky factorisation of ``cov + tol I`` in float64 (it succeeds
    exactly when every eigenvalue exceeds ``-tol``, up to round-off); the eigenvalues are only
    computed for the message.
    """
    n = cov.shape[-1]
    c64 = cov.to(torch.float64)
    scale = torch.diagonal(c64, dim1=-2, dim2=-1).amax(-1).clamp(min=torch.finfo(cov.dtype).tiny)
    tol = n * torch.finfo(cov.dtype).eps * scale
    eye = torch.eye(n, dtype=torch.float64, device=cov.device)
    _, info = torch.linalg.cholesky_ex(c64 + tol[..., None, None] * eye)
    if bool((info > 0).any()):
        smallest = torch.linalg.eigvalsh(c64).amin(-1)
        index = tuple(int(i) for i in torch.nonzero(info > 0)[0])
        raise ValueError(
            f"cov (shape {tuple(cov.shape)}) is not positive semi-definite: smallest eigenvalue "
            f"{float(smallest[index] if index else smallest):.3g} (batch index {index}), below "
            f"the round-off tolerance -{float(tol[index] if index else tol):.3g}"
        )


class Gaussian:
    """A Gaussian prediction ``N(mean, Sigma)`` at ``N`` points, batched over leading dims.

    The output of ProbConserv's Step 1 (Hansen et al., ICML 2023, Sec. 3, Eq. 3): any
    probabilistic black box's prediction on a grid, and the input and output of Step 2.

    Give exactly one covariance argument::

        Gaussian(mean, var=var)        # diagonal: var (..., N), every entry >= 0
        Gaussian(mean, cov=cov)        # dense: cov (..., N, N), symmetric PSD
        Gaussian(mean, covariance=c)   # any Covariance structure, e.g. LowRankPlusDiagonal

    Args:
        mean: ``(..., N)`` floating tensor, in the units of the predicted field ``u``.
        var: ``(..., N)`` marginal variances, units of ``u^2``; must have ``mean``'s shape.
        cov: ``(..., N, N)`` covariance; batch dims broadcast against ``mean``'s.
        covariance: a :class:`Covariance` object (no checks beyond shapes).

    Attributes:
        mean: ``(..., N)``.
        var: ``(..., N)`` marginal variances for any structure.
        cov: ``(..., N, N)`` dense covariance (materialised on request: ``O(N^2)`` memory).
        covariance: the structured :class:`Covariance`.

    Raises:
        ValueError: no or several covariance arguments; an empty ``mean``; shape mismatch (the
            message gives both shapes); NaN or infinite values; a negative variance; a
            non-symmetric ``cov``; a ``cov`` that is not positive semi-definite (the message
            names its smallest eigenvalue).
        TypeError: a non-numeric argument.
    """

    def __init__(self, mean, var=None, cov=None, *, covariance: Covariance | None = None):
        given = [name for name, v in (("var", var), ("cov", cov), ("covariance", covariance))
                 if v is not None]
        if len(given) != 1:
            raise ValueError(
                "Gaussian needs exactly one of var=, cov= or covariance=, got "
                + (", ".join(given) if given else "none")
            )
        mean = as_float_tensor("mean", mean, min_dim=1)
        if mean.numel() == 0:
            raise ValueError(f"mean is empty (shape {tuple(mean.shape)}): a prediction needs "
                             "at least one point and a non-empty batch")
        check_finite("mean", mean)
        n = mean.shape[-1]
        if var is not None:
            var = as_float_tensor("var", var).to(mean.dtype)
            if var.shape != mean.shape:
                raise ValueError(
                    f"var must have the shape of mean {tuple(mean.shape)}, got {tuple(var.shape)}"
                )
            check_finite("var", var)
            if bool((var < 0).any()):
                index = tuple(int(i) for i in torch.nonzero(var < 0)[0])
                raise ValueError(
                    f"var (shape {tuple(var.shape)}) must be >= 0, got {float(var[index]):.3g} "
                    f"at index {index}"
                )
            covariance = DiagonalCovariance(var)
        elif cov is not None:
            cov = as_float_tensor("cov", cov, min_dim=2).to(mean.dtype)
            if cov.shape[-2:] != (n, n):
                raise ValueError(
                    f"cov must have shape (..., {n}, {n}) to match mean {tuple(mean.shape)}, "
                    f"got {tuple(cov.shape)}"
                )
            check_broadcastable(("mean", "cov"), mean.shape[:-1], cov.shape[:-2])
            check_finite("cov", cov)
            asym = (cov - cov.transpose(-1, -2)).abs().amax()
            scale = cov.abs().amax().clamp(min=torch.finfo(cov.dtype).tiny)
            if float(asym / scale) > 1e3 * torch.finfo(cov.dtype).eps:
                raise ValueError(
                    f"cov (shape {tuple(cov.shape)}) is not symmetric: max |cov - cov^T| = "
                    f"{float(asym):.3g}"
                )
            if bool((torch.diagonal(cov, dim1=-2, dim2=-1) < 0).any()):
                raise ValueError(f"cov (shape {tuple(cov.shape)}) has a negative diagonal entry")
            _check_psd(cov)
            covariance = DenseCovariance(cov)
        else:
            if not isinstance(covariance, Covariance):
                raise TypeError(
                    f"covariance must be a Covariance, got {type(covariance).__name__}"
                )
            if covariance.n_points != n:
                raise ValueError(
                    f"covariance is {covariance.n_points} x {covariance.n_points} but mean "
                    f"{tuple(mean.shape)} has N = {n}"
                )
            check_broadcastable(("mean", "covariance"), mean.shape[:-1], covariance.batch_shape)
        self.mean = mean
        self.covariance = covariance

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        """N, the number of points of the prediction."""
        return self.mean.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        """Leading dims of ``mean`` and the covariance, broadcast together."""
        return torch.broadcast_shapes(self.mean.shape[:-1], self.covariance.batch_shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.mean.dtype

    # -- moments --------------------------------------------------------------------------------
    @property
    def var(self) -> torch.Tensor:
        """Marginal variances ``(..., N)`` (the diagonal of the covariance)."""
        return self.covariance.diagonal().expand(*self.batch_shape, self.n_points)

    @property
    def std(self) -> torch.Tensor:
        """Marginal standard deviations ``(..., N)``."""
        return self.var.sqrt()

    @property
    def cov(self) -> torch.Tensor:
        """Dense covariance ``(..., N, N)``; forms an ``N x N`` matrix for structured types.

        Raises:
            ValueError: a structured covariance whose dense form would exceed
                :data:`DENSE_LIMIT_BYTES` (2 GiB; ``N = 10^6`` would take 8 TB).
        """
        return self.covariance.dense()

    def to(self, dtype: torch.dtype) -> Gaussian:
        """The same prediction in another floating dtype."""
        return Gaussian(self.mean.to(dtype), covariance=self.covariance.to(dtype))

    def __getitem__(self, index) -> Gaussian:
        """Index the batch dims, e.g. ``pred[:, 3]``; the point dim is never indexed.

        ``index`` is an int, slice or tuple of those over the leading dims only.
        """
        index = index if isinstance(index, tuple) else (index,)
        if len(index) > len(self.batch_shape) or any(i is Ellipsis for i in index):
            raise IndexError(
                f"index {index} must address the {len(self.batch_shape)} batch dims only"
            )
        mean = self.mean.expand(*self.batch_shape, self.n_points)[index]
        return Gaussian(mean, covariance=self.covariance.batch_index(index, self.batch_shape))

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Joint samples from the full covariance structure, shape ``(n_samples, ..., N)``.

        Never independent per-point noise: correlations (for example the one a conservation
        constraint introduces) are kept.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        shape = (n_samples, *self.batch_shape, self.n_points)
        eps = torch.randn(shape, generator=generator, dtype=self.dtype, device=self.mean.device)
        return self.mean + self.covariance.sample_white(eps)

    def __repr__(self) -> str:
        return (
            f"Gaussian(batch_shape={tuple(self.batch_shape)}, n_points={self.n_points}, "
            f"covariance={type(self.covariance).__name__}, dtype={self.dtype})"
        )


def moment_match(pred: Gaussian, dim: int = 0) -> Gaussian:
    """Collapse an equally weighted mixture of Gaussians along ``dim`` to one diagonal Gaussian.

    Mean of the means, and (law of total variance) mean of the variances plus the variance of
    the means (population variance). This is how a latent-variable model such as the ANP turns
    its latent samples into one predictive distribution (Hansen et al. 2023, Sec. 3).

    Args:
        pred: mixture components, batch dim ``dim`` indexing the components.
        dim: the component dimension (counted over ``pred.mean``'s dims; must not be the last).

    Returns:
        A :class:`Gaussian` with diagonal covariance, ``dim`` removed.
    """
    ndim = pred.mean.dim()
    if not -ndim <= dim < ndim or dim % ndim == ndim - 1:
        raise ValueError(
            f"dim={dim} must index a batch dimension of mean {tuple(pred.mean.shape)}, "
            "not the point dimension"
        )
    mean = pred.mean.mean(dim)
    var = pred.var.mean(dim) + pred.mean.var(dim, unbiased=False)
    return Gaussian(mean, var=var)
