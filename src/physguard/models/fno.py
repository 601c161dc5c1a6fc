"""Fourier neural operator for 1-D fields (Li et al., ICLR 2021, arXiv 2010.08895, Sec. 4).

``u(x) -> v(x)`` on a uniform grid of ``domain`` that includes both ends. Layout inside is
``(batch, channels, N)`` as in the neuraloperator library. The network is

    lift P (pointwise) -> L x [ v <- act(K_l v + b_l) ] -> projection Q (pointwise MLP)

where each kernel layer ``K_l v = F^-1(R_l . F v) + W_l v`` is a spectral convolution on the
lowest ``modes`` Fourier modes plus a pointwise linear map (Li et al. Eq. 4-5). The activation is
GELU and is skipped after the last kernel layer. The grid coordinate is appended to the input.

The kernel layers expose :meth:`FourierLayer1d.forward`'s ``correction`` hook so that
:class:`physguard.boundary.BOON` can correct their boundary rows without re-implementing them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FNO1d", "FourierLayer1d", "SpectralConv1d"]


def _interval(name: str, value) -> tuple[float, float]:
    """``(a, b)`` as floats, finite with ``b > a``, or a ``ValueError`` naming ``name``."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an interval (a, b), got {value!r}") from err
    if not (math.isfinite(a) and math.isfinite(b) and b > a):
        raise ValueError(f"{name} must be a finite interval (a, b) with b > a, got {value}")
    return a, b


def check_operator_input(operator: nn.Module, u, n_grid_dims: int = 1) -> None:
    """Raise a specific error for an input ``operator`` cannot map (any Fourier operator with
    a ``lift`` layer and ``in_channels``; ``n_grid_dims`` grid axes after the channels).

    Raises:
        TypeError: not a tensor, or a dtype other than the operator's (float32 / float64).
        ValueError: not ``(B, in_channels, *grid)``, an empty batch, or an axis with fewer
            than 2 points.
    """
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"input must be a tensor, got {type(u).__name__}")
    dtype = getattr(operator, "input_dtype", None) or operator.lift.weight.dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the operator's weights are {dtype}; its FFT layers run in float32 or "
                        "float64 (call .float() or .double() on it)")
    if u.dtype != dtype:
        raise TypeError(f"input dtype {u.dtype} differs from the operator's {dtype}; the FFT "
                        "layers run in float32 or float64: cast the input (or the model with "
                        ".double())")
    grid = "N" if n_grid_dims == 1 else ", ".join(f"N_{a + 1}" for a in range(n_grid_dims))
    if u.dim() != 2 + n_grid_dims or u.shape[1] != operator.in_channels:
        raise ValueError(f"input must have shape (batch, {operator.in_channels}, {grid}), got "
                         f"{tuple(u.shape)}")
    if u.shape[0] == 0 or min(u.shape[2:]) < 2:
        raise ValueError(f"input needs a non-empty batch and N >= 2 points per axis, got "
                         f"{tuple(u.shape)}")


class SpectralConv1d(nn.Module):
    """``x -> irfft(R . rfft(x)[:modes], n=N)``: a global convolution with a band-limited kernel.

    Args:
        in_channels, out_channels: channel counts.
        modes: number of retained Fourier modes (clipped to ``N // 2 + 1`` on a coarse grid).

    Shapes: ``(B, in_channels, N) -> (B, out_channels, N)``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1.0 / (in_channels * out_channels)
        # Stored as real (..., 2) pairs so that module.to(dtype) / .double() keep the imaginary
        # part (a complex parameter would be cast to real by module.to(torch.float64)).
        self.weight = nn.Parameter(scale * torch.randn(in_channels, out_channels, modes, 2))

    def n_modes(self, n_points: int) -> int:
        return min(self.modes, n_points // 2 + 1)

    def weight_as(self, x: torch.Tensor, n_modes: int) -> torch.Tensor:
        """The complex weight ``(C_in, C_out, n_modes)`` in the complex dtype matching ``x``."""
        return torch.view_as_complex(self.weight[:, :, :n_modes].to(x.dtype).contiguous())

    def spectrum(self, x_hat: torch.Tensor, n_modes: int) -> torch.Tensor:
        """``Z = R . X`` on the retained modes: ``(B, C_in, >=m) -> (B, C_out, m)``."""
        return torch.einsum("bik,iok->bok", x_hat[..., :n_modes], self.weight_as(x_hat.real,
                                                                                  n_modes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        m = self.n_modes(n)
        return torch.fft.irfft(self.spectrum(torch.fft.rfft(x), m), n=n)


class FourierLayer1d(nn.Module):
    """One FNO kernel layer ``v -> act(F^-1(R . F v) + W v + b)``.

    Shapes: ``(B, width, N) -> (B, width, N)``.
    """

    def __init__(self, width: int, modes: int, activation: bool = True):
        super().__init__()
        self.spectral = SpectralConv1d(width, width, modes)
        self.pointwise = nn.Conv1d(width, width, kernel_size=1)
        self.activation = activation

    def forward(self, v: torch.Tensor, correction=None) -> torch.Tensor:
        """Apply the layer, optionally with a boundary correction of the input.

        ``correction(layer, v, z)`` receives the input and its retained spectrum
        ``z = R . rfft(v)`` and returns ``(z~, points, delta)``: the spectrum of the corrected
        input ``v~ = v + delta`` at the grid ``points`` (``delta (B, C, |points|)``). The
        pointwise branch then adds ``W delta`` at those points only, so neither the transform
        nor the pointwise map is evaluated twice.
        """
        n = v.shape[-1]
        m = self.spectral.n_modes(n)
        z = self.spectral.spectrum(torch.fft.rfft(v), m)
        points = None
        if correction is not None:
            z, points, delta = correction(self, v, z)
        out = torch.fft.irfft(z, n=n) + self.pointwise(v)
        if points is not None:
            w = self.pointwise.weight[..., 0]  # (C_out, C_in)
            index = torch.tensor(points, device=out.device)
            out.index_add_(2, index, torch.einsum("oc,bcp->bop", w, delta))
        return F.gelu(out) if self.activation else out


class FNO1d(nn.Module):
    """Fourier neural operator on a uniform 1-D grid of ``domain`` including both ends.

    Args:
        in_channels: input fields per point (e.g. 1 for ``u(x, 0)``).
        out_channels: output fields per point.
        modes: retained Fourier modes per kernel layer (paper settings: 12-16).
        width: channels of the hidden representation (32-64).
        n_layers: number of kernel layers (4).
        domain: ``(a, b)``, the interval the grid spans; the coordinate is appended as a channel.

    Shapes: input ``(B, in_channels, N)`` -> output ``(B, out_channels, N)``, any ``N >= 2``
    (discretisation invariant: train at one resolution, evaluate at another).

    Raises:
        ValueError: non-positive sizes, or an input whose channel count differs from
            ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, width: int,
                 n_layers: int, domain: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("modes", modes), ("width", width), ("n_layers", n_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.domain = _interval("domain", domain)
        self.lift = nn.Conv1d(in_channels + 1, width, kernel_size=1)
        self.layers = nn.ModuleList(
            FourierLayer1d(width, modes, activation=i < n_layers - 1) for i in range(n_layers))
        self.project = nn.Sequential(nn.Conv1d(width, 128, kernel_size=1), nn.GELU(),
                                     nn.Conv1d(128, out_channels, kernel_size=1))

    def check_input(self, u) -> None:
        """Raise a specific error for an input this operator cannot map.

        Raises:
            TypeError: not a tensor, or a dtype other than the operator's (float32 / float64).
            ValueError: not ``(B, in_channels, N)``, an empty batch, or ``N < 2``.
        """
        check_operator_input(self, u)

    def grid(self, n_points: int, like: torch.Tensor) -> torch.Tensor:
        """The ``N`` uniform grid points of ``domain``, both ends included."""
        return torch.linspace(*self.domain, n_points, dtype=like.dtype, device=like.device)

    def forward(self, u: torch.Tensor, correction=None, layer_hook=None) -> torch.Tensor:
        """Map ``u (B, in_channels, N)`` to ``(B, out_channels, N)``.

        ``correction`` is passed to every kernel layer; ``layer_hook(v)`` is applied to the
        output of every kernel layer (both are used by :class:`physguard.BOON`).
        """
        self.check_input(u)
        grid = self.grid(u.shape[-1], u).expand(u.shape[0], 1, u.shape[-1])
        v = self.lift(torch.cat([u, grid], dim=1))
        for layer in self.layers:
            v = layer(v, correction)
            if layer_hook is not None:
                v = layer_hook(v)
        return self.project(v)


def time_pad_split(time_padding: int, side: str) -> tuple[int, int]:
    """``(steps before t_1, steps after t_T)`` of a time padding.

    Raises:
        ValueError: a negative padding or an unknown side.
    """
    if int(time_padding) < 0 or side not in ("end", "start", "both"):
        raise ValueError(f"time_padding must be >= 0 and time_padding_side one of 'end', "
                         f"'start', 'both'; got {time_padding}, {side!r}")
    pad = int(time_padding)
    return {"end": (0, pad), "start": (pad, 0), "both": (pad // 2, pad - pad // 2)}[side]


class SpectralConvSpaceTime(nn.Module):
    """2-D spectral convolution over ``(t, x)`` of fields ``(B, C, T, N)``.

    ``rfft`` over ``x`` (the last dim; modes ``k < modes_x``) and a full FFT over ``t``
    (frequencies ``|omega| < modes_t``, both signs), as in Li et al.'s FNO-2D.
    """

    def __init__(self, in_channels: int, out_channels: int, modes_x: int, modes_t: int):
        super().__init__()
        self.modes_x, self.modes_t = modes_x, modes_t
        scale = 1.0 / (in_channels * out_channels)
        # Frequencies 0..modes_t-1 and -(modes_t-1)..-1 on the time axis, as real pairs.
        self.weight = nn.Parameter(
            scale * torch.randn(in_channels, out_channels, 2 * modes_t - 1, modes_x, 2))

    def retained(self, n_times: int, n_points: int) -> tuple[torch.Tensor, int]:
        """Indices of the kept time frequencies (FFT order) and the number of x modes."""
        mt = min(self.modes_t, (n_times + 1) // 2)  # never both +-T/2: no duplicate index
        freqs = list(range(mt)) + list(range(n_times - mt + 1, n_times))
        return torch.tensor(freqs), min(self.modes_x, n_points // 2 + 1)

    def weight_as(self, x: torch.Tensor, n_times: int, n_points: int) -> torch.Tensor:
        """Complex weight ``(C_in, C_out, T, m_x)``: zero at the time frequencies not kept."""
        freqs, mx = self.retained(n_times, n_points)
        mt = (len(freqs) + 1) // 2
        w = torch.view_as_complex(self.weight.to(x.dtype).contiguous())
        w = torch.cat([w[:, :, :mt], w[:, :, w.shape[2] - (mt - 1):]], dim=2)[..., :mx] \
            if mt > 1 else w[:, :, :1, :mx]
        full = torch.zeros(*w.shape[:2], n_times, mx, dtype=w.dtype, device=w.device)
        full[:, :, freqs.to(w.device)] = w
        return full

    def spectrum(self, v_hat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``Z = R . V`` for the full-time, retained-x spectrum ``V (B, C_in, T, >= m_x)``."""
        return torch.einsum("bitk,iotk->botk", v_hat[..., :weight.shape[-1]], weight)


class SpaceTimeLayer(nn.Module):
    """One space-time kernel layer ``v -> act(F^-1(R . F v) + W v + b)`` on ``(B, C, T, N)``."""

    def __init__(self, width: int, modes_x: int, modes_t: int, activation: bool = True):
        super().__init__()
        self.spectral = SpectralConvSpaceTime(width, width, modes_x, modes_t)
        self.pointwise = nn.Conv2d(width, width, kernel_size=1)
        self.activation = activation

    def forward(self, v: torch.Tensor, correction=None) -> torch.Tensor:
        """As :meth:`FourierLayer1d.forward`; ``delta`` has shape ``(B, C, T, |points|)``."""
        n_t, n = v.shape[-2], v.shape[-1]
        weight = self.spectral.weight_as(v, n_t, n)
        z = self.spectral.spectrum(torch.fft.fft(torch.fft.rfft(v), dim=-2), weight)
        points = None
        if correction is not None:
            z, points, delta = correction(self, v, z, weight)
        out = torch.fft.irfft(torch.fft.ifft(z, dim=-2), n=n) + self.pointwise(v)
        if points is not None:
            w = self.pointwise.weight[..., 0, 0]
            out.index_add_(3, torch.tensor(points, device=out.device),
                           torch.einsum("oc,bctp->botp", w, delta))
        return F.gelu(out) if self.activation else out


class SpaceTimeFNO1d(nn.Module):
    """Space-time FNO: ``u(x, 0) -> u(x, t_1..t_T)`` at once (BOON's multi-step setting).

    The input is repeated over the ``T`` output times, the coordinates ``x`` and ``t`` are
    appended, and 2-D kernel layers act on ``(t, x)``; the output has one channel per time.

    Args:
        in_channels: input fields per point.
        n_steps: ``T``, number of predicted snapshots.
        modes_x, modes_t: retained Fourier modes in ``x`` and in ``t`` (paper: 12 and 12).
        width, n_layers: hidden channels and number of kernel layers (32 and 4).
        domain: ``(a, b)`` spatial interval; t_range: ``(t_1, t_T)`` times of the outputs.
        time_padding: zero steps added to the hidden field's time axis after the lift and
            cropped before the projection (the kernel is circular in ``t``; padding keeps the
            end of the window from wrapping onto its start, as BOON's authors and
            neuraloperator do). BOON's correction works per temporal frequency of whatever
            length the axis has, so it stays exact on the padded axis.
        time_padding_side: ``"end"`` (after ``t_T``), ``"start"`` or ``"both"`` (half each,
            the odd step at the end).

    Shapes: ``(B, in_channels, N) -> (B, n_steps, N)``.
    """

    def __init__(self, in_channels: int, n_steps: int, modes_x: int, modes_t: int, width: int,
                 n_layers: int, domain: tuple[float, float] = (0.0, 1.0),
                 t_range: tuple[float, float] = (0.0, 1.0), time_padding: int = 0,
                 time_padding_side: str = "end"):
        super().__init__()
        time_pad_split(time_padding, time_padding_side)  # checks both
        self.time_padding, self.time_padding_side = int(time_padding), time_padding_side
        for name, value in (("in_channels", in_channels), ("n_steps", n_steps),
                            ("modes_x", modes_x), ("modes_t", modes_t), ("width", width),
                            ("n_layers", n_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels, self.n_steps = in_channels, n_steps
        self.out_channels = n_steps
        self.domain = _interval("domain", domain)
        self.t_range = _interval("t_range", t_range)
        self.lift = nn.Conv2d(in_channels + 2, width, kernel_size=1)
        self.layers = nn.ModuleList(
            SpaceTimeLayer(width, modes_x, modes_t, activation=i < n_layers - 1)
            for i in range(n_layers))
        self.project = nn.Sequential(nn.Conv2d(width, 128, kernel_size=1), nn.GELU(),
                                     nn.Conv2d(128, 1, kernel_size=1))

    check_input = FNO1d.check_input

    def forward(self, u: torch.Tensor, correction=None, layer_hook=None,
                input_hook=None) -> torch.Tensor:
        """``(B, in_channels, N) -> (B, n_steps, N)``; ``input_hook`` maps the input repeated
        over the output times, ``(B, in_channels, T, N)``, to the same shape before the lift
        (BOON's ``input_walls`` writes each time's wall values there)."""
        self.check_input(u)
        b, _, n = u.shape
        x = torch.linspace(*self.domain, n, dtype=u.dtype, device=u.device)
        t = torch.linspace(*self.t_range, self.n_steps, dtype=u.dtype, device=u.device)
        repeated = u.unsqueeze(2).expand(b, self.in_channels, self.n_steps, n)
        features = torch.cat([
            repeated if input_hook is None else input_hook(repeated),
            x.expand(b, 1, self.n_steps, n),
            t[:, None].expand(b, 1, self.n_steps, n)], dim=1)
        v = self.lift(features)
        start, end = time_pad_split(self.time_padding, self.time_padding_side)
        v = F.pad(v, (0, 0, start, end))
        for layer in self.layers:
            v = layer(v, correction)
            if layer_hook is not None:
                v = layer_hook(v)
        return self.project(v[:, :, start:start + self.n_steps])[:, 0]
