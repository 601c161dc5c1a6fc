"""What the guarantees cost in a rollout (issue 28, part 7): the same one-step network rolled
out K steps plain, with BOON's walls at every step, and with BOON's walls and the projection
onto every step's rows (walls and total), timed side by side in one run.

The rows of every step (the exact totals from the boundary fluxes) are known before the
rollout starts and are built once, outside the timed loop, as ``physguard rollout`` does.
The network's weights do not change the cost, so it is not trained.

    python benchmarks/rollout_cost.py [--problem heat-neumann] [--steps 100] [--batch 16]
                                      [--points 64] [--repeats 5]

Any rollout problem: the 2-D ones (``wave2d``, ``cavity``: the sparse divergence rows, whose
factorisation is made once per rollout) with ``--points 32 --width 20 --modes 8``, their
defaults.

Prints a table: seconds per rollout (median of the repeats) and the ratios to the plain one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from physguard import rollout
from physguard.experiments.rollout import (
    ROLLOUT_DT,
    RolloutConfig,
    build_one_step,
    make_trajectories,
    step_constraint,
    step_features,
    step_walls,
)
from physguard.experiments.uq import determined_points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="heat-neumann")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.batch, args.points, args.repeats = 4, 2, 16, 1
    torch.set_num_threads(torch.get_num_threads())
    traj = make_trajectories(args.problem, args.batch, args.points, args.steps,
                             ROLLOUT_DT[args.problem], seed=0)
    config = RolloutConfig.default(args.problem, n_points=args.points, width=args.width,
                                   modes=min(args.modes, args.points // 2), device="cpu")
    model = build_one_step(config, traj, seed=0).eval()
    walls, features = step_walls(traj), step_features(traj)
    constraint = step_constraint(traj)
    constraint(1)  # the rows of every step, built once before the timed loop
    determined = determined_points(traj.steps)
    variants = {
        "plain (FNO)": dict(),
        "BOON walls": dict(walls=walls),
        "BOON walls + projection (ProbConserv-BOON)": dict(walls=walls, constraint=constraint,
                                                           determined=determined),
        "projection only (FNO + rows)": dict(constraint=constraint, determined=determined),
    }
    times = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit every variant
        for name, options in variants.items():
            tick = time.perf_counter()
            rollout(model, traj.fields[:, 0], args.steps, features=features,
                    history=traj.before, fields=traj.rollout_fields, **options)
            times[name].append(time.perf_counter() - tick)
    base = statistics.median(times["plain (FNO)"])
    boon = statistics.median(times["BOON walls"])
    print(f"{args.problem}: {args.steps} steps, batch {args.batch}, N = {args.points}, width "
          f"{args.width}, {torch.get_num_threads()} threads, median of {args.repeats}\n")
    print("| rollout | seconds | / plain | / BOON walls |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {median / base:.2f} | {median / boon:.2f} |")


if __name__ == "__main__":
    main()
