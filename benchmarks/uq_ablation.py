"""Why does conditioning help or hurt a UQ run? Re-evaluates a finished ``physguard run
PROBLEM --uq`` folder (1-D problems) without retraining: the saved members, the run's
calibration samples, and variants of the Gaussian and of the constraint rows, on
**validation** samples in range and out of range (40 each, seeds distinct from the run's test
samples, so that a design chosen here is not chosen on the test set).

    python benchmarks/uq_ablation.py runs/heat-uq

Variants (each for the FNO and the BOON ensemble): no conditioning; all rows with the
conditioned fit of the default prior ``diag(s2 + b v + c mean(v))`` (what the run reports);
the same with the members' low-rank spread ``a U U^T`` fitted too (``spread=True``); all rows
with the unconditioned fit; wall rows only; mass row only. Also the spread-skill ratio: the
members' RMS spread over the RMS error of their mean (1 for a well-spread ensemble).
"""

from __future__ import annotations

import sys
from pathlib import Path

from physguard import metrics as M
from physguard.constraints import boundary_constraint, mass_constraint, probconserv
from physguard.datasets import make_operator_data
from physguard.experiments.uq import (
    _condition,
    _data,
    _member_samples,
    conserved_total,
    constraints_for,
    load_members,
    load_uq_config,
)
from physguard.models.ensemble import ensemble_gaussian, fit_ensemble_noise


def main() -> None:
    folder = Path(sys.argv[1])
    config = load_uq_config(folder)
    train, cal, tests = _data(config, progress=False)
    op = config.operator
    tests = {"val-in": make_operator_data(op.problem, 40, op.n_points, op.setting, op.n_steps,
                                          seed=op.seed + 333_333)}
    if config.out_range is not None:
        tests["val-out"] = make_operator_data(op.problem, 40, op.n_points, op.setting,
                                              op.n_steps, seed=op.seed + 555_555,
                                              param_range=config.out_range)
    rows = {}
    for range_name, data in [("cal", cal), *tests.items()]:
        mass = conserved_total(data)
        left = _condition(data.left_type, data.left_values)
        right = _condition(data.right_type, data.right_values)
        rows[range_name] = {
            "all": constraints_for(data, mass),
            "walls": boundary_constraint(data.x, left=left, right=right),
            "mass": mass_constraint(data.x, mass)}
    print("| ensemble | variant | range | rel_l2 | MSE | LL | coverage90 | spread / error |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("FNO", "BOON"):
        ms = load_members(folder, name, train, config)
        cal_samples = _member_samples(ms, name, cal)
        plain = fit_ensemble_noise(cal_samples, cal.targets)
        fits = {rows_name: fit_ensemble_noise(cal_samples, cal.targets, rows["cal"][rows_name])
                for rows_name in ("all", "walls", "mass")}
        spread = fit_ensemble_noise(cal_samples, cal.targets, rows["cal"]["all"], spread=True)
        variants = [("none", plain, None), ("all, conditioned fit", fits["all"], "all"),
                    ("all, conditioned fit with spread", spread, "all"),
                    ("all, unconditioned fit", plain, "all"),
                    ("walls only, conditioned fit", fits["walls"], "walls"),
                    ("mass only, conditioned fit", fits["mass"], "mass")]
        for range_name, data in tests.items():
            samples = _member_samples(ms, name, data)
            spread = samples.var(0).mean().sqrt()
            error = (samples.mean(0) - data.targets).square().mean().sqrt()
            for label, fitted, which in variants:
                pred = ensemble_gaussian(samples, *fitted)
                if which is not None:
                    pred = probconserv(pred, rows[range_name][which])
                mean, var, truth = pred.mean, pred.var, data.targets
                print(f"| {name} | {label} | {range_name} | "
                      f"{float(M.relative_l2(mean.flatten(1), truth.flatten(1)).mean()):.4f} | "
                      f"{float(M.mse(mean, truth).mean()):.3e} | "
                      f"{float(M.gaussian_log_likelihood(mean, var, truth).mean()):.3f} | "
                      f"{float(M.interval_coverage(mean, var, truth, 0.9).mean()):.3f} | "
                      f"{float(spread / error):.2f} |", flush=True)


if __name__ == "__main__":
    main()
