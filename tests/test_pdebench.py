"""PDEBench's HDF5 layouts (Takamoto et al., NeurIPS 2022), written here exactly as its FNO
loaders read them (FNODatasetSingle: ``tensor``, ``x-coordinate``, ``t-coordinate`` with
nt + 1 entries, root parameters; FNODatasetMult: ``0000/data``, ``0000/grid/x``, ``grid/t``)."""

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.datasets.pdebench import file_format, read_file, read_pdebench
from physguard.datasets.well import WallCheckError


def _advection_single(path, n=10, nt=6, nx=32, beta=0.4):
    """1-D advection in PDEBench's single-array layout: cell-centred periodic grid."""
    x = (np.arange(nx) + 0.5) / nx
    t = np.linspace(0, 1, nt + 1)  # nt + 1 entries, as PDEBench writes them
    phase = np.linspace(0, 1, n)[:, None, None]
    u = np.sin(2 * np.pi * (x[None, None] - beta * t[None, :nt, None] - phase))
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=u.astype(np.float32))
        f.create_dataset("x-coordinate", data=x.astype(np.float32))
        f.create_dataset("t-coordinate", data=t.astype(np.float32))
        f.attrs["beta"] = beta
    return u, x, t


def test_single_array_layout_reads_and_trains(tmp_path):
    path = tmp_path / "1D_Advection_Sols_beta0.4.hdf5"
    u, x, t = _advection_single(path)
    assert file_format(path) == "pdebench"
    with pytest.raises(ValueError, match="carries no boundary conditions"):
        read_pdebench(path, "burgers-periodic")
    data = read_file(path, "burgers-periodic", walls="x=periodic")
    assert data.left_type == data.right_type == "periodic"
    assert data.x.shape == (33,) and float(data.x[-1] - data.x[0]) == pytest.approx(1.0)
    assert torch.allclose(data.t, torch.from_numpy(t[1:6].astype(np.float32)).double())
    assert torch.allclose(data.params, torch.full((10,), 0.4, dtype=torch.float64))
    targets = data.targets[torch.arange(10)]
    np.testing.assert_allclose(targets[..., :-1].numpy(), u[:, 1:], rtol=1e-6, atol=1e-6)
    assert torch.equal(targets[..., -1], targets[..., 0])
    with pytest.raises(WallCheckError, match="left wall is declared dirichlet"):
        read_pdebench(path, "burgers-periodic", walls="left=dirichlet:0,right=dirichlet:0")
    result = CliRunner().invoke(main, ["run", "burgers-periodic", "--data", str(path),
                                       "--walls", "x=periodic", "--epochs", "1", "--out",
                                       str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["walls"] == "x=periodic" and config["n_points"] == 33


def test_per_seed_layout_2d(tmp_path):
    """FNODatasetMult's layout: one group per seed; a node grid with insulated walls."""
    nx, nt = 13, 4
    x = np.linspace(0, 1, nx)
    t = np.linspace(0, 0.5, nt)
    path = tmp_path / "2D_seeds.h5"
    fields = []
    with h5py.File(path, "w") as f:
        for seed in range(6):
            k = 1 + seed % 3
            u = (np.cos(k * np.pi * x)[None, :, None] * np.cos(np.pi * x)[None, None, :]
                 * np.cos(t)[:, None, None])
            fields.append(u)
            group = f.create_group(f"{seed:04d}")
            group.create_dataset("data", data=u[..., None].astype(np.float32))
            grid = group.create_group("grid")
            grid.create_dataset("x", data=x.astype(np.float32))
            grid.create_dataset("y", data=x.astype(np.float32))
            grid.create_dataset("t", data=t.astype(np.float32))
    data = read_file(path, "wave2d", walls="x=neumann:0,y=neumann:0")
    assert data.wall_types == ("neumann",) * 4 and len(data) == 6
    np.testing.assert_allclose(data.targets[2].numpy(), fields[2][1:], atol=1e-6)
    with pytest.raises(WallCheckError, match="declared neumann"):
        read_file(path, "wave2d", walls="x=neumann:0,bottom=neumann:0,top=neumann:3")
    result = CliRunner().invoke(main, ["run", "wave2d", "--data", str(path), "--walls",
                                       "x=neumann:0,y=neumann:0", "--epochs", "1", "--out",
                                       str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output


def test_pdebench_files_refused_with_reasons(tmp_path):
    path = tmp_path / "bad.hdf5"
    _advection_single(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("Vx", data=np.zeros((10, 6, 32), np.float32))
    with pytest.raises(ValueError, match="choose it with --fields"):
        read_file(path, "burgers-periodic", walls="x=periodic")
    assert read_file(path, "burgers-periodic", walls="x=periodic", fields=["tensor"]) \
        is not None
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("something", data=np.zeros(3))
    with pytest.raises(ValueError, match="neither in The Well's layout"):
        read_file(tmp_path / "other.h5", "burgers-periodic")
