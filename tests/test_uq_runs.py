"""`physguard run PROBLEM --uq`: ensembles with exact walls and exact conservation (issue 12,
parts 4-5), at tiny sizes."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from physguard.cli import main
from physguard.constraints import trapezoid_weights
from physguard.datasets.operator import make_operator_data
from physguard.experiments.uq import UQ_MODELS, UQConfig, run_uq, true_mass
from physguard.pdes.linear_bc import HeatNeumann, StokesSecond

TINY = dict(n_train=12, n_test=4, epochs=2, n_points=24, n_steps=4, width=8, modes=6,
            modes_t=3)


def _tiny(problem):
    config = UQConfig.default(problem, "multi", n_members=2, **TINY)
    return UQConfig(problem=problem, n_members=2, n_cal=4, operator=config.operator)


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("uq") / "heat"
    records = run_uq(_tiny("heat-neumann"), out, progress=False)
    return out, records


def _flux(u, h, side):
    """My own second-order one-sided stencils (not the library's)."""
    if side == "left":
        return (-3 * u[..., 0] + 4 * u[..., 1] - u[..., 2]) / (2 * h)
    return (3 * u[..., -1] - 4 * u[..., -2] + u[..., -3]) / (2 * h)


def test_heat_uq_records_hold_both_guarantees(heat_run):
    out, records = heat_run
    assert {(r["model"], r["range"]) for r in records} == {
        (m, r) for m in UQ_MODELS for r in ("in", "out")}
    for r in records:
        assert set(r) >= {"rel_l2", "MSE", "boundary_error", "CE", "LL", "CRPS", "coverage90"}
        assert np.isfinite([r[k] for k in ("LL", "CRPS", "MSE")]).all()
    best = {(r["model"], r["range"]): r for r in records}
    for range_name in ("in", "out"):
        both = best[("ProbConserv-BOON-Ensemble", range_name)]
        assert both["boundary_error"] < 1e-8 and both["CE"] < 1e-10
        assert best[("ProbConserv-FNO-Ensemble", range_name)]["CE"] < 1e-9
        assert best[("BOON-Ensemble", range_name)]["boundary_error"] < 1e-8
    assert json.loads((out / "metrics.json").read_text()) == records


def test_heat_uq_predictions_recomputed_independently(heat_run):
    """The saved means meet the walls and the mass with stencils and weights computed here."""
    out, _ = heat_run
    with np.load(out / "predictions.npz") as f:
        x, t, truth = f["x"], f["t"], f["truth"]
        mean = f["ProbConserv-BOON-Ensemble/mean"]
        var = f["ProbConserv-BOON-Ensemble/var"]
        assert mean.shape == var.shape == truth.shape == (4, len(t), len(x))
        assert (var >= 0).all()
        h = x[1] - x[0]
        assert np.abs(_flux(mean, h, "left") - f["left_values"]).max() < 1e-8
        assert np.abs(_flux(mean, h, "right") - f["right_values"]).max() < 1e-8
        w = np.full(len(x), h)
        w[0] = w[-1] = h / 2
        omegas = f["params"]
    exact = np.stack([HeatNeumann(o).mass(t).numpy() for o in omegas])
    assert np.abs(mean @ w - exact).max() < 1e-10
    assert (out / "predictions_ood.npz").exists()
    for name in ("uq_band", "uq_mass", "uq_boundary", "uq_calibration"):
        assert (out / f"{name}.png").stat().st_size > 0
    calibration = json.loads((out / "calibration.json").read_text())
    assert all(min(c["noise_var"]) > 0 for c in calibration.values())


def test_out_of_range_samples_lie_outside_the_training_range(heat_run):
    out, _ = heat_run
    with np.load(out / "predictions_ood.npz") as f:
        assert f["params"].min() > HeatNeumann.omega_range[1]


def test_mass_from_fluxes_matches_the_closed_forms():
    for problem, cls in (("heat-neumann", HeatNeumann), ("stokes", StokesSecond)):
        data = make_operator_data(problem, 3, 16, "multi", 5, seed=2)
        exact = np.stack([cls(o).mass(data.t).numpy() for o in data.params.tolist()])
        np.testing.assert_allclose(true_mass(data).numpy(), exact, rtol=0, atol=1e-11)
    data = make_operator_data("burgers-periodic", 2, 32, "multi", 3, seed=0)
    w = trapezoid_weights(data.x)
    np.testing.assert_allclose(true_mass(data).numpy(), (data.targets @ w).numpy(), atol=1e-9)


def test_burgers_periodic_uq_conserves_the_mean(tmp_path):
    records = run_uq(_tiny("burgers-periodic"), tmp_path / "b", progress=False, figures=False)
    assert {r["range"] for r in records} == {"in"}  # no parameter: no out-of-range rows
    both = next(r for r in records if r["model"] == "ProbConserv-BOON-Ensemble")
    assert both["CE"] < 1e-10 and both["boundary_error"] < 1e-10


def test_cli_uq_refuses_what_it_cannot_do(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "stefan", "--uq", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--uq applies to" in result.output
    result = runner.invoke(main, ["run", "heat-neumann", "--uq", "--paper"])
    assert result.exit_code == 2 and "no --paper" in result.output
    with pytest.raises(ValueError, match="no parameter range"):
        make_operator_data("burgers-periodic", 2, 16, param_range=(1.0, 2.0))


def _tiny_2d(problem, setting):
    sizes = dict(n_points=12, width=6, modes=3, projection_width=8, n_train=8, n_test=3,
                 epochs=1)
    if setting == "multi":
        sizes.update(n_steps=3, modes_t=2)
    config = UQConfig.default(problem, setting, n_members=2, **sizes)
    return UQConfig(problem=problem, n_members=2, n_cal=3, operator=config.operator)


@pytest.mark.parametrize("setting", ["multi", "single"])
def test_wave2d_uq_walls_and_total_exact(tmp_path, setting):
    assert UQConfig.default("wave2d").operator.setting == "single"  # the 2-D default
    records = run_uq(_tiny_2d("wave2d", setting), tmp_path / "w", progress=False)
    both = next(r for r in records if r["model"] == "ProbConserv-BOON-Ensemble")
    assert both["boundary_error_max"] < 1e-9 and both["CE_max"] < 1e-10
    with np.load(tmp_path / "w" / "predictions.npz") as f:
        mean, x = f["ProbConserv-BOON-Ensemble/mean"], f["x"]
        assert mean.shape == f["truth"].shape == (3, 3 if setting == "multi" else 1, 12, 12)
        h = x[1] - x[0]
        # my own stencil: du/dx = 0 on the left wall away from the corners
        flux = (-3 * mean[..., 0, 1:-1] + 4 * mean[..., 1, 1:-1] - mean[..., 2, 1:-1]) / (2 * h)
        assert np.abs(flux).max() < 1e-9
        wx = np.full(12, h)
        wx[[0, -1]] = h / 2
        total = np.einsum("ntij,i,j->nt", mean, wx, wx)
        initial = np.einsum("ntij,i,j->nt", f["truth"][:, :1], wx, wx)
        assert np.abs(total - f["mass"]).max() < 1e-10
        assert np.abs(f["mass"] - initial).max() < 1e-9  # the wave's total is constant
    assert (tmp_path / "w" / "uq_fields.png").exists()


def test_cavity_uq_every_cell_divergence_free_with_exact_walls(tmp_path):
    records = run_uq(_tiny_2d("cavity", "single"), tmp_path / "c", progress=False)
    assert {r["range"] for r in records} == {"in", "out"}  # out: Re 300 .. 500, trained at 100
    for both in (r for r in records if r["model"] == "ProbConserv-BOON-Ensemble"):
        assert both["CE_max"] < 1e-10 and both["boundary_error_max"] < 1e-10
    with np.load(tmp_path / "c" / "predictions.npz") as f:
        mean, x = f["ProbConserv-BOON-Ensemble/mean"], f["x"]
        u, v = mean[:, 0], mean[:, 1]
        h = x[1] - x[0]
        div = (u[:, 1:, 1:] + u[:, 1:, :-1] - u[:, :-1, 1:] - u[:, :-1, :-1]
               + v[:, 1:, 1:] + v[:, :-1, 1:] - v[:, 1:, :-1] - v[:, :-1, :-1]) / (2 * h)
        assert np.abs(div).max() < 1e-10
        assert np.abs(mean[:, 0, 1:-1, -1] - 1.0).max() < 1e-10  # the lid
        assert np.abs(mean[:, :, 0]).max() < 1e-10  # no slip on the left wall
        assert (f["ProbConserv-BOON-Ensemble/var"] >= 0).all()


def test_cavity_uq_refuses_an_odd_grid():
    with pytest.raises(ValueError, match="even n_points"):
        UQConfig.default("cavity", "single", n_points=33)
    with pytest.raises(ValueError, match="use --setting single"):
        UQConfig.default("cavity", "multi")


def test_saved_members_reevaluate_to_the_same_records(heat_run, tmp_path):
    """``members_from``: the saved members, loaded with weights_only, give the run's records
    again (no retraining); members of another configuration (here their number) are
    refused."""
    out, records = heat_run
    again = run_uq(_tiny("heat-neumann"), tmp_path / "again", progress=False, figures=False,
                   members_from=out)
    for a, b in zip(again, records, strict=True):
        assert (a["model"], a["range"]) == (b["model"], b["range"])
        assert a["MSE"] == pytest.approx(b["MSE"], rel=1e-9)
        assert a["LL"] == pytest.approx(b["LL"], rel=1e-6)
    other = UQConfig(problem="heat-neumann", n_members=3, n_cal=4,
                     operator=_tiny("heat-neumann").operator)
    with pytest.raises(ValueError, match="not a --uq run of this configuration"):
        run_uq(other, tmp_path / "other", progress=False, members_from=out)
    assert not (tmp_path / "other").exists()
