"""Calibration in and out of range (issue 26, part 3): which validation data should the
ensembles' covariance be fitted on?

Loads the members of a finished ``physguard run PROBLEM --uq`` folder (no training) and refits
the covariance of every ensemble (``FNO-Ensemble``, ``BOON-Ensemble`` and their ProbConserv
versions, as ``--uq`` does) on different validation sets, then prints the coverage of the
50 / 80 / 90 / 95 % intervals, LL and MSE on the run's test sets, in and out of range:

* ``in``: the run's calibration samples in the training range (seed ``seed + 7919``) only;
* ``in+outside``: those plus as many samples from the range in
  ``physguard.experiments.uq.EXTRAPOLATION_RANGES`` (heat: ``omega`` in [1.01, 1.99], on the
  other side of the training range than the out-of-range test set [4.04, 5.96]), seed ``seed +
  15_485_863``: validation data that extrapolate, with parameters distinct from every test
  sample's (what ``--uq`` uses now).

Each calibration set is fitted with the spread power ``gamma`` at 0 (the members' covariance
as it is) and chosen by the held-out likelihood (``spread_power=None``, the default of
``--uq``). The conditioned ensembles are fitted with two priors: ``diag(noise + b v + c
mean(v))`` (``local``: the members' pointwise variance) and ``b = 0`` (``uniform``: the same
variance at every point of a sample and step, so the update is the Euclidean projection onto
the constraint set, the default; part 4).

Nothing is fitted on the test samples.

    python benchmarks/uq_calibration.py runs/heat-uq
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from physguard import metrics as M
from physguard.constraints import probconserv
from physguard.experiments import uq
from physguard.models.ensemble import ensemble_gaussian, fit_ensemble_noise, uninformative_at

LEVELS = (0.5, 0.8, 0.9, 0.95)


def evaluate(folder: Path) -> list[dict]:
    config = uq.load_uq_config(folder)
    train, cal, tests = uq._data(config, progress=False)
    n_in = config.n_cal
    validations = {"in": cal.subset(slice(0, n_in)), "in+outside": cal}
    masses = {r: uq.conserved_total(d) for r, d in tests.items()}
    constraints = {r: uq.constraints_for(d, masses[r]) for r, d in tests.items()}
    determined = {"BOON": uq.determined_points(cal), "FNO": None}
    rows = []
    for name in ("FNO", "BOON"):
        members = uq.load_members(folder, name, train, config)
        samples = {r: uq._member_samples(members, name, d) for r, d in tests.items()}
        for label, val in validations.items():
            val_samples = uq._member_samples(members, name, val)
            val_constraint = uq.constraints_for(val, uq.conserved_total(val))
            for power in (0.0, None):
                for conditioned, local in ((False, False), (True, True), (True, False)):
                    model = f"ProbConserv-{name}-Ensemble" if conditioned else f"{name}-Ensemble"
                    prior = ("local" if local else "uniform") if conditioned else "-"
                    fitted = fit_ensemble_noise(val_samples, uq._flat_targets(val),
                                                val_constraint if conditioned else None,
                                                determined=determined[name], local=local,
                                                spread_power=power)
                    gamma = float(torch.as_tensor(fitted.spread_power).reshape(-1)[0])
                    for r, data in tests.items():
                        pred = ensemble_gaussian(samples[r], *fitted)
                        if conditioned:
                            pred = probconserv(uninformative_at(pred, determined[name]),
                                               constraints[r])
                        mean = pred.mean.reshape(data.targets.shape).flatten(1)
                        var = pred.var.reshape(data.targets.shape).flatten(1)
                        truth = data.targets.flatten(1)
                        row = {"model": model, "calibration": label, "prior": prior,
                               "gamma": gamma, "range": r,
                               "MSE": float(M.mse(mean, truth).mean()),
                               "LL": float(M.gaussian_log_likelihood(mean, var, truth).mean())}
                        for level in LEVELS:
                            row[f"cov{int(level * 100)}"] = float(
                                M.interval_coverage(mean, var, truth, level).mean())
                        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    keys = ["MSE", "LL"] + [f"cov{int(level * 100)}" for level in LEVELS]
    lines = ["| model | calibrated on | prior | gamma | range | " + " | ".join(keys) + " |",
             "|---|---|---|---|---|" + "---|" * len(keys)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['calibration']} | {r['prior']} | {r['gamma']:g} | "
                     f"{r['range']} | "
                     + " | ".join(f"{r[k]:.3e}" if k == "MSE" else f"{r[k]:.3f}"
                                  for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(evaluate(Path(sys.argv[1]))))
