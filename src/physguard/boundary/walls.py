r"""BOON on the walls of a box: the kernel correction and the exact output in any dimension.

Used by :class:`physguard.BOON` for the dimension-generic operators (:class:`~physguard.FNO2d`,
:class:`~physguard.SpaceTimeFNO2d`): conditions on the walls ``x = a_x, b_x`` (``left``,
``right``) and ``y = a_y, b_y`` (``bottom``, ``top``), the last two grid axes.

**The kernel of a layer as a real convolution.** A kernel layer ``K v = F^-1(R . F v) + W v``
keeps the frequencies of a box lattice (signed on every axis but the last, ``0 <= k < m`` on the
``rfft`` axis). As a real linear operator it is a circular convolution whose full multiplier
``M(k)`` lives on the lattice made symmetric in the last axis: ``M(k', k_d) = R(k', k_d)`` for
``0 < k_d < N_d / 2``, ``M(-k', -k_d) = conj M(k', k_d)``, and on the self-conjugate columns
``k_d = 0`` (and ``N_d / 2``) the Hermitian part ``(R(k', 0) + conj R(-k', 0)) / 2``, which is
what ``irfftn`` does with them. ``_full_multiplier`` builds ``M`` and ``_full_spectrum`` the full
spectrum of the data on that lattice from the layer's own ``rfftn`` (no extra transform).

**One wall axis.** Let ``P`` be the wall points of axis ``a`` that carry a Dirichlet or Neumann
condition (``0`` and/or ``N_a - 1``), and ``O`` the other axes. The block of ``K`` from the wall
lines to the wall lines is a circular convolution along every axis of ``O`` (the walls are
whole lines/planes), so in the Fourier basis of ``O`` it splits into one small block per
frequency ``k_O``::

    A(k_O)[i, o; p, c] = (1 / N_a) sum_{k_a} M[c, o](k_a, k_O) e^{2 pi i k_a (i - p) / N_a}
                         + W[o, c] delta_ip,                     i, p in P,

a ``|P| C`` square matrix (all channels coupled). As in 1-D (``physguard.boundary.boon``),
BOON replaces the wall inputs by ``v_P + delta`` with ``A delta = -(K v)_P + A v_P`` (the leak of
everything off the walls into the wall rows), solved per ``k_O`` with the same relative
Tikhonov shift ``1e-7 max |A|``; ``delta`` vanishes at the frequencies ``k_O`` that no mode of
the layer reaches (there ``A = W`` and the leak is 0). Nothing is applied to impulses: ``A``
comes from the weights in closed form, the leak from the spectrum the layer computes anyway,
and the spectrum of the corrected input is a rank-``|P|`` update along ``a``, so the layer still
costs one ``rfftn``/``irfftn`` pair.

**How the two axes interact.** The x walls are eliminated first, then the y walls, each on
the field as corrected so far. After the y step the y-wall rows depend on the y-wall inputs
only: the x-wall corrections, interior to the y lines except at the four corners, are part of
what the y step eliminates. The x-wall rows then also see the y-wall corrections, through the
kernel entries between perpendicular walls; a joint elimination of both walls would couple
every frequency of one axis with every frequency of the other (no per-frequency split), so
physguard does not claim it. The correction is what improves the interior; **exactness** of the
output comes from step 2 and holds whatever the kernel.

**The exact output.** After the projection the wall values of the output are set, in this
order: periodic axes (both ends to their mean), Neumann walls (the one-sided stencil of order 2
or 3 along the wall normal, with the grid spacing of the evaluation resolution, solved for the
wall value), then Dirichlet walls (the value). At a **corner** where a Dirichlet wall meets any
other condition, the Dirichlet value wins (it is set last). Two Dirichlet walls meeting at a
corner: the y wall's value (``bottom``/``top``) is kept. Two Neumann walls: the y wall's
stencil holds at the corner (set last); the x wall's holds on every other point. A Neumann
stencil on an x wall uses the points ``u[1, j], u[2, j] (, u[3, j])``; of those only ``j = 0``
and ``j = N_y - 1`` lie on a y wall, so away from the corners every condition holds to
round-off.
"""

from __future__ import annotations

import math

import torch

from ..models.fno_nd import channel_mix
from .conditions import Dirichlet, Neumann, Periodic, broadcast_to_boundary, one_sided_stencil

__all__ = ["WallCorrection", "enforce_walls", "periodic_walls"]

_SHIFT = 1e-7


def _self_conjugate(k: torch.Tensor, n: int) -> torch.Tensor:
    """Mask of the last-axis frequencies ``0`` and ``N / 2`` (their own conjugates)."""
    return (k == 0) | (2 * k == n)


def _negated(kept: torch.Tensor) -> torch.Tensor:
    """For a signed frequency list symmetric about 0, the index of ``-k`` for each entry."""
    values = kept.tolist()
    position = {k: i for i, k in enumerate(values)}
    return torch.tensor([position[-k] for k in values])


def _full_last_axis(kept_last: torch.Tensor, n: int):
    """Signed last-axis frequencies of the symmetric lattice, and for each the source index
    in the ``rfft`` list and whether it is a conjugate (negative) copy."""
    positive = kept_last.tolist()
    negative = [k for k in positive if k > 0 and 2 * k != n]
    signed = torch.tensor(positive + [-k for k in reversed(negative)])
    source = torch.tensor(list(range(len(positive)))
                          + [positive.index(k) for k in reversed(negative)])
    conj = torch.tensor([False] * len(positive) + [True] * len(negative))
    return signed, source, conj


def _full_spectrum(a: torch.Tensor, kept: list[torch.Tensor], n_last: int,
                   hermitian_part: bool) -> torch.Tensor:
    """Extend a kept ``rfftn`` array ``(X, Y, *kept)`` to the lattice symmetric in the last
    axis (conjugate copies at ``(-k', -k_d)``). ``hermitian_part``: replace the self-conjugate
    columns by ``(a(k') + conj a(-k')) / 2`` (for the multiplier; data are already so)."""
    d = len(kept)
    _, source, conj = _full_last_axis(kept[-1], n_last)
    n_pos = len(kept[-1])
    negative = source[conj].to(a.device)  # last-axis columns that get a conjugate copy
    selfc = torch.nonzero(_self_conjugate(kept[-1], n_last)).flatten().to(a.device)
    needed = torch.cat([negative, selfc]) if hermitian_part else negative
    flipped = a.index_select(1 + d, needed)  # only the columns that are mirrored
    for axis, k in enumerate(kept[:-1]):  # a(-k', .)
        flipped = flipped.index_select(2 + axis, _negated(k).to(a.device))
    head = a
    if hermitian_part and len(selfc):
        head = a.clone()
        head[..., selfc] = 0.5 * (a[..., selfc] + flipped[..., len(negative):].conj())
    return torch.cat([head, flipped[..., :len(negative)].conj()], dim=-1) if len(negative) \
        else head[..., :n_pos]


def _signed_full(kept: list[torch.Tensor], n_last: int) -> list[torch.Tensor]:
    return [*kept[:-1], _full_last_axis(kept[-1], n_last)[0]]


class WallCorrection:
    """The kernel correction of one forward pass for the walls ``walls = [(axis, points)]``.

    ``axis`` counts the grid axes (``0`` the first after the channels); ``points`` are ``0``
    and/or ``N - 1``. Called by every :class:`~physguard.models.fno_nd.FourierLayerNd` as
    ``correction(layer, v, x_hat, weight, z, kept)``; returns the input change ``delta`` (a
    field, zero off the walls) and the corrected kept spectrum.
    """

    def __init__(self, walls: list[tuple[int, list[int]]]):
        self.walls = [(axis, points) for axis, points in walls if points]

    def __call__(self, layer, v, x_hat, weight, z, kept):
        grid = tuple(v.shape[2:])
        d = len(grid)
        n_pos = len(kept[-1])
        signed = _signed_full(kept, grid[-1])
        M = _full_spectrum(weight, kept, grid[-1], hermitian_part=True)  # (Ci, Co, *L)
        # The spectral output of v on the symmetric lattice is the Hermitian extension of the
        # layer's own z = R . X (no second channel contraction).
        Z = _full_spectrum(z, kept, grid[-1], hermitian_part=True)  # (B, Co, *L)
        w_point = layer.pointwise.weight  # (Co, Ci)
        c_in, c_out = M.shape[0], M.shape[1]
        deltas = []  # (axis, points, lines): each axis's change on its wall lines
        for number, (axis, points) in enumerate(self.walls):
            n_a, n_p = grid[axis], len(points)
            others = [b for b in range(d) if b != axis]
            k_a = signed[axis].to(v.device, v.dtype)
            pts = torch.tensor(points, dtype=v.dtype, device=v.device)
            E = torch.polar(torch.ones(n_p, len(k_a), dtype=v.dtype, device=v.device),
                            2 * math.pi * torch.outer(pts, k_a) / n_a)  # (|P|, L_a)
            # A(k_O)[i, o; p, c] = (1/N_a) sum_k M[c, o](k, k_O) E[i, k] conj(E[p, k]): one
            # matrix product over k for all (c, o, k_O) at once.
            Ma = M.movedim(2 + axis, 2)  # (Ci, Co, L_a, *L_O)
            shape_o = Ma.shape[3:]
            pair = (E[:, None, :] * E.conj()[None, :, :]).reshape(n_p * n_p, -1).T / n_a
            A_spec = Ma.reshape(c_in * c_out, len(k_a), -1).transpose(1, 2) @ pair
            A_spec = A_spec.reshape(c_in, c_out, -1, n_p, n_p).permute(2, 3, 1, 4, 0)
            eye = torch.eye(n_p, dtype=v.dtype, device=v.device)
            point = (eye[:, None, :, None] * w_point[None, :, None, :]).to(A_spec.dtype)
            A = (A_spec + point).reshape(-1, n_p * c_out, n_p * c_in)
            scale = A.abs().amax().detach()
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            A = A + _SHIFT * scale * torch.eye(n_p * c_in, dtype=A.dtype, device=v.device)
            # Spectral output on the wall lines, and the part of it due to the wall inputs.
            Za = Z.movedim(2 + axis, -1).reshape(Z.shape[0], c_out, -1, len(k_a))
            y_p = (Za @ (E.T / n_a)).permute(0, 2, 3, 1)  # (B, L_O, |P|, Co)
            v_p = self._wall_spectrum(self._lines(v, axis, points, deltas), axis, others,
                                      signed, grid)
            # The batch as the columns of one right-hand side per k_O: one factorisation each.
            batch = v.shape[0]
            v_p = v_p.reshape(batch, -1, n_p * c_in).permute(1, 2, 0)  # (L_O, |P| C, B)
            a_v = torch.bmm(A_spec.reshape(-1, n_p * c_out, n_p * c_in), v_p)
            y_p = y_p.reshape(batch, -1, n_p * c_out).permute(1, 2, 0)
            try:
                dhat = torch.linalg.solve(A, a_v - y_p)  # (L_O, |P| C, B)
            except torch.linalg.LinAlgError as err:
                raise ValueError("a wall block of a kernel layer is singular even after the "
                                 f"relative shift {_SHIFT:g}: {err}") from err
            dhat = dhat.permute(2, 0, 1).reshape(batch, *shape_o, n_p, c_in)  # (B, *L_O, P, C)
            deltas.append((axis, points, self._place(dhat, axis, points, others, signed,
                                                     grid, v)))
            # Its spectrum sum_p e^{-2 pi i k_a p / N_a} dhat_p(k_O), in lattice order, and the
            # kernel's response to it on the kept (rfft) lattice.
            spec = dhat.movedim(-1, 1) @ E.conj()  # (B, C, *L_O, L_a)
            spec = spec.movedim(-1, 2 + axis)
            response = channel_mix(spec[..., :n_pos], weight)
            z = z + response
            if number + 1 < len(self.walls):
                Z = Z + _full_spectrum(response, kept, grid[-1], hermitian_part=True)
        return self._dense(v, deltas), z

    @staticmethod
    def _lines(v, axis, points, deltas):
        """``v`` plus the earlier axes' changes on the wall lines of ``axis`` (they meet these
        lines at the corners): ``(B, C, ...)`` with ``|P|`` entries along ``axis``."""
        index = torch.tensor(points, device=v.device)
        lines = v.index_select(2 + axis, index)
        for other_axis, other_points, other in deltas:
            # ``other`` holds the other axis's lines; take them at this axis's points.
            part = other.index_select(2 + axis, index)
            lines = lines.index_add(2 + other_axis,
                                    torch.tensor(other_points, device=v.device), part)
        return lines

    @staticmethod
    def _wall_spectrum(lines, axis, others, signed, grid):
        """Full DFT over the other axes of the wall lines, at the lattice frequencies:
        ``(B, *L_O, |P|, C)``."""
        spec = torch.fft.fftn(lines, dim=[2 + b for b in others])
        for b in others:
            index = (signed[b] % grid[b]).to(lines.device)
            spec = spec.index_select(2 + b, index)
        return spec.movedim(2 + axis, -1).movedim(1, -1)  # (B, *L_O, |P|, C)

    @staticmethod
    def _place(dhat, axis, points, others, signed, grid, like):
        """The real change on the wall lines, ``ifft`` of ``dhat``: ``(B, C, ...)`` with
        ``|P|`` entries along ``axis``."""
        b = dhat.shape[0]
        c = dhat.shape[-1]
        shape_o = [grid[o] for o in others]
        spec = torch.zeros(b, c, len(points), *shape_o, dtype=dhat.dtype, device=dhat.device)
        index = torch.meshgrid(*[(signed[o] % grid[o]).to(dhat.device) for o in others],
                               indexing="ij")
        spec[(slice(None), slice(None), slice(None), *index)] = dhat.movedim(-1, 1).movedim(
            -1, 2)
        lines = torch.fft.ifftn(spec, dim=list(range(3, 3 + len(others)))).real.to(like.dtype)
        return lines.movedim(2, 2 + axis)  # wall axis back in place

    @staticmethod
    def _dense(v, deltas):
        """The input change as a field (zero off the walls), built with one pad per axis."""
        total = None
        for axis, points, lines in deltas:
            n = v.shape[2 + axis]
            parts = []
            previous = -1
            for k, p in enumerate(points):
                gap = p - previous - 1
                if gap:
                    shape = list(lines.shape)
                    shape[2 + axis] = gap
                    parts.append(lines.new_zeros(shape))
                parts.append(lines.narrow(2 + axis, k, 1))
                previous = p
            if n - 1 - previous:
                shape = list(lines.shape)
                shape[2 + axis] = n - 1 - previous
                parts.append(lines.new_zeros(shape))
            field = torch.cat(parts, dim=2 + axis)
            total = field if total is None else total + field
        return total if total is not None else torch.zeros_like(v)


def periodic_walls(v: torch.Tensor, axes: list[int]) -> torch.Tensor:
    """Set both ends of each tensor dim in ``axes`` to their mean (``u_0 = u_{N-1}``)."""
    for dim in axes:
        first = v.select(dim, 0)
        last = v.select(dim, -1)
        mean = 0.5 * (first + last)
        v = v.clone()
        v.select(dim, 0).copy_(mean)
        v.select(dim, -1).copy_(mean)
    return v


def enforce_walls(out: torch.Tensor, conditions: dict, domain) -> torch.Tensor:
    """Set the wall values of ``out (B, C, *, Nx, Ny)`` so every condition holds (see module).

    ``conditions`` maps ``"left"``, ``"right"``, ``"bottom"``, ``"top"`` to a condition or
    ``None``; ``domain = ((ax, bx), (ay, by))`` gives the grid spacings.
    """
    nx, ny = out.shape[-2], out.shape[-1]
    h = ((domain[0][1] - domain[0][0]) / (nx - 1), (domain[1][1] - domain[1][0]) / (ny - 1))
    walls = {"left": (-2, 0, 1), "right": (-2, -1, -1), "bottom": (-1, 0, 1),
             "top": (-1, -1, -1)}  # dim, index, inward sign
    periodic = [dim for dim, (lo, hi) in ((-2, ("left", "right")), (-1, ("bottom", "top")))
                if isinstance(conditions[lo], Periodic)]
    out = periodic_walls(out, periodic) if periodic else out.clone()
    for name in ("left", "right", "bottom", "top"):
        bc = conditions[name]
        if not isinstance(bc, Neumann):
            continue
        dim, index, sign = walls[name]
        n = out.shape[dim]
        coeffs = one_sided_stencil(bc.order)
        if n < len(coeffs) + 1:
            raise ValueError(f"a Neumann stencil of order {bc.order} needs >= "
                             f"{len(coeffs) + 1} points along the {name} wall's normal, got {n}")
        step = h[0] if dim == -2 else h[1]
        rows = [i if sign > 0 else n - 1 - i for i in range(len(coeffs))]
        flux = broadcast_to_boundary(bc.flux, out.select(dim, rows[0]))
        rest = sum(ci * out.select(dim, i) for ci, i in zip(coeffs[1:], rows[1:], strict=True))
        out.select(dim, rows[0]).copy_((sign * flux * step - rest) / coeffs[0])
    for name in ("left", "right", "bottom", "top"):
        bc = conditions[name]
        if isinstance(bc, Dirichlet):
            dim, index, _ = walls[name]
            wall = out.select(dim, index)
            wall.copy_(broadcast_to_boundary(bc.value, wall))
    return out
