"""The GPME problems: PDE residuals, closed-form masses, the Stefan interface constant."""

import math

import pytest
import torch
from scipy.integrate import quad
from scipy.special import erf

from physguard.pdes import Diffusion, PorousMedium, Stefan, stefan_z1

F64 = torch.float64


def residual(problem, t, x, h=1e-5):
    """u_t - (k(u) u_x)_x by central differences (flux form), at points (t, x)."""
    u = problem.solution
    u_t = (u(t + h, x) - u(t - h, x)) / (2 * h)

    def flux(xm):
        um = 0.5 * (u(t, xm + h) + u(t, xm - h))
        return problem.conductivity(um) * (u(t, xm + h) - u(t, xm - h)) / (2 * h)

    return u_t - (flux(x + h) - flux(x - h)) / (2 * h)


def interior_points(problem, n=400, seed=0):
    gen = torch.Generator().manual_seed(seed)
    (a, b), (t0, t1) = problem.domain, problem.t_range
    t = t0 + 0.05 * (t1 - t0) + 0.9 * (t1 - t0) * torch.rand(n, generator=gen, dtype=F64)
    x = a + 0.02 * (b - a) + 0.96 * (b - a) * torch.rand(n, generator=gen, dtype=F64)
    return t, x


PROBLEMS = [Diffusion(1.0), Diffusion(5.0), PorousMedium(1.0), PorousMedium(3.0),
            PorousMedium(6.0), Stefan(0.5), Stefan(0.6), Stefan(0.7)]


@pytest.mark.parametrize("problem", PROBLEMS, ids=repr)
def test_solution_satisfies_the_pde_away_from_the_shock(problem):
    t, x = interior_points(problem)
    if problem.has_shock:
        # Keep points a few stencil widths from the front on either side.
        gap = (x - problem.shock_position(t)).abs()
        keep = gap > 0.02
        t, x = t[keep], x[keep]
    r = residual(problem, t, x)
    scale = problem.solution(t, x).abs().max()
    assert r.abs().max() < 2e-4 * max(1.0, float(scale))
    # The test has teeth: a wrong conductivity leaves a visible residual.
    if isinstance(problem, Diffusion):
        wrong = Diffusion(problem.k * 1.1)
        wrong.conductivity = problem.conductivity
        assert residual(wrong, t, x).abs().max() > 1e-2


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("problem", PROBLEMS, ids=repr)
def test_mass_matches_quadrature_of_the_solution(problem):
    a, b = problem.domain
    for t in torch.linspace(*problem.t_range, 7, dtype=F64)[1:]:
        points = [float(problem.shock_position(t))] if problem.has_shock else None
        if points is not None and not a < points[0] < b:
            points = None
        value, _ = quad(lambda x, t=t: float(problem.solution(t, torch.tensor(x))), a, b,
                        points=points, epsabs=1e-13, epsrel=1e-12, limit=200)
        exact = float(problem.mass(t))
        # Relative 1e-6; for the zero total of the periodic diffusion case, absolute 1e-8.
        assert abs(value - exact) <= 1e-6 * max(abs(exact), 1e-2)


def test_boundary_and_initial_conditions():
    t = torch.linspace(0.01, 0.1, 11, dtype=F64)
    x = torch.linspace(0.01, 1, 11, dtype=F64)
    s = Stefan(0.6)
    assert torch.allclose(s.solution(t, 0.0), torch.ones_like(t))
    assert torch.equal(s.solution(0.0, x), torch.zeros_like(x))
    # u jumps from p* to 0 at the front.
    front = s.shock_position(t)
    assert torch.allclose(s.solution(t, front), torch.full_like(t, 0.6), atol=1e-12)
    assert torch.equal(s.solution(t, front + 1e-9), torch.zeros_like(t))
    p = PorousMedium(3.0)
    assert torch.allclose(p.solution(t, 0.0), (3 * t) ** (1 / 3))
    assert torch.equal(p.solution(0.0, x), torch.zeros_like(x))
    d = Diffusion(2.0)
    xs = torch.linspace(0, 2 * math.pi, 9, dtype=F64)
    assert torch.allclose(d.solution(0.0, xs), torch.sin(xs))
    assert torch.allclose(d.solution(0.3, 0.0), d.solution(0.3, 2 * math.pi), atol=1e-12)


@pytest.mark.parametrize("p_star", [0.05, 0.3, 0.5, 0.55, 0.6, 0.7, 0.95])
def test_stefan_constant_solves_its_transcendental_equation(p_star):
    z1 = stefan_z1(p_star)
    lhs = p_star * erf(z1) * z1 * math.exp(z1**2)
    assert abs(lhs - (1 - p_star) / math.sqrt(math.pi)) < 1e-14


@pytest.mark.parametrize(
    "p_star, alpha, c1, mass_005",
    [(0.5, 1.2401252666, 0.8071551669, 0.2036559452),
     (0.6, 1.0513395993, 0.7369656739, 0.1859462059),
     (0.7, 0.8687108934, 0.6508100733, 0.1642080062)],
)
def test_stefan_matches_reference_values(p_star, alpha, c1, mass_005):
    s = Stefan(p_star)
    assert abs(s.alpha - alpha) < 1e-9
    assert abs(s.c1 - c1) < 1e-9
    assert abs(float(s.mass(0.05)) - mass_005) < 1e-9


@pytest.mark.parametrize("m, u_half", [(1, 0.125), (3, 0.4292678410), (6, 0.5146872665)])
def test_pme_mass_reference_values(m, u_half):
    assert abs(float(PorousMedium(m).mass(0.5)) - u_half) < 1e-9


def test_bad_parameters_and_times():
    with pytest.raises(ValueError, match="p\\*"):
        Stefan(1.2)
    with pytest.raises(ValueError, match="m must be > 0"):
        PorousMedium(0.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        Diffusion(-1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        Stefan(0.6).mass(-0.1)
    with pytest.raises(ValueError, match="leaves"):
        Stefan(0.6).mass(2.0)
    with pytest.raises(ValueError, match="NaN"):
        PorousMedium(1.0).solution(0.5, torch.tensor([float("nan")]))
    with pytest.raises(NotImplementedError):
        Diffusion(1.0).shock_position(0.5)
