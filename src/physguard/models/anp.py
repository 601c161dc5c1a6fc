"""Attentive neural process (ANP), the black box of ProbConserv's experiments.

Kim et al., "Attentive Neural Processes", ICLR 2019 (arXiv 1901.05761), Sec. 3 and Fig. 2, with
the sizes of Hansen et al., ICML 2023, App. C (hidden size 128):

* deterministic path: an MLP encodes each context pair ``(x_i, y_i)``, one multi-head
  self-attention layer mixes them, and multi-head cross-attention with queries from the target
  inputs and keys from the context inputs gives a target-specific representation ``r*``;
* latent path: an MLP encodes the pairs, mean pooling and an MLP give ``q(z | C) =
  N(mu_z, sigma_z^2)`` with ``sigma_z = 0.1 + 0.9 sigmoid(.)``;
* decoder: an MLP maps ``(x*, r*, z)`` to a Gaussian ``N(mu, sigma^2)`` per target point with a
  variance floor ``sigma = min_std + (1 - min_std) softplus(.)``.

Training maximises the evidence lower bound ``E_{q(z|C,T)} log p(y_T | x_T, r*, z) -
KL(q(z|C,T) || q(z|C))`` (Kim et al. Eq. 3), with the context included in the targets.
Inputs ``x`` are the ``(t, x)`` coordinates scaled to ``[0, 1]`` by the caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..constraints import Gaussian

__all__ = ["ANP"]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class ANP(nn.Module):
    """Attentive neural process for scalar fields of ``x_dim`` input coordinates.

    Args:
        x_dim: number of input coordinates (2 for ``(t, x)``).
        hidden: width of every layer and of the latent variable (paper: 128).
        n_heads: attention heads (must divide ``hidden``).
        min_std: floor of the predictive standard deviation (units of ``u``).

    Shapes: context inputs ``(B, Nc, x_dim)``, context values ``(B, Nc)``, target inputs
    ``(B, Nt, x_dim)``; see :meth:`elbo_loss` and :meth:`predict`.
    """

    def __init__(self, x_dim: int = 2, hidden: int = 128, n_heads: int = 8,
                 min_std: float = 1e-3):
        super().__init__()
        if hidden % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide hidden={hidden}")
        if not 0 < min_std < 1:
            raise ValueError(f"min_std must lie in (0, 1), got {min_std}")
        self.config = {"x_dim": x_dim, "hidden": hidden, "n_heads": n_heads, "min_std": min_std}
        self.min_std = min_std
        h = hidden
        self.det_encoder = _mlp([x_dim + 1, h, h, h])
        self.self_attention = nn.MultiheadAttention(h, n_heads, batch_first=True)
        self.self_norm = nn.LayerNorm(h)
        self.input_embedding = _mlp([x_dim, h, h])
        self.cross_attention = nn.MultiheadAttention(h, n_heads, batch_first=True)
        self.latent_encoder = _mlp([x_dim + 1, h, h, h])
        self.latent_head = _mlp([h, h, 2 * h])
        self.decoder = _mlp([x_dim + 2 * h, h, h, h, 2])

    # -- paths ------------------------------------------------------------------------------
    def _latent(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None):
        s = self.latent_encoder(torch.cat([x, y.unsqueeze(-1)], dim=-1))
        if mask is None:
            pooled = s.mean(dim=1)
        else:
            w = mask.to(s.dtype).unsqueeze(-1)
            pooled = (s * w).sum(1) / w.sum(1).clamp(min=1)
        mu, raw = self.latent_head(pooled).chunk(2, dim=-1)
        return torch.distributions.Normal(mu, 0.1 + 0.9 * torch.sigmoid(raw))

    def _deterministic(self, xc: torch.Tensor, yc: torch.Tensor, xt: torch.Tensor):
        r = self.det_encoder(torch.cat([xc, yc.unsqueeze(-1)], dim=-1))
        attended, _ = self.self_attention(r, r, r, need_weights=False)
        r = self.self_norm(r + attended)
        keys = self.input_embedding(xc)
        queries = self.input_embedding(xt)
        out, _ = self.cross_attention(queries, keys, r, need_weights=False)
        return out

    def _decode(self, xt: torch.Tensor, r: torch.Tensor, z: torch.Tensor):
        z = z.unsqueeze(-2).expand(*r.shape[:-1], z.shape[-1])
        raw = self.decoder(torch.cat([xt, r, z], dim=-1))
        mean = raw[..., 0]
        std = self.min_std + (1 - self.min_std) * F.softplus(raw[..., 1])
        return mean, std

    # -- training ---------------------------------------------------------------------------
    def elbo_loss(self, xc: torch.Tensor, yc: torch.Tensor, xt: torch.Tensor,
                  yt: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO per target point, averaged over the batch (the training loss).

        Args:
            xc: ``(B, Nc, x_dim)``, yc: ``(B, Nc)`` context; xt: ``(B, Nt, x_dim)``,
                yt: ``(B, Nt)`` targets (should include the context points).

        Returns:
            ``(loss, parts)`` with the scalar loss and ``{"nll": ..., "kl": ...}`` per point.
        """
        prior = self._latent(xc, yc)
        posterior = self._latent(xt, yt)
        z = posterior.rsample()
        r = self._deterministic(xc, yc, xt)
        mean, std = self._decode(xt, r, z)
        nll = -torch.distributions.Normal(mean, std).log_prob(yt).mean()
        kl = torch.distributions.kl_divergence(posterior, prior).sum(-1).mean() / xt.shape[1]
        return nll + kl, {"nll": float(nll.detach()), "kl": float(kl.detach())}

    def mean_at(self, xc: torch.Tensor, yc: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Predicted mean ``(B, Nt)`` at ``xt`` with ``z`` at the mean of ``q(z | C)``.

        Differentiable in ``xt`` and the weights (used by physics penalties such as SoftC).
        """
        z = self._latent(xc, yc).loc
        mean, _ = self._decode(xt, self._deterministic(xc, yc, xt), z)
        return mean

    # -- prediction -------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, xc: torch.Tensor, yc: torch.Tensor, xt: torch.Tensor, n_samples: int = 16,
                generator: torch.Generator | None = None, chunk_size: int = 8192) -> Gaussian:
        """Predictive distribution at target inputs, one Gaussian per latent sample.

        Args:
            xc: ``(B, Nc, x_dim)``, yc: ``(B, Nc)`` context; xt: ``(B, Nt, x_dim)`` targets.
            n_samples: latent samples ``S`` drawn from ``q(z | C)``.
            generator: a CPU generator for the latent samples (any device for the model).
            chunk_size: target points per forward pass (memory bound).

        Returns:
            :class:`~physguard.Gaussian` with diagonal covariance and mean ``(S, B, Nt)``:
            the mixture components. Collapse them with :func:`physguard.moment_match`
            (``dim=0``) for the moment-matched predictive, or apply a constraint per component
            first (as ProbConserv does).
        """
        prior = self._latent(xc, yc)
        # Drawn on the CPU (where the generator lives), so a seed gives the same latent
        # samples on every device.
        eps = torch.randn((n_samples, *prior.loc.shape), generator=generator,
                          dtype=prior.loc.dtype).to(prior.loc.device)
        z = prior.loc + prior.scale * eps  # (S, B, h)
        means, stds = [], []
        for start in range(0, xt.shape[1], chunk_size):
            x_chunk = xt[:, start:start + chunk_size]
            r = self._deterministic(xc, yc, x_chunk)  # independent of z: computed once
            mean, std = self._decode(x_chunk.expand(n_samples, *x_chunk.shape),
                                     r.expand(n_samples, *r.shape), z)
            means.append(mean)
            stds.append(std)
        mean, std = torch.cat(means, dim=-1), torch.cat(stds, dim=-1)
        return Gaussian(mean, var=std.square())
