"""Fourier neural operators in any number of dimensions (Li et al., ICLR 2021, arXiv 2010.08895).

One spectral convolution (:class:`SpectralConvNd`) and one operator (:class:`FNO`) take the
number of dimensions from ``modes``, as neuraloperator's ``SpectralConv`` does; the public
2-D operators are thin entry points:

* :class:`FNO2d`: ``(B, C_in, Nx, Ny) -> (B, C_out, Nx, Ny)`` on a uniform grid of a rectangle;
* :class:`SpaceTimeFNO2d`: ``u(x, y, 0) (B, C_in, Nx, Ny) -> the next T snapshots
  (B, T, Nx, Ny)``, a 3-D operator over ``(t, x, y)`` whose time axis is zero-padded by
  ``time_padding`` steps (the kernel is a circular convolution; padding keeps the end of the
  time window from wrapping onto its start, as BOON's authors and neuraloperator do).

Layout inside: ``(batch, channels, *grid)``; the last grid axis is the ``rfft`` axis. Each
kernel layer is ``v -> act(F^-1(R . F v) + W v + b)`` with the lowest modes kept: on every axis
but the last the frequencies ``|k| < m`` (both signs), on the last ``0 <= k < m``. The layers
expose a ``correction`` hook so that :class:`physguard.BOON` can correct their wall rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_count
from .fno import check_operator_input, time_pad_split

__all__ = ["SpectralConvNd", "FourierLayerNd", "FNO", "FNO2d", "SpaceTimeFNO2d"]


def _modes(modes, n_dims: int) -> tuple[int, ...]:
    if isinstance(modes, int):
        modes = (modes,) * n_dims
    modes = tuple(int(m) for m in modes)
    if len(modes) != n_dims or any(m < 1 for m in modes):
        raise ValueError(f"modes must be an int or {n_dims} ints >= 1, got {modes}")
    return modes


def _intervals(name: str, value, n_dims: int) -> tuple[tuple[float, float], ...]:
    try:
        pairs = tuple((float(a), float(b)) for a, b in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be {n_dims} intervals ((a, b), ...), got {value!r}") \
            from err
    if len(pairs) != n_dims or not all(math.isfinite(a) and math.isfinite(b) and b > a
                                       for a, b in pairs):
        raise ValueError(f"{name} must be {n_dims} finite intervals (a, b) with b > a, got "
                         f"{value}")
    return pairs


class _LatticeMatmul(torch.autograd.Function):
    """``bmm`` over lattice points with a backward that uses materialised conjugates: torch's
    own complex ``bmm`` backward falls back to one small product per batch entry on CPU
    (about 7x slower for an FNO layer's mode lattice)."""

    @staticmethod
    def forward(ctx, x, w):  # x (L, B, C), w (L, C, O), contiguous
        ctx.save_for_backward(x, w)
        return torch.bmm(x, w)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad, w.transpose(1, 2).conj_physical().contiguous())
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(x.transpose(1, 2).conj_physical().contiguous(), grad)
        return grad_x, grad_w


def lattice_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for complex tensors with the fast backward of :class:`_LatticeMatmul`:
    ``a (..., K) @ b (K, P) -> (..., P)`` (all leading dims as rows of one product), or the
    batched ``a (L, M, K) @ b (L, K, P) -> (L, M, P)``."""
    if b.dim() == 2:
        rows = a.reshape(1, -1, a.shape[-1]).contiguous()
        out = _LatticeMatmul.apply(rows, b.unsqueeze(0).contiguous())
        return out.reshape(*a.shape[:-1], b.shape[-1])
    return _LatticeMatmul.apply(a.contiguous(), b.contiguous())


def lattice_mix(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``z[k, b, o] = sum_c x[k, b, c] weight[k, c, o]`` over a lattice of modes ``k``, all
    lattice-major: ``x (*L, B, C_in)``, ``weight (*L, C_in, C_out)`` -> ``(*L, B, C_out)``.
    One batched matrix product over the lattice points (faster than ``einsum`` on complex
    tensors, forward and backward)."""
    *lattice, b, c = x.shape
    out = lattice_matmul(x.reshape(-1, b, c), weight.reshape(-1, c, weight.shape[-1]))
    return out.reshape(*lattice, b, weight.shape[-1])


class SpectralConvNd(nn.Module):
    """``x -> irfftn(R . rfftn(x)[kept])`` over the last ``d = len(modes)`` axes.

    Args:
        in_channels, out_channels: channel counts.
        modes: ``(m_1, ..., m_d)``: frequencies ``|k_a| < m_a`` are kept on the axes before
            the last (``2 m_a - 1`` of them), ``0 <= k_d < m_d`` on the last. On a coarse grid
            they are clipped to what the grid holds (never both ``+-N/2``).

    Shapes: ``(B, in_channels, N_1, ..., N_d) -> (B, out_channels, N_1, ..., N_d)``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: tuple[int, ...]):
        super().__init__()
        self.modes = tuple(modes)
        scale = 1.0 / (in_channels * out_channels)
        shape = [2 * m - 1 for m in self.modes[:-1]] + [self.modes[-1]]
        # Real pairs, so that module.to(dtype) keeps the imaginary part.
        self.weight = nn.Parameter(scale * torch.randn(in_channels, out_channels, *shape, 2))

    def kept(self, grid: tuple[int, ...]) -> list[torch.Tensor]:
        """Signed kept frequencies per axis (FFT order for the full axes, ``0..m-1`` last)."""
        out = []
        for a, (m, n) in enumerate(zip(self.modes, grid, strict=True)):
            if a < len(grid) - 1:
                m = min(m, (n + 1) // 2)
                out.append(torch.cat([torch.arange(m), torch.arange(-(m - 1), 0)]))
            else:
                out.append(torch.arange(min(m, n // 2 + 1)))
        return out

    @staticmethod
    def positions(kept: list[torch.Tensor], grid: tuple[int, ...]) -> list[torch.Tensor]:
        """Indices of the kept frequencies in an ``rfftn`` array of ``grid``."""
        return [k % n for k, n in zip(kept, grid, strict=True)]

    def weight_lattice(self, like: torch.Tensor, kept: list[torch.Tensor]) -> torch.Tensor:
        """Complex weight at the kept modes, lattice-major ``(*len(kept), C_in, C_out)``
        (contiguous), in the complex dtype of ``like``."""
        d = len(kept)
        w = torch.view_as_complex(self.weight.to(like.real.dtype).contiguous())
        w = w.permute(*range(2, 2 + d), 0, 1)
        for a, k in enumerate(kept):
            size = w.shape[a]
            w = w.index_select(a, torch.where(k >= 0, k, size + k).to(w.device))
        return w.contiguous()

    @staticmethod
    def spectrum(x: torch.Tensor, positions: list[torch.Tensor]) -> torch.Tensor:
        """The kept entries of ``rfftn(x)`` for ``x (B, C, *grid)``, lattice-major
        ``(*kept, B, C)``."""
        d = len(positions)
        x_hat = torch.fft.rfftn(x, dim=tuple(range(2, 2 + d)))
        x_hat = x_hat.permute(*range(2, 2 + d), 0, 1)
        for a, index in enumerate(positions):
            x_hat = x_hat.index_select(a, index.to(x_hat.device))
        return x_hat.contiguous()

    @staticmethod
    def synthesize(z: torch.Tensor, positions: list[torch.Tensor], grid: tuple[int, ...]):
        """``irfftn`` of the kept spectrum ``z (*kept, B, C)`` placed into a zero ``rfftn``
        array of ``grid``: ``(B, C, *grid)``."""
        d = len(grid)
        shape = (*z.shape[d:], *grid[:-1], grid[-1] // 2 + 1)
        out = torch.zeros(shape, dtype=z.dtype, device=z.device)
        index = torch.meshgrid(*[p.to(z.device) for p in positions], indexing="ij")
        out[(slice(None), slice(None), *index)] = z.permute(d, d + 1, *range(d))
        return torch.fft.irfftn(out, s=grid, dim=tuple(range(2, 2 + d)))

    def kept_product(self, x: torch.Tensor):
        """``z = R . F x`` on the kept modes, lattice-major ``(*kept, B, C_out)``, with the
        kept weight ``(*kept, C_in, C_out)``, the kept frequencies and their positions."""
        grid = tuple(x.shape[2:])
        kept = self.kept(grid)
        positions = self.positions(kept, grid)
        weight = self.weight_lattice(x, kept)
        return lattice_mix(self.spectrum(x, positions), weight), weight, kept, positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _, _, positions = self.kept_product(x)
        return self.synthesize(z, positions, tuple(x.shape[2:]))


class Pointwise(nn.Module):
    """``v -> W v + b`` per grid point (a 1 x 1 convolution in any number of dimensions)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))

    def forward(self, v: torch.Tensor, bias: bool = True) -> torch.Tensor:
        out = torch.einsum("oi,bi...->bo...", self.weight, v)
        if bias:
            out = out + self.bias.reshape(-1, *([1] * (v.dim() - 2)))
        return out


class FourierLayerNd(nn.Module):
    """One kernel layer ``v -> act(F^-1(R . F v) + W v + b)`` on ``(B, width, *grid)``."""

    def __init__(self, width: int, modes: tuple[int, ...], activation: bool = True):
        super().__init__()
        self.spectral = SpectralConvNd(width, width, modes)
        self.pointwise = Pointwise(width, width)
        self.activation = activation

    def forward(self, v: torch.Tensor, correction=None) -> torch.Tensor:
        """Apply the layer; ``correction(layer, v, weight, z, kept)`` gets the kept weight
        ``(*K, C, C)`` and spectrum ``z = R . F v (*K, B, C)`` (lattice-major, see
        :class:`SpectralConvNd`) and returns ``(changes, z~)``: an input change given on wall
        lines only, ``changes = [(axis, points, lines)]`` with ``lines (B, C, ...)`` holding
        ``len(points)`` entries along grid axis ``axis``, and ``z~ = R . F(v + change)`` (see
        :mod:`physguard.boundary.walls`). The pointwise branch adds ``W lines`` on those lines
        only, so the change never becomes a full field.
        """
        z, weight, kept, positions = self.spectral.kept_product(v)
        changes = []
        if correction is not None:
            changes, z = correction(self, v, weight, z, kept)
        out = self.spectral.synthesize(z, positions, tuple(v.shape[2:]))
        out = out + self.pointwise(v)
        for axis, points, lines in changes:  # in place: no full-size copy per wall axis
            out.index_add_(2 + axis, torch.tensor(points, device=v.device),
                           self.pointwise(lines, bias=False))
        return F.gelu(out) if self.activation else out


class FNO(nn.Module):
    """Fourier neural operator on a uniform grid of a box, ``d = len(domain)`` dimensions.

    Args:
        in_channels, out_channels: fields per point in and out.
        modes: an int, or one per axis (see :class:`SpectralConvNd`).
        width, n_layers: hidden channels and number of kernel layers.
        domain: ``((a_1, b_1), ..., (a_d, b_d))``; each axis's grid includes both ends, and the
            coordinates are appended to the input as ``d`` channels.
        projection_width: hidden channels of the pointwise projection MLP (Li et al.: 128).

    Shapes: ``(B, in_channels, N_1, ..., N_d) -> (B, out_channels, N_1, ..., N_d)``, any
    ``N_a >= 2`` (discretisation invariant).

    Raises:
        ValueError: non-positive sizes, bad modes or domain; inputs of the wrong shape, empty
            or with fewer than 2 points on an axis. TypeError: a dtype other than the
            operator's (float32 / float64).
    """

    def __init__(self, in_channels: int, out_channels: int, modes, width: int, n_layers: int,
                 domain, projection_width: int = 128):
        super().__init__()
        in_channels, out_channels, width, n_layers, projection_width = (
            check_count(name, value) for name, value in (
                ("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                ("n_layers", n_layers), ("projection_width", projection_width)))
        try:
            n_dims = len(domain)
        except TypeError as err:
            raise ValueError(f"domain must be a sequence of intervals, got {domain!r}") from err
        self.domain = _intervals("domain", domain, n_dims)
        self.modes = _modes(modes, n_dims)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lift = Pointwise(in_channels + n_dims, width)
        self.layers = nn.ModuleList(FourierLayerNd(width, self.modes, i < n_layers - 1)
                                    for i in range(n_layers))
        if int(projection_width) < 1:
            raise ValueError(f"projection_width must be >= 1, got {projection_width}")
        self.project_hidden = Pointwise(width, projection_width)
        self.project_out = Pointwise(projection_width, out_channels)

    @property
    def n_dims(self) -> int:
        return len(self.domain)

    def check_input(self, u, n_grid_dims: int | None = None) -> None:
        """Raise a specific error for an input this operator cannot map (see the class)."""
        check_operator_input(self, u, self.n_dims if n_grid_dims is None else n_grid_dims)

    def coordinates(self, grid: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """``(d, *grid)``: the coordinates of every grid point."""
        axes = [torch.linspace(a, b, n, dtype=like.dtype, device=like.device)
                for (a, b), n in zip(self.domain, grid, strict=True)]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"))

    def kernel_layers(self, v: torch.Tensor, correction=None, layer_hook=None) -> torch.Tensor:
        """The kernel layers on the lifted field ``v`` (with BOON's ``correction`` and
        ``layer_hook``)."""
        for layer in self.layers:
            v = layer(v, correction)
            if layer_hook is not None:
                v = layer_hook(v)
        return v

    def project(self, v: torch.Tensor) -> torch.Tensor:
        return self.project_out(F.gelu(self.project_hidden(v)))

    def forward(self, u: torch.Tensor, correction=None, layer_hook=None) -> torch.Tensor:
        """Map ``u (B, in_channels, *grid)`` to ``(B, out_channels, *grid)``."""
        self.check_input(u)
        grid = tuple(u.shape[2:])
        coords = self.coordinates(grid, u).expand(u.shape[0], self.n_dims, *grid)
        v = self.lift(torch.cat([u, coords], dim=1))
        return self.project(self.kernel_layers(v, correction, layer_hook))


class FNO2d(FNO):
    """:class:`FNO` on a rectangle: ``(B, in_channels, Nx, Ny) -> (B, out_channels, Nx, Ny)``.

    ``modes`` is an int or ``(modes_x, modes_y)``; ``domain = ((ax, bx), (ay, by))``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes, width: int, n_layers: int,
                 domain=((0.0, 1.0), (0.0, 1.0)), projection_width: int = 128):
        super().__init__(in_channels, out_channels, modes, width, n_layers, domain,
                         projection_width)
        if self.n_dims != 2:
            raise ValueError(f"FNO2d needs a 2-D domain, got {domain}")


class SpaceTimeFNO2d(FNO):
    """``u(x, y, 0) (B, in_channels, Nx, Ny) -> (B, n_steps, Nx, Ny)``, the next ``T`` steps
    (``(B, n_steps * fields, Nx, Ny)`` for ``fields`` per step).

    A 3-D operator over ``(t, x, y)``: the input is repeated over the ``T`` output times, the
    coordinates ``(t, x, y)`` are appended, and the hidden field ``(B, width, T + pad, Nx, Ny)``
    is zero-padded by ``time_padding`` steps at the end of the time axis and cropped before the
    projection (the time axis is not periodic).

    Args:
        in_channels, n_steps: input fields and ``T``.
        modes: ``(modes_x, modes_y, modes_t)`` or an int for all three.
        width, n_layers: as :class:`FNO`.
        domain: ``((ax, bx), (ay, by))``; t_range: ``(t_1, t_T)``, the output times.
        time_padding: zero steps added to the time axis (BOON's notebook: 6 at the end).
        time_padding_side: ``"end"``, ``"start"`` or ``"both"`` (half each, the odd step at
            the end); see :func:`physguard.models.fno.time_pad_split`.
        projection_width: hidden channels of the projection (the 3-D field makes 128 costly
            on a CPU; the CPU defaults of ``physguard run`` use 4 x width).
        fields: fields per output step (the cavity's velocity: 2, ``u`` and ``v``). The
            projection gives ``fields`` channels at every ``(t, x, y)``; output channel
            ``k * fields + f`` is field ``f`` at step ``k`` (step-major: a step's fields are
            neighbours).

    Raises:
        ValueError: ``n_steps`` or ``fields`` below 1, and as :class:`FNO`.
    """

    def __init__(self, in_channels: int, n_steps: int, modes, width: int, n_layers: int,
                 domain=((0.0, 1.0), (0.0, 1.0)), t_range=(0.0, 1.0), time_padding: int = 6,
                 projection_width: int = 128, time_padding_side: str = "end",
                 fields: int = 1):
        if int(n_steps) < 1 or int(fields) < 1:
            raise ValueError(f"n_steps and fields must be >= 1, got {n_steps} and {fields}")
        time_pad_split(time_padding, time_padding_side)  # checks both
        mx, my, mt = _modes(modes, 3)
        (t0, t1), = _intervals("t_range", [t_range], 1)
        space = _intervals("domain", domain, 2)
        super().__init__(in_channels, int(fields), (mt, mx, my), width, n_layers,
                         ((t0, t1), *space), projection_width)
        self.n_steps, self.time_padding = int(n_steps), int(time_padding)
        self.time_padding_side = time_padding_side
        self.fields = int(fields)
        self.out_channels = self.n_steps * self.fields

    def forward(self, u: torch.Tensor, correction=None, layer_hook=None,
                input_hook=None) -> torch.Tensor:
        """``(B, in_channels, Nx, Ny) -> (B, n_steps * fields, Nx, Ny)``; ``input_hook`` maps
        the input repeated over the output times, ``(B, in_channels, T, Nx, Ny)``, to the
        same shape before the lift (BOON's ``input_walls`` writes each time's wall values
        there)."""
        self.check_input(u, n_grid_dims=2)
        b, c, nx, ny = u.shape
        grid = (self.n_steps, nx, ny)
        coords = self.coordinates(grid, u).expand(b, 3, *grid)
        repeated = u.unsqueeze(2).expand(b, c, *grid)
        if input_hook is not None:
            repeated = input_hook(repeated)
        features = torch.cat([repeated, coords], dim=1)
        start, end = time_pad_split(self.time_padding, self.time_padding_side)
        v = F.pad(self.lift(features), (0, 0, 0, 0, start, end))
        v = self.kernel_layers(v, correction, layer_hook)
        out = self.project(v[:, :, start:start + self.n_steps])  # (B, fields, T, Nx, Ny)
        return out.transpose(1, 2).reshape(b, self.out_channels, nx, ny)
