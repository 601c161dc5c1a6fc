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
        if not (math.isfinite(domain[0]) and math.isfinite(domain[1]) and domain[1] > domain[0]):
            raise ValueError(f"domain must be a finite interval (a, b) with b > a, got {domain}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.domain = (float(domain[0]), float(domain[1]))
        self.lift = nn.Conv1d(in_channels + 1, width, kernel_size=1)
        self.layers = nn.ModuleList(
            FourierLayer1d(width, modes, activation=i < n_layers - 1) for i in range(n_layers))
        self.project = nn.Sequential(nn.Conv1d(width, 128, kernel_size=1), nn.GELU(),
                                     nn.Conv1d(128, out_channels, kernel_size=1))

    def grid(self, n_points: int, like: torch.Tensor) -> torch.Tensor:
        """The ``N`` uniform grid points of ``domain``, both ends included."""
        return torch.linspace(*self.domain, n_points, dtype=like.dtype, device=like.device)

    def forward(self, u: torch.Tensor, correction=None, layer_hook=None) -> torch.Tensor:
        """Map ``u (B, in_channels, N)`` to ``(B, out_channels, N)``.

        ``correction`` is passed to every kernel layer; ``layer_hook(v)`` is applied to the
        output of every kernel layer (both are used by :class:`physguard.BOON`).
        """
        if u.dim() != 3 or u.shape[1] != self.in_channels:
            raise ValueError(
                f"input must have shape (batch, {self.in_channels}, N), got {tuple(u.shape)}")
        grid = self.grid(u.shape[-1], u).expand(u.shape[0], 1, u.shape[-1])
        v = self.lift(torch.cat([u, grid], dim=1))
        for layer in self.layers:
            v = layer(v, correction)
            if layer_hook is not None:
                v = layer_hook(v)
        return self.project(v)
