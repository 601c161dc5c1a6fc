"""Boundary conditions as linear constraint rows, to stack with the conservation rows.

A Dirichlet value ``u_p = g`` and a one-sided Neumann stencil ``sum_k c_k u_{p + k n} / h = f``
(``n`` the wall normal's grid direction) are linear in ``u``: rows of a
:class:`~physguard.LinearConstraint`, built here from the same :class:`~physguard.Dirichlet` /
:class:`~physguard.Neumann` / :class:`~physguard.Periodic` objects that :class:`~physguard.BOON`
takes, with the same stencils (``physguard.boundary.one_sided_stencil``) and the same corner
rules, so a BOON output and a ProbConserv posterior meet the very same discrete conditions.
Stacked with the mass rows (:func:`stack_constraints`), one :func:`~physguard.probconserv`
update gives a posterior mean that meets every boundary condition and the conservation law
exactly.

**Why conditioning on the walls, when BOON members already meet them.** Each BOON member's
output meets the conditions exactly, so the members' spread has no component that violates
them; but a usable Gaussian also has a diagonal part (a fitted noise level, see
:mod:`physguard.models.ensemble`), and conditioning on the mass row moves the mean along
``Sigma G^T``, whose diagonal part has entries on the wall points: the mass update of a
BOON-ensemble alone moves the boundary values off their conditions. Conditioning on both row
sets at once keeps both.

**Corners (2-D).** One row per wall point, and a corner point belongs to one wall only, chosen
as BOON's exact output does (``physguard.boundary.walls``): Dirichlet beats Neumann beats
Periodic; between equals the y wall (``bottom``/``top``) wins. A periodic axis gives rows
``u(first) - u(last) = 0`` for every line whose two ends no other wall owns.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..conditions import WALLS, Dirichlet, Neumann, Periodic, one_sided_stencil
from .linear import LinearConstraint

__all__ = ["boundary_constraint", "block_constraints", "stack_constraints",
           "trapezoid_weights_2d"]

_RANK = {Periodic: 0, Neumann: 1, Dirichlet: 2}
_WALLS = WALLS


def _uniform_spacing(name: str, x) -> tuple[torch.Tensor, float]:
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 1 or x.shape[0] < 4:
        raise ValueError(f"{name} must be a 1-D grid of at least 4 points, got shape "
                         f"{tuple(x.shape)}")
    dx = torch.diff(x)
    if not bool((dx > 0).all()) or float((dx - dx.mean()).abs().max()) > 1e-9 * float(dx.mean()):
        raise ValueError(f"{name} must be uniform and increasing (the stencils use one spacing)")
    return x, float(dx.mean())


def _value(condition, n_wall: int | None) -> torch.Tensor:
    """The condition's value as float64 ``(...)`` (1-D) or ``(..., n_wall)`` (2-D)."""
    value = condition.value if isinstance(condition, Dirichlet) else condition.flux
    value = torch.as_tensor(value, dtype=torch.float64)
    if n_wall is None:
        return value
    if value.dim() == 0:
        return value.expand(n_wall)
    if value.shape[-1] != n_wall:
        raise ValueError(f"a 2-D wall value must be a scalar or have N_wall = {n_wall} "
                         f"entries on its last axis, got shape {tuple(value.shape)}")
    return value


def _check_condition(name: str, condition) -> None:
    if condition is not None and not isinstance(condition, (Dirichlet, Neumann, Periodic)):
        raise TypeError(f"{name} must be Dirichlet, Neumann, Periodic or None, got "
                        f"{type(condition).__name__}")


def _check_periodic_pair(first: str, second: str, conditions: dict) -> None:
    a, b = isinstance(conditions[first], Periodic), isinstance(conditions[second], Periodic)
    if a != b:
        raise ValueError(f"Periodic must be given on both {first} and {second}")


def boundary_constraint(grid, left=None, right=None, bottom=None, top=None,
                        noise_var=0.0, sparse: bool = False) -> LinearConstraint:
    """The boundary conditions on a uniform grid as a :class:`LinearConstraint`.

    Args:
        grid: ``x (N,)`` for a 1-D field, or ``(x (Nx,), y (Ny,))`` for a 2-D field flattened
            row-major (point ``i * Ny + j`` is ``(x_i, y_j)``, as ``field.flatten(-2)``).
            Uniform, at least 4 points per axis (units of length).
        left, right: the conditions at ``x = x_0`` and ``x = x_last``; ``bottom``, ``top``
            (2-D only) at ``y = y_0`` and ``y = y_last``. Each ``Dirichlet``, ``Neumann``
            (``flux`` = derivative along the axis, the stencil of its ``order``), ``Periodic``
            (on both walls of an axis) or ``None``. Values: 1-D a scalar or a tensor of the
            predictions' batch shape ``(...)`` (e.g. ``(n, T)``); 2-D a scalar or ``(...,
            N_wall)`` (one value per wall point; ``N_wall = Ny`` on x walls, ``Nx`` on y walls).
        noise_var: as :class:`LinearConstraint` (0: exact).
        sparse: store ``G`` as a SciPy CSR matrix (a 2-D grid of ``256^2`` points has about
            ``10^3`` wall rows: dense, half a GiB).

    Returns:
        ``LinearConstraint`` with ``G (M, N)`` (one row per constrained wall point; a
        periodic pair is one row) and ``b (..., M)``.

    Raises:
        ValueError: a non-uniform or too small grid, no condition at all, a periodic
            condition on one wall of an axis only, ``bottom``/``top`` for a 1-D grid, or wall
            values of the wrong length.
        TypeError: a condition that is not Dirichlet, Neumann, Periodic or None.
    """
    conditions = dict(left=left, right=right, bottom=bottom, top=top)
    for name, condition in conditions.items():
        _check_condition(name, condition)
    if all(c is None for c in conditions.values()):
        raise ValueError("boundary_constraint needs at least one condition")
    two_d = isinstance(grid, (tuple, list))
    if not two_d and (bottom is not None or top is not None):
        raise ValueError("bottom / top need a 2-D grid (x, y)")
    _check_periodic_pair("left", "right", conditions)
    if two_d:
        _check_periodic_pair("bottom", "top", conditions)
        rows, values = _rows_2d(grid, conditions)
    else:
        rows, values = _rows_1d(grid, conditions)
    G = _matrix(rows, n_points=int(np.prod([len(a) for a in grid])) if two_d else len(grid),
                sparse=sparse)
    batch = torch.broadcast_shapes(*(v.shape for v in values))
    b = torch.stack([v.expand(batch) for v in values], dim=-1)
    return LinearConstraint(G, b, noise_var=noise_var)


def _row(point: int, condition, step: int, h: float, sign: float) -> dict[int, float]:
    """The row of ``condition`` at flat index ``point`` as ``{column: value}``: a unit
    (Dirichlet) or the one-sided stencil along ``step`` (the flat offset of one grid step
    along the wall normal)."""
    if isinstance(condition, Dirichlet):
        return {point: 1.0}
    return {point + k * step: sign * c / h
            for k, c in enumerate(one_sided_stencil(condition.order))}


def _pair(first: int, last: int) -> dict[int, float]:
    return {first: 1.0, last: -1.0}


def _matrix(rows: list[dict[int, float]], n_points: int, sparse: bool):
    """The rows as a dense ``(M, N)`` float64 tensor or a CSR matrix."""
    r = np.concatenate([np.full(len(row), i) for i, row in enumerate(rows)])
    c = np.concatenate([list(row) for row in rows]).astype(np.int64)
    v = np.concatenate([list(row.values()) for row in rows])
    G = sp.csr_matrix((v, (r, c)), shape=(len(rows), n_points))
    return G if sparse else torch.from_numpy(G.toarray())


def _rows_1d(x, conditions: dict):
    x, h = _uniform_spacing("x", x)
    n = x.shape[0]
    rows, values = [], []
    if isinstance(conditions["left"], Periodic):
        return [_pair(0, n - 1)], [torch.zeros(())]
    for side, point, step, sign in (("left", 0, 1, 1.0), ("right", n - 1, -1, -1.0)):
        condition = conditions[side]
        if condition is None:
            continue
        rows.append(_row(point, condition, step, h, sign))
        values.append(_value(condition, None))
    return rows, values


def _owner(conditions: dict, x_wall: str, y_wall: str) -> str | None:
    """Which wall's row holds at the corner of ``x_wall`` and ``y_wall``."""
    cx, cy = conditions[x_wall], conditions[y_wall]
    if cx is None or cy is None:
        return x_wall if cy is None and cx is not None else (y_wall if cy is not None else None)
    return x_wall if _RANK[type(cx)] > _RANK[type(cy)] else y_wall


def _rows_2d(grid, conditions: dict):
    if len(grid) != 2:
        raise ValueError(f"a 2-D grid is (x, y), got {len(grid)} axes")
    x, hx = _uniform_spacing("x", grid[0])
    y, hy = _uniform_spacing("y", grid[1])
    nx, ny = x.shape[0], y.shape[0]

    def index(i, j):
        return i * ny + j

    owners = {}
    for xw, i in (("left", 0), ("right", nx - 1)):
        for yw, j in (("bottom", 0), ("top", ny - 1)):
            owners[(i, j)] = _owner(conditions, xw, yw)
    rows, values = [], []
    # (wall, points along it, fixed index, normal step, spacing, sign, value length)
    walls = {
        "left": ([(0, j) for j in range(ny)], (1, 0), hx, 1.0, ny),
        "right": ([(nx - 1, j) for j in range(ny)], (-1, 0), hx, -1.0, ny),
        "bottom": ([(i, 0) for i in range(nx)], (0, 1), hy, 1.0, nx),
        "top": ([(i, ny - 1) for i in range(nx)], (0, -1), hy, -1.0, nx),
    }
    for name in _WALLS:
        condition = conditions[name]
        if condition is None or isinstance(condition, Periodic):
            continue
        points, (di, dj), h, sign, length = walls[name]
        value = _value(condition, length)
        for k, (i, j) in enumerate(points):
            if owners.get((i, j), name) != name:
                continue
            rows.append(_row(index(i, j), condition, di * ny + dj, h, sign))
            values.append(value[..., k])
    # Corners held by a Dirichlet or Neumann row: a periodic pair through one is implied.
    owned = {p for p, w in owners.items()
             if w is not None and not isinstance(conditions[w], Periodic)}
    if isinstance(conditions["left"], Periodic):
        for j in range(ny):
            if (0, j) in owned or (nx - 1, j) in owned:
                continue
            rows.append(_pair(index(0, j), index(nx - 1, j)))
            values.append(torch.zeros(()))
    if isinstance(conditions["bottom"], Periodic):
        for i in range(nx):
            if (i, 0) in owned or (i, ny - 1) in owned:
                continue
            rows.append(_pair(index(i, 0), index(i, ny - 1)))
            values.append(torch.zeros(()))
    if not rows:
        raise ValueError("no boundary row to build")
    return rows, values


def stack_constraints(*constraints: LinearConstraint) -> LinearConstraint:
    """One :class:`LinearConstraint` holding the rows of all ``constraints`` in order.

    ``G``s are concatenated along the rows (batch dims broadcast), ``b``s likewise, and each
    constraint's ``noise_var`` is expanded to its own rows.

    Raises:
        ValueError: no constraints, or constraints on different numbers of points.
    """
    if not constraints:
        raise ValueError("stack_constraints needs at least one constraint")
    n = {c.n_points for c in constraints}
    if len(n) != 1:
        raise ValueError(f"constraints act on different numbers of points: {sorted(n)}")
    from .sparse import is_sparse, sparse_vstack

    if any(is_sparse(c.G) for c in constraints):
        G = sparse_vstack([c.G for c in constraints])
    else:
        batch_g = torch.broadcast_shapes(*(c.G.shape[:-2] for c in constraints))
        G = torch.cat([c.G.to(torch.float64).expand(*batch_g, *c.G.shape[-2:])
                       for c in constraints], dim=-2)
    return _with_rows(G, constraints)


def block_constraints(*constraints: LinearConstraint) -> LinearConstraint:
    """One constraint on the concatenation of several fields (``[u, v]`` flattened one after
    the other): ``G = blockdiag(G_1, G_2, ...)``, ``b`` and ``noise_var`` concatenated. For a
    velocity's two components with their own wall values. ``G``s without batch dims; the
    result is sparse if any input is.

    Raises:
        ValueError: no constraints, or a dense ``G`` with batch dims.
    """
    if not constraints:
        raise ValueError("block_constraints needs at least one constraint")
    from .sparse import is_sparse, sparse_vstack

    blocks = [c.G if is_sparse(c.G) else sparse_vstack([c.G]) for c in constraints]
    G = sp.block_diag(blocks, format="csr")
    if not any(is_sparse(c.G) for c in constraints):
        G = torch.from_numpy(G.toarray())
    return _with_rows(G, constraints)


def _with_rows(G, constraints) -> LinearConstraint:
    """``G`` with the constraints' ``b`` and ``noise_var`` concatenated in order (batch dims
    broadcast); one scalar noise variance when every row has the same (it broadcasts)."""
    batch = torch.broadcast_shapes(*(c.b.shape[:-1] for c in constraints))
    b = torch.cat([c.b.to(torch.float64).expand(*batch, c.b.shape[-1]) for c in constraints],
                  dim=-1)
    noise = torch.cat([c.noise_var.to(torch.float64).expand(*batch, c.n_constraints)
                       for c in constraints], dim=-1)
    if bool((noise == noise.reshape(-1)[0]).all()):
        noise = noise.reshape(-1)[0]
    return LinearConstraint(G, b, noise_var=noise)


def trapezoid_weights_2d(x, y) -> torch.Tensor:
    """Tensor-product trapezoid weights of an ``Nx x Ny`` grid, flattened row-major
    (``(Nx Ny,)``, float64, units of area): ``w[i * Ny + j] = wx_i wy_j``; they sum to the
    rectangle's area."""
    from .quadrature import trapezoid_weights

    return torch.outer(trapezoid_weights(x), trapezoid_weights(y)).reshape(-1)
