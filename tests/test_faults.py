"""Fault tests (issue #9): runs killed at random points, corrupted files, determinism.

A run killed by SIGINT or SIGKILL at a random moment, into a fresh or an existing folder, must
leave either the complete new run or the untouched old folder (fresh: nothing). Every kind of
file physguard reads, truncated or corrupted, gets a specific error. The same command with the
same seed twice gives byte-identical ``metrics.json`` and ``predictions.npz``.

``PHYSGUARD_FUZZ_EXAMPLES`` (default 25) scales the number of random kill points.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard._io import run_folder
from physguard.cli import main
from physguard.datasets import FunctionSamples, OperatorData, sample_functions
from physguard.datasets.operator import make_operator_data
from physguard.experiments.evaluate import load_observations
from physguard.models import ANP
from physguard.pdes import Stefan
from physguard.training import load_checkpoint, save_checkpoint

KILLS = max(1, int(os.environ.get("PHYSGUARD_FUZZ_EXAMPLES", "25")) // 25)
RUN = ["run", "heat-neumann", "--epochs", "1", "--functions", "2", "--test-functions", "1",
       "--quiet"]


def _command(out, *extra):
    return [sys.executable, "-m", "physguard.cli", *RUN, "--out", str(out), *extra]


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() \
        else None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One complete run: its file names, and the range of the kill points: from the end of
    the start-up (imports; a kill there proves nothing) to the end of the run."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "physguard.cli", "--help"], check=True,
                   capture_output=True, timeout=120)
    startup = time.perf_counter() - started
    out = tmp_path_factory.mktemp("ref") / "R"
    started = time.perf_counter()
    subprocess.run(_command(out), check=True, capture_output=True, timeout=300)
    return sorted(p.name for p in out.iterdir()), (startup, time.perf_counter() - started)


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_run_leaves_old_or_complete_folder(tmp_path, reference, sig, existing):
    names, (startup, seconds) = reference
    rng = random.Random()
    for k in range(KILLS):
        out = tmp_path / f"R{k}"
        if existing:
            out.mkdir()
            (out / "config.json").write_text('{"old": true}\n')
            (out / "metrics.json").write_text("[]\n")
        before = _snapshot(out)
        process = subprocess.Popen(_command(out, "--overwrite"), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        delay = rng.uniform(startup, 1.05 * seconds)
        time.sleep(delay)
        process.send_signal(sig)
        process.wait(timeout=120)
        after = _snapshot(out)
        complete = after is not None and sorted(after) == names
        assert after == before or complete, (sig, delay, sorted(after or {}))
        if complete:
            json.loads(after["metrics.json"])
        leftovers = [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]
        if sig == signal.SIGINT:
            assert leftovers == [], (delay, leftovers)  # removed on the way out
        with run_folder(tmp_path / f"R{k}", overwrite=True) as folder:  # clears dead partials
            (folder / "x").write_text("x")
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".R{k}.partial-")]


# -- corrupted files -----------------------------------------------------------------------------

def _real_files(folder):
    sample_functions("stefan", 2, n_targets=5, seed=0).save(folder / "functions.npz")
    make_operator_data("heat-neumann", 2, n_points=8).save(folder / "operator.npz")
    save_checkpoint(folder / "model.pt", ANP(x_dim=2, hidden=8, n_heads=2), problem="stefan")
    np.savez(folder / "contexts.npz", t=np.full((1, 3), 0.01), x=np.full((1, 3), 0.5),
             u=np.zeros((1, 3)), param=np.array([0.6]))
    return {"functions.npz": FunctionSamples.load, "operator.npz": OperatorData.load,
            "model.pt": load_checkpoint,
            "contexts.npz": lambda path: load_observations(path, Stefan)}


def test_truncated_or_corrupted_files_get_specific_errors(tmp_path):
    readers = _real_files(tmp_path)
    rng = random.Random(0)
    cases = 0
    for name, read in readers.items():
        data = (tmp_path / name).read_bytes()
        read(tmp_path / name)  # the intact file loads
        cuts = sorted({0, 1, len(data) // 2, len(data) - 1,
                       *(rng.randrange(len(data)) for _ in range(6))})
        for cut in cuts:  # a truncated file is always refused
            (tmp_path / "bad").write_bytes(data[:cut])
            cases += 1
            with pytest.raises((ValueError, TypeError)):
                read(tmp_path / "bad")
        for _ in range(6):  # a flipped byte: refused, or a valid file (inside array data)
            i = rng.randrange(len(data))
            (tmp_path / "bad").write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
            cases += 1
            try:
                read(tmp_path / "bad")
            except (ValueError, TypeError):
                pass
    assert cases >= 4 * 10


# -- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_outputs(tmp_path):
    outputs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        result = CliRunner().invoke(main, ["run", "stefan", "--epochs", "1", "--functions", "4",
                                           "--test-functions", "1", "--seed", "3", "--quiet",
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append({name: (out / name).read_bytes()
                        for name in ("metrics.json", "predictions.npz")})
    assert outputs[0] == outputs[1]


# -- issue 25: every option honoured or refused, every accepted seed usable -------------------

@pytest.mark.parametrize("args, message", [
    (["run", "cavity", "--uq", "--field", "vorticity"], "--field does not apply"),
    (["data", "export", "heat-neumann", "--field", "vorticity", "--out", "x.h5"],
     "does not apply to heat-neumann"),
    (["bench", "boon", "--penalty", "inf"], "penalty"),
    (["bench", "boon", "--penalty", "nan"], "penalty"),
    (["bench", "boon", "--extra-seeds", "-1"], "0 .. 4294967295"),
    (["bench", "boon", "--extra-seeds", "99999999999999999999"], "0 .. 4294967295"),
    (["run", "wave2d", "--seed", "20000000000000"], "4294967295"),
    (["bench", "boon", "--seed", "4294967296"], "4294967295"),
])
def test_options_are_honoured_or_refused_before_any_work(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not any(tmp_path.iterdir())  # nothing written, nothing trained


def test_the_largest_accepted_seed_generates_data():
    from physguard.datasets.operator2d import make_operator_data_2d

    data = make_operator_data_2d("wave2d", 1, n_points=5, seed=2**32 - 1, progress=False)
    assert bool(torch.isfinite(data.targets).all())


def test_api_arguments_are_checked_by_name(tmp_path):
    import dataclasses

    import physguard as pg
    from physguard.datasets.operator2d import OperatorData2d, make_operator_data_2d

    with pytest.raises(ValueError, match="width must be an integer"):
        pg.FNO2d(1, 1, 4, width=2.5, n_layers=2)
    with pytest.raises(ValueError, match="n_points must be an integer"):
        make_operator_data_2d("wave2d", 2, n_points=5.5, progress=False)
    data = make_operator_data_2d("wave2d", 2, n_points=7, progress=False)
    for change, error, message in (
            (dict(inputs=data.inputs.numpy()), TypeError, "inputs must be a torch.Tensor"),
            (dict(targets=data.targets.to(torch.complex128)), TypeError, "real floating"),
            (dict(x=data.x.flip(0)), ValueError, "uniform increasing"),
            (dict(y=data.y ** 2), ValueError, "uniform increasing")):
        with pytest.raises(error, match=message):
            dataclasses.replace(data, **change)
    data.save(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as npz:
        arrays = dict(npz)
    arrays["targets"] = arrays["targets"] + 1j
    np.savez(tmp_path / "c.npz", **arrays)
    with pytest.raises(ValueError, match="complex"):
        OperatorData2d.load(tmp_path / "c.npz")
