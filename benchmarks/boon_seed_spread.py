"""How far apart do BOON's training runs land? FNO and BOON variants over many weight seeds.

Issue 26, part 1. For each bench row (``physguard bench boon``'s CPU sizes), the data are
drawn once from a *validation* seed (``--data-seed``, default 1000: not the bench's seeds
0, 1, 2, ...), and every model is trained from each weight seed (initial weights and batch
order) on those same data. Printed per row and model: the test relative L2 per seed, its
spread (max / min over the seeds), the median, the median FNO / model ratio (paired by
seed), the last-epoch training loss and, for BOON, the size of the wall-input change
``|delta| / rms(v)`` (the "spike": the elimination's correction against the hidden field,
mean over the kernel layers, on the trained model and the test inputs) and the condition
number of the wall blocks.

Variants: ``FNO``; ``BOON`` (Saad et al.'s exact elimination ``A delta = -K[P, I] v_I``);
``BOON-output-only``: the exact output alone (``kernel_correction=False``: with periodic walls,
no mean of the two ends between layers);
``BOON-damped-<rho>``: the elimination as damped least squares,
``delta = -(A^T A + lam^2 I)^-1 A^T K[P, I] v_I`` with ``lam = rho * rms singular value of
A`` (the output's conditions still hold exactly: they are set after the projection).

    python benchmarks/boon_seed_spread.py --rows burgers-dirichlet:multi --seeds 1-10 \\
        --variants FNO,BOON,BOON-damped-0.3 --json runs/spread.json

``--new-data`` draws new data from every seed too, as ``physguard bench boon --seeds`` does
(use seeds other than the bench's 0, 1, 2).

Results append to ``--json`` as they come (one record per training), so a long run can be
read while it goes; ``--report`` prints the table of a finished JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from physguard.boundary import boon as boon_module
from physguard.experiments import boon as experiment
from physguard.experiments import boon2d
from physguard.experiments.bench_boon import BOONBenchConfig
from physguard.experiments.boon2d import BOON2dConfig


def _steps(config):
    """The row's data split, training and prediction functions (1-D or 2-D)."""
    if isinstance(config, BOON2dConfig):
        return (lambda c: boon2d.split_data_2d(c, False), boon2d.train_and_evaluate_2d,
                boon2d.predict_2d)
    return experiment.split_data, experiment.train_and_evaluate, experiment.predict


@contextlib.contextmanager
def damping(rho: float):
    """BOON's default damping set to ``rho`` (``physguard.boundary.boon.DAMPING``)."""
    saved = boon_module.DAMPING
    boon_module.DAMPING = rho
    try:
        yield
    finally:
        boon_module.DAMPING = saved


def variant_context(variant: str):
    """``BOON``: the exact elimination (damping 0, Saad et al.); ``BOON-damped-<rho>``."""
    if variant.startswith("BOON-damped-"):
        return damping(float(variant.rsplit("-", 1)[1]))
    if variant.startswith("BOON"):
        return damping(0.0)
    return contextlib.nullcontext()


@contextlib.contextmanager
def spike_probe(records: list):
    """Record ``|delta| / rms(v)`` and the wall block's condition number per corrected layer
    (1-D single-step correction only; the space-time one is probed through its delta)."""
    original = boon_module._LayerCorrection.__call__
    original_st = boon_module._SpaceTimeCorrection.__call__

    def probe(self, layer, v, z, *args):
        fn = original_st if args else original
        z2, P, delta = fn(self, layer, v, z, *args)
        rms = v.pow(2).mean().sqrt()
        records.append(float(delta.abs().mean() / rms))
        return z2, P, delta

    boon_module._LayerCorrection.__call__ = probe
    boon_module._SpaceTimeCorrection.__call__ = probe
    try:
        yield
    finally:
        boon_module._LayerCorrection.__call__ = original
        boon_module._SpaceTimeCorrection.__call__ = original_st


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def run(rows, seeds, variants, data_seed, out: Path, epochs=None, new_data=False):
    done = set()
    if out.exists():
        for r in json.loads(out.read_text()):
            done.add((r["problem"], r["setting"], r["model"], r["seed"]))
    bench = BOONBenchConfig(cases=tuple({p for p, _ in rows}), seed=data_seed, device="cpu",
                            epochs=epochs)
    for problem, setting in rows:
        config = bench.case_config(problem, setting)
        split, train_and_evaluate, predict = _steps(config)
        if not new_data:
            train, test = split(config)
        for seed in seeds:
            if new_data:  # the bench's protocol: new data and weights per seed
                if all((problem, setting, v, seed) in done for v in variants):
                    continue
                data_seed = seed
                train, test = split(dataclasses.replace(config, seed=seed))
            for variant in variants:
                if (problem, setting, variant, seed) in done:
                    continue
                cfg = dataclasses.replace(config, seed=seed)
                if variant == "BOON-output-only":
                    cfg = dataclasses.replace(cfg, kernel_correction=False)
                name = "FNO" if variant == "FNO" else "BOON"
                start = time.perf_counter()
                with variant_context(variant):
                    model, losses, pred, record = train_and_evaluate(
                        name, train, test, cfg, progress=False)
                    spikes: list = []
                    if name == "BOON" and cfg.kernel_correction:
                        with spike_probe(spikes):
                            if isinstance(cfg, BOON2dConfig):
                                predict(model, name, test,
                                        kernel_correction=cfg.kernel_correction,
                                        input_walls=cfg.input_walls)
                            else:
                                predict(model, name, test, cfg.kernel_correction,
                                        cfg.input_walls)
                rec = {"problem": problem, "setting": setting, "model": variant,
                       "seed": seed, "data_seed": data_seed, "rel_l2": record["rel_l2"],
                       "final_train_loss": losses[-1], "losses": losses,
                       "spike": statistics.fmean(spikes) if spikes else None,
                       "seconds": time.perf_counter() - start}
                records = json.loads(out.read_text()) if out.exists() else []
                records.append(rec)
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(records))
                tmp.replace(out)
                print(f"{problem} {setting} {variant} seed {seed}: rel_l2 {rec['rel_l2']:.4e}"
                      f" train {losses[-1]:.4e} spike {rec['spike']} "
                      f"{rec['seconds']:.0f} s", flush=True)


def report(paths: list[Path]) -> str:
    records = [r for p in paths for r in json.loads(p.read_text())]
    rows = sorted({(r["problem"], r["setting"]) for r in records})
    lines = ["| row | model | seeds | rel_l2 median | min | max | spread max/min | "
             "median FNO / model (paired) | FNO / model > 1 | train loss median | spike |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        by_model: dict = {}
        for r in records:
            if (r["problem"], r["setting"]) == row:
                by_model.setdefault(r["model"], {})[r["seed"]] = r
        fno = by_model.get("FNO", {})
        for model, per_seed in by_model.items():
            vals = [r["rel_l2"] for r in per_seed.values()]
            paired = [fno[s]["rel_l2"] / r["rel_l2"] for s, r in per_seed.items() if s in fno]
            spikes = [r["spike"] for r in per_seed.values() if r["spike"] is not None]
            lines.append(
                f"| {row[0]} {row[1]} | {model} | {len(vals)} | "
                f"{statistics.median(vals):.3e} | {min(vals):.3e} | {max(vals):.3e} | "
                f"{max(vals) / min(vals):.2f} | "
                f"{statistics.median(paired):.2f} | {sum(p > 1 for p in paired)}/{len(paired)} | "
                f"{statistics.median(r['final_train_loss'] for r in per_seed.values()):.3e} | "
                f"{statistics.median(spikes):.2f} |" if spikes else
                f"| {row[0]} {row[1]} | {model} | {len(vals)} | "
                f"{statistics.median(vals):.3e} | {min(vals):.3e} | {max(vals):.3e} | "
                f"{max(vals) / min(vals):.2f} | "
                f"{statistics.median(paired):.2f} | {sum(p > 1 for p in paired)}/{len(paired)} | "
                f"{statistics.median(r['final_train_loss'] for r in per_seed.values()):.3e} | |")
    return "\n".join(lines)


def plot(paths: list[Path], out: Path) -> None:
    """The training curves: the loss per epoch of every seed, one panel per row, one colour
    per model (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for p in paths for r in json.loads(p.read_text())]
    rows = sorted({(r["problem"], r["setting"]) for r in records})
    models = sorted({r["model"] for r in records}, key=lambda m: (m != "FNO", m))
    colours = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.6), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        for r in records:
            if (r["problem"], r["setting"]) == row:
                ax.plot(r["losses"], color=colours[r["model"]], lw=0.7, alpha=0.7)
        for m in models:
            ax.plot([], [], color=colours[m], label=m)
        ax.set_yscale("log")
        ax.set_title(f"{row[0]} {row[1]}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training relative L2")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="burgers-dirichlet:multi")
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--variants", default="FNO,BOON")
    parser.add_argument("--data-seed", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--new-data", action="store_true",
                        help="draw new data for every seed (the bench's protocol; use seeds "
                             "other than the bench's) instead of one --data-seed")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("boon_seed_spread.json"))
    parser.add_argument("--report", nargs="*", type=Path,
                        help="print the table of finished JSON files (no training)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="with --report: write the training curves to this PNG")
    args = parser.parse_args()
    if args.report:
        print(report(args.report))
        if args.plot:
            plot(args.report, args.plot)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [tuple(r.split(":")) for r in args.rows.split(",")]
    run(rows, parse_seeds(args.seeds), args.variants.split(","), args.data_seed, args.json,
        args.epochs, args.new_data)
    print(report([args.json]))


if __name__ == "__main__":
    main()
