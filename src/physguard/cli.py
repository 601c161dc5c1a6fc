"""Command line: ``physguard run PROBLEM --out DIR``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .pdes import GPME_PROBLEMS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="physguard")
def main() -> None:
    """physguard: hard physical guarantees for machine-learned PDE solutions."""


@main.command()
@click.argument("problem", type=click.Choice(sorted(GPME_PROBLEMS)))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default: runs/PROBLEM).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option("--functions", type=click.IntRange(min=1), default=None,
              help="Number of training functions.")
@click.option("--test-functions", type=click.IntRange(min=1), default=None,
              help="Test functions per test parameter.")
@click.option("--paper", is_flag=True,
              help="The paper's sizes (10,000 functions, 500 epochs, 50 test functions): GPU.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where the ANP trains (auto: CUDA when available).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(problem: str, out: Path | None, epochs: int | None, functions: int | None,
        test_functions: int | None, paper: bool, seed: int, device: str, quiet: bool) -> None:
    """Train an ANP on PROBLEM and compare ANP, HardC-ANP and ProbConserv-ANP.

    Writes config.json, model.pt, metrics.json, table.md, predictions.npz and figures to the
    run folder and prints the table.
    """
    from .experiments import GPMEConfig, run_gpme

    overrides = {k: v for k, v in (("epochs", epochs), ("n_train", functions),
                                   ("n_test", test_functions)) if v is not None}
    overrides.update(seed=seed, device=device)
    config = (GPMEConfig.paper(problem, **overrides) if paper
              else GPMEConfig(problem=problem, **overrides))
    out = out if out is not None else Path("runs") / problem
    started = time.perf_counter()
    click.echo(f"physguard run {problem}: {config.n_train} training functions, "
               f"{config.epochs} epochs max, writing to {out}")
    run_gpme(config, out, progress=not quiet)
    click.echo((out / "table.md").read_text())
    click.echo(f"wrote {out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
