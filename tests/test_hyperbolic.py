"""ProbConserv's hyperbolic cases: linear advection and inviscid Burgers (closed forms)."""

import pytest
import torch
from scipy.integrate import quad

from physguard.pdes import InviscidBurgers, LinearAdvection, get_problem

F64 = torch.float64


def quadrature_mass(problem, t, breaks):
    a, b = problem.domain
    inside = [p for p in breaks if a < p < b]
    value, _ = quad(lambda x: float(problem.solution(t, torch.tensor(x))), a, b,
                    points=inside or None, epsabs=1e-12, limit=200)
    return value


@pytest.mark.parametrize("a", [1.0, 3.0, 4.5])
def test_advection_mass_and_front(a):
    p = LinearAdvection(a)
    for t in (0.0, 0.05, 0.1, 0.3, 0.9):
        front = float(p.shock_position(t))
        assert abs(quadrature_mass(p, t, [front]) - float(p.mass(t))) < 1e-9
        if front < 1:
            assert float(p.solution(t, front - 1e-9)) == 1.0
            assert float(p.solution(t, front + 1e-9)) == 0.0


@pytest.mark.parametrize("a", [1.0, 2.0, 3.0, 4.0])
def test_burgers_mass_equals_initial_mass_plus_inflow(a):
    p = InviscidBurgers(a)
    for t in (0.0, 0.2, 0.5, 0.9, 1.0):
        breaks = [0.0, -1 + a * t, float(p.shock_position(t))]
        exact = float(p.mass(t))
        assert abs(quadrature_mass(p, t, breaks) - exact) < 1e-8 * (1 + exact)
        if a * t <= 3:  # the shock is still inside: dU/dt = inflow flux a^2 / 2
            assert abs(exact - (a / 2 + a * a * t / 2)) < 1e-12


def test_burgers_ramp_solves_the_pde_and_the_shock_moves_at_rankine_hugoniot_speed():
    p = InviscidBurgers(2.0)
    x = torch.linspace(-0.35, -0.05, 7, dtype=F64)  # inside the ramp [-0.4, 0] at t = 0.3
    t, e = 0.3, 1e-6
    u_t = (p.solution(t + e, x) - p.solution(t - e, x)) / (2 * e)
    flux_x = (p.solution(t, x + e) ** 2 / 2 - p.solution(t, x - e) ** 2 / 2) / (2 * e)
    assert (u_t + flux_x).abs().max() < 1e-6
    # After t = 1/a the shock separates a from 0 and moves at (a + 0)/2.
    s1, s2 = float(p.shock_position(0.7)), float(p.shock_position(0.8))
    assert abs((s2 - s1) / 0.1 - 1.0) < 1e-12
    assert float(p.solution(0.7, s1 - 1e-9)) == 2.0 and float(p.solution(0.7, s1 + 1e-9)) == 0.0
    assert float(p.solution(0.0, -1.0)) == 2.0  # inflow value


def test_registry_and_errors():
    assert get_problem("advection") is LinearAdvection
    assert get_problem("burgers") is InviscidBurgers
    with pytest.raises(ValueError, match="a must be > 0"):
        InviscidBurgers(0.0)
