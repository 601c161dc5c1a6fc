"""HDF5 in The Well's layout: export, read (lazily), train (issue 13, part 3); files in The
Well's own conventions, hostile files, The Well's checker and reader (issue 24)."""

import hashlib
import importlib.util
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.datasets.operator import make_operator_data
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.datasets.well import (
    LazyField,
    WallCheckError,
    export_well,
    parse_walls,
    read_well,
)
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
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    digest = hashlib.sha256((tmp_path / "p.h5").read_bytes()).hexdigest()
    assert config["data"]["sha256"] == digest and config["data"]["samples"] == 10
    assert config["n_train"] == 8 and config["n_test"] == 2 and config["n_points"] == 17
    assert config["data"]["conditions"]["left"] == {"kind": "periodic"}
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


# -- issue 24: The Well's own conventions, its checker and reader, hostile files ---------------

_CHECKER = (Path(__file__).resolve().parents[2] / "shared" / "tools" / "the_well_checker"
            / "check_thewell_formatting.py")


def _checker():
    if not _CHECKER.exists():
        pytest.skip(f"The Well's checker is not at {_CHECKER}")
    spec = importlib.util.spec_from_file_location("check_thewell_formatting", _CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("problem, setting", [
    ("heat-neumann", "multi"), ("stokes", "single"), ("burgers-dirichlet", "multi"),
    ("burgers-periodic", "multi"), ("wave2d", "multi"), ("cavity", "single")])
def test_exports_pass_the_wells_checker_and_read_back(tmp_path, problem, setting):
    """The Well's own check_thewell_formatting.py, unmodified, with its warnings (group names
    after bc_type and axis) as errors; then physguard's reader gives back the data."""
    path = tmp_path / "d.h5"
    result = CliRunner().invoke(main, ["data", "export", problem, "--out", str(path),
                                       "--samples", "3", "--points", "13", "--setting",
                                       setting, "--quiet"])
    assert result.exit_code == 0, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _checker().check_hdf5_format(str(path))
    back = read_well(path, problem, setting)
    assert len(back) == 3 and back.targets.shape[-1] == 13


def test_the_wells_reader_opens_exports(tmp_path):
    """the_well.data.WellDataset returns exactly the arrays written and the condition types
    (WALL = 0, PERIODIC = 2 per axis end); the values are in physguard_values."""
    pytest.importorskip("the_well")
    from the_well.data import WellDataset

    for problem, code in (("heat-neumann", 0.0), ("burgers-periodic", 2.0)):
        folder = tmp_path / problem
        folder.mkdir()
        data = make_operator_data(problem, 3, 17, "multi", n_steps=3, seed=1)
        export_well(data, folder / "d.h5")
        well = WellDataset(path=str(folder), n_steps_input=1, n_steps_output=1,
                           use_normalization=False)
        sample = well[0]  # trajectory 0, steps 0 -> 1
        points = 16 if problem == "burgers-periodic" else 17  # no duplicate end point
        np.testing.assert_array_equal(sample["input_fields"][0, :, 0].numpy(),
                                      data.inputs[0, 0, :points].float().numpy())
        np.testing.assert_array_equal(sample["output_fields"][0, :, 0].numpy(),
                                      data.targets[0, 0, :points].float().numpy())
        assert torch.equal(sample["boundary_conditions"], torch.full((1, 2), code))


def _boundary_groups(f, groups):
    """``/boundary_conditions`` of ``(name, attributes, {dataset: values})`` groups."""
    bcs = f.create_group("boundary_conditions")
    for name, attrs, datasets in groups:
        g = bcs.create_group(name)
        g.attrs.update(attrs)
        for key, value in datasets.items():
            g.create_dataset(key, data=value)


def _well_file(path, u, x, t, groups, params=None):
    """A 1-D file in The Well's conventions: upper-case bc_type, per-axis groups, a constant
    parameter as a () scalar."""
    n = u.shape[0]
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="mine", grid_type="cartesian", n_spatial_dims=1,
                       n_trajectories=n, simulation_parameters=["nu"], nu=0.1)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x"]
        dims.create_dataset("time", data=t.astype(np.float32))
        dims.create_dataset("x", data=x.astype(np.float32))
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["nu"]
        scalars.create_dataset("nu", data=np.float32(0.1) if params is None else params)
        _boundary_groups(f, groups)
        fields = f.create_group("t0_fields")
        fields.attrs["field_names"] = ["u"]
        fields.create_dataset("u", data=u.astype(np.float32))


def _dirichlet_ramp(n=8, steps=4, points=17):
    """u = x + a_i t (1 - x) x: Dirichlet 0 at x = 0 and 1 at x = 1."""
    x = np.linspace(0, 1, points)
    t = np.linspace(0, 0.3, steps)
    a = np.linspace(0.5, 2, n)
    u = x[None, None] + a[:, None, None] * t[None, :, None] * (1 - x) * x
    return u, x, t


def _mask(points):
    mask = np.zeros(points, bool)
    mask[[0, -1]] = True
    return mask


@pytest.mark.parametrize("shape", ["(n, steps, 2)", "(2,)"])
def test_one_group_per_axis_gives_each_end_its_own_value(tmp_path, shape):
    """The reproduction: x_wall with both ends masked gave both ends the left end's values
    (BOON exact on u(1) = 0 against a true u(1) = 1)."""
    u, x, t = _dirichlet_ramp()
    values = np.broadcast_to(np.array([0.0, 1.0]), (8, 4, 2)) if shape != "(2,)" \
        else np.array([0.0, 1.0])
    attrs = dict(bc_type="WALL", associated_dims=["x"], associated_fields=["u"],
                 sample_varying=False, time_varying=False,
                 physguard_condition=["dirichlet", "dirichlet"])
    _well_file(tmp_path / "r.h5", u, x, t,
               [("x_wall", attrs, {"mask": _mask(17), "physguard_values": values})])
    data = read_well(tmp_path / "r.h5", "burgers-dirichlet")
    assert torch.equal(data.left_values, torch.zeros(8, 3, dtype=torch.float64))
    assert torch.equal(data.right_values, torch.ones(8, 3, dtype=torch.float64))
    assert torch.allclose(data.params, torch.full((8,), 0.1, dtype=torch.float64))
    # The Well's own WALL without physguard's attribute: stated by the user, then checked
    del attrs["physguard_condition"]
    _well_file(tmp_path / "w.h5", u, x, t, [("x_wall", attrs, {"mask": _mask(17),
                                                               "values": np.zeros(2)})])
    with pytest.raises(ValueError, match="physguard will not guess"):
        read_well(tmp_path / "w.h5", "burgers-dirichlet")
    data = read_well(tmp_path / "w.h5", "burgers-dirichlet",
                     walls="left=dirichlet:0,right=dirichlet:1")
    assert torch.equal(data.right_values, torch.ones(8, 3, dtype=torch.float64))
    with pytest.raises(WallCheckError, match=r"right wall is declared dirichlet.*sample"):
        read_well(tmp_path / "w.h5", "burgers-dirichlet", walls="x=dirichlet:0")
    # the CLI: trains with the stated walls, and BOON holds the file's values at both ends
    result = CliRunner().invoke(main, [
        "run", "burgers-dirichlet", "--data", str(tmp_path / "w.h5"), "--walls",
        "left=dirichlet:0,right=dirichlet:1", "--epochs", "1", "--out",
        str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "run" / "metrics.json").read_text())
    boon = next(r for r in records if r["model"] == "BOON")
    assert boon["boundary_error"] < 1e-12 and boon["bRMSE"] < 1e-6


def test_cell_centred_periodic_grid_gets_its_wrap_point_from_the_grid(tmp_path):
    """Sample 0 even (equal values at both stored ends) must not change the grid."""
    points = 32
    x = (np.arange(points) + 0.5) / points
    t = np.linspace(0, 0.2, 3)
    u = np.stack([np.cos(2 * np.pi * (x[None] - 0.5)) * np.ones((3, 1)),
                  np.sin(2 * np.pi * (x[None] - 0.3 * t[:, None]))])
    attrs = dict(bc_type="periodic", associated_dims=["x"], associated_fields=["u"],
                 sample_varying=False, time_varying=False)
    _well_file(tmp_path / "p.h5", u, x, t,
               [("x_periodic", attrs, {"mask": _mask(points), "values": np.zeros(2)})])
    data = read_well(tmp_path / "p.h5", "burgers-periodic")
    assert data.x.shape == (points + 1,)
    assert float(data.x[-1] - data.x[0]) == pytest.approx(1.0, abs=1e-6)
    targets = data.targets[torch.arange(2)]
    assert torch.equal(targets[..., -1], targets[..., 0])
    np.testing.assert_allclose(targets[..., :-1].numpy(), u[:, 1:], rtol=1e-6, atol=1e-7)


def test_contradictory_and_hostile_files_are_refused(tmp_path):
    u, x, t = _dirichlet_ramp()
    wall = dict(bc_type="WALL", associated_dims=["x"], associated_fields=["u"],
                sample_varying=False, time_varying=False)
    ok = [("x_wall", dict(wall, physguard_condition=["dirichlet", "dirichlet"]),
           {"mask": _mask(17), "values": np.array([0.0, 1.0])})]
    cases = {
        "periodic declared on non-periodic data": (
            [("x_periodic", dict(wall, bc_type="PERIODIC"), {"mask": _mask(17)})], {},
            "jump across the wrap-around"),
        "a Dirichlet wall declared Neumann": (
            [("x_wall", dict(wall, physguard_condition=["dirichlet", "neumann"]),
              {"mask": _mask(17), "values": np.array([0.0, 0.0])})], {}, "right wall is "
            "declared neumann"),
        "a duplicate group for one wall": (
            ok + [("x_right", dict(wall, physguard_condition="dirichlet"),
                   {"mask": _mask(17) & (np.arange(17) == 16), "values": np.array([1.0])})],
            {}, "two boundary groups for the right wall"),
        "values of the wrong shape": (
            [("x_wall", dict(wall, physguard_condition="dirichlet"),
              {"mask": _mask(17), "values": np.zeros((8, 4))})], {}, r"expected \(8, 4, 2"),
        "a mask inside the domain": (
            [("x_wall", dict(wall, physguard_condition="dirichlet"),
              {"mask": np.ones(17, bool), "values": np.zeros(17)})], {}, "inside the domain"),
        "a file condition the user contradicts": (
            ok, {"walls": "left=neumann:0"}, "the file declares the left wall dirichlet"),
    }
    for groups, options, message in cases.values():
        _well_file(tmp_path / "c.h5", u, x, t, groups)
        with pytest.raises(ValueError, match=message):
            read_well(tmp_path / "c.h5", "burgers-dirichlet", **options)
    # NaN, complex, bool, non-uniform grids, a problem mismatch
    bad = u.copy()
    bad[3, 2, 5] = np.nan
    _well_file(tmp_path / "nan.h5", bad, x, t, ok)
    with pytest.raises(ValueError, match="NaN or infinite values.*sample 3"):
        read_well(tmp_path / "nan.h5", "burgers-dirichlet")
    _well_file(tmp_path / "ok.h5", u, x, t, ok)
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        del f["t0_fields/u"]
        f["t0_fields"].create_dataset("u", data=u.astype(np.complex64))
    with pytest.raises(ValueError, match="complex64 values"):
        read_well(tmp_path / "ok.h5", "burgers-dirichlet")
    _well_file(tmp_path / "grid.h5", u, x ** 2, t, ok)
    with pytest.raises(ValueError, match="not uniform and increasing"):
        read_well(tmp_path / "grid.h5", "burgers-dirichlet")
    _well_file(tmp_path / "ok.h5", u, x, t, ok)
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        f.attrs["physguard_problem"] = "heat-neumann"
    with pytest.raises(ValueError, match="holds heat-neumann data"):
        read_well(tmp_path / "ok.h5", "burgers-dirichlet")
    # the check can be overridden, and the run records it
    _well_file(tmp_path / "c.h5", u, x, t, cases["a Dirichlet wall declared Neumann"][0])
    assert read_well(tmp_path / "c.h5", "burgers-dirichlet", check_walls=False) is not None


def test_heat_neumann_wall_declared_dirichlet_is_refused_by_the_cli(tmp_path, heat_file):
    """The reproduction: heat's Neumann wall declared Dirichlet 5.0 trained with BOON exact
    on the wrong condition; now it is refused before training, naming the override."""
    _, path = heat_file
    copy = tmp_path / "heat.h5"
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "a") as f:
        group = f["boundary_conditions/x_wall"]
        group.attrs["physguard_condition"] = ["neumann", "dirichlet"]
        values = group["physguard_values"][...]
        values[:, :, 1] = 5.0
        group["physguard_values"][...] = values
    result = CliRunner().invoke(main, ["run", "heat-neumann", "--data", str(copy), "--out",
                                       str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 1 and "declared dirichlet" in result.output
    assert "--no-check-walls" in result.output and not (tmp_path / "run").exists()
    result = CliRunner().invoke(main, ["run", "heat-neumann", "--data", str(copy), "--out",
                                       str(tmp_path / "run"), "--quiet", "--no-check-walls",
                                       "--epochs", "1"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["check_walls"] is False
    assert config["data"]["conditions"]["right"] == {"kind": "dirichlet", "min": 5.0,
                                                     "max": 5.0}


def test_options_that_do_not_apply_to_a_file_are_refused(tmp_path, heat_file):
    _, path = heat_file
    runner = CliRunner()
    for extra, message in ((["--functions", "4"], "--functions does not apply"),
                           (["--field", "vorticity"], "does not apply")):
        result = runner.invoke(main, ["run", "heat-neumann", "--data", str(path), "--out",
                                      str(tmp_path / "r"), *extra])
        assert result.exit_code == 2 and message in result.output
    result = runner.invoke(main, ["run", "heat-neumann", "--walls", "x=periodic", "--out",
                                  str(tmp_path / "r")])
    assert result.exit_code == 2 and "apply to a --data file" in result.output


def test_no_command_destroys_a_file_it_did_not_create(tmp_path):
    target = tmp_path / "R" / "metrics.json"
    target.parent.mkdir()
    target.write_text("precious")
    runner = CliRunner()
    result = runner.invoke(main, ["data", "export", "stokes", "--out", str(target),
                                  "--samples", "2", "--points", "8", "--quiet"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert target.read_text() == "precious"
    data_dir = tmp_path / "D"
    result = runner.invoke(main, ["data", "export", "stokes", "--out", str(data_dir / "x.h5"),
                                  "--samples", "6", "--points", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    before = (data_dir / "x.h5").read_bytes()
    result = runner.invoke(main, ["run", "stokes", "--data", str(data_dir / "x.h5"), "--out",
                                  str(data_dir), "--overwrite", "--quiet"])
    assert result.exit_code == 1 and "is an input of this command" in result.output
    assert (data_dir / "x.h5").read_bytes() == before


def test_parse_walls():
    assert parse_walls("left=dirichlet:0, right=Neumann:-2.5", 1) == {
        "left": ("dirichlet", 0.0), "right": ("neumann", -2.5)}
    assert parse_walls("x=periodic,bottom=dirichlet:1,top=neumann:0", 2)["right"] == \
        ("periodic", None)
    for text, message in (("left=dirichlet", "needs a finite value"),
                          ("left=robin:1", "must be dirichlet"),
                          ("top=dirichlet:0", "unknown wall"),
                          ("left=periodic", "whole x axis"),
                          ("left=dirichlet:0,x=periodic", "stated dirichlet and periodic"),
                          ("left=dirichlet:0,left=dirichlet:1", "stated twice"),
                          ("left=dirichlet:nan", "finite")):
        with pytest.raises(ValueError, match=message):
            parse_walls(text, 1)


def _well_2d_file(path, fields, x, y, t, groups, vectors=()):
    """A 2-D file in The Well's conventions: several fields, per-axis boundary groups,
    constant parameters as () scalars and root attributes."""
    n = next(iter(fields.values())).shape[0]
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="mine-2d", grid_type="cartesian", n_spatial_dims=2,
                       n_trajectories=n, simulation_parameters=["F"], F=0.04)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for name, grid in (("time", t), ("x", x), ("y", y)):
            dims.create_dataset(name, data=grid.astype(np.float32))
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["F"]
        scalars.create_dataset("F", data=np.float32(0.04))
        _boundary_groups(f, groups)
        for group, names in (("t0_fields", [k for k in fields if k not in vectors]),
                             ("t1_fields", list(vectors)), ("t2_fields", [])):
            g = f.create_group(group)
            g.attrs["field_names"] = names
            for name in names:
                g.create_dataset(name, data=fields[name].astype(np.float32))


def _axis_group(axis, bc_type, points):
    return (f"{axis}_{bc_type.lower()}",
            dict(bc_type=bc_type, associated_dims=[axis], associated_fields=["all"],
                 sample_varying=False, time_varying=False),
            {"mask": _mask(points), "values": np.zeros(2, np.float32)})


def _check_boon_run(run):
    records = json.loads((run / "metrics.json").read_text())
    boon = next(r for r in records if r["model"] == "BOON")
    assert boon["boundary_error"] < 1e-12, boon
    return json.loads((run / "config.json").read_text())


def test_gray_scott_shaped_file_trains_with_both_axes_periodic(tmp_path):
    """Shaped as The Well's gray_scott_reaction_diffusion: two fields (A, B), periodic on
    both axes (no wrap-around points stored), constant parameters; physguard run file."""
    nx, ny, steps, n = 12, 10, 3, 6
    x, y, t = np.arange(nx) / nx, np.arange(ny) / ny, np.linspace(0, 0.2, steps)
    amp = np.linspace(0.5, 1.5, n)[:, None, None, None]
    wave = np.sin(2 * np.pi * x)[None, None, :, None] * np.cos(2 * np.pi * y)[None, None, None]
    decay = np.exp(-t)[None, :, None, None]
    fields = {"A": 1 - 0.2 * amp * wave * decay, "B": 0.3 * amp * wave ** 2 * decay}
    path = tmp_path / "gray_scott.h5"
    _well_2d_file(path, fields, x, y, t, [_axis_group("x", "PERIODIC", nx),
                                          _axis_group("y", "PERIODIC", ny)])
    data = read_well(path, "file")
    assert data.wall_types == ("periodic",) * 4 and data.field == "A,B"
    assert data.targets.shape == (n, 2 * 2, nx + 1, ny + 1)  # steps x fields, step-major
    targets = data.targets[torch.arange(n)]
    np.testing.assert_allclose(targets[:, 1, :nx, :ny].numpy(), fields["B"][:, 1],
                               rtol=1e-6, atol=1e-7)
    assert torch.equal(targets[:, :, -1], targets[:, :, 0])
    assert torch.equal(targets[..., -1], targets[..., 0])
    result = CliRunner().invoke(main, ["run", "file", "--data", str(path), "--epochs", "1",
                                       "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    config = _check_boon_run(tmp_path / "run")
    assert config["data"]["field"] == "A,B" and config["data"]["grid"] == {"x": 13, "y": 11}
    table = (tmp_path / "run" / "table.md").read_text()
    assert "1 test samples, 13 x 11 nodes" in table and "gray_scott.h5" in table
    assert "6 samples (5 train, 1 test)" in table and "left periodic" in table


def test_rayleigh_benard_shaped_file_trains_with_stated_walls(tmp_path):
    """Shaped as The Well's rayleigh_benard: periodic in x, WALL groups in y whose condition
    the user states (no slip; buoyancy 1 at the bottom, 0 at the top), a scalar and a vector
    field; BOON holds the stated values exactly, and a wrong statement is refused."""
    nx, ny, steps, n = 12, 9, 3, 6
    x, y, t = np.arange(nx) / nx, np.linspace(0, 1, ny), np.linspace(0, 0.2, steps)
    amp = np.linspace(0.5, 1.5, n)[:, None, None, None]
    bump = (np.sin(2 * np.pi * x)[None, None, :, None] * np.sin(np.pi * y)[None, None, None]
            * np.exp(-t)[None, :, None, None])
    buoyancy = (1 - y)[None, None, None] + 0.1 * amp * bump
    velocity = np.stack([amp * bump, -0.5 * amp * bump], axis=-1)
    path = tmp_path / "rayleigh_benard.h5"
    _well_2d_file(path, {"buoyancy": buoyancy, "velocity": velocity}, x, y, t,
                  [_axis_group("x", "PERIODIC", nx), _axis_group("y", "WALL", ny)],
                  vectors=("velocity",))
    walls = "y=dirichlet:0,buoyancy.bottom=dirichlet:1"
    with pytest.raises(ValueError, match="does not say which exact condition"):
        read_well(path, "file")
    with pytest.raises(WallCheckError, match="bottom wall is declared dirichlet"):
        read_well(path, "file", walls="y=dirichlet:0")
    data = read_well(path, "file", walls=walls)
    assert data.wall_types == ("periodic", "periodic", "dirichlet", "dirichlet")
    assert data.field == "buoyancy,velocity" and data.fields == 3
    # channel 3 k + c: buoyancy, u, v at step k; its bottom wall values: 1, 0, 0
    np.testing.assert_array_equal(data.bottom[0, :3, 0].numpy(), [1.0, 0.0, 0.0])
    assert torch.equal(data.top, torch.zeros_like(data.top))
    result = CliRunner().invoke(main, ["run", "file", "--data", str(path), "--walls", walls,
                                       "--epochs", "1", "--out", str(tmp_path / "run"),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    _check_boon_run(tmp_path / "run")
    with pytest.raises(ValueError, match="no value stated for velocity"):
        read_well(path, "file", walls="x=periodic,buoyancy.y=dirichlet:0")


def test_time_varying_walls_from_a_values_file(tmp_path):
    """heat-neumann's right-wall flux U sin(pi t) changes with time: a file whose WALL groups
    say nothing takes it from --wall-values (one array per wall), checked like any."""
    data = make_operator_data("heat-neumann", 10, 64, "multi", n_steps=4, seed=2)
    export_well(data, tmp_path / "h.h5")
    with h5py.File(tmp_path / "h.h5", "a") as f:  # The Well's attributes only
        group = f["boundary_conditions/x_wall"]
        del group.attrs["physguard_condition"], group["physguard_values"]
        del f.attrs["physguard_problem"]
    flux = np.concatenate([[0.0], 5.0 * np.sin(np.pi * data.t.numpy())])  # steps 0 .. T
    np.savez(tmp_path / "v.npz", right=flux)
    walls = "left=neumann:0,right=neumann:0"
    with pytest.raises(WallCheckError, match="right wall is declared neumann"):
        read_well(tmp_path / "h.h5", "heat-neumann", walls=walls)
    back = read_well(tmp_path / "h.h5", "heat-neumann", walls={"left": "neumann:0",
                                                               "right": ("neumann", flux)})
    torch.testing.assert_close(back.right_values, data.right_values)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "file", "--data", str(tmp_path / "h.h5"),
                                       "--walls", walls, "--wall-values",
                                       str(tmp_path / "v.npz"), "--epochs", "1", "--out",
                                       str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    config = _check_boon_run(run)
    assert config["data"]["wall_values"]["sha256"] == hashlib.sha256(
        (tmp_path / "v.npz").read_bytes()).hexdigest()
    np.savez(tmp_path / "bad.npz", right=flux[:-1])
    result = CliRunner().invoke(main, ["run", "file", "--data", str(tmp_path / "h.h5"),
                                       "--walls", walls, "--wall-values",
                                       str(tmp_path / "bad.npz"), "--out", str(run / "x")])
    assert result.exit_code == 1 and "expected (5,)" in result.output


@pytest.mark.parametrize("damage, message", [
    ("missing y grid", "y"),
    ("short time axis", "dimensions/time has 2 entries"),
    ("sample count", "n_trajectories is 9"),
    ("4-D field", r"expected \(samples, steps, x, y\)"),
    ("text field", "physguard trains on real"),
    ("missing boundary group", "no boundary condition for the bottom wall"),
])
def test_2d_reader_refuses_broken_files_with_reasons(tmp_path, damage, message):
    """The 2-D reader's old KeyError / IndexError / ZeroDivisionError cases: each a specific
    error naming what is wrong."""
    path = tmp_path / "w.h5"
    export_well(make_operator_data_2d("wave2d", 3, "multi", None, 13, n_steps=3,
                                      progress=False), path)
    with h5py.File(path, "a") as f:
        if damage == "missing y grid":
            del f["dimensions/y"], f["dimensions/physguard_y"]
        elif damage == "short time axis":
            del f["dimensions/physguard_time"]
            time = f["dimensions/time"][:2]
            del f["dimensions/time"]
            f["dimensions"].create_dataset("time", data=time)
        elif damage == "sample count":
            f.attrs["n_trajectories"] = 9
        elif damage in ("4-D field", "text field"):
            u = f["t0_fields/u"][()]
            del f["t0_fields/u"]
            f["t0_fields"].create_dataset("u", data=u[:, :, 0] if damage == "4-D field"
                                          else np.full(u.shape, b"x"))
        else:
            y = f["boundary_conditions/y_wall"]
            y["mask"][...] = np.isin(np.arange(13), [12])
            y.attrs["physguard_condition"] = ["neumann"]
            values = y["physguard_values"][:, :, 1:]
            del y["physguard_values"]
            y.create_dataset("physguard_values", data=values)
    with pytest.raises(ValueError, match=message):
        read_well(path, "wave2d")


def test_one_sample_and_two_step_files(tmp_path):
    """One sample: read, and the run says it needs two; a two-step file exported with
    --setting single trains with its own defaults (the reproduction failed on t_range)."""
    runner = CliRunner()
    result = runner.invoke(main, ["data", "export", "heat-neumann", "--out",
                                  str(tmp_path / "one.h5"), "--samples", "1", "--points",
                                  "16", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(read_well(tmp_path / "one.h5", "heat-neumann")) == 1
    result = runner.invoke(main, ["run", "heat-neumann", "--data", str(tmp_path / "one.h5"),
                                  "--out", str(tmp_path / "r1"), "--quiet"])
    assert result.exit_code == 1 and "need at least 2" in result.output
    result = runner.invoke(main, ["data", "export", "stokes", "--out", str(tmp_path / "s.h5"),
                                  "--samples", "6", "--points", "16", "--setting", "single",
                                  "--quiet"])
    assert result.exit_code == 0, result.output
    for setting in ([], ["--setting", "single"]):
        result = runner.invoke(main, ["run", "stokes", "--data", str(tmp_path / "s.h5"),
                                      "--epochs", "1", "--out", str(tmp_path / "r2"),
                                      "--overwrite", "--quiet", *setting])
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["run", "stokes", "--data", str(tmp_path / "s.h5"),
                                  "--setting", "multi", "--out", str(tmp_path / "r3")])
    assert result.exit_code == 2 and "only --setting single applies" in result.output


def test_huge_declared_field_without_data_is_refused(tmp_path):
    """A field that declares 10^9 samples but stores none (the old MemoryError)."""
    u, x, t = _dirichlet_ramp()
    _well_file(tmp_path / "huge.h5", u, x, t, [])
    with h5py.File(tmp_path / "huge.h5", "a") as f:
        del f["t0_fields/u"]
        f["t0_fields"].create_dataset("u", shape=(10**9, 4, 17), dtype=np.float32,
                                      chunks=(1, 4, 17))
        f.attrs["n_trajectories"] = 10**9
    with pytest.raises(ValueError, match="stores no data"):
        read_well(tmp_path / "huge.h5", "burgers-dirichlet", walls="x=dirichlet:0")
