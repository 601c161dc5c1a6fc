"""The boundary block's relative Tikhonov shift and its solve, shared by the 1-D correction
(:mod:`physguard.boundary.boon`) and the wall correction (:mod:`physguard.boundary.walls`)."""

from __future__ import annotations

import torch

#: Relative Tikhonov shift of a boundary block: ``A + SHIFT * scale * I`` (sign-safe pivots).
SHIFT = 1e-7



def shifted(A: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``A + SHIFT * magnitude * I`` on the last two dims; an all-zero block (zero kernel
    weights) is shifted by ``SHIFT`` instead. ``magnitude`` is detached (a scale, not a
    path for gradients)."""
    scale = magnitude.detach()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return A + SHIFT * scale * torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)


def solve(A: torch.Tensor, rhs: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
    """``A^-1 rhs`` for a shifted boundary block, with a specific error if it is singular.

    ``damping > 0``: the damped least-squares solution ``(A^H A + lam^2 I)^-1 A^H rhs``
    instead, ``lam = damping * ||A||_F / sqrt(n)`` (the block's RMS singular value, detached:
    a scale, not a path for gradients), which bounds the solution by ``|rhs| / (2 lam)``
    where ``A`` is nearly singular (:class:`physguard.BOON`'s ``damping``).

    Raises:
        ValueError: the block is singular (non-finite or degenerate weights).
    """
    try:
        if damping > 0:
            lam = damping * torch.linalg.matrix_norm(A).detach() / A.shape[-1] ** 0.5
            AH = A.mH
            eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
            return torch.linalg.solve(AH @ A + (lam ** 2)[..., None, None] * eye, AH @ rhs)
        return torch.linalg.solve(A, rhs)
    except torch.linalg.LinAlgError as err:
        raise ValueError("the boundary block of a kernel layer is singular even after the "
                         f"relative shift {SHIFT:g} (non-finite or degenerate weights?): "
                         f"{err}") from err


def solve_operator(A: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
    """The matrix ``M`` with ``M rhs == solve(A, rhs, damping)`` for every ``rhs`` (to
    round-off): ``A^-1``, or ``(A^H A + lam^2 I)^-1 A^H`` with ``damping``. Kept by an
    operator in evaluation (no autograd) whose weights do not change between calls, such as a
    rollout's steps (:func:`block_cache`).

    Raises:
        ValueError: the block is singular (as :func:`solve`).
    """
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    return solve(A, eye.expand(A.shape), damping)


def block_cache(layer: torch.nn.Module, key: tuple) -> tuple[dict, tuple] | None:
    """The store of a layer's factorised wall blocks, and the full key of one: ``key`` plus
    the version of every parameter of ``layer`` (an optimiser step or ``load_state_dict``
    bumps it, so a stale block is never read). ``None`` while autograd records (training:
    the blocks must carry gradients, and they change every step)."""
    if torch.is_grad_enabled():
        return None
    store = layer.__dict__.setdefault("_boon_blocks", {})
    versions = tuple((p.data_ptr(), p._version) for p in layer.parameters())
    full = (key, versions)
    if full not in store and len(store) >= 8:  # one entry per wall set and resolution
        store.clear()
    return store, full

