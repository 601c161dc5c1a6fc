"""2-D series problems: PDE residual by autograd, wall conditions, conserved total."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import physguard as pg

D = torch.float64


def _derivatives(problem, t, x, y):
    """u, u_t, u_tt, u_x, u_y, u_xx + u_yy at the points, by autograd (float64)."""
    t, x, y = (v.clone().requires_grad_(True) for v in (t, x, y))
    u = problem.solution(t, x, y)

    def grad(f, v):
        return torch.autograd.grad(f.sum(), v, create_graph=True)[0]

    u_t, u_x, u_y = grad(u, t), grad(u, x), grad(u, y)
    return u, u_t, grad(u_t, t), u_x, u_y, grad(u_x, x) + grad(u_y, y)


def _points(seed, n=50, lengths=(1.0, 1.0)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g, dtype=D), lengths[0] * torch.rand(n, generator=g, dtype=D),
            lengths[1] * torch.rand(n, generator=g, dtype=D))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.floats(0.5, 3.0), st.floats(0.5, 2.0), st.floats(0.5, 2.0))
def test_wave_residual_walls_and_initial_velocity(seed, c, lx, ly):
    problem = pg.Wave2d.random(n_modes=5, speed=c, lengths=(lx, ly),
                               generator=torch.Generator().manual_seed(seed))
    t, x, y = _points(seed, lengths=(lx, ly))
    u, u_t, u_tt, _, _, lap = _derivatives(problem, t, x, y)
    scale = 1 + float(u_tt.abs().max())
    assert float((u_tt - c**2 * lap).abs().max()) < 1e-10 * scale
    _, u_t0, _, _, _, _ = _derivatives(problem, torch.zeros_like(t), x, y)
    assert float(u_t0.abs().max()) < 1e-12
    for wall_x in (0.0, lx):  # zero flux through every wall
        _, _, _, u_x, _, _ = _derivatives(problem, t, torch.full_like(x, wall_x), y)
        assert float(u_x.abs().max()) < 1e-10 * scale
    for wall_y in (0.0, ly):
        _, _, _, _, u_y, _ = _derivatives(problem, t, x, torch.full_like(y, wall_y))
        assert float(u_y.abs().max()) < 1e-10 * scale


def test_wave_total_is_constant_in_time():
    problem = pg.Wave2d.random(n_modes=6, generator=torch.Generator().manual_seed(3))
    n = 401  # trapezoid rule on a fine grid; exact for the cosine series up to O(h^2)
    x = torch.linspace(0, 1, n, dtype=D)
    w = torch.full((n,), 1 / (n - 1), dtype=D)
    w[[0, -1]] /= 2
    for t in (0.0, 0.3, 1.7, 5.0):
        u = problem.solution(torch.tensor(t, dtype=D), x[:, None], x[None, :])
        total = float(w @ u @ w)
        assert abs(total - float(problem.mass(torch.tensor(t)))) < 1e-5


@pytest.mark.parametrize("kind_x", ["dirichlet", "neumann", "periodic"])
@pytest.mark.parametrize("kind_y", ["dirichlet", "neumann", "periodic"])
def test_heat_residual_and_every_wall_condition(kind_x, kind_y):
    problem = pg.Heat2d.random(kind_x, kind_y, n_modes=5, kappa=0.05,
                               generator=torch.Generator().manual_seed(7))
    t, x, y = _points(1)
    u, u_t, _, _, _, lap = _derivatives(problem, t, x, y)
    assert float((u_t - 0.05 * lap).abs().max()) < 1e-10 * (1 + float(u_t.abs().max()))
    for kind, axis in ((kind_x, 0), (kind_y, 1)):
        lo = [x, y]
        hi = [x, y]
        lo[axis] = torch.zeros_like(x)
        hi[axis] = torch.ones_like(x)
        a = _derivatives(problem, t, *lo)
        b = _derivatives(problem, t, *hi)
        if kind == "dirichlet":
            assert float(a[0].abs().max()) < 1e-12 and float(b[0].abs().max()) < 1e-12
        elif kind == "neumann":
            assert float(a[3 + axis].abs().max()) < 1e-12
            assert float(b[3 + axis].abs().max()) < 1e-12
        else:
            assert float((a[0] - b[0]).abs().max()) < 1e-12
            assert float((a[3 + axis] - b[3 + axis]).abs().max()) < 1e-10


def test_errors():
    with pytest.raises(ValueError, match="condition kind"):
        pg.Heat2d([[1.0]], "robin")
    with pytest.raises(ValueError, match="speed"):
        pg.Wave2d([[1.0]], speed=-1)
    with pytest.raises(ValueError, match="coefficients"):
        pg.Wave2d(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="outside the domain"):
        pg.Wave2d([[1.0]]).solution(0.0, 1.5, 0.5)
    with pytest.raises(ValueError, match="t must be >= 0"):
        pg.Heat2d([[1.0]]).solution(-1.0, 0.5, 0.5)
    assert math.isclose(float(pg.Wave2d([[2.0]], lengths=(2.0, 3.0)).mass(1.0)), 12.0)
