"""Which training for the rollout's one-step models (issue 28, part 1): one-step teacher forcing
(``physguard rollout``'s default) or one-step plus pushforward (Brandstetter, Worrall & Welling,
ICLR 2022, Sec. 2.3: the model is also trained on its own one-step prediction as input, the
first step without gradient, so it learns to correct the errors it makes)?

Both are trained with the same data, seed, epochs and batch order (the pushforward loss is the
relative L2 over the one-step and the two-step predictions of each pair), for the FNO and for
BOON, and rolled out on *validation* trajectories (seed offset 2_750_159: neither the training
nor the test trajectories of ``physguard rollout``), unconstrained and as ProbConserv-BOON.

    python benchmarks/rollout_training.py --problem heat-neumann [--steps 100] [--tiny]

Prints the summary per training and model: relative L2 at the last step, The Well's VRMSE over
steps 6-12 and 13-30, the correlation times.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from physguard import BOON
from physguard.conditions import condition
from physguard.experiments.rollout import (
    RolloutConfig,
    build_one_step,
    make_trajectories,
    roll_out,
    rollout_metrics,
    train_one_step,
)
from physguard.training import fit_operator

VALIDATION_SEED = 2_750_159


def pushforward_pairs(traj, window: int):
    """Inputs ``(m, 6, N)``: ``u_{i-1}``, ``u_i`` and the walls' data of ``t_i`` and
    ``t_{i+1}``; targets ``(m, 2, N)``: ``u_{i+1}`` twice; for ``i = 1 .. window - 1``."""
    f, left, right = traj.fields, traj.left_values, traj.right_values
    prev, cur, nxt = f[:, :window - 1], f[:, 1:window], f[:, 2:window + 1]
    walls = [v[..., None].expand_as(prev) for v in
             (left[:, 1:window], right[:, 1:window], left[:, 2:window + 1],
              right[:, 2:window + 1])]
    inputs = torch.stack([prev, cur, *walls], dim=2).flatten(0, 1)
    return inputs, torch.stack([nxt, nxt], dim=2).flatten(0, 1)


def train_pushforward(name: str, traj, config: RolloutConfig, seed: int):
    model = build_one_step(config, traj, seed)
    inputs, targets = pushforward_pairs(traj, config.window)
    kinds = (traj.left_type, traj.right_type)

    def step(m, state, left, right):
        x = torch.stack([state, left.expand_as(state), right.expand_as(state)], dim=1)
        if name == "FNO":
            return m(x)[:, 0]
        return BOON(m, left=condition(kinds[0], left[:, :1]),
                    right=condition(kinds[1], right[:, :1]))(x)[:, 0]

    def apply(m, index, x):
        prev, cur, li, ri, ln, rn = x.unbind(1)
        one = step(m, cur, ln, rn)
        with torch.no_grad():  # pushforward: the first step's output is an input, no gradient
            first = step(m, prev, li, ri)
        two = step(m, first, ln, rn)
        return torch.stack([one, two], dim=1)

    fit_operator(model, apply, inputs, targets, dataclasses.replace(config, seed=seed), name,
                 progress=False)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="heat-neumann")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    sizes = dict(steps=args.steps)
    if args.tiny:
        sizes = dict(steps=6, window=4, n_train=4, n_test=2, n_points=16, modes=4, width=8,
                     n_layers=2, epochs=1, batch_size=8)
    config = RolloutConfig(problem=args.problem, seed=args.seed, **sizes)
    train = make_trajectories(config.problem, config.n_train, config.n_points, config.window,
                              config.dt, config.seed)
    val = make_trajectories(config.problem, config.n_test, config.n_points, config.steps,
                            config.dt, config.seed + VALIDATION_SEED)
    print(f"{config.problem}: {config.n_train} training trajectories of {config.window} "
          f"steps, {config.epochs} epochs, validation rollouts of {config.steps} steps\n")
    print("| training | model | rel_l2 last | VRMSE 6-12 | VRMSE 13-30 | corr. time 0.9 | "
          "corr. time 0.8 | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for training in ("one-step", "pushforward"):
        for name in ("FNO", "BOON"):
            tick = time.perf_counter()
            model = (train_one_step(name, train, config, config.seed, progress=False)
                     if training == "one-step"
                     else train_pushforward(name, train, config, config.seed))
            seconds = time.perf_counter() - tick
            for label in ((name,) if name == "FNO" else ("BOON", "ProbConserv-BOON")):
                summary = rollout_metrics(label, roll_out(model, label, val, config.steps),
                                          val)[-1]

                def cell(key, summary=summary):
                    value = summary[key]
                    return "-" if value is None else f"{value:.3e}"

                print(f"| {training} | {label} | {cell('rel_l2_last')} | {cell('vrmse_6_12')} "
                      f"| {cell('vrmse_13_30')} | {summary['correlation_time_0.9']} | "
                      f"{summary['correlation_time_0.8']} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
