"""Which part of BOON changes the 2-D accuracy: FNO vs BOON vs BOON without the kernel correction.

Same data, seed and budget for the three models; "enforce-only" keeps BOON's exact wall values
but skips the per-layer kernel correction. Prints one row per model (a diagnostic, not a test).

    python benchmarks/boon_2d_ablation.py [--problem cavity] [--setting single] [--epochs 40]
"""

from __future__ import annotations

import argparse
import time

import torch

import physguard.boundary.boon as boon_module
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.experiments.boon2d import (
    BOON2dConfig,
    metrics_2d,
    predict_2d,
    train_operator_2d,
)


class _NoCorrection:
    """A wall correction that changes nothing (the exact output step still runs)."""

    def __init__(self, walls):
        self.walls = walls

    def __call__(self, layer, v, x_hat, weight, z, kept):
        return torch.zeros_like(v), z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="cavity", choices=["cavity", "wave2d"])
    parser.add_argument("--setting", default="single", choices=["single", "multi"])
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    config = BOON2dConfig.default(args.problem, args.setting, epochs=args.epochs, device="cpu")
    data = make_operator_data_2d(config.problem, config.n_train + config.n_test,
                                 config.setting, config.field, config.n_points,
                                 config.n_steps, seed=config.seed, progress=False)
    train = data.subset(slice(0, config.n_train))
    test = data.subset(slice(config.n_train, None))
    print(f"{config.problem} {config.setting}-step ({config.field}), {config.n_train} / "
          f"{config.n_test} samples, {config.epochs} epochs, seed {config.seed}")
    print(f"{'model':>18} | {'rel_l2':>10} | {'boundary_error':>14} | {'train (s)':>9}")
    original = boon_module.WallCorrection
    for label, name, correct in (("FNO", "FNO", True), ("BOON", "BOON", True),
                                 ("BOON enforce-only", "BOON", False)):
        boon_module.WallCorrection = original if correct else _NoCorrection
        try:
            started = time.perf_counter()
            model, _ = train_operator_2d(name, train, config, progress=False)
            record = metrics_2d(name, predict_2d(model, name, test), test)
        finally:
            boon_module.WallCorrection = original
        print(f"{label:>18} | {record['rel_l2']:10.4e} | {record['boundary_error']:14.2e} | "
              f"{time.perf_counter() - started:9.0f}")


if __name__ == "__main__":
    main()
