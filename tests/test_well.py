"""HDF5 in The Well's layout: export, read (lazily), train (issue 13, part 3)."""

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.datasets.operator import make_operator_data
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.datasets.well import LazyField, export_well, read_well
from physguard.experiments.boon import BOONConfig, train_operator


@pytest.fixture(scope="module")
def heat_file(tmp_path_factory):
    data = make_operator_data("heat-neumann", 12, 24, "multi", n_steps=5, seed=3)
    path = tmp_path_factory.mktemp("well") / "heat.h5"
    export_well(data, path)
    return data, path


def test_export_has_the_wells_layout_and_reads_back_exactly(heat_file):
    data, path = heat_file
    with h5py.File(path) as f:
        assert f.attrs["n_spatial_dims"] == 1 and f.attrs["n_trajectories"] == 12
        assert f.attrs["grid_type"] == "cartesian"
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x"]
        assert f["t0_fields/u"].shape == (12, 6, 24) and f["t0_fields/u"].dtype == np.float32
        walls = f["boundary_conditions/x_wall"]  # one group per axis, as The Well
        assert walls.attrs["bc_type"] == "WALL" and list(walls["mask"][[0, 1, -1]]) == \
            [True, False, True]
        assert list(walls.attrs["physguard_condition"]) == ["neumann", "neumann"]
        assert walls["physguard_values"].shape == (12, 6, 2)
        assert f["dimensions/time"].attrs["time_varying"]
        np.testing.assert_array_equal(f.attrs["param"], data.params.numpy())
    back = read_well(path, "heat-neumann", "multi")
    for name in ("x", "t", "params", "left_values", "right_values"):
        assert torch.equal(getattr(back, name), getattr(data, name)), name
    assert isinstance(back.targets, LazyField)
    index = torch.tensor([7, 1, 4])  # any order
    torch.testing.assert_close(back.targets[index], data.targets[index], rtol=1e-6,
                               atol=1e-6)
    torch.testing.assert_close(back.inputs[index], data.inputs[index], rtol=1e-6, atol=1e-6)
    single = read_well(path, "heat-neumann", "single")
    assert single.targets.shape == (12, 1, 24) and float(single.t[0]) == float(data.t[-1])
    assert isinstance(single.subset(slice(0, 5)).targets, LazyField)


def test_lazy_training_equals_training_in_memory(heat_file):
    """Batches read from the file give the same training as the same samples in memory."""
    _, path = heat_file
    lazy = read_well(path, "heat-neumann", "multi")
    config = BOONConfig.default("heat-neumann", "multi", epochs=2, width=8, modes=4,
                                modes_t=3, n_points=24, n_steps=5, batch_size=5)
    _, lazy_losses = train_operator("BOON", lazy, config, progress=False)
    _, eager_losses = train_operator("BOON", lazy.in_memory(), config, progress=False)
    assert lazy_losses == pytest.approx(eager_losses, rel=1e-6)


def _well_periodic_file(path, n=6, steps=4, points=16):
    """A file as someone else would write it: The Well's attributes only, a periodic grid
    without its end point."""
    x = np.arange(points) / points
    t = np.linspace(0, 0.3, steps)
    u = np.sin(2 * np.pi * (x[None, None] - 0.1 * t[None, :, None])) \
        * np.arange(1, n + 1)[:, None, None]
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="someone-elses", grid_type="cartesian", n_spatial_dims=1,
                       n_trajectories=n, simulation_parameters=[])
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x"]
        dims.create_dataset("time", data=t.astype(np.float32))
        dims.create_dataset("x", data=x.astype(np.float32))
        bc = f.create_group("boundary_conditions").create_group("x_periodic")
        bc.attrs.update(bc_type="PERIODIC", associated_dims=["x"], associated_fields=["u"],
                        sample_varying=False, time_varying=False)
        mask = np.zeros(points, bool)
        mask[[0, -1]] = True
        bc.create_dataset("mask", data=mask)
        bc.create_dataset("values", data=np.zeros(0, np.float32))
        f.create_group("scalars").attrs["field_names"] = []
        fields = f.create_group("t0_fields")
        fields.attrs["field_names"] = ["u"]
        fields.create_dataset("u", data=u.astype(np.float32))
        f.create_group("t1_fields").attrs["field_names"] = []
    return u


def test_someone_elses_periodic_file_gets_its_end_point(tmp_path):
    u = _well_periodic_file(tmp_path / "p.h5")
    data = read_well(tmp_path / "p.h5", "burgers-periodic", "multi")
    assert data.left_type == data.right_type == "periodic"
    assert data.x.shape == (17,) and abs(float(data.x[-1]) - 1.0) < 1e-6
    targets = data.targets[torch.arange(6)]
    np.testing.assert_allclose(targets[..., -1].numpy(), targets[..., 0].numpy())
    np.testing.assert_allclose(targets[..., :-1].numpy(), u[:, 1:], rtol=1e-6)


def test_cli_trains_on_someone_elses_file_and_on_an_export(tmp_path):
    _well_periodic_file(tmp_path / "p.h5", n=10)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "burgers-periodic", "--data", str(tmp_path / "p.h5"),
                                  "--epochs", "2", "--out", str(tmp_path / "run"), "--quiet",
                                  "--setting", "multi"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "metrics.json").exists()
    assert "data_file" in (tmp_path / "run" / "config.json").read_text()
    result = runner.invoke(main, ["data", "export", "heat-neumann", "--out",
                                  str(tmp_path / "h.h5"), "--samples", "10", "--points", "16",
                                  "--setting", "single", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["run", "heat-neumann", "--data", str(tmp_path / "h.h5"),
                                  "--epochs", "1", "--out", str(tmp_path / "run2"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 test samples, N = 16" in (tmp_path / "run2" / "table.md").read_text()


def test_unsound_conditions_and_layouts_are_refused(tmp_path):
    _well_periodic_file(tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "a") as f:
        f["boundary_conditions/x_periodic"].attrs["bc_type"] = "wall"
    with pytest.raises(ValueError, match="does not say which exact condition"):
        read_well(tmp_path / "w.h5", "burgers-periodic")
    with h5py.File(tmp_path / "w.h5", "a") as f:
        f["boundary_conditions/x_periodic"].attrs["bc_type"] = "Open"
    with pytest.raises(ValueError, match="OPEN"):
        read_well(tmp_path / "w.h5", "burgers-periodic")
    with pytest.raises(FileNotFoundError):
        read_well(tmp_path / "missing.h5", "burgers-periodic")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_well(tmp_path / "junk.h5", "burgers-periodic")
    result = CliRunner().invoke(main, ["run", "stefan", "--data", str(tmp_path / "w.h5")])
    assert result.exit_code == 2 and "--data applies to" in result.output


@pytest.mark.parametrize("problem, field", [("wave2d", None), ("cavity", "velocity")])
def test_2d_export_layout(tmp_path, problem, field):
    setting = "single" if field == "velocity" else "multi"
    data = make_operator_data_2d(problem, 2, setting, field, n_points=9, n_steps=2,
                                 progress=False)
    export_well(data, tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5") as f:
        assert f.attrs["n_spatial_dims"] == 2
        assert sorted(f["boundary_conditions"]) == ["x_wall", "y_wall"]
        if field == "velocity":
            assert f["t1_fields/velocity"].shape == (2, 2, 9, 9, 2)
            top = f["boundary_conditions/y_wall/physguard_values"][:, 1, 1]  # (n, 9, 2)
            np.testing.assert_array_equal(top, data.top.numpy().transpose(0, 2, 1))
        else:
            assert f["t0_fields/u"].shape == (2, 3, 9, 9)
            values = f["boundary_conditions/x_wall/physguard_values"][:, 1:, 0]
            np.testing.assert_array_equal(values, data.left.numpy())


@pytest.mark.parametrize("problem, field, setting", [("wave2d", None, "multi"),
                                                     ("cavity", "velocity", "single"),
                                                     ("cavity", "velocity", "multi")])
def test_2d_round_trip_and_training(tmp_path, problem, field, setting):
    from physguard.datasets.well import read_well_2d

    # 13 points: the wave's 6 x 6 modes on 8 intervals are too coarse for the Neumann check
    # (benchmarks/wall_check_tolerance.py)
    data = make_operator_data_2d(problem, 6, setting, field, n_points=13 if field is None
                                 else 9, n_steps=2, progress=False)
    export_well(data, tmp_path / "d.h5")
    back = read_well_2d(tmp_path / "d.h5", problem, setting)
    assert back.field == data.field and back.wall_types == data.wall_types
    for wall in ("left", "right", "bottom", "top"):
        assert torch.equal(getattr(back, wall), getattr(data, wall)), wall
    assert isinstance(back.targets, LazyField) and back.targets.shape == data.targets.shape
    index = torch.tensor([4, 0])
    torch.testing.assert_close(back.targets[index], data.targets[index], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(back.inputs[index], data.inputs[index], rtol=1e-6, atol=1e-6)
    result = CliRunner().invoke(main, [
        "run", problem, "--data", str(tmp_path / "d.h5"), "--epochs", "1", "--setting",
        setting, "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "metrics.json").exists()
