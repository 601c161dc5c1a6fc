"""``torchrun -m physguard run`` / ``bench boon``: two CPU processes (gloo) give the
one-process run's numbers and one complete run folder (issue 13, part 2)."""

import json
import os
import subprocess
import sys

import pytest

ARGS = ["run", "heat-neumann", "--epochs", "2", "--functions", "20", "--test-functions", "5",
        "--quiet", "--device", "cpu"]


BENCH = ["bench", "boon", "--cases", "stokes", "--settings", "single", "--seeds", "1",
         "--epochs", "2",
         "--functions", "12", "--test-functions", "4", "--quiet", "--device", "cpu"]


def _one_and_two(root, args):
    """Run ``physguard args`` in one process and under torchrun with two; returns the
    two-process stdout."""
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", "-m", "physguard", *args, "--out",
                          str(root / "two")], capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "physguard", *args, "--out", str(root / "one")],
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    return two.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    return root, _one_and_two(root, ARGS)


def test_two_processes_write_one_complete_folder(runs):
    root, stdout = runs
    assert sorted(p.name for p in root.iterdir()) == ["one", "two"]  # no partial folders
    names = {p.name for p in (root / "two").iterdir()}
    assert {"config.json", "metrics.json", "table.md", "fno.pt", "boon.pt"} <= names
    assert stdout.count("wrote ") == 1  # rank 0 alone reports


def test_two_processes_match_one_process(runs):
    """Same seed and global batch: the same batches, the gradient of the same mean loss.
    Only the order of float32 sums differs (the two halves' gradients are averaged by an
    all-reduce), so the results agree to about 1e-6 relative, not bit for bit."""
    root, _ = runs
    two = json.loads((root / "two" / "metrics.json").read_text())
    one = json.loads((root / "one" / "metrics.json").read_text())
    for a, b in zip(two, one, strict=True):
        assert a["model"] == b["model"]
        assert a["rel_l2"] == pytest.approx(b["rel_l2"], rel=1e-5)
    losses_two = json.loads((root / "two" / "training.json").read_text())
    losses_one = json.loads((root / "one" / "training.json").read_text())
    for name in ("FNO", "BOON"):
        assert losses_two[name] == pytest.approx(losses_one[name], rel=1e-5)


def test_bench_boon_under_torchrun(tmp_path):
    """The bench's rows train with DDP too: one report, the one-process numbers."""
    stdout = _one_and_two(tmp_path, BENCH)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert stdout.count("wrote ") == 1
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert [r["model"] for r in two] == [r["model"] for r in one] == ["FNO", "BOON",
                                                                      "FNO+penalty"]
    for a, b in zip(two, one, strict=True):
        assert a["rel_l2"] == pytest.approx(b["rel_l2"], rel=1e-5)


def test_bench_probconserv_refuses_torchrun(tmp_path):
    result = subprocess.run([sys.executable, "-m", "physguard", "bench", "probconserv",
                             "--out", str(tmp_path / "b")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "WORLD_SIZE": "2"})
    assert result.returncode != 0 and "under torchrun" in result.stderr
    assert not (tmp_path / "b").exists()
