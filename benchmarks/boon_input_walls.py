"""BOON with the output's wall values in its input (``input_walls``), at the bench's sizes.

For each seed, one data set and four models with the same initial weights and budget: the FNO,
BOON (plain wrapper), BOON + input walls (corrected kernels), and BOON exact output only +
input walls. In the multi-step setting the input is repeated over the ``T`` output times and
each time gets its own wall values, so the operator sees the walls' time series (Stokes: the
wall velocity ``cos(omega t)`` sets the field's phase; the vorticity cavity: the wall vorticity
read from the solution). Prints one row per model and seed, and the mean over seeds (a
diagnostic that chooses defaults on validation seeds, not a test).

    python benchmarks/boon_input_walls.py --problem stokes --setting multi --seeds 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from physguard.experiments.bench_boon import BENCH_CASES, BOONBenchConfig
from physguard.experiments.boon import split_data, train_and_evaluate
from physguard.experiments.boon2d import split_data_2d, train_and_evaluate_2d

VARIANTS = {"FNO": ("FNO", {}),
            "BOON": ("BOON", dict(kernel_correction=True, input_walls=False)),
            "BOON + walls": ("BOON", dict(kernel_correction=True, input_walls=True)),
            "exact only + walls": ("BOON", dict(kernel_correction=False, input_walls=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="stokes", choices=BENCH_CASES)
    parser.add_argument("--setting", default="multi", choices=["single", "multi"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the bench's")
    parser.add_argument("--models", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    results = {label: [] for label in args.models}
    for seed in args.seeds:
        bench = BOONBenchConfig(cases=(args.problem,), settings=(args.setting,), seed=seed,
                                device="cpu", epochs=args.epochs)
        config = bench.case_config(args.problem, args.setting)
        two_d = hasattr(config, "field")
        train, test = split_data_2d(config, progress=False) if two_d else split_data(config)
        evaluate = train_and_evaluate_2d if two_d else train_and_evaluate
        print(f"{args.problem} {args.setting}-step, seed {seed}: {config.n_train} / "
              f"{config.n_test} samples, {config.n_points} points, {config.epochs} epochs, "
              f"width {config.width}")
        for label in args.models:
            name, options = VARIANTS[label]
            started = time.perf_counter()
            record = evaluate(name, train, test, dataclasses.replace(config, **options),
                              False)[3]
            results[label].append(record["rel_l2"])
            print(f"{label:>20} | rel_l2 {record['rel_l2']:.4e} | boundary error "
                  f"{record['boundary_error']:.1e} | {time.perf_counter() - started:.0f} s",
                  flush=True)
    if len(args.seeds) > 1:
        print(f"\nmean over seeds {args.seeds}:")
        for label, values in results.items():
            print(f"{label:>20} | {statistics.mean(values):.4e}")


if __name__ == "__main__":
    main()
