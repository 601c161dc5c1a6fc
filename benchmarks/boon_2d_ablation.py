"""Which part of BOON changes the 2-D accuracy: FNO vs BOON vs BOON without the kernel correction.

Same data, seed and budget for the three models; "enforce-only" keeps BOON's exact wall values
but skips the per-layer kernel correction (neither writes the wall values into the input,
whatever the run's default). Prints one row per model (a diagnostic, not a test).

    python benchmarks/boon_2d_ablation.py [--problem cavity] [--setting single] [--epochs 40]
        [--seeds 0 1] [--models FNO BOON enforce-only] [--time-padding 6] [--lr-step 33]
        [--field velocity] [--bench-sizes]

``--bench-sizes``: the sizes of the row in ``physguard bench boon`` instead of the run's CPU
defaults (with the bench's epochs unless ``--epochs`` is given).

With several seeds, each seed draws its own data and initial weights; the last rows give the
mean and spread of every model over the seeds (one seed's gap can be noise).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from physguard.experiments.bench_boon import _CPU_2D
from physguard.experiments.boon2d import BOON2dConfig, split_data_2d, train_and_evaluate_2d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="cavity", choices=["cavity", "wave2d"])
    parser.add_argument("--setting", default="single", choices=["single", "multi"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: 40, or the bench's with --bench-sizes")
    parser.add_argument("--field", default="", help="cavity: velocity or vorticity (default: "
                        "the setting's)")
    parser.add_argument("--bench-sizes", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", nargs="+", default=["FNO", "BOON", "enforce-only"],
                        choices=["FNO", "BOON", "enforce-only"])
    parser.add_argument("--time-padding", type=int, default=None,
                        help="zero steps appended to the time axis (multi step; default: the "
                             "config's)")
    parser.add_argument("--lr-step", type=int, default=None,
                        help="epochs between halvings of the learning rate (default: the "
                             "config's, 100: none within the 100-epoch default)")
    args = parser.parse_args()
    padding = {} if args.time_padding is None else {"time_padding": args.time_padding}
    if args.lr_step is not None:
        padding["lr_step"] = args.lr_step
    sizes = dict(_CPU_2D[args.setting]) if args.bench_sizes else {"epochs": 40}
    if args.epochs is not None:
        sizes["epochs"] = args.epochs
    results = {label: [] for label in args.models}
    for seed in args.seeds:
        config = BOON2dConfig.default(args.problem, args.setting, field=args.field,
                                      device="cpu", seed=seed, **sizes, **padding)
        train, test = split_data_2d(config, progress=False)
        print(f"{config.problem} {config.setting}-step ({config.field}), {config.n_train} / "
              f"{config.n_test} samples, {config.epochs} epochs, seed {config.seed}"
              + (f", time padding {config.time_padding}" if config.setting == "multi" else "")
              + f", learning rate halved every {config.lr_step} epochs")
        print(f"{'model':>18} | {'rel_l2':>10} | {'boundary_error':>14} | {'train (s)':>9}")
        for label in args.models:
            name = "FNO" if label == "FNO" else "BOON"
            started = time.perf_counter()
            record = train_and_evaluate_2d(
                name, train, test,
                dataclasses.replace(config, kernel_correction=label != "enforce-only",
                                    input_walls=False),
                False)[3]
            results[label].append(record["rel_l2"])
            print(f"{label:>18} | {record['rel_l2']:10.4e} | {record['boundary_error']:14.2e} | "
                  f"{time.perf_counter() - started:9.0f}", flush=True)
    if len(args.seeds) > 1:
        print(f"\nover seeds {args.seeds}: mean rel_l2 (min - max)")
        for label, values in results.items():
            print(f"{label:>18} | {statistics.mean(values):10.4e} | {min(values):.4e} - "
                  f"{max(values):.4e}")


if __name__ == "__main__":
    main()
