r"""BOON for neuraloperator's FNO (``neuralop.models.FNO``, neuraloperator 2.0).

``physguard.BOON(neuralop.models.FNO(n_modes=(16,), ...), left=..., right=...)`` (and the 2-D
model, ``n_modes=(m, m)``, with ``bottom`` / ``top``) wraps the user's model in
:class:`NeuralopFNO`: the same forward pass, run from the model's own modules and weights
(shared, never copied: the wrapper's parameters *are* the model's), with BOON's kernel
correction (:mod:`physguard.boundary.walls`) in every FNO block.

**Why the correction applies.** An FNO block of neuraloperator is ``x -> act(S x + b + W x)``
followed by a channel MLP with its own skip, where ``S`` is the spectral convolution
(``SpectralConv``: ``irfftn`` of the weight times the kept modes of ``rfftn(x)``), ``b`` its bias
and ``W`` the skip (``linear``: a 1 x 1 convolution; ``identity``; ``soft-gating``: a
per-channel scale). ``K = S + W`` is a circular convolution plus a pointwise map, the kernel
that BOON corrects (Saad et al., ICLR 2023, Sec. 3): its wall rows are eliminated against the
wall inputs, and the kernel's input is replaced by ``x + delta`` on the wall lines (the channel
MLP's skip, outside the kernel, keeps ``x``: ``delta`` depends on the interior). Everything
else in the model is pointwise (the lifting and projection MLPs, the channel MLPs and their
skips, the activation, the grid positional embedding, which appends each point's
coordinates), so after the correction the wall rows of every block depend on the wall inputs
only. The output's conditions are then set exactly by :class:`physguard.BOON`.

``S`` is read in closed form from the layer's weight: neuraloperator keeps, on every axis but
the last, the ``K`` centred frequencies ``-K//2 ... K//2 + K%2 - 1`` (after ``fftshift``) and, on
the last (``rfft``) axis, ``0 ... K - 1``; physguard writes them on its symmetric lattice (a
zero weight for the one frequency an even ``K`` leaves out), in the FFT order its correction
uses. The ``fft_norm`` of the layer cancels between ``rfftn`` and ``irfftn``, so the map is the
same for every normalisation. Without conditions the wrapper reproduces the model's output to
float32 round-off (a test checks it); in float64 it runs the weights in complex128, which the
model itself cannot (its spectral weights stay complex64 under ``.double()``).

**Refused configurations** (``ValueError`` at wrapping, each with the reason):

* ``domain_padding``: the layers then transform a grid extended by zeros beyond the walls, so
  the walls are no longer the ends of the periodic grid the kernel acts on, and the padded
  strip is itself an input that couples into the wall rows;
* ``resolution_scaling_factor``: the blocks change the grid, so a block's output walls are not
  the walls of its input;
* ``norm`` (instance, group norm, AdaIN): a normalisation over the grid mixes interior values
  into the wall values after every kernel, undoing the correction;
* ``stabilizer="tanh"``: the spectral convolution then sees ``tanh(x)`` and the skip ``x``, so the
  kernel is not one linear map of the block's input;
* ``complex_data``, ``fno_block_precision`` other than ``"full"``: complex fields and half
  precision (the elimination needs float32 or float64);
* a convolution other than neuraloperator's ``SpectralConv``, or a skip, lifting, projection or
  channel MLP that is not neuraloperator's pointwise module;
* more than two space dimensions.

At call time (``ValueError``), where a wall carries a Dirichlet or Neumann condition (or the
input is float64): an odd number of points along an axis other than the last, or no more points
than the kept modes there. (Periodic walls need no kernel correction: in float32 the model's
own layers then run, on any grid.) neuraloperator 2.0.0 undoes its ``fftshift`` with a
second ``fftshift``, which for an odd length moves every output frequency by one: the layer is
then not a convolution along that axis (``conv(roll(x)) != roll(conv(x))``, measured 0.5 on a
scale of 1.2 at 15 points, 2e-7 at 16), and BOON's correction, exact for convolutions, would
not be.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models.fno import check_operator_input
from ..models.fno_nd import SpectralConvNd, lattice_mix

__all__ = ["NeuralopFNO", "is_neuralop_fno"]


def is_neuralop_fno(obj) -> bool:
    """Whether ``obj`` is a ``neuralop.models.FNO`` or a subclass (``TFNO``, or one defined
    outside neuraloperator, as The Well's benchmark FNO); never imports neuraloperator for
    objects whose classes do not come from it."""
    if not any((c.__module__ or "").startswith("neuralop") for c in type(obj).__mro__):
        return False
    from neuralop.models import FNO

    return isinstance(obj, FNO)


def _refuse(model) -> None:
    """Raise ``ValueError`` for a configuration that breaks the correction (module docs)."""
    from neuralop.layers.channel_mlp import ChannelMLP
    from neuralop.layers.embeddings import GridEmbedding2D, GridEmbeddingND
    from neuralop.layers.skip_connections import Flattened1dConv, SoftGating
    from neuralop.layers.spectral_convolution import SpectralConv

    blocks = model.fno_blocks
    name = type(model).__name__
    if model.n_dim not in (1, 2):
        raise ValueError(f"BOON wraps 1-D and 2-D neuraloperator FNOs, got n_modes of length "
                         f"{model.n_dim}")
    reasons = {
        "domain_padding": (model.domain_padding is not None,
                           "the layers transform a grid padded beyond the walls: the walls are "
                           "no longer the ends of the grid the kernel acts on"),
        "resolution_scaling_factor": (blocks.resolution_scaling_factor is not None,
                                      "the blocks change the grid, so a block's output walls "
                                      "are not its input's"),
        "norm": (blocks.norm is not None,
                 "a normalisation over the grid mixes interior values into the walls after "
                 "every kernel"),
        "stabilizer": (blocks.stabilizer is not None,
                       "the spectral convolution sees tanh(x) and the skip x: the kernel is not "
                       "one linear map"),
        "complex_data": (bool(blocks.complex_data), "BOON's conditions are for real fields"),
        "fno_block_precision": (blocks.fno_block_precision != "full",
                                "the boundary elimination needs float32 or float64"),
    }
    for option, (bad, why) in reasons.items():
        if bad:
            raise ValueError(f"BOON cannot wrap this {name}: {option} is set, and {why} "
                             "(see physguard.boundary.neuralop_fno)")
    pointwise_skip = (Flattened1dConv, SoftGating, nn.Identity)
    for i in range(blocks.n_layers):
        conv = blocks.convs[i]
        if type(conv) is not SpectralConv:
            raise ValueError(f"BOON cannot wrap this {name}: block {i} has a "
                             f"{type(conv).__name__}, not neuraloperator's SpectralConv: "
                             "physguard reads the kernel from its Fourier weights")
        skips = [blocks.fno_skips[i]] if blocks.fno_skips is not None else []
        if blocks.use_channel_mlp:
            if not isinstance(blocks.channel_mlp[i], ChannelMLP):
                raise ValueError(f"BOON cannot wrap this {name}: block {i}'s channel MLP is a "
                                 f"{type(blocks.channel_mlp[i]).__name__}, not "
                                 "neuraloperator's pointwise ChannelMLP")
            if blocks.channel_mlp_skips is not None:
                skips.append(blocks.channel_mlp_skips[i])
        for skip in skips:
            pointwise = isinstance(skip, pointwise_skip) and not (
                isinstance(skip, Flattened1dConv) and skip.conv.kernel_size != (1,))
            if not pointwise:
                raise ValueError(f"BOON cannot wrap this {name}: block {i} has a "
                                 f"{type(skip).__name__} skip; BOON needs pointwise skips "
                                 "(linear 1 x 1, identity or soft-gating): a skip that mixes "
                                 "grid points leaks the interior into the walls")
    for part in ("lifting", "projection"):
        if not isinstance(getattr(model, part), ChannelMLP):
            raise ValueError(f"BOON cannot wrap this {name}: its {part} is a "
                             f"{type(getattr(model, part)).__name__}, not neuraloperator's "
                             "pointwise ChannelMLP")
    embedding = model.positional_embedding
    if embedding is not None and not isinstance(embedding, GridEmbeddingND | GridEmbedding2D):
        raise ValueError(f"BOON cannot wrap this {name}: its positional embedding is a "
                         f"{type(embedding).__name__}; BOON supports the grid embedding or none")


def _skip_matrix(skip, channels: int, like: torch.Tensor) -> torch.Tensor:
    """The pointwise map ``W (C_out, C_in)`` of a block's skip (zero for no skip)."""
    from neuralop.layers.skip_connections import Flattened1dConv, SoftGating

    if skip is None:
        return like.new_zeros(channels, channels)
    if isinstance(skip, Flattened1dConv):
        return skip.conv.weight[..., 0].to(like.dtype)
    if isinstance(skip, SoftGating):
        return torch.diag(skip.weight.flatten().to(like.dtype))
    return torch.eye(channels, dtype=like.dtype, device=like.device)  # identity


def spectral_lattice(conv, x: torch.Tensor):
    """neuraloperator's ``SpectralConv`` on ``x (B, C, *grid)`` in physguard's lattice form:
    ``z = R . F x`` (``(*K, B, C_out)``), the weight ``(*K, C_in, C_out)`` in the complex dtype
    of ``x``, the signed kept frequencies and their ``rfftn`` positions (see
    :class:`~physguard.models.fno_nd.SpectralConvNd`). The bias is not included.

    Raises:
        ValueError: an odd grid, or no more points than the kept modes, on an axis other than
            the last (module docs).
    """
    grid = tuple(x.shape[2:])
    d = len(grid)
    w = conv.weight if torch.is_tensor(conv.weight) else conv.weight.to_tensor()
    # The modes neuraloperator keeps at this resolution (SpectralConv.forward, 2.0.0).
    fft_size = [*grid[:-1], grid[-1] // 2 + 1]
    starts = [top - min(size, m)
              for size, m, top in zip(fft_size, conv.n_modes, conv.max_n_modes, strict=True)]
    slices = [slice(None)] * (1 if conv.separable else 2)
    slices += [slice(s // 2, -s // 2) if s else slice(None) for s in starts[:-1]]
    slices.append(slice(None, -starts[-1]) if starts[-1] else slice(None))
    w = w[tuple(slices)].to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    if conv.separable:  # (C, *modes): a diagonal channel mix
        w = torch.diag_embed(w.movedim(0, -1)).movedim(-2, 0).movedim(-1, 1)
    kept = []
    for a, size in enumerate(w.shape[2:]):
        if a == d - 1:
            kept.append(torch.arange(size))
            continue
        if grid[a] % 2 or size >= grid[a]:
            raise ValueError(
                f"BOON on a neuraloperator FNO needs an even number of points, more than the "
                f"{size} kept modes, along grid axis {a}; got {grid[a]} (its SpectralConv "
                "is not a convolution along an odd axis: see physguard.boundary.neuralop_fno)")
        half = size // 2
        k = torch.cat([torch.arange(half + 1), torch.arange(-half, 0)])
        index = torch.where(k <= size - 1 - half, k + half, size)  # ``size``: a zero slice
        pad = w.new_zeros(*w.shape[:2 + a], 1, *w.shape[3 + a:])
        w = torch.cat([w, pad], dim=2 + a).index_select(2 + a, index.to(w.device))
        kept.append(k)
    weight = w.permute(*range(2, 2 + d), 0, 1).contiguous()
    positions = SpectralConvNd.positions(kept, grid)
    z = lattice_mix(SpectralConvNd.spectrum(x, positions), weight)
    return z, weight, kept, positions


class NeuralopFNO(nn.Module):
    """A ``neuralop.models.FNO`` as a physguard operator: the model's forward pass with BOON's
    per-block ``correction`` and ``layer_hook`` (used by :class:`physguard.BOON`; users pass the
    neuraloperator model to ``BOON`` directly).

    Args:
        model: the ``neuralop.models.FNO`` (1-D or 2-D); its parameters are shared.
        domain: ``((a, b),)`` in 1-D or ``((ax, bx), (ay, by))`` in 2-D: the interval each grid
            axis spans, **both ends included** (``h = (b - a) / (N - 1)``, the spacing of the
            Neumann stencils); default the unit interval per axis. It does not change the
            model (neuraloperator's grid embedding has its own coordinates).

    Shapes: ``(B, in_channels, *grid) -> (B, out_channels, *grid)``.

    Raises:
        ValueError: a configuration that breaks the correction (module docs) or a bad domain.
    """

    def __init__(self, model, domain=None):
        super().__init__()
        _refuse(model)
        self.model = model
        d = model.n_dim
        domain = ((0.0, 1.0),) * d if domain is None else domain
        try:
            pairs = tuple((float(a), float(b)) for a, b in domain)
        except (TypeError, ValueError) as err:
            raise ValueError(f"domain must be {d} intervals ((a, b), ...), got {domain!r}") \
                from err
        if len(pairs) != d or not all(math.isfinite(a + b) and b > a for a, b in pairs):
            raise ValueError(f"domain must be {d} finite intervals (a, b) with b > a, got "
                             f"{domain!r}")
        #: ``(a, b)`` in 1-D (as :class:`~physguard.FNO1d`), the pairs in 2-D (as ``FNO2d``).
        self.domain = pairs[0] if d == 1 else pairs
        self.n_dims = d
        self.in_channels, self.out_channels = model.in_channels, model.out_channels

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype inputs must have: the lifting's (float32, or float64 after ``.double()``)."""
        return next(self.model.lifting.parameters()).dtype

    def check_input(self, u, n_grid_dims: int | None = None) -> None:
        check_operator_input(self, u, self.n_dims if n_grid_dims is None else n_grid_dims)

    def forward(self, u: torch.Tensor, correction=None, layer_hook=None) -> torch.Tensor:
        """The model's forward pass on ``u (B, in_channels, *grid)``, each block corrected by
        ``correction`` (a :class:`~physguard.boundary.walls.WallCorrection`) and followed by
        ``layer_hook``."""
        self.check_input(u)
        model = self.model
        x = u if model.positional_embedding is None else model.positional_embedding(u)
        x = model.lifting(x)
        for i in range(model.fno_blocks.n_layers):
            x = self._block(x, i, correction)
            if layer_hook is not None:
                x = layer_hook(x)
        return model.projection(x)

    def _block(self, x: torch.Tensor, i: int, correction) -> torch.Tensor:
        """One FNO block as ``FNOBlocks.forward`` (post- or pre-activation), its kernel
        ``S + W`` corrected on the walls."""
        blocks = self.model.fno_blocks
        last = i == blocks.n_layers - 1
        if blocks.preactivation:
            x = blocks.non_linearity(x)
        conv = blocks.convs[i]
        skip = blocks.fno_skips[i] if blocks.fno_skips is not None else None
        kernel_input = x
        if correction is None and x.dtype == torch.float32:
            out = conv(x)  # the model's own layer (any grid: periodic walls need no kernel)
        else:
            z, weight, kept, positions = spectral_lattice(conv, x)
            if correction is not None:
                w_skip = _skip_matrix(skip, x.shape[1], x)
                changes, z = correction.correct(w_skip, x, weight, z, kept)
                # The kernel S + W sees the input corrected on the walls; the channel MLP's
                # skip (outside the kernel) keeps the block's own input, so that its wall
                # values are the wall inputs' alone.
                kernel_input = x + correction.dense(x, changes)
            out = SpectralConvNd.synthesize(z, positions, tuple(x.shape[2:])).to(x.dtype)
            if conv.bias is not None:
                out = out + conv.bias.to(x.dtype)
        if skip is not None:
            out = out + skip(kernel_input)
        if not last:
            out = blocks.non_linearity(out)
        if blocks.use_channel_mlp:
            mlp = blocks.channel_mlp[i](out)
            if blocks.channel_mlp_skips is not None:
                mlp = mlp + blocks.channel_mlp_skips[i](x)
            out = mlp
        if not last and not blocks.preactivation:  # (twice without a channel MLP, as there)
            out = blocks.non_linearity(out)
        return out
