"""Non-negativity on top of the conservation constraint: a QP in the posterior metric.

Hansen et al., ICML 2023 (arXiv 2302.11002), appendix on inequality constraints: a conserved
quantity such as a density, a saturation or a temperature above a threshold must also stay
``>= 0``, which no Gaussian conditioning can guarantee. Given the prior ``N(mu, Sigma)`` of one
time row and the exact conservation constraint ``G u = b``, the answer is the most probable
profile of the ProbConserv posterior among those with ``u >= lower``::

    u* = argmin (u - mu)^T Sigma^-1 (u - mu)   subject to   G u = b,  u >= lower.

On the affine set ``G u = b`` the ProbConserv posterior's density is the prior's restricted to it,
so this is the QP "in the posterior metric". Where the ProbConserv mean is already ``>= lower``
it *is* ``u*`` (KKT with zero multipliers) and nothing is solved. Elsewhere:

1. write ``Sigma = F F^T`` with a sparse factor where the structure allows it (diagonal:
   ``F = diag(sigma)``; diagonal plus PSD low rank: ``[diag(sqrt d), U C^1/2]``; dense: Cholesky,
   or a symmetric square root when singular) and ``u = mu + F z``, so the problem is
   ``min |z|^2 / 2`` s.t. ``G F z = b - G mu``, ``F z >= lower - mu`` (works with a singular
   ``Sigma``, never inverts it);
2. solve it with Clarabel (Goulart & Chen 2024, an interior-point conic solver);
3. polish: the points the solver puts on the bound form the active set ``A``; conditioning the
   prior exactly on ``G u = b`` and ``u_A = lower`` (:func:`~physguard.probconserv` with the
   extra rows) gives the QP's solution to round-off when ``A`` is right, which is checked
   (feasibility to round-off); otherwise the solver's answer is kept.

Only the mean changes. The covariance returned is the ProbConserv posterior's (so samples still
conserve the total exactly; they are not truncated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .gaussian import Covariance, DiagonalCovariance, Gaussian, LowRankPlusDiagonal
from .linear import LinearConstraint, probconserv

__all__ = ["NonNegativeReport", "nonnegative"]


@dataclass(frozen=True)
class NonNegativeReport:
    """What the inequality step did.

    Attributes:
        n_rows: prediction rows (batch elements) examined.
        n_changed: rows whose ProbConserv mean went below ``lower`` and were re-solved.
        n_polished: changed rows whose answer was made exact by the active-set polish.
        max_change: ``max |u* - mean~|`` over all rows (units of ``u``).
        mean_abs_change: mean of ``|u* - mean~|`` over every point of the changed rows.
        active_fraction: fraction of the changed rows' points held at ``lower``.
    """

    n_rows: int
    n_changed: int
    n_polished: int
    max_change: float
    mean_abs_change: float
    active_fraction: float

    @property
    def changed_fraction(self) -> float:
        return self.n_changed / self.n_rows if self.n_rows else 0.0


def _sqrt_factor(cov: Covariance) -> np.ndarray:
    """``F`` with ``F F^T = Sigma`` for one batch element, as a float64 array ``(N, K)``."""
    if isinstance(cov, DiagonalCovariance):
        return np.diag(cov.var.double().sqrt().numpy())
    if isinstance(cov, LowRankPlusDiagonal):
        core = cov.core.double()
        evals, evecs = torch.linalg.eigh(0.5 * (core + core.transpose(-1, -2)))
        if bool((evals >= -1e-12 * evals.abs().max().clamp(min=1e-300)).all()) \
                and bool((cov.diag >= 0).all()):
            root = evecs * evals.clamp(min=0).sqrt()
            return np.hstack([np.diag(cov.diag.double().sqrt().numpy()),
                              (cov.factor.double() @ root).numpy()])
    # Dense: Sigma = c I + V diag(lam - c) V^T with c the smallest eigenvalue; the PSD part
    # keeps only eigenvalues above 1e-10 of the largest. Smooth kernels (a GP posterior) have
    # few, so F is an identity plus a thin dense block and the QP is ~7x faster than with a
    # Cholesky factor. The truncation perturbs the metric by <= 1e-10 relative, and the
    # active-set polish uses the exact Sigma.
    dense = cov.dense().double()
    evals, evecs = torch.linalg.eigh(0.5 * (dense + dense.transpose(-1, -2)))
    c = float(evals[0].clamp(min=0))
    keep = (evals - c) > 1e-10 * float(evals[-1].clamp(min=1e-300))
    thin = (evecs[:, keep] * (evals[keep] - c).sqrt()).numpy()
    return np.hstack([np.sqrt(c) * np.eye(dense.shape[-1]), thin]) if c > 0 else thin


def _solve_qp(mu: np.ndarray, F: np.ndarray, G: np.ndarray, b: np.ndarray,
              lower: float) -> np.ndarray:
    import clarabel
    import scipy.sparse as sp

    n, k = F.shape
    m = G.shape[0]
    P = sp.identity(k, format="csc")
    A = sp.csc_matrix(np.vstack([G @ F, -F]))
    rhs = np.concatenate([b - G @ mu, mu - lower])
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    solver = clarabel.DefaultSolver(P, np.zeros(k), A, rhs,
                                    [clarabel.ZeroConeT(m), clarabel.NonnegativeConeT(n)],
                                    settings)
    solution = solver.solve()
    if str(solution.status) not in ("Solved", "AlmostSolved"):
        raise ValueError(f"the non-negativity QP has no solution (Clarabel: {solution.status}): "
                         "G u = b admits no u >= lower, e.g. a negative total")
    return mu + F @ np.asarray(solution.x)


def _polish(element: Gaussian, G: np.ndarray, b: np.ndarray, u: np.ndarray, lower: float,
            scale: float, max_rounds: int = 5) -> np.ndarray | None:
    """The exact QP solution from the solver's active set, or ``None`` if it cannot be trusted.

    Conditions the prior on ``G u = b`` and ``u_A = lower``; points that come out below the
    bound join ``A`` (a few rounds). Accepted when feasible to round-off and within ``1e-5``
    (relative) of the solver's answer, whose accuracy is about ``1e-8``.
    """
    n = u.shape[0]
    active = set(np.flatnonzero(u <= lower + 1e-7 * scale).tolist())
    tol = 1e-12 * scale
    for _ in range(max_rounds):
        if not active:
            return None
        rows = sorted(active)
        extra = np.zeros((len(rows), n))
        extra[np.arange(len(rows)), rows] = 1.0
        try:
            candidate = probconserv(element, LinearConstraint(
                np.vstack([G, extra]), np.concatenate([b, np.full(len(rows), lower)]))
            ).mean.numpy()
        except ValueError:  # dependent rows, or no prior variance there
            return None
        below = np.flatnonzero(candidate < lower - tol)
        if below.size == 0:
            close = np.abs(candidate - u).max() <= 1e-5 * scale
            return candidate if close else None
        active.update(below.tolist())
    return None


def nonnegative(pred: Gaussian, constraint: LinearConstraint, lower: float = 0.0,
                ) -> tuple[Gaussian, NonNegativeReport]:
    """ProbConserv with ``u >= lower`` added: the posterior mode under both constraints.

    Args:
        pred: prior prediction (Step 1), mean ``(..., N)``, any covariance structure.
        constraint: the exact conservation constraint ``G (..., M, N)``, ``b (..., M)`` with
            ``noise_var = 0``.
        lower: the bound (units of ``u``), 0 for non-negativity.

    Returns:
        ``(posterior, report)``: the ProbConserv posterior with its mean replaced by the QP
        solution where the bound binds (``G mean = b`` to round-off, ``mean >= lower``), and a
        :class:`NonNegativeReport`.

    Raises:
        ValueError: ``noise_var > 0`` (the QP needs the exact constraint), a non-finite
            ``lower``, or a row with no feasible profile; and whatever
            :func:`~physguard.probconserv` raises.
    """
    lower = float(lower)
    if not np.isfinite(lower):
        raise ValueError(f"lower must be finite, got {lower}")
    if bool((constraint.noise_var > 0).any()):
        raise ValueError("nonnegative needs an exact constraint (noise_var = 0)")
    post = probconserv(pred, constraint)
    n = pred.n_points
    batch = torch.broadcast_shapes(pred.batch_shape, constraint.G.shape[:-2],
                                   constraint.b.shape[:-1])
    mean = post.mean.double().expand(*batch, n).reshape(-1, n).clone()
    scale = 1.0 + float(pred.mean.abs().max())
    tol = 1e-12 * scale
    rows = torch.nonzero((mean < lower - tol).any(-1)).flatten().tolist()
    G_all = constraint.G.double().expand(*batch, *constraint.G.shape[-2:])
    b_all = constraint.b.double().expand(*batch, constraint.b.shape[-1])
    prior = pred.to(torch.float64)
    max_change, total_change, active, polished = 0.0, 0.0, 0, 0
    for row in rows:
        index = tuple(int(i) for i in np.unravel_index(row, tuple(batch))) if batch else ()
        element = Gaussian(prior.mean.expand(*batch, n)[index],
                           covariance=prior.covariance.batch_index(index, batch))
        G, b = G_all[index].numpy(), b_all[index].numpy()
        mu = element.mean.numpy()
        u = _solve_qp(mu, _sqrt_factor(element.covariance), G, b, lower)
        exact = _polish(element, G, b, u, lower, scale)
        if exact is not None:
            u = exact
            polished += 1
        change = np.abs(u - mean[row].numpy())
        max_change = max(max_change, float(change.max()))
        total_change += float(change.sum())
        active += int((u <= lower + tol).sum())
        mean[row] = torch.from_numpy(u)
    changed_points = len(rows) * n
    report = NonNegativeReport(
        n_rows=int(np.prod(tuple(batch))) if batch else 1, n_changed=len(rows),
        n_polished=polished, max_change=max_change,
        mean_abs_change=total_change / changed_points if rows else 0.0,
        active_fraction=active / changed_points if rows else 0.0)
    out = Gaussian(mean.reshape(*batch, n).to(pred.dtype), covariance=post.covariance)
    return out, report

