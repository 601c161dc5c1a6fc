"""The GPME experiment end to end at a tiny size: files, formats, exact conservation."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.experiments import METHODS, GPMEConfig
from physguard.models import load_checkpoint


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["run", "stefan", "--out", str(out), "--epochs", "2",
                                       "--functions", "40", "--test-functions", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_folder_contents(tiny_run):
    out, output = tiny_run
    for name in ("config.json", "model.pt", "training.json", "metrics.json", "table.md",
                 "predictions.npz", "profile.png", "mass.png", "shock_position.png",
                 "error_over_time.png"):
        assert (out / name).is_file(), name
    assert "ProbConserv-ANP" in output and "| p* |" in output
    assert not list(out.glob(".*.tmp"))


def test_metrics_json_contract_and_exact_conservation(tiny_run):
    out, _ = tiny_run
    records = json.loads((out / "metrics.json").read_text())
    assert {(r["method"], r["param"]) for r in records} == {
        (m, p) for m in METHODS for p in (0.5, 0.6)}
    for r in records:
        for key in ("MSE", "CE", "LL", "CRPS", "coverage90"):
            assert np.isfinite(r[key]) and np.isfinite(r[f"{key}_all"])
        if r["method"] != "ANP":
            assert r["CE"] < 1e-10 and r["CE_all"] < 1e-10
    anp = [r for r in records if r["method"] == "ANP"]
    assert all(r["CE"] > 1e-6 for r in anp)  # an untrained network does not conserve mass


def test_predictions_and_checkpoint(tiny_run):
    out, _ = tiny_run
    with np.load(out / "predictions.npz") as data:
        assert data["t"].shape == (201,) and data["x"].shape == (201,)
        assert data["param"].tolist() == [0.5, 0.5, 0.6, 0.6]
        for m in METHODS:
            assert data[f"{m}/mean"].shape == (4, 201, 201)
            assert (data[f"{m}/var"] >= 0).all()
    model, meta = load_checkpoint(out / "model.pt")
    assert meta["problem"] == "stefan"
    assert json.loads(meta["experiment"])["n_train"] == 40
    torch.load(out / "model.pt", weights_only=True)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown problem"):
        GPMEConfig(problem="heat")
    with pytest.raises(ValueError, match="n_train must be >= 1"):
        GPMEConfig(n_train=0)
    assert GPMEConfig.paper("pme").n_train == 10_000
