r"""Local conservation: one constraint row per control volume (sparse ``G``).

The ProbConserv paper conditions on one global integral per time; finite-volume methods keep
the balance of every cell. For an incompressible velocity ``(u, v)`` on an ``Nx x Ny`` node
grid, the balance of cell ``[x_i, x_{i+1}] x [y_j, y_{j+1}]`` is its net outflow through the
four faces, each face integral by the trapezoid rule on its two end nodes; divided by the
cell's area it is the cell's discrete divergence::

    D_ij = (u_{i+1,j} + u_{i+1,j+1} - u_{i,j} - u_{i,j+1}) / (2 hx)
         + (v_{i,j+1} + v_{i+1,j+1} - v_{i,j} - v_{i+1,j}) / (2 hy)        (units: 1 / time)

**Rank with wall rows.** With Dirichlet rows on every wall node of both components (no slip,
a moving lid), exactly two combinations of the cell rows are combinations of wall rows: their
sum (the net flux through the boundary) and their checkerboard sum ``sum (-1)^(i+j) D_ij`` (the
only other vector ``lambda`` with ``G_div^T lambda`` zero at every interior node: it must be
constant along both diagonals). Stacked as they are, the system is singular; with
``drop_implied=True`` the rows of the two last cells of the top row of cells (one of each
parity) are left out, and they then hold *automatically* whenever the walls are compatible:
zero net flux, and a zero checkerboard sum of the wall values. The lid-driven cavity's walls
(lid speed on the top wall's interior nodes, no slip elsewhere, corners at rest) meet the
second condition only when ``Nx`` is even: the checkerboard sum is then ``sum_{i=1}^{Nx-2}
(-1)^i = 0``. :func:`divergence_implied` returns both combinations so a caller can check them.

**The central stencil** (``stencil="central"``): the balance of the ``2 hx x 2 hy`` control
volume around each interior node, each face's flux by the midpoint rule::

    C_ij = (u_{i+1,j} - u_{i-1,j}) / (2 hx) + (v_{i,j+1} - v_{i,j-1}) / (2 hy),
           1 <= i <= Nx - 2, 1 <= j <= Ny - 2

It is the divergence of a vorticity-stream function solver's velocities (central differences
of ``psi``, as :class:`~physguard.LidDrivenCavity`), which vanishes for them at every interior
node to round-off, walls and corners included (the wall velocities equal the central
differences of ``psi = 0`` along the wall). The cell rows, by contrast, are far from zero for
such data on a coarse grid: 4 to 11 in units of ``U / L`` in the top row of cells, where the
lid's shear layer is not resolved (``benchmarks/results/uq_cavity.md``). With Dirichlet rows on
every wall node the central rows are independent when ``Nx`` and ``Ny`` are even (the vectors
``lambda`` with ``G^T lambda`` zero at every interior node must repeat every second node along
both axes and vanish next to a wall; an odd axis leaves the odd-odd sublattice free), so
nothing is dropped.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .linear import LinearConstraint

__all__ = ["divergence_constraint", "cell_divergence", "central_divergence",
           "divergence_implied", "DIVERGENCE_STENCILS"]

#: The discrete divergences :func:`divergence_constraint` builds (module docstring).
DIVERGENCE_STENCILS = ("cell", "central")


def _grid(x, y) -> tuple[int, int, float, float]:
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    for name, axis in (("x", x), ("y", y)):
        if axis.dim() != 1 or axis.shape[0] < 3:
            raise ValueError(f"{name} must be a 1-D grid of at least 3 nodes, got shape "
                             f"{tuple(axis.shape)}")
        step = torch.diff(axis)
        if not bool((step > 0).all()) or float((step - step.mean()).abs().max()) \
                > 1e-9 * float(step.mean()):
            raise ValueError(f"{name} must be uniform and increasing")
    return x.shape[0], y.shape[0], float(x[1] - x[0]), float(y[1] - y[0])


def _divergence_matrix(nx: int, ny: int, hx: float, hy: float) -> sp.csr_matrix:
    """``(Nx - 1)(Ny - 1) x 2 Nx Ny``: row ``i (Ny - 1) + j`` is ``D_ij``; columns are ``u``
    then ``v``, each flattened row-major (node ``i Ny + j``)."""
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="ij")
    cell = (i * (ny - 1) + j).ravel()
    node = lambda di, dj: ((i + di) * ny + (j + dj)).ravel()  # noqa: E731
    rows, cols, vals = [], [], []
    for (di, dj), su, sv in (((1, 0), 1, -1), ((1, 1), 1, 1), ((0, 0), -1, -1),
                             ((0, 1), -1, 1)):
        rows += [cell, cell]
        cols += [node(di, dj), nx * ny + node(di, dj)]
        vals += [np.full(cell.size, su / (2 * hx)), np.full(cell.size, sv / (2 * hy))]
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=((nx - 1) * (ny - 1), 2 * nx * ny))


def _central_matrix(nx: int, ny: int, hx: float, hy: float) -> sp.csr_matrix:
    """``(Nx - 2)(Ny - 2) x 2 Nx Ny``: row ``(i - 1)(Ny - 2) + (j - 1)`` is ``C_ij``."""
    i, j = np.meshgrid(np.arange(1, nx - 1), np.arange(1, ny - 1), indexing="ij")
    row = ((i - 1) * (ny - 2) + (j - 1)).ravel()
    node = lambda di, dj: ((i + di) * ny + (j + dj)).ravel()  # noqa: E731
    cols = [node(1, 0), node(-1, 0), nx * ny + node(0, 1), nx * ny + node(0, -1)]
    vals = [1 / (2 * hx), -1 / (2 * hx), 1 / (2 * hy), -1 / (2 * hy)]
    return sp.csr_matrix((np.concatenate([np.full(row.size, v) for v in vals]),
                          (np.tile(row, 4), np.concatenate(cols))),
                         shape=((nx - 2) * (ny - 2), 2 * nx * ny))


def divergence_constraint(x, y, *, drop_implied: bool = True, noise_var=0.0,
                          stencil: str = "cell") -> LinearConstraint:
    """Zero discrete divergence in every control volume, as a sparse
    :class:`LinearConstraint` (local conservation of volume, the per-cell form of the
    ProbConserv constraint, Hansen et al., ICML 2023, Sec. 3).

    Args:
        x, y: ``(Nx,)``, ``(Ny,)`` uniform node grids (units of length), at least 3 nodes.
        drop_implied: (``"cell"``) leave out the two cell rows implied by Dirichlet rows on
            every wall node (module docstring): set it when stacking with such wall rows,
            else the stacked system is singular. The central rows imply none on even grids.
        noise_var: as :class:`LinearConstraint`.
        stencil: ``"cell"``, the balance of every grid cell (``D_ij``), or ``"central"``, the
            central-difference divergence at every interior node (``C_ij``, the stencil a
            vorticity-stream function solver's velocities meet exactly).

    Returns:
        ``G`` sparse, ``(Nx - 1)(Ny - 1) [- 2]`` (cell) or ``(Nx - 2)(Ny - 2)`` (central) rows
        by ``2 Nx Ny``, acting on ``(u, v)`` flattened channel-first (``field (2, Nx,
        Ny).reshape(-1)``), ``b = 0``.

    Raises:
        ValueError: grids that are not uniform or have fewer than 3 nodes, an unknown
            ``stencil``.
    """
    if stencil not in DIVERGENCE_STENCILS:
        raise ValueError(f"stencil must be one of {DIVERGENCE_STENCILS}, got {stencil!r}")
    nx, ny, hx, hy = _grid(x, y)
    if stencil == "central":
        G = _central_matrix(nx, ny, hx, hy)
        return LinearConstraint(G, torch.zeros(G.shape[0], dtype=torch.float64),
                                noise_var=noise_var)
    G = _divergence_matrix(nx, ny, hx, hy)
    if drop_implied:
        last = (nx - 1) * (ny - 1)
        keep = np.setdiff1d(np.arange(last), [last - 1, last - 1 - (ny - 1)])
        G = G[keep]
    return LinearConstraint(G, torch.zeros(G.shape[0], dtype=torch.float64),
                            noise_var=noise_var)


def cell_divergence(field: torch.Tensor, x, y) -> torch.Tensor:
    """``D_ij`` of every cell for ``field (..., 2, Nx, Ny)`` (``u``, ``v``): ``(..., Nx - 1,
    Ny - 1)``, in ``field``'s dtype."""
    _, _, hx, hy = _grid(x, y)
    u, v = field[..., 0, :, :], field[..., 1, :, :]
    du = (u[..., 1:, 1:] + u[..., 1:, :-1] - u[..., :-1, 1:] - u[..., :-1, :-1]) / (2 * hx)
    dv = (v[..., 1:, 1:] + v[..., :-1, 1:] - v[..., 1:, :-1] - v[..., :-1, :-1]) / (2 * hy)
    return du + dv


def central_divergence(field: torch.Tensor, x, y) -> torch.Tensor:
    """``C_ij`` at every interior node for ``field (..., 2, Nx, Ny)`` (``u``, ``v``): ``(...,
    Nx - 2, Ny - 2)``, in ``field``'s dtype (units: 1 / time)."""
    _, _, hx, hy = _grid(x, y)
    u, v = field[..., 0, :, :], field[..., 1, :, :]
    return ((u[..., 2:, 1:-1] - u[..., :-2, 1:-1]) / (2 * hx)
            + (v[..., 1:-1, 2:] - v[..., 1:-1, :-2]) / (2 * hy))


def divergence_implied(field: torch.Tensor, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """The two cell-row combinations fixed by the wall values alone: ``(sum D_ij, sum
    (-1)^(i+j) D_ij)`` times the cell area, for ``field (..., 2, Nx, Ny)``. Both depend on the
    wall nodes only; a field whose walls make either nonzero cannot have zero divergence in
    every cell."""
    _, _, hx, hy = _grid(x, y)
    div = cell_divergence(field, x, y) * hx * hy
    i = torch.arange(div.shape[-2])[:, None]
    j = torch.arange(div.shape[-1])[None, :]
    sign = (1 - 2 * ((i + j) % 2)).to(div.dtype)
    return div.sum((-2, -1)), (div * sign).sum((-2, -1))
