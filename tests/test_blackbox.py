"""Black boxes (GP, deep ensemble, SoftC-ANP): ProbConserv applies unchanged and stays exact."""

import pytest
import torch

import physguard as pg
from physguard.blackbox import ANPPredictor, EnsemblePredictor, GPPredictor, fit_gp
from physguard.constraints import DenseCovariance, LowRankPlusDiagonal
from physguard.datasets import sample_functions
from physguard.experiments.gpme import _inputs, to_np_data
from physguard.models import ANP, pde_residual, softc_penalty
from physguard.pdes import Stefan, get_problem
from physguard.training import TrainConfig, train_anp


def _grid(cls, nt=7, nx=33):
    t = torch.linspace(*cls.t_range, nt, dtype=torch.float64)
    x = torch.linspace(*cls.domain, nx, dtype=torch.float64)
    tt, xx = torch.meshgrid(t, x, indexing="ij")
    return t, x, _inputs(cls, tt.reshape(-1), xx.reshape(-1))


def _assert_exact_and_psd(pred: pg.Gaussian, x, mass):
    constraint = pg.mass_constraint(x, mass)
    post = pg.probconserv(pred, constraint)
    w = pg.trapezoid_weights(x)
    assert torch.allclose(post.mean @ w, mass.expand_as(post.mean @ w), atol=1e-8, rtol=0)
    cov = post.cov
    assert torch.allclose(cov, cov.transpose(-1, -2), atol=1e-12)
    scale = cov.diagonal(dim1=-2, dim2=-1).amax()
    assert torch.linalg.eigvalsh(cov).min() >= -1e-9 * scale
    # G Sigma~ G^T = 0: no posterior uncertainty left in the total.
    assert ((w @ cov @ w).abs() <= 1e-9 * scale).all()
    return post


def test_gp_dense_posterior_probconserv_is_exact_and_psd():
    cls = Stefan
    data = to_np_data(sample_functions("stefan", 3, params=[0.6] * 3, seed=4))
    t, x, grid = _grid(cls)
    gp = GPPredictor(iterations=30, block=2)
    preds = list(gp.predict(data, grid, len(t), len(x), torch.Generator()))
    assert len(preds) == 3
    for pred in preds:
        assert isinstance(pred.covariance, DenseCovariance)
        assert pred.mean.shape == (1, len(t), len(x))
        assert pred.covariance.cov.shape == (1, len(t), len(x), len(x))
        _assert_exact_and_psd(pred, x, Stefan(0.6).mass(t))


def test_gp_fit_interpolates_and_batched_equals_single():
    data = to_np_data(sample_functions("pme", 2, seed=1))
    model, likelihood = fit_gp(data.xc, data.yc, iterations=60)
    model.train()  # evaluate the fitted posterior at the training inputs without a warning
    model.eval()
    with torch.no_grad():
        fitted = model(data.xc.double() + 1e-9).mean
    # Noiseless observations: the posterior mean passes close to the data (RMS 20x below the
    # data's spread; the RBF kernel cannot follow the PME front's kink exactly).
    rms = (fitted - data.yc.double()).square().mean(-1).sqrt()
    assert (rms < 0.05 * data.yc.double().std(-1)).all()
    single, _ = fit_gp(data.xc[1:], data.yc[1:], iterations=60)
    assert torch.allclose(single.covar_module.base_kernel.lengthscale[0],
                          model.covar_module.base_kernel.lengthscale[1], rtol=1e-4)
    with pytest.raises(ValueError, match="xc must be"):
        fit_gp(data.xc[0], data.yc[0])


def test_ensemble_covariance_is_diagonal_plus_member_spread():
    torch.manual_seed(0)
    members = [ANP(hidden=16, n_heads=2).eval() for _ in range(3)]
    data = to_np_data(sample_functions("stefan", 2, params=[0.6] * 2, seed=2))
    t, x, grid = _grid(Stefan)
    ens = EnsemblePredictor(members, n_latent=2)
    preds = list(ens.predict(data, grid, len(t), len(x), torch.Generator().manual_seed(0)))
    pred = preds[0]
    assert isinstance(pred.covariance, LowRankPlusDiagonal)
    assert pred.covariance.rank == 3
    # Diagonal = law of total variance over the members.
    gen = torch.Generator().manual_seed(0)
    member = [pg.moment_match(m.predict(data.xc[:1], data.yc[:1], grid.unsqueeze(0).float(),
                                        n_samples=2, generator=gen).to(torch.float64), dim=0)
              for m in members]
    means = torch.stack([m.mean.reshape(len(t), len(x)) for m in member])
    total = torch.stack([m.var.reshape(len(t), len(x)) for m in member]).mean(0) \
        + means.var(0, unbiased=False)
    assert torch.allclose(pred.mean[0], means.mean(0), atol=1e-6)
    assert torch.allclose(pred.var[0], total, atol=1e-6)
    _assert_exact_and_psd(pred, x, Stefan(0.6).mass(t))
    with pytest.raises(ValueError, match="at least 2"):
        EnsemblePredictor(members[:1])


def test_anp_predictor_yields_latent_components():
    model = ANP(hidden=16, n_heads=2).eval()
    data = to_np_data(sample_functions("diffusion", 2, seed=0))
    cls = get_problem("diffusion")
    t, x, grid = _grid(cls)
    preds = list(ANPPredictor(model, n_latent=3).predict(data, grid, len(t), len(x),
                                                          torch.Generator().manual_seed(1)))
    assert preds[0].mean.shape == (3, len(t), len(x))
    with pytest.raises(ValueError, match="contexts"):
        bad = data.batch(slice(0, 1))
        bad = type(bad)(bad.xc, bad.yc.clone().fill_(float("nan")), None, None)
        next(ANPPredictor(model).predict(bad, grid, len(t), len(x), torch.Generator()))


@pytest.mark.parametrize("name, param, box", [
    ("diffusion", 3.0, ((0.05, 0.95), (0.05, 0.95))),
    ("pme", 2.0, ((0.55, 0.95), (0.05, 0.45))),  # behind the front x* = t
    ("burgers", 2.0, ((0.05, 0.45), (0.30, 0.45))),  # the steepening ramp, t < 1/a
    ("stefan", 0.6, ((0.5, 0.95), (0.02, 0.10))),  # the melted zone, u > p*
])
def test_pde_residual_vanishes_on_exact_solutions_and_not_on_wrong_ones(name, param, box):
    cls = get_problem(name)
    problem = cls(param)
    gen = torch.Generator().manual_seed(0)
    (t_lo, t_hi), (x_lo, x_hi) = box
    xt = torch.rand(1, 64, 2, generator=gen, dtype=torch.float64)
    xt = torch.stack([t_lo + (t_hi - t_lo) * xt[..., 0], x_lo + (x_hi - x_lo) * xt[..., 1]], -1)
    xt.requires_grad_(True)
    (t0, t1), (a, b) = cls.t_range, cls.domain
    t, x = t0 + (t1 - t0) * xt[..., 0], a + (b - a) * xt[..., 1]
    u = problem.solution(t, x)
    assert (u.abs() > 1e-3).all()
    r = pde_residual(u, xt, torch.tensor([param], dtype=torch.float64), cls)
    assert r.abs().max() < 1e-8
    wrong = pde_residual(1.1 * u * (1 + 0.5 * xt[..., 1]), xt,
                         torch.tensor([param], dtype=torch.float64), cls)
    assert wrong.abs().max() > 1e-2


def test_softc_training_lowers_the_pde_residual():
    cls = get_problem("pme")
    train = to_np_data(sample_functions("pme", 32, seed=0))
    val = to_np_data(sample_functions("pme", 8, seed=1))
    config = TrainConfig(epochs=6, batch_size=16, lr=3e-3, patience=10)
    score = softc_penalty(cls, weight=1.0)

    def residual_of(model):
        xt = val.xt.detach().requires_grad_(True)
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
            return float(score(model.mean_at(val.xc, val.yc, xt), xt, val.param).detach())

    results = {}
    for weight in (None, 100.0):  # a large weight: the penalty's effect shows in 6 epochs
        torch.manual_seed(0)
        model = ANP(hidden=16, n_heads=2)
        train_anp(model, train, val, config, progress=False,
                  penalty=softc_penalty(cls, weight) if weight else None)
        torch.manual_seed(0)
        results[weight] = residual_of(model)
    assert results[100.0] < 0.5 * results[None]
    with pytest.raises(ValueError, match="weight"):
        softc_penalty(cls, weight=0.0)
    with pytest.raises(ValueError, match="param"):
        train_anp(ANP(hidden=16, n_heads=2), type(train)(train.xc, train.yc, train.xt, train.yt),
                  val, config, progress=False, penalty=score)


def test_gp_shared_hyperparameters_are_one_set_and_batched_prediction_equals_a_loop():
    data = to_np_data(sample_functions("stefan", 3, params=[0.6] * 3, seed=5))
    model, likelihood = fit_gp(data.xc, data.yc, iterations=20, shared=True)
    assert model.covar_module.base_kernel.lengthscale.shape == (1, 2)
    t, x, grid = _grid(Stefan, nt=3, nx=9)
    together = list(GPPredictor(iterations=20, block=3).predict(data, grid, 3, 9,
                                                                torch.Generator()))
    alone = [next(GPPredictor(iterations=20, block=1).predict(data.batch(slice(i, i + 1)), grid,
                                                              3, 9, torch.Generator()))
             for i in range(3)]
    for a, b in zip(together, alone, strict=True):
        assert torch.allclose(a.mean, b.mean, atol=1e-6)
        assert torch.allclose(a.cov, b.cov, atol=1e-8)
