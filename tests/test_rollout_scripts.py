"""The rollout benchmarks run end to end (``--tiny``), so they do not rot."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["rollout_cost.py", "rollout_training.py",
                                    "rollout_calibration.py"])
def test_rollout_benchmark_runs_tiny(script):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--tiny"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| " in result.stdout and "ProbConserv-BOON" in result.stdout
