"""Properties of the ProbConserv and HardC updates (Hansen et al., ICML 2023, Eq. 5-6)."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import physguard as pg
from physguard.constraints import LowRankPlusDiagonal

F64 = torch.float64


@st.composite
def problems(draw, structures=("diag", "dense", "lowrank")):
    """A random prior (structure, batch, N) and a random full-rank constraint (M <= N)."""
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(2, 24))
    m = draw(st.integers(1, min(n, 4)))
    batch = draw(st.sampled_from([(), (3,), (2, 3)]))
    structure = draw(st.sampled_from(structures))
    noise = draw(st.sampled_from([0.0, 0.0, 1e-3, 0.5]))
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(*batch, n, generator=gen, dtype=F64)
    var = 0.05 + torch.rand(*batch, n, generator=gen, dtype=F64)
    if structure == "diag":
        pred = pg.Gaussian(mean, var=var)
    elif structure == "dense":
        a = torch.randn(*batch, n, n, generator=gen, dtype=F64) / n**0.5
        cov = a @ a.transpose(-1, -2) + torch.diag_embed(var)
        pred = pg.Gaussian(mean, cov=0.5 * (cov + cov.transpose(-1, -2)))
    else:
        k = draw(st.integers(1, 5))
        u = torch.randn(*batch, n, k, generator=gen, dtype=F64) / k**0.5
        core = torch.eye(k, dtype=F64).expand(*batch, k, k)
        pred = pg.Gaussian(mean, covariance=LowRankPlusDiagonal(var, u, core))
    G = torch.randn(m, n, generator=gen, dtype=F64) + 0.1
    # Well-posed constraints only: round-off grows with cond(G), which is not what is tested.
    assume(float(torch.linalg.cond(G)) < 1e3)
    b = torch.randn(*batch, m, generator=gen, dtype=F64)
    return pred, pg.LinearConstraint(G, b, noise_var=noise)


def reference_update(pred, constraint):
    """Eq. 5-6 written directly with dense matrices and a general solver (independent path)."""
    sigma = pred.cov
    G, b = constraint.G, constraint.b
    S = G @ sigma @ G.T + constraint.noise_var * torch.eye(G.shape[0], dtype=F64)
    gain = torch.linalg.solve(S, G @ sigma).transpose(-1, -2)  # Sigma G^T S^-1
    r = (G @ pred.mean.unsqueeze(-1)).squeeze(-1) - b
    mean = pred.mean - (gain @ r.unsqueeze(-1)).squeeze(-1)
    cov = sigma - gain @ G @ sigma
    return mean, cov


def scale(*tensors):
    return 1.0 + max(float(t.abs().max()) for t in tensors)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_exact_limit_satisfies_constraint(problem):
    pred, constraint = problem
    constraint = pg.LinearConstraint(constraint.G, constraint.b, noise_var=0.0)
    post = pg.probconserv(pred, constraint)
    residual = constraint.residual(post.mean)
    assert residual.abs().max() <= 1e-10 * scale(constraint.b, pred.mean, constraint.G)
    # The posterior has no variance along the constraint rows: G Sigma~ G^T = 0.
    G = constraint.G
    gsg = G @ post.cov @ G.T
    assert gsg.abs().max() <= 1e-10 * scale(pred.cov) * scale(G) ** 2


@settings(max_examples=150, deadline=None)
@given(problems())
def test_matches_the_dense_formula(problem):
    pred, constraint = problem
    post = pg.probconserv(pred, constraint)
    mean, cov = reference_update(pred, constraint)
    tol = 1e-9 * scale(pred.mean, pred.cov, constraint.b)
    assert torch.allclose(post.mean, mean, atol=tol, rtol=0)
    assert torch.allclose(post.cov, cov, atol=tol, rtol=0)
    assert torch.allclose(post.var, torch.diagonal(cov, dim1=-2, dim2=-1), atol=tol, rtol=0)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_posterior_is_symmetric_psd_and_shrinks(problem):
    pred, constraint = problem
    post = pg.probconserv(pred, constraint)
    cov = post.cov
    assert torch.allclose(cov, cov.transpose(-1, -2), atol=1e-12 * scale(pred.cov), rtol=0)
    evals = torch.linalg.eigvalsh(cov)
    assert evals.min() >= -1e-10 * scale(pred.cov)
    # Conditioning never increases any marginal variance.
    assert (post.var <= pred.var + 1e-12 * scale(pred.cov)).all()


@settings(max_examples=60, deadline=None)
@given(problems())
def test_infinite_noise_returns_the_prior(problem):
    pred, constraint = problem
    vague = pg.LinearConstraint(constraint.G, constraint.b, noise_var=1e16)
    post = pg.probconserv(pred, vague)
    assert torch.allclose(post.mean, pred.mean, atol=1e-10 * scale(pred.mean, constraint.b))
    assert torch.allclose(post.cov, pred.cov, atol=1e-10 * scale(pred.cov))


@settings(max_examples=100, deadline=None)
@given(problems(structures=("diag",)))
def test_diagonal_and_dense_paths_agree(problem):
    pred, constraint = problem
    dense = pg.Gaussian(pred.mean, cov=torch.diag_embed(pred.var))
    post_diag = pg.probconserv(pred, constraint)
    post_dense = pg.probconserv(dense, constraint)
    assert isinstance(post_diag.covariance, LowRankPlusDiagonal)
    assert torch.allclose(post_diag.mean, post_dense.mean, atol=1e-10, rtol=0)
    assert torch.allclose(post_diag.cov, post_dense.cov, atol=1e-10, rtol=0)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_mean_is_the_closest_feasible_point_in_the_prior_metric(problem):
    """mean~ minimises (u - mu)^T Sigma^-1 (u - mu) on G u = b: the step is Sigma G^T lambda."""
    pred, constraint = problem
    constraint = pg.LinearConstraint(constraint.G, constraint.b, noise_var=0.0)
    post = pg.probconserv(pred, constraint)
    step = torch.linalg.solve(pred.cov, (post.mean - pred.mean).unsqueeze(-1))
    # Sigma^-1 (mean~ - mu) must lie in the row space of G.
    G = constraint.G
    proj = G.T @ torch.linalg.pinv(G.T) @ step
    assert torch.allclose(proj, step, atol=1e-7 * scale(step), rtol=0)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_hardc_is_the_orthogonal_projection(problem):
    pred, constraint = problem
    constraint = pg.LinearConstraint(constraint.G, constraint.b, noise_var=0.0)
    post = pg.hardc(pred, constraint)
    assert constraint.residual(post.mean).abs().max() <= 1e-10 * scale(
        constraint.b, pred.mean, constraint.G
    )
    step = (post.mean - pred.mean).unsqueeze(-1)
    G = constraint.G
    assert torch.allclose(G.T @ torch.linalg.pinv(G.T) @ step, step, atol=1e-10 * scale(step))
    assert torch.equal(post.var, pred.var)


def test_batched_update_equals_a_loop():
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(4, 7, 30, generator=gen, dtype=F64)
    var = torch.rand(4, 7, 30, generator=gen, dtype=F64) + 0.1
    mass = torch.randn(4, 7, generator=gen, dtype=F64)
    x = torch.linspace(0, 1, 30, dtype=F64)
    post = pg.probconserv(pg.Gaussian(mean, var=var), pg.mass_constraint(x, mass))
    for i in range(4):
        for j in range(7):
            one = pg.probconserv(pg.Gaussian(mean[i, j], var=var[i, j]),
                                 pg.mass_constraint(x, mass[i, j]))
            assert torch.allclose(post.mean[i, j], one.mean, atol=1e-14)
            assert torch.allclose(post.var[i, j], one.var, atol=1e-14)


def test_float32_input_is_solved_in_float64_and_cast_back():
    gen = torch.Generator().manual_seed(2)
    mean = torch.randn(5, 200, generator=gen) * 1e3
    var = torch.rand(5, 200, generator=gen) + 0.1
    x = torch.linspace(0, 1, 200)
    mass = torch.randn(5, generator=gen, dtype=F64)
    post = pg.probconserv(pg.Gaussian(mean, var=var), pg.mass_constraint(x, mass))
    assert post.mean.dtype == torch.float32
    residual = pg.mass_constraint(x, mass).residual(post.mean.to(F64))
    assert residual.abs().max() < 1e-3  # float32 rounding of values ~1e3, not of the solve


def test_update_is_differentiable():
    gen = torch.Generator().manual_seed(3)
    n = 6
    mean = torch.randn(2, n, generator=gen, dtype=F64, requires_grad=True)
    var = (torch.rand(2, n, generator=gen, dtype=F64) + 0.2).requires_grad_()
    G = torch.randn(2, n, generator=gen, dtype=F64, requires_grad=True)
    b = torch.randn(2, 2, generator=gen, dtype=F64, requires_grad=True)

    def f(mean, var, G, b):
        post = pg.probconserv(pg.Gaussian(mean, var=var), pg.LinearConstraint(G, b, 0.1))
        return post.mean, post.var

    assert torch.autograd.gradcheck(f, (mean, var, G, b))


def test_joint_samples_respect_the_constraint_and_the_covariance():
    gen = torch.Generator().manual_seed(4)
    n = 12
    mean = torch.randn(n, generator=gen, dtype=F64)
    var = torch.rand(n, generator=gen, dtype=F64) + 0.2
    constraint = pg.mass_constraint(torch.linspace(0, 1, n, dtype=F64), torch.tensor(0.7))
    for prior in (pg.Gaussian(mean, var=var), pg.Gaussian(mean, cov=torch.diag(var))):
        post = pg.probconserv(prior, constraint)
        samples = post.sample(40000, generator=gen)
        assert samples.shape == (40000, n)
        assert constraint.residual(samples).abs().max() < 1e-12
        assert torch.allclose(samples.mean(0), post.mean, atol=0.02)
        assert torch.allclose(torch.cov(samples.T), post.cov, atol=0.03)


def test_moment_match_is_the_mixture_moments():
    means = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=F64)
    vars_ = torch.tensor([[1.0, 1.0], [3.0, 1.0]], dtype=F64)
    mixed = pg.moment_match(pg.Gaussian(means, var=vars_), dim=0)
    assert torch.allclose(mixed.mean, torch.tensor([1.0, 2.0], dtype=F64))
    assert torch.allclose(mixed.var, torch.tensor([3.0, 2.0], dtype=F64))
    with pytest.raises(ValueError, match="point dimension"):
        pg.moment_match(pg.Gaussian(means, var=vars_), dim=-1)


# -- bad input -------------------------------------------------------------------------------

def _good():
    return torch.zeros(3, 5, dtype=F64), torch.ones(3, 5, dtype=F64)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: pg.Gaussian(torch.zeros(3, 5), var=torch.ones(3, 4)), r"var.*\(3, 5\).*\(3, 4\)"),
        (lambda: pg.Gaussian(torch.tensor([0.0, float("nan")]), var=torch.ones(2)), "mean.*NaN"),
        (lambda: pg.Gaussian(torch.zeros(2), var=torch.tensor([1.0, -1.0])), "var.*>= 0"),
        (lambda: pg.Gaussian(torch.zeros(2), var=torch.tensor([1.0, float("inf")])), "var.*inf"),
        (lambda: pg.Gaussian(torch.zeros(3), cov=torch.eye(4)), r"cov.*\(4, 4\)"),
        (lambda: pg.Gaussian(torch.zeros(2), cov=torch.tensor([[1.0, 0.5], [0.0, 1.0]])),
         "not symmetric"),
        (lambda: pg.Gaussian(torch.zeros(2)), "exactly one"),
        (lambda: pg.Gaussian(torch.zeros(2), var=torch.ones(2), cov=torch.eye(2)), "exactly one"),
        (lambda: pg.LinearConstraint(torch.zeros(1, 5), torch.ones(1)), "all-zero row"),
        (lambda: pg.LinearConstraint(torch.zeros(0, 5), torch.ones(0)), "at least one row"),
        (lambda: pg.LinearConstraint(torch.ones(5), torch.ones(1)), "G.*at least 2"),
        (lambda: pg.LinearConstraint(torch.ones(2, 5), torch.ones(3)), r"b.*M = 2.*\(3,\)"),
        (lambda: pg.LinearConstraint(torch.ones(1, 5), torch.tensor([float("inf")])),
         "b.*infinite"),
        (lambda: pg.LinearConstraint(torch.ones(1, 5), torch.ones(1), noise_var=-1.0),
         "noise_var"),
        (lambda: pg.probconserv(pg.Gaussian(*_good()[:1], var=_good()[1]),
                                pg.LinearConstraint(torch.ones(1, 4), torch.ones(1))),
         r"N = 4.*\(3, 5\).*N = 5"),
        (lambda: pg.probconserv(pg.Gaussian(*_good()[:1], var=_good()[1]),
                                pg.LinearConstraint(torch.ones(2, 5), torch.ones(2))),
         "not positive definite"),
        (lambda: pg.hardc(pg.Gaussian(*_good()[:1], var=_good()[1]),
                          pg.LinearConstraint(torch.ones(1, 5), torch.ones(4, 1))),
         "do not broadcast"),
        (lambda: pg.trapezoid_weights(torch.tensor([0.0, 2.0, 1.0])), "strictly increasing"),
    ],
)
def test_bad_input_raises_a_specific_error(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_trapezoid_weights_integrate_exactly_and_converge():
    x = torch.sort(torch.rand(50, generator=torch.Generator().manual_seed(5), dtype=F64)).values
    w = pg.trapezoid_weights(x)
    assert torch.isclose(w.sum(), x[-1] - x[0], atol=1e-15)
    assert torch.isclose(w @ (3 * x - 1), (1.5 * x[-1] ** 2 - x[-1]) - (1.5 * x[0] ** 2 - x[0]))
    # Second order on a uniform grid: doubling the points divides the error by ~4.
    errors = []
    for n in (101, 201):
        xs = torch.linspace(0, 1, n, dtype=F64)
        errors.append(abs(float(pg.trapezoid_weights(xs) @ torch.exp(xs)) - (torch.e - 1)))
    assert 3.9 < errors[0] / errors[1] < 4.1


@settings(max_examples=40, deadline=None)
@given(problems())
def test_batch_indexing_keeps_the_structure(problem):
    pred, constraint = problem
    assume(len(pred.batch_shape) > 0)
    post = pg.probconserv(pred, constraint)
    one = post[0]
    assert type(one.covariance) is type(post.covariance)
    assert torch.allclose(one.mean, post.mean[0])
    assert torch.allclose(one.cov, post.cov[0], atol=1e-12)
