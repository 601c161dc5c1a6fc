"""The GPME experiment end to end at a tiny size: files, formats, exact conservation."""

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.experiments import METHODS, GPMEConfig
from physguard.training import load_checkpoint

ALL = (*METHODS, "ProbConserv+NonNeg-ANP")  # Stefan's u >= 0: the QP variant is reported too


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["run", "stefan", "--out", str(out), "--epochs", "2",
                                       "--functions", "40", "--test-functions", "2",
                                       "--shock-calibration", "9", "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_folder_contents(tiny_run):
    out, output = tiny_run
    for name in ("config.json", "model.pt", "training.json", "metrics.json", "table.md",
                 "predictions.npz", "profile.png", "mass.png", "shock_position.png",
                 "error_over_time.png", "front_calibration.json", "shock_reliability.png"):
        assert (out / name).is_file(), name
    assert "ProbConserv-ANP" in output and "| p* |" in output
    assert not list(out.glob(".*.tmp"))


def test_metrics_json_contract_and_exact_conservation(tiny_run):
    out, _ = tiny_run
    records = json.loads((out / "metrics.json").read_text())
    assert {(r["method"], r["param"]) for r in records} == {
        (m, p) for m in ALL for p in (0.5, 0.6)}
    for r in records:
        for key in ("MSE", "CE", "LL", "CRPS", "coverage90"):
            assert np.isfinite(r[key]) and np.isfinite(r[f"{key}_all"])
        if r["method"] != "ANP":
            assert r["CE"] < 1e-10 and r["CE_all"] < 1e-10
        # Downstream task: posterior of the shock position from joint samples.
        assert 0 <= r["shock_coverage90"] <= 1 and r["shock_mae"] >= 0
        # Stefan's front is a jump: step fit primary, the paper's u <= 0 rule beside it
        assert 0 <= r["shock_coverage90_paper"] <= 1 and r["shock_mae_paper"] >= 0
        assert abs(r["shock_true"] - (0.27730044 if r["param"] == 0.5 else 0.23508668)) < 1e-3
        # the calibrated interval beside the posterior samples' own
        assert 0 <= r["shock_coverage90_posterior"] <= 1 and r["shock_width90_posterior"] >= 0
        assert np.isfinite(r["shock_width90"]) and r["shock_width90"] > 0
    anp = [r for r in records if r["method"] == "ANP"]
    assert all(r["CE"] > 1e-6 for r in anp)  # an untrained network does not conserve mass
    for r in records:
        if r["method"].startswith("ProbConserv+NonNeg"):
            assert 0 <= r["nonneg_changed_frac"] <= 1 and r["nonneg_max_change"] >= 0


def test_shock_interval_is_calibrated_on_validation_functions_only(tiny_run):
    out, _ = tiny_run
    calibration = json.loads((out / "front_calibration.json").read_text())
    assert calibration["ranges"] == [[0.55, 0.7], [0.7, 0.8]]  # the training range, beyond it
    params = calibration["params"]
    assert len(params) == 18 and not {0.5, 0.6} & set(params)
    assert all(0.55 <= p <= 0.7 for p in params[:9]) and all(0.7 <= p <= 0.8 for p in params[9:])
    assert set(calibration["scores"]) == set(ALL)
    assert all(len(v) == 18 and min(v) >= 0 for v in calibration["scores"].values())
    # the interval reported is mean +- q scale, q the ceil(19 * 0.9) = 18th of 18 scores
    from physguard.experiments.gpme import front_interval

    q = front_interval(calibration["scores"]["ProbConserv-ANP"], 0.9)
    assert q == max(calibration["scores"]["ProbConserv-ANP"])


def test_predictions_and_checkpoint(tiny_run):
    out, _ = tiny_run
    with np.load(out / "predictions.npz") as data:
        assert data["t"].shape == (201,) and data["x"].shape == (201,)
        assert data["param"].tolist() == [0.5, 0.5, 0.6, 0.6]
        for m in ALL:
            assert data[f"{m}/mean"].shape == (4, 201, 201)
            assert (data[f"{m}/var"] >= 0).all()
        assert data["ProbConserv+NonNeg-ANP/mean"].min() >= -1e-6  # float32 file
    model, meta = load_checkpoint(out / "model.pt")
    assert meta["problem"] == "stefan"
    assert json.loads(meta["experiment"])["n_train"] == 40
    torch.load(out / "model.pt", weights_only=True)


def test_config_validation():
    with pytest.raises(ValueError, match="n_shock_calibration"):
        GPMEConfig(n_shock_calibration=5)
    assert GPMEConfig(n_shock_calibration=0).n_shock_calibration == 0
    with pytest.raises(ValueError, match="unknown problem"):
        GPMEConfig(problem="heat")
    with pytest.raises(ValueError, match="n_train must be >= 1"):
        GPMEConfig(n_train=0)
    assert GPMEConfig.paper("pme").n_train == 10_000


def _observations(path, params, seed=7):
    from physguard.datasets import sample_functions

    data = sample_functions("stefan", len(params), params=params, seed=seed)
    arrays = {"t": data.context_t.numpy(), "x": data.context_x.numpy(),
              "u": data.context_u.numpy(), "param": np.asarray(params, dtype=float)}
    np.savez(path, **arrays)
    return arrays


def test_evaluate_on_user_observations(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    params = [0.6, 0.5, 0.6]
    _observations(tmp_path / "obs.npz", params)
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", "stefan", "--run", str(run_dir), "--contexts",
                                       str(tmp_path / "obs.npz"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    with np.load(out / "predictions.npz") as data:
        assert data["param"].tolist() == params  # the file's function order
        for m in METHODS:
            assert data[f"{m}/mean"].shape == (3, 201, 201)
    records = json.loads((out / "metrics.json").read_text())
    assert {r["param"] for r in records} == {0.5, 0.6}
    assert all(r["CE"] < 1e-6 for r in records if r["method"] == "ProbConserv-ANP")
    assert (out / "profile.png").is_file()
    # the run's shock-interval calibration carries over to the user's observations
    assert json.loads((out / "front_calibration.json").read_text()) == json.loads(
        (run_dir / "front_calibration.json").read_text())
    assert all("shock_coverage90_posterior" in r for r in records)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.pop("u"), "misses the arrays u"),
    (lambda a: a.update(t=a["t"][:, :5]), "t has shape"),
    (lambda a: a.update(param=a["param"][:1]), "param must have shape"),
    (lambda a: a["x"].__setitem__((1, 3), 1.5), r"x\[1, 3\] = 1.5 lies outside"),
    (lambda a: a["u"].__setitem__((0, 2), np.nan), r"u holds NaN .* \(0, 2\)"),
    (lambda a: a["param"].__setitem__(0, 1.5), r"param\[0\] = 1.5 is invalid"),
])
def test_evaluate_rejects_bad_observations(tiny_run, tmp_path, edit, message):
    run_dir, _ = tiny_run
    arrays = _observations(tmp_path / "obs.npz", [0.5, 0.6])
    edit(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    result = CliRunner().invoke(main, ["evaluate", "stefan", "--run", str(run_dir), "--contexts",
                                       str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o"),
                                       "--quiet"])
    assert result.exit_code != 0
    assert re.search(message, result.output), result.output


def test_evaluate_checks_the_problem_and_files(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    _observations(tmp_path / "obs.npz", [0.5])
    result = CliRunner().invoke(main, ["evaluate", "pme", "--run", str(run_dir), "--contexts",
                                       str(tmp_path / "obs.npz"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "trained on 'stefan'" in result.output
    result = CliRunner().invoke(main, ["evaluate", "stefan", "--run", str(run_dir), "--contexts",
                                       str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no data file" in result.output


def test_shock_table_mixes_jump_and_continuous_fronts():
    """Burgers: a = 3 has a shock at t* (step fit, paper's rule beside it), a = 1 not yet."""
    from physguard.experiments.gpme import markdown_table
    from physguard.pdes import InviscidBurgers

    base = {k: 0.0 for k in ("MSE", "MSE_se", "CE", "LL", "LL_se", "CRPS", "coverage90",
                             "MSE_all", "CE_all", "LL_all", "CRPS_all", "coverage90_all")}
    front = {"shock_true": 0.0, "shock_mean": 0.1, "shock_mae": 0.1, "shock_sd": 0.01,
             "shock_coverage90": 0.5, "shock_width90": 0.02}
    records = [{**base, **front, "method": "ANP", "param": 1.0},
               {**base, **front, "method": "ANP", "param": 3.0, "shock_mean_paper": 0.3,
                "shock_mae_paper": 0.0512, "shock_coverage90_paper": 0.4}]
    table = markdown_table(records, InviscidBurgers, 0.5)
    rows = [line for line in table.splitlines() if line.startswith("| 1 | ANP | 0.0000")
            or line.startswith("| 3 | ANP | 0.0000")]
    assert len(rows) == 2 and rows[0].endswith("| - | - | - |") and "0.0512" in rows[1]
    assert all(row.count("|") == 12 for row in rows) and "| 0.50 | 0.0200 |" in rows[0]
