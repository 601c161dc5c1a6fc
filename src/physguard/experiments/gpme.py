"""ProbConserv on the GPME family: ANP vs HardC-ANP vs ProbConserv-ANP (Hansen et al. 2023).

One call of :func:`run_gpme` samples training functions, trains the ANP, predicts on the
evaluation grid for every test parameter, applies the constraints, and writes the run folder::

    config.json      the resolved configuration
    model.pt         the trained ANP (loads with weights_only=True)
    training.json    loss per epoch
    metrics.json     one record per method and test parameter
    table.md         the paper-style table
    predictions.npz  grid, parameters, and per method "<method>/mean", "<method>/var"
    front_calibration.json  problems with a front: the calibration of its interval
    *.png            profile with 90 % band, mass over time, shock position, error over time,
                     the shock interval's reliability (problems with a front)
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import metrics as M
from .._io import resolve_device, run_folder, write_json, write_npz, write_text
from .._validation import check_counts
from ..blackbox import ANPPredictor, GridPredictor
from ..constraints import (
    Gaussian,
    hardc,
    mass_constraint,
    moment_match,
    nonnegative,
    probconserv,
    trapezoid_weights,
)
from ..datasets import FunctionSamples, sample_functions
from ..models import ANP
from ..pdes import ConservationProblem, GPMEProblem, get_problem
from ..training import NPData, TrainConfig, save_checkpoint, train_anp

__all__ = ["GPMEConfig", "run_gpme", "METHODS"]

METHODS = ("ANP", "HardC-ANP", "ProbConserv-ANP")
_METRICS = ("MSE", "CE", "LL", "CRPS", "coverage90")


#: The ANP's standard-deviation floor per problem (default 1e-3). Stefan: 3e-2, chosen by the
#: log-likelihood of an extrapolation inside the training range (``benchmarks/
#: anp_variance_floor.py``: trained on p* in [0.60, 0.70], validated on [0.55, 0.60), the
#: direction of the paper's test value 0.5). With 1e-3 the ANP put the floor's variance on the
#: zero region ahead of its front, so where it placed the front too early it was confidently
#: wrong: the LL there was -38.7 (1e-2: -6.6; 3e-2: 1.07), while inside the range it fell from
#: 4.27 to 2.44 and the MSE improved (5.6e-3 -> 2.7e-3).
ANP_MIN_STD = {"stefan": 3e-2}

#: Parameter interval of the validation functions that calibrate the shock interval out of
#: range (:func:`calibrate_fronts`), on the other side of the training range from the paper's
#: out-of-range test value, so that no calibration function shares a test parameter (Stefan:
#: trained on p* in [0.55, 0.70], tested at 0.5 and 0.6; calibrated on [0.55, 0.70] and
#: [0.70, 0.80]).
SHOCK_EXTRAPOLATION_RANGES = {"stefan": (0.70, 0.80)}


@dataclass(frozen=True)
class GPMEConfig:
    """Settings of a GPME experiment; the defaults fit a 2-core laptop CPU in minutes.

    Attributes:
        problem: ``"diffusion"``, ``"pme"`` or ``"stefan"``.
        n_train, n_val: training / validation functions (parameters uniform in the problem's
            training range). Paper: 10,000 / 100.
        n_test: test functions per test parameter (same parameter, other context points).
            Paper: 50.
        epochs, batch_size, lr, patience: optimisation (paper: 500, 250, 1e-4, --). The ELBO
            has loss spikes at lr 1e-3 that can last ~30 epochs before the cosine schedule
            settles them; a patience of 15 stopped seed 1 at epoch 25 with a poor model
            (ANP MSE 8.6e-2). Without early stopping the same run recovers (2.1e-2, best
            epoch 99; its improvements are at most 21 epochs apart, so patience 40 keeps it).
        hidden: ANP width (paper: 128). The default 64 reached a validation loss of -3.59 in
            200 s on 2 CPU cores where 128 reached -2.48 in 270 s (Stefan, 1,000 functions).
        min_std: ANP predictive standard-deviation floor; ``None``: the problem's entry of
            ``ANP_MIN_STD`` (Stefan 3e-2, chosen without the test parameters) or 1e-3.
        n_latent: latent samples per prediction (mixture components).
        n_grid_t, n_grid_x: evaluation grid (paper: 201 x 201).
        n_shock_samples: joint posterior samples for the shock-position figure (paper: 500).
        n_shock_calibration: validation functions per parameter range that calibrate the
            shock interval (:func:`calibrate_fronts`; problems with a front only): drawn from
            the training range and from ``SHOCK_EXTRAPOLATION_RANGES`` where the problem has
            an entry, with seeds distinct from the training, validation and test functions;
            0: the posterior samples' own interval; else at least 9.
        nonneg: also report ``ProbConserv+NonNeg-<model>``: ProbConserv plus ``u >= 0`` (a QP
            per mixture component and time, :func:`physguard.nonnegative`) on problems whose
            solutions are non-negative (all but diffusion).
        seed: seeds data, initial weights and latent samples.
        device: where the ANP trains and predicts: ``"auto"`` (CUDA when available, else the
            CPU), ``"cpu"`` or ``"cuda"``. The constraint updates and metrics run on the CPU
            in float64.
    """

    problem: str = "stefan"
    n_train: int = 1000
    n_val: int = 100
    n_test: int = 10
    epochs: int = 100
    batch_size: int = 50
    lr: float = 1e-3
    patience: int = 40
    hidden: int = 64
    min_std: float | None = None
    n_latent: int = 16
    n_grid_t: int = 201
    n_grid_x: int = 201
    n_shock_samples: int = 500
    n_shock_calibration: int = 20
    nonneg: bool = True
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        get_problem(self.problem)
        if self.min_std is None:
            object.__setattr__(self, "min_std", ANP_MIN_STD.get(self.problem, 1e-3))
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        check_counts(self, exempt=("seed", "n_shock_calibration"))
        if self.n_shock_calibration < 0 or 0 < self.n_shock_calibration < 9:
            raise ValueError(f"n_shock_calibration must be 0 (no calibration) or >= 9 (the "
                             f"fewest functions with a finite 90 % split-conformal quantile), "
                             f"got {self.n_shock_calibration}")

    @classmethod
    def paper(cls, problem: str, **overrides) -> GPMEConfig:
        """The paper's sizes (Hansen et al. 2023, App. C): for a GPU."""
        settings = dict(problem=problem, n_train=10_000, n_val=100, n_test=50, epochs=500,
                        batch_size=250, lr=1e-4, patience=50, hidden=128, n_latent=50)
        settings.update(overrides)
        return cls(**settings)

    @property
    def problem_class(self) -> type[GPMEProblem]:
        return get_problem(self.problem)

    def torch_device(self) -> torch.device:
        """The resolved device (``"auto"``: CUDA if available)."""
        return resolve_device(self.device)


# -- data -> network inputs ---------------------------------------------------------------------

def _inputs(cls: type[GPMEProblem], t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(t, x)`` scaled to ``[0, 1]^2``, float32, shape ``(..., 2)``."""
    (t0, t1), (a, b) = cls.t_range, cls.domain
    return torch.stack([(t - t0) / (t1 - t0), (x - a) / (b - a)], dim=-1).float()


def to_np_data(data: FunctionSamples) -> NPData:
    """Network tensors; the targets include the context points (Kim et al. 2019)."""
    cls = data.problem_class
    xc = _inputs(cls, data.context_t, data.context_x)
    xt = torch.cat([xc, _inputs(cls, data.target_t, data.target_x)], dim=1)
    yc = data.context_u.float()
    yt = torch.cat([yc, data.target_u.float()], dim=1)
    return NPData(xc, yc, xt, yt, data.params.float())


# -- prediction and constraints -----------------------------------------------------------------

@dataclass
class Evaluation:
    """Predictions of every method for the test functions of one parameter value."""

    param: float
    index: torch.Tensor  # (n,) positions of these functions in the whole evaluation set
    truth: torch.Tensor  # (nt, nx)
    mass: torch.Tensor  # (nt,)
    mean: dict[str, torch.Tensor]  # method -> (n_test, nt, nx)
    var: dict[str, torch.Tensor]
    fronts: dict[str, torch.Tensor]  # method -> (n, n_shock_samples) front samples at t*
    true_front: float | None  # the exact front at t*
    nonneg: dict[str, list] = dataclasses.field(default_factory=dict)  # method -> QP reports
    # Problems whose front is a jump: ``fronts`` is the step fit at the jump's middle, and
    # this holds the same samples read with the paper's rule (first u <= 0).
    fronts_paper: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    # method -> (n,) the scale of each function's shock interval (:func:`front_scale`)
    front_scale: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)


NONNEG = "ProbConserv+NonNeg-"


def method_names(predictors: list[GridPredictor], nonneg: bool = False) -> list[str]:
    """The methods an evaluation reports: each black box, then its HardC / ProbConserv forms
    (and ``ProbConserv+NonNeg-<name>`` with ``nonneg``)."""
    names = []
    for p in predictors:
        if not p.constrain:
            names.append(p.name)
            continue
        names += [p.name, f"HardC-{p.name}", f"ProbConserv-{p.name}"]
        if nonneg:
            names.append(NONNEG + p.name)
    if len(set(names)) != len(names):
        raise ValueError(f"black boxes must have distinct names, got {names}")
    return names


def _constrained_components(predictor: GridPredictor, components: Gaussian, constraint,
                            nonneg: bool, reports: dict) -> dict[str, Gaussian]:
    """Per mixture component: unconstrained, HardC, ProbConserv (the paper's per-sample update),
    and ProbConserv + non-negativity (its QP report appended to ``reports[method]``)."""
    name = predictor.name
    if not predictor.constrain:
        return {name: components}
    post = probconserv(components, constraint)
    out = {name: components, f"HardC-{name}": hardc(components, constraint),
           f"ProbConserv-{name}": post}
    if nonneg:
        out[NONNEG + name], report = nonnegative(components, constraint, posterior=post)
        reports.setdefault(NONNEG + name, []).append(report)
    return out


def _mixture_samples(components: Gaussian, n: int, generator: torch.Generator) -> torch.Tensor:
    """Joint samples of an equal-weight mixture: pick a component, sample its full covariance."""
    draws = components.sample(n, generator=generator)  # (n, S, N)
    pick = torch.randint(components.batch_shape[0], (n,), generator=generator)
    return draws[torch.arange(n), pick]


def evaluate_param(predictors: list[GridPredictor], cls: type[ConservationProblem],
                   param: float, contexts: NPData, index: torch.Tensor, t_grid: torch.Tensor,
                   x_grid: torch.Tensor, config: GPMEConfig, generator: torch.Generator,
                   progress: bool = True) -> Evaluation:
    """Predict on the grid from each function's context points and apply the constraints.

    ``contexts`` holds the context inputs ``xc (n, Nc, 2)`` and values ``yc (n, Nc)`` of
    ``n`` functions that share the parameter ``param`` (their targets are not used). Every
    black box in ``predictors`` predicts them; see :func:`method_names` for what is reported.
    """
    problem = cls(param)
    nt, nx = t_grid.shape[0], x_grid.shape[0]
    tt, xx = torch.meshgrid(t_grid, x_grid, indexing="ij")
    truth = problem.solution(tt, xx)
    mass = problem.mass(t_grid)
    constraint = mass_constraint(x_grid, mass)  # G (1, nx), b (nt, 1)
    grid_inputs = _inputs(cls, tt.reshape(-1), xx.reshape(-1))
    n = len(contexts)
    use_nonneg = config.nonneg and cls.nonnegative
    methods = method_names(predictors, use_nonneg)
    reports: dict[str, list] = {}
    mean = {m: torch.empty(n, nt, nx, dtype=torch.float64) for m in methods}
    var = {m: torch.empty(n, nt, nx, dtype=torch.float64) for m in methods}
    fronts: dict[str, torch.Tensor] = {}
    fronts_paper: dict[str, torch.Tensor] = {}
    front_scales: dict[str, torch.Tensor] = {}
    i_star = int(torch.argmin((t_grid - cls.t_star).abs()))
    jump = problem.jump_level(float(t_grid[i_star])) if cls.has_shock else None
    true_front = float(problem.shock_position(t_grid[i_star])) if cls.has_shock else None
    for predictor in predictors:
        stream = predictor.predict(contexts, grid_inputs, nt, nx, generator)
        for i, components in tqdm(enumerate(stream), total=n, unit="fn", disable=not progress,
                                  leave=False, desc=f"{predictor.name} "
                                  f"{cls.parameter_name}={param:g}"):
            constrained = _constrained_components(predictor, components, constraint,
                                                  use_nonneg, reports)
            for method, post in constrained.items():
                mixed = moment_match(post, dim=0)
                mean[method][i] = mixed.mean
                var[method][i] = mixed.var
                if cls.has_shock:  # downstream task: joint samples of the profile at t*
                    samples = _mixture_samples(post[:, i_star], config.n_shock_samples,
                                               generator)
                    paper_rule = M.front_position(samples, x_grid)
                    fronts.setdefault(method, torch.empty(n, config.n_shock_samples,
                                                          dtype=torch.float64))
                    if jump is None:
                        fronts[method][i] = paper_rule
                    else:
                        fronts[method][i] = M.step_front_position(samples, x_grid, jump)
                        fronts_paper.setdefault(method, torch.empty_like(fronts[method]))
                        fronts_paper[method][i] = paper_rule
            if cls.has_shock:  # one scale for the black box and its constrained forms
                scale = front_scale(mean[predictor.name][i, i_star], x_grid, mass[i_star],
                                    jump)
                for method in constrained:
                    front_scales.setdefault(method, torch.empty(n, dtype=torch.float64))
                    front_scales[method][i] = scale
    return Evaluation(param, index, truth, mass, mean, var, fronts, true_front, reports,
                      fronts_paper, front_scales)


def front_scale(black_box_mean: torch.Tensor, x: torch.Tensor, mass: torch.Tensor | float,
                jump: float | None) -> float:
    """The scale of a function's shock interval: how far the front must move to explain the
    black box's conservation error, at least one grid cell.

    A front of height ``h`` displaced by ``d`` changes the total by about ``h d``, so the
    black box's error in the conserved total, ``|int mu dx - U(t*)|``, is the displacement it
    implies: ``delta = |int mu dx - U(t*)| / h``, with ``h = 2 jump`` (the jump's height) or,
    where the front is not a jump, the black box's largest value at ``t*``. The interval of
    every method built on that black box (ProbConserv included, whose own total is exact) is
    ``center +- q max(delta, dx)``, ``q`` calibrated on validation functions
    (:func:`calibrate_fronts`). Why not the posterior's own spread: on the Stefan validation
    functions (20 in the training range, 20 at p* 0.70 .. 0.80) the ProbConserv-ANP
    posterior's sd of the front is *smaller* beyond the training range (0.0058) than inside it
    (0.0098) while its error is 3.5x larger (0.0230 against 0.0066): the median error / sd
    goes from 0.57 to 3.82. The scale grows with the error instead (0.0414 against 0.0143),
    and the median error / scale stays put (ProbConserv-ANP 0.54 and 0.55, the ANP 1.06 and
    1.08) (``benchmarks/results/stefan_shock_interval.md``).

    Args:
        black_box_mean: ``(N,)`` the black box's mean at ``t*`` on the grid ``x`` ``(N,)``.
        mass: the exact total ``U(t*)``.
        jump: the middle of the jump at ``t*`` (``problem.jump_level``), or ``None``.

    Returns:
        the scale, in units of ``x``.
    """
    total = float(black_box_mean.to(x.dtype) @ trapezoid_weights(x))
    height = 2 * jump if jump is not None else float(black_box_mean.abs().max())
    cell = float(x[1] - x[0])
    if height <= 0:
        return cell
    return max(abs(total - float(mass)) / height, cell)


# -- metrics ------------------------------------------------------------------------------------

def metric_records(evaluation: Evaluation, x_grid: torch.Tensor, i_star: int,
                   front_scores: dict[str, list[float]] | None = None) -> list[dict]:
    """One record per method: metrics at t* and (suffix ``_all``) averaged over all times;
    with ``front_scores`` (:func:`calibrate_fronts`) the shock interval is the calibrated one
    (:func:`_front_summary`)."""
    records = []
    truth, mass = evaluation.truth, evaluation.mass
    for method in evaluation.mean:
        mu, var = evaluation.mean[method], evaluation.var[method]
        per_time = {  # each (n_test, nt)
            "MSE": M.mse(mu, truth),
            "CE": M.conservation_error(mu, x_grid, mass),
            "LL": M.gaussian_log_likelihood(mu, var, truth),
            "CRPS": M.crps_gaussian(mu, var, truth),
            "coverage90": M.interval_coverage(mu, var, truth, 0.9),
        }
        record = {"method": method, "param": evaluation.param}
        for name, values in per_time.items():
            record[name] = float(values[:, i_star].mean())
        for name, values in per_time.items():
            record[f"{name}_all"] = float(values.mean())
        for name, values in per_time.items():
            n = values.shape[0]
            record[f"{name}_se"] = float(values[:, i_star].std() / math.sqrt(n)) if n > 1 else 0.0
        # Does the black box's variance track its error? (What decides whether ProbConserv's
        # variance-weighted correction lowers the MSE.) Pearson correlation of sd and |error|
        # across x at t*, mean over functions.
        err = (mu[:, i_star] - truth[i_star]).abs()
        record["sd_err_corr"] = _mean_corr(var[:, i_star].sqrt(), err)
        base = _base_method(method, evaluation.mean)
        if base is not None:
            # The update delta = mean~ - mu against the ideal correction -(mu - truth) at t*:
            # cosine (mean over functions) and the fraction of the squared error removed
            # (all functions together, i.e. 1 - MSE / MSE of the black box at t*).
            e = evaluation.mean[base][:, i_star] - truth[i_star]
            delta = mu[:, i_star] - evaluation.mean[base][:, i_star]
            norms = (e.norm(dim=-1) * delta.norm(dim=-1)).clamp(min=1e-300)
            record["update_cos"] = float((-(e * delta).sum(-1) / norms).mean())
            record["update_gain"] = float(1 - (e + delta).square().sum()
                                          / e.square().sum().clamp(min=1e-300))
        if method in evaluation.nonneg:
            # How often the QP changed ProbConserv's answer (rows = component x time), and how
            # much (mean |change| over the changed rows' points; the largest change).
            reports = evaluation.nonneg[method]
            rows = sum(r.n_rows for r in reports)
            changed = sum(r.n_changed for r in reports)
            record["nonneg_changed_frac"] = changed / rows
            record["nonneg_mean_abs_change"] = (
                sum(r.mean_abs_change * r.n_changed for r in reports) / changed
                if changed else 0.0)
            record["nonneg_max_change"] = max(r.max_change for r in reports)
            record["nonneg_polished_frac"] = (sum(r.n_polished for r in reports) / changed
                                              if changed else 1.0)
        if method in evaluation.fronts:
            # Shock position (Hansen et al. 2023, Sec. 4.2): per function, the posterior of
            # the front from joint samples; its mean's error and the 90 % interval's coverage.
            # Fronts that are jumps: read by the step fit, and by the paper's rule (suffix
            # "_paper") on the same samples.
            record["shock_true"] = evaluation.true_front
            scores = (front_scores or {}).get(method)
            scale = evaluation.front_scale.get(method)
            record.update(_front_summary(evaluation.fronts[method], evaluation.true_front,
                                         scale, scores))
            if method in evaluation.fronts_paper:
                record.update({f"{k}_paper": v for k, v in _front_summary(
                    evaluation.fronts_paper[method], evaluation.true_front).items()})
        records.append(record)
    return records


def _front_summary(fronts: torch.Tensor, truth_x: float, scale: torch.Tensor | None = None,
                   scores: list[float] | None = None) -> dict[str, float]:
    """Posterior mean (averaged over functions), sd, mean absolute error and 90 % interval
    coverage and width of the front from ``fronts`` ``(n_functions, n_samples)``.

    The interval is the posterior samples' 5-95 % range, or with ``scale`` ``(n_functions,)``
    and calibration ``scores`` the calibrated ``mean +- q scale`` (:func:`front_interval`);
    the posterior's own interval is then reported as ``shock_coverage90_posterior`` and
    ``shock_width90_posterior``."""
    posterior_mean = fronts.mean(1)
    lo, hi = torch.quantile(fronts, torch.tensor([0.05, 0.95], dtype=fronts.dtype), dim=1)
    posterior = {"shock_coverage90": float(((lo <= truth_x) & (truth_x <= hi)).double().mean()),
                 "shock_width90": float((hi - lo).mean())}
    summary = {"shock_mean": float(posterior_mean.mean()),
               "shock_sd": float(fronts.std(1).mean()),
               "shock_mae": float((posterior_mean - truth_x).abs().mean())}
    if scale is None or scores is None:
        return summary | posterior
    half = front_interval(scores, 0.9) * scale
    inside = (posterior_mean - truth_x).abs() <= half
    return summary | {"shock_coverage90": float(inside.double().mean()),
                      "shock_width90": float(2 * half.mean())} \
        | {f"{k}_posterior": v for k, v in posterior.items()}


def front_interval(scores: list[float], level: float) -> float:
    """The split-conformal factor ``q`` of the shock interval ``mean +- q scale`` at ``level``
    (Lei et al., JASA 2018, "Distribution-free predictive inference for regression",
    normalised residuals): the ``ceil((n + 1) level)``-th smallest of the ``n`` calibration
    scores ``|x*_true - mean| / scale``; infinite when ``n`` is too small for ``level``.

    Raises:
        ValueError: no scores, or ``level`` outside ``(0, 1)``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if not scores:
        raise ValueError("no calibration scores")
    ordered = sorted(scores)
    k = math.ceil((len(ordered) + 1) * level)
    return math.inf if k > len(ordered) else float(ordered[k - 1])


def calibrate_fronts(predictors: list[GridPredictor], config: GPMEConfig,
                     progress: bool = True) -> dict:
    """Calibration scores of the shock interval from validation functions.

    ``config.n_shock_calibration`` functions with parameters uniform in the problem's
    training range (seed ``seed + 3``) and as many in its ``SHOCK_EXTRAPOLATION_RANGES``
    entry (seed ``seed + 4``), where it has one: never a test function or parameter. Each is
    predicted and constrained as the test functions are; its score per method is ``|x*_true
    - mean| / scale`` (the posterior mean of the front, :func:`front_scale`). The interval at
    level ``P`` is then ``mean +- front_interval(scores, P) scale``.

    Returns:
        ``{"scores": {method: [score, ...]}, "params": [...], "ranges": [...]}`` (JSON-ready).
    """
    cls = config.problem_class
    ranges = [tuple(cls.train_range)]
    if config.problem in SHOCK_EXTRAPOLATION_RANGES:
        ranges.append(SHOCK_EXTRAPOLATION_RANGES[config.problem])
    t_grid = torch.linspace(*cls.t_range, config.n_grid_t, dtype=torch.float64)
    x_grid = torch.linspace(*cls.domain, config.n_grid_x, dtype=torch.float64)
    generator = torch.Generator().manual_seed(config.seed + 5)
    scores: dict[str, list[float]] = {}
    params: list[float] = []
    for k, (lo, hi) in enumerate(ranges):
        draw = torch.Generator().manual_seed(config.seed + 3 + k)
        values = lo + (hi - lo) * torch.rand(config.n_shock_calibration, generator=draw,
                                             dtype=torch.float64)
        functions = sample_functions(cls, len(values), params=values.tolist(),
                                     seed=config.seed + 3 + k)
        contexts = to_np_data(functions)
        for j in tqdm(range(len(values)), unit="fn", disable=not progress, leave=False,
                      desc=f"shock calibration {cls.parameter_name} in [{lo:g}, {hi:g}]"):
            one = contexts.batch(slice(j, j + 1))
            evaluation = evaluate_param(predictors, cls, float(values[j]), one,
                                        torch.arange(1), t_grid, x_grid, config, generator,
                                        progress=False)
            params.append(float(values[j]))
            for method, fronts in evaluation.fronts.items():
                error = abs(float(fronts[0].mean()) - evaluation.true_front)
                scores.setdefault(method, []).append(
                    error / float(evaluation.front_scale[method][0]))
    return {"scores": scores, "params": params, "ranges": [list(r) for r in ranges]}


def _mean_corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of the Pearson correlation of ``a`` and ``b`` (rows with no spread: 0)."""
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    denom = a.norm(dim=-1) * b.norm(dim=-1)
    corr = torch.where(denom > 0, (a * b).sum(-1) / denom.clamp(min=1e-300),
                       torch.zeros_like(denom))
    return float(corr.mean())


def _base_method(method: str, methods) -> str | None:
    """The unconstrained black box a constrained method started from (``None`` if none)."""
    for prefix in ("ProbConserv-", "HardC-", NONNEG):
        if method.startswith(prefix) and method[len(prefix):] in methods:
            return method[len(prefix):]
    return None


def markdown_table(records: list[dict], cls: type[GPMEProblem], t_star: float) -> str:
    """The paper-style table: per test parameter and method, metrics at t* and over all times."""
    p = cls.parameter_name
    head = (f"| {p} | method | MSE | CE | LL | CRPS | cov90 | MSE (all t) | CE (all t) | "
            "LL (all t) | CRPS (all t) | cov90 (all t) |")
    lines = [f"Metrics at t* = {t_star:g} (mean over test functions, standard error in "
             "parentheses) and averaged over all evaluation times.", "", head,
             "|" + "---|" * 12]
    for r in records:
        at = [f"{r['MSE']:.3e} ({r['MSE_se']:.1e})", f"{r['CE']:.2e}",
              f"{r['LL']:.3f} ({r['LL_se']:.2f})", f"{r['CRPS']:.3e}", f"{r['coverage90']:.3f}"]
        al = [f"{r['MSE_all']:.3e}", f"{r['CE_all']:.2e}", f"{r['LL_all']:.3f}",
              f"{r['CRPS_all']:.3e}", f"{r['coverage90_all']:.3f}"]
        lines.append(f"| {r['param']:g} | {r['method']} | " + " | ".join(at + al) + " |")
    if "shock_mae" in records[0]:
        paper = any("shock_mae_paper" in r for r in records)  # a jump at some parameter
        calibrated = any("shock_coverage90_posterior" in r for r in records)
        lines += ["", "Shock position at t* (posterior of the front from joint samples of "
                  "each test function; mean over functions)."
                  + (" Where the front is a jump, each sample is read by the best single step "
                     "across the middle of the jump (`step_front_position`) and the last three "
                     "columns read the same samples by the paper's rule, the first grid point "
                     "with u <= 0; elsewhere (-) the paper's rule is the main reading."
                     if paper else " Read by the paper's rule: the first grid point with "
                     "u <= 0.")
                  + (" The 90 % interval is calibrated: posterior mean +- q scale, where scale "
                     "is how far the front must move to explain the black box's error in the "
                     "conserved total at t* (|int mu dx - U(t*)| / the jump's height; at least "
                     "one grid cell; the same for the black box and its constrained forms), and "
                     "q the split-conformal quantile of |true front - posterior mean| / scale "
                     "over validation functions from the training range and, where the problem "
                     "has one, a range beyond it on the other side from the test values "
                     "(`front_calibration.json`; never a test parameter). The posterior's own "
                     "5-95 % interval of the front samples is in the last columns before the "
                     "paper's rule; `shock_reliability.png` shows both at 50 ... 95 %."
                     if calibrated else " The 90 % interval: the 5-95 % range of the front "
                     "samples."), "",
                  f"| {p} | method | true x* | posterior mean | mean abs. error | sd | "
                  "90 % coverage | 90 % width |"
                  + (" posterior 90 % coverage | posterior 90 % width |" if calibrated else "")
                  + (" u <= 0: posterior mean | u <= 0: mean abs. error | "
                     "u <= 0: 90 % coverage |" if paper else ""),
                  "|" + "---|" * (8 + 2 * calibrated + 3 * paper)]
        for r in records:
            line = (f"| {r['param']:g} | {r['method']} | {r['shock_true']:.4f} | "
                    f"{r['shock_mean']:.4f} | {r['shock_mae']:.4f} | {r['shock_sd']:.4f} | "
                    f"{r['shock_coverage90']:.2f} | "
                    + (f"{r['shock_width90']:.4f} |" if "shock_width90" in r else "- |"))
            if calibrated:
                line += (f" {r['shock_coverage90_posterior']:.2f} | "
                         f"{r['shock_width90_posterior']:.4f} |"
                         if "shock_coverage90_posterior" in r else " - | - |")
            if paper and "shock_mae_paper" in r:
                line += (f" {r['shock_mean_paper']:.4f} | {r['shock_mae_paper']:.4f} | "
                         f"{r['shock_coverage90_paper']:.2f} |")
            elif paper:  # no jump at this parameter: the main columns are the paper's rule
                line += " - | - | - |"
            lines.append(line)
    nonneg = [r for r in records if "nonneg_changed_frac" in r]
    if nonneg:
        lines += ["", "Non-negativity QP on top of ProbConserv (rows: mixture component x time; "
                  "change: |u* - ProbConserv mean| over the changed rows).", "",
                  f"| {p} | method | rows changed | mean abs. change | max change | "
                  "solved exactly |", "|" + "---|" * 6]
        for r in nonneg:
            lines.append(f"| {r['param']:g} | {r['method']} | "
                         f"{100 * r['nonneg_changed_frac']:.1f} % | "
                         f"{r['nonneg_mean_abs_change']:.2e} | {r['nonneg_max_change']:.2e} | "
                         f"{100 * r['nonneg_polished_frac']:.0f} % |")
    return "\n".join(lines) + "\n"


# -- the run ------------------------------------------------------------------------------------

def run_gpme(config: GPMEConfig, out: str | Path, progress: bool = True,
             figures: bool = True, overwrite: bool = False) -> list[dict]:
    """Run the whole experiment and write the run folder ``out``; returns the metric records.

    The folder is built beside ``out`` and moved into place when complete
    (:func:`physguard._io.run_folder`): a failed or interrupted run leaves ``out`` as it was.

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
        ValueError: an unusable ``out`` or device (before any work is done).
    """
    config.torch_device()  # a missing CUDA device is reported before anything is written
    with run_folder(out, overwrite) as folder:
        return _run_gpme_into(config, folder, progress, figures)


def _run_gpme_into(config: GPMEConfig, out: Path, progress: bool, figures: bool) -> list[dict]:
    cls = config.problem_class
    started = time.perf_counter()
    write_json(out / "config.json", dataclasses.asdict(config))

    train = sample_functions(cls, config.n_train, seed=config.seed)
    val = sample_functions(cls, config.n_val, seed=config.seed + 1)
    torch.manual_seed(config.seed)
    device = config.torch_device()
    model = ANP(x_dim=2, hidden=config.hidden, min_std=config.min_std).to(device)
    history = train_anp(
        model, to_np_data(train).to(device), to_np_data(val).to(device),
        TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                    patience=config.patience, seed=config.seed),
        progress=progress,
    )
    train_seconds = time.perf_counter() - started
    save_checkpoint(out / "model.pt", model, problem=config.problem,
                    experiment=json.dumps(dataclasses.asdict(config)))
    write_json(out / "training.json", {
        "train_loss": history.train_loss, "val_loss": history.val_loss,
        "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
        "seconds": train_seconds})

    predictors = [ANPPredictor(model, config.n_latent)]
    calibration = (calibrate_fronts(predictors, config, progress)
                   if config.problem_class.has_shock and config.n_shock_calibration else None)
    records = evaluate_contexts(predictors, config, evaluation_groups(config), out,
                                progress, figures, front_calibration=calibration)
    write_json(out / "timing.json", {"train_seconds": train_seconds,
                                     "total_seconds": time.perf_counter() - started})
    return records


def evaluation_groups(config: GPMEConfig) -> list[tuple[float, NPData, torch.Tensor]]:
    """The paper's test functions: ``n_test`` per test parameter (seeds ``seed + 100 + k``),
    as the ``(param, contexts, index)`` groups of :func:`evaluate_contexts`."""
    cls = config.problem_class
    groups = []
    for k, param in enumerate(cls.test_params):
        test = sample_functions(cls, config.n_test, params=[param] * config.n_test,
                                seed=config.seed + 100 + k)
        groups.append((param, to_np_data(test), torch.arange(k * len(test),
                                                             (k + 1) * len(test))))
    return groups


def evaluate_contexts(predictors: list[GridPredictor], config: GPMEConfig,
                      groups: list[tuple[float, NPData, torch.Tensor]], out: Path,
                      progress: bool = True, figures: bool = True,
                      title: str = "ProbConserv-ANP", predictions: bool = True,
                      figure_methods: list[str] | None = None,
                      front_calibration: dict | None = None) -> list[dict]:
    """Predict, constrain and score every group of functions; write the evaluation files.

    ``groups`` is a list of ``(param, contexts, index)``: functions sharing a parameter, and
    their positions in ``predictions.npz``. Writes ``metrics.json``, ``table.md``,
    ``predictions.npz`` (unless ``predictions=False``) and the figures (of
    ``figure_methods``, default all) to ``out``; returns the metric records. With
    ``front_calibration`` (:func:`calibrate_fronts`) the shock interval is the calibrated one,
    the calibration is written to ``front_calibration.json`` and its reliability figure to
    ``shock_reliability.png``.
    """
    cls = config.problem_class
    t_grid = torch.linspace(*cls.t_range, config.n_grid_t, dtype=torch.float64)
    x_grid = torch.linspace(*cls.domain, config.n_grid_x, dtype=torch.float64)
    i_star = int(torch.argmin((t_grid - cls.t_star).abs()))
    generator = torch.Generator().manual_seed(config.seed + 2)
    evaluations, records = [], []
    for param, contexts, index in groups:
        evaluation = evaluate_param(predictors, cls, param, contexts, index, t_grid, x_grid,
                                    config, generator, progress)
        evaluations.append(evaluation)
        records.extend(metric_records(evaluation, x_grid, i_star,
                                      (front_calibration or {}).get("scores")))
    write_json(out / "metrics.json", records)
    if front_calibration is not None:
        write_json(out / "front_calibration.json", front_calibration)
    write_text(out / "table.md", f"# {cls.__name__}: {title}\n\n"
               + markdown_table(records, cls, float(t_grid[i_star])))
    if predictions:
        _write_predictions(out / "predictions.npz", t_grid, x_grid, evaluations)
    if figures:
        from .. import plots

        if figure_methods is not None:
            keep = [m for m in figure_methods if m in evaluations[0].mean]
            evaluations = [dataclasses.replace(
                e, mean={m: e.mean[m] for m in keep}, var={m: e.var[m] for m in keep},
                fronts={m: e.fronts[m] for m in keep if m in e.fronts}) for e in evaluations]
        plots.gpme_figures(out, cls, evaluations, t_grid, x_grid, i_star)
        if front_calibration is not None and evaluations[0].fronts:
            plots.shock_reliability(out / "shock_reliability.png", cls, evaluations,
                                    front_calibration["scores"], front_interval)
    return records


def _write_predictions(path: Path, t_grid, x_grid, evaluations: list[Evaluation]) -> None:
    arrays = {"t": t_grid.numpy(), "x": x_grid.numpy()}
    index = torch.cat([e.index for e in evaluations])
    order = torch.argsort(index)  # back to the functions' own numbering
    arrays["param"] = torch.cat([torch.full((len(e.index),), e.param, dtype=torch.float64)
                                 for e in evaluations])[order].numpy()
    for method in evaluations[0].mean:
        for kind in ("mean", "var"):
            values = torch.cat([getattr(e, kind)[method] for e in evaluations])[order]
            arrays[f"{method}/{kind}"] = values.float().numpy()
    write_npz(path, arrays, compress=True)
