"""Sampling of context/target observations and their NPZ files."""

import numpy as np
import pytest
import torch

from physguard.datasets import FunctionSamples, sample_functions
from physguard.pdes import Stefan


def test_paper_context_grid_and_exact_values():
    data = sample_functions("stefan", 6, seed=3)
    assert data.context_t.shape == (6, 100) and data.target_t.shape == (6, 100)
    times = data.context_t.reshape(6, 10, 10)
    xs = data.context_x.reshape(6, 10, 10)
    # One time per sub-interval of [0, 0.1], shared by the 10 positions; positions sorted.
    assert torch.equal(times, times[..., :1].expand_as(times))
    bins = torch.floor(times[..., 0] / 0.01)
    assert torch.equal(bins, torch.arange(10, dtype=bins.dtype).expand(6, 10))
    assert torch.equal(xs, xs[:, :1].expand_as(xs))
    assert (torch.diff(xs[:, 0], dim=-1) >= 0).all()
    lo, hi = Stefan.train_range
    assert ((data.params >= lo) & (data.params <= hi)).all()
    for i in range(6):
        s = Stefan(float(data.params[i]))
        assert torch.equal(data.context_u[i], s.solution(data.context_t[i], data.context_x[i]))
        assert torch.equal(data.target_u[i], s.solution(data.target_t[i], data.target_x[i]))


def test_same_seed_same_data_and_other_seed_other_data():
    a, b = sample_functions("pme", 4, seed=1), sample_functions("pme", 4, seed=1)
    c = sample_functions("pme", 4, seed=2)
    assert torch.equal(a.target_u, b.target_u)
    assert not torch.equal(a.target_u, c.target_u)


def test_roundtrip(tmp_path):
    data = sample_functions("diffusion", 5, params=[1, 2, 3, 4, 5], seed=0)
    data.save(tmp_path / "d.npz")
    back = FunctionSamples.load(tmp_path / "d.npz", problem="diffusion")
    assert back.problem == "diffusion"
    for name in ("params", "context_t", "context_u", "target_x", "target_u"):
        assert torch.equal(getattr(back, name), getattr(data, name))
    assert list(tmp_path.iterdir()) == [tmp_path / "d.npz"]  # no temporary file left


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data file"):
        FunctionSamples.load(tmp_path / "missing.npz")
    data = sample_functions("stefan", 3, seed=0)
    data.save(tmp_path / "d.npz")
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated"):
        FunctionSamples.load(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="'stefan' data, but 'pme'"):
        FunctionSamples.load(tmp_path / "d.npz", problem="pme")
    np.savez(tmp_path / "partial.npz", problem=np.array("stefan"), version=np.array(1),
             params=np.zeros(3))
    with pytest.raises(ValueError, match="misses the arrays context_t"):
        FunctionSamples.load(tmp_path / "partial.npz")
    arrays = {k: getattr(data, k).numpy() for k in
              ("params", "context_t", "context_x", "context_u", "target_t", "target_x")}
    np.savez(tmp_path / "bad.npz", problem=np.array("stefan"), version=np.array(1),
             target_u=np.zeros((3, 7)), **arrays)
    with pytest.raises(ValueError, match="target arrays must all have shape"):
        FunctionSamples.load(tmp_path / "bad.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown problem 'heat'"):
        sample_functions("heat", 3)
    with pytest.raises(ValueError, match="n_functions must be >= 1"):
        sample_functions("stefan", 0)
    with pytest.raises(ValueError, match=r"params must have shape \(3,\)"):
        sample_functions("stefan", 3, params=[0.6, 0.6])
