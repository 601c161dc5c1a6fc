"""Boundary conditions as small frozen objects: Dirichlet, Neumann, Periodic.

Values may be a Python scalar, a per-sample tensor ``(B,)``, or a tensor that broadcasts to the
boundary slice of the output, e.g. ``(B, C)`` for an :class:`~physguard.FNO1d` output
``(B, C, N)`` or ``(B, C, T)`` / ``(B, T)`` (per time step) for a space-time output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Dirichlet", "Neumann", "Periodic", "BoundaryCondition", "one_sided_stencil"]

# Forward one-sided first-derivative stencils at the left end: du/dx(x_0) ~ sum_i c_i u_i / h.
_STENCILS = {
    2: (-1.5, 2.0, -0.5),  # (-3 u0 + 4 u1 - u2) / (2h), second order
    3: (-11 / 6, 3.0, -1.5, 1 / 3),  # (-11 u0 + 18 u1 - 9 u2 + 2 u3) / (6h), third order
}


def one_sided_stencil(order: int) -> tuple[float, ...]:
    """Coefficients ``c`` of ``du/dx(x_0) ~ sum_i c_i u(x_i) / h`` (order 2 or 3).

    At the right end the mirrored stencil applies: ``du/dx(x_N) ~ -sum_i c_i u(x_{N-i}) / h``.
    """
    if order not in _STENCILS:
        raise ValueError(f"Neumann order must be one of {sorted(_STENCILS)}, got {order}")
    return _STENCILS[order]


def _as_value(name: str, value) -> float | torch.Tensor:
    if isinstance(value, torch.Tensor):
        if not torch.is_floating_point(value):
            raise TypeError(f"{name} must be floating point, got {value.dtype}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
        return value
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def broadcast_to_boundary(value, boundary: torch.Tensor) -> torch.Tensor:
    """Broadcast a condition's value to a boundary slice ``(B, C, *rest)``.

    A scalar fills everything; a ``(B,)`` tensor is per sample; a tensor missing only the
    channel dim (``(B, *rest)``) is shared by all channels; otherwise usual broadcasting.
    """
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=torch.float64)
    cast = value.to(dtype=boundary.dtype, device=boundary.device)
    if not bool(torch.isfinite(cast).all()):
        limit = torch.finfo(boundary.dtype).max
        raise ValueError(f"a boundary value of size {float(value.abs().max()):.3g} overflows "
                         f"the output dtype {boundary.dtype} (max {limit:.3g}); use float64 "
                         "(the model's .double() or BOON's output_dtype)")
    value = cast
    if value.dim() == 0:
        return value.expand_as(boundary)
    if value.dim() == 1 and value.shape[0] == boundary.shape[0] and boundary.dim() > 1:
        value = value.reshape(-1, *([1] * (boundary.dim() - 1)))
    elif value.dim() == boundary.dim() - 1 and value.dim() >= 1 \
            and value.shape[0] == boundary.shape[0]:
        value = value.unsqueeze(1)
    try:
        return value.expand_as(boundary)
    except RuntimeError as err:
        raise ValueError(
            f"boundary value of shape {tuple(value.shape)} does not broadcast to the boundary "
            f"slice {tuple(boundary.shape)}"
        ) from err


@dataclass(frozen=True)
class Dirichlet:
    """``u = value`` at the boundary (units of ``u``)."""

    value: float | torch.Tensor = 0.0

    def __post_init__(self):
        object.__setattr__(self, "value", _as_value("Dirichlet value", self.value))


@dataclass(frozen=True)
class Neumann:
    """``du/dx = flux`` at the boundary, derivative in the +x direction (units of ``u``/length).

    Enforced with a one-sided finite-difference stencil of the given order built from the actual
    grid spacing: order 2 is ``(-3u_0 + 4u_1 - u_2)/(2h)`` at the left end and
    ``(3u_N - 4u_{N-1} + u_{N-2})/(2h)`` at the right end; order 3 the 4-point stencil.
    """

    flux: float | torch.Tensor = 0.0
    order: int = 2

    def __post_init__(self):
        object.__setattr__(self, "flux", _as_value("Neumann flux", self.flux))
        one_sided_stencil(self.order)


@dataclass(frozen=True)
class Periodic:
    """``u(a) = u(b)``: both ends of the grid are the same physical point."""


BoundaryCondition = Dirichlet | Neumann | Periodic
