"""Both guarantees at once: wall rows, stacked constraints, sparse local conservation, and
the deep-ensemble Gaussian (issue 12, parts 1-3)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physguard import BOON, Dirichlet, FNO2d, Neumann, Periodic, probconserv
from physguard.boundary.walls import enforce_walls
from physguard.constraints import (
    ConditionedCovariance,
    Gaussian,
    LinearConstraint,
    LowRankPlusDiagonal,
    block_constraints,
    boundary_constraint,
    cell_divergence,
    central_divergence,
    divergence_constraint,
    divergence_implied,
    mass_constraint,
    stack_constraints,
    trapezoid_weights,
    trapezoid_weights_2d,
)
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.metrics import boundary_residual
from physguard.models import OperatorEnsemble, ensemble_gaussian, fit_ensemble_noise

F64 = torch.float64


def _low_rank_prior(batch, n, k, generator, level=0.1):
    mean = torch.randn(*batch, n, generator=generator, dtype=F64)
    factor = torch.randn(*batch, n, k, generator=generator, dtype=F64) * 0.3
    diag = torch.full((n,), level, dtype=F64)
    return Gaussian(mean, covariance=LowRankPlusDiagonal(diag, factor, torch.eye(k, dtype=F64)))


# -- 1-D wall rows ----------------------------------------------------------------------------

@pytest.mark.parametrize("left, right", [
    (Dirichlet(torch.tensor([0.5, -1.0])), Neumann(torch.tensor([2.0, 3.0]))),
    (Neumann(torch.tensor([1.0, 0.0]), order=3), Dirichlet(torch.tensor([0.1, 0.2]))),
    (Periodic(), Periodic()),
])
def test_1d_rows_equal_the_metrics_residuals(left, right):
    """G u - b is the signed violation that the BOON metrics measure, row by row."""
    x = torch.linspace(0, 2, 17, dtype=F64)
    u = torch.randn(2, 17, generator=torch.Generator().manual_seed(1), dtype=F64)
    residual = boundary_constraint(x, left=left, right=right).residual(u)
    expected = []
    for side, condition in (("left", left), ("right", right)):
        kind = type(condition).__name__.lower()
        value = getattr(condition, "value", getattr(condition, "flux", None))
        order = getattr(condition, "order", 2)
        expected.append(boundary_residual(u, kind, value, side, float(x[1] - x[0]), order))
        if kind == "periodic":
            break
    torch.testing.assert_close(residual, torch.stack(expected, -1), rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), order=st.sampled_from([2, 3]),
       dirichlet_left=st.booleans())
def test_walls_and_mass_hold_together_after_one_update(seed, order, dirichlet_left):
    """Stacked wall + mass rows: one probconserv update meets all of them to 1e-10 and the
    posterior covariance stays symmetric PSD."""
    gen = torch.Generator().manual_seed(seed)
    n, T = 33, 3
    x = torch.linspace(0, 1, n, dtype=F64)
    values = torch.randn(2, T, 2, generator=gen, dtype=F64)
    left = Dirichlet(values[..., 0]) if dirichlet_left else Neumann(values[..., 0], order)
    right = Neumann(values[..., 1], order)
    mass = torch.randn(2, T, generator=gen, dtype=F64)
    constraint = stack_constraints(boundary_constraint(x, left=left, right=right),
                                   mass_constraint(x, mass))
    assert constraint.n_constraints == 3
    post = probconserv(_low_rank_prior((2, T), n, 4, gen), constraint)
    assert float(constraint.residual(post.mean).abs().max()) < 1e-10
    cov = post.cov
    torch.testing.assert_close(cov, cov.transpose(-1, -2), rtol=0, atol=1e-12)
    assert float(torch.linalg.eigvalsh(cov).min()) > -1e-10


def test_wall_rows_refuse_bad_input():
    x = torch.linspace(0, 1, 9, dtype=F64)
    with pytest.raises(ValueError, match="at least one condition"):
        boundary_constraint(x)
    with pytest.raises(ValueError, match="both left and right"):
        boundary_constraint(x, left=Periodic(), right=Dirichlet(0.0))
    with pytest.raises(ValueError, match="uniform"):
        boundary_constraint(x**2, left=Dirichlet(0.0))
    with pytest.raises(ValueError, match="2-D grid"):
        boundary_constraint(x, top=Dirichlet(0.0))
    with pytest.raises(TypeError, match="Dirichlet, Neumann, Periodic"):
        boundary_constraint(x, left=0.0)
    with pytest.raises(ValueError, match="N_wall = 9"):
        boundary_constraint((x, x), left=Dirichlet(torch.zeros(8)))
    with pytest.raises(ValueError, match="different numbers of points"):
        stack_constraints(boundary_constraint(x, left=Dirichlet(0.0)),
                          mass_constraint(torch.linspace(0, 1, 5), torch.zeros(1)))


# -- 2-D wall rows: BOON's corner rules -------------------------------------------------------

_MIXES = {
    "dirichlet x4": dict(left=Dirichlet, right=Dirichlet, bottom=Dirichlet, top=Dirichlet),
    "neumann x4": dict(left=Neumann, right=Neumann, bottom=Neumann, top=Neumann),
    "dirichlet x, neumann y": dict(left=Dirichlet, right=Dirichlet, bottom=Neumann,
                                   top=Neumann),
    "neumann x, dirichlet top": dict(left=Neumann, right=Neumann, bottom=None, top=Dirichlet),
    "periodic x, dirichlet y": dict(left=Periodic, right=Periodic, bottom=Dirichlet,
                                    top=Dirichlet),
}


def _conditions(mix, nx, ny, gen):
    out = {}
    for name, kind in mix.items():
        length = ny if name in ("left", "right") else nx
        if kind is None:
            out[name] = None
        elif kind is Periodic:
            out[name] = Periodic()
        else:
            out[name] = kind(torch.randn(2, length, generator=gen, dtype=F64))
    return out


@pytest.mark.parametrize("mix", list(_MIXES))
def test_2d_rows_hold_on_boons_exact_output_and_are_independent(mix):
    """BOON's exact output (its corner rules) meets every 2-D wall row to round-off, and the
    rows are linearly independent (one row per wall point)."""
    gen = torch.Generator().manual_seed(3)
    nx, ny = 9, 7
    x, y = torch.linspace(0, 1, nx, dtype=F64), torch.linspace(0, 2, ny, dtype=F64)
    conditions = _conditions(_MIXES[mix], nx, ny, gen)
    field = torch.randn(2, 1, nx, ny, generator=gen, dtype=F64)
    # enforce_walls takes (B, C, Nx, Ny) values as (B, N_wall) per wall (shared by channels).
    out = enforce_walls(field, conditions, ((0.0, 1.0), (0.0, 2.0)))
    constraint = boundary_constraint((x, y), **conditions)
    residual = constraint.residual(out[:, 0].reshape(2, -1))
    assert float(residual.abs().max()) < 1e-11
    G = constraint.G
    assert int(torch.linalg.matrix_rank(G)) == G.shape[0]
    sparse = boundary_constraint((x, y), **conditions, sparse=True)
    assert sparse.is_sparse
    np.testing.assert_array_equal(sparse.G.toarray(), G.numpy())


def test_2d_rows_on_a_boon_operator_output():
    """End to end: a BOON-wrapped FNO2d with Neumann x walls and Dirichlet y walls."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = FNO2d(1, 1, 4, 8, 2).double()
    nx = ny = 12
    grid = torch.linspace(0, 1, nx, dtype=F64)
    conditions = _conditions(_MIXES["dirichlet x, neumann y"], nx, ny, gen)
    with torch.no_grad():
        out = BOON(model, **conditions)(torch.randn(2, 1, nx, ny, generator=gen, dtype=F64))
    residual = boundary_constraint((grid, grid), **conditions).residual(out[:, 0].flatten(1))
    assert float(residual.abs().max()) < 1e-9


def test_trapezoid_weights_2d_integrate_bilinear_fields_exactly():
    x, y = torch.linspace(0, 2, 9, dtype=F64), torch.linspace(-1, 1, 5, dtype=F64)
    w = trapezoid_weights_2d(x, y)
    f = (1 + x[:, None]) * (2 - y[None, :])  # integral: (2 + 2) * (4) = 16
    assert abs(float(w @ f.reshape(-1)) - 16.0) < 1e-12
    assert abs(float(w.sum()) - 4.0) < 1e-12


# -- sparse constraints -----------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rank=st.integers(1, 5), noise=st.sampled_from([0.0,
                                                                                       1e-3]))
def test_sparse_update_equals_the_dense_one(seed, rank, noise):
    """Same G stored sparse or dense: the same posterior mean, variances and covariance."""
    gen = torch.Generator().manual_seed(seed)
    n, m = 40, 12
    G = torch.randn(m, n, generator=gen, dtype=F64)
    G[G.abs() < 0.8] = 0
    G[:, 0] = 1.0  # no empty row
    b = torch.randn(3, m, generator=gen, dtype=F64)
    prior = _low_rank_prior((3,), n, rank, gen)
    dense = probconserv(prior, LinearConstraint(G, b, noise))
    sparse = probconserv(prior, LinearConstraint(sp.csr_matrix(G.numpy()), b, noise))
    assert isinstance(sparse.covariance, ConditionedCovariance)
    torch.testing.assert_close(sparse.mean, dense.mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(sparse.var, dense.var, rtol=0, atol=1e-10)
    torch.testing.assert_close(sparse.cov, dense.cov, rtol=0, atol=1e-10)
    torch.testing.assert_close(sparse[1].var, dense[1].var, rtol=0, atol=1e-10)


def test_sparse_posterior_samples_meet_an_exact_constraint():
    gen = torch.Generator().manual_seed(5)
    n, m = 30, 8
    G = sp.random(m, n, density=0.3, random_state=1, format="csr") + sp.eye(m, n)
    b = torch.randn(m, dtype=F64)
    post = probconserv(_low_rank_prior((2,), n, 3, gen), LinearConstraint(G, b))
    samples = post.sample(50, generator=gen)
    residual = LinearConstraint(G, b).residual(samples)
    assert float(residual.abs().max()) < 1e-10


def test_sparse_dependent_rows_are_refused():
    n = 10
    G = sp.csr_matrix(np.vstack([np.eye(n)[:3], np.eye(n)[:1] * 2.0]))
    prior = Gaussian(torch.zeros(n, dtype=F64), var=torch.ones(n, dtype=F64))
    with pytest.raises(ValueError, match="linearly dependent"):
        probconserv(prior, LinearConstraint(G, torch.zeros(4, dtype=F64)))


# -- local conservation: the cavity velocity --------------------------------------------------

def _cavity_walls(n):
    x = torch.linspace(0, 1, n, dtype=F64)
    lid = torch.zeros(n, dtype=F64)
    lid[1:-1] = 1.0  # the corners belong to the fixed walls (the data's convention)
    zero = torch.zeros(n, dtype=F64)
    u_rows = boundary_constraint((x, x), left=Dirichlet(zero), right=Dirichlet(zero),
                                 bottom=Dirichlet(zero), top=Dirichlet(lid))
    v_rows = boundary_constraint((x, x), left=Dirichlet(zero), right=Dirichlet(zero),
                                 bottom=Dirichlet(zero), top=Dirichlet(zero))
    return x, u_rows, v_rows


def _both_components(u_rows, v_rows, n):
    """Wall rows for the (u, v) field flattened channel-first."""
    walls = block_constraints(u_rows, v_rows)
    assert not walls.is_sparse and walls.G.shape == (u_rows.n_constraints * 2, 2 * n * n)
    return walls


def test_divergence_rows_have_exactly_two_wall_implied_combinations():
    n = 8
    x = torch.linspace(0, 1, n, dtype=F64)
    full = divergence_constraint(x, x, drop_implied=False).G.toarray()
    walls = np.zeros((2, n, n), bool)
    walls[:, 0], walls[:, -1], walls[:, :, 0], walls[:, :, -1] = True, True, True, True
    interior = full[:, ~walls.reshape(-1)]
    assert np.linalg.matrix_rank(interior) == interior.shape[0] - 2
    kept = divergence_constraint(x, x).G.toarray()[:, ~walls.reshape(-1)]
    assert np.linalg.matrix_rank(kept) == kept.shape[0]


@pytest.mark.parametrize("n, compatible", [(8, True), (9, False)])
def test_lid_walls_allow_zero_divergence_only_on_an_even_grid(n, compatible):
    x, u_rows, v_rows = _cavity_walls(n)
    field = torch.zeros(2, n, n, dtype=F64)
    field[0] = (u_rows.G.T @ u_rows.b).reshape(n, n)  # the wall values, zero inside
    total, checker = divergence_implied(field, x, x)
    assert abs(float(total)) < 1e-14
    assert (abs(float(checker)) < 1e-14) == compatible


@pytest.mark.parametrize("n, deficiency", [(8, 0), (10, 0), (9, 1)])
def test_central_divergence_rows_with_wall_rows_are_independent_on_even_grids(n, deficiency):
    x = torch.linspace(0, 1, n, dtype=F64)
    rows = divergence_constraint(x, x, stencil="central").G.toarray()
    assert rows.shape == ((n - 2) ** 2, 2 * n * n)
    walls = np.zeros((2, n, n), bool)
    walls[:, 0], walls[:, -1], walls[:, :, 0], walls[:, :, -1] = True, True, True, True
    interior = rows[:, ~walls.reshape(-1)]
    assert np.linalg.matrix_rank(interior) == interior.shape[0] - deficiency
    with pytest.raises(ValueError, match="stencil"):
        divergence_constraint(x, x, stencil="upwind")


def test_the_cavity_solvers_velocities_meet_the_central_rows_not_the_cell_rows():
    """Velocities from central differences of any stream function that vanishes on the walls
    (the solver's, refine=1) meet the central rows to round-off, the lid included; a cavity
    solution's cell rows do not (the lid's unresolved shear layer)."""
    n = 16
    data = make_operator_data_2d("cavity", 2, "multi", "velocity", n, 3, seed=4,
                                 progress=False, t_final=0.3, refine=1)
    field = data.per_step(data.targets)
    central = central_divergence(field, data.x, data.y)
    assert float(central.abs().max()) < 1e-12
    flat = field.reshape(-1, 2 * n * n).numpy()
    G = divergence_constraint(data.x, data.y, stencil="central").G
    np.testing.assert_allclose(G @ flat.T, central.reshape(-1, (n - 2) ** 2).numpy().T,
                               atol=1e-12)
    assert float(cell_divergence(field, data.x, data.y).abs().max()) > 1.0


def test_cavity_posterior_is_divergence_free_in_every_cell_with_exact_walls():
    """ProbConserv with wall rows + per-cell divergence rows (sparse G) on an ensemble-like
    prior: every cell's divergence of the posterior mean below 1e-10, walls exact."""
    n = 16
    gen = torch.Generator().manual_seed(0)
    x, u_rows, v_rows = _cavity_walls(n)
    walls = _both_components(u_rows, v_rows, n)
    constraint = stack_constraints(walls, divergence_constraint(x, x))
    assert constraint.is_sparse
    prior = _low_rank_prior((3,), 2 * n * n, 5, gen, level=1e-2)
    post = probconserv(prior, constraint)
    field = post.mean.reshape(3, 2, n, n)
    assert float(cell_divergence(field, x, x).abs().max()) < 1e-10
    assert float(walls.residual(post.mean).abs().max()) < 1e-10
    assert bool((post.var >= 0).all())
    assert float(post.var.reshape(3, 2, n, n)[:, :, 0].abs().max()) < 1e-12  # walls are known


# -- the ensemble Gaussian --------------------------------------------------------------------

def test_ensemble_gaussian_structure_and_errors():
    gen = torch.Generator().manual_seed(0)
    samples = torch.randn(5, 3, 2, 6, 4, generator=gen, dtype=F64)  # M, B, C, Nx, Ny
    pred = ensemble_gaussian(samples, noise_var=torch.tensor([0.1, 0.2]), spread_scale=2.0,
                             local_scale=0.5)
    assert pred.mean.shape == (3, 2, 24)
    torch.testing.assert_close(pred.mean, samples.mean(0).flatten(2))
    expected = 2.5 * samples.var(0).flatten(2) + torch.tensor([0.1, 0.2])[:, None]
    torch.testing.assert_close(pred.var, expected)
    uniform = ensemble_gaussian(samples, 0.1, 0.0, 0.0, uniform_scale=3.0)
    v = samples.var(0).flatten(2)
    torch.testing.assert_close(uniform.var, 0.1 + 3.0 * v.mean(-1, keepdim=True).expand_as(v))
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble_gaussian(samples[:1], 0.1)
    with pytest.raises(ValueError, match="noise_var must be finite and > 0"):
        ensemble_gaussian(samples, 0.0)
    with pytest.raises(ValueError, match="C = 2"):
        ensemble_gaussian(samples, torch.ones(3))


def test_fitted_noise_recovers_the_generating_model():
    """Members spread with variance v, truth = mean + N(0, a v + s2): the fit finds a, s2."""
    gen = torch.Generator().manual_seed(1)
    m, b, n = 40, 30, 200
    spread = 0.2 + torch.rand(b, 1, n, generator=gen, dtype=F64)
    samples = torch.randn(m, b, 1, n, generator=gen, dtype=F64) * spread.sqrt()
    v = samples.var(0)
    truth = samples.mean(0) + torch.randn(b, 1, n, generator=gen, dtype=F64) \
        * (2.0 * v + 0.3).sqrt()
    noise, scale, local, uniform, _, _ = fit_ensemble_noise(samples, truth, spread_power=0.0)
    assert float(local[0]) == float(uniform[0]) == 0.0  # unconditioned: only a + b counts
    assert abs(float(scale[0]) - 2.0) < 0.3
    assert abs(float(noise[0]) - 0.3) < 0.1


def test_exactly_known_points_do_not_enter_the_noise_fit():
    """A BOON member's Dirichlet wall: every member exact there. Adding such points must not
    change the fit (they would otherwise drive the noise level to 0)."""
    gen = torch.Generator().manual_seed(2)
    samples = torch.randn(5, 20, 1, 50, generator=gen, dtype=F64)
    truth = samples.mean(0) + 0.5 * torch.randn(20, 1, 50, generator=gen, dtype=F64)
    walls = torch.full((5, 20, 1, 2), 0.7, dtype=F64)
    with_walls = fit_ensemble_noise(torch.cat([samples, walls], -1),
                                    torch.cat([truth, walls[0]], -1))
    without = fit_ensemble_noise(samples, truth)
    # the spread power chosen is the same; the reference variance is the mean over all
    # points, walls included, so it differs by the share of wall points (50 / 52) at most
    torch.testing.assert_close(with_walls.spread_power, without.spread_power)
    ratio = with_walls.reference_var / without.reference_var
    assert 50 / 52 - 1e-9 <= float(ratio) <= 1 + 1e-9
    for a, b in zip(with_walls[:4], without[:4], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-12)
    assert float(with_walls[0][0]) > 1e-3


def _spread_levels(seed: int, power: float):
    """Members whose spread varies over two decades between samples, and a truth whose error
    variance grows as ``mean(v) ** (1 + power)``."""
    gen = torch.Generator().manual_seed(seed)
    m, b, n = 8, 200, 64
    level = 10 ** (-2 * torch.rand(b, 1, 1, generator=gen, dtype=F64))
    samples = torch.randn(m, b, 1, n, generator=gen, dtype=F64) * level.sqrt()
    spread = samples.var(0).mean(-1, keepdim=True)
    error_var = 3.0 * spread * (spread / 0.1) ** power
    truth = samples.mean(0) + torch.randn(b, 1, n, generator=gen, dtype=F64) * error_var.sqrt()
    return samples, truth


def test_spread_power_scales_the_members_covariance():
    """gamma = 0 is the covariance unwarped; otherwise the deviations of each sample and
    channel are scaled so that the members' mean variance becomes m (m / ref) ** gamma."""
    samples, _ = _spread_levels(11, 0.0)
    plain = ensemble_gaussian(samples, 1e-3, 1.0, 0.5, 0.25)
    same = ensemble_gaussian(samples, 1e-3, 1.0, 0.5, 0.25, 0.0, 123.0)
    torch.testing.assert_close(plain.covariance.dense(), same.covariance.dense(), rtol=0, atol=0)
    warped = ensemble_gaussian(samples, 1e-30, 1.0, 0.0, 0.0, 1.0, 0.1)
    m = samples.var(0).mean(-1)
    torch.testing.assert_close(warped.var.mean(-1), m * m / 0.1, rtol=1e-9, atol=0)
    torch.testing.assert_close(warped.mean, plain.mean)
    for bad in (dict(spread_power=-0.5), dict(reference_var=0.0),
                dict(spread_power=float("nan"))):
        with pytest.raises(ValueError):
            ensemble_gaussian(samples, 1e-3, **bad)
    with pytest.raises(ValueError, match="spread_power"):
        fit_ensemble_noise(samples, samples.mean(0), spread_power=-1.0)


@pytest.mark.parametrize("power", [0.0, 1.0, 2.0])
def test_fit_chooses_the_spread_power_that_generated_the_errors(power):
    """Held-out errors whose variance grows as m ** (1 + gamma): the likelihood picks gamma,
    and the fitted Gaussian's 90 % interval covers about 90 % at both ends of the spread."""
    from physguard.metrics import interval_coverage

    samples, truth = _spread_levels(12, power)
    fitted = fit_ensemble_noise(samples, truth)
    assert abs(float(fitted.spread_power[0]) - power) <= 0.5  # the grid step
    test_samples, test_truth = _spread_levels(13, power)
    pred = ensemble_gaussian(test_samples, *fitted)
    m = test_samples.var(0).mean(-1).flatten()
    covered = interval_coverage(pred.mean.flatten(1), pred.var.flatten(1),
                                test_truth.flatten(1), 0.9)
    for part in (m < m.median(), m >= m.median()):
        assert 0.85 <= float(covered[part].mean()) <= 0.95


def test_default_conditioned_prior_never_moves_the_mean_away_from_the_truth():
    """The default conditioned prior is the same at every point of a sample and channel, so
    the update is the Euclidean projection onto the rows: for a truth that meets them
    (here the mass row), the conditioned mean is at least as close to it in L2 for every
    sample and channel, however wrong the members (Pythagoras)."""
    gen = torch.Generator().manual_seed(14)
    x = torch.linspace(0.0, 1.0, 40, dtype=F64)
    truth = torch.sin(torch.pi * x * (1 + torch.rand(30, 2, 1, generator=gen, dtype=F64)))
    bias = torch.randn(30, 2, 1, generator=gen, dtype=F64) * x ** 2  # wrong far from 0
    samples = truth + bias + 0.3 * torch.randn(5, 30, 2, 40, generator=gen, dtype=F64) * x
    def rows(part):
        return mass_constraint(x, truth[part] @ trapezoid_weights(x))

    fitted = fit_ensemble_noise(samples[:, :15], truth[:15], rows(slice(0, 15)))
    assert float(fitted.local_scale.abs().max()) == 0.0
    prior = ensemble_gaussian(samples[:, 15:], *fitted)
    post = probconserv(prior, rows(slice(15, None)))
    before = (prior.mean - truth[15:]).square().sum(-1)
    after = (post.mean - truth[15:]).square().sum(-1)
    assert bool((after <= before * (1 + 1e-12)).all())
    assert float(after.sum()) < float(before.sum())


def test_operator_ensemble_needs_calibration_and_members():
    members = [torch.nn.Identity(), torch.nn.Identity()]
    with pytest.raises(ValueError, match="at least 2 members"):
        OperatorEnsemble(members[:1])
    with pytest.raises(RuntimeError, match="calibrate"):
        OperatorEnsemble(members).predict(torch.zeros(1, 1, 4))
    shifted = OperatorEnsemble(members, apply=lambda m, v: m(v) + torch.randn_like(v))
    shifted.calibrate(torch.zeros(8, 1, 16), torch.zeros(8, 1, 16))
    assert shifted.predict(torch.zeros(2, 1, 16)).mean.shape == (2, 1, 16)


def test_sparse_conditioned_fit_is_the_likelihood_maximising_scale():
    """Sparse rows: the fitted factor c maximises the conditioned Gaussian's likelihood (any
    other factor does worse), and the conditioned mean does not depend on it."""
    from physguard.metrics import gaussian_log_likelihood

    gen = torch.Generator().manual_seed(4)
    n = 8
    x, u_rows, v_rows = _cavity_walls(n)
    rows = stack_constraints(_both_components(u_rows, v_rows, n), divergence_constraint(x, x))
    rows = LinearConstraint(rows.G, rows.b.expand(6, 1, -1))
    samples = 0.2 * torch.randn(4, 6, 1, 2 * n * n, generator=gen, dtype=F64)
    truth = 0.3 * torch.randn(6, 1, 2 * n * n, generator=gen, dtype=F64)
    plain = fit_ensemble_noise(samples, truth, spread_power=0.0)
    fitted = fit_ensemble_noise(samples, truth, rows, spread_power=0.0)

    def ll(params):
        post = probconserv(ensemble_gaussian(samples, *params), rows)
        known = post.var <= 1e-10 * post.var.amax(-1, keepdim=True)  # fixed by the rows
        return float(gaussian_log_likelihood(post.mean[~known], post.var[~known],
                                             truth[~known]))

    best = ll(fitted)
    for factor in (0.5, 2.0):
        assert ll(fitted._replace(**{k: v * factor for k, v in fitted._asdict().items()
                                     if k not in ('spread_power', 'reference_var')})) < best
    mean_plain = probconserv(ensemble_gaussian(samples, *plain), rows).mean
    mean_fitted = probconserv(ensemble_gaussian(samples, *fitted), rows).mean
    torch.testing.assert_close(mean_plain, mean_fitted, rtol=0, atol=1e-10)


def test_dense_conditioned_refit_drops_the_spread_and_maximises_the_likelihood():
    """Dense rows (walls + mass), ``refit=True``: the conditioned prior has no low-rank part
    (spread_scale = 0, module docstring of physguard.models.ensemble) and the fitted
    (s2, b, c) maximise the conditioned likelihood (the points the rows fix left out):
    scaling any one of them lowers it;
    ``spread=True`` fits the low-rank factor too, and fits the calibration data at least as
    well (it has one more parameter)."""
    from physguard.metrics import gaussian_log_likelihood

    gen = torch.Generator().manual_seed(5)
    x = torch.linspace(0.0, 1.0, 24, dtype=F64)
    truth = torch.sin(torch.pi * x * (1 + torch.rand(12, 1, 1, generator=gen, dtype=F64)))
    samples = truth + 0.1 * torch.randn(4, 12, 1, 24, generator=gen, dtype=F64) \
        + 0.05 * torch.randn(1, 12, 1, 24, generator=gen, dtype=F64)
    rows = stack_constraints(boundary_constraint(x, left=Dirichlet(truth[..., 0]),
                                                 right=Dirichlet(truth[..., -1])),
                             mass_constraint(x, trapezoid_weights(x) @ truth[..., None]))

    def ll(params):  # the Dirichlet ends are fixed by the rows: known, not predicted
        post = probconserv(ensemble_gaussian(samples, *params), rows)
        inner = slice(1, -1)
        return float(gaussian_log_likelihood(post.mean[..., inner], post.var[..., inner],
                                             truth[..., inner]).mean())

    fitted = fit_ensemble_noise(samples, truth, rows, refit=True)
    assert float(fitted.spread_scale[0]) == 0.0
    best = ll(fitted)
    for i in (0, 2, 3):
        for factor in (0.7, 1.4):
            changed = list(fitted)
            changed[i] = changed[i] * factor
            assert ll(changed) < best + 1e-4  # (b, c barely matter here: flat)
    with_spread = fit_ensemble_noise(samples, truth, rows, spread=True, refit=True)
    assert float(with_spread.spread_scale[0]) > 0.0
    assert ll(with_spread) >= best - 1e-6


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), power=st.sampled_from([0.0, 0.5, 1.0]))
def test_default_dense_conditioned_prior_is_the_unconditioned_variance_spread_evenly(seed, power):
    """By default a dense constraint refits nothing: the conditioned prior has, at every point
    of a sample and channel, the mean over the grid of the unconditioned fit's pointwise
    variance (isotropic_prior), so it grows with the members' spread as that fit does."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(0.0, 1.0, 20, dtype=F64)
    truth = torch.sin(torch.pi * x * (1 + torch.rand(10, 2, 1, generator=gen, dtype=F64)))
    spread = 0.05 + torch.rand(1, 10, 2, 1, generator=gen, dtype=F64)
    samples = truth + spread * torch.randn(4, 10, 2, 20, generator=gen, dtype=F64)
    rows = mass_constraint(x, truth @ trapezoid_weights(x))
    plain = fit_ensemble_noise(samples, truth, spread_power=power)
    inherited = fit_ensemble_noise(samples, truth, rows, spread_power=power)
    assert float(inherited.spread_scale.abs().max()) == 0.0
    assert float(inherited.local_scale.abs().max()) == 0.0
    unconditioned_var = ensemble_gaussian(samples, *plain).var
    conditioned_prior_var = ensemble_gaussian(samples, *inherited).var
    torch.testing.assert_close(conditioned_prior_var,
                               unconditioned_var.mean(-1, keepdim=True).expand_as(
                                   conditioned_prior_var), rtol=1e-12, atol=0)


def test_operator_ensemble_determined_points_are_set_by_the_rows_alone():
    """With the wall points marked as determined, conditioning on Dirichlet rows sets them and
    leaves the interior's mean and variance as the unconditioned ensemble has them (the
    uninformative limit, to about 1e-6 relative)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.linspace(0.0, 1.0, 12, dtype=F64)
    shifts = [0.1 * torch.randn(1, 1, 12, generator=gen, dtype=F64) for _ in range(3)]
    members = [torch.nn.Identity() for _ in shifts]
    walls = torch.zeros(12, dtype=torch.bool)
    walls[[0, -1]] = True
    ensemble = OperatorEnsemble(members, apply=None, noise_var=1e-3, spread_scale=1.0,
                                determined=walls)
    ensemble.members = [lambda v, s=s: v + s for s in shifts]
    inputs = torch.sin(torch.pi * x).expand(2, 1, 12).clone()
    rows = boundary_constraint(x, left=Dirichlet(torch.full((2, 1), 0.3, dtype=F64)),
                               right=Dirichlet(torch.full((2, 1), -0.2, dtype=F64)))
    plain = ensemble.predict(inputs)
    post = ensemble.predict(inputs, constraint=rows)
    torch.testing.assert_close(post.mean[..., 0], torch.full((2, 1), 0.3, dtype=F64))
    torch.testing.assert_close(post.mean[..., 1:-1], plain.mean[..., 1:-1], rtol=0, atol=1e-5)
    torch.testing.assert_close(post.var[..., 1:-1], plain.var[..., 1:-1], rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="1-D bool"):
        OperatorEnsemble(members, determined=torch.ones(3, 4))
