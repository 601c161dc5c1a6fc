"""BOON vs FNO on boundary-value benchmarks (Saad et al., ICLR 2023, Sec. 4).

:func:`run_boon` trains a plain FNO and a BOON-corrected FNO with the same seed, architecture
and budget, evaluates both on held-out samples and writes the run folder::

    config.json, fno.pt, boon.pt        configuration and weights (weights_only=True loadable)
    training.json                       loss per epoch for both models
    metrics.json                        [{"model": "FNO" | "BOON", "rel_l2": ..., ...}]
    table.md                            the comparison table
    prediction.png, error.png, boundary.png (and error_over_time.png for --setting multi)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import metrics as M
from .._distributed import run_folder_on_main, world
from .._io import atomic_path, resolve_device, write_json, write_text
from .._validation import check_counts
from ..boundary import BOON
from ..conditions import condition
from ..datasets.operator import OPERATOR_PROBLEMS, OperatorData, make_operator_data
from ..models.fno import FNO1d, SpaceTimeFNO1d, time_pad_split
from ..training import fit_operator

__all__ = ["BOONConfig", "run_boon", "MODELS", "WALL_INPUT_RUNS"]

MODELS = ("FNO", "BOON")

#: Zero steps appended to the time axis of the multi-step operator, per problem, chosen from
#: ``benchmarks/time_padding.py`` (``benchmarks/results/time_padding.md``): padding lowers
#: both models' error where the solution decays or diffuses over the window (heat: BOON 2.2x,
#: Burgers-Dirichlet 2.0x; periodic Burgers about level) and doubled both errors on Stokes'
#: second problem, whose wall forcing is periodic in time.
TIME_PADDING = {"heat-neumann": 6, "burgers-dirichlet": 6, "burgers-periodic": 6, "stokes": 0}

#: ``(problem, setting)`` whose BOON is, by default, the exact output only
#: (``kernel_correction=False``) with the output's Dirichlet wall values written into the
#: input (``input_walls=True``). Stokes' wall value at the output time, ``cos(omega t)``,
#: differs between samples while the input's is 1 in all of them. Measured on seeds 1 and 2
#: (the runs use 0), 150 epochs, relative L2: FNO 5.09e-2 / 4.80e-2, BOON 4.49e-2 / 6.48e-2,
#: this 3.55e-2 / 1.82e-2; with the corrected kernels the wall values in the input made it
#: worse (8.36e-2 / 6.37e-2) (``benchmarks/results/boon_interior.md``, section 6). In the
#: multi-step setting each output time's wall values go into the input repeated over the times;
#: at the bench's sizes, seeds 1 and 2: FNO 0.757 / 0.781, BOON 0.697 / 0.731, this 0.168 /
#: 0.125, with the corrected kernels 0.235 / 0.692 (section 8).
WALL_INPUT_RUNS = {("stokes", "single"), ("stokes", "multi")}


def resolve_boon_options(config, kernel_correction: bool, input_walls: bool,
                         wall_types) -> None:
    """Set a frozen run config's ``kernel_correction`` / ``input_walls`` left at ``None`` to
    the given defaults, and check the values given (shared by the 1-D and 2-D configs).

    Raises:
        ValueError: a value other than True, False or None; ``input_walls`` where none of
            ``wall_types`` is ``"dirichlet"``.
    """
    for name, default in (("kernel_correction", kernel_correction),
                          ("input_walls", input_walls)):
        value = getattr(config, name)
        if value is None:
            object.__setattr__(config, name, default)
        elif not isinstance(value, bool):
            raise ValueError(f"{name} must be True, False or None, got {value!r}")
    if config.input_walls and "dirichlet" not in wall_types:
        raise ValueError(f"input_walls writes Dirichlet wall values into the input; "
                         f"{config.problem} has none ({' / '.join(wall_types)})")


@dataclass(frozen=True)
class BOONConfig:
    """Settings of a BOON experiment; defaults fit 2 CPU cores in a few minutes.

    Attributes:
        problem: ``"heat-neumann"``, ``"stokes"``, ``"burgers-dirichlet"`` or
            ``"burgers-periodic"``.
        setting: ``"single"`` (``u(x, 0) -> u(x, t_final)``) or ``"multi"`` (the next
            ``n_steps`` snapshots as output channels).
        n_train, n_test: samples (paper notebooks: 500 / 100 single, 1000 / 200 multi).
        n_points: grid points (notebooks: 500).
        modes, width, n_layers: FNO size (notebooks: 16 / 64 / 4 single, 12 / 32 / 4 multi).
            The single-step setting uses :class:`~physguard.FNO1d`, the multi-step setting a
            :class:`~physguard.SpaceTimeFNO1d` with ``modes_t`` temporal modes, its time
            axis padded by ``time_padding`` zero steps on ``time_padding_side``.
        epochs, batch_size, lr, weight_decay, lr_step, lr_gamma: Adam with a step schedule
            (notebooks: 500 epochs, batch 20, 1e-3, 1e-4, halve every 50).
        seed: seeds the data, the (shared) initial weights and the batch order.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        kernel_correction, input_walls: the options of :class:`~physguard.BOON` for the
            BOON model. Default (``None``): the per-layer correction and the input as given,
            except for the runs in :data:`WALL_INPUT_RUNS` (exact output only, the output's
            Dirichlet wall values written into the input).
    """

    problem: str = "heat-neumann"
    setting: str = "single"
    n_train: int = 200
    n_test: int = 50
    n_points: int = 128
    n_steps: int = 25
    modes: int = 16
    modes_t: int = 8
    width: int = 32
    n_layers: int = 4
    time_padding: int = 0
    time_padding_side: str = "end"
    epochs: int = 150
    batch_size: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_step: int = 50
    lr_gamma: float = 0.5
    seed: int = 0
    device: str = "auto"
    kernel_correction: bool | None = None
    input_walls: bool | None = None

    def __post_init__(self):
        if self.problem not in (*OPERATOR_PROBLEMS, "file"):
            raise ValueError(f"unknown problem {self.problem!r}; known: "
                             f"{', '.join(OPERATOR_PROBLEMS)}, file (a user's file)")
        if self.setting not in ("single", "multi"):
            raise ValueError(f"setting must be 'single' or 'multi', got {self.setting!r}")
        check_counts(self, exempt=("seed", "time_padding"))
        time_pad_split(self.time_padding, self.time_padding_side)
        walls_in = (self.problem, self.setting) in WALL_INPUT_RUNS
        problem = OPERATOR_PROBLEMS.get(self.problem)
        resolve_boon_options(self, not walls_in, walls_in,
                             (problem.left_type, problem.right_type) if problem is not None
                             else ("dirichlet",))  # a file's walls: BOON checks them

    @classmethod
    def default(cls, problem: str, setting: str = "single", **overrides) -> BOONConfig:
        """CPU defaults: the multi-step space-time operator is smaller (width 20, 50 epochs)
        so that both models train within 10 minutes on 2 cores, and its time axis is padded
        as measured per problem (``TIME_PADDING``)."""
        settings = dict(problem=problem, setting=setting)
        if setting == "multi":
            settings.update(width=20, epochs=50, time_padding=TIME_PADDING.get(problem, 0))
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def paper(cls, problem: str, setting: str = "single", **overrides) -> BOONConfig:
        """The notebooks' sizes (see ``shared/reference/boon.md``): for a GPU."""
        if setting == "single":
            sizes = dict(n_train=500, n_test=100, modes=16, width=64)
        else:
            sizes = dict(n_train=1000, n_test=200, modes=12, modes_t=12, width=32)
        settings = dict(problem=problem, setting=setting, n_points=500, epochs=500, **sizes)
        if setting == "multi":
            settings["time_padding"] = TIME_PADDING.get(problem, 0)
        settings.update(overrides)
        return cls(**settings)

    def torch_device(self) -> torch.device:
        """The resolved device (``"auto"``: CUDA if available)."""
        return resolve_device(self.device)


def _apply(model: FNO1d | SpaceTimeFNO1d, name: str, data: OperatorData, index,
           inputs: torch.Tensor, output_dtype: torch.dtype | None = None,
           kernel_correction: bool = True, input_walls: bool = False):
    """Run ``model`` (wrapped in BOON with the samples' boundary values for ``"BOON"``, with
    BOON's options ``kernel_correction`` and ``input_walls``)."""
    if name == "FNO":
        out = model(inputs)
        return out if output_dtype is None else out.to(output_dtype)
    device, dtype = inputs.device, output_dtype or inputs.dtype
    left = condition(data.left_type, data.left_values[index].to(device, dtype))
    right = condition(data.right_type, data.right_values[index].to(device, dtype))
    return BOON(model, left=left, right=right, kernel_correction=kernel_correction,
                input_walls=input_walls)(inputs, output_dtype=output_dtype)


def build_operator(data: OperatorData, config: BOONConfig) -> FNO1d | SpaceTimeFNO1d:
    """The untrained operator of ``config`` for ``data``'s grid, on the config's device
    (weights from torch's current random state)."""
    domain = (float(data.x[0]), float(data.x[-1]))
    if config.setting == "single":
        model = FNO1d(1, data.targets.shape[1], config.modes, config.width, config.n_layers,
                      domain=domain)
    else:
        model = SpaceTimeFNO1d(1, data.targets.shape[1], config.modes, config.modes_t,
                               config.width, config.n_layers, domain=domain,
                               t_range=(float(data.t[0]), float(data.t[-1])),
                               time_padding=config.time_padding,
                               time_padding_side=config.time_padding_side)
    return model.to(config.torch_device())


def train_operator(name: str, train: OperatorData, config: BOONConfig,
                   progress: bool = True, loss=None) -> tuple[FNO1d | SpaceTimeFNO1d, list[float]]:
    """Train an FNO (``name="FNO"``) or BOON-FNO (``"BOON"``) from the seed's initial weights
    (``loss``: see :func:`fit_operator`)."""
    torch.manual_seed(config.seed)
    model = build_operator(train, config)

    def apply(m, index, x):
        return _apply(m, name, train, index, x, kernel_correction=config.kernel_correction,
                      input_walls=config.input_walls)

    losses = fit_operator(model, apply, train.inputs, train.targets, config, name, progress,
                          loss)
    return model.eval(), losses


@torch.no_grad()
def predict(model: FNO1d | SpaceTimeFNO1d, name: str, data: OperatorData,
            kernel_correction: bool = True, input_walls: bool = False) -> torch.Tensor:
    """Predictions ``(n, T, N)`` in float64: the network runs in float32, BOON's boundary
    values are set in float64 (BOON's options: see :class:`~physguard.BOON`)."""
    device = next(model.parameters()).device
    index = torch.arange(len(data))
    out = _apply(model, name, data, index, data.inputs.float().to(device), torch.float64,
                 kernel_correction, input_walls)
    return out.cpu()


def operator_metrics(name: str, pred: torch.Tensor, data: OperatorData) -> dict:
    """The metrics record of one model on ``data``."""
    h = float(data.x[1] - data.x[0])
    truth = data.targets
    sides = {side: M.boundary_error(pred, getattr(data, f"{side}_type"),
                                    getattr(data, f"{side}_values"), side, h)
             for side in ("left", "right")}
    record = {
        "model": name,
        "rel_l2": float(M.relative_l2(pred.flatten(1), truth.flatten(1)).mean()),
        "boundary_error": float(torch.stack(list(sides.values())).mean()),
        "boundary_error_left": float(sides["left"].mean()),
        "boundary_error_right": float(sides["right"].mean()),
        "MSE": float(M.mse(pred, truth).mean()),
    }
    pdebench = M.pdebench_metrics(pred, truth, lengths=float(data.x[-1] - data.x[0]))
    record.update({k: pdebench[k] for k in ("bRMSE", "cRMSE", "fRMSE_low", "fRMSE_mid",
                                            "fRMSE_high")})
    if "neumann" in (data.left_type, data.right_type):
        # The enforced stencil is second order: check against a third-order reference too.
        ref = [M.boundary_error(pred, getattr(data, f"{side}_type"),
                                getattr(data, f"{side}_values"), side, h, order=3)
               for side in ("left", "right")]
        record["boundary_error_ref3"] = float(torch.stack(ref).mean())
    return record


def markdown_table(records: list[dict], config: BOONConfig, test: OperatorData | None = None
                   ) -> str:
    keys = ["rel_l2", "boundary_error", "bRMSE", "cRMSE", "fRMSE_low", "fRMSE_mid",
            "fRMSE_high"]
    if "boundary_error_ref3" in records[0]:
        keys.insert(2, "boundary_error_ref3")
    lines = [f"# {config.problem} ({config.setting}-step): FNO vs BOON", "",
             f"{len(test) if test is not None else config.n_test} test samples, N = "
             f"{test.x.shape[0] if test is not None else config.n_points}. boundary_error: mean "
             "|value error| (Dirichlet) or |flux error| with the 2nd-order one-sided stencil "
             "(Neumann), both ends.", "", *boon_variant_note(config),
             "| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for r in records:
        lines.append(f"| {r['model']} | " + " | ".join(f"{r[k]:.3e}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def boon_options(config) -> list[str]:
    """How a run's BOON differs from the plain wrapper (``[]``: it does not)."""
    parts = [] if config.kernel_correction else ["without the per-layer kernel correction "
                                                 "(exact output only)"]
    if getattr(config, "input_walls", False):
        parts.append("with the output's Dirichlet wall values written into the input")
    return parts


def boon_variant_note(config) -> list[str]:
    """The table's sentence on a BOON that is not the plain wrapper (no lines if it is)."""
    parts = boon_options(config)
    if not parts:
        return []
    return [f"BOON here runs {' and '.join(parts)}. These are the defaults of the velocity "
            "cavity and of Stokes, chosen on validation seeds "
            "(benchmarks/results/boon_2d.md, boon_interior.md); --kernel-correction and "
            "--no-input-walls give the plain wrapper.", ""]


def run_boon(config: BOONConfig, out: str | Path, progress: bool = True,
             figures: bool = True, overwrite: bool = False,
             data: OperatorData | None = None, source: dict | None = None) -> list[dict]:
    """Train FNO and BOON with the same seed and budget; write the run folder ``out``.

    ``data``: train and test on these samples (e.g. :func:`~physguard.datasets.well.read_well`
    of an HDF5 file; lazy fields are read batch by batch) instead of generating the config's:
    the last ``max(1, min(n_test, len(data) // 5))`` samples are the test set, and
    ``config.json`` records the sizes used and the data (``"data"``:
    :func:`~physguard.datasets.well.data_summary`, with ``source``, the file's record).

    The folder is built beside ``out`` and moved into place when complete
    (:func:`physguard._io.run_folder`): a failed or interrupted run leaves ``out`` as it was.

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
        ValueError: an unusable ``out`` or device (before any work is done).
    """
    config.torch_device()  # a missing CUDA device is reported before anything is written
    if data is not None and len(data) < 2:
        raise ValueError(f"the data hold {len(data)} sample(s); need at least 2")
    with run_folder_on_main(out, overwrite) as folder:  # torchrun: rank 0 writes
        return _run_boon_into(config, folder, progress and world()[0] == 0, figures, data,
                              source)


def split_data(config: BOONConfig) -> tuple[OperatorData, OperatorData]:
    """Generate the config's ``n_train + n_test`` samples (seed ``config.seed``) and split
    them into training and test data."""
    data = make_operator_data(config.problem, config.n_train + config.n_test, config.n_points,
                              config.setting, config.n_steps, seed=config.seed)
    return data.subset(slice(0, config.n_train)), data.subset(slice(config.n_train, None))


def train_and_evaluate(name: str, train: OperatorData, test: OperatorData, config: BOONConfig,
                       progress: bool = True, loss=None):
    """Train ``name`` (``"FNO"`` or ``"BOON"``) and evaluate it on ``test``: returns
    ``(model, losses per epoch, prediction, metrics record)``."""
    model, losses = train_operator(name, train, config, progress, loss)
    prediction = predict(model, name, test, config.kernel_correction, config.input_walls)
    return model, losses, prediction, operator_metrics(name, prediction, test)


def split_file_data(data, config, source: dict | None = None):
    """``(train, test, config, summary)`` of given data: the last ``max(1, min(n_test,
    n // 5))`` samples are the test set (read into memory), ``config`` with the sizes used,
    and the data's summary for ``config.json`` and the table
    (:func:`~physguard.datasets.well.data_summary`; ``source``: the file's record)."""
    from ..datasets.well import data_summary

    n_test = max(1, min(config.n_test, len(data) // 5))
    train = data.subset(slice(0, len(data) - n_test))
    test = data.subset(slice(len(data) - n_test, None)).in_memory()
    return (train, test, dataclasses.replace(config, n_train=len(train), n_test=n_test),
            data_summary(data, len(train), n_test, source))


def _run_boon_into(config: BOONConfig, out: Path, progress: bool, figures: bool,
                   data: OperatorData | None = None, source: dict | None = None
                   ) -> list[dict]:
    from ..datasets.well import data_note

    started = time.perf_counter()
    if data is None:
        train, test = split_data(config)
        summary = None
    else:
        train, test, config, summary = split_file_data(data, config, source)
    write_json(out / "config.json", {**dataclasses.asdict(config),
                                     **({"data": summary} if summary else {})})
    records, predictions, history = [], {}, {}
    for name in MODELS:
        model, history[name], predictions[name], record = train_and_evaluate(
            name, train, test, config, progress)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        with atomic_path(out / f"{name.lower()}.pt") as tmp:
            torch.save({"model": name, "config": dataclasses.asdict(config),
                        "state_dict": state}, tmp)
        records.append(record)
    write_json(out / "training.json", history)
    write_json(out / "metrics.json", records)
    write_text(out / "table.md", markdown_table(records, config, test) + data_note(summary))
    if figures:
        from ..plots import boon_figures

        boon_figures(out, test, predictions)
    write_json(out / "timing.json", {"total_seconds": time.perf_counter() - started})
    return records
