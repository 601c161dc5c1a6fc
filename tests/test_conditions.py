"""The bottom floor: condition objects, the wall table and the n-D wall residuals."""

import ast
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import physguard
from physguard import metrics as M
from physguard.conditions import (
    AXIS_WALLS,
    WALLS,
    Dirichlet,
    Neumann,
    Periodic,
    condition,
    wall_residuals,
)


def test_conditions_module_imports_nothing_from_physguard():
    source = Path(physguard.__file__).with_name("conditions.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("physguard"), \
                ast.unparse(node)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("physguard") for a in node.names)


def test_old_import_paths_still_work():
    from physguard import Dirichlet as top
    from physguard.boundary import Neumann as boundary_neumann
    from physguard.boundary.conditions import Periodic as old_periodic

    assert top is Dirichlet and boundary_neumann is Neumann and old_periodic is Periodic


def test_condition_from_strings():
    assert condition("Dirichlet", 1.5) == Dirichlet(1.5)
    assert condition(" neumann ", 0.25, order=3) == Neumann(0.25, 3)
    assert condition("periodic", 7.0) == Periodic()
    with pytest.raises(ValueError, match="unknown boundary condition 'robin'"):
        condition("robin")
    with pytest.raises(ValueError, match="order"):
        condition("neumann", 0.0, order=5)
    assert AXIS_WALLS["x"] + AXIS_WALLS["y"] == WALLS


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=6, max_size=6), st.integers(5, 30),
       st.integers(5, 30))
def test_residuals_vanish_on_quadratics_with_their_own_values(c, nx, ny):
    """The 2nd-order stencil is exact on quadratics: a field ``q(x) + r(y)`` given its own
    wall values and normal derivatives has zero residual on every wall (float64 round-off)."""
    x = torch.linspace(0.0, 2.0, nx, dtype=torch.float64)
    y = torch.linspace(-1.0, 0.5, ny, dtype=torch.float64)
    xx, yy = torch.meshgrid(x, y, indexing="ij")
    u = (c[0] + c[1] * xx + c[2] * xx ** 2 + c[3] * yy + c[4] * yy ** 2 + c[5] * xx * yy)[None]
    du_dx = c[1] + 2 * c[2] * xx + c[5] * yy
    du_dy = c[3] + 2 * c[4] * yy + c[5] * xx
    h = (float(x[1] - x[0]), float(y[1] - y[0]))
    walls = {"left": Dirichlet(u[:, 0]), "right": Neumann(du_dx[None, -1]),
             "bottom": Neumann(du_dy[None, :, 0]), "top": Dirichlet(u[:, :, -1])}
    residuals = wall_residuals(u, walls, h)
    assert residuals["left"].shape == (1, ny) and residuals["bottom"].shape == (1, nx)
    scale = 1 + u.abs().max() / min(h)
    for wall, r in residuals.items():
        assert float(r.abs().max()) < 1e-11 * scale, wall


def test_2d_residuals_match_the_1d_metric_along_each_axis():
    torch.manual_seed(0)
    u = torch.randn(3, 2, 9, 7, dtype=torch.float64)
    h = (0.125, 1 / 6)
    walls = {"left": condition("neumann", 0.3), "right": condition("dirichlet", -1.0),
             "bottom": condition("periodic"), "top": condition("neumann", 0.0)}
    got = wall_residuals(u, walls, h)
    along_x = u.transpose(-1, -2)

    def value(v):
        return torch.tensor(v, dtype=torch.float64)

    expected = {"left": M.boundary_residual(along_x, "neumann", value(0.3), "left", h[0]),
                "right": M.boundary_residual(along_x, "dirichlet", value(-1.0), "right", h[0]),
                "bottom": M.boundary_residual(u, "periodic", None, "left", h[1]),
                "top": M.boundary_residual(u, "neumann", value(0.0), "right", h[1])}
    for wall in WALLS:
        torch.testing.assert_close(got[wall], expected[wall], rtol=1e-13, atol=1e-13)


def test_1d_residuals_and_errors():
    u = torch.tensor([[1.0, 2.0, 5.0, 10.0]], dtype=torch.float64)  # 1 + x^2 on x = 0..3
    r = wall_residuals(u, {"left": Neumann(0.0), "right": Dirichlet(10.0)}, 1.0)
    assert float(r["left"].abs().max()) < 1e-14 and float(r["right"].abs().max()) == 0.0
    with pytest.raises(ValueError, match="no wall 'top' in 1-D"):
        wall_residuals(u, {"top": Dirichlet(0.0)}, 1.0)
    with pytest.raises(ValueError, match="must be Dirichlet, Neumann or Periodic"):
        wall_residuals(u, {"left": "dirichlet"}, 1.0)
    with pytest.raises(ValueError, match="needs 4 points"):
        wall_residuals(u[:, :3], {"left": Neumann(0.0, order=3)}, 1.0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), dims=st.sampled_from([1, 2]),
       scale=st.floats(1e-3, 1e3))
def test_wall_error_share_is_what_exact_walls_remove(seed, dims, scale):
    """Setting the wall points to the truth keeps sqrt(1 - share) of the pooled error, in 1-D
    and 2-D; the share ignores the error's scale; the interior relative L2 ignores the
    walls."""
    gen = torch.Generator().manual_seed(seed)
    shape = (4, 3) + ((9,) if dims == 1 else (7, 6))
    truth = torch.randn(shape, generator=gen, dtype=torch.float64)
    pred = truth + torch.randn(shape, generator=gen, dtype=torch.float64)
    share = M.wall_error_share(pred, truth, dims)
    assert 0.0 <= share <= 1.0
    inner = (Ellipsis,) + (slice(1, -1),) * dims
    walls_exact = truth.clone()
    walls_exact[inner] = pred[inner]
    before = (pred - truth).square().sum()
    after = (walls_exact - truth).square().sum()
    assert abs(float(after / before) - (1 - share)) < 1e-12
    scaled = truth + scale * (pred - truth)
    assert abs(M.wall_error_share(scaled, truth, dims) - share) < 1e-9
    torch.testing.assert_close(M.interior_relative_l2(walls_exact, truth, dims),
                               M.interior_relative_l2(pred, truth, dims), rtol=0, atol=0)
    direct = torch.stack([(pred[b][inner] - truth[b][inner]).norm() / truth[b][inner].norm()
                          for b in range(shape[0])])
    torch.testing.assert_close(M.interior_relative_l2(pred, truth, dims), direct,
                               rtol=1e-12, atol=0)


def test_interior_metrics_refuse_grids_without_an_interior():
    with pytest.raises(ValueError, match="at least 3 points"):
        M.interior_relative_l2(torch.ones(2, 1, 2), torch.ones(2, 1, 2))
    with pytest.raises(ValueError, match="differ"):
        M.wall_error_share(torch.ones(2, 1, 5), torch.ones(2, 1, 6))
    assert M.wall_residuals is wall_residuals
