"""FNO2d, SpaceTimeFNO2d and BOON on the four walls of a rectangle."""

import pytest
import torch

import physguard as pg
from physguard.boundary.walls import WallCorrection
from physguard.models.fno_nd import FourierLayerNd, SpectralConvNd

D = torch.float64
STENCIL = {2: (-1.5, 2.0, -0.5), 3: (-11 / 6, 3.0, -1.5, 1 / 3)}  # written out independently


def _flux(out, wall, order, h):
    """The one-sided derivative along the wall normal, the axis's own direction (d/dx, d/dy)."""
    c = STENCIL[order]
    if wall == "left":
        return sum(ci * out[..., i, 1:-1] for i, ci in enumerate(c)) / h[0]
    if wall == "right":
        return -sum(ci * out[..., -1 - i, 1:-1] for i, ci in enumerate(c)) / h[0]
    if wall == "bottom":
        return sum(ci * out[..., 1:-1, i] for i, ci in enumerate(c)) / h[1]
    return -sum(ci * out[..., 1:-1, -1 - i] for i, ci in enumerate(c)) / h[1]


def _wall(out, wall):
    return {"left": out[..., 0, 1:-1], "right": out[..., -1, 1:-1],
            "bottom": out[..., 1:-1, 0], "top": out[..., 1:-1, -1]}[wall]


def _check(out, conditions, h, tol):
    for wall, bc in conditions.items():
        if isinstance(bc, pg.Dirichlet):
            value = torch.as_tensor(bc.value, dtype=out.dtype)
            err = (_wall(out, wall) - value).abs().max()
        elif isinstance(bc, pg.Neumann):
            err = (_flux(out, wall, bc.order, h) - bc.flux).abs().max() * h[0]
        else:
            continue
        assert float(err) < tol, (wall, float(err))
    if isinstance(conditions.get("left"), pg.Periodic):
        assert torch.equal(out[..., 0, :], out[..., -1, :])
    if isinstance(conditions.get("bottom"), pg.Periodic):
        assert torch.equal(out[..., :, 0], out[..., :, -1])


CASES = {
    "dirichlet": dict(left=pg.Dirichlet(1.0), right=pg.Dirichlet(-2.0), bottom=pg.Dirichlet(0.5),
                      top=pg.Dirichlet(3.0)),
    "neumann-2": dict(left=pg.Neumann(1.0), right=pg.Neumann(-1.0), bottom=pg.Neumann(0.5),
                      top=pg.Neumann(2.0)),
    "neumann-3": dict(left=pg.Neumann(1.0, order=3), right=pg.Neumann(0.0, order=3),
                      bottom=pg.Neumann(-0.5, order=3), top=pg.Neumann(2.0, order=3)),
    "periodic-x-dirichlet-y": dict(left=pg.Periodic(), right=pg.Periodic(),
                                   bottom=pg.Dirichlet(0.0), top=pg.Dirichlet(1.0)),
    "mix": dict(left=pg.Dirichlet(1.0), right=pg.Neumann(2.0, order=3), bottom=pg.Periodic(),
                top=pg.Periodic()),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_every_wall_condition_holds(name, dtype, tol):
    torch.manual_seed(0)
    fno = pg.FNO2d(1, 2, (6, 5), 8, 3, domain=((0.0, 2.0), (-1.0, 1.0))).to(dtype)
    u = torch.randn(3, 1, 20, 17, dtype=dtype)
    out = pg.BOON(fno, **CASES[name])(u, output_dtype=torch.float64)
    assert out.shape == (3, 2, 20, 17)
    _check(out, CASES[name], (2.0 / 19, 2.0 / 16), tol)


def test_space_time_operator_with_values_per_step_and_wall_point():
    torch.manual_seed(1)
    fno = pg.SpaceTimeFNO2d(1, 5, (5, 5, 3), 8, 2, time_padding=3).double()
    b, t, nx, ny = 2, 5, 12, 10
    left = torch.randn(b, t, ny, dtype=D)  # (B, T, N_wall)
    top = torch.randn(b, nx, dtype=D)  # (B, N_wall), the same at every step
    conditions = dict(left=pg.Dirichlet(left), right=pg.Neumann(torch.randn(b, dtype=D)),
                      bottom=pg.Dirichlet(0.0), top=pg.Dirichlet(top))
    out = pg.BOON(fno, **conditions)(torch.randn(b, 1, nx, ny, dtype=D))
    assert out.shape == (b, t, nx, ny)
    assert torch.allclose(out[..., 0, 1:-1], left[..., 1:-1], atol=0, rtol=0)
    assert torch.equal(out[..., 1:-1, -1], top[:, None, 1:-1].expand(b, t, nx - 2))
    flux = _flux(out, "right", 2, (1 / 11, 1 / 9))
    assert float((flux - conditions["right"].flux[:, None, None]).abs().max()) < 1e-9


def test_space_time_operator_with_several_fields_per_step():
    """fields=2 (a velocity): channel 2k + f is field f at step k, and BOON holds each
    channel's own wall values (u: the lid speed on top, v: 0) with the kernel correction on."""
    torch.manual_seed(2)
    fno = pg.SpaceTimeFNO2d(2, 4, (4, 4, 2), 6, 2, time_padding=2, fields=2).double()
    assert fno.out_channels == 8
    with torch.no_grad():  # the second field's projection made a copy of the first's
        fno.project_out.weight[1] = fno.project_out.weight[0]
        fno.project_out.bias[1] = fno.project_out.bias[0]
    u = torch.randn(3, 2, 9, 10, dtype=D)
    out = fno(u)
    assert out.shape == (3, 8, 9, 10) and torch.equal(out[:, 0::2], out[:, 1::2])
    top = torch.tensor([1.0, 0.0], dtype=D).repeat(4)[None, :, None].expand(3, 8, 9)
    boon = pg.BOON(fno, left=pg.Dirichlet(0.0), right=pg.Dirichlet(0.0),
                   bottom=pg.Dirichlet(0.0), top=pg.Dirichlet(top.contiguous()))
    walled = boon(u)
    assert torch.equal(walled[:, 0::2, 1:-1, -1], torch.ones(3, 4, 7, dtype=D))
    assert float(walled[:, 1::2, :, -1].abs().max()) == 0.0
    assert float(walled[..., 0, 1:-1].abs().max()) == float(walled[..., :, 0].abs().max()) == 0
    with pytest.raises(ValueError, match="fields"):
        pg.SpaceTimeFNO2d(1, 4, 3, 4, 2, fields=0)


def test_values_per_channel():
    fno = pg.FNO2d(1, 2, 4, 8, 2).double()
    value = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=D)[..., None].expand(2, 2, 9)
    out = pg.BOON(fno, bottom=pg.Dirichlet(value.contiguous()))(torch.randn(2, 1, 9, 9,
                                                                            dtype=D))
    assert torch.equal(out[..., 0], value)


def test_corner_rules():
    fno = pg.FNO2d(1, 1, 4, 8, 2).double()
    out = pg.BOON(fno, left=pg.Dirichlet(1.0), bottom=pg.Dirichlet(2.0), top=pg.Neumann(0.0))(
        torch.randn(2, 1, 9, 9, dtype=D))
    assert float(out[0, 0, 0, 0]) == 2.0  # two Dirichlet walls: the y wall's value
    assert float(out[0, 0, 0, -1]) == 1.0  # Dirichlet beats Neumann


@pytest.mark.parametrize("grid, modes, walls", [
    ((16, 12), (5, 4), [(0, [0, 15])]),  # x walls
    ((16, 12), (5, 4), [(1, [0, 11])]),  # y walls (the rfft axis)
    ((16, 12), (8, 7), [(1, [11])]),  # the Nyquist mode of the rfft axis is kept
    ((6, 16, 12), (3, 5, 4), [(2, [0, 11])]),  # space-time: y walls, time axis circular
    ((6, 16, 12), (3, 5, 4), [(1, [0, 15])]),  # space-time: x walls (t and the rfft axis)
    ((7, 16, 12), (4, 5, 7), [(1, [15])]),  # ... with the Nyquist column of the rfft axis
])
def test_kernel_correction_makes_wall_rows_independent_of_the_interior(grid, modes, walls):
    """One corrected kernel layer: change every input off the walls, and the wall rows of
    the output change only at the level of the Tikhonov shift (1e-7 relative)."""
    torch.manual_seed(2)
    layer = FourierLayerNd(3, modes, activation=False).double()
    v1 = torch.randn(2, 3, *grid, dtype=D)
    mask = torch.zeros(grid, dtype=torch.bool)
    for axis, points in walls:
        for p in points:
            index = [slice(None)] * len(grid)
            index[axis] = p
            mask[tuple(index)] = True
    v2 = torch.where(mask, v1, torch.randn(2, 3, *grid, dtype=D))
    with torch.no_grad():
        change = (layer(v1, WallCorrection(walls)) - layer(v2, WallCorrection(walls))).abs()
        plain = (layer(v1) - layer(v2)).abs()
    assert float(change[..., mask].max()) < 1e-5 * float(plain[..., mask].max())
    assert float(change[..., ~mask].max()) > 0.1  # the interior still sees its inputs


def test_corrected_layer_keeps_its_spectrum_consistent():
    """The spectrum returned by the correction is the layer's R . F(v + delta)."""
    torch.manual_seed(3)
    layer = FourierLayerNd(3, (4, 3), activation=False).double()
    v = torch.randn(2, 3, 10, 9, dtype=D)
    captured = {}

    def spy(layer_, v_, weight, z, kept):
        changes, z_new = WallCorrection([(0, [0, 9]), (1, [8])])(layer_, v_, weight, z, kept)
        captured.update(delta=WallCorrection.dense(v_, changes))
        return changes, z_new

    out = layer(v, spy)
    expected = SpectralConvNd.forward(layer.spectral, v + captured["delta"]) \
        + layer.pointwise(v + captured["delta"])
    assert torch.allclose(out, expected, atol=1e-12)


def test_shapes_modes_and_resolution():
    fno = pg.FNO2d(2, 3, (4, 3), 8, 2)
    assert fno(torch.randn(2, 2, 12, 9)).shape == (2, 3, 12, 9)
    assert fno(torch.randn(2, 2, 24, 5)).shape == (2, 3, 24, 5)  # another resolution
    sc = SpectralConvNd(2, 2, (3, 3)).double()
    x = torch.randn(1, 2, 10, 9, dtype=D)
    shifted = sc(torch.roll(x, (2, 3), (2, 3)))
    assert torch.allclose(torch.roll(sc(x), (2, 3), (2, 3)), shifted, atol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="modes"):
        pg.FNO2d(1, 1, (4, 4, 4), 8, 2)
    with pytest.raises(ValueError, match="finite intervals"):
        pg.FNO2d(1, 1, 4, 8, 2, domain=((1.0, 0.0), (0.0, 1.0)))
    fno = pg.FNO2d(1, 1, 4, 8, 2)
    with pytest.raises(ValueError, match="both ends"):
        pg.BOON(fno, bottom=pg.Periodic())
    with pytest.raises(ValueError, match="no bottom or top"):
        pg.BOON(pg.FNO1d(1, 1, 4, 8, 2), bottom=pg.Dirichlet(0.0))
    with pytest.raises(ValueError, match=">= 2 points"):
        pg.BOON(fno, left=pg.Dirichlet(0.0))(torch.randn(1, 1, 1, 8))
    with pytest.raises(TypeError, match="dtype"):
        pg.BOON(fno, left=pg.Dirichlet(0.0))(torch.randn(1, 1, 8, 8, dtype=D))
    with pytest.raises(ValueError, match="Neumann stencil"):
        pg.BOON(fno, left=pg.Neumann(0.0, order=3))(torch.randn(1, 1, 3, 8))


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_output_without_the_kernel_correction(name):
    """kernel_correction=False is the operator's own output with the wall values set: the
    conditions hold as with the correction, the interior is the plain operator's, and the
    correction does change the interior where it applies."""
    torch.manual_seed(3)
    fno = pg.FNO2d(1, 2, (6, 5), 8, 3, domain=((0.0, 2.0), (-1.0, 1.0))).double()
    u = torch.randn(3, 1, 20, 17, dtype=D)
    plain = pg.BOON(fno, **CASES[name], kernel_correction=False)
    out = plain(u)
    _check(out, CASES[name], (2.0 / 19, 2.0 / 16), 1e-10)
    assert torch.equal(out, plain.enforce(fno(u)))
    corrected = pg.BOON(fno, **CASES[name])(u)
    assert float((corrected - out)[..., 3:-3, 3:-3].abs().max()) > 1e-6


def test_exact_output_without_the_kernel_correction_in_1d():
    torch.manual_seed(4)
    for op in (pg.FNO1d(1, 1, 6, 8, 3).double(), pg.SpaceTimeFNO1d(1, 4, 6, 3, 8, 2).double()):
        u = torch.randn(2, 1, 24, dtype=D)
        for left, right in ((pg.Dirichlet(1.0), pg.Neumann(-2.0)), (pg.Periodic(), pg.Periodic())):
            plain = pg.BOON(op, left=left, right=right, kernel_correction=False)
            out = plain(u)
            assert torch.equal(out, plain.enforce(op(u)))
            assert not torch.allclose(out, pg.BOON(op, left=left, right=right)(u))
    with pytest.raises(TypeError, match="kernel_correction"):
        pg.BOON(pg.FNO1d(1, 1, 4, 8, 2), left=pg.Dirichlet(0.0), kernel_correction="no")


@pytest.mark.parametrize("two_d", [False, True])
def test_space_time_input_walls_give_each_time_its_wall_values(two_d):
    """For a space-time operator, input_walls writes step k's Dirichlet values into the input
    repeated at time k (a hand-written input_hook gives the same output), the conditions still
    hold, and the interior then depends on the walls' time series."""
    torch.manual_seed(6)
    n_steps = 5
    if two_d:
        op = pg.SpaceTimeFNO2d(1, n_steps, (3, 3, 2), 6, 2, time_padding=2).double()
        u = torch.randn(2, 1, 9, 8, dtype=D)
        g = torch.randn(2, n_steps, 8, dtype=D)  # per time and wall point (left wall)
        walls = dict(left=pg.Dirichlet(g), right=pg.Dirichlet(0.0), bottom=pg.Neumann(0.0))
    else:
        op = pg.SpaceTimeFNO1d(1, n_steps, 6, 3, 8, 2, time_padding=2).double()
        u = torch.randn(2, 1, 16, dtype=D)
        g = torch.randn(2, n_steps, dtype=D)  # per time
        walls = dict(left=pg.Dirichlet(g), right=pg.Neumann(0.0))

    def by_hand(rep):
        rep = rep.clone()
        rep[:, 0, :, 0] = g
        if two_d:
            rep[:, 0, :, -1] = 0.0
        return rep

    boon = pg.BOON(op, **walls, kernel_correction=False, input_walls=True)
    out = boon(u)
    assert torch.equal(out, boon.enforce(op(u, input_hook=by_hand)))
    assert torch.equal(out[:, :, 0], g)
    assert torch.equal(op(u, input_hook=lambda rep: rep), op(u))
    corrected = pg.BOON(op, **walls, input_walls=True)
    first = corrected(u)
    assert torch.equal(first[:, :, 0], g)
    g[:, -1] += 1.0  # the last step's wall value, seen by every step through the operator
    second = corrected(u)
    assert not torch.allclose(first[:, 0, 1:-1], second[:, 0, 1:-1])


def test_input_walls_give_the_operator_the_output_wall_values():
    """input_walls=True is BOON applied to the input with its Dirichlet walls set to the
    output's values (Neumann and periodic walls untouched), in 1-D and 2-D."""
    torch.manual_seed(5)
    op = pg.FNO1d(1, 1, 6, 8, 2).double()
    u, g = torch.randn(3, 1, 16, dtype=D), torch.randn(3, dtype=D)
    manual = u.clone()
    manual[:, 0, 0] = g
    for correction in (True, False):
        walls = dict(left=pg.Dirichlet(g), right=pg.Neumann(1.0), kernel_correction=correction)
        out = pg.BOON(op, **walls, input_walls=True)(u)
        assert torch.equal(out, pg.BOON(op, **walls)(manual))
        assert torch.equal(out[:, 0, 0], g)
    fno = pg.FNO2d(2, 2, 4, 8, 2).double()
    u2 = torch.randn(2, 2, 9, 11, dtype=D)
    top = torch.randn(2, 2, 9, dtype=D)  # per channel and wall point
    walls = dict(left=pg.Dirichlet(0.5), right=pg.Neumann(0.0), top=pg.Dirichlet(top))
    manual = u2.clone()
    manual[..., 0, :] = 0.5
    manual[..., :, -1] = top  # the y wall's value at the corner, as in the exact output
    out = pg.BOON(fno, **walls, input_walls=True)(u2)
    assert torch.equal(out, pg.BOON(fno, **walls)(manual))
    with pytest.raises(ValueError, match="in_channels 2 != out_channels 1"):
        pg.BOON(pg.FNO1d(2, 1, 6, 8, 2), left=pg.Dirichlet(0.0), input_walls=True)
    with pytest.raises(ValueError, match="in_channels 2 != 1"):
        pg.BOON(pg.SpaceTimeFNO1d(2, 4, 6, 3, 8, 2), left=pg.Dirichlet(0.0), input_walls=True)
    with pytest.raises(TypeError, match="input_walls"):
        pg.BOON(op, left=pg.Dirichlet(0.0), input_walls=1)
