"""Operator-learning data in two space dimensions: the lid-driven cavity and the 2-D wave.

One sample maps an initial field on an ``Nx x Ny`` node grid to the field at a final time
(``setting="single"``) or at ``T`` times (``"multi"``), with each wall's condition type and
values per sample (and per output channel or time step), the contract BOON needs::

    inputs   (n, C_in, Nx, Ny)        targets (n, C_out, Nx, Ny)   C_out = T x fields per step
    left, right (n, C_out, Ny)        bottom, top (n, C_out, Nx)   wall values (Dirichlet:
                                                                   u; Neumann: du/dx or du/dy)

* ``cavity`` (:class:`~physguard.LidDrivenCavity`, Re = 100, lid speed 1): samples differ by
  their initial condition, a smooth random no-slip velocity (:func:`random_stream_function`,
  largest speed 0.5) released at ``t = 0`` when the lid starts; solved on ``2 (N - 1) + 1``
  nodes per side and learned on every second node (``refine=2``; the authors: 100 -> 50). Field
  ``"velocity"`` (default): ``(u, v)``, whose wall values are known before any solve (the lid
  and no slip); ``"vorticity"``: the authors' field, whose wall values are read from the
  solution. Multi-step velocity targets are step-major: channel ``2 k`` is ``u`` and
  ``2 k + 1`` is ``v`` at step ``k``.
* ``wave2d`` (:class:`~physguard.Wave2d`, unit square, speed 1): random cosine series
  (6 x 6 modes, ``a_mn ~ N(0, (1 + m^2 + n^2)^-2.5)``), insulated walls (Neumann 0).

Files are NPZ, written atomically and byte-identically; :meth:`OperatorData2d.load` gives a
specific error for a truncated, incomplete or inconsistent file.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import conditions
from .._io import read_npz, write_npz
from .._validation import check_count, check_seed
from ..pdes.cavity import LidDrivenCavity, random_stream_function
from ..pdes.two_d import Wave2d

__all__ = ["OperatorData2d", "make_operator_data_2d", "PROBLEMS_2D", "FIELDS", "FILE_PROBLEM",
           "wall_lines"]

PROBLEMS_2D = ("cavity", "wave2d")
#: The problem of data read from a user's file (``physguard run file --data F.h5``): any
#: fields (their names joined by commas in ``field``), any walls.
FILE_PROBLEM = "file"
FIELDS = {"cavity": ("velocity", "vorticity"), "wave2d": ("u",)}
#: Each problem's condition on the walls left, right, bottom, top.
WALL_TYPES_2D = {"cavity": ("dirichlet",) * 4, "wave2d": ("neumann",) * 4}
WALLS = conditions.WALLS  # the wall table lives in physguard.conditions
_ARRAYS = ("x", "y", "t", "inputs", "targets", *WALLS)
_FORMAT_VERSION = 1
_T_FINAL = 1.0


@dataclass(frozen=True)
class OperatorData2d:
    """Inputs, targets and wall conditions of 2-D operator samples (shapes: module docstring).

    Raises:
        ValueError: inconsistent shapes, an unknown problem, setting, field or wall type, or
            NaN / inf values.
    """

    problem: str
    setting: str
    field: str
    wall_types: tuple[str, str, str, str]
    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    bottom: torch.Tensor
    top: torch.Tensor

    def __post_init__(self):
        if self.problem not in (*PROBLEMS_2D, FILE_PROBLEM):
            raise ValueError(f"unknown 2-D problem {self.problem!r}; known: "
                             f"{(*PROBLEMS_2D, FILE_PROBLEM)}")
        if self.setting not in ("single", "multi"):
            raise ValueError(f"setting must be 'single' or 'multi', got {self.setting!r}")
        if self.problem == FILE_PROBLEM:
            if not isinstance(self.field, str) or not self.field:
                raise ValueError(f"field must name the file's field(s), got {self.field!r}")
        elif self.field not in FIELDS[self.problem]:
            raise ValueError(f"field of {self.problem} must be one of {FIELDS[self.problem]}, "
                             f"got {self.field!r}")
        kinds = tuple(self.wall_types)
        if len(kinds) != 4 or any(k not in ("dirichlet", "neumann", "periodic") for k in kinds):
            raise ValueError(f"wall_types must be 4 of 'dirichlet' / 'neumann' / 'periodic', "
                             f"got {self.wall_types}")
        for pair in (kinds[:2], kinds[2:]):
            if (pair[0] == "periodic") != (pair[1] == "periodic"):
                raise ValueError(f"a periodic wall needs its opposite wall periodic too, got "
                                 f"{self.wall_types}")
        n, c, nx, ny = self.targets.shape
        expected = {"x": (nx,), "y": (ny,), "left": (n, c, ny), "right": (n, c, ny),
                    "bottom": (n, c, nx), "top": (n, c, nx)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got "
                                 f"{tuple(getattr(self, name).shape)}")
        if c % len(self.t):
            raise ValueError(f"targets must have T x fields channels (T = {len(self.t)} "
                             f"times), got {c}")
        if len(self.inputs.shape) != 4 or self.inputs.shape[0] != n \
                or tuple(self.inputs.shape[2:]) != (nx, ny):
            raise ValueError(f"inputs must have shape ({n}, C_in, {nx}, {ny}), got "
                             f"{tuple(self.inputs.shape)}")
        for name in _ARRAYS:
            array = getattr(self, name)
            lazy = name in ("inputs", "targets") and hasattr(array, "subset")
            if not (isinstance(array, torch.Tensor) or lazy):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(array).__name__}")
            if lazy:
                continue
            if array.is_complex() or not torch.is_floating_point(array):
                raise TypeError(f"{name} must be real floating point, got {array.dtype}")
            if not bool(torch.isfinite(array).all()):
                raise ValueError(f"{name} holds NaN or infinite values")
        for name in ("x", "y"):
            grid = getattr(self, name).to(torch.float64)
            step = grid.diff()
            if not bool((step > 0).all()) or \
                    float((step - step.mean()).abs().max()) > 1e-4 * float(step.mean()):
                raise ValueError(f"{name} must be a uniform increasing grid (the operators and "
                                 "the Neumann stencils assume one)")

    def __len__(self) -> int:
        return self.targets.shape[0]

    def wall_conditions(self) -> dict[str, tuple[str, torch.Tensor]]:
        """``{wall: (kind, values (n, C, N_wall))}`` for left, right, bottom, top."""
        return {wall: (kind, getattr(self, wall))
                for wall, kind in zip(WALLS, self.wall_types, strict=True)}

    @property
    def fields(self) -> int:
        """Fields per output time (the velocity: 2; channel ``k * fields + f``)."""
        return self.targets.shape[1] // len(self.t)

    def per_step(self, values: torch.Tensor) -> torch.Tensor:
        """Split step-major channels: ``(n, T * fields, ...)`` -> ``(n, T, fields, ...)``
        (targets, wall values or predictions of this data)."""
        return values.reshape(values.shape[0], len(self.t), self.fields, *values.shape[2:])

    @property
    def domain(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return (float(self.x[0]), float(self.x[-1])), (float(self.y[0]), float(self.y[-1]))

    def subset(self, index) -> OperatorData2d:
        """The samples selected by ``index`` (a slice or an index tensor); lazy fields
        (:class:`~physguard.datasets.well.LazyField`) stay lazy."""
        parts = {k: (getattr(self, k).subset(index) if hasattr(getattr(self, k), "subset")
                     else getattr(self, k)[index]) for k in ("inputs", "targets", *WALLS)}
        return OperatorData2d(self.problem, self.setting, self.field, self.wall_types,
                              self.x, self.y, self.t, **parts)

    def in_memory(self) -> OperatorData2d:
        """The same samples with lazy fields read into tensors."""
        loaded = {k: (getattr(self, k).load() if hasattr(getattr(self, k), "load")
                      else getattr(self, k)) for k in ("inputs", "targets")}
        return dataclasses.replace(self, **loaded)

    def save(self, path: str | os.PathLike) -> None:
        """Write an NPZ file atomically (arrays, names, wall types, format version)."""
        arrays = {k: getattr(self, k).numpy() for k in _ARRAYS}
        write_npz(path, dict(problem=np.array(self.problem), setting=np.array(self.setting),
                             field=np.array(self.field), wall_types=np.array(self.wall_types),
                             version=np.array(_FORMAT_VERSION), **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> OperatorData2d:
        """Read a file written by :meth:`save`.

        Raises:
            FileNotFoundError: no file; ValueError: truncated, incomplete or inconsistent file.
        """
        contents = read_npz(path, ("problem", "setting", "field", "wall_types", *_ARRAYS))
        try:
            names = [str(contents[k]) for k in ("problem", "setting", "field")]
            wall_types = tuple(str(k) for k in contents["wall_types"])
            complex_arrays = [k for k in _ARRAYS if np.iscomplexobj(contents[k])]
            if complex_arrays:
                raise ValueError(f"{complex_arrays} hold complex values")
            arrays = {k: torch.from_numpy(np.asarray(contents[k], dtype=np.float64))
                      for k in _ARRAYS}
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path} holds arrays of the wrong kind: {err}") from err
        return cls(*names, wall_types, **arrays)


def _cavity_sample(args) -> dict[str, np.ndarray]:
    """One cavity sample (NumPy only, so it runs in a worker process)."""
    seed, index, n_points, times, field, (re_low, re_high), refine = args
    n_solve = refine * (n_points - 1) + 1
    rng = np.random.default_rng([seed, index])
    psi0 = random_stream_function(n_solve, 4, 0.5, rng)
    cavity = LidDrivenCavity(re_low if re_low == re_high else rng.uniform(re_low, re_high))
    omega = cavity.simulate(n_solve, np.concatenate([[0.0], times]), psi0)
    if field == "vorticity":
        fields = omega[:, None, ::refine, ::refine]
    else:
        laplacian = cavity.laplacian_eigenvalues(n_solve)
        fields = np.stack([np.stack(cavity.velocity(cavity.stream_function(w, laplacian)))
                           for w in omega])[:, :, ::refine, ::refine]
    return {"inputs": fields[0], "targets": np.concatenate(fields[1:])}


def wall_lines(fields: torch.Tensor) -> dict[str, torch.Tensor]:
    """The values of ``fields (..., Nx, Ny)`` on each wall (views): ``{wall: (..., N_wall)}``
    for left, right, bottom, top."""
    return {w: fields.select(axis - 2, index) for w, (axis, index) in conditions.WALL_AXIS.items()}


def make_operator_data_2d(problem: str, n_samples: int, setting: str = "single",
                          field: str | None = None, n_points: int = 51, n_steps: int = 25,
                          seed: int = 0, progress: bool = True,
                          workers: int | None = None,
                          reynolds: tuple[float, float] = (100.0, 100.0),
                          t_final: float = _T_FINAL, refine: int = 2) -> OperatorData2d:
    """Generate ``n_samples`` samples of ``problem`` on an ``n_points x n_points`` grid.

    Args:
        problem: ``"cavity"`` or ``"wave2d"``.
        setting: ``"single"`` (the field at ``t = t_final``) or ``"multi"`` (``n_steps``
            snapshots, ``t = t_final / n_steps, ..., t_final``).
        field: ``"velocity"`` (cavity default) or ``"vorticity"``; ``"u"`` for the wave.
        n_points: nodes per side of the learning grid (the cavity is solved on twice as fine
            a grid).
        seed: samples are ``seed``-determined, each from its own generator, so a sample does
            not depend on how many are made or in which process.
        workers: processes for the cavity solves (default: the CPU count for 16 samples or
            more, else 1); a progress bar counts the samples.
        reynolds: the cavity's ``(low, high)`` Reynolds numbers, ``Re ~ U[low, high]`` per
            sample (default: 100 for all; a range beyond it gives out-of-distribution data).
        t_final: the last time (units of ``L / U`` for the cavity); default 1, the authors'.
        refine: the cavity is solved on ``refine (N - 1) + 1`` nodes per side and sampled on
            every ``refine``-th (default 2, the authors' 100 -> 50). With ``refine=1`` the
            velocities are the solver's own central differences of the stream function, so
            their central-difference divergence vanishes at every interior node to round-off
            (:func:`~physguard.constraints.central_divergence`).

    Raises:
        ValueError: unknown problem, setting or field; sizes below their minimum; a
            non-finite or non-positive ``t_final``.
    """
    if problem not in PROBLEMS_2D:
        raise ValueError(f"unknown 2-D problem {problem!r}; known: {PROBLEMS_2D}")
    field = field or FIELDS[problem][0]
    if field not in FIELDS[problem]:
        raise ValueError(f"field of {problem} must be one of {FIELDS[problem]}, got {field!r}")
    if setting not in ("single", "multi"):
        raise ValueError(f"setting must be 'single' or 'multi', got {setting!r}")
    n_samples, n_points, n_steps = (check_count("n_samples", n_samples),
                                    check_count("n_points", n_points, 5),
                                    check_count("n_steps", n_steps))
    seed = check_seed(seed)
    t_final = float(t_final)
    if not (np.isfinite(t_final) and t_final > 0):
        raise ValueError(f"t_final must be finite and > 0, got {t_final}")
    times = np.array([t_final]) if setting == "single" \
        else np.linspace(t_final / n_steps, t_final, n_steps)
    x = torch.linspace(0.0, 1.0, n_points, dtype=torch.float64)
    if problem == "cavity":
        low, high = (float(r) for r in reynolds)
        if not 0 < low <= high:
            raise ValueError(f"reynolds must be (low, high) with 0 < low <= high, got "
                             f"{reynolds}")
        refine = check_count("refine", refine)
        jobs = [(seed, i, n_points, times, field, (low, high), refine)
                for i in range(n_samples)]
        workers = workers or (os.cpu_count() or 1 if n_samples >= 16 else 1)
        bar = tqdm(total=n_samples, desc="cavity samples", unit="sample", disable=not progress)
        if workers > 1:
            # The platform's default start method (fork on Linux, as torch's DataLoader): a
            # script that calls this needs no ``if __name__ == "__main__"`` guard there. The
            # workers run NumPy / SciPy only.
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                samples = []
                for sample in pool.map(_cavity_sample, jobs, chunksize=4):
                    samples.append(sample)
                    bar.update()
        else:
            samples = []
            for job in jobs:
                samples.append(_cavity_sample(job))
                bar.update()
        bar.close()
        inputs = torch.from_numpy(np.stack([s["inputs"] for s in samples]))
        targets = torch.from_numpy(np.stack([s["targets"] for s in samples]))
        walls = {k: v.clone() for k, v in wall_lines(targets).items()}
    else:
        inputs, targets = [], []
        t = torch.as_tensor(times, dtype=torch.float64)
        for i in range(n_samples):
            generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + i)
            wave = Wave2d.random(n_modes=6, decay=2.5, generator=generator)
            inputs.append(wave.solution(0.0, x[:, None], x[None, :])[None])
            targets.append(wave.solution(t[:, None, None], x[None, :, None], x[None, None, :]))
        inputs, targets = torch.stack(inputs), torch.stack(targets)
        walls = {k: torch.zeros_like(v) for k, v in wall_lines(targets).items()}
    return OperatorData2d(problem, setting, field, WALL_TYPES_2D[problem], x, x.clone(),
                          torch.as_tensor(times, dtype=torch.float64), inputs, targets, **walls)
