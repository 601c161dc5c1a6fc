"""Operator data as HDF5 in The Well's layout (PolymathicAI/the_well, ``docs/data_format.md``).

One file holds ``B`` trajectories of ``T`` steps on a uniform grid. A physguard sample (an
initial field and its snapshots) is a trajectory whose step 0 is the input and whose steps
``1 .. T`` are the targets (single-step data: one target step). :func:`export_well` writes
files that pass The Well's own checker (``scripts/check_thewell_formatting.py``)::

    /                   dataset_name, grid_type = "cartesian", n_spatial_dims, n_trajectories,
                        simulation_parameters (["param"] in 1-D), param (root attribute:
                        the (B,) values)
    /dimensions         spatial_dims; time (T + 1,) time_varying; x (N,) [y (Ny,)]
    /scalars            field_names; param (B,) sample_varying (1-D)
    /boundary_conditions/<axis>_<type>   one group per axis, as The Well: bc_type "WALL" |
                        "PERIODIC" (upper case), associated_dims [axis], associated_fields,
                        sample_varying = time_varying = False (they describe the mask);
                        mask (bool along the axis, True at both ends), values (float32: one
                        per masked end when the walls' values are constant, else per sample,
                        step and end as below)
    /t0_fields          field_names; u (B, T + 1, *spatial) float32 (scalar fields)
    /t1_fields          velocity (B, T + 1, Nx, Ny, 2) (the cavity's velocity)

A periodic axis is written as The Well writes it, without the duplicate end point. The Well's
``WALL`` does not say Dirichlet or Neumann, so physguard adds its own attributes beside The
Well's: ``physguard_condition`` on each boundary group (one name per masked end, in axis
order) and a float64 dataset ``physguard_values`` ``(B, T + 1, ends[, N_wall][, D])`` with the
exact values of each end's condition (a Dirichlet value or a Neumann normal derivative along
the axis, step 0 included: the input's own), which read back bit for bit; plus
``physguard_problem`` / ``physguard_setting`` at the root. The Well's own reader
(``the_well.data.WellDataset``) reads these files and returns the fields and the condition
types (``boundary_conditions``: WALL / OPEN / PERIODIC per axis end); the condition values are
reachable through :func:`read_well` (``left_values`` ...) or in the file at
``/boundary_conditions/<group>/physguard_values``.

:func:`read_well` reads files of this layout written by anyone: one group per axis or per end,
``bc_type`` in any case, parameters of shape ``()`` or ``(B,)``, a periodic grid without its
end point (the wrap-around point ``x[-1] + h`` is appended, as the grid says, never guessed
from the values). A ``WALL`` or ``OPEN`` boundary without physguard's attribute, or a file with
no boundary groups (PDEBench's), needs the condition stated (``walls``, the CLI's
``--walls``). Every condition is then checked against the file's fields before anything is
trained (:func:`check_conditions`).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch

from .. import conditions
from .._io import atomic_path
from .operator import OPERATOR_PROBLEMS, OperatorData
from .operator2d import WALLS, OperatorData2d

__all__ = ["export_well", "read_well", "read_well_2d", "LazyField", "parse_walls",
           "check_conditions", "file_record", "data_summary", "data_note", "WallCheckError",
           "read_steps", "READ_SETTINGS",
           "TrainerSamples"]

_FORMAT_VERSION = 2
#: The walls of each axis, lower end first.
AXIS_WALLS = conditions.AXIS_WALLS  # the wall table lives in physguard.conditions
_WALL_AXIS = {w: (a, i) for a, ws in AXIS_WALLS.items() for i, w in enumerate(ws)}


def _h5py():
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is a dependency
        raise ImportError("HDF5 files need h5py: pip install h5py") from err
    return h5py


# -- writing ----------------------------------------------------------------------------------

def _trajectories(data) -> np.ndarray:
    """``(B, T + 1, *spatial[, D])``: the input as step 0, then the targets."""
    if isinstance(data, OperatorData2d) and data.field == "velocity":
        # (n, 2, Nx, Ny) input, (n, 2 T, Nx, Ny) step-major targets
        # -> (n, T + 1 steps, Nx, Ny, 2 components)
        steps = torch.cat([data.inputs[:, None], data.per_step(data.targets)], dim=1)
        return steps.permute(0, 1, 3, 4, 2).numpy()
    return torch.cat([data.inputs, data.targets], dim=1).numpy()


def _flag(obj, **flags) -> None:
    for key, value in flags.items():
        obj.attrs[key] = value


def export_well(data: OperatorData | OperatorData2d, path: str | os.PathLike) -> None:
    """Write ``data`` as an HDF5 file in The Well's layout, atomically (module docstring).

    Args:
        data: 1-D :class:`OperatorData` or 2-D :class:`OperatorData2d`, single or multi step.
        path: the ``.h5`` file (replaced whole when it exists; never left half-written; the
            CLI refuses an existing file without ``--overwrite``).

    Raises:
        TypeError: ``data`` of another type.
    """
    if not isinstance(data, (OperatorData, OperatorData2d)):
        raise TypeError(f"export_well takes OperatorData or OperatorData2d, got "
                        f"{type(data).__name__}")
    h5py = _h5py()
    data = data.in_memory()
    two_d = isinstance(data, OperatorData2d)
    time = np.concatenate([[0.0], data.t.numpy()])
    fields = _trajectories(data)
    kinds = {wall: kind for wall, (kind, _) in data.wall_conditions().items()}
    grids = {"x": data.x.numpy(), **({"y": data.y.numpy()} if two_d else {})}
    if two_d and "," in data.field:
        raise ValueError(f"export_well writes one field; the data hold {data.field}")
    values = {w: _exact_values(data, w) for w, k in kinds.items() if k != "periodic"}
    for i, axis in enumerate(grids):  # The Well: periodic axes without the duplicate point
        if kinds[AXIS_WALLS[axis][0]] == "periodic":
            fields = np.take(fields, np.arange(len(grids[axis]) - 1), axis=2 + i)
            grids[axis] = grids[axis][:-1]
            values = {w: v[:, :, :-1] if _WALL_AXIS[w][0] != axis else v
                      for w, v in values.items()}
    name = data.field if two_d else "u"
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _flag(f, dataset_name=f"physguard-{data.problem}", grid_type="cartesian",
              n_spatial_dims=2 if two_d else 1, n_trajectories=len(data),
              physguard_problem=data.problem,
              physguard_setting=getattr(data, "setting", "single" if data.t.numel() == 1
                                        else "multi"),
              physguard_format_version=_FORMAT_VERSION)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = list(grids)
        d = dims.create_dataset("time", data=time.astype(np.float32))
        _flag(d, sample_varying=False, time_varying=True)
        dims.create_dataset("physguard_time", data=time)  # exact float64
        for axis, grid in grids.items():
            d = dims.create_dataset(axis, data=grid.astype(np.float32))
            _flag(d, sample_varying=False, time_varying=False)
            dims.create_dataset(f"physguard_{axis}", data=grid)
        scalars = f.create_group("scalars")
        if two_d:
            f.attrs["simulation_parameters"] = []
            scalars.attrs["field_names"] = []
        else:
            f.attrs["simulation_parameters"] = ["param"]
            f.attrs["param"] = data.params.numpy()
            scalars.attrs["field_names"] = ["param"]
            d = scalars.create_dataset("param", data=data.params.numpy())
            _flag(d, sample_varying=True, time_varying=False)
        _write_boundaries(f.create_group("boundary_conditions"), kinds, values, grids, name)
        group = f.create_group("t1_fields" if fields.ndim == 3 + int(two_d) + 1 else "t0_fields")
        group.attrs["field_names"] = [name]
        other = f.create_group("t0_fields" if group.name == "/t1_fields" else "t1_fields")
        other.attrs["field_names"] = []
        f.create_group("t2_fields").attrs["field_names"] = []
        d = group.create_dataset(name, data=fields.astype(np.float32),
                                 chunks=(1, *fields.shape[1:]))
        _flag(d, dim_varying=[True] * (2 if two_d else 1), sample_varying=True,
              time_varying=True)


def _write_boundaries(group, kinds: dict, values: dict, grids: dict, field: str) -> None:
    """One group per axis, as The Well: ``x_wall`` / ``x_periodic`` ..."""
    for axis, grid in grids.items():
        ends = AXIS_WALLS[axis]
        types = [kinds[w] for w in ends]
        mask = np.zeros(len(grid), dtype=bool)
        mask[[0, -1]] = True
        periodic = types[0] == "periodic"
        sub = group.create_group(f"{axis}_{'periodic' if periodic else 'wall'}")
        _flag(sub, bc_type="PERIODIC" if periodic else "WALL", associated_dims=[axis],
              associated_fields=[field], sample_varying=False, time_varying=False)
        sub.create_dataset("mask", data=mask)
        if periodic:
            sub.create_dataset("values", data=np.zeros(2, dtype=np.float32))
            continue
        exact = np.stack([values[w] for w in ends], axis=2)  # (B, T + 1, 2[, N_wall][, D])
        per_end = np.stack([values[w].reshape(-1)[0] for w in ends])
        constant = all(bool((values[w] == values[w].reshape(-1)[0]).all()) for w in ends)
        sub.create_dataset("values", data=(per_end if constant else exact).astype(np.float32))
        sub.attrs["physguard_condition"] = types
        sub.create_dataset("physguard_values", data=exact)


def _exact_values(data, side: str) -> np.ndarray:
    """The wall values of every step, ``(B, T + 1[, N_wall][, D])``: the input's own (from
    its field, by the same condition) at step 0, then the targets' recorded values."""
    from ..metrics import boundary_residual

    kind, targets = data.wall_conditions()[side]  # (n, T) in 1-D, (n, C, N_wall) in 2-D
    axis, end = _WALL_AXIS[side]
    grid = data.x if axis == "x" else data.y
    two_d = isinstance(data, OperatorData2d)
    inputs = data.inputs.transpose(-1, -2) if two_d and axis == "x" else data.inputs
    zero = torch.zeros(inputs.shape[:-1], dtype=inputs.dtype)  # the wall's normal last
    initial = boundary_residual(inputs, kind, zero, "left" if end == 0 else "right",
                                float(grid[1] - grid[0])).numpy()  # (n, C_in[, N_wall])
    if two_d and data.field == "velocity":  # (n, 2 comps, N_wall) per step
        return np.concatenate([initial[:, None], data.per_step(targets).numpy()],
                              axis=1).transpose(0, 1, 3, 2)  # -> (n, steps, N_wall, 2)
    return np.concatenate([initial, targets.numpy()], axis=1)


# -- reading ----------------------------------------------------------------------------------

class LazyField:
    """A view of ``B`` samples of HDF5 fields, read from the file only when indexed.

    ``field[index]`` (an int, a slice or a 1-D index tensor, in any order) returns a float64
    tensor ``(len(index), C, *spatial)``; ``steps`` selects the trajectory steps that form the
    channels (input: step 0; targets: the later steps). ``dataset``: one scalar field
    ``(B, T, *spatial)``, or with ``components=True`` one or several datasets whose scalar
    fields and vector components (``t1_fields/...``, ``(B, T, *spatial, D)``) become channels,
    step-major (``S x D``: channel ``k D + d`` is component ``d`` at step ``k``).
    ``append_periodic``: the spatial axes (``True``: the first) whose wrap-around point is
    appended (a copy of index 0). The file is opened per access, so the view survives forks
    (data-loader workers, ``torchrun``) and holds no memory.
    """

    def __init__(self, path: str | os.PathLike, dataset, steps, samples=None,
                 append_periodic=False, components: bool = False):
        self.path, self.steps = Path(path), list(steps)
        self.datasets = [dataset] if isinstance(dataset, str) else list(dataset)
        self.dataset = self.datasets[0]
        self.periodic_axes = (0,) if append_periodic is True else tuple(append_periodic or ())
        self.components = components or len(self.datasets) > 1
        with _h5py().File(self.path, "r") as f:
            shapes = [f[d].shape for d in self.datasets]
        self.samples = np.arange(shapes[0][0]) if samples is None else np.asarray(samples)
        vector = [d.startswith("t1_fields/") and self.components for d in self.datasets]
        spatial = list(shapes[0][2:-1] if vector[0] else shapes[0][2:])
        for axis in self.periodic_axes:
            spatial[axis] += 1
        per_step = sum(shape[-1] if v else 1 for shape, v in zip(shapes, vector, strict=True))
        self.vector = vector
        channels = len(self.steps) * (per_step if self.components else 1)
        self.shape = torch.Size((len(self.samples), channels, *spatial))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index) -> torch.Tensor:
        chosen = self.samples[_as_index(index, len(self))]
        order = np.argsort(chosen, kind="stable")
        parts = []
        with _h5py().File(self.path, "r") as f:
            for name, vector in zip(self.datasets, self.vector, strict=True):
                block = f[name][np.sort(chosen)][:, self.steps]  # h5py: increasing indices
                # (B, S, *spatial[, D]) -> (B, S, D, *spatial)
                parts.append(np.moveaxis(block, -1, 2) if vector else block[:, :, None])
        block = np.concatenate(parts, axis=2)
        block = block.reshape(block.shape[0], -1, *block.shape[3:])  # step-major channels
        for axis in self.periodic_axes:
            first = np.take(block, [0], axis=2 + axis)
            block = np.concatenate([block, first], axis=2 + axis)
        out = np.empty_like(block)
        out[order] = block
        out = torch.from_numpy(out.astype(np.float64))
        return out[0] if isinstance(index, int) else out

    def subset(self, index) -> LazyField:
        """The samples ``index`` of this view, still lazy."""
        view = LazyField.__new__(LazyField)
        view.__dict__.update(self.__dict__)
        view.samples = self.samples[_as_index(index, len(self))]
        view.shape = torch.Size((len(view.samples), *self.shape[1:]))
        return view

    def load(self) -> torch.Tensor:
        """All samples of the view as one tensor (for a test split that fits in memory)."""
        return self[slice(None)]


def _as_index(index, n: int) -> np.ndarray:
    if isinstance(index, slice):
        return np.arange(n)[index]
    if isinstance(index, int):
        return np.array([index])
    return np.asarray(torch.as_tensor(index).cpu().numpy(), dtype=np.int64).reshape(-1)


def _attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _open(path) -> tuple[Path, object]:
    """``(path, open h5py.File)``, with physguard's errors for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no HDF5 file at {path}")
    try:
        return path, _h5py().File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file: {err}") from err


class TrainerSamples(torch.utils.data.Dataset):
    """Operator data as the samples neuraloperator's ``Trainer`` expects: ``{"x": (C_in,
    *grid), "y": (C_out, *grid), "<wall>_values": ...}`` float32, the wall values of each
    Dirichlet or Neumann wall (1-D ``(T,)``, 2-D ``(C_out, N_wall)``), which a
    :class:`~physguard.BOON` model takes from the batch (``model(**sample)``). Lazy fields are
    read per sample.

    Args:
        data: :class:`OperatorData` or :class:`OperatorData2d` (e.g. from :func:`read_well`).
    """

    def __init__(self, data: OperatorData | OperatorData2d):
        self.data = data
        self.walls = {wall: values for wall, (kind, values) in data.wall_conditions().items()
                      if kind != "periodic"}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        sample = {"x": self.data.inputs[i].float(), "y": self.data.targets[i].float()}
        sample.update({f"{w}_values": v[i].float() for w, v in self.walls.items()})
        return sample


class WallCheckError(ValueError):
    """A declared boundary condition that the file's own fields do not satisfy."""


def parse_walls(walls, n_dims: int) -> dict[str, tuple[str, float | None]]:
    """Boundary conditions stated by the user, ``{wall: (kind, value)}``.

    Args:
        walls: ``"left=dirichlet:0,right=neumann:0.5"`` (1-D), ``"x=periodic,bottom=dirichlet:0,
            top=neumann:0"`` (2-D; an axis name states both of its walls), or a dict of the
            same ``{name: "dirichlet:0" | ("neumann", 0.0)}``; ``None`` or ``""`` for none.
            Dirichlet values are the field's value at the wall, Neumann values the derivative
            along the axis (``du/dx`` at both ends, not the outward normal), in the file's units.
            A value for one field of several: ``FIELD.WALL=kind:value`` (e.g.
            ``y=dirichlet:0,buoyancy.bottom=dirichlet:1``): the wall's kind is the same for
            every field (BOON's condition is per wall), the value may differ; such a wall's
            value is then a dict ``{field or None (the others): value}``. Time-varying
            values (Python, or the CLI's ``--wall-values FILE.npz``): ``{wall: (kind, array)}``
            with the array ``(steps,)`` (every sample), ``(n, steps)`` or ``(n, steps, *wall)``
            (``*wall``: the wall's points in 2-D, then the field components), step 0 the
            initial one.
        n_dims: 1 or 2 (the walls that exist: left, right [, bottom, top]).

    Raises:
        ValueError: an unknown wall or kind, a value missing (Dirichlet, Neumann) or given
            (periodic), a periodic condition on one wall of an axis, or a wall named twice.
    """
    if not walls:
        return {}
    allowed = [w for a in list(AXIS_WALLS)[:n_dims] for w in AXIS_WALLS[a]]
    if isinstance(walls, str):
        items = []
        for part in (p.strip() for p in walls.split(",")):
            if not part:
                continue
            if "=" not in part:
                raise ValueError(f"walls: {part!r} is not NAME=KIND[:VALUE] (e.g. "
                                 "left=dirichlet:0, x=periodic)")
            items.append(tuple(t.strip() for t in part.split("=", 1)))
    else:
        items = list(dict(walls).items())
    out: dict[str, tuple[str, float | None]] = {}
    for name, spec in items:
        if isinstance(spec, str):
            kind, _, text = spec.partition(":")
            kind = kind.strip().lower()
            try:
                value = float(text) if text.strip() else None
            except ValueError:
                raise ValueError(f"walls: the value of {name}={spec} is not a number") from None
        elif isinstance(spec[1], dict):  # per field, as parse_walls returns them
            kind, value = str(spec[0]).lower(), dict(spec[1])
        elif isinstance(spec[1], (np.ndarray, torch.Tensor)):  # time-varying values
            kind, value = str(spec[0]).lower(), np.asarray(spec[1], dtype=np.float64)
            if not np.isfinite(value).all():
                raise ValueError(f"walls: the values of {name} hold NaN or inf")
        else:
            kind, value = str(spec[0]).lower(), (None if spec[1] is None else float(spec[1]))
        if kind not in ("dirichlet", "neumann", "periodic"):
            raise ValueError(f"walls: {name}={spec}: the kind must be dirichlet, neumann or "
                             "periodic")
        if kind == "periodic" and value is not None:
            raise ValueError(f"walls: {name}=periodic takes no value")
        if kind != "periodic" and not isinstance(value, (np.ndarray, dict)) and (
                value is None or not math.isfinite(value)):
            raise ValueError(f"walls: {name}={spec} needs a finite value ({kind}:VALUE)")
        field, _, name = name.rpartition(".")
        targets = AXIS_WALLS[name] if name in list(AXIS_WALLS)[:n_dims] else (name,)
        for wall in targets:
            if wall not in allowed:
                raise ValueError(f"walls: unknown wall {name!r}; {n_dims}-D walls are "
                                 f"{', '.join(allowed)} (or the axis: "
                                 f"{', '.join(list(AXIS_WALLS)[:n_dims])})")
            if field and kind == "periodic":
                raise ValueError(f"walls: periodic is a condition of the axis for every "
                                 f"field; state {name}=periodic")
            known_kind, values = out.get(wall, (kind, {}))
            values = values if isinstance(values, dict) else {None: values}
            if known_kind != kind:
                raise ValueError(f"walls: the {wall} wall is stated {known_kind} and {kind}; "
                                 "one kind per wall for every field")
            given = value if isinstance(value, dict) else {field or None: value}
            for key, entry in given.items():
                if key in values:
                    raise ValueError(f"walls: the {wall} wall is stated twice"
                                     f"{f' for {key}' if key else ''}")
                values[key] = entry
            out[wall] = (kind, values)
    out = {w: (k, v[None] if set(v) == {None} else v) for w, (k, v) in out.items()}
    for axis in list(AXIS_WALLS)[:n_dims]:
        ends = [out.get(w, ("", None))[0] == "periodic" for w in AXIS_WALLS[axis]]
        if any(ends) and not all(ends):
            raise ValueError(f"walls: periodic is a condition of the whole {axis} axis; state "
                             f"{axis}=periodic")
    return out


def file_record(path: str | os.PathLike) -> dict:
    """``{"path", "bytes", "sha256"}`` of an input file, for a run's ``config.json``."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size,
            "sha256": digest.hexdigest()}


def data_summary(data, train: int, test: int, source: dict | None = None) -> dict:
    """What a run on ``data`` used, for its ``config.json``: the file (``source``: path,
    bytes, SHA-256, stated walls, whether the walls were checked), the samples, the grid,
    the steps, the field and each wall's condition with the range of its values."""
    two_d = isinstance(data, OperatorData2d)
    conditions = {wall: {"kind": kind} if kind == "periodic" else {
        "kind": kind, "min": float(values.min()), "max": float(values.max())}
        for wall, (kind, values) in data.wall_conditions().items()}
    return {**(source or {}), "samples": len(data), "train_samples": train,
            "test_samples": test,
            "grid": {"x": int(data.x.shape[0]), **({"y": int(data.y.shape[0])} if two_d
                                                   else {})},
            "output_times": [float(t) for t in data.t],
            "field": data.field if two_d else "u", "conditions": conditions}


def data_note(summary: dict | None) -> str:
    """The table's paragraph on a run's data file (``""`` for generated data)."""
    if not summary:
        return ""
    walls = ", ".join(f"{w} {c['kind']}" + (f" [{c['min']:.4g}, {c['max']:.4g}]"
                                             if "min" in c else "")
                      for w, c in summary["conditions"].items())
    grid = " x ".join(str(v) for v in summary["grid"].values())
    source = (f"{summary['path']} ({summary['bytes']} bytes, SHA-256 "
              f"{summary['sha256'][:12]}...)" if "path" in summary else "data given in memory")
    checked = "" if summary.get("check_walls", True) else \
        " The walls were NOT checked against the data (--no-check-walls)."
    return (f"\nData: {source}; {summary['samples']} samples ({summary['train_samples']} "
            f"train, {summary['test_samples']} test), grid {grid}, "
            f"{len(summary['output_times'])} output time(s), field {summary['field']}; walls: "
            f"{walls}.{checked}\n")


def _uniform(grid: np.ndarray, name: str, path: Path, minimum: int) -> np.ndarray:
    grid = np.asarray(grid)
    if not np.issubdtype(grid.dtype, np.number) or np.iscomplexobj(grid) or grid.ndim != 1:
        raise ValueError(f"{path}: the {name} grid must be a 1-D array of real numbers, got "
                         f"{grid.dtype} of shape {grid.shape}")
    grid = grid.astype(np.float64)
    if len(grid) < minimum or not np.isfinite(grid).all():
        raise ValueError(f"{path}: the {name} grid needs at least {minimum} finite points, got "
                         f"{len(grid)}")
    step = np.diff(grid)
    if name != "time" and (not (step > 0).all()
                           or np.abs(step - step.mean()).max() > 1e-4 * step.mean()):
        raise ValueError(f"{path}: the {name} grid is not uniform and increasing (spacings "
                         f"{step.min():.6g} .. {step.max():.6g}); physguard's operators and "
                         "stencils need a uniform grid")
    if name == "time" and not (step > 0).all():
        raise ValueError(f"{path}: the time grid is not increasing")
    return grid


def _field_datasets(f, path: Path, n_dims: int, fields: list[str] | None, several: bool
                    ) -> list[tuple[str, bool]]:
    """``[(dataset path, vector?)]`` of the field(s) to train on: ``fields`` by name, else
    all of the file's (``several``: a file run, 2-D) or its only one."""
    found = []
    for group in ("t0_fields", "t1_fields", "t2_fields"):
        if group not in f or not isinstance(f[group], _h5py().Group):
            if group == "t0_fields":
                raise ValueError(f"{path} is not in The Well's layout: no /t0_fields group")
            continue
        names = f[group].attrs.get("field_names", None)
        names = [_attr_str(n) for n in (list(f[group].keys()) if names is None else names)]
        for name in names:
            if name not in f[group]:
                raise ValueError(f"{path}: /{group} lists the field {name!r} but holds no such "
                                 "dataset")
            found.append((group, name))
    if fields:
        missing = [n for n in fields if n not in [name for _, name in found]]
        if missing:
            raise ValueError(f"{path} has no field(s) {missing}; it holds "
                             f"{[name for _, name in found]}")
        found = [(g, n) for g, n in found if n in fields]
    if not found or (len(found) > 1 and not several):
        raise ValueError(f"{path} holds {len(found)} fields ({[n for _, n in found]}); this "
                         "run trains one (choose it with --fields NAME"
                         f"{'; physguard run file trains several in 2-D' if found else ''})")
    for group, name in found:
        if group == "t2_fields" or (group == "t1_fields" and n_dims == 1):
            rank = "tensor" if group == "t2_fields" else "vector"
            raise ValueError(f"{path}: {group}/{name} is a {rank} field; physguard's "
                             f"{n_dims}-D runs take scalar fields"
                             f"{' and vector fields' if n_dims == 2 else ''}")
    return [(f"{group}/{name}", group == "t1_fields") for group, name in found]


def _grid(dims, name: str, path: Path) -> np.ndarray:
    """``/dimensions/<name>`` (physguard's exact float64 copy where it wrote one)."""
    for key in (f"physguard_{name}", name):
        if key in dims and isinstance(dims[key], _h5py().Dataset):
            return np.asarray(dims[key])
    raise ValueError(f"{path}: no /dimensions/{name} grid")


def _parameters(f, n: int, path: Path) -> np.ndarray:
    """The first simulation parameter per sample ``(n,)`` (constant ones broadcast); zeros
    when the file has none."""
    names = [_attr_str(k) for k in f.attrs.get("simulation_parameters", [])]
    if not names and "scalars" in f:
        names = [_attr_str(k) for k in np.atleast_1d(f["scalars"].attrs.get("field_names", []))]
    for name in names:
        if "scalars" in f and isinstance(f["scalars"], _h5py().Group) and name in f["scalars"]:
            value = np.asarray(f["scalars"][name])
        elif name in f.attrs:
            value = np.asarray(f.attrs[name])
        else:
            raise ValueError(f"{path}: the parameter {name!r} is listed but stored nowhere")
        if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise ValueError(f"{path}: the parameter {name!r} is not real numbers "
                             f"({value.dtype})")
        if value.shape in ((), (1,)):
            return np.full(n, float(value.reshape(-1)[0]))
        if value.shape == (n,):
            return value.astype(np.float64)
        if value.ndim == 2 and value.shape[0] == n:  # time-varying: its first value
            return value[:, 0].astype(np.float64)
        raise ValueError(f"{path}: the parameter {name!r} has shape {value.shape}; expected "
                         f"() or ({n},)")
    return np.zeros(n)


def _conditions(f, path: Path, axes: list[str], shape: tuple, components: int, stated: dict,
                names: list[str] | None = None) -> dict:
    """``{wall: (kind, values)}`` with values ``(n, steps[, N_wall][, components])`` float64
    (zeros for periodic walls), from the file's boundary groups and the user's stated
    conditions (``names``: the field of each component, for values stated per field)."""
    n, steps = shape[:2]
    spatial = dict(zip(axes, shape[2:2 + len(axes)], strict=True))
    found: dict[str, tuple[str, np.ndarray | None]] = {}
    source: dict[str, str] = {}
    group = f["boundary_conditions"] if "boundary_conditions" in f else {}
    if not isinstance(group, (dict, _h5py().Group)):
        raise ValueError(f"{path}: /boundary_conditions is not a group")
    for name in group:
        sub = group[name]
        if not isinstance(sub, _h5py().Group):
            raise ValueError(f"{path}: boundary {name!r} is not a group (The Well: one group "
                             "per boundary with its mask)")
        bc = _attr_str(sub.attrs.get("bc_type", "")).strip().upper()
        if bc not in ("WALL", "OPEN", "PERIODIC"):
            raise ValueError(f"{path}: boundary {name!r} has bc_type {bc!r}; The Well's types "
                             "are WALL, OPEN and PERIODIC")
        dims = [_attr_str(a) for a in np.atleast_1d(sub.attrs.get("associated_dims", []))]
        if len(dims) != 1 or dims[0] not in axes:
            raise ValueError(f"{path}: boundary {name!r} has associated_dims {dims}; physguard "
                             f"reads axis-aligned boundaries of one of {axes}")
        axis = dims[0]
        if "mask" not in sub:
            raise ValueError(f"{path}: boundary {name!r} has no mask")
        mask = np.asarray(sub["mask"])
        if mask.dtype != bool or mask.shape != (spatial[axis],):
            raise ValueError(f"{path}: boundary {name!r}: the mask must be bool of shape "
                             f"({spatial[axis]},) along {axis}, got {mask.dtype} {mask.shape}")
        if mask[1:-1].any() or not mask.any():
            raise ValueError(f"{path}: boundary {name!r} masks {int(mask.sum())} point(s) "
                             f"{'inside the domain' if mask[1:-1].any() else ''}; physguard "
                             "takes conditions at the ends of an axis")
        ends = [w for w, index in zip(AXIS_WALLS[axis], (0, -1), strict=True) if mask[index]]
        for wall in ends:
            if wall in found:
                raise ValueError(f"{path}: two boundary groups for the {wall} wall "
                                 f"({source[wall]!r} and {name!r}); which holds is ambiguous")
            source[wall] = name
        if bc == "PERIODIC":
            if len(ends) != 2:
                raise ValueError(f"{path}: boundary {name!r} is PERIODIC at one end of {axis} "
                                 "only")
            for wall in ends:
                found[wall] = ("periodic", None)
            continue
        kinds = sub.attrs.get("physguard_condition", None)
        if kinds is None:
            missing = [w for w in ends if w not in stated]
            if missing:
                raise ValueError(
                    f"{path}: boundary {name!r} is {bc} at the {' and '.join(ends)} end(s) of "
                    f"{axis}; The Well's {bc} does not say which exact condition holds "
                    "(Dirichlet value or Neumann flux), and physguard will not guess: state it, "
                    f"e.g. --walls \"{missing[0]}=dirichlet:0\" (walls={{...}} in Python)")
            for wall in ends:
                found[wall] = (stated[wall][0], None)
            continue
        kinds = [_attr_str(k).lower() for k in np.atleast_1d(kinds)]
        if len(kinds) == 1:
            kinds = kinds * len(ends)
        if len(kinds) != len(ends) or any(k not in ("dirichlet", "neumann") for k in kinds):
            raise ValueError(f"{path}: boundary {name!r}: physguard_condition {kinds} must name "
                             f"dirichlet or neumann for each of its {len(ends)} masked end(s)")
        values = np.asarray(sub["physguard_values"] if "physguard_values" in sub
                            else sub["values"])
        values = _end_values(values, path, name, n, steps, len(ends),
                             _wall_shape(axis, axes, spatial, components))
        for i, wall in enumerate(ends):
            if wall in stated and stated[wall][0] != kinds[i]:
                raise ValueError(f"{path}: the file declares the {wall} wall {kinds[i]}; "
                                 f"--walls states {stated[wall][0]}")
            found[wall] = (kinds[i], values[:, :, i])
    out = {}
    for axis in axes:
        for wall in AXIS_WALLS[axis]:
            if wall not in found and wall in stated:
                found[wall] = (stated[wall][0], None)
            if wall not in found:
                raise ValueError(f"{path}: no boundary condition for the {wall} wall (the "
                                 f"{'lower' if wall in ('left', 'bottom') else 'upper'} end of "
                                 f"{axis}); state it, e.g. --walls \"{wall}=dirichlet:0\"")
            kind, values = found[wall]
            if wall in stated and stated[wall][0] != kind:
                raise ValueError(f"{path}: the file declares the {wall} wall {kind}; --walls "
                                 f"states {stated[wall][0]}")
            if values is None:
                values = np.zeros((n, steps, *_wall_shape(axis, axes, spatial, components)))
                value = stated[wall][1] if wall in stated else None
                if isinstance(value, dict):
                    unknown = [k for k in value if k is not None and k not in (names or [])]
                    if unknown:
                        raise ValueError(f"{path}: --walls names the field(s) {unknown} at the "
                                         f"{wall} wall; the run's fields are {names}")
                    for i, field in enumerate(names or [None]):
                        if field not in value and None not in value:
                            raise ValueError(f"{path}: no value stated for {field} at the "
                                             f"{wall} wall (e.g. {field}.{wall}="
                                             f"{kind}:0)")
                        if components:
                            values[..., i] = value.get(field, value.get(None))
                        else:
                            values[...] = value.get(field, value.get(None))
                elif isinstance(value, np.ndarray):
                    values = _broadcast_values(value, values.shape, path, wall)
                elif value is not None:
                    values[...] = value
            out[wall] = (kind, values.astype(np.float64))
        kinds = [out[w][0] == "periodic" for w in AXIS_WALLS[axis]]
        if any(kinds) and not all(kinds):
            raise ValueError(f"{path}: the {axis} axis is periodic at one end only")
    return out


def _broadcast_values(value: np.ndarray, full: tuple, path, wall: str) -> np.ndarray:
    """Stated time-varying values ``(steps,)``, ``(n, steps)`` or ``full`` as ``full``."""
    n, steps = full[:2]
    if value.shape == (steps,):
        value = value[None]
    if value.shape[:2] == (1, steps) or value.shape[:2] == (n, steps):
        value = value.reshape(value.shape + (1,) * (len(full) - value.ndim))
        try:
            return np.broadcast_to(value, full).astype(np.float64)
        except ValueError:
            pass
    raise ValueError(f"{path}: the stated values of the {wall} wall have shape {value.shape}; "
                     f"expected ({steps},), ({n}, {steps}) or {full} (steps including the "
                     "initial one)")


def load_wall_values(path: str | os.PathLike, walls) -> dict:
    """Merge a values file into stated walls: ``path`` an NPZ with one array per wall
    (``left``, ``right``, ``bottom``, ``top``; shapes as in :func:`parse_walls`); ``walls``
    the stated conditions (text or dict) that give each of those walls its kind.

    Raises:
        FileNotFoundError: no file. ValueError: an array for a wall without a stated kind, a
        name that is not a wall, or an unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no wall-values file at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files}
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{path} is not a readable NPZ of wall values: {err}") from err
    stated = dict(parse_walls(walls, 2)) if walls else {}
    out = {}
    for wall, array in arrays.items():
        if wall not in _WALL_AXIS:
            raise ValueError(f"{path}: {wall!r} is not a wall (left, right, bottom, top)")
        if wall not in stated or stated[wall][0] == "periodic":
            raise ValueError(f"{path} gives values for the {wall} wall; state its kind with "
                             f"--walls (e.g. {wall}=neumann:0, the values file replaces 0)")
        out[wall] = (stated[wall][0], array)
    return {**{w: (k, v) for w, (k, v) in stated.items() if w not in out}, **out}


def _wall_shape(axis: str, axes: list[str], spatial: dict, components: int) -> tuple:
    along = tuple(spatial[a] for a in axes if a != axis)
    return along + ((components,) if components else ())


def _end_values(values: np.ndarray, path: Path, name: str, n: int, steps: int, ends: int,
                wall: tuple) -> np.ndarray:
    """A boundary group's values as ``(n, steps, ends, *wall)``: accepts that shape, one
    value per masked end ``(ends[, *wall])`` (The Well's ``values``: constant), or, for one
    end, ``(n, steps[, *wall])``."""
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(f"{path}: boundary {name!r} values are not real numbers "
                         f"({values.dtype})")
    values = values.astype(np.float64)
    full = (n, steps, ends, *wall)
    if values.shape == full:
        return values
    for constant in ((ends, *wall), (ends,)):
        if values.shape == constant:
            return np.broadcast_to(values.reshape(1, 1, ends, *values.shape[1:],
                                                  *(1,) * (len(full) - 2 - values.ndim)),
                                   full).copy()
    if ends == 1 and values.shape == (n, steps, *wall):
        return values[:, :, None]
    raise ValueError(f"{path}: boundary {name!r} values have shape {values.shape}; expected "
                     f"{full} (samples, steps, masked ends{', wall points' if wall else ''}) or "
                     f"({ends},) one per masked end")


def read_well(path: str | os.PathLike, problem: str, setting: str = "multi",
              walls=None, fields: list[str] | None = None, check_walls: bool = True,
              progress: bool = False) -> OperatorData | OperatorData2d:
    """Read an HDF5 file in The Well's layout; the dimension is the file's.

    Args:
        path: the file (written by :func:`export_well` or by anyone in The Well's layout).
        problem: the physguard problem the data stand for (1-D: a key of
            ``OPERATOR_PROBLEMS``; 2-D: ``cavity`` or ``wave2d``); names the run, its figures
            and defaults. A file that names another (``physguard_problem``) is refused.
        setting: ``"multi"`` (targets: steps ``1 .. T``), ``"single"`` (the last step) or
            ``"trajectory"`` (steps ``0 .. T``, the initial one too, with its walls' values:
            a rollout's trajectories; read as multi-step data): :func:`read_steps`.
        walls: conditions for boundaries the file does not specify (``WALL`` / ``OPEN``
            without physguard's attribute, or no boundary group at all): see
            :func:`parse_walls`.
        fields: the field to train on, by name (default: the file's only one).
        check_walls: check every condition against the file's fields (all samples and steps)
            before returning (:func:`check_conditions`); ``False`` skips it (the CLI's
            ``--no-check-walls``, recorded in the run's ``config.json``).
        progress: a progress bar over the check's pass through the file (large files).

    Returns:
        1-D :class:`OperatorData` or 2-D :class:`OperatorData2d` whose ``inputs`` /
        ``targets`` are :class:`LazyField` views; grids, parameters and wall values are in
        memory.

    Raises:
        FileNotFoundError: no file. ValueError: a file that is not The Well's layout or that
        physguard cannot map, each with the reason: the dimension, the field count or type
        (complex, bool, text), shapes that disagree, a non-uniform or decreasing grid,
        duplicate or contradictory boundary groups, a condition neither declared nor stated,
        NaN or inf in a field, a problem other than the file's. :class:`WallCheckError`: a
        declared condition the fields do not satisfy.
    """
    read_steps(setting, 2)  # a bad setting is refused before the file is opened
    path, f = _open(path)
    with f:
        if "dimensions" not in f:
            raise ValueError(f"{path} is not in The Well's layout: no /dimensions group")
        try:
            n_dims = int(f.attrs["n_spatial_dims"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: the root attribute n_spatial_dims is missing or not an "
                             "integer") from None
        if n_dims not in (1, 2):
            raise ValueError(f"{path} has {n_dims} space dimensions; physguard reads 1 or 2")
        from .operator2d import FIELDS, FILE_PROBLEM

        known = (*OPERATOR_PROBLEMS, FILE_PROBLEM) if n_dims == 1 else \
            ("cavity", "wave2d", FILE_PROBLEM)
        if problem not in known:
            raise ValueError(f"{path} holds {n_dims}-D data; the {n_dims}-D problems are "
                             f"{', '.join(known)}, not {problem!r}")
        declared = _attr_str(f.attrs.get("physguard_problem", problem))
        if declared != problem and problem != FILE_PROBLEM:
            raise ValueError(f"{path} holds {declared} data (physguard_problem), not "
                             f"{problem}: run 'physguard run {declared} --data {path}'")
        dims = f["dimensions"]
        if not isinstance(dims, _h5py().Group):
            raise ValueError(f"{path}: /dimensions is not a group")
        axes = [_attr_str(a) for a in dims.attrs.get("spatial_dims", ["x", "y"][:n_dims])]
        if axes != ["x", "y"][:n_dims]:
            raise ValueError(f"{path}: spatial_dims {axes}; physguard reads the axes "
                             f"{['x', 'y'][:n_dims]}")
        chosen = _field_datasets(f, path, n_dims, fields,
                                 several=problem == FILE_PROBLEM and n_dims == 2)
        shape = None
        for dataset, vector in chosen:
            field = f[dataset]
            if not (np.issubdtype(field.dtype, np.floating)
                    or np.issubdtype(field.dtype, np.integer)):
                raise ValueError(f"{path}: {dataset} holds {field.dtype} values; physguard "
                                 "trains on real (float) fields")
            if field.size and field.id.get_storage_size() == 0:
                raise ValueError(f"{path}: {dataset} declares {field.shape} but stores no "
                                 "data")
            rank = 2 + n_dims + int(vector)
            if len(field.shape) != rank or (vector and field.shape[-1] != n_dims):
                raise ValueError(f"{path}: {dataset} has shape {field.shape}; expected "
                                 f"(samples, steps, {', '.join(axes)}"
                                 f"{f', {n_dims}' if vector else ''})")
            if shape is not None and field.shape[:rank - int(vector)] != shape:
                raise ValueError(f"{path}: the fields' shapes differ ({chosen[0][0]} "
                                 f"{shape}, {dataset} {field.shape})")
            shape = field.shape[:2 + n_dims]
        dataset = chosen[0][0]
        vector = len(chosen) == 1 and chosen[0][1] and problem != FILE_PROBLEM
        if vector and "velocity" not in FIELDS.get(problem, ()):
            raise ValueError(f"{path} holds a vector field; {problem} takes the scalar "
                             f"{FIELDS[problem]} (physguard run file trains any field)")
        components = sum(n_dims if v else 1 for _, v in chosen)
        if components == 1:
            components = 0  # one scalar field: no component axis
        n, steps = shape[:2]
        if "n_trajectories" in f.attrs and int(f.attrs["n_trajectories"]) != n:
            raise ValueError(f"{path}: n_trajectories is {int(f.attrs['n_trajectories'])} but "
                             f"{dataset} holds {n} samples")
        if n < 1 or steps < 2:
            raise ValueError(f"{path}: {dataset} has {n} sample(s) of {steps} step(s); need an "
                             "initial step and at least one more")
        grid = {a: _uniform(_grid(dims, a, path), a, path, 3) for a in axes}
        time = _uniform(_grid(dims, "time", path), "time", path, 1)
        for axis, length in zip(axes, shape[2:2 + n_dims], strict=True):
            if len(grid[axis]) != length:
                raise ValueError(f"{path}: dimensions/{axis} has {len(grid[axis])} points, "
                                 f"{dataset} {length}")
        if len(time) != steps:
            raise ValueError(f"{path}: dimensions/time has {len(time)} entries, {dataset} "
                             f"{steps} steps")
        legacy = int(f.attrs.get("physguard_format_version", _FORMAT_VERSION)) < 2
        names = [d.split("/", 1)[1] for d, v in chosen for _ in range(n_dims if v else 1)]
        conditions = _conditions(f, path, axes, (*shape, components), components,
                                 parse_walls(walls, n_dims), names)
        params = _parameters(f, n, path) if n_dims == 1 else None
    datasets = [d for d, _ in chosen]
    if check_walls:
        every_step = LazyField(path, datasets, range(steps), components=components > 0)
        check_conditions(path, every_step, conditions, grid, components, progress=progress)
    # The Well writes periodic axes without the wrap-around point: append it (x[-1] + h),
    # as the grid says; physguard's own first exports (format 1) kept it.
    periodic = [] if legacy else \
        [a for a in axes if conditions[AXIS_WALLS[a][0]][0] == "periodic"]
    conditions = _append_wrap_points(conditions, grid, periodic)
    setting, target_steps = read_steps(setting, steps)
    times = torch.from_numpy(time[target_steps])
    appended = tuple(axes.index(a) for a in periodic)
    inputs = LazyField(path, datasets, [0], append_periodic=appended,
                       components=components > 0)
    targets = LazyField(path, datasets, target_steps, append_periodic=appended,
                        components=components > 0)
    if problem == FILE_PROBLEM or n_dims == 1:
        name = ",".join(d.split("/", 1)[1] for d in datasets)
    elif vector:
        name = "velocity"
    else:
        name = FIELDS[problem][-1] if problem == "cavity" else FIELDS[problem][0]
    return assemble(problem, setting, name, grid, times, target_steps, conditions, inputs,
                    targets, params, components)


#: How a file's steps ``0 .. T`` become targets (:func:`read_steps`).
READ_SETTINGS = ("single", "multi", "trajectory")


def read_steps(setting: str, steps: int) -> tuple[str, list[int]]:
    """The data's setting and the file steps that become its targets: ``"multi"`` steps ``1
    .. T``, ``"single"`` the last, ``"trajectory"`` all of ``0 .. T`` (multi-step data whose
    first target is its input: the walls' values of step 0 come with it). A file of two
    steps read as multi has one target: single step.

    Raises:
        ValueError: a setting not in :data:`READ_SETTINGS`.
    """
    if setting not in READ_SETTINGS:
        raise ValueError(f"setting must be one of {READ_SETTINGS}, got {setting!r}")
    if setting == "trajectory":
        return "multi", list(range(steps))
    if steps == 2:  # one output step: single, whatever was asked
        return "single", [1]
    return setting, list(range(1, steps)) if setting == "multi" else [steps - 1]


def assemble(problem: str, setting: str, name: str, grid: dict, times: torch.Tensor,
             target_steps: list[int], conditions: dict, inputs, targets, params, components: int
             ) -> OperatorData | OperatorData2d:
    """The operator data of a read file: 1-D :class:`OperatorData` (``params (n,)``) or 2-D
    :class:`OperatorData2d` (field ``name``; ``components`` per step, 0 for one scalar)
    with the conditions' values at ``target_steps``."""
    if len(grid) == 1:
        (left_type, left), (right_type, right) = conditions["left"], conditions["right"]
        return OperatorData(problem, left_type, right_type, torch.from_numpy(grid["x"]), times,
                            torch.from_numpy(params), inputs, targets,
                            torch.from_numpy(left[:, target_steps]),
                            torch.from_numpy(right[:, target_steps]))
    walls = {}
    for wall, (_, v) in conditions.items():
        v = v[:, target_steps]
        if components:  # (n, S, N_wall, D) -> (n, S D, N_wall), step-major
            v = np.moveaxis(v, -1, 2).reshape(v.shape[0], -1, v.shape[2])
        walls[wall] = torch.from_numpy(np.ascontiguousarray(v))
    return OperatorData2d(problem, setting, name, tuple(conditions[w][0] for w in WALLS),
                          torch.from_numpy(grid["x"]), torch.from_numpy(grid["y"]), times,
                          inputs, targets, **walls)


def _append_wrap_points(conditions: dict, grid: dict, periodic: list[str]) -> dict:
    """Append each periodic axis's wrap-around point ``x[-1] + h`` to its grid (in place)
    and to the wall values that run along it; the periodic walls' values are zeros."""
    out = {}
    for axis in periodic:
        g = grid[axis]
        grid[axis] = np.append(g, g[-1] + (g[-1] - g[-2]))
    for wall, (kind, values) in conditions.items():
        axis = _WALL_AXIS[wall][0]
        for other in periodic:
            if other != axis:  # the wall's points run along the periodic axis (index 2)
                values = np.concatenate([values, values[:, :, :1]], axis=2)
        out[wall] = (kind, np.zeros_like(values) if kind == "periodic" else values)
    return out


def read_well_2d(path: str | os.PathLike, problem: str, setting: str = "multi", **options
                 ) -> OperatorData2d:
    """:func:`read_well` for a file that must be 2-D (same arguments and errors)."""
    if problem not in ("cavity", "wave2d"):
        raise ValueError(f"unknown 2-D problem {problem!r}; known: ('cavity', 'wave2d')")
    return read_well(path, problem, setting, **options)


#: Tolerances of :func:`check_conditions`, relative to the field's scale
#: ``max(1, max |u|)``: float32 storage rounds at 6e-8, solvers write 1e-6 or better.
DIRICHLET_RTOL = 1e-4
PERIODIC_JUMP = 4.0
NEUMANN_TRUNCATION = 4.0
NEUMANN_RTOL = 0.05


def check_conditions(path, fields, conditions: dict, grid: dict, components: int = 0,
                     block_bytes: int = 1 << 26, progress: bool = False) -> None:
    """Check every condition against the fields, every sample and every step after the
    initial one (the targets', whose conditions BOON enforces), in blocks.

    ``fields``: every step of the fields as stored (without appended wrap-around points), a
    :class:`LazyField` of the file or an array already read, ``(B, steps * D, *spatial)``
    step-major with ``components = D`` (``(B, steps, *spatial)`` and 0 for one scalar field).
    Values ``(B, steps[, N_wall][, D])`` as :func:`read_well` builds them.

    * NaN / inf anywhere in the field: refused (the first sample named).
    * Dirichlet: ``|u_wall - g| <= DIRICHLET_RTOL * max(1, max |u|)``.
    * Neumann: the derivative along the axis by the 2nd-order one-sided stencil (the one BOON
      enforces) against ``g``, allowing for its truncation error, which a coarse grid makes
      large (a thin boundary layer): ``NEUMANN_TRUNCATION`` times the larger of two
      estimates from the data at that point (the first-order difference against the
      stencil, ``~ h |u''| / 2``; the stencil on every second point against every point,
      three times Richardson's O(h^2) estimate), plus ``NEUMANN_RTOL`` times the largest slope
      (``max |g|`` or the largest ``|du/dx|`` between neighbours) and the
      float32 allowance ``DIRICHLET_RTOL * scale / h``. Needs 5 points along the axis.
      Measured (``benchmarks/results/wall_check_tolerance.md``): on heat-neumann exports of
      16 to 256 points and wave2d exports of 13 to 33 points per side, every correct flux
      passes and a wrong one (0 for ``U sin(pi t)``; 1 for the wave's 0) is refused, except
      heat at 16 points for one seed of three (the wall layer is one cell wide there); 9
      points per side for the wave's 6 x 6 modes are too coarse to check (refused; override
      as below).
    * Periodic: the jump across the wrap-around (``u_0 - u_{N-1}``, the grid's last stored
      point) at most ``PERIODIC_JUMP`` times the largest jump between neighbours inside
      (plus the float32 allowance): data with different values at the two ends are refused.

    Raises:
        ValueError: NaN or inf values. WallCheckError: a condition the data do not satisfy,
        naming the wall, the worst sample and step, the residual and the allowance, and the
        override (``--no-check-walls``, ``check_walls=False``).
    """
    from ..metrics import boundary_residual

    axes = list(grid)
    shape = fields.shape
    n = shape[0]
    per_sample = max(1, int(np.prod(shape[1:])) * 8)
    step = max(1, block_bytes // per_sample)
    worst: dict[str, tuple[float, float, float, int, int]] = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc="checking the walls", unit="sample",
               disable=not progress or n <= step)
    for start in range(0, n, step):
        bar.update(min(step, n - start))
        block = np.asarray(fields[start:start + step], np.float64)
        if not np.isfinite(block).all():
            bad = start + int(np.argwhere(~np.isfinite(block))[0][0])
            raise ValueError(f"{path}: the field holds NaN or infinite values (first in "
                             f"sample {bad}); physguard will not train on them")
        if components:  # (B, S D, *spatial) -> (B, S, D, *spatial)
            block = block.reshape(block.shape[0], -1, components, *block.shape[2:])
        block = block[:, 1:]  # the targets' steps: BOON holds their conditions; an initial
        # field need not meet them (heat's cos(omega pi x) against a zero flux)
        u = torch.from_numpy(block)
        scale = max(1.0, float(u.abs().max()))
        for wall, (kind, values) in conditions.items():
            axis, end = _WALL_AXIS[wall]
            if kind == "periodic" and end == 1:
                continue
            along = u if axis == axes[-1] else u.transpose(-1, -2)  # the axis last
            h = float(grid[axis][1] - grid[axis][0])
            g = torch.from_numpy(np.asarray(values[start:start + step, 1:]))
            if components:
                g = torch.movedim(g, -1, 2)
            side = "left" if end == 0 else "right"
            allowance = DIRICHLET_RTOL * scale
            if kind == "periodic":
                jump = (along[..., 0] - along[..., -1]).abs()
                inside = along.diff(dim=-1).abs().amax(-1)
                excess = jump - PERIODIC_JUMP * inside - allowance
                residual, allowed = jump, PERIODIC_JUMP * inside + allowance
            elif kind == "dirichlet":
                residual = boundary_residual(along, kind, g, side, h).abs()
                allowed = torch.full_like(residual, allowance)
                excess = residual - allowed
            else:
                if along.shape[-1] < 5:
                    raise ValueError(f"{path}: checking the Neumann {wall} wall needs 5 "
                                     f"points along {axis}, the grid has "
                                     f"{along.shape[-1]} (or pass --no-check-walls)")
                residual = boundary_residual(along, kind, g, side, h).abs()
                second = boundary_residual(along, kind, g, side, h)
                coarse = along[..., 0:5:2] if side == "left" else along[..., -5::2]
                first = (along[..., 1] - along[..., 0] if side == "left"
                         else along[..., -1] - along[..., -2]) / h - g
                richardson = boundary_residual(coarse, kind, g, side, 2 * h) - second
                truncation = torch.maximum((first - second).abs(), richardson.abs())
                slope = max(float(np.abs(values).max()),
                            float(along.diff(dim=-1).abs().max()) / h)
                allowed = (NEUMANN_TRUNCATION * truncation + allowance / h
                           + NEUMANN_RTOL * slope)
                excess = residual - allowed
            flat = excess.reshape(excess.shape[0], excess.shape[1], -1).amax(-1)
            index = int(flat.argmax())
            sample, at = divmod(index, flat.shape[1])
            if wall not in worst or float(flat.max()) > worst[wall][0]:
                where = (residual - allowed).reshape(excess.shape[0], excess.shape[1], -1)
                point = int(where[sample, at].argmax())
                worst[wall] = (float(flat.max()),
                               float(residual.reshape(*where.shape)[sample, at, point]),
                               float(allowed.reshape(*where.shape)[sample, at, point]),
                               start + sample, at + 1)
    bar.close()
    for wall, (excess, residual, allowed, sample, at) in worst.items():
        if excess > 0:
            kind = conditions[wall][0]
            what = {"dirichlet": "|u - value|", "neumann": "|du/dx - value| (2nd-order "
                    "one-sided stencil)", "periodic": "the jump across the wrap-around"}[kind]
            raise WallCheckError(
                f"{path}: the {wall} wall is declared {kind}, but the data do not satisfy it: "
                f"{what} is {residual:.4g} in sample {sample}, step {at} (allowed "
                f"{allowed:.4g}). Fix the declared condition (--walls), or pass "
                "--no-check-walls (check_walls=False) to train on it anyway, recorded in "
                "config.json")
