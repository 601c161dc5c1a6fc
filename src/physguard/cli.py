"""Command line: ``physguard run PROBLEM --out DIR``."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from ._validation import MAX_SEED
from .datasets.operator import OPERATOR_PROBLEMS
from .datasets.operator2d import FIELDS, PROBLEMS_2D
from .pdes import CONSERVATION_PROBLEMS

_BOON_PROBLEMS = sorted(OPERATOR_PROBLEMS) + list(PROBLEMS_2D)
#: ``physguard run file --data F``: a user's file, its fields and walls, 1-D or 2-D.
_FILE = "file"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="physguard")
def main() -> None:
    """physguard: hard physical guarantees for machine-learned PDE solutions."""
    # SIGTERM (timeout, kill, a scheduler) unwinds like Ctrl-C, so a run folder under
    # construction is removed and the destination stays as it was.
    with contextlib.suppress(ValueError):  # signal handlers can only be set in the main thread
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


# One range for every seed option (--seed here, --extra-seeds in BOONBenchConfig), checked
# before any work.
_SEED = click.IntRange(min=0, max=MAX_SEED)
_OVERWRITE = click.option("--overwrite", is_flag=True,
                          help="Replace a non-empty output folder whole (default: refuse).")


def _run_options(command):
    """The options every training command shares: --seed, --device, --overwrite, --quiet."""
    for option in reversed([
            click.option("--seed", type=_SEED, default=0, show_default=True),
            click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                         default="auto", show_default=True),
            _OVERWRITE,
            click.option("--quiet", is_flag=True, help="No progress bars.")]):
        command = option(command)
    return command


def _data_sizes(data) -> dict:
    """The config sizes a --data file fixes (so config.json says what was used)."""
    sizes = {"n_points": int(data.x.shape[0])}
    if data.t.numel() > 1:
        sizes["n_steps"] = int(data.t.numel())
    if hasattr(data, "field"):
        sizes["field"] = data.field
    return sizes


def _clean_errors(work: Callable[[], None]) -> None:
    """Run ``work``; physguard's specific errors become a one-line message and exit code 1."""
    try:
        work()
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err


@main.command()
@click.argument("problem",
                type=click.Choice(sorted(CONSERVATION_PROBLEMS) + _BOON_PROBLEMS + [_FILE]))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default: runs/PROBLEM).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option("--functions", type=click.IntRange(min=1), default=None,
              help="Number of training functions (samples).")
@click.option("--test-functions", type=click.IntRange(min=1), default=None,
              help="Test functions per test parameter (test samples for BOON problems).")
@click.option("--setting", type=click.Choice(["single", "multi"]), default=None,
              help="BOON problems only: u(x,0) -> u(x,t_final) (single), or -> the next 25 "
                   "snapshots (multi). Default: single in 1-D; multi in 2-D (cavity, wave2d: "
                   "the authors' cavity map, with the error over time and the animation).")
@click.option("--field", type=click.Choice(sorted({f for fs in FIELDS.values() for f in fs})),
              default=None, help="cavity only: velocity (u, v; the default, two fields "
                                 "per step in the multi-step setting) or vorticity (the "
                                 "authors' field; the default of --paper --setting multi).")
@click.option("--paper", is_flag=True,
              help="The paper's sizes, for a GPU (ANP: 10,000 functions, 500 epochs, 50 test "
                   "functions; BOON: the authors' notebooks, the cavity 1000 / 200 samples of "
                   "50 x 50, T = 25, 500 epochs).")
@click.option("--kernel-correction/--no-kernel-correction", default=None,
              help="BOON problems: BOON with (or without: exact output only) its per-layer "
                   "kernel correction. Default: with it, except on the cavity (both fields) "
                   "and Stokes (measured: benchmarks/results/boon_2d.md, boon_interior.md).")
@click.option("--input-walls/--no-input-walls", default=None,
              help="BOON problems with Dirichlet walls: write the output's Dirichlet wall "
                   "values into BOON's input (multi step: each output time's). Default: on "
                   "for Stokes (both settings) and the multi-step vorticity cavity (their wall "
                   "values at the output times differ between samples).")
@click.option("--uq", is_flag=True,
              help="heat-neumann, stokes, burgers-periodic, wave2d, cavity: deep ensembles "
                   "of FNOs and BOON-FNOs, with and without ProbConserv on the wall and "
                   "conservation rows at once (the cavity: zero divergence in every cell); "
                   "in- and out-of-range test parameters (default setting: multi; the "
                   "cavity: single-step velocity).")
@click.option("--members", type=click.IntRange(min=2), default=5, show_default=True,
              help="--uq: ensemble members per model.")
@click.option("--data", "data_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="BOON problems: train and test on this HDF5 file in The Well's layout "
                   "(written by 'physguard data export' or anyone else) or PDEBench's "
                   "(detected from the file; state its walls with --walls) instead of "
                   "generated data; read batch by batch.")
@click.option("--walls", default=None,
              help="--data: the conditions of walls the file does not specify (The Well's "
                   "WALL / OPEN without physguard's attribute, or none): 1-D "
                   "\"left=dirichlet:0,right=neumann:0\", 2-D \"x=periodic,bottom=dirichlet:0,"
                   "top=neumann:0\" (Neumann: du/dx along the axis, in the file's units).")
@click.option("--wall-values", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="--data: an NPZ of time-varying wall values, one array per wall (left, "
                   "right, bottom, top) of shape (steps,), (samples, steps) or (samples, "
                   "steps, wall points[, components]), step 0 the initial one; each wall's "
                   "kind from --walls.")
@click.option("--fields", "field_names", default=None,
              help="--data: the field(s) to train on, by name in the file, comma-separated "
                   "(default: the file's only field; 'physguard run file' in 2-D: all of "
                   "them, as channels).")
@click.option("--check-walls/--no-check-walls", default=True, show_default=True,
              help="--data: check every declared condition against the file's fields before "
                   "training (refused above the stated tolerances); --no-check-walls trains "
                   "anyway and records it in config.json.")
@click.option("--shock-calibration", type=click.IntRange(min=0), default=None,
              help="Problems with a moving front (stefan, pme, advection, burgers): validation "
                   "functions per parameter range that calibrate the shock position's 90 % "
                   "interval (default 20, at least 9; 0: the posterior samples' own interval).")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where the ANP trains (auto: CUDA when available).")
@_OVERWRITE
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(problem: str, out: Path | None, epochs: int | None, functions: int | None,
        test_functions: int | None, setting: str | None, field: str | None, paper: bool,
        kernel_correction: bool | None, input_walls: bool | None, uq: bool, members: int,
        data_file: Path | None, walls: str | None, wall_values: Path | None,
        field_names: str | None,
        check_walls: bool, shock_calibration: int | None, seed: int, device: str,
        overwrite: bool, quiet: bool) -> None:
    """Run the experiment of PROBLEM and print its table.

    Conservation problems (diffusion, pme, stefan, advection, burgers): train an ANP and
    compare ANP, HardC-ANP and ProbConserv-ANP. BOON problems (heat-neumann, stokes,
    burgers-dirichlet, burgers-periodic; in 2-D cavity and wave2d): train an FNO and a
    BOON-FNO with the same seed and budget. file: the same on your own --data file (The
    Well's or PDEBench's layout, 1-D or 2-D, several fields in 2-D), its walls declared in
    the file or stated with --walls. Everything goes to the run folder (config,
    weights, metrics.json, table.md, figures).
    """
    overrides = {k: v for k, v in (("epochs", epochs), ("n_train", functions),
                                   ("n_test", test_functions)) if v is not None}
    overrides.update(seed=seed, device=device)
    out = out if out is not None else Path("runs") / problem
    if problem == _FILE and data_file is None:
        raise click.UsageError("physguard run file trains on a file: name it with --data "
                               "(The Well's or PDEBench's layout)")
    boon_run = problem in _BOON_PROBLEMS or problem == _FILE
    if setting is not None and not boon_run:
        raise click.UsageError(f"--setting applies to the BOON problems "
                               f"({', '.join(_BOON_PROBLEMS)}), not to {problem}")
    if field is not None and field not in FIELDS.get(problem, ()):
        raise click.UsageError(f"--field {field} does not apply to {problem} (cavity: "
                               f"{', '.join(FIELDS['cavity'])})")
    if kernel_correction is not None and (not boon_run or uq):
        raise click.UsageError(f"--kernel-correction / --no-kernel-correction apply to the BOON "
                               f"runs ({', '.join(_BOON_PROBLEMS)}) without --uq, not to "
                               f"{problem}{' --uq' if uq else ''}")
    if input_walls is not None and (not boon_run or uq):
        raise click.UsageError(f"--input-walls / --no-input-walls apply to the BOON runs "
                               f"({', '.join(_BOON_PROBLEMS)}) without --uq, not to "
                               f"{problem}{' --uq' if uq else ''}")
    if uq and field is not None:
        raise click.UsageError("--uq runs the cavity's single-step velocity (its rows are the "
                               "velocity's per-cell divergence); --field does not apply")
    if uq:
        from .experiments.uq import UQ_PROBLEMS

        if problem not in UQ_PROBLEMS:
            raise click.UsageError(f"--uq applies to {', '.join(UQ_PROBLEMS)}, not {problem}")
        if paper:
            raise click.UsageError("--uq has no --paper preset")
    if data_file is not None and (not boon_run or uq or paper):
        raise click.UsageError(f"--data applies to the BOON problems "
                               f"({', '.join(_BOON_PROBLEMS)}) without --uq / --paper")
    if data_file is None and (walls is not None or field_names is not None
                              or wall_values is not None or not check_walls):
        raise click.UsageError("--walls, --wall-values, --fields and --no-check-walls apply "
                               "to a --data file")
    if data_file is not None and functions is not None:
        raise click.UsageError("--functions does not apply with --data: every sample of the "
                               "file is used (the last fifth, at most --test-functions, is "
                               "the test set)")
    if data_file is not None and field is not None:
        raise click.UsageError("--field does not apply with --data: the file's field is used "
                               "(--fields NAME picks one of several)")
    data = None
    if data_file is not None:
        from .datasets.pdebench import read_file

        try:  # before any work, and before the config: the file decides the sizes
            stated = walls
            if wall_values is not None:
                from .datasets.well import load_wall_values

                stated = load_wall_values(wall_values, walls)
            data = read_file(data_file, problem, setting or "multi", walls=stated,
                             fields=[n.strip() for n in field_names.split(",") if n.strip()]
                             if field_names else None,
                             check_walls=check_walls, progress=not quiet)
        except (FileNotFoundError, ValueError) as err:
            raise click.ClickException(str(err)) from err
        one_step = data.t.numel() == 1
        if setting == "multi" and one_step:
            raise click.UsageError(f"{data_file} has one step after the initial one: only "
                                   "--setting single applies")
        setting = "single" if one_step else "multi"
    if not uq:
        setting = setting or ("multi" if problem in PROBLEMS_2D else "single")
    from . import _distributed

    distributed = _distributed.init(device)
    if distributed and (uq or not boon_run):
        raise click.UsageError("under torchrun, physguard run trains the BOON problems "
                               f"({', '.join(_BOON_PROBLEMS)}) without --uq")
    started = time.perf_counter()
    if data_file is not None:
        from ._io import check_outside

        try:  # before any work: --overwrite would replace the folder that holds the data
            check_outside(out, [data_file, *([wall_values] if wall_values else [])])
        except ValueError as err:
            raise click.ClickException(str(err)) from err

    source = None
    if data is not None:
        from .datasets.well import file_record

        source = dict(file_record(data_file), walls=walls, fields=field_names,
                      check_walls=check_walls,
                      wall_values=file_record(wall_values) if wall_values else None)

    def work() -> None:
        if uq:
            from .experiments.uq import UQConfig, run_uq

            config = UQConfig.default(problem, setting, n_members=members, **overrides)
            op = config.operator
            click.echo(f"physguard run {problem} --uq ({op.setting}-step): 2 ensembles of "
                       f"{members} members, {op.n_train} training samples, {op.epochs} epochs "
                       f"per member, writing to {out}")
            run_uq(config, out, progress=not quiet, overwrite=overwrite)
        elif problem in PROBLEMS_2D or hasattr(data, "wall_types"):  # 2-D data
            from .experiments.boon2d import BOON2dConfig, run_boon_2d

            sizes = dict(overrides, kernel_correction=kernel_correction,
                         input_walls=input_walls)
            if field is not None:
                sizes["field"] = field
            if data is not None:
                sizes.update(_data_sizes(data))
            config = (BOON2dConfig.paper(problem, setting, **sizes) if paper
                      else BOON2dConfig.default(problem, setting, **sizes))
            samples = (f"{len(data)} samples from {data_file}" if data is not None
                       else f"{config.n_train} training samples")
            click.echo(f"physguard run {problem} ({setting}-step, {config.field}): "
                       f"{samples}, {config.epochs} epochs per model, writing to {out}")
            run_boon_2d(config, out, progress=not quiet, overwrite=overwrite, data=data,
                        source=source)
        elif problem in OPERATOR_PROBLEMS or problem == _FILE:
            from .experiments.boon import BOONConfig, run_boon

            variant = dict(kernel_correction=kernel_correction, input_walls=input_walls)
            if data is not None:
                variant.update(_data_sizes(data))
            config = (BOONConfig.paper(problem, setting, **overrides, **variant) if paper
                      else BOONConfig.default(problem, setting, **overrides, **variant))
            if data_file is not None:
                click.echo(f"physguard run {problem} ({setting}-step) on {data_file}: "
                           f"{len(data)} samples on {data.x.shape[0]} points, "
                           f"{config.epochs} epochs per model, writing to {out}")
            else:
                click.echo(f"physguard run {problem} ({setting}-step): {config.n_train} "
                           f"training samples, {config.epochs} epochs per model, writing to "
                           f"{out}")
            run_boon(config, out, progress=not quiet, overwrite=overwrite, data=data,
                     source=source)
        else:
            from .experiments import GPMEConfig, run_gpme

            if shock_calibration is not None:
                overrides["n_shock_calibration"] = shock_calibration
            config = (GPMEConfig.paper(problem, **overrides) if paper
                      else GPMEConfig(problem=problem, **overrides))
            click.echo(f"physguard run {problem}: {config.n_train} training functions, "
                       f"{config.epochs} epochs max, writing to {out}")
            run_gpme(config, out, progress=not quiet, overwrite=overwrite)

    _clean_errors(work)
    if not _leave_process_group(distributed):
        return
    click.echo((out / "table.md").read_text())
    click.echo(f"wrote {out} in {time.perf_counter() - started:.0f} s")


@main.command()
@click.argument("problem",
                type=click.Choice(["heat-neumann", "stokes", "burgers-periodic", "wave2d",
                                   "cavity"]))
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Rollout length K (default 100; with --data the file's length; the "
                   "training window is 25 steps).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default: runs/rollout-PROBLEM).")
@click.option("--uq", is_flag=True,
              help="Also ensembles of one-step FNOs and BOONs, a Gaussian per step calibrated "
                   "on held-out trajectories, and the conditioned ensemble.")
@click.option("--members", type=click.IntRange(min=2), default=None,
              help="Members per ensemble with --uq (default 5).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option("--functions", type=click.IntRange(min=1), default=None,
              help="Training trajectories (default 64; wave2d and cavity 32).")
@click.option("--data", "data_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Your own trajectories: an HDF5 file in The Well's layout (or PDEBench's), "
                   "step 0 the initial states, uniform in time. The last fifth are the test "
                   "trajectories (with --uq as many before them calibrate), the rest train on "
                   "their first 25 steps.")
@click.option("--walls", default=None,
              help="--data: the conditions of walls the file does not specify, as for "
                   "'physguard run --walls'.")
@click.option("--check-walls/--no-check-walls", default=True, show_default=True,
              help="--data: check the file's walls and the problem's conservation law "
                   "against its fields before training (refused above the stated "
                   "tolerances).")
@_run_options
def rollout(problem: str, steps: int | None, out: Path | None, uq: bool,
            members: int | None, epochs: int | None, functions: int | None,
            data_file: Path | None, walls: str | None, check_walls: bool, seed: int,
            device: str, overwrite: bool, quiet: bool) -> None:
    """Roll one-step emulators out far past their training window, keeping the walls and the
    totals at every step.

    Trains a one-step FNO and BOON (state and the next step's wall data in, next state out;
    one-step teacher forcing on 25-step trajectories), rolls them out K steps from the test
    trajectories' initial states, with ProbConserv-BOON projecting every step onto its wall
    rows and its exact total (the cavity: zero divergence at every interior node). Writes
    per-step metrics (relative L2, The Well's VRMSE, correlation, mass and boundary error),
    per-model summaries, predictions, a table, figures and an animation.
    """
    started = time.perf_counter()
    out = out or Path("runs") / f"rollout-{problem}"
    if members is not None and not uq:
        raise click.UsageError("--members applies with --uq only")
    if data_file is None and (walls is not None or not check_walls):
        raise click.UsageError("--walls and --no-check-walls apply to a --data file")
    if data_file is not None and functions is not None:
        raise click.UsageError("--functions does not apply with --data: the file's "
                               "trajectories are split into training, calibration and test")
    data, source = None, None
    if data_file is not None:
        from ._io import check_outside
        from .datasets.pdebench import read_file
        from .datasets.well import file_record
        from .experiments.rollout import trajectories_from_data

        try:  # before any work: the file decides the sizes, and is never under --out
            check_outside(out, [data_file])
            data = trajectories_from_data(
                read_file(data_file, problem, "trajectory", walls=walls,
                          check_walls=check_walls, progress=not quiet), check=check_walls)
        except (FileNotFoundError, ValueError) as err:
            hint = " (--no-check-walls rolls out anyway)" if check_walls else ""
            raise click.ClickException(f"{err}{hint}") from err
        source = dict(file_record(data_file), walls=walls, check_walls=check_walls)
        steps = steps or len(data.t) - 1

    def work():
        from .experiments.rollout import RolloutConfig, config_for_data, run_rollout

        overrides = {k: v for k, v in (("epochs", epochs), ("n_train", functions),
                                       ("n_members", members)) if v is not None}
        config = RolloutConfig.default(problem, steps=steps or 100, seed=seed, device=device,
                                       uq=uq, **overrides)
        if data is not None:
            config = config_for_data(config, data)
        source_text = f"{data_file}" if data is not None else "generated trajectories"
        click.echo(f"physguard rollout {problem} ({source_text}): {config.n_train} training "
                   f"trajectories of {config.window} steps, {config.epochs} epochs per model, "
                   f"rollout of {config.steps} steps, writing to {out}")
        run_rollout(config, out, progress=not quiet, overwrite=overwrite, data=data,
                    source=source)

    _clean_errors(work)
    click.echo((out / "table.md").read_text())
    click.echo(f"wrote {out} in {time.perf_counter() - started:.0f} s")


@main.command()
@click.argument("problem", type=click.Choice(sorted(CONSERVATION_PROBLEMS)))
@click.option("--run", "run_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A run folder written by 'physguard run PROBLEM'.")
@click.option("--contexts", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="NPZ with t, x, u (n_functions, n_points) and param (n_functions,).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (never the --run folder).")
@_OVERWRITE
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate(problem: str, run_dir: Path, contexts: Path, out: Path, overwrite: bool,
             quiet: bool) -> None:
    """Predict PROBLEM from your own observations with a trained run.

    Writes metrics.json, table.md, predictions.npz (per method "<method>/mean" and
    "<method>/var" of shape (n_functions, nt, nx), in the file's function order) and figures.
    """
    from ._io import check_outside
    from .experiments.evaluate import evaluate_run

    try:
        check_outside(out, [run_dir, contexts])
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    _clean_errors(lambda: evaluate_run(problem, run_dir, contexts, out, progress=not quiet,
                                       overwrite=overwrite))
    click.echo((out / "table.md").read_text())
    click.echo(f"wrote {out}")


@main.group()
def data() -> None:
    """Data sets in other formats."""


@data.command("export")
@click.argument("problem", type=click.Choice(_BOON_PROBLEMS))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HDF5 file to write (The Well's layout).")
@click.option("--setting", type=click.Choice(["single", "multi"]), default="multi",
              show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--points", type=click.IntRange(min=5), default=None,
              help="Grid points (per side in 2-D); default: the run's.")
@click.option("--field", type=click.Choice(sorted({f for fs in FIELDS.values() for f in fs})),
              default=None, help="cavity only: velocity or vorticity.")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out file (default: refuse, before any work).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def data_export(problem: str, out: Path, setting: str, samples: int, points: int | None,
                field: str | None, seed: int, overwrite: bool, quiet: bool) -> None:
    """Write PROBLEM's data set as HDF5 in The Well's layout (input = step 0, targets = the
    later steps; boundary conditions with physguard's exact values beside The Well's). The
    file is written beside --out and moved into place when complete."""
    from .datasets.well import export_well

    if field is not None and field not in FIELDS.get(problem, ()):
        raise click.UsageError(f"--field {field} does not apply to {problem} (cavity: "
                               f"{', '.join(FIELDS['cavity'])})")
    if out.exists() and not overwrite:
        raise click.UsageError(f"{out} exists; choose another file or pass --overwrite to "
                               "replace it")
    if out.is_dir():
        raise click.UsageError(f"{out} is a folder; --out names the HDF5 file to write")

    def work() -> None:
        if problem in PROBLEMS_2D:
            from .datasets.operator2d import make_operator_data_2d

            made = make_operator_data_2d(problem, samples, setting, field, points or 33,
                                         seed=seed, progress=not quiet)
        else:
            from .datasets.operator import make_operator_data

            made = make_operator_data(problem, samples, points or 128, setting, seed=seed)
        export_well(made, out)

    _clean_errors(work)
    click.echo(f"wrote {out}: {samples} {problem} samples ({setting}-step)")


@main.group()
def bench() -> None:
    """Reproduce a paper's results in one report."""


def _leave_process_group(distributed: bool) -> bool:
    """Under ``torchrun``: wait until every process is done (rank 0's run folder is then in
    place) and leave the group. Returns whether this process reports (rank 0, or no torchrun).
    """
    if not distributed:
        return True
    import torch.distributed as dist

    from . import _distributed

    rank = _distributed.world()[0]
    dist.barrier()
    dist.destroy_process_group()
    return rank == 0


@bench.command("probconserv")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs") / "bench-probconserv", show_default=True,
              help="Output folder: report.md, report.json and one run folder per case.")
@click.option("--cases", default=",".join(CONSERVATION_PROBLEMS), show_default=True,
              help="Comma-separated subset of the cases.")
@click.option("--paper", is_flag=True,
              help="The paper's sizes, for a GPU (ANP: 10,000 functions, 500 epochs, 50 test "
                   "functions; BOON: the authors' notebooks, the cavity 1000 / 200 samples of "
                   "50 x 50, T = 25, 500 epochs).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="ANP / SoftC epochs.")
@click.option("--functions", type=click.IntRange(min=1), default=None,
              help="Training functions per case.")
@click.option("--test-functions", type=click.IntRange(min=1), default=None,
              help="Test functions per test parameter.")
@_run_options
def bench_probconserv(out: Path, cases: str, paper: bool, epochs: int | None,
                      functions: int | None, test_functions: int | None, seed: int,
                      device: str, overwrite: bool, quiet: bool) -> None:
    """Every case x method of ProbConserv (Hansen et al., ICML 2023) with published numbers.

    Methods: ANP, SoftC-ANP, GP and a deep ensemble, each with HardC, ProbConserv and
    ProbConserv + non-negativity. The default size takes about 30 minutes on 2 CPU cores.
    """
    from . import _distributed
    from .experiments.bench import BenchConfig, run_bench

    if _distributed.requested():
        raise click.UsageError("bench probconserv trains neural processes and GPs in one "
                               "process; under torchrun, physguard trains the BOON problems "
                               "(physguard bench boon, physguard run)")
    overrides = {k: v for k, v in (("epochs", epochs), ("n_train", functions),
                                   ("n_test", test_functions)) if v is not None}
    overrides.update(seed=seed, device=device,
                     cases=tuple(c.strip() for c in cases.split(",") if c.strip()))
    started = time.perf_counter()
    try:
        config = BenchConfig.paper(**overrides) if paper else BenchConfig(**overrides)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    click.echo(f"physguard bench probconserv: cases {', '.join(config.cases)}; writing to {out}")
    reports: list[str] = []
    _clean_errors(lambda: reports.append(run_bench(config, out, progress=not quiet,
                                                   overwrite=overwrite)))
    click.echo(reports[0])
    click.echo(f"wrote {out / 'report.md'} in {time.perf_counter() - started:.0f} s")


def _seeds(texts: tuple[str, ...]) -> tuple[int, ...]:
    try:  # their range: BOONBenchConfig checks it, as --seed's
        return tuple(int(k) for k in texts)
    except ValueError:
        raise ValueError(f"extra seeds must be integers, got {', '.join(texts)}") from None


def _seed_count(text: str) -> int | tuple[int, ...]:
    """``--seeds``: one number is a count of seeds from ``--seed`` on; a comma-separated list
    names the seeds (the first replaces ``--seed``)."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    try:
        values = tuple(int(k) for k in parts)
    except ValueError:
        raise ValueError(f"--seeds must be a count or comma-separated integers, got "
                         f"{text!r}") from None
    if not values:
        raise ValueError("--seeds is empty")
    return values[0] if len(values) == 1 and "," not in text else values


@bench.command("boon")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs") / "bench-boon", show_default=True,
              help="Output folder: report.md, metrics.json, rel_l2.png, config.json.")
@click.option("--cases", default="heat-neumann,stokes,burgers-dirichlet,burgers-periodic,"
              "cavity,wave2d", show_default=True, help="Comma-separated subset of the problems.")
@click.option("--settings", default="single,multi", show_default=True,
              help="Comma-separated: single and/or multi.")
@click.option("--paper", is_flag=True, help="The authors' notebook sizes (500 epochs): GPU.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs for every row (default: the bench's per-row budget).")
@click.option("--penalty", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the boundary penalty of the FNO+penalty baseline.")
@click.option("--functions", type=click.IntRange(min=1), default=None,
              help="Training samples for every row (default: the bench's per-row size).")
@click.option("--test-functions", type=click.IntRange(min=1), default=None,
              help="Test samples for every row.")
@click.option("--recheck/--no-recheck", default=True, show_default=True,
              help="Where BOON loses a row for no measured reason, train FNO and BOON again "
                   "with the next seed's weights (same data) and report whether the gap keeps "
                   "its sign.")
@click.option("--seeds", "seeds", default="3", show_default=True,
              help="How many seeds (from --seed on), or comma-separated seeds: each draws new "
                   "data and weights and trains FNO and BOON (FNO+penalty: the first seed); "
                   "the report gives FNO / BOON per seed, its median and range, and each "
                   "model's spread. Each seed after the first costs about two thirds of the "
                   "bench again.")
@click.option("--extra-seeds", default="", show_default=False,
              help="Comma-separated further seeds (the older spelling of --seeds SEED,...).")
@_run_options
def bench_boon(out: Path, cases: str, settings: str, paper: bool, epochs: int | None,
               penalty: float, functions: int | None, test_functions: int | None,
               recheck: bool, seeds: str, extra_seeds: str, seed: int, device: str, overwrite: bool,
               quiet: bool) -> None:
    """FNO vs BOON vs an FNO with a boundary penalty (Saad et al., ICLR 2023) on every BOON
    problem, 1-D and 2-D, single and multi step, with published numbers beside ours.

    The default sizes take about 35 minutes per seed on 2 CPU cores (34.0 measured for one
    seed, rechecks included); three seeds by default.
    """
    from . import _distributed
    from .experiments.bench_boon import BOONBenchConfig, run_bench_boon

    def split(text: str) -> tuple[str, ...]:
        return tuple(c.strip() for c in text.split(",") if c.strip())

    try:
        sizes = {k: v for k, v in (("n_train", functions), ("n_test", test_functions))
                 if v is not None}
        config = BOONBenchConfig(cases=split(cases), settings=split(settings), paper=paper,
                                 epochs=epochs, penalty=penalty, seed=seed, device=device,
                                 overrides=sizes, recheck=recheck,
                                 extra_seeds=_seeds(split(extra_seeds)),
                                 seeds=None if extra_seeds.strip() else _seed_count(seeds))
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    distributed = _distributed.init(device)  # torchrun: every row trains with DDP
    main_process = _distributed.is_main()
    started = time.perf_counter()
    if main_process:
        click.echo(f"physguard bench boon: {len(config.rows())} rows; writing to {out}")
    _clean_errors(lambda: run_bench_boon(config, out, progress=not quiet, overwrite=overwrite))
    if not _leave_process_group(distributed):
        return
    click.echo((out / "report.md").read_text())
    click.echo(f"wrote {out / 'report.md'} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
