"""Does padding the time axis of the space-time operators help? FNO and BOON, padded or not.

The space-time kernel is a circular convolution in t, so without padding the last predicted
steps wrap onto the first. For every multi-step problem this trains FNO and BOON with the same
data, seed and budget, once per padding, and prints the test relative L2 (a measurement for
choosing the default, not a test). Padding is on the side given by ``--side``.

    python benchmarks/time_padding.py [--problems heat-neumann stokes ...] [--paddings 0 6]
        [--epochs 25] [--side end] [--n-train 150] [--n-points 64] [--width 16]
"""

from __future__ import annotations

import argparse
import time

from physguard.datasets.operator import OPERATOR_PROBLEMS
from physguard.datasets.operator2d import PROBLEMS_2D
from physguard.experiments.boon import BOONConfig, split_data, train_and_evaluate
from physguard.experiments.boon2d import BOON2dConfig, split_data_2d, train_and_evaluate_2d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(OPERATOR_PROBLEMS),
                        choices=[*OPERATOR_PROBLEMS, *PROBLEMS_2D])
    parser.add_argument("--paddings", type=int, nargs="+", default=[0, 6])
    parser.add_argument("--side", default="end", choices=["end", "start", "both"])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-points", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    args = parser.parse_args()
    sizes = {k: v for k, v in (("n_train", args.n_train), ("n_points", args.n_points),
                                ("width", args.width)) if v is not None}
    print(f"multi step, {args.epochs} epochs, seed {args.seed}, padding side {args.side}, "
          f"sizes {sizes or 'of the CPU defaults'}")
    print(f"{'problem':>18} | {'pad':>3} | {'FNO rel_l2':>10} | {'BOON rel_l2':>11} | "
          f"{'FNO/BOON':>8} | {'s':>5}")
    for problem in args.problems:
        two_d = problem in PROBLEMS_2D
        split, evaluate = ((split_data_2d, train_and_evaluate_2d) if two_d
                           else (split_data, train_and_evaluate))
        data = None  # the same samples for every padding
        for pad in args.paddings:
            started = time.perf_counter()
            extra = dict(sizes, epochs=args.epochs, seed=args.seed, device="cpu",
                         time_padding=pad, time_padding_side=args.side)
            config = (BOON2dConfig if two_d else BOONConfig).default(problem, "multi", **extra)
            data = data or (split(config, False) if two_d else split(config))
            errors = {name: evaluate(name, *data, config, False)[3]["rel_l2"]
                      for name in ("FNO", "BOON")}
            print(f"{problem:>18} | {pad:3d} | {errors['FNO']:10.4e} | {errors['BOON']:11.4e} | "
                  f"{errors['FNO'] / errors['BOON']:8.2f} | {time.perf_counter() - started:5.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
