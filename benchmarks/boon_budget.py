"""How the FNO / BOON ratio moves with the training budget (epochs) on the 1-D problems.

Same data, seed and architecture for both models at each budget; prints the test relative L2
and the last-epoch training loss of both (a measurement, not a test). The learning-rate step
scales with the budget (halved every third of the epochs), so a longer run is not just the
short one continued at a smaller rate.

    python benchmarks/boon_budget.py [--problems stokes burgers-dirichlet] [--epochs 50 150]
        [--setting single] [--n-points 128] [--width 32]
"""

from __future__ import annotations

import argparse
import time

from physguard.datasets.operator import OPERATOR_PROBLEMS
from physguard.experiments.boon import BOONConfig, split_data, train_and_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["stokes", "burgers-dirichlet"],
                        choices=list(OPERATOR_PROBLEMS))
    parser.add_argument("--epochs", type=int, nargs="+", default=[50, 150])
    parser.add_argument("--setting", default="single", choices=["single", "multi"])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-points", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.setting} step, {args.n_train} training samples, N = {args.n_points}, width "
          f"{args.width}, seed {args.seed}")
    print(f"{'problem':>18} | {'epochs':>6} | {'FNO rel_l2':>10} | {'BOON rel_l2':>11} | "
          f"{'FNO/BOON':>8} | {'FNO loss':>9} | {'BOON loss':>9} | {'s':>4}")
    for problem in args.problems:
        data = None
        for epochs in args.epochs:
            started = time.perf_counter()
            config = BOONConfig.default(problem, args.setting, epochs=epochs,
                                        lr_step=max(1, epochs // 3), n_train=args.n_train,
                                        n_points=args.n_points, width=args.width,
                                        seed=args.seed, device="cpu",
                                        kernel_correction=True, input_walls=False)
            data = data or split_data(config)  # the same samples for every budget
            errors, losses = {}, {}
            for name in ("FNO", "BOON"):
                _, history, _, record = train_and_evaluate(name, *data, config, False)
                errors[name], losses[name] = record["rel_l2"], history[-1]
            print(f"{problem:>18} | {epochs:6d} | {errors['FNO']:10.4e} | {errors['BOON']:11.4e} | "
                  f"{errors['FNO'] / errors['BOON']:8.2f} | {losses['FNO']:9.3e} | "
                  f"{losses['BOON']:9.3e} | {time.perf_counter() - started:4.0f}", flush=True)


if __name__ == "__main__":
    main()
