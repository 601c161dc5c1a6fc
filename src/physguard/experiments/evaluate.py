"""Predict from the user's own observations with a trained run (``physguard evaluate``).

The observations file is an NPZ with arrays ``t``, ``x``, ``u`` of shape
``(n_functions, n_points)`` (the context points of each function) and ``param`` of shape
``(n_functions,)`` (each function's parameter, used for the exact solution and the conserved
total ``U(t)`` of the constraint). The output folder has the same ``metrics.json``,
``table.md`` and figures as a run, and ``predictions.npz`` in the file's function order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .._io import read_npz, run_folder
from ..blackbox import ANPPredictor
from ..pdes import ConservationProblem
from ..training import NPData, load_checkpoint
from .gpme import GPMEConfig, _inputs, evaluate_contexts

__all__ = ["load_observations", "evaluate_run"]


def load_observations(path: str | Path, cls: type[ConservationProblem]
                      ) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read and check an observations file; returns ``(param, t, x, u)`` (float64).

    Raises:
        FileNotFoundError: no file.
        ValueError: a truncated file; missing arrays; arrays that are not real numbers
            (complex, bool, text); no function or no point; ``t``, ``x``, ``u`` not all of one
            shape ``(n_functions, n_points)``; ``param`` not ``(n_functions,)``; NaN or infinite
            values; points outside the problem's domain or time range; an invalid parameter.
            Each message names the array and the offending index.
    """
    data = read_npz(path, ("t", "x", "u", "param"))
    for name in ("t", "x", "u", "param"):
        if data[name].dtype.kind not in "fiu":  # complex, bool, strings: never coerced
            raise ValueError(f"{name} must hold real numbers, got dtype {data[name].dtype}")
    arrays = {k: np.asarray(data[k], dtype=np.float64) for k in ("t", "x", "u", "param")}
    shape = arrays["u"].shape
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"u must have shape (n_functions, n_points) with at least one function "
                         f"and one point, got {shape}")
    for name in ("t", "x"):
        if arrays[name].shape != shape:
            raise ValueError(f"{name} has shape {arrays[name].shape} but u has {shape}")
    if arrays["param"].shape != (shape[0],):
        raise ValueError(f"param must have shape ({shape[0]},), got {arrays['param'].shape}")
    for name, values in arrays.items():
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"{name} holds NaN or infinite values, first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
    for name, (lo, hi) in (("t", cls.t_range), ("x", cls.domain)):
        tol = 1e-9 * (hi - lo)
        outside = (arrays[name] < lo - tol) | (arrays[name] > hi + tol)
        if outside.any():
            i = tuple(int(k) for k in np.argwhere(outside)[0])
            raise ValueError(f"{name}{list(i)} = {arrays[name][i]:g} lies outside "
                             f"[{lo:g}, {hi:g}] of {cls.__name__}")
    for i, value in enumerate(arrays["param"]):
        try:
            cls(float(value))
        except ValueError as err:
            raise ValueError(f"param[{i}] = {value:g} is invalid: {err}") from err
    return (arrays["param"], *(torch.from_numpy(arrays[k]) for k in ("t", "x", "u")))


def _run_config(meta: dict, path: Path) -> GPMEConfig:
    """The experiment configuration stored in a checkpoint's metadata, checked."""
    try:
        config = GPMEConfig(**json.loads(meta["experiment"]))
    except (KeyError, TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} holds no valid physguard experiment configuration: "
                         f"{err}") from err
    return config


def evaluate_run(problem: str, run_dir: str | Path, observations: str | Path, out: str | Path,
                 progress: bool = True, figures: bool = True,
                 overwrite: bool = False) -> list[dict]:
    """Load the ANP of ``run_dir``, predict from ``observations`` and write ``out``.

    ``out`` is a run folder (built beside its destination, moved into place when complete);
    it may be neither ``run_dir`` nor inside or around it: the trained run is never written.

    Raises:
        FileNotFoundError: no ``model.pt`` in ``run_dir`` or no observations file.
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
        ValueError: the run was trained on another problem, a bad checkpoint or observations
            file, or an ``out`` inside / around ``run_dir``.
    """
    checkpoint = Path(run_dir) / "model.pt"
    model, meta = load_checkpoint(checkpoint)
    if meta.get("problem") != problem:
        raise ValueError(f"the run in {run_dir} was trained on {meta.get('problem')!r}, "
                         f"not {problem!r}")
    config = _run_config(meta, checkpoint)
    cls = config.problem_class
    params, t, x, u = load_observations(observations, cls)
    groups = []
    for value in dict.fromkeys(params.tolist()):  # unique, in order of first appearance
        index = torch.from_numpy(np.flatnonzero(params == value))
        contexts = NPData(_inputs(cls, t[index], x[index]), u[index].float(), None, None)
        groups.append((float(value), contexts, index))
    predictor = ANPPredictor(model.to(config.torch_device()), config.n_latent)
    calibration = _front_calibration(Path(run_dir))
    with run_folder(out, overwrite, protect=(run_dir,)) as folder:
        return evaluate_contexts([predictor], config, groups, folder, progress, figures,
                                 front_calibration=calibration)


def _front_calibration(run_dir: Path) -> dict | None:
    """The shock interval's calibration of a run (``front_calibration.json``), or ``None`` for
    a run without one (runs of problems without a front, or written before it existed: their
    interval stays the posterior samples' own).

    Raises:
        ValueError: the file exists but holds no calibration scores.
    """
    path = run_dir / "front_calibration.json"
    if not path.is_file():
        return None
    try:
        calibration = json.loads(path.read_text())
        scores = calibration["scores"]
        if not all(isinstance(v, list) and v for v in scores.values()):
            raise TypeError("every method needs a non-empty list of scores")
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"{path} holds no valid shock-interval calibration: {err}") from err
    return calibration
