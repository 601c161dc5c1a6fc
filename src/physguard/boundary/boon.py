r"""BOON: boundary-corrected neural operators (Saad, Gupta, Alizadeh, Maddix, ICLR 2023).

:class:`BOON` wraps a :class:`~physguard.FNO1d` so that its output satisfies Dirichlet, Neumann
or periodic conditions exactly, on either end independently, at any resolution. It has two parts.

**1. Kernel correction (every kernel layer).** A kernel layer acts on a hidden field
``v (B, C, N)`` through the linear map ``K v = F^-1(R . F v) + W v`` (spectral convolution plus
pointwise weight; the bias ``b`` is added after ``K`` and is *not* part of ``K``). Let ``P`` be
the corrected boundary points (``0`` for a Dirichlet/Neumann left end, ``N-1`` for a right
end). Split ``K`` into the block ``A = K[P, P]`` (boundary rows, boundary columns; shape
``|P| C x |P| C``, all channels coupled) and the interior columns. The boundary rows of
``K v`` are ``A v_P + K[P, I] v_I``: the interior leaks into the boundary. BOON replaces the
boundary entries of the input by ``v~_P = v_P + delta`` with

    A delta = -K[P, I] v_I = -( (K v)_P - A v_P ),

so that ``(K v~)_P = A v_P`` depends on the boundary inputs only (Gaussian elimination of the
boundary rows; for one channel and both ends ``A = [[K00, K0N], [KN0, KNN]]`` and the elimination
pivot is the Schur complement ``K00 - K0N KN0 / KNN``, Saad et al. Sec. 3). The interior output
changes only through the boundary columns ``K(e_1), K(e_N)``: ``K v~ = K v + K[:, P] delta``.

Nothing here applies ``K`` to impulses. The entries of ``A`` come from the weights in closed
form: the spectral response at point ``j`` to an impulse at ``p`` is
``(1/N) sum_k w_k Re(R_k e^{2 pi i k (j - p)/N})`` (``w_k`` the one-sided DFT weights), plus
``W delta_jp``. ``(K v)_P`` is read off the spectrum ``Z = R . F v`` that the layer computes
anyway, the correction of ``Z`` is a rank-``|P|`` update, and the pointwise branch adds
``W delta`` at the boundary points only. So ``A`` and its factorisation
are computed once per layer per forward pass for the whole batch. The corrected layer costs one
FFT pair, like the plain one, plus ``O(|P|^2 C^2 modes + |P|^3 C^3)`` work.

**Space-time operators.** For :class:`~physguard.SpaceTimeFNO1d` (fields ``(B, C, T, N)``,
boundaries along ``x``) the boundary block couples all ``T`` times, but the kernel is a circular
convolution in ``t``: in the temporal Fourier domain ``A`` splits into ``T`` independent
``|P| C x |P| C`` blocks (see ``_SpaceTimeCorrection``), so the cost stays ``O(T |P|^3 C^3)``
instead of ``O(T^3 |P|^3 C^3)``.

**2. Exact output.** After the projection, the boundary values of the output are set:
Dirichlet to the value, Neumann to the value that makes the one-sided stencil of order 2 or 3
(built from the grid spacing ``h = (b - a)/(N - 1)`` of the actual resolution) equal the flux,
periodic to the mean of both ends (also applied after every kernel layer). This step makes the
condition hold to round-off; the kernel correction is what improves the interior.

Decisions on the pitfalls of the authors' code (``shared/reference/boon.md``):

1. channels: ``A`` couples all input and output channels (a ``|P| C`` square block), it is not
   read from channel 0;
2. bias: ``K`` excludes the pointwise bias, so the elimination is exact;
3. the 2-D index bug does not arise: boundary points are addressed as ``0`` and ``N - 1`` once;
4. pivots: ``A`` is solved by LU with a relative Tikhonov shift ``1e-7 max|A|``, sign-safe, or
   (the default ``damping``) as damped least squares, which bounds ``delta``;
5. no smoothing of near-boundary points;
6. the activation is pointwise and applied everywhere, including boundary points (a pointwise
   map keeps boundary outputs a function of boundary inputs only);
7. Neumann eliminates whichever ends carry a condition, left and right;
8. the Neumann stencil is the one of the requested order for any flux, with the grid spacing
   of the evaluation resolution;
10. ``K`` is evaluated once per layer on the data, never on impulses.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..conditions import Dirichlet, Neumann, Periodic, broadcast_to_boundary, one_sided_stencil
from ..models.fno import FNO1d, FourierLayer1d, SpaceTimeFNO1d
from ..models.fno_nd import FNO, SpaceTimeFNO2d
from ._block import block_cache, shifted, solve, solve_operator
from .neuralop_fno import NeuralopFNO, is_neuralop_fno
from .walls import WallCorrection, enforce_walls, periodic_walls

__all__ = ["BOON", "DAMPING"]

#: The default ``damping`` of :class:`BOON`'s elimination (relative to the wall block's RMS
#: singular value). Chosen on validation data (``benchmarks/results/boon_seed_spread.md``).
DAMPING = 0.3

def _dft_weights(n_points: int, n_modes: int, dtype) -> torch.Tensor:
    """One-sided inverse-rfft weights: 1 for k = 0 and the Nyquist mode, 2 otherwise."""
    w = torch.full((n_modes,), 2.0, dtype=dtype)
    w[0] = 1.0
    if n_points % 2 == 0 and n_modes - 1 == n_points // 2:
        w[-1] = 1.0
    return w


class _LayerCorrection:
    """The kernel correction of one forward pass: boundary points ``P`` at resolution ``N``.

    The Fourier factors (which depend only on ``N``, the number of modes and ``P``) are built
    once per forward pass and shared by all kernel layers.
    """

    def __init__(self, points: list[int], n_points: int, damping: float = 0.0):
        self.points = points
        self.n = n_points
        self.damping = damping
        self._factors: dict = {}

    def _fourier_factors(self, m: int, like: torch.Tensor):
        key = (m, like.dtype, like.device)
        if key not in self._factors:
            n, real = self.n, like.dtype
            k = torch.arange(m, dtype=real, device=like.device)
            pts = torch.tensor(self.points, dtype=real, device=like.device)
            angle = 2 * math.pi * torch.outer(pts, k) / n  # (|P|, m)
            weights = _dft_weights(n, m, real).to(like.device) / n
            evaluate = weights * torch.polar(torch.ones_like(angle), angle)  # read point j
            impulse = torch.polar(torch.ones_like(angle), -angle)  # spectrum of e_p
            # Re(a b) = Re a Re b - Im a Im b: real matrices for the real-valued products.
            pair = impulse.unsqueeze(0) * evaluate.unsqueeze(1)  # (j, p, m)
            pair = torch.cat([pair.real, -pair.imag], dim=-1).reshape(-1, 2 * m).T  # (2m, jp)
            read = torch.cat([evaluate.real, -evaluate.imag], dim=-1).T  # (2m, j)
            self._factors[key] = pair, read, impulse, evaluate
        return self._factors[key]

    def spectral_block(self, layer: FourierLayer1d, v: torch.Tensor, m: int) -> torch.Tensor:
        """The spectral part of the boundary block, ``(j, C_out, p, C_in)`` for ``j, p`` in
        ``P`` (``A`` is this plus ``W`` on ``j = p``)."""
        c, n_p = v.shape[1], len(self.points)
        pair = self._fourier_factors(m, v)[0]
        R = layer.spectral.weight_as(v, m)  # (C_in, C_out, m) complex
        r_cat = torch.cat([R.real, R.imag], dim=-1).reshape(c * c, 2 * m)
        return (r_cat @ pair).reshape(c, c, n_p, n_p).permute(2, 1, 3, 0)  # (j, o, p, c)

    def leak(self, a_spec: torch.Tensor, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``K[P, I] v_I (B, C_out, |P|)``: the interior's part of the boundary rows, read off
        the layer's spectrum ``z`` (``a_spec`` from :meth:`spectral_block`)."""
        read = self._fourier_factors(z.shape[-1], v)[1]
        v_p = torch.stack([v[:, :, p] for p in self.points], dim=-1)  # (B, C, |P|)
        z_cat = torch.cat([z.real, z.imag], dim=-1)  # (B, C, 2m)
        spec_p = z_cat @ read  # (B, C_out, j): the spectral part of (K v)_P
        return spec_p - torch.einsum("jopc,bcp->boj", a_spec, v_p)

    def block(self, layer: FourierLayer1d, v: torch.Tensor, m: int):
        """``(a_spec, A)``: the spectral block and the shifted boundary block ``(|P| C, |P|
        C)`` of ``layer`` (weights only, no data)."""
        n_p, c = len(self.points), v.shape[1]
        a_spec = self.spectral_block(layer, v, m)
        eye = torch.eye(n_p, dtype=v.dtype, device=v.device)
        w_point = layer.pointwise.weight[..., 0]  # (C_out, C_in)
        A = (a_spec + eye[:, None, :, None] * w_point[None, :, None, :]).reshape(n_p * c, -1)
        return a_spec, shifted(A, A.abs().amax())

    def __call__(self, layer: FourierLayer1d, v: torch.Tensor, z: torch.Tensor):
        P, m = self.points, z.shape[-1]
        batch, c = v.shape[0], v.shape[1]
        n_p = len(P)
        impulse = self._fourier_factors(m, v)[2]
        cache = block_cache(layer, (tuple(P), self.n, m, self.damping, v.dtype, v.device))
        if cache is None:
            a_spec, A = self.block(layer, v, m)
        elif cache[1] in cache[0]:
            a_spec, M = cache[0][cache[1]]
        else:  # evaluation: the block and its solve operator, once per weights
            a_spec, A = self.block(layer, v, m)
            M = solve_operator(A, self.damping)
            cache[0][cache[1]] = a_spec, M
        leak = self.leak(a_spec, v, z)  # K[P, I] v_I
        rhs = -leak.transpose(1, 2).reshape(batch, n_p * c)
        delta = (solve(A, rhs.T, self.damping) if cache is None else M @ rhs.T)
        delta = delta.T.reshape(batch, n_p, c)  # (B, |P|, C)
        spectrum = torch.einsum("bpc,pk->bck", delta.to(impulse.dtype), impulse)
        z = z + layer.spectral.spectrum(spectrum, m)
        return z, P, delta.transpose(1, 2)


class _SpaceTimeCorrection(_LayerCorrection):
    """The kernel correction for space-time layers ``(B, C, T, N)``, boundaries along ``x``.

    The kernel is a circular convolution in ``t``, so the boundary block ``A`` (all times,
    boundary points, channels) is block-circulant in ``t``: in the temporal Fourier domain it
    splits into ``T`` independent ``|P| C x |P| C`` blocks, with
    ``A(omega)[j, o; p, c] = (1/N) sum_k (w_k / 2) (R(omega, k) E + conj(R(-omega, k) E))``,
    ``E = e^{2 pi i k (j - p)/N}``, plus ``W delta_jp`` (derivation in the docs of
    :class:`physguard.SpaceTimeFNO1d`'s correction: the ``conj`` term is the Hermitian half of
    the real 2-D transform).
    """

    def __call__(self, layer, v: torch.Tensor, z: torch.Tensor, weight: torch.Tensor):
        P = self.points
        batch, c, n_t, m = v.shape[0], v.shape[1], v.shape[2], z.shape[-1]
        n_p = len(P)
        real = v.dtype
        # Shared with the 1-D correction, built once per forward pass for all layers.
        _, _, impulse, evaluate = self._fourier_factors(m, v)
        E = 0.5 * evaluate.unsqueeze(1) * impulse.unsqueeze(0)  # (j, p, m)
        R = weight  # (C_in, C_out, T, m)
        R_neg = R[:, :, (-torch.arange(n_t, device=v.device)) % n_t]
        a_spec = (torch.einsum("cotk,jpk->tjopc", R, E)
                  + torch.einsum("cotk,jpk->tjopc", R_neg, E).conj())
        eye = torch.eye(n_p, dtype=real, device=v.device)
        w_point = layer.pointwise.weight[..., 0, 0]  # (C_out, C_in)
        A = a_spec + (eye[:, None, :, None] * w_point[None, :, None, :]).to(a_spec.dtype)
        A = A.reshape(n_t, n_p * c, n_p * c)
        A = shifted(A, A.abs().amax())
        y_p = torch.einsum("botk,jk->botj", torch.fft.ifft(z, dim=2), evaluate).real
        v_p = torch.stack([v[..., p] for p in P], dim=-1)  # (B, C, T, |P|)
        v_hat = torch.fft.fft(v_p, dim=2)
        a_v = torch.fft.ifft(torch.einsum("tjopc,bctp->botj", a_spec, v_hat), dim=2).real
        leak_hat = torch.fft.fft(y_p - a_v, dim=2)  # (B, C, T, |P|)
        rhs = -leak_hat.permute(2, 3, 1, 0).reshape(n_t, n_p * c, batch)
        delta_hat = solve(A, rhs, self.damping).reshape(n_t, n_p, c, batch)
        delta = torch.fft.ifft(delta_hat.permute(3, 2, 0, 1), dim=2).real  # (B, C, T, |P|)
        spectrum = torch.einsum("bctp,pk->bctk", torch.fft.fft(delta.to(z.dtype), dim=2),
                                impulse)
        z = z + layer.spectral.spectrum(spectrum, weight)
        return z, P, delta


class BOON(nn.Module):
    """A boundary-corrected operator: ``BOON(FNO1d(...), left=Dirichlet(0.0), right=Neumann(1.0))``
    or, in 2-D, ``BOON(FNO2d(...), left=..., right=..., bottom=..., top=...)``.

    Args:
        operator: the operator to correct (its weights are shared, not copied):
            :class:`~physguard.FNO1d` / :class:`~physguard.SpaceTimeFNO1d` (walls ``left`` and
            ``right``), or :class:`~physguard.FNO2d` / :class:`~physguard.SpaceTimeFNO2d`
            (also ``bottom`` and ``top``: ``y = a_y`` and ``y = b_y``; ``left`` / ``right``
            are ``x = a_x`` / ``x = b_x``), or a 1-D / 2-D ``neuralop.models.FNO``
            (neuraloperator 2.0, ``pip install "physguard[neuralop]"``; supported and refused
            configurations: :mod:`physguard.boundary.neuralop_fno`).
        left, right, bottom, top: :class:`Dirichlet`, :class:`Neumann`, :class:`Periodic` or
            ``None`` (no condition on that wall), in any mix. Periodic must be given on both
            walls of an axis.
        domain: for a neuraloperator FNO only (physguard's operators carry theirs): the
            interval each grid axis spans, both ends included, ``((a, b),)`` or
            ``((ax, bx), (ay, by))``; default the unit interval. It sets the Neumann stencils'
            grid spacing ``h = (b - a) / (N - 1)``.
        kernel_correction: correct every kernel layer (part 1 above; Saad et al. Sec. 3, the
            default). ``False`` keeps only the exact output (part 2, and no periodic mean
            between layers): the conditions still hold to round-off, and the operator's
            layers are left as they are. Where the wall inputs are the same in every sample
            (the velocity cavity: lid and no slip), the corrected layers' wall rows are the
            same constants in every sample, and the exact output alone was measured more
            accurate (``benchmarks/results/boon_2d.md``).
        input_walls: write every Dirichlet wall's value into the input's wall points before
            the operator runs (default ``False``), so that the operator sees the output's wall
            values, not the input's. For an operator whose input is the same field as its
            output at an earlier time (``in_channels == out_channels``), as in the
            single-step runs. For a space-time operator (``SpaceTimeFNO1d`` /
            ``SpaceTimeFNO2d``, one input field, ``in_channels == 1``), the input repeated
            over the ``T`` output times gets each time's wall values, so the operator sees
            the walls' whole time series. On single-step Stokes (second problem), where the
            wall value at the output time differs between samples and the input's does not,
            this with
            ``kernel_correction=False`` was 1.4x and 2.6x more accurate than the FNO
            (``benchmarks/results/boon_interior.md``, section 6); with the corrected kernels
            it was worse than the FNO.
        output_normalizer: the normaliser of the outputs when the model learns normalised
            targets (neuraloperator's ``UnitGaussianNormalizer``, the one its
            ``DefaultDataProcessor`` applies to ``y``; anything with ``transform`` and
            ``inverse_transform``). The conditions (and the batch's ``*_values``) are then in
            physical units: BOON decodes the operator's output, sets the walls, and encodes it
            again, so they hold to round-off after the processor's ``postprocess``; any
            normaliser (per point, per channel) works, with a mean that varies along a Neumann
            wall's normal too. Not with ``input_walls``.
        damping: the elimination of part 1 as damped least squares, ``delta = -(A^T A +
            lam^2 I)^-1 A^T K[P, I] v_I`` with ``lam = damping`` times the RMS singular value
            of the wall block ``A`` (default :data:`DAMPING`, 0.3; ``0``: Saad et al.'s exact
            elimination). A wall point's kernel column is weak (``W`` plus an ``O(modes / N)``
            spectral sum) while the leak from the interior is ``O(1)``, so the exact
            elimination moves the wall inputs by about 4 times the hidden field's RMS; damped,
            by about 1 time, and the runs land closer together (measured over 10 seeds on
            fixed validation data: ``benchmarks/results/boon_seed_spread.md``). The output's
            conditions hold to round-off either way (part 2).

    Checkpoints in neuraloperator's format (:meth:`save_checkpoint`, :meth:`load_checkpoint`,
    :meth:`from_checkpoint`; the state dict loads with ``weights_only=True``), so
    ``neuralop.Trainer``'s ``save_every`` and ``resume_from_dir`` work with BOON as the model.

    Call it like the operator. 1-D: ``(B, in_channels, N) -> (B, out_channels, N)`` (for the
    space-time operator the output channels are the ``T`` time steps, so ``(B, T)`` values
    are per time step). 2-D: ``(B, in_channels, Nx, Ny) -> (B, C, Nx, Ny)`` with ``C`` the
    output channels or the ``T`` steps; wall values are scalars, per sample ``(B,)``, per wall
    point ``(B, N_wall)``, per time step and wall point ``(B, T, N_wall)`` or per channel
    ``(B, C, N_wall)``. Every wall's condition holds to round-off: Dirichlet ``u = value``;
    Neumann: the one-sided stencil of the condition's order along the wall normal, with the
    grid spacing of the evaluation resolution, equals ``flux`` (``du/dx`` on the x walls,
    ``du/dy`` on the y walls, along the axis, not the outward normal); periodic: both ends
    equal. Corners and the 2-D kernel correction: :mod:`physguard.boundary.walls`.

    Raises:
        TypeError: an operator of another type, or a condition of another type; a
            ``kernel_correction`` or ``input_walls`` that is not a bool; an input
            whose dtype is not the operator's (float32 or float64).
        ValueError: periodic on one wall of an axis only; ``input_walls`` for an operator
            whose input and output channels differ (a space-time operator: more than one
            input channel); ``bottom`` / ``top`` for a 1-D
            operator; a neuraloperator configuration the correction cannot handle, or a
            ``domain`` for a physguard operator; a grid too small for the Neumann stencil;
            an input that is empty, has fewer than 2 points or the wrong channel count; a
            boundary value that overflows the output dtype (``Dirichlet(1e39)`` in float32).
    """

    def __init__(self, operator: FNO1d | FNO, left=None, right=None, bottom=None, top=None,
                 domain=None, kernel_correction: bool = True, input_walls: bool = False,
                 output_normalizer=None, damping: float | None = None):
        super().__init__()
        if is_neuralop_fno(operator):
            operator = NeuralopFNO(operator, domain)
        elif domain is not None:
            raise ValueError("domain is for a wrapped neuraloperator FNO; physguard's operators "
                             "carry their own")
        two_d = isinstance(operator, FNO) or getattr(operator, "n_dims", 1) == 2
        if not (two_d or isinstance(operator, FNO1d | SpaceTimeFNO1d | NeuralopFNO)):
            raise TypeError(f"BOON wraps an FNO1d, SpaceTimeFNO1d, FNO2d, SpaceTimeFNO2d or a "
                            f"neuralop.models.FNO, got {type(operator).__name__}")
        walls = {"left": left, "right": right, "bottom": bottom, "top": top}
        for side, bc in walls.items():
            if bc is not None and not isinstance(bc, Dirichlet | Neumann | Periodic):
                raise TypeError(f"{side} must be Dirichlet, Neumann, Periodic or None, got "
                                f"{type(bc).__name__}")
        if not two_d and (bottom is not None or top is not None):
            raise ValueError(f"{type(operator).__name__} is 1-D: it has no bottom or top wall")
        for lo, hi in (("left", "right"), ("bottom", "top")):
            if isinstance(walls[lo], Periodic) != isinstance(walls[hi], Periodic):
                raise ValueError(f"Periodic() must be given on both ends ({lo} and {hi})")
        self.operator = operator
        self.left, self.right, self.bottom, self.top = left, right, bottom, top
        self.two_d = two_d
        if not isinstance(kernel_correction, bool):
            raise TypeError(f"kernel_correction must be True or False, got "
                            f"{kernel_correction!r}")
        self.kernel_correction = kernel_correction
        damping = DAMPING if damping is None else damping
        if isinstance(damping, bool) or not isinstance(damping, int | float) or \
                not (0 <= damping < math.inf):
            raise ValueError(f"damping must be a finite number >= 0, got {damping!r}")
        self.damping = float(damping)
        if not isinstance(input_walls, bool):
            raise TypeError(f"input_walls must be True or False, got {input_walls!r}")
        self.space_time = isinstance(operator, SpaceTimeFNO1d | SpaceTimeFNO2d)
        if input_walls and self.space_time and operator.in_channels != 1:
            raise ValueError(f"input_walls writes each output time's wall values into the "
                             f"input repeated over the times, so the input must be the one "
                             f"field at the start: in_channels {operator.in_channels} != 1")
        if input_walls and not self.space_time and \
                operator.in_channels != operator.out_channels:
            raise ValueError(f"input_walls writes the output's wall values into the input, so "
                             f"the input must be the same field: in_channels "
                             f"{operator.in_channels} != out_channels {operator.out_channels}")
        self.input_walls = input_walls
        if output_normalizer is not None:
            if not all(callable(getattr(output_normalizer, name, None))
                       for name in ("transform", "inverse_transform")):
                raise TypeError("output_normalizer must have transform() and "
                                "inverse_transform() (neuraloperator's UnitGaussianNormalizer), "
                                f"got {type(output_normalizer).__name__}")
            if input_walls:
                raise ValueError("input_walls writes the walls' physical values into the "
                                 "input, which a data processor feeds in normalised units: "
                                 "use one of input_walls and output_normalizer")
        self.output_normalizer = output_normalizer

    @property
    def periodic(self) -> bool:
        return isinstance(self.left, Periodic)

    # -- neuraloperator's checkpoint interface (its Trainer's save_every / resume_from_dir) --

    def state_dict(self, *args, **kwargs):
        """The weights (tensors only: neuraloperator's ``_metadata`` entry of Python objects
        is left out, so the file loads with ``weights_only=True``)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As ``nn.Module.load_state_dict``; a neuraloperator ``_metadata`` entry is ignored."""
        state_dict = {k: v for k, v in state_dict.items() if k != "_metadata"}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def checkpoint_metadata(self) -> dict:
        """BOON's conditions and options and the wrapped operator's class and constructor
        arguments (neuraloperator models), as plain data."""
        from . import _checkpoint as ck

        operator = getattr(self.operator, "model", self.operator)
        cls = type(operator)
        init = getattr(operator, "_init_kwargs", None)
        norm = self.output_normalizer
        return {
            "walls": {w: ck.condition_record(bc) for w, bc in self._walls().items()},
            "domain": ck.encode(_constructor_domain(self.operator)),
            "kernel_correction": self.kernel_correction, "input_walls": self.input_walls,
            "damping": self.damping,
            "operator": {"class": f"{cls.__module__}:{cls.__qualname__}",
                         "init": None if init is None else ck.encode(dict(init))},
            "output_normalizer": None if norm is None else {
                "class": f"{type(norm).__module__}:{type(norm).__qualname__}",
                "shapes": {k: list(v.shape) for k, v in norm.state_dict().items()},
                "eps": float(getattr(norm, "eps", 0.0)),
                "dim": ck.encode(getattr(norm, "dim", None))},
        }

    def save_checkpoint(self, save_folder, save_name: str) -> None:
        """Write ``{save_name}_state_dict.pt`` and ``{save_name}_metadata.pkl`` in
        ``save_folder`` (neuraloperator's layout; both load with ``weights_only=True``)."""
        from . import _checkpoint as ck

        ck.save(save_folder, save_name, self.state_dict(), self.checkpoint_metadata())

    def load_checkpoint(self, save_folder, save_name: str, map_location=None) -> None:
        """Load the weights written by :meth:`save_checkpoint` into this BOON.

        Raises:
            FileNotFoundError: no file. ValueError: a file that is not a safe checkpoint.
        """
        from pathlib import Path

        from . import _checkpoint as ck

        path = Path(save_folder) / f"{save_name}_state_dict.pt"
        self.load_state_dict(ck.load(path, map_location))

    @classmethod
    def from_checkpoint(cls, save_folder, save_name: str, map_location=None) -> BOON:
        """Rebuild a BOON over a neuraloperator model from :meth:`save_checkpoint`'s files
        (the model from its recorded constructor arguments; classes and functions are
        imported from ``torch`` and ``neuralop`` only).

        Raises:
            FileNotFoundError: no file. ValueError: a physguard operator or a model class from
            elsewhere (build it, wrap it and call :meth:`load_checkpoint`), or a damaged file.
        """
        from pathlib import Path

        from . import _checkpoint as ck

        meta = ck.load(Path(save_folder) / f"{save_name}_metadata.pkl")
        if not isinstance(meta, dict) or meta.get("format") != ck.FORMAT:
            raise ValueError(f"{save_folder}/{save_name}_metadata.pkl is not a BOON checkpoint")
        operator = meta["operator"]
        if operator["init"] is None:
            raise ValueError(f"the checkpoint wraps {operator['class']}, whose constructor "
                             "arguments are not recorded: build it, wrap it in BOON and call "
                             "load_checkpoint")
        init = ck.decode(operator["init"])
        init.pop("_version", None)
        init.pop("_name", None)
        args = init.pop("args", ())
        model = ck.load_object(operator["class"])(*args, **init)
        norm = meta["output_normalizer"]
        if norm is not None:
            shapes = norm["shapes"]
            norm = ck.load_object(norm["class"])(
                mean=torch.zeros(shapes["mean"]), std=torch.ones(shapes["std"]),
                eps=norm["eps"], dim=ck.decode(norm["dim"]))
        walls = {w: ck.condition_from(r) for w, r in meta["walls"].items()}
        boon = cls(model, **walls, domain=ck.decode(meta["domain"]),
                   kernel_correction=meta["kernel_correction"],
                   damping=meta.get("damping", 0.0),
                   input_walls=meta["input_walls"], output_normalizer=norm)
        boon.load_checkpoint(save_folder, save_name, map_location)
        return boon

    def forward(self, x: torch.Tensor, output_dtype: torch.dtype | None = None, *,
                output_shape=None, **batch) -> torch.Tensor:
        """``(B, in_channels, *grid) -> (B, out_channels, *grid)`` with the conditions enforced.

        Called like neuraloperator's models, ``model(**sample)`` (its ``Trainer``): ``x`` is
        the input; ``left_values``, ``right_values`` (2-D also ``bottom_values``,
        ``top_values``) replace, for this batch, the values of the conditions BOON was built
        with (``(B,)``, or ``(B, T)`` per output channel or time step; the shapes of the
        conditions' values); other keys (the target ``y``) are ignored, as neuraloperator's
        models ignore them. With an ``output_normalizer`` the values are in physical units.

        ``output_dtype`` (e.g. ``torch.float64``) casts the operator's output before the
        boundary values are set, so that a Neumann stencil of a float32 network's output holds
        to float64 round-off rather than float32's ``eps / h``.

        Raises:
            ValueError: an ``output_shape`` other than the input grid (BOON's walls are the
                input grid's), values for a wall without a Dirichlet or Neumann condition, or
                a ``*_values`` key that names no wall.
        """
        if output_shape is not None and tuple(output_shape) != tuple(x.shape[2:]):
            raise ValueError(f"BOON outputs on the input grid {tuple(x.shape[2:])}, got "
                             f"output_shape {tuple(output_shape)}")
        values = {key[:-len("_values")]: batch[key] for key in batch if key.endswith("_values")}
        if not values:
            return self._forward(x, output_dtype)
        saved = self._walls()
        try:
            for wall, value in values.items():
                if wall not in saved:
                    raise ValueError(f"{wall}_values names no wall (left, right, bottom, top)")
                bc = saved[wall]
                if not isinstance(bc, Dirichlet | Neumann):
                    raise ValueError(f"{wall}_values given, but the {wall} wall has "
                                     f"{'no condition' if bc is None else 'a periodic one'}: "
                                     "values replace a Dirichlet value or a Neumann flux")
                value = torch.as_tensor(value)
                if not torch.is_floating_point(value):
                    value = value.to(torch.get_default_dtype())
                setattr(self, wall, Dirichlet(value) if isinstance(bc, Dirichlet)
                        else Neumann(value, bc.order))
            return self._forward(x, output_dtype)
        finally:
            for wall, bc in saved.items():
                setattr(self, wall, bc)

    def _forward(self, u: torch.Tensor, output_dtype) -> torch.Tensor:
        if self.two_d:
            return self._forward_walls(u, output_dtype)
        self.operator.check_input(u)
        n = u.shape[-1]
        points = [p for p, bc in ((0, self.left), (n - 1, self.right))
                  if isinstance(bc, Dirichlet | Neumann)]
        if isinstance(self.operator, NeuralopFNO):
            correction = WallCorrection([(0, points)], self.damping) if points else None
        else:
            kind = _SpaceTimeCorrection if isinstance(self.operator, SpaceTimeFNO1d) \
                else _LayerCorrection
            correction = kind(points, n, self.damping) if points else None
        hook = _periodic_mean if self.periodic else None
        return self._exact_output(u, correction, hook, output_dtype)

    def _exact_output(self, u: torch.Tensor, correction, hook, output_dtype) -> torch.Tensor:
        """The operator on ``u`` (its Dirichlet walls set first with ``input_walls``), its
        layers corrected by ``correction`` and ``hook`` unless ``kernel_correction`` is off,
        cast to ``output_dtype``, with the conditions set exactly."""
        options = {}
        if self.input_walls and self.space_time:  # the input repeated over the T times
            options["input_hook"] = lambda rep: self._with_input_walls(rep[:, 0])[:, None]
        elif self.input_walls:
            u = self._with_input_walls(u)
        if not self.kernel_correction:
            correction = hook = None
        out = self.operator(u, correction=correction, layer_hook=hook, **options)
        if output_dtype is not None:
            out = out.to(output_dtype)
        norm = self.output_normalizer
        if norm is None:
            return self.enforce(out)
        # The conditions are physical: set them on the decoded output, then encode it again,
        # so that they hold to round-off after the data processor's postprocess (decode).
        return norm.transform(self.enforce(norm.inverse_transform(out)))

    def enforce(self, out: torch.Tensor) -> torch.Tensor:
        """Set the boundary values of ``out`` (``(B, C, N)``, or ``(B, C, Nx, Ny)`` in 2-D) so
        the conditions hold exactly."""
        if self.two_d:
            return self.enforce_2d(out)
        if self.periodic:
            return _periodic_mean(out)
        n = out.shape[-1]
        a, b = self.operator.domain
        h = (b - a) / (n - 1)
        out = self._dirichlet_ends(out)
        for bc, sign in ((self.left, 1), (self.right, -1)):
            if isinstance(bc, Neumann):
                coeffs = one_sided_stencil(bc.order)
                if n < len(coeffs) + 1:
                    raise ValueError(f"a Neumann stencil of order {bc.order} needs N >= "
                                     f"{len(coeffs) + 1} points, got {n}")
                idx = [i if sign > 0 else n - 1 - i for i in range(len(coeffs))]
                flux = broadcast_to_boundary(bc.flux, out[..., idx[0]])
                rest = sum(ci * out[..., i] for ci, i in zip(coeffs[1:], idx[1:], strict=True))
                out[..., idx[0]] = (sign * flux * h - rest) / coeffs[0]
        return out

    def _dirichlet_ends(self, out: torch.Tensor) -> torch.Tensor:
        """A copy of the 1-D field ``out`` with each Dirichlet end set to its value."""
        out = out.clone()
        for bc, end in ((self.left, 0), (self.right, out.shape[-1] - 1)):
            if isinstance(bc, Dirichlet):
                out[..., end] = broadcast_to_boundary(bc.value, out[..., end])
        return out

    def _with_input_walls(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` with every Dirichlet wall's value written into its wall points (the
        ``input_walls`` option; the corner rule of the exact output)."""
        if not self.two_d:
            return self._dirichlet_ends(u)
        dirichlet = {name: bc if isinstance(bc, Dirichlet) else None
                     for name, bc in self._walls().items()}
        return enforce_walls(u, dirichlet, self.operator.domain[-2:])

    def _walls(self) -> dict:
        return {"left": self.left, "right": self.right, "bottom": self.bottom, "top": self.top}

    def _forward_walls(self, u: torch.Tensor, output_dtype) -> torch.Tensor:
        """The 2-D path: per-layer wall correction, then the exact wall values."""
        operator = self.operator
        operator.check_input(u, n_grid_dims=2)
        nx, ny = u.shape[-2:]
        walls = []
        for axis_from_end, (lo, hi), n in ((2, ("left", "right"), nx),
                                           (1, ("bottom", "top"), ny)):
            points = [p for p, bc in ((0, getattr(self, lo)), (n - 1, getattr(self, hi)))
                      if isinstance(bc, Dirichlet | Neumann)]
            walls.append((operator.n_dims - axis_from_end, points))
        correction = WallCorrection(walls, self.damping) if any(p for _, p in walls) else None
        periodic = [dim for dim, lo in ((-2, self.left), (-1, self.bottom))
                    if isinstance(lo, Periodic)]
        hook = (lambda v: periodic_walls(v, periodic)) if periodic else None
        return self._exact_output(u, correction, hook, output_dtype)

    def enforce_2d(self, out: torch.Tensor) -> torch.Tensor:
        """Set the wall values of a 2-D output ``(B, C, Nx, Ny)`` (see the corner rules in
        :mod:`physguard.boundary.walls`)."""
        return enforce_walls(out, self._walls(), self.operator.domain[-2:])


def _constructor_domain(operator):
    """The ``domain`` argument that rebuilds a wrapped neuraloperator model's BOON (``None``
    for physguard's operators, which carry theirs)."""
    if not isinstance(operator, NeuralopFNO):
        return None
    return (operator.domain,) if operator.n_dims == 1 else operator.domain


def _periodic_mean(v: torch.Tensor) -> torch.Tensor:
    mean = 0.5 * (v[..., 0] + v[..., -1])
    v = v.clone()
    v[..., 0] = mean
    v[..., -1] = mean
    return v
