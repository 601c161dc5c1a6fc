"""BOON in two space dimensions: ``physguard run cavity`` and ``physguard run wave2d``.

Trains a plain :class:`~physguard.FNO2d` (single step) or :class:`~physguard.SpaceTimeFNO2d`
(multi step) and the same operator corrected by BOON on all four walls, with the same seed,
data and budget, evaluates both on held-out samples and writes the run folder (complete or
absent, :func:`physguard._io.run_folder`)::

    config.json  metrics.json  table.md  fno.pt  boon.pt  training.json  timing.json
    fields.png  boundary.png  [error_over_time.png  animation.gif: multi step, the default]

``metrics.json`` is a list of records ``{"model": "FNO" | "BOON", "rel_l2",
"boundary_error", "bRMSE", "cRMSE", "fRMSE_low", "fRMSE_mid", "fRMSE_high",
"boundary_error_<wall>", ...}``: relative L2 over the whole field; the mean absolute violation
of each wall's condition (Dirichlet value; Neumann: the 2nd-order one-sided stencil along the
normal against the flux); ``bRMSE``, ``cRMSE`` and ``fRMSE_*`` exactly as PDEBench's
``metric_func`` defines them (Takamoto et al. 2022; :func:`physguard.metrics.pdebench_metrics`:
low shells ``k < 4``, mid ``4 <= k < 12``, high ``k >= 12``). Multi step:
``"rel_l2_per_step"``, the relative L2 of each output time over all of its fields (the
velocity's ``u`` and ``v`` together).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .. import metrics as M
from .._distributed import run_folder_on_main, world
from .._io import resolve_device, write_json, write_text
from .._validation import check_counts
from ..boundary import BOON
from ..conditions import condition
from ..conditions import wall_residuals as residuals_nd
from ..datasets.operator2d import (
    FIELDS,
    FILE_PROBLEM,
    PROBLEMS_2D,
    WALL_TYPES_2D,
    WALLS,
    OperatorData2d,
    make_operator_data_2d,
)
from ..models.fno_nd import FNO2d, SpaceTimeFNO2d
from ..training import fit_operator
from .boon import boon_variant_note, resolve_boon_options, split_file_data

__all__ = ["BOON2dConfig", "run_boon_2d", "metrics_2d", "EXACT_OUTPUT_ONLY"]

MODELS = ("FNO", "BOON")

#: ``(problem, field)`` whose runs use BOON's exact output without the per-layer kernel
#: correction by default. The velocity cavity's walls (lid speed and no slip) are the same in
#: every sample, so the corrected layers' wall rows are the same constants in every sample;
#: measured on seeds 1 and 2 at the CPU defaults (100 epochs), the exact output alone was 1.21x
#: and 1.14x more accurate than the FNO and the full correction 1.08x and 1.36x less
#: (``benchmarks/results/boon_2d.md``). The same holds for the multi-step velocity (two fields
#: per step; the bench's sizes, seeds 1 and 2): the exact output alone 1.39x and 1.43x ahead
#: of the FNO, the corrected kernels 8.8x and 2.4x behind it.
EXACT_OUTPUT_ONLY = {("cavity", "velocity")}

#: ``(problem, setting, field)`` whose BOON is, by default, the exact output only with each
#: output time's Dirichlet wall values written into its input (``kernel_correction=False``,
#: ``input_walls=True``; see :class:`~physguard.BOON`). The multi-step vorticity cavity's wall
#: values are read from the solution and differ between samples and steps. At the bench's
#: sizes, seeds 1 and 2, relative L2: FNO 4.90e-2 / 1.427e-1, BOON 2.86e-2 / 3.54e-2, this
#: 2.24e-2 / 2.61e-2, with the corrected kernels 2.78e-2 / 4.15e-2
#: (``benchmarks/results/boon_interior.md``, section 8).
WALL_INPUT_RUNS_2D = {("cavity", "multi", "vorticity")}


@dataclasses.dataclass(frozen=True)
class BOON2dConfig:
    """Sizes of a 2-D BOON run; :meth:`default` fits about 15 minutes on 2 CPU cores.

    ``kernel_correction``: BOON's per-layer correction (see :class:`~physguard.BOON`); ``False``
    trains and evaluates BOON with its exact output only. Default (``None``): the correction,
    except for the data in :data:`EXACT_OUTPUT_ONLY` (the velocity cavity, both settings) and
    :data:`WALL_INPUT_RUNS_2D` (the multi-step vorticity cavity).
    ``input_walls``: write the output's Dirichlet wall values into BOON's input (see
    :class:`~physguard.BOON`; multi-step: each step's, one input field only). Default
    (``None``): only for the data in :data:`WALL_INPUT_RUNS_2D`.

    Raises:
        ValueError: an unknown problem, setting or field, or a size below 1;
            ``input_walls`` on a problem without Dirichlet walls or on the multi-step
            velocity.
    """

    problem: str
    setting: str = "single"
    field: str = ""
    n_train: int = 160
    n_test: int = 40
    n_points: int = 33
    n_steps: int = 25
    modes: int = 8
    modes_t: int = 6
    width: int = 20
    n_layers: int = 4
    time_padding: int = 6
    time_padding_side: str = "end"
    projection_width: int = 128
    epochs: int = 100
    batch_size: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_step: int = 100
    lr_gamma: float = 0.5
    seed: int = 0
    device: str = "auto"
    kernel_correction: bool | None = None
    input_walls: bool | None = None

    def __post_init__(self):
        if self.problem not in (*PROBLEMS_2D, FILE_PROBLEM):
            raise ValueError(f"unknown 2-D problem {self.problem!r}; known: "
                             f"{(*PROBLEMS_2D, FILE_PROBLEM)}")
        if self.setting not in ("single", "multi"):
            raise ValueError(f"setting must be 'single' or 'multi', got {self.setting!r}")
        if self.problem == FILE_PROBLEM:  # a user's file: its fields and walls
            if not self.field:
                raise ValueError("a file run names the file's field(s) in field")
            field, wall_types = self.field, ("dirichlet",)
        else:
            field = self.field or FIELDS[self.problem][0]
            if field not in FIELDS[self.problem]:
                raise ValueError(f"field of {self.problem} must be one of "
                                 f"{FIELDS[self.problem]}, got {field!r}")
            wall_types = WALL_TYPES_2D[self.problem]
        object.__setattr__(self, "field", field)
        walls_in = (self.problem, self.setting, field) in WALL_INPUT_RUNS_2D
        resolve_boon_options(self, not walls_in and (self.problem, field)
                             not in EXACT_OUTPUT_ONLY, walls_in, wall_types)
        if self.input_walls and self.setting == "multi" and (field == "velocity"
                                                             or "," in field):
            raise ValueError("input_walls in the multi-step setting writes each step's wall "
                             "values into the one input field; the velocity has two")
        check_counts(self, exempt=("seed", "time_padding"))

    @classmethod
    def default(cls, problem: str, setting: str = "multi", **overrides) -> BOON2dConfig:
        """CPU defaults (about 15 minutes on 2 cores for both models together). The default
        setting is the authors' map, ``u(x, y, 0)`` -> 25 snapshots (the one whose error over
        time and animation the run shows); the cavity's default field is the velocity."""
        settings = dict(problem=problem, setting=setting)
        if setting == "multi":  # the 3-D (t, x, y) operator: smaller, 4 x width projection
            settings.update(n_train=80, n_test=20, epochs=30, width=12, modes=6,
                            projection_width=48)
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def paper(cls, problem: str, setting: str = "multi", **overrides) -> BOON2dConfig:
        """The authors' cavity notebook (``shared/reference/two_d.md``): 1000 / 200 samples,
        50 x 50 (51 nodes), T = 25, 8 modes, width 20, 500 epochs, batch 10, step decay 0.5
        every 100 epochs; the multi-step cavity learns their field, the vorticity, unless
        ``field`` is given. For a GPU."""
        settings = dict(problem=problem, setting=setting, n_train=1000, n_test=200,
                        n_points=51, n_steps=25, modes=8, modes_t=8, width=20, epochs=500,
                        batch_size=10, lr_step=100, lr_gamma=0.5)
        settings.update(overrides)
        if problem == "cavity" and setting == "multi":
            settings.setdefault("field", "vorticity")
        return cls(**settings)

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


def _conditions(data: OperatorData2d, index, device, dtype) -> dict:
    return {wall: condition(kind, getattr(data, wall)[index].to(device, dtype))
            for wall, kind in zip(WALLS, data.wall_types, strict=True)}


def _apply(model, name: str, data: OperatorData2d, index, inputs, output_dtype=None,
           kernel_correction: bool = True, input_walls: bool = False):
    if name == "FNO":
        out = model(inputs)
        return out if output_dtype is None else out.to(output_dtype)
    conditions = _conditions(data, index, inputs.device, output_dtype or inputs.dtype)
    return BOON(model, **conditions, kernel_correction=kernel_correction,
                input_walls=input_walls)(inputs, output_dtype=output_dtype)


def _model(config: BOON2dConfig, data: OperatorData2d):
    c_in, c_out = data.inputs.shape[1], data.targets.shape[1]
    if config.setting == "single":
        return FNO2d(c_in, c_out, config.modes, config.width, config.n_layers,
                     domain=data.domain, projection_width=config.projection_width)
    return SpaceTimeFNO2d(c_in, len(data.t), (config.modes, config.modes, config.modes_t),
                          config.width, config.n_layers, domain=data.domain,
                          t_range=(float(data.t[0]), float(data.t[-1])),
                          time_padding=config.time_padding,
                          time_padding_side=config.time_padding_side,
                          projection_width=config.projection_width, fields=data.fields)


def train_operator_2d(name: str, train: OperatorData2d, config: BOON2dConfig,
                      progress: bool = True, loss=None):
    """Train ``"FNO"`` or ``"BOON"`` from the seed's initial weights; relative L2 loss
    unless ``loss`` is given (see :func:`~physguard.training.fit_operator`)."""
    device = config.torch_device()
    torch.manual_seed(config.seed)
    model = _model(config, train).to(device)

    def apply(m, index, x):
        return _apply(m, name, train, index, x, kernel_correction=config.kernel_correction,
                      input_walls=config.input_walls)

    losses = fit_operator(model, apply, train.inputs, train.targets, config, name, progress,
                          loss)
    return model.eval(), losses


def split_data_2d(config: BOON2dConfig, progress: bool = True):
    """Generate the config's ``n_train + n_test`` samples (seed ``config.seed``) and split
    them into training and test :class:`OperatorData2d`."""
    data = make_operator_data_2d(config.problem, config.n_train + config.n_test,
                                 config.setting, config.field, config.n_points,
                                 config.n_steps, seed=config.seed, progress=progress)
    return data.subset(slice(0, config.n_train)), data.subset(slice(config.n_train, None))


def train_and_evaluate_2d(name: str, train: OperatorData2d, test: OperatorData2d,
                          config: BOON2dConfig, progress: bool = True, loss=None):
    """Train ``name`` (``"FNO"`` or ``"BOON"``) and evaluate it on ``test``: returns
    ``(model, losses per epoch, prediction, metrics record)``."""
    model, losses = train_operator_2d(name, train, config, progress, loss)
    prediction = predict_2d(model, name, test, kernel_correction=config.kernel_correction,
                            input_walls=config.input_walls)
    return model, losses, prediction, metrics_2d(name, prediction, test)


@torch.no_grad()
def predict_2d(model, name: str, data: OperatorData2d, batch: int = 20,
               kernel_correction: bool = True, input_walls: bool = False) -> torch.Tensor:
    """Predictions ``(n, C_out, Nx, Ny)`` in float64 (BOON's wall values set in float64;
    ``kernel_correction``, ``input_walls``: see :class:`~physguard.BOON`)."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data), batch):
        index = torch.arange(start, min(start + batch, len(data)))
        out.append(_apply(model, name, data, index, data.inputs[index].float().to(device),
                          torch.float64, kernel_correction, input_walls).cpu())
    return torch.cat(out)


def wall_residuals(pred: torch.Tensor, data: OperatorData2d, index=slice(None)
                   ) -> dict[str, torch.Tensor]:
    """Signed violation of each wall's condition along the wall, ``{wall: (B, C, N_wall)}``:
    Dirichlet ``u - g``; Neumann ``stencil(u) - g`` with the 2nd-order one-sided stencil
    along the wall normal (the derivative along the axis, as BOON's ``flux``). ``index``
    picks the samples of ``data`` that ``pred`` holds. Differentiable
    (:func:`physguard.conditions.wall_residuals`)."""
    (ax, bx), (ay, by) = data.domain
    spacing = ((bx - ax) / (pred.shape[-2] - 1), (by - ay) / (pred.shape[-1] - 1))
    return residuals_nd(pred, _conditions(data, index, pred.device, pred.dtype), spacing)


def wall_errors(pred: torch.Tensor, data: OperatorData2d) -> dict[str, torch.Tensor]:
    """Mean absolute violation of each wall's condition per sample, away from the corners
    (where two walls' conditions meet and only one can hold), ``{wall: (n,)}``."""
    return {wall: r[..., 1:-1].abs().flatten(1).mean(1)
            for wall, r in wall_residuals(pred, data).items()}


def metrics_2d(name: str, pred: torch.Tensor, data: OperatorData2d) -> dict:
    """The metrics record of one model on ``data`` (keys: module docstring)."""
    truth = data.targets
    walls = wall_errors(pred, data)
    err = pred - truth
    record = {
        "model": name,
        "rel_l2": float((err.flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).mean()),
        "boundary_error": float(torch.stack(list(walls.values())).mean()),
        "MSE": float(err.square().mean()),
    }
    record.update({f"boundary_error_{w}": float(v.mean()) for w, v in walls.items()})
    pdebench = M.pdebench_metrics(pred, truth, lengths=tuple(
        float(g[-1] - g[0]) for g in (data.x, data.y)))
    record.update({k: pdebench[k] for k in ("bRMSE", "cRMSE", "fRMSE_low", "fRMSE_mid",
                                            "fRMSE_high")})
    if data.setting == "multi":
        # a step's fields together: (n, T)
        per_step = (data.per_step(err).flatten(2).norm(dim=2)
                    / data.per_step(truth).flatten(2).norm(dim=2))
        record["rel_l2_per_step"] = per_step.mean(0).tolist()
    return record


def markdown_table_2d(records: list[dict], config: BOON2dConfig, seconds: dict,
                      test: OperatorData2d | None = None) -> str:
    keys = ["rel_l2", "boundary_error", "bRMSE", "cRMSE", "fRMSE_low", "fRMSE_mid",
            "fRMSE_high"]
    nx, ny = (len(test.x), len(test.y)) if test is not None else (config.n_points,) * 2
    lines = [f"# {config.problem} ({config.setting}-step, field {config.field}): FNO vs BOON",
             "", f"{len(test) if test is not None else config.n_test} test samples, "
             f"{nx} x {ny} nodes, "
             f"{config.epochs} epochs, width {config.width}, {config.modes} modes. "
             "boundary_error: mean |value error| (Dirichlet) or |flux error| of the 2nd-order "
             "one-sided stencil (Neumann) over the four walls, corners excluded.", "",
             *boon_variant_note(config),
             "| model | " + " | ".join(keys) + " | train (s) |", "|---|" + "---|" * (len(keys) + 1)]
    for r in records:
        lines.append(f"| {r['model']} | " + " | ".join(f"{r[k]:.3e}" for k in keys)
                     + f" | {seconds[r['model']]:.0f} |")
    return "\n".join(lines) + "\n"


def run_boon_2d(config: BOON2dConfig, out: str | Path, progress: bool = True,
                figures: bool = True, overwrite: bool = False,
                data: OperatorData2d | None = None, source: dict | None = None
                ) -> list[dict]:
    """Generate the data, train FNO and BOON, evaluate, and write the run folder ``out``.

    ``data``: train and test on these samples instead (e.g.
    :func:`~physguard.datasets.well.read_well`; lazy fields are read batch by batch): the
    last ``max(1, min(n_test, len(data) // 5))`` samples are the test set; ``config.json``
    records the sizes used and the data (``source``: the file's record).

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
        ValueError: an unusable ``out`` or device (before any work is done).
    """
    config.torch_device()
    progress = progress and world()[0] == 0
    with run_folder_on_main(out, overwrite) as folder:  # torchrun: rank 0 writes
        from ..datasets.well import data_note

        started = time.perf_counter()
        if data is None:
            train, test = split_data_2d(config, progress)
            summary = None
        else:
            train, test, config, summary = split_file_data(data, config, source)
        write_json(folder / "config.json", {**dataclasses.asdict(config),
                                            **({"data": summary} if summary else {})})
        data_seconds = time.perf_counter() - started
        records, predictions, history, seconds = [], {}, {}, {}
        for name in MODELS:
            tic = time.perf_counter()
            model, history[name], predictions[name], record = train_and_evaluate_2d(
                name, train, test, config, progress)
            seconds[name] = time.perf_counter() - tic
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save({"model": name, "config": dataclasses.asdict(config),
                        "state_dict": state}, folder / f"{name.lower()}.pt")
            records.append(dict(record, train_seconds=seconds[name]))
        write_json(folder / "training.json", history)
        write_json(folder / "metrics.json", records)
        write_text(folder / "table.md", markdown_table_2d(records, config, seconds, test)
                   + data_note(summary))
        if figures:
            from ..plots import boon_2d_figures

            boon_2d_figures(folder, test, predictions, records)
        write_json(folder / "timing.json", {"data_seconds": data_seconds,
                                            "train_seconds": seconds,
                                            "total_seconds": time.perf_counter() - started})
        return records
