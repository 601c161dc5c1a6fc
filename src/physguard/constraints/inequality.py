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


def _sqrt_factor(cov: Covariance):
    """``F`` with ``F F^T = Sigma`` for one batch element: a SciPy CSC matrix ``(N, K)``.

    Diagonal priors never come here: :func:`_solve_qps_diagonal` builds their blocks directly.
    """
    import scipy.sparse as sp

    if isinstance(cov, LowRankPlusDiagonal):
        core = cov.core.double()
        evals, evecs = torch.linalg.eigh(0.5 * (core + core.transpose(-1, -2)))
        if bool((evals >= -1e-12 * evals.abs().max().clamp(min=1e-300)).all()) \
                and bool((cov.diag >= 0).all()):
            root = evecs * evals.clamp(min=0).sqrt()
            return sp.hstack([sp.diags(cov.diag.double().sqrt().numpy()),
                              sp.csc_matrix((cov.factor.double() @ root).numpy())], format="csc")
    # Dense: Sigma = c I + V diag(lam - c) V^T with c the smallest eigenvalue; the PSD part
    # keeps only eigenvalues above 1e-10 of the largest. Smooth kernels (a GP posterior) have
    # few, so F is an identity plus a thin dense block and the QP is ~7x faster than with a
    # Cholesky factor. The truncation perturbs the metric by <= 1e-10 relative, and the
    # active-set polish uses the exact Sigma.
    dense = cov.dense().double()
    evals, evecs = torch.linalg.eigh(0.5 * (dense + dense.transpose(-1, -2)))
    c = float(evals[0].clamp(min=0))
    keep = (evals - c) > 1e-10 * float(evals[-1].clamp(min=1e-300))
    thin = sp.csc_matrix((evecs[:, keep] * (evals[keep] - c).sqrt()).numpy())
    if c > 0:
        return sp.hstack([sp.identity(dense.shape[-1]) * np.sqrt(c), thin], format="csc")
    return thin


def _clarabel(A, rhs: np.ndarray, cones: list, k: int) -> np.ndarray:
    """``argmin |z|^2 / 2`` s.t. ``A z + s = rhs``, ``s`` in ``cones`` (Clarabel); ``z (k,)``.

    The problem is solved for ``w = z / c`` (the cones are invariant under positive scaling
    and the minimiser scales with ``c``): first with ``c = max(1, max |rhs|)``, and if
    Clarabel stops without an answer, with ``c = max |rhs| / max |A|``, the size of ``z``
    that the data imply. So a prior mean of size 1000, or a standard deviation of 1e-3 that
    makes ``z`` of size 1000, is no harder than size 1. Each scale is tried with Clarabel's
    Ruiz equilibration and, where that stalls (MaxIterations on a 4-point dense prior found
    by the hypothesis test of ``tests/test_nonnegative.py``, seed 523), without it. A
    solver failure is told apart from a true infeasibility by an independent feasibility LP
    (HiGHS through SciPy).

    Raises:
        ValueError: no ``z`` satisfies the constraints (infeasible), or one does but the
            solver stopped without an answer (the message says which).
    """
    import clarabel
    import scipy.sparse as sp

    rhs_size, a_size = float(np.abs(rhs).max(initial=0.0)), float(abs(A).max())
    scales = [max(1.0, rhs_size)]
    if rhs_size > 0 and a_size > 0:
        scales.append(rhs_size / a_size)
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    # Tighter than the defaults (1e-8): the gap is measured on the whole block, and the
    # active-set polish needs each row's answer close to the optimum.
    settings.tol_gap_abs = settings.tol_gap_rel = 1e-11
    for c in scales:
        for equilibrate in (True, False):
            settings.equilibrate_enable = equilibrate
            solution = clarabel.DefaultSolver(sp.identity(k, format="csc"), np.zeros(k), A,
                                              rhs / c, cones, settings).solve()
            if str(solution.status) in ("Solved", "AlmostSolved"):
                return c * np.asarray(solution.x)
    if not _feasible(A, rhs, cones):
        raise ValueError("the non-negativity QP has no solution: G u = b admits no u >= lower "
                         f"(e.g. a total below lower times the domain length; Clarabel: "
                         f"{solution.status})")
    raise ValueError(f"the non-negativity QP is feasible, but Clarabel stopped with status "
                     f"{solution.status} without solving it (a badly conditioned prior?)")


def _feasible(A, rhs: np.ndarray, cones: list) -> bool:
    """Whether ``A z + s = rhs`` has a solution with ``s`` in the zero / non-negative cones."""
    import clarabel
    from scipy.optimize import linprog

    A = A.tocsr()
    equal = np.concatenate([np.full(cone.dim, isinstance(cone, clarabel.ZeroConeT))
                            for cone in cones])
    c = max(1.0, float(np.abs(rhs).max(initial=0.0)))
    result = linprog(np.zeros(A.shape[1]), A_ub=A[~equal], b_ub=rhs[~equal] / c,
                     A_eq=A[equal], b_eq=rhs[equal] / c, bounds=(None, None), method="highs")
    return result.status != 2  # 2: infeasible


def _solve_qps(problems: list[tuple], lower: float, rows_per_solve: int = 64) -> np.ndarray:
    """Solve the QPs ``(mu, F, G, b)`` with Clarabel, many rows per call (block diagonal).

    Each block is ``min |z|^2 / 2`` s.t. ``G F z = b - G mu`` (zero cone) and
    ``F z >= lower - mu`` (non-negative cone); returns ``u = mu + F z``, ``(K, N)``.
    """
    import clarabel
    import scipy.sparse as sp

    out = []
    for start in range(0, len(problems), rows_per_solve):
        chunk = problems[start:start + rows_per_solve]
        blocks, rhs, cones, sizes = [], [], [], []
        for mu, F, G, b in chunk:
            blocks.append(sp.vstack([sp.csc_matrix(G) @ F, -F], format="csc"))
            rhs += [b - G @ mu, mu - lower]
            cones += [clarabel.ZeroConeT(G.shape[0]), clarabel.NonnegativeConeT(mu.shape[0])]
            sizes.append(F.shape[1])
        z = _clarabel(sp.block_diag(blocks, format="csc"), np.concatenate(rhs), cones,
                      sum(sizes))
        offsets = np.cumsum([0] + sizes)
        for (mu, F, _, _), lo, hi in zip(chunk, offsets[:-1], offsets[1:], strict=True):
            out.append(mu + F @ z[lo:hi])
    return np.array(out)


def _solve_qps_diagonal(mu: np.ndarray, sd: np.ndarray, G: np.ndarray, b: np.ndarray,
                        lower: float, rows_per_solve: int = 64) -> np.ndarray:
    """:func:`_solve_qps` for diagonal priors ``F = diag(sd)``, the sparse blocks assembled
    without a Python loop. ``mu, sd (K, N)``, ``G (K, M, N)``, ``b (K, M)``."""
    import clarabel
    import scipy.sparse as sp

    n_rows, n = mu.shape
    m = G.shape[1]
    out = np.empty_like(mu)
    for start in range(0, n_rows, rows_per_solve):
        sl = slice(start, start + rows_per_solve)
        k = mu[sl].shape[0]
        block = np.arange(k)[:, None, None]
        # Block r: rows r (m + n) + [0, m) hold G_r diag(sd_r); rows r (m + n) + m + i hold
        # -sd_r[i] in column r n + i.
        eq_rows = block * (m + n) + np.arange(m)[None, :, None]
        eq_cols = block * n + np.arange(n)[None, None, :]
        eq_vals = G[sl] * sd[sl][:, None, :]
        bd_rows = block[:, 0] * (m + n) + m + np.arange(n)[None, :]
        bd_cols = block[:, 0] * n + np.arange(n)[None, :]
        rows = np.concatenate([np.broadcast_to(eq_rows, eq_vals.shape).ravel(), bd_rows.ravel()])
        cols = np.concatenate([np.broadcast_to(eq_cols, eq_vals.shape).ravel(), bd_cols.ravel()])
        vals = np.concatenate([eq_vals.ravel(), -sd[sl].ravel()])
        A = sp.csc_matrix((vals, (rows, cols)), shape=(k * (m + n), k * n))
        rhs = np.concatenate([b[sl] - np.einsum("kmn,kn->km", G[sl], mu[sl]), mu[sl] - lower],
                             axis=1).ravel()
        cones = [clarabel.ZeroConeT(m), clarabel.NonnegativeConeT(n)] * k
        z = _clarabel(A, rhs, cones, k * n).reshape(k, n)
        out[sl] = mu[sl] + sd[sl] * z
    return out


def _polish_diagonal(mu, var, g, b, u, lower: float, scale: float, max_rounds: int = 20):
    """Vectorised exact polish for diagonal priors and one constraint row (rows ``(K, N)``).

    With ``u_A = lower`` on the active set ``A`` the free points are
    ``mu_f - lam var_f g_f`` with ``lam = (g_f.mu_f + lower sum g_A - b) / (g_f^2 . var_f)``,
    and the bound's multipliers are ``nu_A = (lower - mu_A) / var_A + lam g_A``. Starting from
    the solver's active set, points below the bound join ``A`` and points with ``nu < 0``
    leave it (a primal-dual active-set iteration); a row is accepted when both KKT conditions
    hold to round-off, which certifies the exact optimum of the convex QP.
    Returns the polished rows and a mask of the rows where the polish was accepted.
    """
    tol = 1e-12 * scale
    active = u <= lower + 1e-7 * scale
    ok = np.zeros(u.shape[0], dtype=bool)
    candidate = u
    for _ in range(max_rounds):
        free = ~active
        denom = (g * g * var * free).sum(-1)
        lam = ((g * mu * free).sum(-1) + lower * (g * active).sum(-1) - b) \
            / np.where(denom > 0, denom, 1.0)
        candidate = np.where(active, lower, mu - lam[:, None] * var * g)
        nu = (lower - mu) / var + lam[:, None] * g
        nu_scale = np.abs((lower - mu) / var).max(-1) + np.abs(lam * np.abs(g).max(-1))
        below = candidate < lower - tol
        wrong_sign = active & (nu < -1e-9 * nu_scale[:, None])
        ok = (denom > 0) & ~below.any(-1) & ~wrong_sign.any(-1)
        if ok.all():
            break
        active = (active | below) & ~wrong_sign
    return np.where(ok[:, None], candidate, u), ok


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


def nonnegative(pred: Gaussian, constraint: LinearConstraint, lower: float = 0.0, *,
                posterior: Gaussian | None = None) -> tuple[Gaussian, NonNegativeReport]:
    """ProbConserv with ``u >= lower`` added: the posterior mode under both constraints.

    Args:
        pred: prior prediction (Step 1), mean ``(..., N)``, any covariance structure.
        constraint: the exact conservation constraint ``G (..., M, N)``, ``b (..., M)`` with
            ``noise_var = 0``.
        lower: the bound (units of ``u``), 0 for non-negativity.
        posterior: ``probconserv(pred, constraint)`` when the caller has it already (it is
            the starting point; passing it saves recomputing it).

    Returns:
        ``(posterior, report)``: the ProbConserv posterior with its mean replaced by the QP
        solution where the bound binds (``G mean = b`` to round-off, ``mean >= lower``), and a
        :class:`NonNegativeReport`.

    Raises:
        ValueError: ``noise_var > 0`` (the QP needs the exact constraint), a non-finite
            ``lower``, tensors that require gradients, a row with no feasible profile, or a
            feasible row the solver could not solve (the message says which); and whatever
            :func:`~physguard.probconserv` raises.
    """
    if constraint.is_sparse:
        raise TypeError("nonnegative needs a dense G (a few rows per prediction)")
    if any(t.requires_grad for t in (pred.mean, pred.var, constraint.G, constraint.b)):
        raise ValueError("nonnegative solves a QP outside autograd, so it cannot pass "
                         "gradients: give it detached tensors (probconserv is differentiable)")
    lower = float(lower)
    if not np.isfinite(lower):
        raise ValueError(f"lower must be finite, got {lower}")
    if bool((constraint.noise_var > 0).any()):
        raise ValueError("nonnegative needs an exact constraint (noise_var = 0)")
    post = probconserv(pred, constraint) if posterior is None else posterior
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
    index = torch.as_tensor(rows, dtype=torch.long)
    mus = prior.mean.expand(*batch, n).reshape(-1, n)[index].numpy()
    Gs = G_all.reshape(-1, *G_all.shape[-2:])[index].numpy()
    bs = b_all.reshape(-1, b_all.shape[-1])[index].numpy()
    diagonal = isinstance(prior.covariance, DiagonalCovariance)
    if diagonal:
        var = prior.covariance.var.expand(*batch, n).reshape(-1, n)[index].numpy()
        elements = None  # built only if the general polish needs them
        solved = _solve_qps_diagonal(mus, np.sqrt(var), Gs, bs, lower) if rows \
            else np.empty((0, n))
    else:
        elements = []
        for k, row in enumerate(rows):
            where = tuple(int(i) for i in np.unravel_index(row, tuple(batch))) if batch else ()
            elements.append(Gaussian(torch.from_numpy(mus[k]),
                                     covariance=prior.covariance.batch_index(where, batch)))
        solved = _solve_qps([(mus[k], _sqrt_factor(e.covariance), Gs[k], bs[k])
                             for k, e in enumerate(elements)], lower) if rows \
            else np.empty((0, n))
    if diagonal and Gs.shape[1] == 1:  # closed form, vectorised, KKT-certified
        solved, ok = _polish_diagonal(mus, var, Gs[:, 0], bs[:, 0], solved, lower, scale)
        polished = int(ok.sum())
    else:
        if elements is None:
            elements = [Gaussian(torch.from_numpy(mus[k]), var=torch.from_numpy(var[k]))
                        for k in range(len(rows))]
        polished = 0
        for k, element in enumerate(elements):
            exact = _polish(element, Gs[k], bs[k], solved[k], lower, scale)
            if exact is not None:
                solved[k], polished = exact, polished + 1
    max_change = total_change = 0.0
    active = 0
    if rows:
        before = mean[rows].numpy()
        change = np.abs(solved - before)
        max_change, total_change = float(change.max()), float(change.sum())
        active = int((solved <= lower + tol).sum())
        mean[rows] = torch.from_numpy(solved)
    changed_points = len(rows) * n
    report = NonNegativeReport(
        n_rows=int(np.prod(tuple(batch))), n_changed=len(rows),
        n_polished=polished, max_change=max_change,
        mean_abs_change=total_change / changed_points if rows else 0.0,
        active_fraction=active / changed_points if rows else 0.0)
    out = Gaussian(mean.reshape(*batch, n).to(pred.dtype), covariance=post.covariance)
    return out, report

