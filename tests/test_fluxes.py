"""Two routes to the conservation constraint's b(t): closed-form total vs. integrated fluxes."""

import pytest
import torch
from scipy.integrate import quad

import physguard as pg
from physguard.pdes import InviscidBurgers, LinearAdvection

CASES = [pg.Diffusion(3.0), pg.PorousMedium(1.0), pg.PorousMedium(3.0), pg.PorousMedium(6.0),
         pg.Stefan(0.5), pg.Stefan(0.6), LinearAdvection(1.0), LinearAdvection(3.0),
         InviscidBurgers(1.0), InviscidBurgers(3.0)]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("problem", CASES, ids=repr)
def test_mass_from_fluxes_matches_the_closed_form(problem):
    a, b = problem.domain
    # U(0) by quadrature of the initial condition (with its kinks and jumps as break points).
    breaks = [p for p in (0.0, 0.5) if a < p < b]
    u0 = quad(lambda x: float(problem.solution(0.0, torch.tensor(x))), a, b,
              points=breaks or None, limit=200, epsabs=1e-13)[0]
    t = torch.linspace(*problem.t_range, 6, dtype=torch.float64)
    from_fluxes = pg.mass_from_fluxes(u0, problem.net_inflow, t)
    closed = problem.mass(t)
    assert torch.allclose(from_fluxes, closed, atol=1e-6 * (1 + closed.abs().max()), rtol=0)
    # ...and the two constraints agree on the evaluation grid.
    x = torch.linspace(a, b, 201, dtype=torch.float64)
    c1, c2 = pg.mass_constraint(x, closed), pg.mass_constraint(x, from_fluxes)
    assert torch.allclose(c1.b, c2.b, atol=1e-6 * (1 + closed.abs().max()))


def test_a_wrong_flux_is_detected():
    problem = pg.Stefan(0.6)
    t = torch.tensor([0.05], dtype=torch.float64)
    wrong = pg.mass_from_fluxes(0.0, lambda s: 0.9 * problem.net_inflow(s), t)
    assert abs(float(wrong - problem.mass(t))) > 1e-2


def test_bad_times():
    with pytest.raises(ValueError, match="t must be >= 0"):
        pg.mass_from_fluxes(0.0, lambda s: 1.0, torch.tensor([-1.0]))
