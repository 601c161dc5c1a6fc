"""Small argument checks shared by the public functions (private module).

Every check raises :class:`ValueError` (or :class:`TypeError` for a non-tensor) whose message
names the offending argument and its shape, so a user can find the bad input without a debugger.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_float_tensor", "check_finite", "check_broadcastable", "check_counts",
           "check_count", "check_seed", "MAX_SEED",
           "check_in_domain", "check_times"]


def as_float_tensor(name: str, value, *, min_dim: int = 0) -> torch.Tensor:
    """Return ``value`` as a floating-point tensor, or raise naming ``name``.

    Python scalars, lists and NumPy arrays are converted (to float64 when they are not already
    floating point); existing floating tensors keep their dtype and device.
    """
    if not isinstance(value, torch.Tensor):
        try:
            # Through NumPy so that Python floats become float64, not torch's default float32.
            value = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"{name} must be a tensor or array-like, got {type(value).__name__}"
            ) from err
    if not torch.is_floating_point(value):
        if value.dtype in (torch.bool,) or torch.is_complex(value):
            raise TypeError(f"{name} must be real floating point, got dtype {value.dtype}")
        value = value.to(torch.float64)
    if value.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s), got shape {tuple(value.shape)}"
        )
    return value


def check_finite(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinity, naming the first bad index."""
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        kind = "NaN" if bool(torch.isnan(value).any()) else "infinite"
        raise ValueError(
            f"{name} (shape {tuple(value.shape)}) holds {kind} values, first at index {index}"
        )


def check_in_domain(name: str, value: torch.Tensor, domain: tuple[float, float], owner) -> None:
    """Raise ``ValueError`` for points outside ``domain`` (by more than ``1e-12`` of its length),
    naming the first one and ``owner``: closed-form solutions are not extrapolated."""
    a, b = domain
    tol = 1e-12 * (b - a)
    outside = (value < a - tol) | (value > b + tol)
    if bool(outside.any()):
        index = tuple(int(i) for i in torch.nonzero(outside)[0])
        where = str(list(index)) if index else ""
        raise ValueError(f"{name}{where} = {float(value[index]):g} lies outside the "
                         f"domain [{a:g}, {b:g}] of {owner!r}")


def check_times(t) -> torch.Tensor:
    """``t`` as a finite float64 tensor of times ``>= 0``, or a ``ValueError`` naming it."""
    t = as_float_tensor("t", t).to(torch.float64)
    check_finite("t", t)
    if bool((t < 0).any()):
        raise ValueError(f"t must be >= 0, got min {float(t.min()):.3g}")
    return t


def check_broadcastable(names: tuple[str, str], a: torch.Size, b: torch.Size) -> torch.Size:
    """Broadcast two batch shapes, raising ``ValueError`` that names both arguments."""
    try:
        return torch.broadcast_shapes(a, b)
    except RuntimeError as err:
        raise ValueError(
            f"batch shapes of {names[0]} {tuple(a)} and {names[1]} {tuple(b)} do not broadcast"
        ) from err


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or a ``ValueError`` / ``TypeError`` naming ``name``
    (``2.5`` and ``True`` are not counts; ``3.0`` is 3)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(
            value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


#: The largest seed of every seed option (``--seed``, ``--extra-seeds``, the bench's seeds):
#: the 2-D generators seed each sample ``seed * 1_000_003 + i``, which must fit a 64-bit seed.
MAX_SEED = 2**32 - 1


def check_seed(seed, derived: int = 1_000_003) -> int:
    """``seed`` as an int whose derived per-sample seeds (``seed * derived + i``) fit a
    64-bit generator seed, or a ``ValueError`` naming it."""
    seed = check_count("seed", seed, 0)
    if seed * derived >= 2**63 - 2**40:
        raise ValueError(f"seed must lie in 0 .. {(2**63 - 2**40) // derived} (its samples' "
                         f"seeds are seed * {derived} + i), got {seed}")
    return seed


def check_counts(config, exempt: tuple[str, ...] = ("seed",)) -> None:
    """Raise ``ValueError`` for any integer field of a dataclass ``config`` below 1.

    Sizes, epochs and counts must be positive; fields in ``exempt`` (the seed) are skipped.
    """
    import dataclasses

    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, int) and not isinstance(value, bool) and f.name not in exempt \
                and value < 1:
            raise ValueError(f"{f.name} must be >= 1, got {value}")
