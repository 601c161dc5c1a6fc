"""Autoregressive rollouts that keep the walls and the totals at every step.

A one-step emulator ``u(t_i) -> u(t_{i+1})`` applied to its own output for ``K`` steps is how
neural operators are deployed (The Well, Ohana et al., NeurIPS 2024; APEBench, Koehler et al.,
NeurIPS 2024); its errors and its violations of the physics accumulate. :func:`rollout` runs
such a model and, at every step,

* wraps it in :class:`~physguard.BOON` with that step's wall conditions (``walls(k)``), so the
  step's output meets them exactly (Saad et al., ICLR 2023), and/or
* conditions the step's output on linear rows ``G u = b`` (``constraint(k)``: the total from
  the initial data and the boundary fluxes up to ``t_k``, ``mass_from_fluxes``; the wall rows)
  with ProbConserv's update (Hansen et al., ICML 2023, Eq. 5) under a prior that is the same at
  every free point: the Euclidean projection onto the rows, never farther from a truth that
  meets them. Points a row determines (``determined``: BOON's wall points) get an
  uninformative prior, so the rows set them and leave the rest.

The next step starts from the constrained state, so the guarantee is part of the trajectory,
not a correction applied afterwards.

An ensemble (a sequence of one-step models) is rolled out member by member, each on its own
trajectory with its own constraints; :func:`rollout` then returns the members' trajectories
``(M, B, K + 1, *space)``, which :func:`trajectory_gaussian` turns into a Gaussian per step
(the steps as its channels), conditioned on each step's rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import torch

from .constraints import Gaussian, LinearConstraint, probconserv
from .constraints.gaussian import DiagonalCovariance
from .constraints.sparse import SparseProjection, is_sparse
from .models.ensemble import OperatorEnsemble, ensemble_gaussian, uninformative_at

__all__ = ["project", "rollout", "trajectory_gaussian"]

def project(state: torch.Tensor, constraint: LinearConstraint,
            determined: torch.Tensor | None = None, cache: dict | None = None) -> torch.Tensor:
    """The field closest to ``state`` (Euclidean norm over the free points) that meets ``G u =
    b`` exactly: ProbConserv's mean update with the prior ``diag(1)`` (``1e6`` at the
    ``determined`` points).

    Args:
        state: ``(B, N)`` (any float dtype; computed in float64).
        constraint: ``G (B or 1, M, N)``, ``b (B, M)``, ``noise_var = 0`` for an exact update.
        determined: optional ``(N,)`` bool: points whose value the rows set (a Dirichlet wall
            point, the wall point of a Neumann stencil).
        cache: a dict kept across calls with the same sparse ``G`` (a rollout's steps): its
            factorisation is made once (:class:`~physguard.constraints.sparse.
            SparseProjection`) instead of at every call.

    Returns:
        ``(B, N)`` float64.

    Raises:
        ValueError: shapes that do not match, or dependent rows.
    """
    state = state.to(torch.float64)
    prior = uninformative_at(Gaussian(state, var=torch.ones_like(state)), determined)
    if cache is not None and is_sparse(constraint.G) and not bool(constraint.noise_var.any()):
        var = prior.var.reshape(-1, state.shape[-1])[0]
        return _sparse_projection(cache, constraint.G, var)(state, constraint.b)
    return probconserv(prior, constraint).mean


def _sparse_projection(cache: dict, G, var: torch.Tensor) -> SparseProjection:
    """The :class:`~physguard.constraints.sparse.SparseProjection` of the rows ``G`` under the
    prior diagonal ``var (N,)``, factorised once per content of ``G`` and ``var`` in ``cache``
    (each step's :class:`LinearConstraint` holds its own copy of the same rows)."""
    G = G.tocsr()
    digest = hashlib.sha1(G.indptr.tobytes())
    digest.update(G.indices.tobytes())
    digest.update(G.data.tobytes())
    digest.update(var.to(torch.float64).numpy().tobytes())
    key = (G.shape, G.nnz, digest.hexdigest())
    if key not in cache:
        cache[key] = SparseProjection(G, var)
    return cache[key]


def model_input(current: torch.Tensor, k: int, features=None, fields: int | None = None,
                window: bool = False) -> torch.Tensor:
    """The one-step model's input for the step to ``t_k`` (:func:`rollout`'s rule, which the
    training pairs of ``physguard rollout`` follow too): ``features(current, k)``; else the
    state as the channels, ``(B, 1 or C, *space)``. ``window``: ``current`` stacks the last
    ``H`` states, ``(B, H, *state)``, whose ``H`` (or ``H C``) entries become the channels."""
    if features is not None:
        return features(current, k)
    if window:
        return current if fields is None else current.flatten(1, 2)
    return current[:, None] if fields is None else current


def _is_boon(model) -> bool:
    from .boundary import BOON

    return isinstance(model, BOON)


def _step_model(model, walls, k: int, boon_options: dict):
    if walls is None:
        return model
    from .boundary import BOON

    operator = model.operator if isinstance(model, BOON) else model
    return BOON(operator, **walls(k), **boon_options)


@torch.no_grad()
def rollout(model: torch.nn.Module | Callable | Sequence, u0: torch.Tensor, steps: int,
            walls: Callable[[int], dict] | None = None,
            constraint: Callable[[int], LinearConstraint] | None = None,
            features: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
            determined: torch.Tensor | None = None, boon_options: dict | None = None,
            progress: bool = False, history: torch.Tensor | None = None,
            fields: int | None = None) -> torch.Tensor:
    """Apply a one-step model ``steps`` times to its own output, with the walls and the rows of
    every step enforced (module docstring).

    Args:
        model: the one-step operator, ``(B, C_in, *space) -> (B, 1, *space)`` (``(B, C,
            *space)`` for a state of ``fields = C`` fields; a physguard
            operator, a ``neuralop`` FNO, a :class:`~physguard.BOON`, any callable); or a
            sequence of such models (an ensemble: each member rolled out on its own
            trajectory). The network may run in float32: its input is cast to the dtype of
            its first parameter, its output back to float64.
        u0: ``(B, *space)`` the initial state (``(B, C, *space)`` with ``fields = C``).
        steps: ``K >= 1``.
        walls: ``walls(k)`` for ``k = 1 .. K``: the keyword conditions of
            :class:`~physguard.BOON` at ``t_k`` (``{"left": Dirichlet(values (B,)), ...}``);
            the model is wrapped in BOON with them for that step (a BOON model's operator is
            re-wrapped). ``None``: the model as it is.
        constraint: ``constraint(k)``: the rows ``G u = b`` the state at ``t_k`` meets
            (batch ``B`` over ``N = prod(space)`` points); the step's output is projected onto
            them (:func:`project`). ``None``: no projection. With ``walls``, include the
            walls' rows (:func:`~physguard.boundary_constraint` of the same conditions),
            or the projection moves the wall values BOON set.
        features: ``features(state (B, *space), k)``: the model's input for the step from
            ``t_{k-1}`` to ``t_k`` (for example the state and the walls of ``t_k`` as
            channels); default ``state[:, None]``.
        determined: ``(N,)`` bool, the points the rows set (see :func:`project`).
        history: ``(B, H - 1, *space)``: the states before ``u0`` (oldest first), for a model
            that sees the last ``H`` states (a wave equation, second order in time: ``H =
            2``); ``features`` then receives the stack ``(B, H, *space)`` of the last ``H``
            states instead of the state, and by default passes it as the channels.
        boon_options: keyword options of :class:`~physguard.BOON` (``kernel_correction``,
            ``input_walls``) used with ``walls``.
        progress: a progress bar over the steps.
        fields: ``None``: the state is one field, ``(B, *space)``, and the model returns one
            channel. ``C``: the state holds ``C`` fields as its first axis, ``(B, C,
            *space)`` (the cavity's velocity: ``C = 2``, the ``(u, v)`` order of the rows),
            the model returns ``(B, C, *space)`` and by default receives the state as its
            channels (with ``history``: the last ``H`` states' ``H C`` channels, oldest
            first); ``*space`` below then includes the ``C`` axis.

    Returns:
        ``(B, K + 1, *space)`` float64, the initial state first; for a sequence of ``M``
        models ``(M, B, K + 1, *space)``; for a calibrated
        :class:`~physguard.OperatorEnsemble` (its parameters scalars or one per step, its
        ``apply`` not used: ``walls`` wraps the members) the :class:`~physguard.Gaussian` of
        steps ``1 .. K``, mean and marginal ``var`` ``(B, K, N)`` (``N = prod(space)``), each
        step's conditioned on ``constraint(k)`` when one is given.

    Raises:
        ValueError: ``steps < 1``, or an output whose shape is not ``(B, 1, *space)`` (``(B,
            C, *space)`` with ``fields``).
    """
    if isinstance(model, OperatorEnsemble):
        if model.noise_var is None:
            raise RuntimeError("the ensemble has no noise_var: calibrate() it on held-out "
                               "trajectories first, or give noise_var")
        members = rollout(model.members, u0, steps, walls, constraint, features, determined,
                          boon_options, progress, history, fields)
        return trajectory_gaussian(members, model._parameters(), constraint,
                                   model.determined if determined is None else determined)
    if isinstance(model, Sequence) and not isinstance(model, torch.nn.Module):
        return torch.stack([rollout(m, u0, steps, walls, constraint, features, determined,
                                    boon_options, progress, history, fields) for m in model])
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if fields is not None and (int(fields) != fields or fields < 1 or u0.dim() < 2
                               or u0.shape[1] != fields):
        raise ValueError(f"fields = {fields} needs u0 of shape (B, {fields}, *space), got "
                         f"{tuple(u0.shape)}")
    from tqdm.auto import tqdm

    state = u0.to(torch.float64)
    space = tuple(state.shape[1:])
    first = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    dtype = first.dtype if first is not None else torch.float64
    device = first.device if first is not None else state.device
    states = [state]
    factorised = {}  # one factorisation per sparse G for all the steps
    frames = [] if history is None else list(history.to(torch.float64).unbind(1))
    for k in tqdm(range(1, steps + 1), desc="rollout", unit="step", disable=not progress):
        step = _step_model(model, walls, k, boon_options or {})
        if history is None:
            inputs = model_input(state, k, features, fields)
        else:  # the last H states, oldest first
            window = torch.stack([*frames[-history.shape[1]:], state], dim=1)
            inputs = model_input(window, k, features, fields, window=True)
            frames.append(state)
        inputs = inputs.to(device, dtype)
        # BOON sets its wall values in float64 from a float32 network's output.
        out = (step(inputs, output_dtype=torch.float64) if _is_boon(step)
               else step(inputs)).to(torch.float64)
        expected = (state.shape[0], 1, *space) if fields is None else tuple(state.shape)
        if tuple(out.shape) != expected:
            form = "(B, 1, *space)" if fields is None else "(B, C, *space)"
            raise ValueError(f"a one-step model must return {form} = {expected}, got "
                             f"{tuple(out.shape)}")
        state = (out[:, 0] if fields is None else out).to(state.device)
        if constraint is not None:
            state = project(state.flatten(1), constraint(k), determined,
                            factorised).reshape(state.shape)
        states.append(state)
    return torch.stack(states, dim=1)


def trajectory_gaussian(members: torch.Tensor, fitted, constraint=None,
                        determined: torch.Tensor | None = None) -> Gaussian:
    """The Gaussian of every step ``1 .. K`` of an ensemble's rollouts, each step conditioned
    on its rows.

    Args:
        members: ``(M, B, K + 1, *space)`` the members' trajectories (:func:`rollout` of a
            sequence of models), the initial state first.
        fitted: the covariance parameters of :func:`~physguard.models.ensemble.
            ensemble_gaussian` (an :class:`~physguard.models.ensemble.EnsembleNoise`, each a
            scalar or one per step), the steps being its channels.
        constraint: ``constraint(k)``, the rows of step ``k`` (batch ``B``), or ``None``.
        determined: ``(N,)`` bool: points the rows set, uninformative in the prior
            (:func:`~physguard.models.ensemble.uninformative_at`).

    Returns:
        :class:`~physguard.Gaussian`, mean and marginal ``var`` ``(B, K, N)``, ``N =
        prod(space)``.
    """
    samples = members[:, :, 1:]  # (M, B, K, *space): the steps as the Gaussian's channels
    params = [torch.as_tensor(p, dtype=torch.float64).reshape(-1) for p in fitted]
    if constraint is None:
        pred = ensemble_gaussian(samples, *params)
        return Gaussian(pred.mean, var=pred.var.clamp(min=0))
    means, variances, factorised = [], [], {}
    for k in range(1, samples.shape[2] + 1):
        step = [p if p.numel() == 1 else p[k - 1:k] for p in params]
        prior = uninformative_at(ensemble_gaussian(samples[:, :, k - 1:k], *step), determined)
        rows = constraint(k)
        level = _isotropic_level(prior, rows)
        if level is not None:  # c_b I: the projection, and c_b times the unit posterior
            unit = torch.ones(prior.n_points, dtype=torch.float64)
            projection = _sparse_projection(factorised, rows.G, unit)
            means.append(projection(prior.mean[:, 0], rows.b))
            variances.append(level[:, None] * projection.posterior_var())
            continue
        post = probconserv(prior, LinearConstraint(rows.G[:, None] if rows.G.ndim > 2
                                                   else rows.G, rows.b[:, None],
                                                   rows.noise_var))
        means.append(post.mean[:, 0])
        variances.append(post.var[:, 0].clamp(min=0))
    return Gaussian(torch.stack(means, 1), var=torch.stack(variances, 1))


def _isotropic_level(prior: Gaussian, rows: LinearConstraint) -> torch.Tensor | None:
    """``c (B,)`` when ``prior`` (one channel) is ``c_b I`` for every sample and ``rows`` are
    sparse and exact, so that the update is a Euclidean projection with the posterior
    variance ``c_b`` times one shared vector (:class:`~physguard.constraints.sparse.
    SparseProjection`); else ``None`` (the general update)."""
    if not is_sparse(rows.G) or bool(rows.noise_var.any()) or prior.mean.shape[1] != 1:
        return None
    covariance = prior.covariance
    core = getattr(covariance, "core", None)
    if core is not None and bool(core.any()):
        return None
    if core is None and not isinstance(covariance, DiagonalCovariance):
        return None
    var = prior.var[:, 0].to(torch.float64)
    level = var[:, :1]
    if not bool((var == level).all()) or not bool((level > 0).all()):
        return None
    return level[:, 0]
