"""What should the shock position's interval be built from? (issue 26, part 5)

Loads the ANP of a finished ``physguard run stefan`` folder (no training) and measures, on
*validation* functions only (parameters in the training range p* in [0.55, 0.70] and beyond it
on the other side from the out-of-range test value, [0.70, 0.80]; seeds distinct from every
training and test function), for each method:

* the front's error ``|x*_true - posterior mean|``,
* the posterior samples' sd of the front (what the posterior's own interval is built from),
* ``front_scale``: the displacement that explains the black box's conservation error,
  ``|int mu dx - U(t*)| / p*``, at least one grid cell (``physguard.experiments.gpme``).

Whichever tracks the error on the validation functions is the interval's scale. Then the run's
test functions are re-evaluated with the calibrated interval into ``OUT`` (the same files as a
fresh ``physguard run stefan``: training is deterministic for a seed, so a fresh run trains the
same ANP) and the shock table is printed.

    python benchmarks/stefan_shock_interval.py runs/stefan runs/stefan-calibrated
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from physguard.blackbox import ANPPredictor
from physguard.datasets import sample_functions
from physguard.experiments.gpme import (
    SHOCK_EXTRAPOLATION_RANGES,
    GPMEConfig,
    calibrate_fronts,
    evaluate_contexts,
    evaluate_param,
    evaluation_groups,
    to_np_data,
)
from physguard.training import load_checkpoint


def validation_records(predictors, config: GPMEConfig) -> list[dict]:
    """Per validation function and method: error, posterior sd and scale of the front (the
    functions :func:`calibrate_fronts` uses)."""
    cls = config.problem_class
    t_grid = torch.linspace(*cls.t_range, config.n_grid_t, dtype=torch.float64)
    x_grid = torch.linspace(*cls.domain, config.n_grid_x, dtype=torch.float64)
    generator = torch.Generator().manual_seed(config.seed + 5)
    rows = []
    for k, (name, (lo, hi)) in enumerate(
            (("in range", cls.train_range), ("beyond", SHOCK_EXTRAPOLATION_RANGES["stefan"]))):
        draw = torch.Generator().manual_seed(config.seed + 3 + k)
        values = lo + (hi - lo) * torch.rand(config.n_shock_calibration, generator=draw,
                                             dtype=torch.float64)
        contexts = to_np_data(sample_functions(cls, len(values), params=values.tolist(),
                                               seed=config.seed + 3 + k))
        for j in range(len(values)):
            ev = evaluate_param(predictors, cls, float(values[j]),
                                contexts.batch(slice(j, j + 1)), torch.arange(1), t_grid,
                                x_grid, config, generator, progress=False)
            for method, fronts in ev.fronts.items():
                rows.append({"set": name, "method": method,
                             "error": abs(float(fronts[0].mean()) - ev.true_front),
                             "sd": float(fronts[0].std()),
                             "scale": float(ev.front_scale[method][0])})
    return rows


def decision_table(rows: list[dict]) -> str:
    lines = ["| method | validation set | mean error | mean posterior sd | mean scale | "
             "median error / sd | median error / scale |", "|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        for name in ("in range", "beyond"):
            part = [r for r in rows if r["method"] == method and r["set"] == name]
            err = np.array([r["error"] for r in part])
            sd = np.array([r["sd"] for r in part])
            scale = np.array([r["scale"] for r in part])
            lines.append(f"| {method} | {name} | {err.mean():.4f} | {sd.mean():.4f} | "
                         f"{scale.mean():.4f} | {np.median(err / np.maximum(sd, 1e-12)):.2f} | "
                         f"{np.median(err / scale):.2f} |")
    return "\n".join(lines)


def main() -> None:
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    model, _ = load_checkpoint(run / "model.pt")
    config = GPMEConfig(**json.loads((run / "config.json").read_text()))
    predictors = [ANPPredictor(model, config.n_latent)]
    print(decision_table(validation_records(predictors, config)))
    calibration = calibrate_fronts(predictors, config, progress=True)
    out.mkdir(parents=True, exist_ok=False)
    evaluate_contexts(predictors, config, evaluation_groups(config), out, progress=True,
                      front_calibration=calibration)
    table = (out / "table.md").read_text()
    print(table[table.index("Shock position"):])


if __name__ == "__main__":
    main()
