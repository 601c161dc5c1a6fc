"""Operator data as HDF5 in The Well's layout (PolymathicAI/the_well, ``docs/data_format.md``).

One file holds ``B`` trajectories of ``T`` steps on a uniform grid. A physguard sample (an
initial field and its snapshots) is a trajectory whose step 0 is the input and whose steps
``1 .. T`` are the targets (single-step data: one target step). :func:`export_well` writes::

    /                   dataset_name, grid_type = "cartesian", n_spatial_dims, n_trajectories,
                        simulation_parameters (names; their values in /scalars)
    /dimensions         spatial_dims; time (T + 1,), x (N,) [y (Ny,)]
    /scalars            field_names; one dataset per sample parameter (sample_varying)
    /boundary_conditions/<axis>_<side>   bc_type ("periodic" | "wall"), associated_dims,
                        associated_fields, sample_varying, time_varying; mask (bool along the
                        axis), values (float32, (B, T + 1, n_masked) or per wall point)
    /t0_fields          field_names; u (B, T + 1, *spatial) float32 (scalar fields)
    /t1_fields          velocity (B, T + 1, Nx, Ny, 2) (the cavity's velocity)

The Well's ``wall`` does not say Dirichlet or Neumann, so physguard adds its own attributes
beside The Well's: ``physguard_condition`` on each boundary group and a float64 dataset
``physguard_values`` with the exact values of the targets' condition (a Dirichlet value or a
Neumann ``du/dx``, step 0 included: the input's own), which read back bit for bit; plus
``physguard_problem`` / ``physguard_setting`` at the root. Other files open with The Well's
attributes alone: ``periodic`` maps to :class:`~physguard.Periodic` (a grid without the
duplicate end point gets it appended), and ``wall`` without physguard's attribute, or
``open``, is refused: neither says which exact condition holds, and BOON cannot guess one.

:func:`read_well` reads the grids, the conditions and the (small) wall values at once, and
the fields lazily: ``inputs`` and ``targets`` are :class:`LazyField` views that read the
requested samples from the file on indexing, so training on a file larger than memory works
(``physguard run PROBLEM --data FILE.h5``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_path
from .operator import OPERATOR_PROBLEMS, OperatorData
from .operator2d import WALLS, OperatorData2d

__all__ = ["export_well", "read_well", "read_well_2d", "LazyField"]

_FORMAT_VERSION = 1
_SIDES_1D = {"left": ("x", 0), "right": ("x", -1)}
_SIDES_2D = {"left": ("x", 0), "right": ("x", -1), "bottom": ("y", 0), "top": ("y", -1)}


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
        path: the ``.h5`` file (replaced whole when it exists; never left half-written).

    Raises:
        TypeError: ``data`` of another type.
    """
    if not isinstance(data, (OperatorData, OperatorData2d)):
        raise TypeError(f"export_well takes OperatorData or OperatorData2d, got "
                        f"{type(data).__name__}")
    h5py = _h5py()
    two_d = isinstance(data, OperatorData2d)
    time = np.concatenate([[0.0], data.t.numpy()])
    fields = _trajectories(data)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _flag(f, dataset_name=f"physguard-{data.problem}", grid_type="cartesian",
              n_spatial_dims=2 if two_d else 1, n_trajectories=len(data),
              physguard_problem=data.problem,
              physguard_setting=getattr(data, "setting", "single" if data.t.numel() == 1
                                        else "multi"),
              physguard_format_version=_FORMAT_VERSION)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"] if two_d else ["x"]
        for name, values in (("time", time), ("x", data.x.numpy()),
                             *((("y", data.y.numpy()),) if two_d else ())):
            d = dims.create_dataset(name, data=values.astype(np.float32))
            _flag(d, sample_varying=False, time_varying=False)
            dims.create_dataset(f"physguard_{name}", data=values)  # exact float64 grid
        scalars = f.create_group("scalars")
        if two_d:
            f.attrs["simulation_parameters"] = []
            scalars.attrs["field_names"] = []
        else:
            f.attrs["simulation_parameters"] = ["param"]
            scalars.attrs["field_names"] = ["param"]
            d = scalars.create_dataset("param", data=data.params.numpy())
            _flag(d, sample_varying=True, time_varying=False)
        name = data.field if two_d else "u"
        _write_boundaries(f.create_group("boundary_conditions"), data, fields, name)
        group = f.create_group("t1_fields" if fields.ndim == 3 + int(two_d) + 1 else "t0_fields")
        group.attrs["field_names"] = [name]
        other = f.create_group("t0_fields" if group.name == "/t1_fields" else "t1_fields")
        other.attrs["field_names"] = []
        f.create_group("t2_fields").attrs["field_names"] = []
        d = group.create_dataset(name, data=fields.astype(np.float32),
                                 chunks=(1, *fields.shape[1:]))
        _flag(d, dim_varying=[True] * (2 if two_d else 1), sample_varying=True,
              time_varying=True)


def _write_boundaries(group, data, fields: np.ndarray, field: str) -> None:
    two_d = isinstance(data, OperatorData2d)
    sides = _SIDES_2D if two_d else _SIDES_1D
    kinds = dict(zip(WALLS, data.wall_types, strict=True)) if two_d else \
        {"left": data.left_type, "right": data.right_type}
    written_periodic = set()
    for side, (axis, end) in sides.items():
        kind = kinds[side]
        length = fields.shape[2 + ("xy".index(axis))]
        mask = np.zeros(length, dtype=bool)
        if kind == "periodic":
            if axis in written_periodic:
                continue
            written_periodic.add(axis)
            mask[[0, -1]] = True
            sub = group.create_group(f"{axis}_periodic")
            _flag(sub, bc_type="periodic", associated_dims=[axis], associated_fields=[field],
                  sample_varying=False, time_varying=False)
            sub.create_dataset("mask", data=mask)
            sub.create_dataset("values", data=np.zeros(0, dtype=np.float32))
            continue
        mask[end] = True
        values = _exact_values(data, side)  # (B, T + 1, n_masked[, D]) float64
        sub = group.create_group(f"{axis}_{side}")
        _flag(sub, bc_type="wall", associated_dims=[axis], associated_fields=[field],
              sample_varying=True, time_varying=True, physguard_condition=kind)
        sub.create_dataset("mask", data=mask)
        sub.create_dataset("values", data=values.astype(np.float32))
        sub.create_dataset("physguard_values", data=values)


def _exact_values(data, side: str) -> np.ndarray:
    """The wall values of every step: the input's own (from its field, by the same
    condition) at step 0, then the targets' recorded values."""
    if isinstance(data, OperatorData2d):
        from ..experiments.boon2d import wall_residuals

        targets = getattr(data, side)  # (n, C, N_wall)
        zero = {w: torch.zeros_like(getattr(data, w)[:, :data.inputs.shape[1]])
                for w in WALLS}
        probe = OperatorData2d(data.problem, data.setting, data.field, data.wall_types, data.x,
                               data.y, data.t[:1], data.inputs, data.inputs, **zero)
        initial = wall_residuals(data.inputs, probe)[side].numpy()
        if data.field == "velocity":  # (n, 2 comps, N_wall) per step -> (n, steps, N_wall, 2)
            return np.concatenate([initial[:, None], data.per_step(targets).numpy()],
                                  axis=1).transpose(0, 1, 3, 2)
        return np.concatenate([initial, targets.numpy()], axis=1)
    from ..metrics import boundary_residual

    h = float(data.x[1] - data.x[0])
    kind = getattr(data, f"{side}_type")
    zero = torch.zeros(len(data), 1, dtype=torch.float64)
    initial = boundary_residual(data.inputs, kind, zero, side, h).numpy()  # (n, 1)
    values = np.concatenate([initial, getattr(data, f"{side}_values").numpy()], axis=1)
    return values[..., None]  # one masked point


# -- reading ----------------------------------------------------------------------------------

class LazyField:
    """A view of ``B`` samples of an HDF5 field, read from the file only when indexed.

    ``field[index]`` (an int, a slice or a 1-D index tensor, in any order) returns a float64
    tensor ``(len(index), C, *spatial)``; ``steps`` selects the trajectory steps that form the
    channels (input: step 0; targets: the later steps). The file is opened per access, so the
    view survives forks (data-loader workers, ``torchrun``) and holds no memory.
    """

    def __init__(self, path: str | os.PathLike, dataset: str, steps, samples=None,
                 append_periodic: bool = False, components: bool = False):
        self.path, self.dataset, self.steps = Path(path), dataset, list(steps)
        self.append_periodic, self.components = append_periodic, components
        with _h5py().File(self.path, "r") as f:
            shape = f[dataset].shape
        self.samples = np.arange(shape[0]) if samples is None else np.asarray(samples)
        if components:  # a vector field (B, T, *spatial, D): channels step-major, S x D
            self.shape = torch.Size((len(self.samples), len(self.steps) * shape[-1],
                                     *shape[2:-1]))
            return
        spatial = list(shape[2:])
        if append_periodic:
            spatial[0] += 1
        self.shape = torch.Size((len(self.samples), len(self.steps), *spatial))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index) -> torch.Tensor:
        chosen = self.samples[_as_index(index, len(self))]
        order = np.argsort(chosen, kind="stable")
        with _h5py().File(self.path, "r") as f:
            block = f[self.dataset][np.sort(chosen)]  # h5py needs increasing indices
        block = block[:, self.steps]
        if self.components:  # (B, S, *spatial, D) -> (B, S * D, *spatial), step-major
            block = np.moveaxis(block, -1, 2)
            block = block.reshape(block.shape[0], -1, *block.shape[3:])
        if self.append_periodic:
            block = np.concatenate([block, block[:, :, :1]], axis=2)
        out = np.empty_like(block)
        out[order] = block
        out = torch.from_numpy(out.astype(np.float64))
        return out[0] if isinstance(index, int) else out

    def subset(self, index) -> LazyField:
        """The samples ``index`` of this view, still lazy."""
        view = LazyField.__new__(LazyField)
        view.path, view.dataset, view.steps = self.path, self.dataset, self.steps
        view.append_periodic, view.components = self.append_periodic, self.components
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


def read_well(path: str | os.PathLike, problem: str, setting: str = "multi") -> OperatorData:
    """Read a 1-D HDF5 file in The Well's layout as :class:`OperatorData` with lazy fields.

    Args:
        path: the file (written by :func:`export_well` or by anyone else in The Well's layout,
            one scalar field in ``t0_fields``).
        problem: the physguard problem the data stands for (a key of ``OPERATOR_PROBLEMS``;
            names the run, its figures and its defaults).
        setting: ``"multi"`` (targets: steps ``1 .. T``) or ``"single"`` (the last step).

    Returns:
        ``OperatorData`` whose ``inputs`` / ``targets`` are :class:`LazyField` views; grids,
        parameters and wall values are in memory.

    Raises:
        FileNotFoundError: no file. ValueError: not The Well's layout, not 1-D, not exactly
        one scalar field, fewer than 2 steps, a ``wall`` condition without physguard's
        condition attribute, an ``open`` condition, or a non-uniform grid (each named).
    """
    if problem not in OPERATOR_PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; known: {', '.join(OPERATOR_PROBLEMS)}")
    if setting not in ("single", "multi"):
        raise ValueError(f"setting must be 'single' or 'multi', got {setting!r}")
    path, f = _open(path)
    with f:
        for group in ("dimensions", "boundary_conditions", "t0_fields"):
            if group not in f:
                raise ValueError(f"{path} is not in The Well's layout: no /{group} group")
        if int(f.attrs.get("n_spatial_dims", 1)) != 1:
            raise ValueError(f"{path} has {int(f.attrs['n_spatial_dims'])} space dimensions: "
                             "read it with read_well_2d")
        names = [_attr_str(n) for n in f["t0_fields"].attrs.get("field_names", [])] \
            or list(f["t0_fields"].keys())
        if len(names) != 1:
            raise ValueError(f"{path} holds {len(names)} scalar fields ({names}); physguard "
                             "trains on files with exactly one")
        dataset = f"t0_fields/{names[0]}"
        n, steps, n_points = f[dataset].shape
        if steps < 2:
            raise ValueError(f"{path}: {dataset} has {steps} time step(s); need an initial "
                             "step and at least one more")
        dims = f["dimensions"]
        x = np.asarray(dims["physguard_x"] if "physguard_x" in dims else dims["x"], np.float64)
        time = np.asarray(dims["physguard_time"] if "physguard_time" in dims
                          else dims["time"], np.float64)
        if time.ndim != 1 or len(time) != steps:
            raise ValueError(f"{path}: dimensions/time has shape {time.shape}, the field "
                             f"{steps} steps")
        conditions = _read_conditions(f["boundary_conditions"], path, n, steps)
        params = (np.asarray(f["scalars"][_attr_str(f["scalars"].attrs["field_names"][0])],
                             np.float64)
                  if "scalars" in f and len(f["scalars"].attrs.get("field_names", [])) else
                  np.zeros(n))
        first_last = np.asarray(f[dataset][0, 0, [0, -1]], np.float64)
    periodic = conditions["left"][0] == "periodic"
    append = periodic and abs(first_last[0] - first_last[1]) > 1e-6 * (1 + abs(first_last[0]))
    if append:  # a periodic grid without its end point: the wrap-around point is appended
        x = np.append(x, x[-1] + (x[-1] - x[-2]))
    dx = np.diff(x)
    if not (dx > 0).all() or np.abs(dx - dx.mean()).max() > 1e-6 * dx.mean():
        raise ValueError(f"{path}: the x grid is not uniform and increasing")
    target_steps = list(range(1, steps)) if setting == "multi" else [steps - 1]
    inputs = LazyField(path, dataset, [0], append_periodic=append)
    targets = LazyField(path, dataset, target_steps, append_periodic=append)
    (left_type, left), (right_type, right) = conditions["left"], conditions["right"]
    return OperatorData(problem, left_type, right_type, torch.from_numpy(x),
                        torch.from_numpy(time[target_steps]), torch.from_numpy(params),
                        inputs, targets, torch.from_numpy(left[:, target_steps]),
                        torch.from_numpy(right[:, target_steps]))


def _read_conditions(group, path: Path, n: int, steps: int) -> dict:
    """``{"left" | "right": (kind, values (n, steps) float64)}`` from the boundary groups."""
    found = {}
    for name, sub in group.items():
        bc = _attr_str(sub.attrs.get("bc_type", "")).lower()
        mask = np.asarray(sub["mask"], bool) if "mask" in sub else None
        if mask is None or mask.ndim != 1 or not mask.any():
            raise ValueError(f"{path}: boundary {name!r} has no usable mask")
        ends = [side for side, index in (("left", 0), ("right", -1)) if mask[index]]
        if bc == "periodic":
            for side in ("left", "right"):
                found[side] = ("periodic", np.zeros((n, steps)))
            continue
        if bc == "open":
            raise ValueError(f"{path}: boundary {name!r} is 'open' (outflow): no exact "
                             "condition to enforce; BOON needs Dirichlet, Neumann or periodic")
        if bc != "wall":
            raise ValueError(f"{path}: boundary {name!r} has an unknown bc_type {bc!r}")
        kind = _attr_str(sub.attrs.get("physguard_condition", ""))
        if kind not in ("dirichlet", "neumann"):
            raise ValueError(
                f"{path}: boundary {name!r} is a 'wall', which does not say whether the value "
                "(Dirichlet) or the flux (Neumann) is prescribed; physguard will not guess. "
                "Export with 'physguard data export', or add the group attribute "
                "physguard_condition = 'dirichlet' | 'neumann' and a physguard_values "
                "dataset (n, steps)")
        values = np.asarray(sub["physguard_values"] if "physguard_values" in sub
                            else sub["values"], np.float64).reshape(n, steps, -1)[..., 0]
        for side in ends:
            found[side] = (kind, values)
    missing = [side for side in ("left", "right") if side not in found]
    if missing:
        raise ValueError(f"{path}: no boundary condition for the {' and '.join(missing)} "
                         "end of x")
    return found


def read_well_2d(path: str | os.PathLike, problem: str, setting: str = "multi"
                 ) -> OperatorData2d:
    """Read a 2-D HDF5 file in The Well's layout as :class:`OperatorData2d` (lazy fields).

    One field: a scalar field in ``t0_fields`` (channels: time steps; ``setting`` as in
    :func:`read_well`), or a 2-component vector field in ``t1_fields`` (the cavity's
    velocity; channels step-major, ``2k + f`` component ``f`` at step ``k``; a file of two
    steps is read as single step whatever ``setting``). Each of the four walls
    (``x_left``, ``x_right``, ``y_bottom``, ``y_top``, or any group whose mask marks one end
    of one axis) must be a ``wall`` with physguard's condition attribute.

    Raises:
        FileNotFoundError: no file. ValueError: not The Well's layout, not 2-D, not exactly
        one field, a periodic or open boundary (the 2-D problems have walls), a ``wall``
        without physguard's condition, or a missing wall.
    """
    from .operator2d import FIELDS, PROBLEMS_2D

    if problem not in PROBLEMS_2D:
        raise ValueError(f"unknown 2-D problem {problem!r}; known: {PROBLEMS_2D}")
    path, f = _open(path)
    with f:
        if int(f.attrs.get("n_spatial_dims", 0)) != 2:
            raise ValueError(f"{path} is not a 2-D file in The Well's layout")
        fields = [(g, _attr_str(n)) for g in ("t0_fields", "t1_fields") if g in f
                  for n in (f[g].attrs.get("field_names", []) if len(f[g].attrs.get(
                      "field_names", [])) else list(f[g].keys()))]
        if len(fields) != 1:
            raise ValueError(f"{path} holds {len(fields)} fields ({fields}); physguard trains "
                             "on files with exactly one")
        group, name = fields[0]
        dataset = f"{group}/{name}"
        shape = f[dataset].shape
        vector = group == "t1_fields"
        if vector and (shape[-1] != 2 or shape[1] < 2):
            raise ValueError(f"{path}: a vector field needs 2 components and 2 steps, got "
                             f"{shape}")
        dims = f["dimensions"]
        grid = {a: np.asarray(dims[f"physguard_{a}"] if f"physguard_{a}" in dims else dims[a],
                              np.float64) for a in ("time", "x", "y")}
        n, steps = shape[0], shape[1]
        walls, kinds = {}, {}
        for group_name, sub in f["boundary_conditions"].items():
            bc = _attr_str(sub.attrs.get("bc_type", "")).lower()
            if bc in ("periodic", "open"):
                raise ValueError(f"{path}: boundary {group_name!r} is {bc!r}; the 2-D problems "
                                 "have Dirichlet or Neumann walls")
            kind = _attr_str(sub.attrs.get("physguard_condition", ""))
            if bc != "wall" or kind not in ("dirichlet", "neumann"):
                raise ValueError(f"{path}: boundary {group_name!r} is a {bc!r} without "
                                 "physguard_condition (Dirichlet or Neumann?); physguard "
                                 "will not guess")
            axis = [_attr_str(a) for a in sub.attrs["associated_dims"]][0]
            mask = np.asarray(sub["mask"], bool)
            wall = {("x", True): "left", ("x", False): "right", ("y", True): "bottom",
                    ("y", False): "top"}[(axis, bool(mask[0]))]
            values = np.asarray(sub["physguard_values"] if "physguard_values" in sub
                                else sub["values"], np.float64)
            walls[wall] = values.reshape(n, steps, *values.shape[2:])
            kinds[wall] = kind
    missing = [w for w in WALLS if w not in walls]
    if missing:
        raise ValueError(f"{path}: no condition for the wall(s) {missing}")
    if vector and steps == 2:  # one output step: single, whatever was asked
        setting = "single"
    target_steps = list(range(1, steps)) if setting == "multi" else [steps - 1]
    if vector:
        field = "velocity"
        inputs = LazyField(path, dataset, [0], components=True)
        targets = LazyField(path, dataset, target_steps, components=True)
        wall_values = {w: torch.from_numpy(np.moveaxis(v[:, target_steps], -1, 2).reshape(
            n, -1, v.shape[2])) for w, v in walls.items()}  # (n, S, N_wall, 2) -> (n, 2S, N)
    else:
        field = FIELDS[problem][-1] if problem == "cavity" else FIELDS[problem][0]
        inputs = LazyField(path, dataset, [0])
        targets = LazyField(path, dataset, target_steps)
        wall_values = {w: torch.from_numpy(v[:, target_steps]) for w, v in walls.items()}
    return OperatorData2d(problem, setting, field,
                          tuple(kinds[w] for w in WALLS), torch.from_numpy(grid["x"]),
                          torch.from_numpy(grid["y"]),
                          torch.from_numpy(grid["time"][target_steps]), inputs, targets,
                          **wall_values)
