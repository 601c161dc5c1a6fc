"""The conditioned ensemble's variance out of range (issue 26, parts 3-4): fit it on its own, or
inherit it from the unconditioned ensemble's calibrated variance? (``inherited`` is the
default since this study: ``physguard.models.ensemble.isotropic_prior``.)

On Stokes (``physguard run stokes --uq``), ProbConserv-BOON-Ensemble's LL out of range fell
below the BOON-Ensemble it conditions (-0.78 against 0.46, coverage90 0.73 against 0.86) while
its MSE was lower. Its conditioned prior ``noise_var + c mean(v)`` was fitted per time step on
its own: at several steps the fit put the variance in the constant ``noise_var`` and almost
none in ``c mean(v)``, which does not grow when the members spread out of range.

Loads the members of finished ``--uq`` folders (no training) and compares, per problem and
ensemble, the conditioned Gaussians whose prior is the same at every point of a sample and
step (the Euclidean projection of the mean, part 4) with the variance

* ``own fit``: ``noise_var + c mean(v ** (1 + gamma))`` fitted for the conditioned likelihood
  (``fit_ensemble_noise(..., constraint, refit=True)``, the default before this study);
* ``inherited``: the mean over the grid of the *unconditioned* ensemble's calibrated pointwise
  variance, ``noise_var + a mean(v ** (1 + gamma))`` with the unconditioned ``(noise_var, a,
  gamma)``: nothing is refitted after conditioning;
* ``inherited, refit factor``: the same times one factor per step fitted in closed form for
  the conditioned likelihood on the calibration samples;
* ``inherited, shaped variance``: the inherited mean with the variance of the unconditioned
  (shaped) Gaussian conditioned on the same rows.

Decided on *decision sets*: new parameter draws (seeds distinct from the calibration's and the
test sets'), in range and over the run's out-of-range interval. The run's test sets are only
printed after the decision, in the second table.

    python benchmarks/uq_conditioned_prior.py runs/stokes-uq runs/heat-uq ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from physguard import metrics as M
from physguard.constraints import probconserv
from physguard.datasets.operator import make_operator_data
from physguard.experiments import uq
from physguard.models.ensemble import (
    EnsembleNoise,
    ensemble_gaussian,
    fit_ensemble_noise,
    uninformative_at,
)

#: Seed offset of the decision sets (the calibration uses 7919 and 15_485_863, the
#: out-of-range test set 104_729).
DECISION_SEED = 2_750_159


def decision_sets(config: uq.UQConfig) -> dict:
    op = config.operator
    sets = {"in": make_operator_data(op.problem, op.n_test, op.n_points, op.setting,
                                     op.n_steps, seed=op.seed + DECISION_SEED)}
    if config.out_range is not None:
        sets["out"] = make_operator_data(op.problem, op.n_test, op.n_points, op.setting,
                                         op.n_steps, seed=op.seed + DECISION_SEED + 1,
                                         param_range=config.out_range)
    return sets


def variants(unconditioned: EnsembleNoise, own: EnsembleNoise, samples, truth, constraint,
             determined) -> dict[str, EnsembleNoise]:
    zero = torch.zeros_like(unconditioned.spread_scale)
    inherited = unconditioned._replace(spread_scale=zero, local_scale=zero,
                                       uniform_scale=unconditioned.spread_scale)
    post = probconserv(uninformative_at(ensemble_gaussian(samples, *inherited), determined),
                       constraint)
    r2 = (post.mean - truth).square()
    var = post.var
    known = var <= 1e-10 * var.amax(-1, keepdim=True)
    ratio = torch.where(known, torch.zeros_like(r2), r2 / var.clamp(min=1e-300))
    factor = ratio.sum((0, 2)) / (~known).sum((0, 2)).clamp(min=1)
    factor = torch.where(factor > 0, factor, torch.ones_like(factor))
    refit = inherited._replace(noise_var=inherited.noise_var * factor,
                               uniform_scale=inherited.uniform_scale * factor)
    return {"own fit": own, "inherited": inherited, "inherited, refit factor": refit}


def evaluate(folder: Path) -> list[dict]:
    config = uq.load_uq_config(folder)
    train, cal, tests = uq._data(config, progress=False)
    sets = {"decision": decision_sets(config), "test": tests}
    cal_constraint = uq.constraints_for(cal, uq.conserved_total(cal))
    determined = {"BOON": uq.determined_points(cal), "FNO": None}
    rows = []
    for name in ("FNO", "BOON"):
        members = uq.load_members(folder, name, train, config)
        cal_samples = uq._member_samples(members, name, cal)
        truth = uq._flat_targets(cal).to(torch.float64)
        unconditioned = fit_ensemble_noise(cal_samples, truth)
        own = fit_ensemble_noise(cal_samples, truth, cal_constraint, determined=determined[name],
                                 refit=True)
        fits = variants(unconditioned, own, cal_samples.to(torch.float64), truth,
                        cal_constraint, determined[name])
        n_in = config.n_cal
        parts = {"in": cal.subset(slice(0, n_in))}
        if cal.params.shape[0] > n_in:
            parts["outside"] = cal.subset(slice(n_in, None))
        sets_here = {"calibration": parts, **sets}
        for kind, datasets in sets_here.items():
            for r, data in datasets.items():
                samples = uq._member_samples(members, name, data)
                constraint = uq.constraints_for(data, uq.conserved_total(data))
                preds = {f"{name}-Ensemble": ensemble_gaussian(samples, *unconditioned)}
                for label, fit in fits.items():
                    preds[f"ProbConserv ({label})"] = probconserv(
                        uninformative_at(ensemble_gaussian(samples, *fit), determined[name]),
                        constraint)
                shaped = probconserv(uninformative_at(preds[f"{name}-Ensemble"],
                                                      determined[name]), constraint)
                preds["ProbConserv (inherited, shaped variance)"] = type(shaped)(
                    preds["ProbConserv (inherited)"].mean, var=shaped.var.clamp(min=0))
                diagonal = unconditioned._replace(
                    local_scale=unconditioned.spread_scale,
                    spread_scale=torch.zeros_like(unconditioned.spread_scale))
                pointwise = probconserv(uninformative_at(ensemble_gaussian(samples, *diagonal),
                                                         determined[name]), constraint)
                preds["ProbConserv (inherited, pointwise)"] = pointwise
                preds["ProbConserv (inherited, projected mean, pointwise variance)"] = \
                    type(pointwise)(preds["ProbConserv (inherited)"].mean,
                                    var=pointwise.var.clamp(min=0))
                for model, pred in preds.items():
                    mean = pred.mean.reshape(data.targets.shape).flatten(1)
                    var = pred.var.reshape(data.targets.shape).flatten(1)
                    target = data.targets.flatten(1)
                    rows.append({"problem": config.problem, "ensemble": name, "set": kind,
                                 "range": r, "model": model,
                                 "MSE": float(M.mse(mean, target).mean()),
                                 "LL": float(M.gaussian_log_likelihood(mean, var,
                                                                       target).mean()),
                                 "cov90": float(M.interval_coverage(mean, var, target,
                                                                    0.9).mean())})
    return rows


def table(rows: list[dict], kind: str) -> str:
    lines = ["| problem | ensemble | range | model | MSE | LL | coverage90 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["set"] == kind:
            lines.append(f"| {r['problem']} | {r['ensemble']} | {r['range']} | {r['model']} | "
                         f"{r['MSE']:.3e} | {r['LL']:.3f} | {r['cov90']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    rows = [row for folder in sys.argv[1:] for row in evaluate(Path(folder))]
    print("## Calibration samples (what a choice could be fitted on)\n\n"
          + table(rows, "calibration"))
    print("\n## Decision sets (new draws)\n\n" + table(rows, "decision"))
    print("\n## The runs' test sets\n\n" + table(rows, "test"))
