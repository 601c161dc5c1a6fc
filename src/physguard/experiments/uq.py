"""Both guarantees with uncertainty: ensembles of FNOs and BOON-FNOs, conditioned by ProbConserv
on the boundary rows and the conservation rows at once (issue 12; ``physguard run PROBLEM
--uq``).

For each of ``"FNO"`` and ``"BOON"``, ``n_members`` operators are trained from independent
initialisations (seeds ``seed .. seed + M - 1``) on the same data; their predictions become a
Gaussian per sample and time step (:class:`~physguard.models.OperatorEnsemble`: members' mean,
members' spread plus a diagonal part, both fitted by maximum likelihood on ``n_cal`` held-out
calibration samples, never the test samples; where the problem has an out-of-range test set
(heat, Stokes), on ``n_cal`` more from a range outside training on the other side,
``EXTRAPOLATION_RANGES``, so that the fitted variance grows with the members' spread as the
error does out of range). ``ProbConserv-*`` conditions the ensemble's
Gaussian without the low-rank spread, its calibrated variance averaged over the grid of each
sample and step (:func:`~physguard.models.ensemble.isotropic_prior`;
:mod:`physguard.models.ensemble` says why), on::

    the wall rows   (physguard.boundary_constraint: Dirichlet values, Neumann stencils,
                     the periodic pair; the same stencils BOON enforces)
    the mass row    sum_j w_j u_j = U(t), trapezoid weights, U(t) = U(0) + int_0^t F(s) ds
                    from the boundary fluxes F (physguard.mass_from_fluxes)

with one :func:`~physguard.probconserv` update (``noise_var = 0``: both hold exactly). The
models are evaluated on test samples of the training parameter range (``"in"``) and, where the
problem has a parameter (heat and Stokes: ``omega``; the cavity: the Reynolds number), of a
range outside it (``"out"``, as Mouli et al., ICML 2024,
"Using Uncertainty Quantification to Characterize and Improve Out-of-Domain Learning for
PDEs"). The run folder::

    config.json, members_fno.pt, members_boon.pt    configuration, every member's weights
    calibration.json   each model's fitted noise_var, spread_scale, local_scale, uniform_scale,
                       spread_power, reference_var per time step
    metrics.json     [{"model", "range", "rel_l2", "MSE", "boundary_error", "CE", "LL",
                       "CRPS", "coverage50", "coverage80", "coverage90", "coverage95", ...}]
    table.md         the two tables (in range, out of range)
    predictions.npz  x (N,), t (T,), params (n,), truth, left_values, right_values (n, T),
                     mass (n, T), "<model>/mean" and "<model>/var" (n, T, N): in range
    predictions_ood.npz                               the same, out of range
    uq_band.png, uq_mass.png, uq_boundary.png, uq_calibration.png
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics as M
from .._io import atomic_path, run_folder, write_json, write_npz, write_text
from ..boundary.walls import WALL_INDEX
from ..conditions import condition
from ..constraints import (
    LinearConstraint,
    block_constraints,
    boundary_constraint,
    cell_divergence,
    divergence_constraint,
    mass_constraint,
    mass_from_fluxes,
    probconserv,
    stack_constraints,
    trapezoid_weights_2d,
)
from ..datasets.operator import OperatorData, make_operator_data
from ..datasets.operator2d import PROBLEMS_2D, WALLS, OperatorData2d, make_operator_data_2d
from ..models.ensemble import ensemble_gaussian, fit_ensemble_noise, uninformative_at
from ..pdes.linear_bc import HeatNeumann, StokesSecond
from .boon import BOONConfig, build_operator, predict, split_data, train_operator
from .boon2d import (
    BOON2dConfig,
    _model,
    predict_2d,
    split_data_2d,
    train_operator_2d,
    wall_errors,
)

__all__ = ["UQConfig", "run_uq", "load_uq_config", "load_members", "UQ_MODELS", "UQ_PROBLEMS",
           "true_mass"]

UQ_MODELS = ("FNO-Ensemble", "BOON-Ensemble", "ProbConserv-FNO-Ensemble",
             "ProbConserv-BOON-Ensemble")
#: The 1-D problems with a conservation law whose total follows from the boundary fluxes, the
#: 2-D wave (insulated walls: constant total) and the cavity's velocity (zero divergence in
#: every cell: local conservation, sparse rows).
UQ_PROBLEMS = ("heat-neumann", "stokes", "burgers-periodic", "wave2d", "cavity")
#: Parameter ranges outside training (heat: omega in [2.01, 3.99]; Stokes: omega in [2, 6];
#: the cavity: Re = 100).
OOD_RANGES = {"heat-neumann": (4.01, 5.99), "stokes": (6.0, 9.0), "cavity": (300.0, 500.0)}
#: Nominal levels of the central intervals whose coverage every record gives
#: (``coverage50`` ... ``coverage95``).
LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Parameter ranges of the calibration samples that extrapolate, on the other side of the
#: training range than the out-of-range test samples (so no test parameter is near them):
#: the ensembles' variance is fitted on these and on the in-range calibration samples, so
#: the fit sees how the error grows against the members' spread outside the training range
#: (``benchmarks/results/uq_calibration.md``).
EXTRAPOLATION_RANGES = {"heat-neumann": (1.01, 1.99), "stokes": (1.0, 1.99)}


def _uq_operator(problem: str, setting: str | None, **overrides) -> BOONConfig | BOON2dConfig:
    """The members' training settings: the BOON run's CPU defaults, smaller so that
    2 x 5 members train in a few minutes on 2 cores. ``setting=None``: multi-step in 1-D (the
    time series that the mass and boundary figures show), single-step in 2-D: the cavity's
    velocity on an even grid (32 x 32: with an odd one the lid's walls admit no field with
    zero divergence in every cell, :mod:`physguard.constraints.local`), and the wave, whose
    multi-step (t, x, y) BOON members with Neumann walls on all four sides took over 12 minutes
    each on 2 cores (``--setting multi`` still runs them).

    Raises:
        ValueError: the multi-step cavity (the zero-divergence rows are built for one
            velocity snapshot; the multi-step velocity's two fields per step are not).
    """
    if problem == "cavity" and setting == "multi":
        raise ValueError("the cavity's --uq run is single step: its constraint rows are zero "
                         "divergence in every cell of one velocity snapshot, not of the "
                         "multi-step velocity's two fields per step (use --setting single)")
    setting = setting or ("single" if problem in PROBLEMS_2D else "multi")
    if problem in PROBLEMS_2D:
        sizes = dict(n_train=100, n_test=24, epochs=30)
        if problem == "cavity":
            # The UQ members keep BOON's per-layer correction (the ensembles of
            # benchmarks/results/uq_cavity.md were measured with it).
            sizes.update(n_points=32, field="velocity", kernel_correction=True,
                         input_walls=False)
        elif setting == "multi":  # the (t, x, y) operator: the bench's sizes (about 1 min a
            # member on 2 cores; 33 x 33 and 100 samples took over 4)
            sizes.update(n_points=25, n_train=60, n_test=20, epochs=20)
        sizes.update(overrides)
        return BOON2dConfig.default(problem, setting, **sizes)
    # The members keep the plain BOON wrapper (the UQ results were measured with it).
    sizes = dict(n_train=150, n_test=40, epochs=30, kernel_correction=True, input_walls=False)
    if setting == "multi":
        sizes.update(n_points=64, width=16, modes=12, epochs=20)
    sizes.update(overrides)
    return BOONConfig.default(problem, setting, **sizes)


@dataclass(frozen=True)
class UQConfig:
    """Settings of a UQ run.

    Attributes:
        problem: one of ``UQ_PROBLEMS``.
        n_members: ensemble size ``M`` (>= 2).
        n_cal: held-out samples on which each ensemble's noise level is fitted.
        ood_range: the out-of-range parameter interval (``None``: the problem's default in
            ``OOD_RANGES``; problems without a parameter have no out-of-range rows).
        extrapolation_range: the parameter interval of ``n_cal`` more calibration samples,
            outside the training range and away from ``ood_range`` (``None``: the problem's
            default in ``EXTRAPOLATION_RANGES``; the others calibrate in range only).
        operator: the members' data and training settings (a :class:`BOONConfig`, or a
            :class:`BOON2dConfig` for ``wave2d`` and ``cavity``: setting, sizes, epochs, seed,
            device).
    """

    problem: str = "heat-neumann"
    n_members: int = 5
    n_cal: int = 40
    ood_range: tuple[float, float] | None = None
    extrapolation_range: tuple[float, float] | None = None
    operator: BOONConfig | BOON2dConfig = field(
        default_factory=lambda: _uq_operator("heat-neumann", "multi"))

    def __post_init__(self):
        if self.problem not in UQ_PROBLEMS:
            raise ValueError(f"--uq supports {', '.join(UQ_PROBLEMS)}, not {self.problem!r}")
        if self.operator.problem != self.problem:
            raise ValueError(f"operator settings are for {self.operator.problem!r}, not "
                             f"{self.problem!r}")
        if self.problem == "cavity" and (self.operator.field != "velocity"
                                         or self.operator.n_points % 2):
            raise ValueError("the cavity's --uq run conditions the velocity on zero divergence "
                             "in every cell: it needs field 'velocity' and an even n_points "
                             f"(got {self.operator.field!r}, {self.operator.n_points})")
        if self.n_members < 2 or self.n_cal < 1:
            raise ValueError(f"need n_members >= 2 and n_cal >= 1, got {self.n_members}, "
                             f"{self.n_cal}")

    @classmethod
    def default(cls, problem: str, setting: str | None = None, n_members: int = 5,
                **overrides) -> UQConfig:
        """CPU defaults (``setting``: see ``_uq_operator``); ``overrides`` go to the
        members' :class:`BOONConfig` / :class:`BOON2dConfig`."""
        return cls(problem=problem, n_members=n_members,
                   operator=_uq_operator(problem, setting, **overrides))

    @property
    def out_range(self) -> tuple[float, float] | None:
        return self.ood_range or OOD_RANGES.get(self.problem)

    @property
    def calibration_range(self) -> tuple[float, float] | None:
        """The extrapolating calibration samples' parameter interval, or ``None``."""
        return self.extrapolation_range or EXTRAPOLATION_RANGES.get(self.problem)


def true_mass(data: OperatorData) -> torch.Tensor:
    """``U(t) = U(0) + int_0^t F(s) ds`` per sample and target time, ``(n, T)`` float64.

    ``U(0)`` is the integral of the known initial condition; ``F`` the net inflow through
    the walls: heat ``kappa (u_x(1) - u_x(0))``, Stokes ``nu (u_y(1) - u_y(0))``, periodic
    Burgers 0 (the flux ``u^2 / 2`` leaves where it enters; ``U(0)`` is the field's exact
    mean, stored as the sample's ``params``).

    Raises:
        ValueError: a problem without a flux form here.
    """
    t = data.t
    if data.problem == "burgers-periodic":  # params: the exact total of each initial field
        return data.params[:, None].expand(len(data), t.shape[0]).clone()
    if data.problem not in ("heat-neumann", "stokes"):
        raise ValueError(f"no conservation law in flux form for {data.problem}")
    rows = []
    for omega in data.params.tolist():
        pde = (HeatNeumann if data.problem == "heat-neumann" else StokesSecond)(omega)
        rows.append(mass_from_fluxes(float(pde.mass(0.0)), pde.net_inflow, t))
    return torch.stack(rows)


def constraint_rows(data: OperatorData, mass: torch.Tensor):
    """The wall rows and the mass row of every test sample and time: batch ``(n, T)``."""
    left = condition(data.left_type, data.left_values)
    right = condition(data.right_type, data.right_values)
    return stack_constraints(boundary_constraint(data.x, left=left, right=right),
                             mass_constraint(data.x, mass))


def _metrics(name: str, mean, var, data: OperatorData, mass: torch.Tensor,
             range_name: str) -> dict:
    truth = data.targets
    h = float(data.x[1] - data.x[0])
    sides = [M.boundary_error(mean, getattr(data, f"{s}_type"), getattr(data, f"{s}_values"),
                              s, h) for s in ("left", "right")]
    return {
        "model": name, "range": range_name, **_probabilistic(mean, var, truth),
        "boundary_error": float(torch.stack(sides).mean()),
        "boundary_error_max": float(torch.stack(sides).max()),
        "CE": float(M.conservation_error(mean, data.x, mass).mean()),
        "CE_max": float(M.conservation_error(mean, data.x, mass).max()),
    }


def run_uq(config: UQConfig, out: str | Path, progress: bool = True, figures: bool = True,
           overwrite: bool = False, members_from: str | Path | None = None) -> list[dict]:
    """Train both ensembles, condition them, evaluate in and out of range; write ``out``
    (complete or absent, :func:`physguard._io.run_folder`).

    ``members_from``: a finished run folder of the same ``config`` whose saved members are
    loaded (``weights_only``) instead of trained: the calibration and evaluation rerun with
    the current code, the training is not repeated (its time is then not in the table).

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
        ValueError: an unusable ``out`` or device; ``members_from`` of another configuration.
    """
    config.operator.torch_device()
    if members_from is not None:
        # The members depend on the problem, their number and their training settings only
        # (the calibration and test data are remade here).
        saved = Path(members_from) / "config.json"
        ours = json.loads(json.dumps(dataclasses.asdict(config)))
        theirs = json.loads(saved.read_text()) if saved.is_file() else {}
        if any(theirs.get(k) != ours[k] for k in ("problem", "n_members", "operator")):
            raise ValueError(f"{members_from} is not a --uq run of this configuration")
    with run_folder(out, overwrite) as folder:
        return _run_uq_into(config, folder, progress, figures, members_from)


def _data(config: UQConfig, progress: bool):
    op = config.operator
    if config.problem in PROBLEMS_2D:
        train, test = split_data_2d(op, progress)
        cal = make_operator_data_2d(op.problem, config.n_cal, op.setting, op.field,
                                    op.n_points, op.n_steps, seed=op.seed + 7919,
                                    progress=progress)
        tests = {"in": test}
        if config.out_range is not None:
            tests["out"] = make_operator_data_2d(op.problem, op.n_test, op.setting, op.field,
                                                 op.n_points, op.n_steps,
                                                 seed=op.seed + 104_729, progress=progress,
                                                 reynolds=config.out_range)
        return train, cal, tests
    train, test = split_data(op)
    cal = make_operator_data(op.problem, config.n_cal, op.n_points, op.setting, op.n_steps,
                             seed=op.seed + 7919)
    if config.calibration_range is not None:
        outside = make_operator_data(op.problem, config.n_cal, op.n_points, op.setting,
                                     op.n_steps, seed=op.seed + 15_485_863,
                                     param_range=config.calibration_range)
        cal = dataclasses.replace(cal, **{name: torch.cat([getattr(cal, name),
                                                           getattr(outside, name)])
                                          for name in ("params", "inputs", "targets",
                                                       "left_values", "right_values")})
    tests = {"in": test}
    if config.out_range is not None:
        tests["out"] = make_operator_data(op.problem, op.n_test, op.n_points, op.setting,
                                          op.n_steps, seed=op.seed + 104_729,
                                          param_range=config.out_range)
    return train, cal, tests


def _joint(data) -> bool:
    """The cavity's velocity: one Gaussian over both components (divergence couples them)."""
    return isinstance(data, OperatorData2d) and data.problem == "cavity"


def _flat_targets(data) -> torch.Tensor:
    """Targets in the Gaussian's layout: ``(n, C, N)``, or ``(n, 1, C N)`` for the cavity."""
    flat = data.targets.flatten(2)
    return flat.flatten(1)[:, None] if _joint(data) else flat


def _member_samples(members, name: str, data) -> torch.Tensor:
    """``(M, n, C, N)`` member predictions in the Gaussian's layout (float64)."""
    run = predict_2d if isinstance(data, OperatorData2d) else predict
    samples = torch.stack([run(m, name, data) for m in members]).flatten(3)
    return samples.flatten(2)[:, :, None] if _joint(data) else samples


def _wall_rows_2d(data: OperatorData2d, channel: slice | int, sparse: bool):
    return boundary_constraint(
        (data.x, data.y), sparse=sparse,
        **{w: condition(k, getattr(data, w)[:, channel])
           for w, k in zip(WALLS, data.wall_types, strict=True)})


def conserved_total(data) -> torch.Tensor:
    """What the conservation rows hold: ``U(t)`` ``(n, T)`` (1-D: :func:`true_mass`; the
    wave: the constant total of the initial field, trapezoid-exact for its cosine modes;
    the cavity: zero divergence, ``(n, 0)``)."""
    if not isinstance(data, OperatorData2d):
        return true_mass(data)
    if data.problem == "cavity":
        return torch.zeros(len(data), 0, dtype=torch.float64)
    total = data.inputs[:, 0].flatten(1) @ trapezoid_weights_2d(data.x, data.y)
    return total[:, None].expand(len(data), data.targets.shape[1]).clone()


def determined_points(data) -> torch.Tensor | None:
    """The points the wall rows determine, ``(N,)`` bool in the Gaussian's layout: the wall
    points of Dirichlet and Neumann walls (1-D: the ends; 2-D: every point of such a wall).
    The BOON ensembles' prior is made uninformative there before conditioning
    (:func:`physguard.models.ensemble.uninformative_at`): BOON sets them from the interior.
    ``None`` for the cavity (its sparse rows keep the fitted prior) and for periodic walls
    (one row ties two points)."""
    if _joint(data):
        return None
    if isinstance(data, OperatorData2d):
        mask = torch.zeros(data.x.shape[0], data.y.shape[0], dtype=torch.bool)
        for wall, kind in zip(WALLS, data.wall_types, strict=True):
            if kind in ("dirichlet", "neumann"):
                dim, index, _ = WALL_INDEX[wall]
                mask.select(dim, index).fill_(True)
        return mask.flatten() if bool(mask.any()) else None
    mask = torch.zeros(data.x.shape[0], dtype=torch.bool)
    for end, kind in ((0, data.left_type), (-1, data.right_type)):
        mask[end] = kind in ("dirichlet", "neumann")
    return mask if bool(mask.any()) else None


def constraints_for(data, mass: torch.Tensor):
    """Wall rows and conservation rows of every sample, in the Gaussian's layout."""
    if not isinstance(data, OperatorData2d):
        return constraint_rows(data, mass)
    if data.problem == "cavity":
        walls = block_constraints(_wall_rows_2d(data, 0, True), _wall_rows_2d(data, 1, True))
        rows = stack_constraints(walls, divergence_constraint(data.x, data.y))
        return LinearConstraint(rows.G, rows.b[:, None], rows.noise_var)
    mass_row = LinearConstraint(trapezoid_weights_2d(data.x, data.y)[None], mass[..., None])
    return stack_constraints(_wall_rows_2d(data, slice(None), False), mass_row)


def load_uq_config(folder: str | Path) -> UQConfig:
    """The :class:`UQConfig` a ``--uq`` run folder was made with (its ``config.json``)."""
    raw = json.loads((Path(folder) / "config.json").read_text())
    operator = raw.pop("operator")
    kind = BOON2dConfig if raw["problem"] in PROBLEMS_2D else BOONConfig
    for name in ("ood_range", "extrapolation_range"):
        if raw.get(name) is not None:
            raw[name] = tuple(raw[name])
    return UQConfig(operator=kind(**operator), **raw)


def _member_config(config: UQConfig, k: int) -> BOONConfig | BOON2dConfig:
    """Member ``k``'s training settings: the operator's, seeded ``seed + k``."""
    return dataclasses.replace(config.operator, seed=config.operator.seed + k)


def load_members(folder: str | Path, name: str, train, config: UQConfig) -> list:
    """The saved ``name`` (``"FNO"`` / ``"BOON"``) members of a finished run of ``config``
    (see :func:`run_uq`), loaded with ``weights_only``, in eval mode; ``train`` gives the
    operators' grid."""
    saved = torch.load(Path(folder) / f"members_{name.lower()}.pt", weights_only=True)
    members = []
    for k, state in enumerate(saved["state_dicts"]):
        model = (_model(_member_config(config, k), train) if config.problem in PROBLEMS_2D
                 else build_operator(train, _member_config(config, k)))
        model.load_state_dict(state)
        members.append(model.eval())
    return members


def _run_uq_into(config: UQConfig, out: Path, progress: bool, figures: bool,
                 members_from=None) -> list[dict]:
    started = time.perf_counter()
    write_json(out / "config.json", dataclasses.asdict(config))
    train, cal, tests = _data(config, progress)
    masses = {r: conserved_total(d) for r, d in tests.items()}
    constraints = {r: constraints_for(d, masses[r]) for r, d in tests.items()}
    cal_constraint = constraints_for(cal, conserved_total(cal))
    # A BOON member's wall values follow from its interior (BOON's output rule), so the BOON
    # ensemble's prior carries no information of its own there; an FNO member predicts its
    # walls, and its spread there is kept.
    determined = {"BOON": determined_points(cal), "FNO": None}
    predictions = {r: {} for r in tests}
    seconds, calibration = {}, {}
    two_d = config.problem in PROBLEMS_2D
    train_one = train_operator_2d if two_d else train_operator
    for name in ("FNO", "BOON"):
        tick = time.perf_counter()
        if members_from is not None:
            members = load_members(members_from, name, train, config)
        else:
            members = [train_one(name, train, _member_config(config, k), progress=False)[0]
                       for k in tqdm(range(config.n_members), desc=f"{name} ensemble",
                                     unit="member", disable=not progress)]
        with atomic_path(out / f"members_{name.lower()}.pt") as tmp:
            torch.save({"model": name, "config": dataclasses.asdict(config.operator),
                        "state_dicts": [{k: v.detach().cpu() for k, v in m.state_dict().items()}
                                        for m in members]}, tmp)
        step = "train" if members_from is None else "load (saved members)"
        seconds[f"{name}-Ensemble {step}"] = time.perf_counter() - tick
        cal_samples = _member_samples(members, name, cal)
        samples = {r: _member_samples(members, name, d) for r, d in tests.items()}
        for conditioned in (False, True):
            label = f"ProbConserv-{name}-Ensemble" if conditioned else f"{name}-Ensemble"
            # The conditioned models inherit the unconditioned calibration, spread evenly
            # over the grid (the sparse cavity rows: the unconditioned shape times one factor
            # fitted as conditioned; see fit_ensemble_noise).
            fitted = fit_ensemble_noise(cal_samples, _flat_targets(cal),
                                        cal_constraint if conditioned else None,
                                        determined=determined[name])
            how = ("unconditioned" if not conditioned
                   else "conditioned (factor)" if cal_constraint.is_sparse
                   else "unconditioned, spread evenly")
            calibration[label] = {**{k: v.tolist() for k, v in fitted._asdict().items()},
                                  "fitted_for": how}
            for range_name in tests:
                tick = time.perf_counter()
                pred = ensemble_gaussian(samples[range_name], *fitted)
                if conditioned:
                    pred = probconserv(uninformative_at(pred, determined[name]),
                                       constraints[range_name])
                shape = tests[range_name].targets.shape
                predictions[range_name][label] = (pred.mean.reshape(shape),
                                                  pred.var.reshape(shape))
                seconds[f"{label} predict ({range_name})"] = time.perf_counter() - tick
    records = []
    for range_name, data in tests.items():
        for model in UQ_MODELS:
            mean, var = predictions[range_name][model]
            metric = _metrics_2d if two_d else _metrics
            records.append(metric(model, mean, var, data, masses[range_name], range_name))
        _write_predictions(out / ("predictions.npz" if range_name == "in"
                                  else "predictions_ood.npz"),
                           data, masses[range_name], predictions[range_name])
    write_json(out / "metrics.json", records)
    write_json(out / "calibration.json", calibration)
    write_text(out / "table.md", markdown_table(records, config, tests, seconds))
    if figures:
        from ..plots import uq_figures, uq_figures_2d

        (uq_figures_2d if two_d else uq_figures)(out, tests, masses, predictions)
    write_json(out / "timing.json", {"total_seconds": time.perf_counter() - started,
                                     **seconds})
    return records


def _probabilistic(mean, var, truth) -> dict:
    mean, var, truth = mean.flatten(1), var.flatten(1), truth.flatten(1)
    return {"rel_l2": float(M.relative_l2(mean, truth).mean()),
            "MSE": float(M.mse(mean, truth).mean()),
            "LL": float(M.gaussian_log_likelihood(mean, var, truth).mean()),
            "CRPS": float(M.crps_gaussian(mean, var, truth).mean()),
            **{f"coverage{round(100 * level)}": float(
                M.interval_coverage(mean, var, truth, level).mean()) for level in LEVELS}}


def _metrics_2d(name, mean, var, data: OperatorData2d, mass, range_name) -> dict:
    """2-D record: walls away from the corners (where two conditions meet), and CE the
    total's error (wave) or every cell's |discrete divergence| (cavity)."""
    walls = torch.stack(list(wall_errors(mean, data).values()))
    if data.problem == "cavity":
        conservation = cell_divergence(mean, data.x, data.y).abs().flatten(1)
    else:
        w = trapezoid_weights_2d(data.x, data.y)
        conservation = (mean.flatten(2) @ w - mass).abs()
    return {"model": name, "range": range_name, **_probabilistic(mean, var, data.targets),
            "boundary_error": float(walls.mean()), "boundary_error_max": float(walls.max()),
            "CE": float(conservation.mean()), "CE_max": float(conservation.max())}


def _write_predictions(path: Path, data, mass: torch.Tensor, predictions: dict) -> None:
    if isinstance(data, OperatorData2d):
        arrays = {"x": data.x.numpy(), "y": data.y.numpy(), "t": data.t.numpy(),
                  "truth": data.targets.numpy(), "mass": mass.numpy(),
                  "wall_types": np.array(data.wall_types),
                  **{f"{w}_values": getattr(data, w).numpy() for w in WALLS}}
    else:
        arrays = {"x": data.x.numpy(), "t": data.t.numpy(), "params": data.params.numpy(),
                  "truth": data.targets.numpy(), "left_values": data.left_values.numpy(),
                  "right_values": data.right_values.numpy(), "mass": mass.numpy(),
                  "left_type": np.array(data.left_type),
                  "right_type": np.array(data.right_type)}
    for model, (mean, var) in predictions.items():
        arrays[f"{model}/mean"] = mean.numpy()
        arrays[f"{model}/var"] = var.numpy()
    write_npz(path, arrays)


def markdown_table(records: list[dict], config: UQConfig, tests: dict, seconds: dict) -> str:
    op = config.operator
    keys = ["rel_l2", "MSE", "boundary_error", "CE", "LL", "CRPS", "coverage50",
            "coverage90", "coverage95"]
    outside = config.calibration_range
    fitted_on = (f"{config.n_cal} calibration samples in range and {config.n_cal} at omega "
                 f"{outside[0]:g} .. {outside[1]:g} (outside the training range, on the other "
                 "side than the out-of-range test samples)" if outside is not None
                 else f"{config.n_cal} calibration samples")
    lines = [f"# {config.problem} ({op.setting}-step): ensembles with both guarantees", "",
             f"{config.n_members} members per ensemble, {op.n_train} training samples, "
             f"{op.epochs} epochs, N = {op.n_points}; covariance fitted on {fitted_on}. "
             "boundary_error: mean |violation| of the walls' conditions "
             "(Neumann: the 2nd-order stencil's flux); CE: mean |trapezoid mass - U(t)|; LL: "
             "mean pointwise Gaussian log-likelihood; coverageP: fraction of points in the "
             "central P % interval (nominal P %).", ""]
    for range_name, data in tests.items():
        label = "in the training range" if range_name == "in" else "out of range"
        if isinstance(data, OperatorData2d):
            params = (f" (Re {config.out_range[0]:g} .. {config.out_range[1]:g}; training: "
                      "Re = 100)" if range_name == "out" else "")
        elif config.problem in OOD_RANGES:
            params = (f" (omega {float(data.params.min()):.3g} .. "
                      f"{float(data.params.max()):.3g})")
        else:
            params = ""
        lines += [f"## {len(data)} test samples {label}{params}", "",
                  "| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for r in records:
            if r["range"] == range_name:
                lines.append(f"| {r['model']} | " + " | ".join(f"{r[k]:.3e}" for k in keys)
                             + " |")
        lines.append("")
    lines += ["## Wall time", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in seconds.items()]
    return "\n".join(lines) + "\n"
