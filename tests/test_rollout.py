"""Rollouts with guarantees: the per-step projection, BOON's walls at every step, the run's
files and numbers (issue 28)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import physguard as pg
from physguard.cli import main
from physguard.constraints import boundary_constraint, mass_constraint, stack_constraints
from physguard.experiments.rollout import (
    RolloutConfig,
    correlation_time,
    make_trajectories,
    run_rollout,
)
from physguard.metrics import vrmse
from physguard.pdes.linear_bc import HeatNeumann, StokesSecond
from physguard.rollouts import project

F64 = torch.float64


def _rows(x, left, right, total):
    return stack_constraints(boundary_constraint(x, left=pg.Dirichlet(left),
                                                 right=pg.Neumann(right)),
                             mass_constraint(x, total))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 40))
def test_projection_meets_the_rows_and_is_the_closest_such_field(seed, n):
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(0.0, 1.0, n, dtype=F64)
    truth = torch.sin(3 * x + torch.rand(4, 1, generator=gen, dtype=F64))
    h = float(x[1] - x[0])
    flux = (3 * truth[:, -1] - 4 * truth[:, -2] + truth[:, -3]) / (2 * h)
    rows = _rows(x, truth[:, 0], flux, truth @ pg.trapezoid_weights(x))
    state = truth + torch.randn(4, n, generator=gen, dtype=F64)
    projected = project(state, rows)
    residual = torch.einsum("mn,bn->bm", rows.G, projected) - rows.b
    assert float(residual.abs().max()) < 1e-10 * (1 + float(rows.b.abs().max()))
    # Pythagoras: the truth meets the rows, so the projection is never farther from it.
    assert bool(((projected - truth).norm(dim=1) <= (state - truth).norm(dim=1) + 1e-12).all())


class _Decay(torch.nn.Module):
    """A fixed one-step map u -> 0.9 u (float64, one parameter)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.9, dtype=F64), requires_grad=False)

    def forward(self, u):
        return self.scale * u[:, :1]


def test_rollout_shapes_first_state_and_errors():
    u0 = torch.randn(3, 16, dtype=F64)
    traj = pg.rollout(_Decay(), u0, 5)
    assert traj.shape == (3, 6, 16)
    torch.testing.assert_close(traj[:, 0], u0)
    torch.testing.assert_close(traj[:, 5], 0.9 ** 5 * u0)
    members = pg.rollout([_Decay(), _Decay()], u0, 2)
    assert members.shape == (2, 3, 3, 16)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        pg.rollout(_Decay(), u0, 0)
    with pytest.raises(ValueError, match=r"\(B, 1, \*space\)"):
        pg.rollout(lambda u: u.repeat(1, 2, 1), u0, 1)


def test_every_step_meets_its_rows_and_boon_walls():
    """With BOON's walls and the rows of each step, every state of the trajectory meets that
    step's Dirichlet value, Neumann flux and total to round-off, although the rows change
    from step to step."""
    torch.manual_seed(0)
    x = torch.linspace(0.0, 1.0, 32, dtype=F64)
    model = pg.FNO1d(1, 1, modes=6, width=8, n_layers=2)
    u0 = torch.randn(2, 32, dtype=F64)
    h = float(x[1] - x[0])

    def values(k):
        return torch.full((2, 1), 0.1 * k, dtype=F64), torch.full((2, 1), -0.2 * k, dtype=F64)

    def walls(k):
        left, right = values(k)
        return {"left": pg.Dirichlet(left), "right": pg.Neumann(right)}

    def constraint(k):
        left, right = values(k)
        return _rows(x, left[:, 0], right[:, 0], torch.full((2,), 0.05 * k, dtype=F64))

    determined = torch.zeros(32, dtype=torch.bool)
    determined[[0, -1]] = True
    traj = pg.rollout(model, u0, 4, walls=walls, constraint=constraint, determined=determined)
    for k in range(1, 5):
        u = traj[:, k]
        left, right = values(k)
        assert float((u[:, 0] - left[:, 0]).abs().max()) < 1e-10
        flux = (3 * u[:, -1] - 4 * u[:, -2] + u[:, -3]) / (2 * h)
        assert float((flux - right[:, 0]).abs().max()) < 1e-8
        total = u @ pg.trapezoid_weights(x)
        assert float((total - 0.05 * k).abs().max()) < 1e-12
    boon_only = pg.rollout(model, u0, 2, walls=walls)
    assert float((boon_only[:, 2, 0] - 0.2).abs().max()) < 1e-6  # float32 network, exact wall


def test_calibrated_ensemble_rollout_is_a_gaussian_per_step_meeting_the_rows():
    x = torch.linspace(0.0, 1.0, 16, dtype=F64)
    members = [_Decay(), _Decay()]
    with torch.no_grad():
        members[1].scale.fill_(0.8)
    ensemble = pg.OperatorEnsemble(members, noise_var=1e-3, spread_scale=1.0)
    u0 = torch.randn(3, 16, dtype=F64)
    plain = pg.rollout(ensemble, u0, 3)
    assert plain.mean.shape == (3, 3, 16) and bool((plain.var > 0).all())
    rows = mass_constraint(x, torch.zeros(3, dtype=F64))
    post = pg.rollout(ensemble, u0, 3, constraint=lambda k: rows)
    totals = post.mean @ pg.trapezoid_weights(x)
    assert float(totals.abs().max()) < 1e-12
    with pytest.raises(RuntimeError, match="calibrate"):
        pg.rollout(pg.OperatorEnsemble(members), u0, 1)


def test_vrmse_is_the_wells_formula_and_correlation_time_the_first_drop():
    truth = torch.tensor([[0.0, 1.0, 2.0, 3.0]], dtype=F64)
    pred = truth + 0.5
    expected = math.sqrt(0.25 / (float(torch.var(truth)) + 1e-7))  # unbiased variance
    assert abs(float(vrmse(pred, truth)) - expected) < 1e-12
    constant = torch.ones(1, 4, dtype=F64)
    assert math.isfinite(float(vrmse(constant + 1e-3, constant)))
    records = [{"step": k, "correlation": c} for k, c in enumerate([0.99, 0.95, 0.85, 0.7], 1)]
    assert correlation_time(records, 0.9) == 3 and correlation_time(records, 0.8) == 4
    assert correlation_time(records, 0.5) == 4  # never below: the rollout's length


def test_trajectories_follow_the_closed_forms():
    traj = make_trajectories("stokes", 2, 16, 30, 0.08, seed=3)
    pde = StokesSecond(float(traj.params[1]))
    torch.testing.assert_close(traj.fields[1, 17], pde.solution(traj.t[17], traj.x))
    torch.testing.assert_close(traj.left_values[1], pde.boundary_values(traj.t)[0])
    assert traj.t.shape == (31,) and float(traj.t[0]) == 0.0


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rollout") / "heat"
    config = RolloutConfig(problem="heat-neumann", steps=12, window=4, n_train=6, n_cal=4,
                           n_test=3, n_points=24, modes=4, width=8, n_layers=2, epochs=2,
                           batch_size=8, uq=True, n_members=2)
    run_rollout(config, out, progress=False)
    return out, config


def test_run_folder_holds_the_contract(heat_run):
    out, config = heat_run
    for name in ("config.json", "metrics.json", "predictions.npz", "table.md", "models.pt",
                 "rollout_error.png", "rollout_coverage.png", "rollout.gif", "timing.json"):
        assert (out / name).is_file(), name
    records = json.loads((out / "metrics.json").read_text())
    models = ("FNO", "BOON", "ProbConserv-BOON", "FNO-Ensemble", "BOON-Ensemble",
              "ProbConserv-BOON-Ensemble")
    for model in models:
        steps = [r for r in records if r["model"] == model and not r.get("summary")]
        assert [r["step"] for r in steps] == list(range(1, config.steps + 1))
        keys = {"model", "step", "t", "rel_l2", "vrmse", "correlation", "mass_error",
                "boundary_error"}
        if "Ensemble" in model:
            keys |= {"LL", "CRPS", "coverage90"}
        assert keys <= set(steps[0])
        summary = [r for r in records if r["model"] == model and r.get("summary")]
        assert len(summary) == 1
        assert {"correlation_time_0.9", "correlation_time_0.8", "vrmse_6_12", "vrmse_13_30",
                "rel_l2_last"} <= set(summary[0])
    data = np.load(out / "predictions.npz")
    n, k1, npts = config.n_test, config.steps + 1, config.n_points
    assert data["truth"].shape == (n, k1, npts) and data["t"].shape == (k1,)
    assert data["left_values"].shape == (n, k1) and data["right_values"].shape == (n, k1)
    for model in models:
        assert data[f"{model}/mean"].shape == (n, k1, npts)
        assert data[f"{model}/var"].shape == (n, k1, npts)


def test_constrained_rollout_keeps_the_exact_total_and_the_walls(heat_run):
    """From predictions.npz, with our own trapezoid rule and stencil: the ProbConserv-BOON
    models' totals equal HeatNeumann's closed-form total to 1e-10 relative and their Neumann
    fluxes the walls' data to 1e-8, at every step."""
    out, config = heat_run
    data = np.load(out / "predictions.npz")
    x, t = data["x"], data["t"]
    h = x[1] - x[0]
    w = np.full_like(x, h)
    w[[0, -1]] = h / 2
    params = data["params"]
    exact = np.stack([HeatNeumann(float(p)).mass(torch.tensor(t)).numpy() for p in params])
    for model in ("ProbConserv-BOON", "ProbConserv-BOON-Ensemble"):
        u = data[f"{model}/mean"][:, 1:]
        total = u @ w
        assert np.abs(total - exact[:, 1:]).max() <= 1e-10 * np.abs(exact[:, 1:]).max()
        left = (-3 * u[..., 0] + 4 * u[..., 1] - u[..., 2]) / (2 * h)
        right = (3 * u[..., -1] - 4 * u[..., -2] + u[..., -3]) / (2 * h)
        assert np.abs(left - data["left_values"][:, 1:]).max() < 1e-8
        assert np.abs(right - data["right_values"][:, 1:]).max() < 1e-8
    plain = data["FNO/mean"][:, 1:] @ w
    assert np.abs(plain - exact[:, 1:]).max() > 1e-6  # the plain model does drift


def test_cli_rollout_runs_and_refuses_members_without_uq(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(main, ["rollout", "burgers-periodic", "--steps", "3", "--epochs",
                                  "1", "--functions", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "ProbConserv-BOON" in (out / "table.md").read_text()
    bad = runner.invoke(main, ["rollout", "stokes", "--members", "3", "--out",
                               str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "--uq" in bad.output
    with pytest.raises(ValueError, match="unknown rollout problem"):
        RolloutConfig(problem="pme")
    with pytest.raises(ValueError, match="even n_points"):
        RolloutConfig(problem="cavity", n_points=33)


def test_wave2d_rollout_keeps_the_total_and_the_insulated_walls(tmp_path):
    """The 2-D wave (second order in time: the last two states in): from predictions.npz,
    with our own 2-D trapezoid rule and stencils, ProbConserv-BOON's total stays the initial
    total to 1e-10 relative and its normal derivative is zero on every wall (corners left
    out) to 1e-8, at every step; the first state before t = 0 is u(dt) (even in time)."""
    traj = make_trajectories("wave2d", 2, 12, 3, 0.04, seed=1)
    torch.testing.assert_close(traj.before[:, 0], traj.fields[:, 1])
    config = RolloutConfig.default("wave2d", steps=8, window=3, n_train=3, n_test=2,
                                   n_points=12, modes=4, width=8, n_layers=2, epochs=1)
    run_rollout(config, tmp_path / "wave", progress=False)
    data = np.load(tmp_path / "wave" / "predictions.npz")
    x = data["x"]
    h = x[1] - x[0]
    w = np.full_like(x, h)
    w[[0, -1]] = h / 2
    weights = np.outer(w, w)
    truth = data["truth"]
    assert truth.shape == (2, 9, 12, 12)
    total0 = (truth[:, 0] * weights).sum((1, 2))
    u = data["ProbConserv-BOON/mean"][:, 1:]
    totals = (u * weights).sum((2, 3))
    assert np.abs(totals - total0[:, None]).max() <= 1e-10 * np.abs(total0).max()
    inner = slice(1, -1)
    fluxes = [(-3 * u[:, :, 0, inner] + 4 * u[:, :, 1, inner] - u[:, :, 2, inner]) / (2 * h),
              (3 * u[:, :, -1, inner] - 4 * u[:, :, -2, inner] + u[:, :, -3, inner]) / (2 * h),
              (-3 * u[:, :, inner, 0] + 4 * u[:, :, inner, 1] - u[:, :, inner, 2]) / (2 * h),
              (3 * u[:, :, inner, -1] - 4 * u[:, :, inner, -2] + u[:, :, inner, -3]) / (2 * h)]
    assert max(np.abs(f).max() for f in fluxes) < 1e-8
    for wall in ("left", "right", "bottom", "top"):
        assert data[f"{wall}_values"].shape == (2, 9, 12)


def test_cli_offers_exactly_the_rollout_problems():
    """The CLI keeps its own list (no experiment import at start-up): it must not drift."""
    from physguard.experiments.rollout import ROLLOUT_PROBLEMS

    command = main.commands["rollout"]
    problem = next(p for p in command.params if p.name == "problem")
    assert sorted(problem.type.choices) == sorted(ROLLOUT_PROBLEMS)


def test_cavity_rollout_keeps_zero_divergence_and_the_lid(tmp_path):
    """The cavity's velocity (two fields per state): from predictions.npz, with our own
    central differences, ProbConserv-BOON's divergence vanishes at every interior node to
    1e-8 and both components meet the lid and no slip on every wall node to 1e-12, at every
    step; the truth (the solver on the learning grid) meets the same rows to round-off."""
    config = RolloutConfig.default("cavity", steps=8, window=3, n_train=3, n_test=2,
                                   n_points=12, modes=4, width=8, n_layers=2, epochs=1)
    run_rollout(config, tmp_path / "cavity", progress=False, figures=False)
    data = np.load(tmp_path / "cavity" / "predictions.npz")
    x, y = data["x"], data["y"]
    assert data["truth"].shape == (2, 9, 12, 12, 2)
    assert data["top_values"].shape == (2, 9, 12, 2)
    hx, hy = x[1] - x[0], y[1] - y[0]

    def divergence(field):  # (..., Nx, Ny, 2)
        u, v = field[..., 0], field[..., 1]
        return ((u[..., 2:, 1:-1] - u[..., :-2, 1:-1]) / (2 * hx)
                + (v[..., 1:-1, 2:] - v[..., 1:-1, :-2]) / (2 * hy))

    assert np.abs(divergence(data["truth"])).max() < 1e-10
    lid = np.zeros((12, 2))
    lid[1:-1, 0] = 1.0  # u = 1 on the lid, its corners at rest; v = 0
    np.testing.assert_array_equal(data["top_values"], np.broadcast_to(lid, (2, 9, 12, 2)))
    for model in ("ProbConserv-BOON", "BOON", "FNO"):
        u = data[f"{model}/mean"]
        assert u.shape == (2, 9, 12, 12, 2)
        walls = {"left": u[:, :, 0], "right": u[:, :, -1], "bottom": u[:, :, :, 0],
                 "top": u[:, :, :, -1]}
        error = max(np.abs(walls[w] - data[f"{w}_values"]).max() for w in walls)
        div = np.abs(divergence(u[:, 1:])).max()
        if model == "ProbConserv-BOON":
            assert div < 1e-8 and error < 1e-12
        elif model == "BOON":
            assert error < 1e-12 and div > 1e-6
        else:
            assert error > 1e-6
    records = json.loads((tmp_path / "cavity" / "metrics.json").read_text())
    pc = [r for r in records if r["model"] == "ProbConserv-BOON" and not r.get("summary")]
    assert max(r["mass_error"] for r in pc) < 1e-8 and len(pc) == 8


def test_rollout_of_a_state_with_several_fields():
    """``fields=C``: the state (B, C, *space) is the model's input and output, and a wrong
    number of output channels is refused."""
    u0 = torch.randn(3, 2, 5, 4, dtype=F64)
    traj = pg.rollout(lambda s: 0.5 * s.flip(1), u0, 3, fields=2)
    assert traj.shape == (3, 4, 2, 5, 4)
    torch.testing.assert_close(traj[:, 2], 0.25 * u0)
    with pytest.raises(ValueError, match=r"\(B, C, \*space\)"):
        pg.rollout(lambda s: s[:, :1], u0, 2, fields=2)
    with pytest.raises(ValueError, match="fields = 3"):
        pg.rollout(lambda s: s, u0, 2, fields=3)


def _exported(tmp_path, problem, name, n=6, points=32, steps=12, **change):
    from physguard.datasets.well import export_well
    from physguard.experiments.rollout import ROLLOUT_DT

    traj = make_trajectories(problem, n, points, steps, ROLLOUT_DT[problem], seed=5)
    data = dataclasses.replace(traj.steps, **change) if change else traj.steps
    export_well(data, tmp_path / name)
    return traj, tmp_path / name


def test_cli_rollout_reads_a_users_well_file(tmp_path):
    """--data: the file's trajectories (The Well's layout) are split, the last fifth rolled
    out for the file's length, the file recorded in config.json; the constrained rollout
    keeps the file's walls and the total of the problem's law to round-off."""
    traj, path = _exported(tmp_path, "heat-neumann", "heat.h5")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["rollout", "heat-neumann", "--data", str(path),
                                       "--epochs", "1", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == 12 and config["n_test"] == 1 and config["n_train"] == 5
    assert len(config["data"]["sha256"]) == 64 and config["data"]["check_walls"] is True
    data = np.load(out / "predictions.npz")
    np.testing.assert_allclose(data["truth"], traj.fields[5:].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(data["right_values"][:, 1:], traj.right_values[5:, 1:].numpy(),
                               rtol=1e-6)
    u, x = data["ProbConserv-BOON/mean"][:, 1:], data["x"]
    totals = ((u[..., 1:] + u[..., :-1]) / 2 * np.diff(x)).sum(-1)
    exact = traj.totals[5:].numpy()
    assert np.abs(totals - exact).max() <= 1e-10 * np.abs(exact).max()
    h = x[1] - x[0]
    flux = (3 * u[..., -1] - 4 * u[..., -2] + u[..., -3]) / (2 * h)
    assert np.abs(flux - data["right_values"][:, 1:]).max() < 1e-8


def test_rollout_refuses_files_that_contradict_the_conservation_law(tmp_path):
    """A file whose parameters give totals its fields do not have, or (the cavity) velocities
    off the divergence rows, is refused before any training, naming the trajectory and the
    step; data not read as trajectories are refused too."""
    from physguard.datasets.pdebench import read_file
    from physguard.experiments.rollout import trajectories_from_data

    traj, path = _exported(tmp_path, "heat-neumann", "wrong.h5", n=3)
    _, wrong = _exported(tmp_path, "heat-neumann", "wrong2.h5", n=3,
                         params=traj.params * 1.5)
    result = CliRunner().invoke(main, ["rollout", "heat-neumann", "--data", str(wrong),
                                       "--out", str(tmp_path / "no")])
    assert result.exit_code != 0 and "conservation law" in result.output
    assert "trajectory" in result.output and not (tmp_path / "no").exists()
    with pytest.raises(ValueError, match="setting='trajectory'"):
        trajectories_from_data(read_file(path, "heat-neumann", "multi"))
    with pytest.raises(ValueError, match="conservation law"):  # refine 2: off the rows
        from physguard.datasets.operator2d import make_operator_data_2d
        from physguard.datasets.well import export_well

        export_well(make_operator_data_2d("cavity", 2, "multi", "velocity", 12, 4,
                                          progress=False), tmp_path / "cavity.h5")
        trajectories_from_data(read_file(tmp_path / "cavity.h5", "cavity", "trajectory"))
    result = CliRunner().invoke(main, ["rollout", "heat-neumann", "--walls", "left=neumann:0"])
    assert result.exit_code != 0 and "--data" in result.output


def test_isotropic_sparse_conditioning_equals_the_general_update(monkeypatch):
    """The cavity's conditioned ensemble (an isotropic prior per sample, sparse exact rows)
    takes the shared projection and c_b times one posterior-variance vector: the same mean
    and variances as the general sparse update, to round-off."""
    import physguard.rollouts as R
    from physguard.experiments.rollout import step_constraint
    from physguard.models.ensemble import EnsembleNoise

    traj = make_trajectories("cavity", 3, 12, 4, 0.04, seed=0)
    gen = torch.Generator().manual_seed(1)
    members = traj.fields[None] + 0.05 * torch.randn(4, *traj.fields.shape, generator=gen,
                                                     dtype=F64)
    one = torch.tensor(1.0, dtype=F64)
    fitted = EnsembleNoise(1e-3 * one, 0 * one, 0 * one, 2 * one, one, one)
    constraint = step_constraint(traj)
    fast = R.trajectory_gaussian(members, fitted, constraint)
    monkeypatch.setattr(R, "_isotropic_level", lambda prior, rows: None)
    general = R.trajectory_gaussian(members, fitted, constraint)
    torch.testing.assert_close(fast.mean, general.mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.var, general.var, rtol=1e-9, atol=1e-15)
    assert float(fast.var.max()) > 1e-4
