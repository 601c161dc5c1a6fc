"""BOON: exact boundary conditions on FNO outputs, at the training resolution and finer."""

import itertools

import pytest
import torch

import physguard as pg
from physguard.boundary.boon import _LayerCorrection

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}
SIDES = [None, pg.Dirichlet(0.7), pg.Neumann(-1.3), pg.Neumann(2.0, order=3)]


def make_fno(dtype, seed=0, domain=(0.0, 2.0)):
    torch.manual_seed(seed)
    return pg.FNO1d(1, 2, modes=12, width=16, n_layers=3, domain=domain).to(dtype)


def left_derivative(u, h, order):
    if order == 2:
        return (-3 * u[..., 0] + 4 * u[..., 1] - u[..., 2]) / (2 * h)
    return (-11 * u[..., 0] + 18 * u[..., 1] - 9 * u[..., 2] + 2 * u[..., 3]) / (6 * h)


def right_derivative(u, h, order):
    if order == 2:
        return (3 * u[..., -1] - 4 * u[..., -2] + u[..., -3]) / (2 * h)
    return (11 * u[..., -1] - 18 * u[..., -2] + 9 * u[..., -3] - 2 * u[..., -4]) / (6 * h)


def check(out, bc, side, h, tol):
    """Independent check of one condition on out (B, C, N), scaled by the output size."""
    scale = 1.0 + out.abs().max().item()
    if isinstance(bc, pg.Dirichlet):
        end = out[..., 0] if side == "left" else out[..., -1]
        assert (end - bc.value).abs().max() <= tol * scale
    elif isinstance(bc, pg.Neumann):
        deriv = left_derivative if side == "left" else right_derivative
        assert (deriv(out, h, bc.order) - bc.flux).abs().max() <= tol * scale / h


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("left, right", list(itertools.product(SIDES, SIDES)))
def test_conditions_hold_at_two_resolutions(dtype, left, right):
    fno = make_fno(dtype)
    model = pg.BOON(fno, left=left, right=right)
    for n in (64, 128):
        x = torch.randn(3, 1, n, dtype=dtype)
        out = model(x)
        assert out.shape == (3, 2, n)
        h = 2.0 / (n - 1)
        check(out, left, "left", h, TOL[dtype])
        check(out, right, "right", h, TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_periodic_and_per_sample_values(dtype):
    fno = make_fno(dtype)
    x = torch.randn(4, 1, 96, dtype=dtype)
    out = pg.BOON(fno, left=pg.Periodic(), right=pg.Periodic())(x)
    assert torch.equal(out[..., 0], out[..., -1])
    values = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=dtype)
    fluxes = torch.randn(4, 2, dtype=dtype)
    out = pg.BOON(fno, left=pg.Dirichlet(values), right=pg.Neumann(fluxes))(x)
    assert torch.allclose(out[..., 0], values[:, None].expand(4, 2), atol=TOL[dtype], rtol=0)
    h = 2.0 / 95
    d = right_derivative(out, h, 2)
    assert (d - fluxes).abs().max() <= TOL[dtype] * (1 + out.abs().max()) / h


def test_without_conditions_boon_is_the_operator():
    fno = make_fno(torch.float64)
    x = torch.randn(2, 1, 50, dtype=torch.float64)
    assert torch.equal(pg.BOON(fno)(x), fno(x))


@pytest.mark.parametrize("points", [[0], [47], [0, 47]])
def test_corrected_kernel_decouples_boundary_from_interior(points):
    """(K v~)_P depends on v_P only: changing the interior leaves the boundary rows unchanged."""
    fno = make_fno(torch.float64, seed=3)
    layer = fno.layers[-1]  # the last kernel layer has no activation: the output is K v + b
    v = torch.randn(2, 16, 48, dtype=torch.float64)
    w = v.clone()
    w[:, :, 1:-1] += torch.randn(2, 16, 46, dtype=torch.float64)
    corrected = _LayerCorrection(points, 48)
    a, b = layer(v, corrected), layer(w, corrected)
    assert (a[:, :, points] - b[:, :, points]).abs().max() < 1e-7
    # Without the correction the interior leaks into the boundary rows (the test has teeth).
    assert (layer(v)[:, :, points] - layer(w)[:, :, points]).abs().max() > 1e-2


def test_damped_solve_is_the_regularised_least_squares_solution():
    """solve(A, rhs, d) minimises |A x - rhs|^2 + lam^2 |x|^2, lam = d * RMS singular value
    of A: the stacked system [A; lam I] x = [rhs; 0] in the least-squares sense."""
    from physguard.boundary._block import solve

    gen = torch.Generator().manual_seed(5)
    A = torch.randn(3, 6, 6, dtype=torch.float64, generator=gen)
    A[0, :, 0] *= 1e-6  # a nearly singular block
    rhs = torch.randn(3, 6, 4, dtype=torch.float64, generator=gen)
    for d in (0.1, 0.3, 1.0):
        lam = d * torch.linalg.matrix_norm(A) / 6 ** 0.5
        stacked = torch.cat([A, lam[:, None, None] * torch.eye(6, dtype=A.dtype)], dim=1)
        expected = torch.linalg.lstsq(stacked, torch.cat([rhs, torch.zeros_like(rhs)], 1))
        assert torch.allclose(solve(A, rhs, d), expected.solution, atol=1e-10)
        # bounded by |rhs| / (2 lam) per column, where the exact solve is huge
        bound = rhs.norm(dim=1) / (2 * lam[:, None])
        assert (solve(A, rhs, d).norm(dim=1) <= bound * (1 + 1e-9)).all()
    assert solve(A, rhs).norm() > 1e4  # the exact solve is not bounded (the test has teeth)
    assert torch.allclose(A @ solve(A, rhs), rhs, atol=1e-6)


def test_damping_keeps_the_conditions_exact_and_shrinks_the_wall_correction():
    fno = make_fno(torch.float64, seed=3)
    x = torch.randn(3, 1, 48, dtype=torch.float64)
    left, right = pg.Dirichlet(0.5), pg.Neumann(-1.0)
    h = 2.0 / 47
    deltas = {}
    for d in (0.0, 0.3, 1.0):
        model = pg.BOON(fno, left=left, right=right, damping=d)
        assert model.damping == d
        out = model(x)
        check(out, left, "left", h, 1e-12)
        check(out, right, "right", h, 1e-10)
        layer = fno.layers[-1]
        v = torch.randn(2, 16, 48, dtype=torch.float64)
        corrected = _LayerCorrection([0, 47], 48, d)
        deltas[d] = (layer(v, corrected) - layer(v)).norm()
    assert deltas[1.0] < deltas[0.3] < deltas[0.0]
    assert pg.BOON(fno, left=left).damping == pg.boundary.boon.DAMPING == 0.3
    for bad in (-0.1, float("inf"), float("nan"), True, "0.3"):
        with pytest.raises(ValueError, match="damping"):
            pg.BOON(fno, left=left, damping=bad)


def test_gradients_flow_through_the_correction():
    fno = make_fno(torch.float32)
    model = pg.BOON(fno, left=pg.Dirichlet(0.0), right=pg.Neumann(1.0))
    x = torch.randn(2, 1, 64)
    model(x).square().mean().backward()
    grads = [p.grad for p in fno.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert fno.layers[0].spectral.weight.grad.abs().sum() > 0


def test_bad_arguments():
    fno = make_fno(torch.float32)
    with pytest.raises(ValueError, match="both ends"):
        pg.BOON(fno, left=pg.Periodic(), right=pg.Dirichlet(0.0))
    with pytest.raises(TypeError, match="FNO1d"):
        pg.BOON(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="left must be"):
        pg.BOON(fno, left=0.0)
    with pytest.raises(ValueError, match="order must be one of"):
        pg.Neumann(0.0, order=5)
    with pytest.raises(ValueError, match="does not broadcast"):
        pg.BOON(fno, left=pg.Dirichlet(torch.zeros(5)))(torch.randn(3, 1, 32))
    with pytest.raises(ValueError, match=r"input must have shape \(batch, 1, N\)"):
        fno(torch.randn(3, 2, 32))


# -- space-time operator (multi-step setting) ---------------------------------------------------

def make_space_time(dtype, seed=0):
    torch.manual_seed(seed)
    return pg.SpaceTimeFNO1d(1, 6, modes_x=8, modes_t=3, width=8, n_layers=3,
                             domain=(0.0, 2.0)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("left, right", [(pg.Dirichlet(0.7), pg.Neumann(-1.3)),
                                         (pg.Neumann(2.0, order=3), None),
                                         (None, pg.Dirichlet(-0.2))])
def test_space_time_conditions_hold_per_time_step(dtype, left, right):
    model = pg.BOON(make_space_time(dtype), left=left, right=right)
    for n in (32, 64):
        out = model(torch.randn(2, 1, n, dtype=dtype))
        assert out.shape == (2, 6, n)
        h = 2.0 / (n - 1)
        check(out, left, "left", h, TOL[dtype])
        check(out, right, "right", h, TOL[dtype])


def test_space_time_per_time_step_values_and_periodic():
    op = make_space_time(torch.float64)
    values = torch.randn(3, 6, dtype=torch.float64)  # (B, T): one value per snapshot
    out = pg.BOON(op, left=pg.Dirichlet(values))(
        torch.randn(3, 1, 40, dtype=torch.float64))
    assert torch.allclose(out[..., 0], values, atol=1e-12, rtol=0)
    out = pg.BOON(op, left=pg.Periodic(), right=pg.Periodic())(
        torch.randn(3, 1, 40, dtype=torch.float64))
    assert torch.equal(out[..., 0], out[..., -1])


@pytest.mark.parametrize("points", [[0], [39], [0, 39]])
def test_space_time_correction_decouples_boundary_from_interior(points):
    from physguard.boundary.boon import _SpaceTimeCorrection

    layer = make_space_time(torch.float64, seed=4).layers[-1]
    v = torch.randn(2, 8, 6, 40, dtype=torch.float64)
    w = v.clone()
    w[..., 1:-1] += torch.randn(2, 8, 6, 38, dtype=torch.float64)
    corrected = _SpaceTimeCorrection(points, 40)
    a, b = layer(v, corrected), layer(w, corrected)
    assert (a[..., points] - b[..., points]).abs().max() < 1e-7
    assert (layer(v)[..., points] - layer(w)[..., points]).abs().max() > 1e-2


@pytest.mark.parametrize("side", ["end", "start", "both"])
def test_time_padding_keeps_conditions_exact_and_the_output_causal_in_shape(side):
    """A padded space-time operator: same output shape, BOON's conditions still exact, and
    the padding changes the result (the time axis is no longer wrapped)."""
    torch.manual_seed(0)
    padded = pg.SpaceTimeFNO1d(1, 6, modes_x=8, modes_t=3, width=8, n_layers=3,
                               domain=(-1.0, 1.0), time_padding=5,
                               time_padding_side=side).double()
    plain = pg.SpaceTimeFNO1d(1, 6, modes_x=8, modes_t=3, width=8, n_layers=3,
                              domain=(-1.0, 1.0)).double()
    plain.load_state_dict(padded.state_dict())  # same weights: padding is not a parameter
    u = torch.randn(2, 1, 33, dtype=torch.float64)
    values = torch.randn(2, 6, dtype=torch.float64)
    out = pg.BOON(padded, left=pg.Dirichlet(values), right=pg.Neumann(1.0))(u)
    assert out.shape == (2, 6, 33)
    assert torch.allclose(out[..., 0], values, atol=1e-12, rtol=0)
    check(out, pg.Neumann(1.0), "right", 2.0 / 32, TOL[torch.float64])
    assert (padded(u) - plain(u)).abs().max() > 1e-3


def test_time_padding_split_and_errors():
    from physguard.models.fno import time_pad_split

    assert time_pad_split(5, "end") == (0, 5)
    assert time_pad_split(5, "start") == (5, 0)
    assert time_pad_split(5, "both") == (2, 3)
    with pytest.raises(ValueError, match="time_padding"):
        pg.SpaceTimeFNO1d(1, 6, 8, 3, 8, 2, time_padding=-1)
    with pytest.raises(ValueError, match="time_padding_side"):
        pg.SpaceTimeFNO2d(1, 6, 4, 8, 2, time_padding_side="middle")


@pytest.mark.parametrize("two_d", [False, True])
def test_evaluation_keeps_the_wall_blocks_and_follows_the_weights(two_d):
    """Without autograd (a rollout's steps) the wall blocks and their solve operators are kept
    between calls: the output equals the recomputed one (autograd on) to float32 round-off,
    and a change of the weights (an optimiser step) is never answered from the old blocks."""
    torch.manual_seed(0)
    if two_d:
        op = pg.FNO2d(1, 1, modes=4, width=8, n_layers=2)
        walls = dict(left=pg.Dirichlet(0.5), right=pg.Neumann(0.0), bottom=pg.Dirichlet(0.0),
                     top=pg.Neumann(1.0))
        x = torch.randn(3, 1, 12, 10)
    else:
        op = pg.FNO1d(1, 1, modes=6, width=8, n_layers=2)
        walls = dict(left=pg.Dirichlet(0.5), right=pg.Neumann(1.0))
        x = torch.randn(3, 1, 20)
    model = pg.BOON(op, **walls)

    def fresh():
        with torch.enable_grad():
            return model(x).detach()

    with torch.no_grad():
        first, again = model(x), model(x)
    torch.testing.assert_close(first, fresh(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    with torch.no_grad():
        for p in op.parameters():
            p.mul_(1.3)
        changed = model(x)
    torch.testing.assert_close(changed, fresh(), rtol=1e-4, atol=1e-5)
    assert (changed - first).abs().max() > 1e-3
