"""Front (shock-position) estimators on sampled profiles."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physguard.metrics import front_position, step_front_position
from physguard.pdes import InviscidBurgers, LinearAdvection, PorousMedium, Stefan

X = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)
DX = float(X[1] - X[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=40), st.floats(-1.0, 1.0))
def test_step_fit_agrees_with_first_crossing_on_monotone_profiles(values, level):
    u = torch.tensor(sorted(values, reverse=True), dtype=torch.float64)
    x = torch.linspace(0.0, 1.0, len(values), dtype=torch.float64)
    k = int((u <= level).to(torch.int8).argmax()) if bool((u <= level).any()) else len(u)
    expected = x[0] if k == 0 else x[-1] if k == len(u) else (x[k - 1] + x[k]) / 2
    assert float(step_front_position(u, x, level)) == pytest.approx(float(expected), abs=1e-15)
    if 0 < k < len(u):  # the same cell as the paper's first-crossing rule
        assert float(front_position(u, x, level)) == float(x[k])


@settings(max_examples=40, deadline=None)
@given(st.floats(0.02, 0.98))
def test_step_fit_of_an_exact_jump_is_within_half_a_cell(front):
    u = torch.where(X <= front, 0.6 + 0.4 * (1 - X), torch.zeros_like(X))
    assert abs(float(step_front_position(u, X, 0.3)) - front) <= DX / 2 + 1e-12


def test_one_noisy_point_moves_the_first_crossing_but_not_the_step_fit():
    u = torch.where(X <= 0.5, torch.ones_like(X), torch.zeros_like(X))
    u[40] = -0.1  # x = 0.2, well left of the front
    assert float(front_position(u, X, 0.5)) == pytest.approx(0.2)
    assert float(step_front_position(u, X, 0.5)) == pytest.approx(0.5 + DX / 2)


@pytest.mark.parametrize("p_star", [0.5, 0.6])
def test_step_fit_on_stefan_plus_white_noise_finds_the_true_front(p_star):
    """Exact profile at t* plus white noise of sd p*/2 (the size of our ANPs' sd at the front):
    the mean over 500 samples stays within half a cell of the exact front, with a quarter of
    the spread of the paper's first u <= 0 rule on the same samples (measured: 0.009 vs 0.04)."""
    problem = Stefan(p_star)
    t = torch.tensor(0.05, dtype=torch.float64)
    truth = problem.solution(t.expand_as(X), X)
    front = float(problem.shock_position(t))
    gen = torch.Generator().manual_seed(0)
    samples = truth + p_star / 2 * torch.randn(500, X.shape[0], generator=gen,
                                               dtype=torch.float64)
    estimate = step_front_position(samples, X, p_star / 2)
    assert abs(float(estimate.mean()) - front) <= DX / 2
    assert float(estimate.std()) < 3 * DX
    assert float(estimate.std()) < float(front_position(samples, X).std()) / 3


def test_step_fit_errors():
    with pytest.raises(ValueError):
        step_front_position(torch.zeros(3, 5), X, 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        step_front_position(torch.zeros(1), X[:1], 0.0)


@pytest.mark.parametrize("problem", [Stefan(0.5), Stefan(0.6), LinearAdvection(1.0),
                                     LinearAdvection(3.0), InviscidBurgers(1.0),
                                     InviscidBurgers(3.0)])
@pytest.mark.parametrize("t", [0.02, 0.05, 0.1, 0.3, 0.5, 0.9])
def test_jump_level_lies_inside_the_exact_jump(problem, t):
    """Where a problem states a jump level, the exact solution jumps across it at the front;
    where it states none, the exact solution is continuous there (or the front has left)."""
    t = min(t, problem.t_range[1])
    front = float(problem.shock_position(t))
    tt = torch.tensor(t, dtype=torch.float64)
    a, b = problem.domain  # solution() refuses points outside the domain
    left, right = (float(problem.solution(tt, torch.tensor(min(max(front + d, a), b),
                                                           dtype=torch.float64)))
                   for d in (-1e-9, 1e-9))
    level = problem.jump_level(t)
    if level is None:
        assert abs(left - right) < 1e-6 or front >= problem.domain[1]
    else:
        assert right < level < left
        assert left - right > 0.4  # a jump, not a continuous fall to 0


def test_jump_levels_at_the_papers_times():
    assert Stefan(0.6).jump_level(0.05) == pytest.approx(0.3)
    assert LinearAdvection(3.0).jump_level(0.1) == 0.5
    assert InviscidBurgers(3.0).jump_level(0.5) == 1.5  # the shock formed at t = 1/3
    assert InviscidBurgers(1.0).jump_level(0.5) is None  # it forms at t = 1
    assert PorousMedium(3.0).jump_level(0.5) is None


# -- the calibrated shock interval ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=9, max_size=60),
       st.sampled_from([0.5, 0.8, 0.9]))
def test_conformal_factor_covers_its_share_of_the_calibration_scores(scores, level):
    from physguard.experiments.gpme import front_interval

    q = front_interval(scores, level)
    n = len(scores)
    # ceil((n + 1) level) of the n scores lie at or below q: with one exchangeable new score,
    # the chance that it does too is at least level (Lei et al. 2018)
    assert sum(s <= q for s in scores) >= min(n, math.ceil((n + 1) * level))
    assert sum(s < q for s in scores) < math.ceil((n + 1) * level)


def test_conformal_factor_errors_and_small_sets():
    from physguard.experiments.gpme import front_interval

    assert front_interval([1.0] * 8, 0.9) == math.inf  # ceil(9 * 0.9) = 9 > 8
    assert front_interval([float(k) for k in range(1, 10)], 0.9) == 9.0
    with pytest.raises(ValueError, match="no calibration"):
        front_interval([], 0.9)
    with pytest.raises(ValueError, match="level"):
        front_interval([1.0], 1.0)


@pytest.mark.parametrize("shift", [-0.04, -0.01, 0.02, 0.05])
def test_front_scale_is_the_displacement_that_explains_the_mass_error(shift):
    """The exact Stefan profile with its front cut ``shift`` away from the true one (the
    closed form continued past it) has a mass error of about p* |shift|: the scale
    recovers |shift| to within 10 % (the profile's slope near the front is small against
    the jump)."""
    from physguard.experiments.gpme import front_scale

    problem, t = Stefan(0.6), 0.05
    true_front = float(problem.shock_position(t))
    inside = 1.0 - problem.c1 * torch.special.erf(X / (2.0 * math.sqrt(t)))
    moved = torch.where(X <= true_front + shift, inside, torch.zeros_like(X))
    mass = problem.mass(torch.tensor(t, dtype=torch.float64))
    scale = front_scale(moved, X, mass, problem.jump_level(t))
    assert scale == pytest.approx(abs(shift), rel=0.1, abs=DX)
    exact = problem.solution(torch.full_like(X, t), X)
    assert front_scale(exact, X, mass, problem.jump_level(t)) == pytest.approx(DX)  # a cell
