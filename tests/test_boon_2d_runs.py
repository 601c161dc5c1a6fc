"""2-D operator data and the 2-D BOON runs at tiny sizes: files, contracts, exact walls."""

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.datasets.operator2d import OperatorData2d, make_operator_data_2d
from physguard.experiments.boon2d import (
    BOON2dConfig,
    predict_2d,
    run_boon_2d,
    split_data_2d,
    train_and_evaluate_2d,
)


@pytest.mark.parametrize("problem, setting, field", [
    ("cavity", "single", "velocity"), ("cavity", "multi", "vorticity"),
    ("wave2d", "single", None), ("wave2d", "multi", None)])
def test_data_shapes_and_wall_values(problem, setting, field):
    data = make_operator_data_2d(problem, 3, setting, field, n_points=9, n_steps=4,
                                 progress=False)
    c = {"velocity": 2}.get(data.field, 1)
    steps = 1 if setting == "single" else 4
    assert data.inputs.shape == (3, c, 9, 9)
    assert data.targets.shape == (3, c * steps, 9, 9)
    if data.wall_types[0] == "dirichlet":  # the values are the targets' wall values
        assert torch.equal(data.left, data.targets[..., 0, :])
        assert torch.equal(data.top, data.targets[..., :, -1])
    else:
        assert float(data.left.abs().max()) == 0.0
    if data.field == "velocity":  # known before any solve: the lid moves u, nothing else
        assert torch.all(data.top[:, 0, 1:-1] == 1.0) and float(data.top[:, 1].abs().max()) == 0
        assert float(data.left.abs().max()) == 0.0


def test_samples_do_not_depend_on_how_many_are_made():
    a = make_operator_data_2d("cavity", 2, n_points=9, progress=False)
    b = make_operator_data_2d("cavity", 3, n_points=9, progress=False)
    assert torch.equal(a.targets, b.targets[:2])


def test_save_load_and_bad_files(tmp_path):
    data = make_operator_data_2d("wave2d", 2, n_points=9, progress=False)
    data.save(tmp_path / "d.npz")
    back = OperatorData2d.load(tmp_path / "d.npz")
    assert back.wall_types == data.wall_types and torch.equal(back.targets, data.targets)
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError):
        OperatorData2d.load(tmp_path / "cut.npz")


def test_multi_step_velocity_is_step_major():
    """Channels 2k and 2k + 1 are u and v at step k; the last step is the single-step
    sample at t = 1 (the same initial field; the solver shortens the last step before each
    stored time, so the paths differ by the time discretisation only: 6e-6 measured)."""
    multi = make_operator_data_2d("cavity", 2, "multi", "velocity", n_points=9, n_steps=3,
                                  progress=False)
    single = make_operator_data_2d("cavity", 2, n_points=9, progress=False)
    assert multi.targets.shape == (2, 6, 9, 9) and multi.fields == 2 and single.fields == 2
    assert torch.equal(multi.inputs, single.inputs)
    assert float((multi.targets[:, -2:] - single.targets).abs().max()) < 1e-4
    assert torch.all(multi.top[:, 0::2, 1:-1] == 1.0)  # u: the lid; v: 0
    assert float(multi.top[:, 1::2].abs().max()) == 0.0
    with pytest.raises(ValueError, match="T x fields"):
        dataclasses.replace(multi, t=torch.linspace(0.2, 1.0, 4, dtype=torch.float64))


def test_cli_single_step_cavity(tmp_path):
    out = tmp_path / "cavity"
    result = CliRunner().invoke(main, ["run", "cavity", "--setting", "single", "--epochs", "2",
                                       "--functions", "6", "--test-functions", "3", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("config.json", "metrics.json", "table.md", "fno.pt", "boon.pt", "fields.png",
                 "boundary.png", "training.json", "timing.json"):
        assert (out / name).is_file(), name
    records = {r["model"]: r for r in json.loads((out / "metrics.json").read_text())}
    for key in ("rel_l2", "boundary_error", "bRMSE", "cRMSE", "fRMSE_low"):
        assert key in records["FNO"] and key in records["BOON"]
    assert records["BOON"]["boundary_error"] < 1e-12 < records["FNO"]["boundary_error"]
    state = torch.load(out / "boon.pt", weights_only=True)
    assert state["model"] == "BOON"
    # The velocity cavity's BOON is the exact output only by default, and says so.
    assert json.loads((out / "config.json").read_text())["kernel_correction"] is False
    assert "without the per-layer kernel correction" in (out / "table.md").read_text()


def test_cli_defaults_are_the_multi_step_map(monkeypatch, tmp_path):
    """``physguard run cavity`` / ``wave2d`` without options: the authors' multi-step map
    (the run's error over time and animation need several times), the cavity's velocity with
    BOON's exact output; ``--paper`` learns the authors' vorticity; 1-D stays single step."""
    from physguard.experiments import boon, boon2d

    seen = []

    def fake_run(config, out, **kwargs):
        seen.append(config)
        out.mkdir(exist_ok=True)
        (out / "table.md").write_text("")

    monkeypatch.setattr(boon2d, "run_boon_2d", fake_run)
    monkeypatch.setattr(boon, "run_boon", fake_run)
    for args in (["cavity"], ["wave2d"], ["cavity", "--paper"],
                 ["cavity", "--setting", "single"], ["heat-neumann"]):
        result = CliRunner().invoke(main, ["run", *args, "--out", str(tmp_path / "r")])
        assert result.exit_code == 0, result.output
    cavity, wave, paper, single, heat = seen
    assert (cavity.setting, cavity.field, cavity.kernel_correction, cavity.input_walls) == (
        "multi", "velocity", False, False)
    assert (wave.setting, wave.kernel_correction) == ("multi", True)
    assert (paper.setting, paper.field, paper.n_train, paper.input_walls) == (
        "multi", "vorticity", 1000, True)
    assert (single.setting, single.field) == ("single", "velocity")
    assert heat.setting == "single"


def test_multi_step_wave_run_with_animation(tmp_path):
    config = BOON2dConfig("wave2d", "multi", n_train=4, n_test=2, n_points=9, n_steps=4,
                          modes=3, modes_t=2, width=4, n_layers=2, epochs=1, batch_size=2,
                          projection_width=8, time_padding=2, device="cpu")
    records = run_boon_2d(config, tmp_path / "wave", progress=False)
    assert (tmp_path / "wave" / "animation.gif").read_bytes()[:3] == b"GIF"
    assert (tmp_path / "wave" / "error_over_time.png").is_file()
    boon = next(r for r in records if r["model"] == "BOON")
    assert boon["boundary_error"] < 1e-12 and len(boon["rel_l2_per_step"]) == 4


def test_kernel_correction_defaults_and_errors():
    assert BOON2dConfig.default("cavity", "single").kernel_correction is False  # velocity
    assert BOON2dConfig.default("cavity").kernel_correction is False  # multi-step velocity
    assert BOON2dConfig.default("cavity", kernel_correction=True).kernel_correction is True
    assert BOON2dConfig.default("cavity", "multi", field="vorticity").kernel_correction is False
    assert BOON2dConfig.default("wave2d").kernel_correction is True
    with pytest.raises(ValueError, match="kernel_correction"):
        BOON2dConfig("wave2d", kernel_correction="yes")
    result = CliRunner().invoke(main, ["run", "stefan", "--no-kernel-correction"])
    assert result.exit_code == 2 and "apply to the BOON runs" in result.output


def test_input_walls_config_defaults_and_errors():
    multi = BOON2dConfig.default("cavity", "multi", field="vorticity")  # exact + walls in
    assert (multi.kernel_correction, multi.input_walls) == (False, True)
    assert BOON2dConfig.default("cavity", "multi", field="velocity").input_walls is False
    assert BOON2dConfig.default("cavity").input_walls is False
    assert BOON2dConfig.default("cavity", "multi", field="vorticity",
                                input_walls=True).input_walls is True
    with pytest.raises(ValueError, match="wave2d has none"):
        BOON2dConfig.default("wave2d", input_walls=True)
    with pytest.raises(ValueError, match="the velocity has two"):
        BOON2dConfig.default("cavity", "multi", field="velocity", input_walls=True)
    with pytest.raises(ValueError, match="input_walls"):
        BOON2dConfig("cavity", input_walls="yes")


def test_multi_step_velocity_run(tmp_path):
    """Two fields per step: BOON (with the kernel correction) holds every step's lid and no
    slip, and the error over time is per step, not per channel."""
    config = BOON2dConfig("cavity", "multi", "velocity", n_train=4, n_test=2, n_points=9,
                          n_steps=3, modes=3, modes_t=2, width=4, n_layers=2, epochs=1,
                          batch_size=2, projection_width=8, device="cpu",
                          kernel_correction=True)
    records = run_boon_2d(config, tmp_path / "cavity", progress=False)
    boon = next(r for r in records if r["model"] == "BOON")
    assert boon["boundary_error"] < 1e-12 and len(boon["rel_l2_per_step"]) == 3


def test_multi_step_run_with_input_walls():
    """The multi-step vorticity cavity with each step's wall values in BOON's input: trains,
    and the walls hold exactly."""
    config = BOON2dConfig("cavity", "multi", "vorticity", n_train=4, n_test=2, n_points=9,
                          n_steps=3, modes=3, modes_t=2, width=4, n_layers=2, epochs=1,
                          batch_size=2, projection_width=8, device="cpu", input_walls=True)
    train, test = split_data_2d(config, progress=False)
    record = train_and_evaluate_2d("BOON", train, test, config, progress=False)[3]
    assert record["boundary_error"] < 1e-12


def test_run_without_the_kernel_correction():
    """kernel_correction=False trains and evaluates BOON as the plain operator with the exact
    wall values: the interior is the operator's own prediction, the walls hold exactly."""
    config = BOON2dConfig("cavity", "single", n_train=4, n_test=2, n_points=9, modes=3,
                          width=4, n_layers=2, epochs=1, batch_size=2, projection_width=8,
                          device="cpu", kernel_correction=False)
    train, test = split_data_2d(config, progress=False)
    model, _, pred, record = train_and_evaluate_2d("BOON", train, test, config, progress=False)
    assert record["boundary_error"] < 1e-12
    plain = predict_2d(model, "FNO", test)
    assert torch.equal(pred[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])
    corrected = predict_2d(model, "BOON", test)
    assert not torch.allclose(corrected[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])


def test_parallel_generation_from_a_plain_script(tmp_path):
    """Found running a script without a main guard: spawned workers re-ran the script and the
    pool broke. Workers now use the platform's default start method (fork on Linux)."""
    import subprocess
    import sys

    script = tmp_path / "make.py"
    script.write_text("from physguard.datasets.operator2d import make_operator_data_2d\n"
                      "d = make_operator_data_2d('cavity', 3, n_points=5, workers=2, "
                      "progress=False)\nprint(tuple(d.targets.shape))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(3, 2, 5, 5)" in result.stdout
    serial = make_operator_data_2d("cavity", 3, n_points=5, workers=1, progress=False)
    assert tuple(serial.targets.shape) == (3, 2, 5, 5)
