"""A lead on the velocity cavity, not adopted: BOON learning the field minus a harmonic lift.

BOON's exact output keeps the operator's interior; this variant adds the discrete harmonic
extension ``L`` of the Dirichlet wall values (the 5-point Laplace solution with those walls)
to the operator's output before the walls are set, so the operator learns ``u - L``, a field
that vanishes on the walls (no jump across the periodic wrap of the Fourier layers).
``lift+input`` also subtracts the harmonic extension of the input's own wall values from the
input. Both run with ``kernel_correction=False`` (the cavity's default). Prints one row per
seed (a diagnostic, not a test; the measured rows are in benchmarks/results/boon_2d.md).

    python benchmarks/boon_2d_lift.py [--variant lift|lift+input] [--seeds 1 2] [--epochs 100]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import physguard.experiments.boon2d as boon2d
from physguard import BOON, Dirichlet
from physguard.boundary.walls import enforce_walls


@functools.cache
def _extension(nx: int, ny: int, hx: float, hy: float):
    """The map from the wall values (corners excluded) to the interior values of the discrete
    harmonic extension on an ``nx x ny`` grid, and the wall points' indices."""
    interior = np.arange(nx * ny).reshape(nx, ny)[1:-1, 1:-1].ravel()
    on_wall = np.zeros((nx, ny), dtype=bool)
    on_wall[[0, -1], 1:-1] = on_wall[1:-1, [0, -1]] = True
    wall = np.flatnonzero(on_wall)
    lap = sp.kronsum(sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], (ny, ny)) / hy**2,
                     sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], (nx, nx)) / hx**2).tocsr()
    matrix = spla.splu(lap[interior][:, interior].tocsc()).solve(
        -lap[interior][:, wall].toarray())
    return torch.from_numpy(matrix), torch.from_numpy(wall // ny), torch.from_numpy(wall % ny)


def harmonic_lift(w: torch.Tensor, domain) -> torch.Tensor:
    """``w (..., Nx, Ny)`` with its interior replaced by the discrete harmonic extension of its
    wall values (corners are not used by the 5-point stencil and are kept)."""
    nx, ny = w.shape[-2:]
    (ax, bx), (ay, by) = domain
    matrix, wi, wj = _extension(nx, ny, (bx - ax) / (nx - 1), (by - ay) / (ny - 1))
    out = w.clone()
    inner = torch.einsum("kb,...b->...k", matrix.to(w.dtype), w[..., wi, wj])
    out[..., 1:-1, 1:-1] = inner.reshape(*w.shape[:-2], nx - 2, ny - 2)
    return out


def lifted_boon(subtract_input_lift: bool):
    class LiftedBOON(BOON):
        def _exact_output(self, u, correction, hook, output_dtype):
            domain = self.operator.domain[-2:]
            dirichlet = {name: bc if isinstance(bc, Dirichlet) else None
                         for name, bc in self._walls().items()}
            zeros = u.new_zeros(u.shape[0], self.operator.out_channels, *u.shape[-2:])
            lift = harmonic_lift(enforce_walls(zeros, dirichlet, domain), domain)
            if subtract_input_lift:
                u = u - harmonic_lift(u, domain)
            out = self.operator(u)  # kernel_correction=False: the layers as they are
            if output_dtype is not None:
                out, lift = out.to(output_dtype), lift.to(output_dtype)
            return self.enforce(out + lift)
    return LiftedBOON


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="lift", choices=["lift", "lift+input"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    boon2d.BOON = lifted_boon(args.variant == "lift+input")  # what _apply wraps, this run only
    for seed in args.seeds:
        config = boon2d.BOON2dConfig.default("cavity", "single", device="cpu", seed=seed,
                                             epochs=args.epochs, kernel_correction=False)
        train, test = boon2d.split_data_2d(config, progress=False)
        started = time.perf_counter()
        record = boon2d.train_and_evaluate_2d("BOON", train, test, config, False)[3]
        print(f"{args.variant} seed {seed}, {config.epochs} epochs: rel_l2 "
              f"{record['rel_l2']:.4e}, boundary error {record['boundary_error']:.1e}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
