"""PDEBench's HDF5 files (Takamoto et al., NeurIPS 2022) as physguard operator data.

PDEBench ships two layouts, read by its FNO loaders (``pdebench/models/fno/utils.py``):

* single array (``FNODatasetSingle``): one dataset ``tensor`` ``(N, nt, nx[, ny])`` float32 (or
  one dataset per named field, e.g. ``density``, ``Vx``, for its CFD sets), the grids
  ``x-coordinate`` ``(nx,)`` [``y-coordinate``] at the cell centres, and ``t-coordinate`` with
  ``nt + 1`` entries (the loader keeps the first ``nt``: the times of the stored steps);
  parameters as root attributes (``Nu``, ``beta``).
* one group per seed (``FNODatasetMult``): ``0000/data`` ``(nt, nx[, ny], C)`` and
  ``0000/grid/x`` [``grid/y``], ``0000/grid/t`` ``(nt,)``.

PDEBench files carry no boundary conditions, so the user states them (``walls``, the CLI's
``--walls``); they are then checked against the data like any file's
(:func:`physguard.datasets.well.check_conditions`). Dirichlet and Neumann conditions hold at
the first and last grid points (on PDEBench's cell-centred grids, ``h / 2`` inside the
domain), where BOON enforces them. A periodic axis gets its wrap-around point
appended (``x[-1] + h``: PDEBench's cell-centred periodic grids never repeat it). Step 0 is the
input and the later steps the targets, as for The Well's files. Single-array files are read
lazily, sample by sample; per-seed files are read into memory (one group per sample).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .operator import OPERATOR_PROBLEMS, OperatorData
from .operator2d import OperatorData2d
from .well import (
    AXIS_WALLS,
    LazyField,
    _append_wrap_points,
    _conditions,
    _h5py,
    _open,
    _uniform,
    assemble,
    check_conditions,
    parse_walls,
    read_steps,
    read_well,
)

__all__ = ["read_pdebench", "read_file", "file_format"]

_GRID_KEYS = {"x": "x-coordinate", "y": "y-coordinate"}


def file_format(path: str | os.PathLike) -> str:
    """``"well"`` (a ``/dimensions`` group), ``"pdebench"`` (``x-coordinate`` or seed groups
    with ``data``), or a ``ValueError`` naming what the file holds."""
    path, f = _open(path)
    with f:
        if "dimensions" in f:
            return "well"
        if "x-coordinate" in f or any(isinstance(f[k], _h5py().Group) and "data" in f[k]
                                      for k in f):
            return "pdebench"
        raise ValueError(f"{path} is neither in The Well's layout (no /dimensions group) nor "
                         f"PDEBench's (no x-coordinate, no seed groups with data); it holds "
                         f"{sorted(f)[:8]}")


def read_file(path: str | os.PathLike, problem: str, setting: str = "multi", **options
              ) -> OperatorData | OperatorData2d:
    """Read a file of either layout, detected from the file (:func:`file_format`); the
    arguments and errors of :func:`~physguard.datasets.well.read_well`."""
    if file_format(path) == "well":
        return read_well(path, problem, setting, **options)
    return read_pdebench(path, problem, setting, **options)


def read_pdebench(path: str | os.PathLike, problem: str, setting: str = "multi", walls=None,
                  fields: list[str] | None = None, check_walls: bool = True,
                  progress: bool = False) -> OperatorData | OperatorData2d:
    """Read a PDEBench HDF5 file (module docstring) as operator data.

    Args: as :func:`~physguard.datasets.well.read_well`; ``walls`` is required (PDEBench files
        carry no boundary conditions); ``fields`` picks one of several named arrays.

    Raises:
        FileNotFoundError: no file. ValueError: a layout physguard cannot map (named), no
        stated walls, NaN / inf, non-real fields, grids that are not uniform or disagree with
        the field. :class:`~physguard.datasets.well.WallCheckError`: a stated condition the
        data do not satisfy.
    """
    read_steps(setting, 2)  # a bad setting is refused before the file is opened
    path, f = _open(path)
    with f:
        seeds = sorted(k for k in f if isinstance(f[k], _h5py().Group) and "data" in f[k])
        if "x-coordinate" in f:
            names = [k for k in f if isinstance(f[k], _h5py().Dataset)
                     and not k.endswith("-coordinate") and f[k].ndim >= 3]
            if fields:
                names = [k for k in names if k in fields]
            if len(names) != 1:
                raise ValueError(f"{path} holds the fields {names}; physguard's runs train one "
                                 "(choose it with --fields NAME)")
            dataset, array = names[0], None
            shape = f[dataset].shape
            if f[dataset].size and f[dataset].id.get_storage_size() == 0:
                raise ValueError(f"{path}: {dataset} declares {shape} but stores no data")
            n_dims = len(shape) - 2
            axes = ["x", "y"][:n_dims]
            grid = {a: np.asarray(f[_GRID_KEYS[a]]) for a in axes if _GRID_KEYS[a] in f}
            time = np.asarray(f["t-coordinate"]) if "t-coordinate" in f else None
            dtype = f[dataset].dtype
        elif seeds:
            first = f[seeds[0]]["data"]
            if first.ndim < 3 or first.shape[-1] != 1:
                raise ValueError(f"{path}: {seeds[0]}/data has shape {first.shape}; physguard "
                                 "reads (nt, nx[, ny], 1): one channel")
            dtype = first.dtype
            if any(f[k]["data"].shape != first.shape for k in seeds):
                raise ValueError(f"{path}: the seed groups' data differ in shape")
            array = np.stack([np.asarray(f[k]["data"])[..., 0] for k in seeds])
            dataset, shape = f"{seeds[0]}/data", array.shape
            n_dims = len(shape) - 2
            axes = ["x", "y"][:n_dims]
            g = f[seeds[0]].get("grid", {})
            grid = {a: np.asarray(g[a]) for a in axes if a in g}
            time = np.asarray(g["t"]) if "t" in g else None
        else:
            raise ValueError(f"{path} is not in PDEBench's layout (no x-coordinate, no seed "
                             "groups with data)")
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise ValueError(f"{path}: {dataset} holds {dtype} values; physguard trains on real "
                             "(float) fields")
        if n_dims not in (1, 2):
            raise ValueError(f"{path}: {dataset} has shape {shape}; physguard reads (samples, "
                             "steps, nx[, ny])")
        known = (*OPERATOR_PROBLEMS, "file") if n_dims == 1 else ("cavity", "wave2d", "file")
        if problem not in known:
            raise ValueError(f"{path} holds {n_dims}-D data; the {n_dims}-D problems are "
                             f"{', '.join(known)}, not {problem!r}")
        params = np.full(shape[0], float(next((f.attrs[k] for k in ("Nu", "nu", "beta")
                                               if k in f.attrs), 0.0)))
        n, steps = shape[:2]
        if steps < 2:
            raise ValueError(f"{path}: {dataset} has {steps} step(s); need an initial step and "
                             "at least one more")
        missing = [a for a in axes if a not in grid]
        if missing or time is None:
            raise ValueError(f"{path}: no grid for {missing or ['t']}")
        grid = {a: _uniform(grid[a], a, path, 3) for a in axes}
        for axis, length in zip(axes, shape[2:], strict=True):
            if len(grid[axis]) != length:
                raise ValueError(f"{path}: the {axis} grid has {len(grid[axis])} points, "
                                 f"{dataset} {length}")
        if len(time) == steps + 1:  # PDEBench's t-coordinate: nt + 1 entries, keep nt
            time = time[:steps]
        time = _uniform(time, "time", path, 1)
        if len(time) != steps:
            raise ValueError(f"{path}: {len(time)} times for {steps} steps")
        stated = parse_walls(walls, n_dims)
        if not stated:
            raise ValueError(f"{path} is a PDEBench file, which carries no boundary "
                             "conditions: state them, e.g. --walls \"x=periodic\" or "
                             "\"left=dirichlet:0,right=neumann:0\"")
        conditions = _conditions(f, path, axes, shape, False, stated)
    if check_walls:
        check_conditions(path, array if array is not None
                         else LazyField(path, dataset, range(steps)), conditions, grid,
                         progress=progress)
    # PDEBench's periodic grids never repeat the wrap-around point: append it
    periodic = [a for a in axes if conditions[AXIS_WALLS[a][0]][0] == "periodic"]
    conditions = _append_wrap_points(conditions, grid, periodic)
    appended = tuple(axes.index(a) for a in periodic)
    setting, target_steps = read_steps(setting, steps)
    if array is None:
        inputs = LazyField(path, dataset, [0], append_periodic=appended)
        targets = LazyField(path, dataset, target_steps, append_periodic=appended)
    else:
        full = torch.from_numpy(array.astype(np.float64))
        for axis in appended:
            full = torch.cat([full, full.narrow(2 + axis, 0, 1)], dim=2 + axis)
        inputs, targets = full[:, :1], full[:, target_steps]
    times = torch.from_numpy(time[target_steps])
    from .operator2d import FIELDS, FILE_PROBLEM

    name = dataset.rsplit("/", 1)[-1] if problem == FILE_PROBLEM or n_dims == 1 else \
        FIELDS[problem][-1] if problem == "cavity" else FIELDS[problem][0]
    return assemble(problem, setting, name, grid, times, target_steps, conditions, inputs,
                    targets, params, 0)
