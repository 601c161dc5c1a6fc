"""Rollouts with guarantees (issue 28; ``physguard rollout PROBLEM``): one-step emulators applied
to their own output far past their training window, with the walls and the totals kept at every
step.

Every model maps the state at ``t_i`` and the walls' data at ``t_{i+1}`` (known in advance; two
constant input channels; the 2-D wave, second order in time with insulated walls: the states at
``t_{i-1}`` and ``t_i``) to the state at ``t_{i+1}``; all are trained by one-step teacher
forcing (each pair of consecutive states of the training window is one sample, Brandstetter
et al., ICLR 2022, call it the one-step loss) with the same data, seed and budget, then rolled
out from the test trajectories' initial states:

    FNO                the plain one-step FNO (physguard.FNO1d; the wave: FNO2d)
    BOON               the same operator corrected by BOON with each step's walls
    ProbConserv-BOON   BOON, its output projected onto the step's wall rows and total
                       U(t_k) = U(0) + int_0^t_k F (mass_from_fluxes) before the next step
                       (physguard.rollout.project: ProbConserv's update with an isotropic prior);
                       the cavity: onto both velocity components' wall rows (lid and no slip)
                       and zero divergence at every interior node (central differences, the
                       solver's own divergence: divergence_constraint(stencil="central"))

With ``uq``: an ensemble of ``n_members`` one-step FNOs and one of BOONs (seeds ``seed ..
seed + M - 1``), each member rolled out on its own trajectory (with its constraints for
``ProbConserv-BOON-Ensemble``), turned into a Gaussian per step
(:func:`~physguard.models.ensemble.ensemble_gaussian`, one variance model per step), its
parameters fitted by maximum likelihood on ``n_cal`` held-out calibration trajectories (never
the test ones), and the conditioned ensemble conditioned on every step's rows.

The truth comes from the same generators as ``physguard run`` (closed forms for heat-neumann,
Stokes and the 2-D wave, the validated spectral solver for periodic Burgers, the validated
vorticity-stream function solver for the cavity, run on the learning grid itself), sampled every
``dt`` (:data:`ROLLOUT_DT`) for ``steps`` steps; or from a user's file
(:func:`trajectories_from_data`, ``physguard rollout PROBLEM --data FILE``), checked against the
problem's conservation law before anything is trained.

Run folder (complete or absent):

    config.json        the resolved RolloutConfig
    metrics.json       per step {"model", "step", "t", "rel_l2", "vrmse", "correlation",
                       "mass_error", "boundary_error"[, "LL", "CRPS", "coverage90"]}, and per
                       model {"model", "summary": true, "correlation_time_0.9",
                       "correlation_time_0.8", "vrmse_6_12", "vrmse_13_30", "rel_l2_last"}
    predictions.npz    x (2-D: and y), t (K + 1,), truth (n, K + 1, *space) (the cavity:
                       (n, K + 1, Nx, Ny, 2), u and v on the last axis), the walls' data
                       left_values / right_values (n, K + 1) (2-D: also bottom_values,
                       top_values, each (n, K + 1, N_wall): one value per wall point; the
                       cavity (n, K + 1, N_wall, 2)), "<model>/mean", "<model>/var" shaped as
                       truth
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
from ..conditions import WALLS, condition, wall_residuals
from ..constraints import (
    LinearConstraint,
    block_constraints,
    boundary_constraint,
    central_divergence,
    divergence_constraint,
    stack_constraints,
    trapezoid_weights,
    trapezoid_weights_2d,
)
from ..datasets.operator import OPERATOR_PROBLEMS, OperatorData
from ..datasets.operator2d import (
    WALL_TYPES_2D,
    OperatorData2d,
    make_operator_data_2d,
    wall_lines,
)
from ..models.ensemble import fit_ensemble_noise, isotropic_prior
from ..models.fno import FNO1d
from ..models.fno_nd import FNO2d
from ..pdes.two_d import Wave2d
from ..rollouts import model_input, rollout, trajectory_gaussian
from ..training import fit_operator
from .uq import conserved_total, constraints_for, determined_points

__all__ = ["RolloutConfig", "Trajectories", "make_trajectories", "run_rollout",
           "trajectories_from_data", "check_conservation", "split_trajectories",
           "ROLLOUT_PROBLEMS", "MODELS", "UQ_MODELS", "rollout_metrics", "build_one_step",
           "train_one_step", "roll_out", "step_features", "step_walls", "step_constraint",
           "correlation_time"]

#: The problems with a one-step rollout.
ROLLOUT_PROBLEMS = ("heat-neumann", "stokes", "burgers-periodic", "wave2d", "cavity")
MODELS = ("FNO", "BOON", "ProbConserv-BOON")
UQ_MODELS = ("FNO-Ensemble", "BOON-Ensemble", "ProbConserv-BOON-Ensemble")
#: The time step per problem: 25 steps (the default window) span the range of the walls' data
#: that the rollout meets, so that the one-step model is never given wall data it has not
#: seen (heat: t in [0, 2], one period of the right wall's flux U sin(pi t), whose second
#: half is negative; the operator runs' t_final = 0.5 sees only its rising quarter. Stokes:
#: [0, 2], 0.6 to 1.9 periods of the wall for omega in [2, 6]. Periodic Burgers: [0, 1], its
#: operator runs' range; its walls carry no data. The 2-D wave: [0, 1], the operator runs'
#: range, about 6 time steps per period of its fastest mode).
#: The cavity: [0, 1], the operator runs' range, from the random initial flow through the
#: lid's spin-up; a fluid particle under the lid moves 0.04, 1.2 cells of the default grid, per
#: step.
ROLLOUT_DT = {"heat-neumann": 0.08, "stokes": 0.08, "burgers-periodic": 0.04, "wave2d": 0.04,
              "cavity": 0.04}
#: Sizes of :meth:`RolloutConfig.default` that differ from the class defaults (2-D: a smaller
#: grid and operator; still the slowest default: 1409 s on 2 CPU cores shared with a second
#: run, ``benchmarks/results/rollout_wave2d.md``).
DEFAULT_SIZES = {"wave2d": dict(n_points=32, modes=8, width=20, n_train=32, epochs=30,
                                batch_size=32),
                 "cavity": dict(n_points=32, modes=8, width=20, n_train=32, epochs=30,
                                batch_size=32)}
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
        if self.problem == "cavity" and self.n_points % 2:
            raise ValueError(f"the cavity's divergence rows with its wall rows need an even "
                             f"n_points (an odd grid leaves one combination of them fixed by "
                             f"the walls: physguard.constraints.local), got {self.n_points}")

    @classmethod
    def default(cls, problem: str, **overrides) -> RolloutConfig:
        """The CPU defaults of ``problem`` (:data:`DEFAULT_SIZES`), with ``overrides``."""
        return cls(problem=problem, **{**DEFAULT_SIZES.get(problem, {}), **overrides})

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


@dataclass(frozen=True)
class Trajectories:
    """Solutions sampled every ``dt``, the initial state first: the operator data of steps
    ``1 .. K`` (its ``inputs`` the initial states), the walls' data at ``t = 0`` and the states
    before it that a one-step model of a higher-order equation needs.

    Attributes:
        steps: the steps ``1 .. K``: :class:`~physguard.datasets.operator.OperatorData`
            (1-D, ``targets (n, K, N)``) or :class:`~physguard.datasets.operator2d.
            OperatorData2d` (``(n, K C, Nx, Ny)``, step-major, ``C`` fields per step: the
            cavity's velocity ``C = 2``); ``inputs (n, C, *space)`` the states at 0.
        initial_walls: ``{wall: values at t = 0}``, ``(n,)`` in 1-D, ``(n, C, N_wall)`` in
            2-D.
        before: ``(n, H - 1, *state)`` the states before ``t = 0`` (oldest first), or
            ``None``.
        t0: the time of the initial states (a user's file: its first time; else 0).

    The views below give the whole trajectories: ``fields (n, K + 1, *state)`` (``state``:
    the space axes, led by a ``C`` axis when ``C > 1``), ``t (K + 1,)``, ``wall_values``
    ``{wall: (n, K + 1[, C, N_wall])}`` (Dirichlet values, Neumann fluxes; zeros for
    periodic walls), ``left_values`` / ``right_values`` in 1-D, and the steps' ``problem``,
    ``x`` (2-D: ``y``), ``left_type`` / ``right_type`` and ``params`` (1-D).
    """

    steps: OperatorData | OperatorData2d
    initial_walls: dict
    before: torch.Tensor | None = None
    t0: float = 0.0

    def __getattr__(self, name: str):
        if name in ("problem", "left_type", "right_type", "x", "y", "params"):
            return getattr(self.steps, name)
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __len__(self) -> int:
        return len(self.steps)

    def first(self, steps: int) -> Trajectories:
        """The first ``steps`` steps of every trajectory (the initial state and steps ``1 ..
        steps``)."""
        if steps >= len(self.steps.t):
            return self
        c = self.n_fields
        cut = {"t": self.steps.t[:steps], "targets": self.steps.targets[:, :steps * c]}
        walls = (WALLS if self.two_d else ("left_values", "right_values"))
        cut.update({w: getattr(self.steps, w)[:, :steps * c] for w in walls})
        return dataclasses.replace(self, steps=dataclasses.replace(self.steps, **cut))

    def subset(self, index) -> Trajectories:
        """The trajectories selected by ``index`` (a slice or an index tensor)."""
        return Trajectories(self.steps.subset(index),
                            {w: v[index] for w, v in self.initial_walls.items()},
                            None if self.before is None else self.before[index], self.t0)

    @property
    def two_d(self) -> bool:
        return isinstance(self.steps, OperatorData2d)

    @property
    def n_fields(self) -> int:
        """``C``: the fields per state (the cavity's velocity: 2; else 1)."""
        return self.steps.fields if self.two_d else 1

    @property
    def rollout_fields(self) -> int | None:
        """:func:`~physguard.rollout`'s ``fields``: ``None`` for one field, else ``C``."""
        return None if self.n_fields == 1 else self.n_fields

    @property
    def history(self) -> int:
        """``H``: the states a one-step model of these trajectories sees (1 + ``before``)."""
        return 1 if self.before is None else 1 + self.before.shape[1]

    @property
    def _later_walls(self) -> dict[str, tuple[str, torch.Tensor]]:
        """``{wall: (kind, values of steps 1 .. K)}``."""
        if self.two_d:
            return self.steps.wall_conditions()
        return {"left": (self.steps.left_type, self.steps.left_values),
                "right": (self.steps.right_type, self.steps.right_values)}

    @property
    def wall_kinds(self) -> dict[str, str]:
        return {w: kind for w, (kind, _) in self._later_walls.items()}

    @property
    def spacing(self) -> tuple[float, ...]:
        grids = (self.x, self.y) if self.two_d else (self.x,)
        return tuple(float(g[1] - g[0]) for g in grids)

    @functools.cached_property
    def fields(self) -> torch.Tensor:
        both = torch.cat([self.steps.inputs, self.steps.targets], dim=1)
        c = self.n_fields
        return both if c == 1 else both.reshape(both.shape[0], -1, c, *both.shape[2:])

    @functools.cached_property
    def t(self) -> torch.Tensor:
        return torch.cat([torch.full((1,), self.t0, dtype=self.steps.t.dtype), self.steps.t])

    @functools.cached_property
    def wall_values(self) -> dict[str, torch.Tensor]:
        c = self.n_fields
        later = {w: v if not self.two_d else v.reshape(v.shape[0], -1, c, v.shape[-1])
                 for w, (_, v) in self._later_walls.items()}
        first = {w: v.reshape(v.shape[0], 1, *later[w].shape[2:])
                 for w, v in self.initial_walls.items()}
        return {w: torch.cat([first[w], v], dim=1) for w, v in later.items()}

    @property
    def left_values(self) -> torch.Tensor:
        return self.wall_values["left"]

    @property
    def right_values(self) -> torch.Tensor:
        return self.wall_values["right"]

    @functools.cached_property
    def weights(self) -> torch.Tensor:
        """The trapezoid quadrature weights of the flattened grid ``(N,)``."""
        return (trapezoid_weights_2d(self.x, self.y).flatten() if self.two_d
                else trapezoid_weights(self.x))

    @property
    def local(self) -> bool:
        """Conserved per control volume (the cavity: zero divergence), not in total."""
        return self.problem == "cavity"

    @functools.cached_property
    def totals(self) -> torch.Tensor:
        """``(n, K)``: the exact total of steps ``1 .. K`` (1-D: ``U(0) + int_0^t_k F``,
        :func:`~physguard.experiments.uq.true_mass`; the wave: its constant total; the
        cavity: none, ``(n, 0)``), computed once."""
        return conserved_total(self.steps)

    @functools.cached_property
    def rows(self) -> LinearConstraint:
        """The wall rows and the total's row of every trajectory and step ``1 .. K`` (batch
        ``(n, K)``, over the flattened state), computed once. The cavity: both components'
        wall rows and zero central-difference divergence at every interior node
        (:func:`~physguard.divergence_constraint` ``stencil="central"``, the solver's own
        divergence, which the true velocities meet to round-off), sparse."""
        if not self.local:
            return constraints_for(self.steps, self.totals)
        values = {w: v[:, 1:] for w, v in self.wall_values.items()}  # (n, K, C, N_wall)
        walls = block_constraints(*(boundary_constraint(
            (self.x, self.y), sparse=True,
            **{w: condition(k, values[w][:, :, c]) for w, k in self.wall_kinds.items()})
            for c in range(self.n_fields)))
        return stack_constraints(walls, divergence_constraint(self.x, self.y,
                                                              stencil="central"))


def make_trajectories(problem: str, n: int, n_points: int, steps: int, dt: float,
                      seed: int, param_range: tuple[float, float] | None = None
                      ) -> Trajectories:
    """``n`` trajectories of ``steps + 1`` states ``dt`` apart, from the generators of
    ``physguard run`` (exact or validated solutions).

    Raises:
        ValueError: an unknown problem, counts below 1 or a non-positive ``dt``.
    """
    if problem not in (*OPERATOR_PROBLEMS, "wave2d", "cavity"):
        raise ValueError(f"unknown problem {problem!r}")
    if min(n, steps) < 1 or n_points < 4 or not dt > 0:
        raise ValueError("n and steps must be >= 1, n_points >= 4 and dt > 0")
    if problem == "wave2d":
        return _wave_trajectories(n, n_points, steps, dt, seed)
    if problem == "cavity":
        return _cavity_trajectories(n, n_points, steps, dt, seed)
    cls = OPERATOR_PROBLEMS[problem]
    x = torch.linspace(*cls.domain, n_points, dtype=torch.float64)
    t = dt * torch.arange(steps + 1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    extra = {} if param_range is None else {"omega_range": tuple(param_range)}
    params, inputs, fields, left, right = cls.sample(n, x, t, generator, **extra)
    # The exact initial state as the first (heat: its series converges slowly at t = 0).
    steps = OperatorData(problem, cls.left_type, cls.right_type, x, t[1:], params,
                         inputs[:, None], fields[:, 1:], left[:, 1:], right[:, 1:])
    return Trajectories(steps, {"left": left[:, 0], "right": right[:, 0]})


def _wave_trajectories(n: int, n_points: int, steps: int, dt: float, seed: int
                       ) -> Trajectories:
    """The 2-D wave's exact solutions (random cosine series as ``physguard run wave2d``:
    6 modes per axis, decay 2.5, sample ``i`` from seed ``seed * 1_000_003 + i``)."""
    x = torch.linspace(0.0, 1.0, n_points, dtype=torch.float64)
    t = dt * torch.arange(steps + 1, dtype=torch.float64)
    fields = []
    for i in range(n):
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + i)
        wave = Wave2d.random(n_modes=6, decay=2.5, generator=generator)
        fields.append(wave.solution(t[:, None, None], x[None, :, None], x[None, None, :]))
    fields = torch.stack(fields)  # (n, K + 1, N, N)
    zeros = {w: torch.zeros(n, steps, n_points, dtype=torch.float64) for w in WALLS}
    data = OperatorData2d("wave2d", "multi", "u", WALL_TYPES_2D["wave2d"], x, x.clone(),
                          t[1:], fields[:, :1], fields[:, 1:], **zeros)
    # Second order in time: a one-step model sees the last two states. The one before t = 0
    # is u(-dt) = u(dt), the solution being even in time (zero initial velocity), so the
    # initial data (u0, u_t = 0) fix both.
    return Trajectories(data, {w: torch.zeros(n, n_points, dtype=torch.float64)
                               for w in WALLS}, before=fields[:, 1:2].clone())


def _cavity_trajectories(n: int, n_points: int, steps: int, dt: float, seed: int
                         ) -> Trajectories:
    """The cavity's velocity ``(u, v)`` from the validated solver, started as ``physguard run
    cavity`` (a random no-slip flow released when the lid starts, Re = 100), solved on the
    learning grid itself (``refine=1``): its velocities are the solver's central differences
    of the stream function, so they meet the central-difference divergence rows to round-off
    (on a 32-node grid they differ from a 4x finer solve by about 5 % relative L2)."""
    data = make_operator_data_2d("cavity", n, "multi", "velocity", n_points, steps, seed,
                                 progress=False, t_final=steps * dt, refine=1)
    return Trajectories(data, {w: v.clone() for w, v in wall_lines(data.inputs).items()})


#: The largest disagreement, relative to the fields' scale, between what the rows hold for a
#: user's trajectories and the file's own fields before the rows are enforced (the totals:
#: their trapezoid totals against the problem's law, relative to ``max int |u|``; the
#: cavity: ``h max |div u| / max |u|``). A solver's own quadrature and float32 storage sit
#: far below it; a wrong parameter or a field that does not conserve sits far above.
CONSERVATION_RTOL = 1e-2


def trajectories_from_data(data: OperatorData | OperatorData2d, check: bool = True
                           ) -> Trajectories:
    """A user's trajectories as :class:`Trajectories`: operator data read from a file with
    ``setting="trajectory"`` (:func:`~physguard.datasets.pdebench.read_file`, The Well's layout
    or PDEBench's: every step a target, step 0 too, so that its walls' values come with it),
    uniform in time.

    The 2-D wave (second order in time) starts at the file's step 1, its step 0 the state
    before. Periodic Burgers without a declared total (``param``) keeps the total of its
    initial states. With ``check``, what the rows will hold is checked against the file's
    fields first (:func:`check_conservation`).

    Raises:
        ValueError: a problem without a rollout, data whose first target is not its input
            (not read as trajectories), fewer than 2 steps after the first (the wave: after
            the first two), times that are not uniform, an odd grid for the cavity, or
            (``check``) fields that do not meet the problem's conservation law.
    """
    data = data.in_memory()
    problem = data.problem
    if problem not in ROLLOUT_PROBLEMS:
        raise ValueError(f"{problem} has no rollout; the rollout problems are "
                         f"{', '.join(ROLLOUT_PROBLEMS)}")
    two_d = isinstance(data, OperatorData2d)
    c = data.fields if two_d else 1
    if not torch.equal(data.targets[:, :c], data.inputs):
        raise ValueError("the data's first target is not its input: read the file with "
                         "setting='trajectory' (every step a target, step 0 included)")
    walls = WALLS if two_d else ("left_values", "right_values")
    before = None
    if problem == "wave2d":  # the last two states in: the file's step 0 is the one before
        before = data.inputs.clone()
        data = _from_step(data, c, walls)
    if len(data.t) < 3:
        which = "its first two" if before is not None else "the initial one"
        raise ValueError(f"the file's trajectories have {len(data.t) - 1} step(s) after "
                         f"{which}; a rollout needs at least 2")
    t = data.t.to(torch.float64)
    dt = t.diff()
    if not bool((dt > 0).all()) or float((dt - dt.mean()).abs().max()) > 1e-6 * float(dt.mean()):
        raise ValueError("the file's times must be uniform and increasing (one step dt)")
    if problem == "cavity" and (data.x.numel() % 2 or data.y.numel() % 2):
        raise ValueError(f"the cavity's divergence rows with its wall rows need an even grid, "
                         f"got {data.x.numel()} x {data.y.numel()}")
    if problem == "burgers-periodic" and not bool(data.params.any()):
        data = dataclasses.replace(data, params=data.inputs[:, 0] @ trapezoid_weights(data.x))
    initial = {w.removesuffix("_values"): getattr(data, w)[:, :c] if two_d
               else getattr(data, w)[:, 0] for w in walls}
    traj = Trajectories(_from_step(data, c, walls), initial, before, float(t[0]))
    if check:
        check_conservation(traj)
    return traj


def _from_step(data, c: int, walls) -> OperatorData | OperatorData2d:
    """``data`` without its first target: step 1 is the input, steps 2 .. the targets."""
    return dataclasses.replace(data, inputs=data.targets[:, :c], targets=data.targets[:, c:],
                               t=data.t[1:], **{w: getattr(data, w)[:, c:] for w in walls})


def check_conservation(traj: Trajectories, rtol: float = CONSERVATION_RTOL) -> None:
    """Refuse trajectories whose own fields contradict the rows a constrained rollout will
    enforce: the totals (``U(t)`` of the problem's law: :attr:`Trajectories.totals`) against
    the fields' trapezoid totals, or (the cavity) zero divergence at every interior node.

    Raises:
        ValueError: the worst disagreement above ``rtol`` (:data:`CONSERVATION_RTOL`), with
            the trajectory and the step.
    """
    fields = traj.fields[:, 1:]
    if traj.local:
        h = min(traj.spacing)
        error = central_divergence(fields, traj.x, traj.y).abs().flatten(2).amax(2) * h
        error = error / fields.abs().max().clamp(min=1e-300)
        what = ("h |div u| / max |u| (central differences at the interior nodes: the "
                "divergence of a stream-function solver's velocities on this grid; physguard "
                "data export cavity samples a twice finer solve, which does not meet it)")
    else:
        flat = fields.flatten(2)
        error = (flat @ traj.weights - traj.totals).abs()
        error = error / (flat.abs() @ traj.weights).max().clamp(min=1e-300)
        what = ("|int u - U(t)| / max int |u| (U(t): the problem's law from the file's "
                "parameters and walls)")
    worst = float(error.max())
    if not math.isfinite(worst) or worst > rtol:
        b, k = divmod(int(error.argmax()), error.shape[1])
        raise ValueError(f"the trajectories do not meet {traj.problem}'s conservation law: "
                         f"{what} is {worst:.3g} at trajectory {b}, step {k + 1} (tolerance "
                         f"{rtol:g}); a rollout that enforced it would be exact on the wrong "
                         "values. Check the file's parameters and walls, or its problem")


def split_trajectories(traj: Trajectories, uq: bool = False):
    """``(train, cal, test)`` of a user's trajectories: the last fifth (at least one) for the
    test, with ``uq`` as many before them for the calibration (else ``cal`` is ``None``), the
    rest for training.

    Raises:
        ValueError: too few trajectories to leave one for training.
    """
    n = len(traj)
    k = max(1, n // 5)
    held = k * (2 if uq else 1)
    if n <= held:
        raise ValueError(f"{n} trajectories: a rollout{' with --uq' if uq else ''} needs at "
                         f"least {held + 1} (test{', calibration' if uq else ''} and training)")
    cal = traj.subset(slice(n - 2 * k, n - k)) if uq else None
    return traj.subset(slice(0, n - held)), cal, traj.subset(slice(n - k, n))


def step_features(traj: Trajectories, index: torch.Tensor | slice = slice(None)):
    """``features(state, k)``: the model's input for the step to ``t_k``. 1-D: the state and
    the walls' data of ``t_k`` as channels (``(B, 3, N)``); 2-D: the last ``H`` states as
    channels (the wave's walls are insulated at all times: no data to give)."""
    if traj.two_d:
        return None
    left, right = traj.left_values[index], traj.right_values[index]

    def features(state: torch.Tensor, k: int) -> torch.Tensor:
        walls = [v[:, k, None].to(state).expand_as(state) for v in (left, right)]
        return torch.stack([state, *walls], dim=1)

    return features


def step_walls(traj: Trajectories, index=slice(None)):
    """``walls(k)``: BOON's conditions at ``t_k`` (values ``(B, 1)`` in 1-D, ``(B, C,
    N_wall)`` in 2-D)."""
    values = {w: v[index] for w, v in traj.wall_values.items()}
    kinds = traj.wall_kinds
    two_d = traj.two_d

    def walls(k: int) -> dict:
        return {w: condition(kinds[w], v[:, k] if two_d else v[:, k:k + 1])
                for w, v in values.items()}

    return walls


def step_constraint(traj: Trajectories):
    """``constraint(k)``: the wall rows and the total of every trajectory at ``t_k``."""
    rows = traj.rows  # batch (n, K)

    def constraint(k: int) -> LinearConstraint:
        G = rows.G if rows.G.ndim == 2 else rows.G[:, k - 1]  # sparse G: one for all
        return LinearConstraint(G, rows.b[:, k - 1], rows.noise_var)

    return constraint


def _pairs(traj: Trajectories, window: int):
    """The one-step training pairs of the first ``window`` steps, their inputs built as
    :func:`~physguard.rollout` builds them from :func:`step_features`: inputs ``(n W, C_in,
    *space)``, targets ``(n W, C, *space)``, and each target's walls' data ``{wall: (n W,
    1)}`` (1-D) or ``(n W, C, N_wall)`` (2-D)."""
    fields = traj.fields if traj.before is None else torch.cat([traj.before, traj.fields], 1)
    lead, features, c = traj.history - 1, step_features(traj), traj.rollout_fields

    def step_input(i: int) -> torch.Tensor:  # the input of the step from t_i to t_{i+1}
        if traj.before is None:
            return model_input(fields[:, i], i + 1, features, c)
        # the last H states, oldest first
        return model_input(fields[:, i:lead + i + 1], i + 1, features, c, window=True)

    inputs = torch.stack([step_input(i) for i in range(window)], dim=1).flatten(0, 1)
    nexts = traj.fields[:, 1:window + 1].flatten(0, 1)
    walls = {w: v[:, 1:window + 1].flatten(0, 1) for w, v in traj.wall_values.items()}
    if not traj.two_d:
        walls = {w: v[:, None] for w, v in walls.items()}
    return inputs, nexts[:, None] if c is None else nexts, walls


def build_one_step(config: RolloutConfig, traj: Trajectories, seed: int) -> FNO1d | FNO2d:
    """The untrained one-step operator: ``FNO1d(3, 1)`` in 1-D, ``FNO2d(H C, C)`` in 2-D
    (``C`` fields per state)."""
    torch.manual_seed(seed)
    if traj.two_d:
        domain = ((float(traj.x[0]), float(traj.x[-1])), (float(traj.y[0]), float(traj.y[-1])))
        c = traj.n_fields
        model = FNO2d(traj.history * c, c, config.modes, config.width, config.n_layers,
                      domain=domain)
    else:
        domain = (float(traj.x[0]), float(traj.x[-1]))
        model = FNO1d(3, 1, config.modes, config.width, config.n_layers, domain=domain)
    return model.to(config.torch_device())


def train_one_step(name: str, traj: Trajectories, config: RolloutConfig, seed: int,
                   progress: bool = True) -> FNO1d | FNO2d:
    """One-step teacher forcing of ``"FNO"`` or ``"BOON"`` on the training window."""
    model = build_one_step(config, traj, seed)
    inputs, targets, walls = _pairs(traj, config.window)
    kinds = traj.wall_kinds

    def apply(m, index, x):
        if name == "FNO":
            return m(x)
        return BOON(m, **{w: condition(kinds[w], v[index.cpu()].to(x.device, x.dtype))
                          for w, v in walls.items()})(x)

    fit_operator(model, apply, inputs, targets, dataclasses.replace(config, seed=seed), name,
                 progress)
    return model.eval()


def roll_out(model, name: str, traj: Trajectories, steps: int, progress: bool = False):
    """``(n, K + 1, *space)`` (a list of models: ``(M, n, K + 1, *space)``) from the
    trajectories' initial states."""
    boon = name != "FNO"
    constrained = name.startswith("ProbConserv")
    return rollout(model, traj.fields[:, 0], steps,
                   walls=step_walls(traj) if boon else None,
                   constraint=step_constraint(traj) if constrained else None,
                   features=step_features(traj),
                   determined=determined_points(traj.steps) if constrained else None,
                   progress=progress, history=traj.before, fields=traj.rollout_fields)


def _boundary_error(field: torch.Tensor, traj: Trajectories, k: int) -> torch.Tensor:
    """``(n,)``: the mean absolute violation of the walls' conditions at step ``k`` (Neumann:
    the 2nd-order stencil's flux; 2-D: along each wall without its corners, where two walls'
    conditions meet and only one can hold)."""
    if not traj.two_d:
        h = traj.spacing[0]
        return torch.stack([M.boundary_error(field, traj.wall_kinds[w],
                                             traj.wall_values[w][:, k], w, h)
                            for w in ("left", "right")]).mean(0)
    conditions = {w: condition(traj.wall_kinds[w], v[:, k])
                  for w, v in traj.wall_values.items()}
    residuals = wall_residuals(field[:, None] if traj.n_fields == 1 else field, conditions,
                               traj.spacing)
    return torch.stack([r[..., 1:-1].abs().flatten(1).mean(1)
                        for r in residuals.values()]).mean(0)


def rollout_metrics(model: str, mean: torch.Tensor, traj: Trajectories,
                    var: torch.Tensor | None = None) -> list[dict]:
    """Per-step records (steps ``1 .. K``) and one summary record of ``mean (n, K + 1,
    *state)`` against ``traj`` (keys: module docstring), every field metric over the
    flattened state but the VRMSE (The Well's: per field, then averaged over the fields).
    ``mass_error`` is ``mean_b |int u_b - U_b(t)| / mean_b |U_b(t)|`` (trapezoid rule); the
    cavity's, the mean over the trajectories of the largest ``|div u|`` over the interior
    nodes (central differences, units of ``U / L``). ``boundary_error`` is the mean absolute
    violation of the walls' conditions (:func:`_boundary_error`)."""
    truth = traj.fields
    mass = traj.totals
    w = traj.weights
    c = traj.n_fields
    records = []
    for k in range(1, truth.shape[1]):
        p, u = mean[:, k].flatten(1), truth[:, k].flatten(1)
        if traj.local:
            mass_error = central_divergence(mean[:, k], traj.x, traj.y).abs().flatten(1)
            mass_error = float(mass_error.amax(1).mean())
        else:
            mass_error = float((p @ w - mass[:, k - 1]).abs().mean()
                               / mass[:, k - 1].abs().mean().clamp(min=1e-300))
        per_field = p.reshape(p.shape[0], c, -1), u.reshape(u.shape[0], c, -1)
        record = {"model": model, "step": k, "t": float(traj.t[k]),
                  "rel_l2": float(M.relative_l2(p, u).mean()),
                  "vrmse": float(M.vrmse(*per_field).mean()),
                  "correlation": float(M.correlation(p, u).mean()),
                  "mass_error": mass_error,
                  "boundary_error": float(_boundary_error(mean[:, k], traj, k).mean())}
        if var is not None:
            v = var[:, k].flatten(1)
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
    K + 1, *space)``, fitted on the calibration trajectories; the conditioned one conditioned
    on every step's rows. Returns mean and var ``(n, K + 1, *space)`` (step 0: the known
    state). The conditioned ensemble's prior is the unconditioned calibration spread evenly
    over the grid (:func:`~physguard.models.ensemble.isotropic_prior`, the default of dense
    rows; here for the cavity's sparse rows too): each step's update is the Euclidean
    projection of the members' mean, as ``ProbConserv-BOON``'s, and the posterior variance
    one shared vector per step times each trajectory's level."""
    determined = determined_points(cal.steps)
    if constrained and cal.rows.is_sparse:
        fitted = isotropic_prior(fit_ensemble_noise(cal_members[:, :, 1:], cal.fields[:, 1:]))
    else:
        fitted = fit_ensemble_noise(cal_members[:, :, 1:], cal.fields[:, 1:],
                                    cal.rows if constrained else None, determined=determined)
    pred = trajectory_gaussian(members_traj, fitted,
                               step_constraint(traj) if constrained else None, determined)
    shape = traj.fields[:, 1:].shape
    mean = torch.cat([traj.fields[:, :1], pred.mean.reshape(shape)], dim=1)
    var = torch.cat([torch.zeros_like(traj.fields[:, :1]),
                     pred.var.clamp(min=0).reshape(shape)], dim=1)
    return mean, var


def run_rollout(config: RolloutConfig, out: str | Path, progress: bool = True,
                figures: bool = True, overwrite: bool = False,
                data: Trajectories | None = None, source: dict | None = None) -> list[dict]:
    """Train the one-step models, roll them out on the test trajectories, write ``out``
    (complete or absent).

    Args:
        data: a user's trajectories (:func:`trajectories_from_data`) instead of generated
            ones, split by :func:`split_trajectories`; the config's sizes become the data's
            (:func:`config_for_data`), the rollout runs ``config.steps`` steps (at most the
            data's).
        source: what ``config.json`` records of the data (the file, its hash, the walls
            stated).

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is false.
        ValueError: ``data`` of another problem, too short or too few.
    """
    config.torch_device()
    sets = None
    if data is not None:
        config = config_for_data(config, data)
        train, cal, test = split_trajectories(data, config.uq)
        sets = (train, cal, test.first(config.steps))
    with run_folder(out, overwrite) as folder:
        return _run_into(config, folder, progress, figures, sets, source)


def config_for_data(config: RolloutConfig, data: Trajectories) -> RolloutConfig:
    """``config`` with the sizes a user's trajectories fix: their counts (as split), grid,
    ``dt``, the rollout length (``config.steps``, at most the data's) and the training window
    (at most the rollout's).

    Raises:
        ValueError: data of another problem, or ``config.steps`` beyond the data's.
    """
    if data.problem != config.problem:
        raise ValueError(f"the data hold {data.problem}, the config {config.problem}")
    available = len(data.t) - 1
    if config.steps > available:
        raise ValueError(f"the data's trajectories have {available} steps; a rollout of "
                         f"{config.steps} cannot be scored against them")
    train, cal, test = split_trajectories(data, config.uq)
    return dataclasses.replace(
        config, n_train=len(train), n_test=len(test), n_cal=len(cal) if cal else config.n_cal,
        n_points=int(data.x.numel()), dt=float(data.t[1] - data.t[0]),
        window=min(config.window, config.steps))


def _fields_last(values: torch.Tensor, traj: Trajectories, walls: bool = False) -> np.ndarray:
    """2-D arrays for the files, the fields' axis (the third: fields with ``C > 1``, every
    wall's values) last: ``(n, K + 1, ..., C)`` (the cavity's ``u, v``), or dropped where
    ``C = 1``; 1-D unchanged."""
    if not traj.two_d or not (walls or traj.n_fields > 1):
        return values.numpy()
    return (values.squeeze(2) if traj.n_fields == 1 else values.movedim(2, -1)).numpy()


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _run_into(config: RolloutConfig, out: Path, progress: bool, figures: bool,
              sets: tuple | None = None, source: dict | None = None) -> list[dict]:
    started = time.perf_counter()
    write_json(out / "config.json", {**dataclasses.asdict(config),
                                     **({"data": source} if sets is not None else {})})
    c = config
    if sets is None:
        train = make_trajectories(c.problem, c.n_train, c.n_points, c.window, c.dt, c.seed)
        test = make_trajectories(c.problem, c.n_test, c.n_points, c.steps, c.dt,
                                 c.seed + 104_729)
    else:
        train, cal, test = sets
    seconds, predictions, weights = {}, {}, {}
    trained = {}
    for name in ("FNO", "BOON"):
        tick = time.perf_counter()
        trained[name] = train_one_step(name, train, c, c.seed, progress)
        seconds[f"{name} train"] = time.perf_counter() - tick
        weights[name] = _cpu_state(trained[name])
    for model in MODELS:
        tick = time.perf_counter()
        net = trained["FNO" if model == "FNO" else "BOON"]
        predictions[model] = (roll_out(net, model, test, c.steps, progress), None)
        seconds[f"{model} rollout"] = time.perf_counter() - tick
    if c.uq:
        if sets is None:
            cal = make_trajectories(c.problem, c.n_cal, c.n_points, c.steps, c.dt,
                                    c.seed + 7919)
        cal = cal.first(c.steps)
        for name in ("FNO", "BOON"):
            tick = time.perf_counter()
            members = [train_one_step(name, train, c, c.seed + k, False)
                       for k in tqdm(range(c.n_members), desc=f"{name} ensemble",
                                     unit="member", disable=not progress)]
            seconds[f"{name}-Ensemble train"] = time.perf_counter() - tick
            weights[f"{name}-Ensemble"] = [_cpu_state(m) for m in members]
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
    arrays = {"x": test.x.numpy(), "t": test.t.numpy(),
              "truth": _fields_last(test.fields, test),
              **{f"{w}_values": _fields_last(v, test, walls=True)
                 for w, v in test.wall_values.items()}}
    if test.two_d:
        arrays["y"] = test.y.numpy()
    else:
        arrays["params"] = test.params.numpy()
    for model, (mean, var) in predictions.items():
        arrays[f"{model}/mean"] = _fields_last(mean, test)
        arrays[f"{model}/var"] = _fields_last(torch.zeros_like(mean) if var is None else var,
                                              test)
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
