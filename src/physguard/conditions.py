"""Boundary conditions, the bottom floor of physguard: every layer that speaks of walls
(generators, readers, constraint rows, BOON, metrics, experiments) uses these objects; strings
(``"dirichlet"``, ``"neumann:0"``) appear only at the edges (CLI, files) and become objects through
:func:`condition`. This module imports nothing from physguard.

* :class:`Dirichlet`, :class:`Neumann`, :class:`Periodic`: small frozen dataclasses;
* :func:`one_sided_stencil`: the Neumann stencils;
* the wall table :data:`WALLS` / :data:`AXIS_WALLS` / :data:`WALL_AXIS`: ``left`` / ``right``
  on x, ``bottom`` / ``top`` on y;
* :func:`wall_residuals`: the signed violation of every wall's condition, in any dimension.

Values may a Python scalar, a per-sample tensor ``(B,)``, or a tensor that broadcasts to the
boundary slice of the output, e.g. ``(B, C)`` for an :class:`~physguard.FNO1d` output
``(B, C, N)`` or ``(B, C, T)`` / ``(B, T)`` (per time step) for a space-time output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["AXIS_WALLS", "WALLS", "WALL_AXIS", "BoundaryCondition", "Dirichlet", "Neumann",
           "Periodic", "broadcast_to_boundary", "condition", "one_sided_stencil",
           "wall_residuals"]

#: The walls of a domain of 1 or 2 space dimensions, in physguard's order.
WALLS = ("left", "right", "bottom", "top")
#: The two walls of each space axis (low end, high end).
AXIS_WALLS = {"x": ("left", "right"), "y": ("bottom", "top")}
#: The space axis (0: x, 1: y) and end (0: low, -1: high) of each wall.
WALL_AXIS = {"left": (0, 0), "right": (0, -1), "bottom": (1, 0), "top": (1, -1)}

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


_KINDS = {"dirichlet": Dirichlet, "neumann": Neumann, "periodic": Periodic}


def condition(kind: str, value=0.0, order: int = 2) -> BoundaryCondition:
    """The condition object of a kind named by a string (the edge of the library: CLI
    arguments, file attributes).

    Args:
        kind: ``"dirichlet"``, ``"neumann"`` or ``"periodic"`` (any case).
        value: the Dirichlet value or the Neumann flux (a scalar or tensor, see the module
            docstring); ignored for ``"periodic"``.
        order: the Neumann stencil's order (2 or 3).

    Raises:
        ValueError: an unknown kind, a bad value or order.
    """
    name = str(kind).strip().lower()
    if name not in _KINDS:
        raise ValueError(f"unknown boundary condition {kind!r}: use one of {sorted(_KINDS)}")
    if name == "periodic":
        return Periodic()
    return Dirichlet(value) if name == "dirichlet" else Neumann(value, order)


def _end_derivative(field: torch.Tensor, axis: int, end: int, h: float,
                    order: int) -> torch.Tensor:
    """``du/dx`` along ``axis`` (in the +axis direction) at its low (``end = 0``) or high
    (``-1``) end, by the one-sided stencil of ``order``."""
    stencil = one_sided_stencil(order)
    moved = field.movedim(axis, -1)
    if moved.shape[-1] < len(stencil):
        raise ValueError(f"a Neumann stencil of order {order} needs {len(stencil)} points "
                         f"along the wall normal, got {moved.shape[-1]}")
    points = moved[..., :len(stencil)] if end == 0 else moved.flip(-1)[..., :len(stencil)]
    coefficients = torch.as_tensor(stencil, dtype=field.dtype, device=field.device)
    derivative = (points * coefficients).sum(-1) / h
    return derivative if end == 0 else -derivative


def wall_residuals(field: torch.Tensor, conditions: dict, spacing) -> dict[str, torch.Tensor]:
    """Signed violation of each wall's condition along the wall, in 1-D or 2-D.

    Dirichlet ``u - value``; Neumann ``du/dn - flux`` with the condition's one-sided stencil
    along the wall's axis (the derivative in the +axis direction, as BOON's ``flux``);
    periodic ``u(low end) - u(high end)`` (the same for both walls of the axis).
    Differentiable.

    Args:
        field: ``(..., *space)``, ``len(space) == len(spacing)`` (1 or 2; the last axes are
            x, then y).
        conditions: ``{wall: condition}`` for any of the walls of :data:`WALLS` that the
            dimension has (1-D: ``left``, ``right``); a wall left out is not checked.
        spacing: the grid spacing per space axis (a float for 1-D), units of length.

    Returns:
        ``{wall: residual}``, each ``field``'s shape without the wall's axis; a condition's
        value broadcasts against it (a scalar, or e.g. ``(B, C, N_wall)``).

    Raises:
        ValueError: an unknown wall, a wall the dimension does not have, a condition that is
            not a :class:`Dirichlet` / :class:`Neumann` / :class:`Periodic`, or too few points
            for a stencil.
    """
    spacing = (spacing,) if isinstance(spacing, (int, float)) else tuple(spacing)
    dim = len(spacing)
    if dim not in (1, 2) or field.dim() < dim:
        raise ValueError(f"need 1 or 2 space axes and a field with at least that many, got "
                         f"spacing {spacing} and a field of shape {tuple(field.shape)}")
    out = {}
    for wall, cond in conditions.items():
        if wall not in WALL_AXIS or WALL_AXIS[wall][0] >= dim:
            raise ValueError(f"no wall {wall!r} in {dim}-D: use "
                             f"{[w for w in WALLS if WALL_AXIS[w][0] < dim]}")
        axis_index, end = WALL_AXIS[wall]
        axis = field.dim() - dim + axis_index
        if isinstance(cond, Periodic):
            out[wall] = field.select(axis, 0) - field.select(axis, -1)
        elif isinstance(cond, Dirichlet):
            out[wall] = field.select(axis, end) - torch.as_tensor(
                cond.value, dtype=field.dtype, device=field.device)
        elif isinstance(cond, Neumann):
            out[wall] = _end_derivative(field, axis, end, float(spacing[axis_index]),
                                        cond.order) - torch.as_tensor(
                cond.flux, dtype=field.dtype, device=field.device)
        else:
            raise ValueError(f"the condition of wall {wall!r} must be Dirichlet, Neumann or "
                             f"Periodic, got {cond!r}")
    return out
