"""How a rollout ensemble's band should be calibrated (issue 28, part 2): the maximum-likelihood
variance per step (``physguard rollout --uq``'s) against the same with a per-step coverage factor
(split conformal: the 90 % quantile of ``|error| / sd`` on the calibration trajectories).

Decided on validation trajectories only: the members are trained as ``physguard rollout --uq``
trains them, fitted on its 16 calibration trajectories (seed offset 7919) and scored on 16 other
trajectories (seed offset 15_485_863), never the run's test trajectories (offset 104_729).

    python benchmarks/rollout_calibration.py --problem stokes [--members 5] [--tiny]

Prints, per ensemble and calibration, the mean over the steps of coverage90 and LL on the
validation trajectories, and the coverage of the first and last quarter of the steps.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from physguard import metrics as M
from physguard.experiments.rollout import (
    RolloutConfig,
    make_trajectories,
    roll_out,
    step_constraint,
    train_one_step,
)
from physguard.experiments.uq import determined_points
from physguard.models.ensemble import fit_ensemble_noise, isotropic_prior
from physguard.rollouts import trajectory_gaussian

VALIDATION_OFFSET = 15_485_863
Z90 = 1.6448536269514722  # the standard normal's 95 % quantile: a central 90 % band


def gaussian(members, fitted, traj, constrained):
    """Mean and var ``(n, K, N)`` of member trajectories ``(M, n, K + 1, ...)``."""
    determined = determined_points(traj.steps)
    pred = trajectory_gaussian(members, fitted, step_constraint(traj) if constrained else None,
                               determined)
    return pred.mean, pred.var.clamp(min=0)


def coverage_factor(mean, var, truth) -> torch.Tensor:
    """``(K,)``: per step, the factor on the sd that makes the central 90 % band cover 90 % of
    the calibration points (points of zero variance and zero error, known walls, left out)."""
    sd = var.sqrt()
    error = (mean - truth).abs()
    factors = []
    for k in range(mean.shape[1]):
        s, e = sd[:, k].flatten(), error[:, k].flatten()
        keep = s > 0
        ratio = e[keep] / s[keep]
        factors.append(torch.quantile(ratio, 0.9) / Z90 if ratio.numel() else torch.tensor(1.0))
    return torch.stack(factors).to(torch.float64)


def scores(mean, var, truth) -> dict:
    keep = var.flatten(2) > 0
    m, v, u = mean.flatten(2), var.flatten(2).clamp(min=1e-30), truth.flatten(2)
    inside = ((m - u).abs() <= Z90 * v.sqrt()).to(torch.float64)
    cover = (inside * keep).sum(2) / keep.sum(2).clamp(min=1)  # (n, K)
    ll = M.gaussian_log_likelihood(m, v, u)  # (n, K)
    per_step = cover.mean(0)
    quarter = max(1, per_step.numel() // 4)
    return {"coverage90": float(per_step.mean()), "first quarter": float(per_step[:quarter].mean()),
            "last quarter": float(per_step[-quarter:].mean()), "LL": float(ll.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="stokes")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    config = RolloutConfig.default(args.problem, seed=args.seed, uq=True, n_members=args.members)
    if args.tiny:
        config = dataclasses.replace(config, steps=6, window=3, n_train=3, n_cal=3, n_test=3,
                                     n_points=16, modes=4, width=8, n_layers=2, epochs=1,
                                     n_members=2)
    c = config
    train = make_trajectories(c.problem, c.n_train, c.n_points, c.window, c.dt, c.seed)
    cal = make_trajectories(c.problem, c.n_cal, c.n_points, c.steps, c.dt, c.seed + 7919)
    val = make_trajectories(c.problem, c.n_test, c.n_points, c.steps, c.dt,
                            c.seed + VALIDATION_OFFSET)
    print(f"{c.problem}: {c.n_members} members, {c.n_cal} calibration and {c.n_test} "
          f"validation trajectories of {c.steps} steps\n")
    print("| ensemble | calibration | coverage90 mean | first quarter | last quarter | LL mean |")
    print("|---|---|---|---|---|---|")
    for name, label, constrained in (("FNO", "FNO-Ensemble", False),
                                     ("BOON", "BOON-Ensemble", False),
                                     ("BOON", "ProbConserv-BOON-Ensemble", True)):
        members = [train_one_step(name, train, c, c.seed + k, False) for k in range(c.n_members)]
        kind = "ProbConserv-BOON" if constrained else name
        on_cal, on_val = roll_out(members, kind, cal, c.steps), roll_out(members, kind, val,
                                                                          c.steps)
        if constrained and cal.rows.is_sparse:
            fitted = isotropic_prior(fit_ensemble_noise(on_cal[:, :, 1:], cal.fields[:, 1:]))
        else:
            fitted = fit_ensemble_noise(on_cal[:, :, 1:], cal.fields[:, 1:],
                                        cal.rows if constrained else None,
                                        determined=determined_points(cal.steps))
        cal_mean, cal_var = gaussian(on_cal, fitted, cal, constrained)
        val_mean, val_var = gaussian(on_val, fitted, val, constrained)
        truth_cal, truth_val = cal.fields[:, 1:].flatten(2), val.fields[:, 1:].flatten(2)
        factor = coverage_factor(cal_mean, cal_var, truth_cal)
        rows = {"maximum likelihood (default)": (val_mean, val_var),
                "x per-step coverage factor": (val_mean, val_var * factor[None, :, None] ** 2)}
        for calibration, (mean, var) in rows.items():
            s = scores(mean, var, truth_val)
            print(f"| {label} | {calibration} | {s['coverage90']:.3f} | "
                  f"{s['first quarter']:.3f} | {s['last quarter']:.3f} | {s['LL']:.3f} |")
        print(f"| {label} | (factor: min {float(factor.min()):.2f}, median "
              f"{float(factor.median()):.2f}, max {float(factor.max()):.2f}) | | | | |")


if __name__ == "__main__":
    main()
