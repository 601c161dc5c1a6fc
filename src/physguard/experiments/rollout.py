"""Rollouts with guarantees (issue 28; ``physguard rollout PROBLEM``): one-step emulators applied
to their own output far past their training window, with the walls and the totals kept at every
step.

Every model maps the state at ``t_i`` and the walls' data at ``t_{i+1}`` (known in advance; two
constant input channels) to the state at ``t_{i+1}``; all are trained by one-step teacher
forcing (each pair of consecutive states of the training window is one sample, Brandstetter
et al., ICLR 2022, call it the one-step loss) with the same data, seed and budget, then rolled
out from the test trajectories' initial states:

    FNO                the plain one-step FNO (physguard.FNO1d)
    BOON               the same operator corrected by BOON with each step's walls
    ProbConserv-BOON   BOON, its output projected onto the step's wall rows and total
                       U(t_k) = U(0) + int_0^t_k F (mass_from_fluxes) before the next step
                       (physguard.rollout.project: ProbConserv's update with an isotropic prior)

With ``uq``: an ensemble of ``n_members`` one-step FNOs and one of BOONs (seeds ``seed ..
seed + M - 1``), each member rolled out on its own trajectory (with its constraints for
``ProbConserv-BOON-Ensemble``), turned into a Gaussian per step
(:func:`~physguard.models.ensemble.ensemble_gaussian`, one variance model per step), its
parameters fitted by maximum likelihood on ``n_cal`` held-out calibration trajectories (never
the test ones), and the conditioned ensemble conditioned on every step's rows.

The truth comes from the same generators as ``physguard run`` (closed forms for heat-neumann
and Stokes, the validated spectral solver for periodic Burgers), sampled every ``dt``
(:data:`ROLLOUT_DT`) for ``steps`` steps.

Run folder (complete or absent):

    config.json        the resolved RolloutConfig
    metrics.json       per step {"model", "step", "t", "rel_l2", "vrmse", "correlation",
                       "mass_error", "boundary_error"[, "LL", "CRPS", "coverage90"]}, and per
                       model {"model", "summary": true, "correlation_time_0.9",
                       "correlation_time_0.8", "vrmse_6_12", "vrmse_13_30", "rel_l2_last"}
    predictions.npz    x, t (K + 1,), truth (n, K + 1, N), left_values / right_values
                       (n, K + 1), "<model>/mean", "<model>/var" (n, K + 1, N)
    table.md           the summary per model
    models.pt          the trained weights (weights_only)
    rollout_error.png, rollout_coverage.png (uq), rollout.gif
    timing.json
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics as M
from .._io import atomic_path, resolve_device, run_folder, write_json, write_npz, write_text
from .._validation import check_counts
from ..boundary import BOON
from ..conditions import condition
from ..constraints import LinearConstraint, probconserv, trapezoid_weights
from ..datasets.operator import OPERATOR_PROBLEMS, OperatorData
from ..models.ensemble import ensemble_gaussian, fit_ensemble_noise, uninformative_at
from ..models.fno import FNO1d
from ..rollouts import rollout
from ..training import fit_operator
from .uq import constraint_rows, determined_points, true_mass

__all__ = ["RolloutConfig", "Trajectories", "make_trajectories", "run_rollout",
           "ROLLOUT_PROBLEMS", "MODELS", "UQ_MODELS", "rollout_metrics", "build_one_step",
           "train_one_step", "roll_out", "step_features", "step_walls", "step_constraint",
           "vrmse", "correlation_time"]

#: The problems with a one-step rollout today (1-D; wave2d and the cavity are not built yet).
ROLLOUT_PROBLEMS = ("heat-neumann", "stokes", "burgers-periodic")
MODELS = ("FNO", "BOON", "ProbConserv-BOON")
UQ_MODELS = ("FNO-Ensemble", "BOON-Ensemble", "ProbConserv-BOON-Ensemble")
#: The time step per problem: 25 steps (the default window) span the range of the walls' data
#: that the rollout meets, so that the one-step model is never given wall data it has not
#: seen (heat: t in [0, 2], one period of the right wall's flux U sin(pi t), whose second
#: half is negative; the operator runs' t_final = 0.5 sees only its rising quarter. Stokes:
#: [0, 2], 0.6 to 1.9 periods of the wall for omega in [2, 6]. Periodic Burgers: [0, 1], its
#: operator runs' range; its walls carry no data).
ROLLOUT_DT = {"heat-neumann": 0.08, "stokes": 0.08, "burgers-periodic": 0.04}
#: The Well's windows of the VRMSE (steps 6-12 and 13-30, both ends included).
WELL_WINDOWS = ((6, 12), (13, 30))


@dataclass
class RolloutConfig:
    """Settings of a rollout run; the defaults fit 2 CPU cores in a few minutes.

    Attributes:
        problem: one of :data:`ROLLOUT_PROBLEMS`.
        steps: ``K``, the rollout length (default 100: 4 times the training window).
        window: the training window, in steps of ``dt``.
        dt: the time step; ``None``: :data:`ROLLOUT_DT` of the problem.
        n_train, n_cal, n_test: trajectories for training, calibration (``uq`` only) and test.
        n_points: grid points.
        modes, width, n_layers: the one-step FNO's size.
        epochs, batch_size, lr, weight_decay, lr_step, lr_gamma: Adam with a step schedule on
            the one-step relative L2 loss.
        seed: seeds the data, the initial weights and the batch order.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        uq: also the ensembles.
        n_members: members per ensemble (``uq``).
    """

    problem: str = "heat-neumann"
    steps: int = 100
    window: int = 25
    dt: float | None = None
    n_train: int = 64
    n_cal: int = 16
    n_test: int = 16
    n_points: int = 64
    modes: int = 16
    width: int = 32
    n_layers: int = 4
    epochs: int = 40
    batch_size: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_step: int = 15
    lr_gamma: float = 0.5
    seed: int = 0
    device: str = "auto"
    uq: bool = False
    n_members: int = 5

    def __post_init__(self):
        if self.problem not in ROLLOUT_PROBLEMS:
            raise ValueError(f"unknown rollout problem {self.problem!r}; known: "
                             f"{', '.join(ROLLOUT_PROBLEMS)}")
        check_counts(self, exempt=("seed", "dt"))
        if self.dt is None:
            self.dt = ROLLOUT_DT[self.problem]
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be finite and > 0, got {self.dt}")
        if self.uq and self.n_members < 2:
            raise ValueError(f"an ensemble needs n_members >= 2, got {self.n_members}")

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


@dataclass(frozen=True)
class Trajectories:
    """Solutions sampled every ``dt``, the initial state first: the operator data of steps
    ``1 .. K`` (its ``inputs`` the initial states) and the walls' data at ``t = 0``.

    Attributes:
        steps: :class:`~physguard.datasets.operator.OperatorData` of steps ``1 .. K``
            (``targets (n, K, N)`` at ``t (K,)``; ``inputs (n, 1, N)`` the states at 0).
        initial_left, initial_right: ``(n,)`` the walls' data at ``t = 0``.

    The views below give the whole trajectories: ``fields (n, K + 1, N)``, ``t (K + 1,)``,
    ``left_values`` / ``right_values`` ``(n, K + 1)`` (Dirichlet values, Neumann fluxes
    ``du/dx``; zeros for periodic walls), and the steps' ``problem``, ``left_type``,
    ``right_type``, ``x``, ``params``.
    """

    steps: OperatorData
    initial_left: torch.Tensor
    initial_right: torch.Tensor

    def __getattr__(self, name: str):
        if name in ("problem", "left_type", "right_type", "x", "params"):
            return getattr(self.steps, name)
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __len__(self) -> int:
        return len(self.steps)

    @functools.cached_property
    def fields(self) -> torch.Tensor:
        return torch.cat([self.steps.inputs, self.steps.targets], dim=1)

    @functools.cached_property
    def t(self) -> torch.Tensor:
        return torch.cat([torch.zeros(1, dtype=self.steps.t.dtype), self.steps.t])

    @functools.cached_property
    def left_values(self) -> torch.Tensor:
        return torch.cat([self.initial_left[:, None], self.steps.left_values], dim=1)

    @functools.cached_property
    def right_values(self) -> torch.Tensor:
        return torch.cat([self.initial_right[:, None], self.steps.right_values], dim=1)

    @functools.cached_property
    def totals(self) -> torch.Tensor:
        """``(n, K)``: the exact total ``U(t_k) = U(0) + int_0^t_k F`` of steps ``1 .. K``
        (:func:`~physguard.experiments.uq.true_mass`), computed once."""
        return true_mass(self.steps)

    @functools.cached_property
    def rows(self) -> LinearConstraint:
        """The wall rows and the total's row of every trajectory and step ``1 .. K`` (batch
        ``(n, K)``), computed once."""
        return constraint_rows(self.steps, self.totals)

    def steps_data(self) -> OperatorData:
        """Steps ``1 .. K`` as operator data (its targets), for the rows and the totals."""
        return self.steps


def make_trajectories(problem: str, n: int, n_points: int, steps: int, dt: float,
                      seed: int, param_range: tuple[float, float] | None = None
                      ) -> Trajectories:
    """``n`` trajectories of ``steps + 1`` states ``dt`` apart, from the generators of
    ``physguard run`` (exact or validated solutions).

    Raises:
        ValueError: an unknown problem, counts below 1 or a non-positive ``dt``.
    """
    if problem not in OPERATOR_PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}")
    if min(n, steps) < 1 or n_points < 4 or not dt > 0:
        raise ValueError("n and steps must be >= 1, n_points >= 4 and dt > 0")
    cls = OPERATOR_PROBLEMS[problem]
    x = torch.linspace(*cls.domain, n_points, dtype=torch.float64)
    t = dt * torch.arange(steps + 1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    extra = {} if param_range is None else {"omega_range": tuple(param_range)}
    params, inputs, fields, left, right = cls.sample(n, x, t, generator, **extra)
    # The exact initial state as the first (heat: its series converges slowly at t = 0).
    steps = OperatorData(problem, cls.left_type, cls.right_type, x, t[1:], params,
                         inputs[:, None], fields[:, 1:], left[:, 1:], right[:, 1:])
    return Trajectories(steps, left[:, 0], right[:, 0])


def step_features(traj: Trajectories, index: torch.Tensor | slice = slice(None)):
    """``features(state, k)``: the state and the walls' data of ``t_k`` as channels."""
    left, right = traj.left_values[index], traj.right_values[index]

    def features(state: torch.Tensor, k: int) -> torch.Tensor:
        walls = [v[:, k, None].to(state).expand_as(state) for v in (left, right)]
        return torch.stack([state, *walls], dim=1)

    return features


def step_walls(traj: Trajectories, index=slice(None)):
    left, right = traj.left_values[index], traj.right_values[index]

    def walls(k: int) -> dict:
        return {"left": condition(traj.left_type, left[:, k:k + 1]),
                "right": condition(traj.right_type, right[:, k:k + 1])}

    return walls


def step_constraint(traj: Trajectories):
    """``constraint(k)``: the wall rows and the total of every trajectory at ``t_k``."""
    rows = traj.rows  # batch (n, K)

    def constraint(k: int) -> LinearConstraint:
        G = rows.G if rows.G.dim() == 2 else rows.G[:, k - 1]
        return LinearConstraint(G, rows.b[:, k - 1], rows.noise_var)

    return constraint


def _pairs(traj: Trajectories, window: int):
    """The one-step training pairs of the first ``window`` steps: inputs ``(n W, 3, N)``,
    targets ``(n W, 1, N)``, the walls' data of each target ``(n W, 1)`` twice."""
    states = traj.fields[:, :window]
    nexts = traj.fields[:, 1:window + 1]
    left = traj.left_values[:, 1:window + 1]
    right = traj.right_values[:, 1:window + 1]
    inputs = torch.stack([states, left[..., None].expand_as(states),
                          right[..., None].expand_as(states)], dim=2).flatten(0, 1)
    return inputs, nexts.flatten(0, 1)[:, None], left.reshape(-1, 1), right.reshape(-1, 1)


def build_one_step(config: RolloutConfig, traj: Trajectories, seed: int) -> FNO1d:
    torch.manual_seed(seed)
    domain = (float(traj.x[0]), float(traj.x[-1]))
    return FNO1d(3, 1, config.modes, config.width, config.n_layers,
                 domain=domain).to(config.torch_device())


def train_one_step(name: str, traj: Trajectories, config: RolloutConfig, seed: int,
                   progress: bool = True) -> FNO1d:
    """One-step teacher forcing of ``"FNO"`` or ``"BOON"`` on the training window."""
    model = build_one_step(config, traj, seed)
    inputs, targets, left, right = _pairs(traj, config.window)

    def apply(m, index, x):
        if name == "FNO":
            return m(x)
        values = {side: v[index.cpu()].to(x.device, x.dtype)
                  for side, v in (("left", left), ("right", right))}
        return BOON(m, left=condition(traj.left_type, values["left"]),
                    right=condition(traj.right_type, values["right"]))(x)

    fit_operator(model, apply, inputs, targets, dataclasses.replace(config, seed=seed), name,
                 progress)
    return model.eval()


def roll_out(model, name: str, traj: Trajectories, steps: int, progress: bool = False):
    """``(n, K + 1, N)`` (a list of models: ``(M, n, K + 1, N)``) from the trajectories'
    initial states."""
    boon = name != "FNO"
    constrained = name.startswith("ProbConserv")
    return rollout(model, traj.fields[:, 0], steps,
                   walls=step_walls(traj) if boon else None,
                   constraint=step_constraint(traj) if constrained else None,
                   features=step_features(traj),
                   determined=determined_points(traj.steps_data()) if constrained else None,
                   progress=progress)


def _correlation(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the last axis."""
    p = pred - pred.mean(-1, keepdim=True)
    q = truth - truth.mean(-1, keepdim=True)
    return (p * q).sum(-1) / (p.norm(dim=-1) * q.norm(dim=-1)).clamp(min=1e-300)


def vrmse(pred: torch.Tensor, truth: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """The Well's VRMSE over the last axis: ``sqrt(mean (pred - truth)^2 / (std(truth)^2 +
    eps))`` with the unbiased standard deviation (``the_well.benchmark.metrics.VRMSE``)."""
    return ((pred - truth).square().mean(-1) / (truth.std(-1).square() + eps)).sqrt()


def rollout_metrics(model: str, mean: torch.Tensor, traj: Trajectories,
                    var: torch.Tensor | None = None) -> list[dict]:
    """Per-step records (steps ``1 .. K``) and one summary record of ``mean (n, K + 1, N)``
    against ``traj`` (keys: module docstring). ``mass_error`` is ``mean_b |int u_b -
    U_b(t)| / mean_b |U_b(t)|`` (trapezoid rule); ``boundary_error`` the mean absolute
    violation of both walls' conditions (Neumann: the 2nd-order stencil's flux)."""
    truth = traj.fields
    mass = traj.totals
    h = float(traj.x[1] - traj.x[0])
    w = trapezoid_weights(traj.x)
    records = []
    for k in range(1, truth.shape[1]):
        p, u = mean[:, k], truth[:, k]
        total = p @ w
        walls = [M.boundary_error(p, kind, values[:, k], side, h) for side, kind, values in
                 (("left", traj.left_type, traj.left_values),
                  ("right", traj.right_type, traj.right_values))]
        record = {"model": model, "step": k, "t": float(traj.t[k]),
                  "rel_l2": float(M.relative_l2(p, u).mean()),
                  "vrmse": float(vrmse(p, u).mean()),
                  "correlation": float(_correlation(p, u).mean()),
                  "mass_error": float((total - mass[:, k - 1]).abs().mean()
                                      / mass[:, k - 1].abs().mean().clamp(min=1e-300)),
                  "boundary_error": float(torch.stack(walls).mean())}
        if var is not None:
            v = var[:, k]
            record.update(LL=float(M.gaussian_log_likelihood(p, v, u).mean()),
                          CRPS=float(M.crps_gaussian(p, v, u).mean()),
                          coverage90=float(M.interval_coverage(p, v, u, 0.9).mean()))
        records.append(record)
    return records + [_summary(model, records)]


def correlation_time(records: list[dict], level: float) -> int:
    """The first step whose correlation is below ``level``; the rollout length ``K`` when
    none is."""
    for r in records:
        if r["correlation"] < level:
            return r["step"]
    return records[-1]["step"]


def _summary(model: str, records: list[dict]) -> dict:
    out = {"model": model, "summary": True,
           "correlation_time_0.9": correlation_time(records, 0.9),
           "correlation_time_0.8": correlation_time(records, 0.8)}
    for lo, hi in WELL_WINDOWS:
        inside = [r["vrmse"] for r in records if lo <= r["step"] <= hi]
        out[f"vrmse_{lo}_{hi}"] = float(np.mean(inside)) if inside else None
    out["rel_l2_last"] = records[-1]["rel_l2"]
    out["mass_error_max"] = max(r["mass_error"] for r in records)
    out["boundary_error_max"] = max(r["boundary_error"] for r in records)
    if "coverage90" in records[-1]:
        for key in ("LL", "CRPS", "coverage90"):
            out[f"{key}_mean"] = float(np.mean([r[key] for r in records]))
    return out


def _ensemble(members_traj: torch.Tensor, cal_members: torch.Tensor, cal: Trajectories,
              traj: Trajectories, constrained: bool):
    """The Gaussian per step (steps ``1 .. K`` as channels) of member trajectories ``(M, n,
    K + 1, N)``, fitted on the calibration trajectories; the conditioned one conditioned on
    every step's rows. Returns mean and var ``(n, K + 1, N)`` (step 0: the known state)."""
    cal_rows = cal.rows if constrained else None
    determined = determined_points(cal.steps_data())
    fitted = fit_ensemble_noise(cal_members[:, :, 1:], cal.fields[:, 1:], cal_rows,
                                determined=determined)
    pred = ensemble_gaussian(members_traj[:, :, 1:], *fitted)
    if constrained:
        pred = probconserv(uninformative_at(pred, determined), traj.rows)
    mean = torch.cat([traj.fields[:, :1], pred.mean], dim=1)
    var = torch.cat([torch.zeros_like(traj.fields[:, :1]), pred.var.clamp(min=0)], dim=1)
    return mean, var


def run_rollout(config: RolloutConfig, out: str | Path, progress: bool = True,
                figures: bool = True, overwrite: bool = False) -> list[dict]:
    """Train the one-step models, roll them out on the test trajectories, write ``out``
    (complete or absent).

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
    """
    config.torch_device()
    with run_folder(out, overwrite) as folder:
        return _run_into(config, folder, progress, figures)


def _run_into(config: RolloutConfig, out: Path, progress: bool, figures: bool) -> list[dict]:
    started = time.perf_counter()
    write_json(out / "config.json", dataclasses.asdict(config))
    c = config
    train = make_trajectories(c.problem, c.n_train, c.n_points, c.window, c.dt, c.seed)
    test = make_trajectories(c.problem, c.n_test, c.n_points, c.steps, c.dt, c.seed + 104_729)
    seconds, predictions, weights = {}, {}, {}
    trained = {}
    for name in ("FNO", "BOON"):
        tick = time.perf_counter()
        trained[name] = train_one_step(name, train, c, c.seed, progress)
        seconds[f"{name} train"] = time.perf_counter() - tick
        weights[name] = {k: v.detach().cpu() for k, v in trained[name].state_dict().items()}
    for model in MODELS:
        tick = time.perf_counter()
        net = trained["FNO" if model == "FNO" else "BOON"]
        predictions[model] = (roll_out(net, model, test, c.steps, progress), None)
        seconds[f"{model} rollout"] = time.perf_counter() - tick
    if c.uq:
        cal = make_trajectories(c.problem, c.n_cal, c.n_points, c.steps, c.dt, c.seed + 7919)
        for name in ("FNO", "BOON"):
            tick = time.perf_counter()
            members = [train_one_step(name, train, c, c.seed + k, False)
                       for k in tqdm(range(c.n_members), desc=f"{name} ensemble",
                                     unit="member", disable=not progress)]
            seconds[f"{name}-Ensemble train"] = time.perf_counter() - tick
            weights[f"{name}-Ensemble"] = [{k: v.detach().cpu()
                                            for k, v in m.state_dict().items()}
                                           for m in members]
            labels = ((f"{name}-Ensemble", name),)
            if name == "BOON":
                labels += (("ProbConserv-BOON-Ensemble", "ProbConserv-BOON"),)
            for label, kind in labels:
                tick = time.perf_counter()
                member_traj = roll_out(members, kind, test, c.steps)
                cal_traj = roll_out(members, kind, cal, c.steps)
                predictions[label] = _ensemble(member_traj, cal_traj, cal, test,
                                               label.startswith("ProbConserv"))
                seconds[f"{label} rollout and calibration"] = time.perf_counter() - tick
    with atomic_path(out / "models.pt") as tmp:
        torch.save({"config": dataclasses.asdict(c), "state_dicts": weights}, tmp)
    records = []
    for model, (mean, var) in predictions.items():
        records.extend(rollout_metrics(model, mean, test, var))
    write_json(out / "metrics.json", records)
    arrays = {"x": test.x.numpy(), "t": test.t.numpy(), "truth": test.fields.numpy(),
              "left_values": test.left_values.numpy(),
              "right_values": test.right_values.numpy(), "params": test.params.numpy()}
    for model, (mean, var) in predictions.items():
        arrays[f"{model}/mean"] = mean.numpy()
        arrays[f"{model}/var"] = (torch.zeros_like(mean) if var is None else var).numpy()
    write_npz(out / "predictions.npz", arrays)
    write_text(out / "table.md", markdown_table(records, c, seconds))
    if figures:
        from ..plots import rollout_figures

        rollout_figures(out, records, test, predictions)
    write_json(out / "timing.json", {"total_seconds": time.perf_counter() - started,
                                     **seconds})
    return records


def _cell(value, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, fmt)


def markdown_table(records: list[dict], config: RolloutConfig, seconds: dict) -> str:
    """The summary per model, with what each column means."""
    summaries = [r for r in records if r.get("summary")]
    uq = any("coverage90_mean" in r for r in summaries)
    lines = [f"# {config.problem}: rollouts of one-step emulators with guarantees", "",
             f"{config.n_train} training trajectories of {config.window} steps (one-step "
             f"teacher forcing, {config.epochs} epochs), {config.n_test} test trajectories "
             f"rolled out {config.steps} steps ({config.steps / config.window:g} times the "
             f"training window) on N = {config.n_points}. rel_l2 last: relative L2 at the "
             "last step; VRMSE 6-12 / 13-30: The Well's VRMSE averaged over those steps; "
             "correlation time: the first step whose mean Pearson correlation with the truth "
             f"falls below 0.9 / 0.8 ({config.steps}: never); mass / boundary error max: the "
             "largest over the steps of |int u - U(t)| / |U(t)| and of the walls' mean "
             "violation.", ""]
    head = ["model", "rel_l2 last", "VRMSE 6-12", "VRMSE 13-30", "corr. time 0.9",
            "corr. time 0.8", "mass error max", "boundary error max"]
    if uq:
        head += ["LL mean", "CRPS mean", "coverage90 mean"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summaries:
        row = [r["model"], _cell(r["rel_l2_last"], ".3e"), _cell(r["vrmse_6_12"], ".3e"),
               _cell(r["vrmse_13_30"], ".3e"), str(r["correlation_time_0.9"]),
               str(r["correlation_time_0.8"]), _cell(r["mass_error_max"], ".1e"),
               _cell(r["boundary_error_max"], ".1e")]
        if uq:
            row += [_cell(r.get("LL_mean"), ".3f"), _cell(r.get("CRPS_mean"), ".3e"),
                    _cell(r.get("coverage90_mean"), ".3f")]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Wall time", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in seconds.items()]
    return "\n".join(lines) + "\n"
