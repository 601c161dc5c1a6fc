r"""BOON on the walls of a box: the kernel correction and the exact output in any dimension.

Used by :class:`physguard.BOON` for the dimension-generic operators (:class:`~physguard.FNO2d`,
:class:`~physguard.SpaceTimeFNO2d`): conditions on the walls ``x = a_x, b_x`` (``left``,
``right``) and ``y = a_y, b_y`` (``bottom``, ``top``), the last two grid axes; and for
neuraloperator's FNO in 1-D and 2-D (:mod:`physguard.boundary.neuralop_fno`), where one grid
axis means one real block (no other axes to split over).

**The kernel of a layer as a real convolution.** A kernel layer ``K v = F^-1(R . F v) + W v``
keeps the frequencies of a box lattice (signed on every axis but the last, ``0 <= k < m`` on the
``rfft`` axis). As a real linear operator it is a circular convolution whose full multiplier
``M(k)`` lives on the lattice made symmetric in the last axis: ``M(k', k_d) = R(k', k_d)`` for
``0 < k_d < N_d / 2``, ``M(-k', -k_d) = conj M(k', k_d)``, and on the self-conjugate columns
``k_d = 0`` (and ``N_d / 2``) the Hermitian part ``(R(k', 0) + conj R(-k', 0)) / 2``, which is
what ``irfftn`` does with them. ``M`` is never formed: every sum over it below is taken on the
kept lattice, with the other half added as a conjugate.

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
Tikhonov shift ``1e-7`` (of the largest real or imaginary entry of ``A``); ``delta`` vanishes
at the frequencies ``k_O`` that no mode of the layer reaches (there ``A = W`` and the leak is 0).
``A`` and the leak ``(K v)_P`` are one contraction over ``k_a`` each, of the layer's kept weight
and of the spectrum ``R . F v`` it computes anyway. Since ``A(-k_O) = conj A(k_O)`` and the data
are real, only half of the ``k_O`` are solved (``k_d >= 0`` when the rfft axis is among ``O``,
else the first axis of ``O`` ``>= 0``); the change on the wall lines is the inverse DFT of that
half. Nothing is applied to impulses, the spectrum of the corrected input is a rank-``|P|``
update along ``a`` (one more channel product gives the layer's response to it), and the
pointwise branch adds ``W delta`` on the wall lines only, so the layer still costs one
``rfftn``/``irfftn`` pair.

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

import functools
import math

import torch

from ..conditions import Dirichlet, Neumann, Periodic, broadcast_to_boundary, one_sided_stencil
from ..models.fno_nd import lattice_matmul, lattice_mix
from ._block import block_cache, shifted, solve, solve_operator

__all__ = ["WALL_INDEX", "WallCorrection", "enforce_walls", "periodic_walls"]

#: Each wall of a field ``(..., Nx, Ny)``: its tensor dim, its index along that dim and the
#: inward sign (the direction of its Neumann stencil).
WALL_INDEX = {"left": (-2, 0, 1), "right": (-2, -1, -1), "bottom": (-1, 0, 1),
              "top": (-1, -1, -1)}

def _self_conjugate(k: torch.Tensor, n: int) -> torch.Tensor:
    """Mask of the last-axis frequencies ``0`` and ``N / 2`` (their own conjugates)."""
    return (k == 0) | (2 * k == n)


def _negated(kept: torch.Tensor) -> torch.Tensor:
    """For a signed frequency list symmetric about 0, the index of ``-k`` for each entry."""
    values = kept.tolist()
    position = {k: i for i, k in enumerate(values)}
    return torch.tensor([position[-k] for k in values])


def _flip(a: torch.Tensor, dims: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
    """``a`` at ``-k`` on each ``(dim, signed frequencies)`` of ``dims``."""
    for dim, k in dims:
        a = a.index_select(dim, _negated(k).to(a.device))
    return a


def _hermitian_half(a: torch.Tensor, kept: list[torch.Tensor], dims: list[int],
                    half: int) -> torch.Tensor:
    """``a(k) + conj a(-k)`` over the signed lattice dims ``dims`` of ``a`` (frequencies
    ``kept[b]`` on dim ``b``), for ``k[dims[0]] >= 0`` only (its first ``half`` entries)."""
    first, rest = dims[0], [(b, kept[b]) for b in dims[1:]]
    negative = _negated(kept[first])[:half].to(a.device)
    return a.narrow(first, 0, half) + _flip(a.index_select(first, negative), rest).conj()


def _hermitian_columns(a: torch.Tensor, kept: list[torch.Tensor], dims: list[int],
                       dim: int, columns: torch.Tensor) -> torch.Tensor:
    """Replace ``columns`` of ``dim`` by ``(a(k) + conj a(-k)) / 2``, ``-k`` over ``dims``."""
    if not len(columns):
        return a
    part = a.index_select(dim, columns)
    part = 0.5 * (part + _flip(part, [(b, kept[b]) for b in dims]).conj())
    return a.index_copy(dim, columns, part)


def _along(t: torch.Tensor, matrix: torch.Tensor, dim: int) -> torch.Tensor:
    """Apply ``matrix (Q, K)`` along ``dim`` of ``t`` (size ``K`` there, ``Q`` after)."""
    shape = t.shape
    pre = math.prod(shape[:dim])
    rows = t.reshape(pre, shape[dim], -1)
    out = lattice_matmul(matrix.expand(pre, *matrix.shape), rows)
    return out.reshape(*shape[:dim], matrix.shape[0], *shape[dim + 1:])


@functools.lru_cache(maxsize=256)
def _phases(n_a: int, points: tuple[int, ...], k_a: tuple[int, ...], rfft_axis: bool,
            dtype: torch.dtype, device: torch.device):
    """Constants of one wall axis: ``E[p, k] = e^{2 pi i k p / N_a} (P, K_a)``, the pair
    phases ``E[i, k] conj E[p, k] / N_a (P P, K_a)`` and ``E / N_a`` for the leak; on the
    ``rfft`` axis the last two weigh the self-conjugate columns by 1/2 (the kept half stands
    for both signs)."""
    k = torch.tensor(k_a, dtype=dtype, device=device)
    pts = torch.tensor(points, dtype=dtype, device=device)
    E = torch.polar(torch.ones(len(points), len(k_a), dtype=dtype, device=device),
                    2 * math.pi * torch.outer(pts, k) / n_a)
    pair = (E[:, None, :] * E.conj()[None, :, :]).reshape(len(points) ** 2, -1) / n_a
    leak = E / n_a
    if rfft_axis:
        half = torch.where(_self_conjugate(k, n_a), 0.5, 1.0).to(dtype)
        pair, leak = pair * half, leak * half
    return E, pair, leak


@functools.lru_cache(maxsize=64)
def _line_index(grid: tuple[int, ...], walls: tuple[tuple[int, tuple[int, ...]], ...]):
    """Flat grid indices of every wall's lines (walls in order) and each wall's line shape."""
    flat = torch.arange(math.prod(grid)).reshape(grid)
    parts, shapes = [], []
    for axis, points in walls:
        part = flat.index_select(axis, torch.tensor(points))
        parts.append(part.flatten())
        shapes.append(tuple(part.shape))
    return torch.cat(parts), shapes


class WallCorrection:
    """The kernel correction of one forward pass for the walls ``walls = [(axis, points)]``.

    ``axis`` counts the grid axes (``0`` the first after the channels); ``points`` are ``0``
    and/or ``N - 1``. Called by every :class:`~physguard.models.fno_nd.FourierLayerNd` as
    ``correction(layer, v, weight, z, kept)`` with the layer's kept weight ``(*K, C, C)`` and
    spectrum ``z (*K, B, C)`` (lattice-major); returns ``(changes, z~)``: the input change as
    ``changes = [(axis, points, lines)]``, ``lines (B, C, ...)`` with ``|P|`` entries along
    ``axis`` (the change is zero off the wall lines), and the kept spectrum
    ``z~ = R . F(v + change)``. :meth:`dense` turns ``changes`` into a field.
    """

    def __init__(self, walls: list[tuple[int, list[int]]], damping: float = 0.0):
        self.walls = [(axis, points) for axis, points in walls if points]
        self.damping = damping

    def _wall_lines(self, v: torch.Tensor) -> list[torch.Tensor]:
        """The input on every wall's lines, one gather for all walls (one backward scatter
        instead of one per axis): ``(B, C, ...)`` with ``|P|`` entries along each axis."""
        grid = tuple(v.shape[2:])
        index, shapes = _line_index(grid, tuple((a, tuple(p)) for a, p in self.walls))
        flat = v.reshape(*v.shape[:2], -1).index_select(2, index.to(v.device))
        return [part.reshape(*v.shape[:2], *shape)
                for part, shape in zip(flat.split([math.prod(s) for s in shapes], dim=2),
                                       shapes, strict=True)]

    def __call__(self, layer, v, weight, z, kept):
        return self.correct(layer.pointwise.weight, v, weight, z, kept, owner=layer)

    def _block(self, weight, w_point, axis, points, others, kept, grid, pair, like):
        """``(A_spec, A)``: the spectral part and the shifted wall block of ``axis``, one
        ``(|P| C_out, |P| C_in)`` block per kept frequency of the other axes (weights only)."""
        d, n_p = len(grid), len(points)
        c_in, c_out = weight.shape[-2], weight.shape[-1]
        A_spec = _along(weight, pair, axis)  # (*K_<a, P P, *K_>a, Ci, Co)
        A_spec = self._halves(A_spec, axis, others, kept, grid)
        A_spec = A_spec.reshape(*A_spec.shape[:axis], n_p, n_p, *A_spec.shape[axis + 1:])
        lat = [b if b < axis else b + 1 for b in others]
        A_spec = A_spec.permute(*lat, axis, d + 2, axis + 1, d + 1).reshape(
            -1, n_p * c_out, n_p * c_in)
        point = torch.kron(torch.eye(n_p, dtype=like.dtype, device=like.device), w_point)
        A = A_spec + point.to(A_spec.dtype)  # W on the diagonal blocks (i = p)
        # Relative shift on the largest real or imaginary entry (a cheap real reduction).
        return A_spec, shifted(A, torch.view_as_real(A).abs().amax())

    @staticmethod
    def _halves(t, axis, others, kept, grid):
        """The part of a lattice-major tensor the solve needs: 1-D, the kept half plus its
        conjugate; the last axis, ``k_O[0] >= 0`` only (``A(-k_O) = conj A(k_O)``, real data);
        else the Hermitian part of the rfft axis's self-conjugate columns."""
        last = len(grid) - 1
        signed = [b for b in others if b != last]
        if not others:
            return t + t.conj()
        if axis == last:
            return _hermitian_half(t, kept, signed, int((kept[others[0]] >= 0).sum()))
        columns = torch.nonzero(_self_conjugate(kept[last], grid[last])).flatten()
        return _hermitian_columns(t, kept, signed, last, columns.to(t.device))

    def correct(self, w_point, v, weight, z, kept, owner=None):
        """The correction of a layer whose pointwise branch is ``w_point (C_out, C_in)``
        (see the class; ``__call__`` reads it from a physguard layer). Works for one grid
        axis too (a 1-D layer: one real block, no other axes). ``owner``: the module whose
        parameters determine ``weight`` and ``w_point``; in evaluation (no autograd) its wall
        blocks and their solve operators are kept between calls (a rollout's steps)."""
        grid = tuple(v.shape[2:])
        d = len(grid)
        last = d - 1
        c_in, c_out = weight.shape[-2], weight.shape[-1]
        batch = v.shape[0]
        changes = []  # (axis, points, lines): each axis's change on its wall lines
        lines = self._wall_lines(v)
        for axis, points in self.walls:
            n_a, n_p = grid[axis], len(points)
            others = [b for b in range(d) if b != axis]
            E, pair, E_leak = _phases(n_a, tuple(points), tuple(kept[axis].tolist()),
                                      axis == last, v.dtype, v.device)
            # A(k_O)[i, o; p, c] (the (i, p) pairs in place of k_a) and the spectral output on
            # the wall lines: one contraction over k_a each, on the kept lattice of the others;
            # lattice dims of the others first, then (P_i, Co, P_p, Ci): one block per k_O.
            shape_o = [len(kept[b]) for b in others]
            if others and axis == last:
                shape_o[0] = int((kept[others[0]] >= 0).sum())
            n_o = len(shape_o)
            cache = None if owner is None else block_cache(
                owner, (axis, tuple(points), grid, tuple(tuple(k.tolist()) for k in kept),
                        self.damping, v.dtype, v.device))
            if cache is not None and cache[1] in cache[0]:
                A_spec, M = cache[0][cache[1]]
            else:
                A_spec, A = self._block(weight, w_point, axis, points, others, kept, grid,
                                        pair, v)
                if cache is not None:  # evaluation: the solve operator, once per weights
                    M = solve_operator(A, self.damping)
                    cache[0][cache[1]] = A_spec, M
            leak = self._halves(_along(z, E_leak, axis), axis, others, kept, grid)
            leak = leak.permute(*others, axis, d + 1, d).reshape(-1, n_p * c_out, batch)
            # Right-hand side A_spec v_P - (spectral output)_P, the batch as its columns.
            v_p = self._wall_spectrum(self._lines(lines[len(changes)], axis, points, changes),
                                      axis, others, kept, grid)  # (B, C, *K_O, P)
            if axis == last and others:
                v_p = v_p.narrow(2, 0, shape_o[0])
            v_p = v_p.permute(*range(2, 2 + n_o), -1, 1, 0).reshape(-1, n_p * c_in, batch)
            rhs = lattice_matmul(A_spec, v_p) - leak
            dhat = solve(A, rhs, self.damping) if cache is None else M @ rhs
            dhat = dhat.reshape(*shape_o, n_p, c_in, batch)
            if axis == last and others:  # the other half, dhat(-k_O) = conj dhat(k_O)
                negative = _negated(kept[others[0]])[shape_o[0]:].to(v.device)
                rest = [(i, kept[b]) for i, b in enumerate(others) if i > 0]
                dhat = torch.cat([dhat, _flip(dhat, rest).index_select(0, negative).conj()])
            changes.append((axis, points, self._place(dhat, axis, others, kept, grid, v)))
            # The spectrum of the change, sum_p e^{-2 pi i k_a p / N_a} dhat_p(k_O), and the
            # kernel's response to it (lattice-major, k_a back in place of p).
            spec = dhat.movedim(n_o, axis).transpose(-1, -2)  # (*K_<a, P, *K_>a, B, C)
            z = z + lattice_mix(_along(spec, E.conj().T, axis), weight)
        return changes, z

    @staticmethod
    def _lines(lines, axis, points, changes):
        """The wall ``lines`` of ``axis`` plus the earlier axes' changes (they meet these
        lines at the corners): ``(B, C, ...)`` with ``|P|`` entries along ``axis``."""
        index = torch.tensor(points, device=lines.device)
        for other_axis, other_points, other in changes:
            # ``other`` holds the other axis's lines; take them at this axis's points.
            part = other.index_select(2 + axis, index)
            lines = lines.index_add(2 + other_axis,
                                    torch.tensor(other_points, device=lines.device), part)
        return lines

    @staticmethod
    def _wall_spectrum(lines, axis, others, kept, grid):
        """DFT over the other axes of the wall lines at the kept frequencies (``rfft`` on the
        last axis when it is among them): ``(B, C, *K_O, |P|)``."""
        dims = [2 + b for b in others]
        if axis == len(grid) - 1:
            spec = torch.fft.fftn(lines, dim=dims)
        else:
            spec = torch.fft.rfftn(lines, dim=dims)
        for b in others:
            spec = spec.index_select(2 + b, (kept[b] % grid[b]).to(lines.device))
        return spec.movedim(2 + axis, -1)

    @staticmethod
    def _place(dhat, axis, others, kept, grid, like):
        """The real change on the wall lines, the inverse DFT of ``dhat (*K_O, |P|, C, B)``:
        ``(B, C, ...)`` with ``|P|`` entries along ``axis``."""
        rfft = axis != len(grid) - 1
        n_o = len(others)
        size = [grid[b] for b in others]
        if rfft:
            size[-1] = size[-1] // 2 + 1
        n_p, c, batch = dhat.shape[n_o:]
        if not n_o:  # 1-D: the block is real, dhat is the change itself
            return dhat.real.permute(2, 1, 0).to(like.dtype)
        spec = dhat.new_zeros(batch, c, *size, n_p)
        index = torch.meshgrid(*[(kept[b] % grid[b]).to(dhat.device) for b in others],
                               indexing="ij")
        spec[(slice(None), slice(None), *index)] = dhat.permute(-1, -2, *range(n_o), n_o)
        dims = list(range(2, 2 + n_o))
        if rfft:
            lines = torch.fft.irfftn(spec, s=[grid[b] for b in others], dim=dims)
        else:
            lines = torch.fft.ifftn(spec, dim=dims).real
        return lines.to(like.dtype).movedim(-1, 2 + axis)

    @staticmethod
    def dense(v: torch.Tensor, changes) -> torch.Tensor:
        """The input change ``changes`` (as returned by a call) as a field shaped like ``v``,
        zero off the walls."""
        total = torch.zeros_like(v)
        for axis, points, lines in changes:
            total = total.index_add(2 + axis, torch.tensor(points, device=v.device), lines)
        return total


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
    periodic = [dim for dim, (lo, hi) in ((-2, ("left", "right")), (-1, ("bottom", "top")))
                if isinstance(conditions[lo], Periodic)]
    out = periodic_walls(out, periodic) if periodic else out.clone()
    for name in ("left", "right", "bottom", "top"):
        bc = conditions[name]
        if not isinstance(bc, Neumann):
            continue
        dim, index, sign = WALL_INDEX[name]
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
            dim, index, _ = WALL_INDEX[name]
            wall = out.select(dim, index)
            wall.copy_(broadcast_to_boundary(bc.value, wall))
    return out
