"""Cost of the ProbConserv update with one constraint row per cell (issue 12, part 3).

For the cavity's velocity ``(u, v)`` on an ``n x n`` grid (``N = 2 n^2`` unknowns): Dirichlet
rows on every wall node of both components and a zero-divergence row per cell (``M`` about
``n^2``, sparse ``G``), applied to an ensemble-shaped prior (diagonal plus rank 5). Printed per
``n``: the update of the mean (sparse factorisation + Woodbury solve), the exact marginal
variances (``O(N)`` solves, only up to ``--var-max``), and beside them one forward pass of a
5-member ``FNO2d`` ensemble (width 32, 12 modes, 4 layers) at the same grid; the last column is
the empirical exponent ``log(t_n / t_prev) / log(N_n / N_prev)`` of the update.

    python benchmarks/local_conservation.py [--sizes 32 64 128 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from physguard import Dirichlet, FNO2d
from physguard.constraints import (
    Gaussian,
    LowRankPlusDiagonal,
    block_constraints,
    boundary_constraint,
    cell_divergence,
    divergence_constraint,
    probconserv,
    stack_constraints,
)


def cavity_rows(n: int):
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    zero, lid = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    lid[1:-1] = 1.0
    walls = [boundary_constraint((x, x), left=Dirichlet(zero), right=Dirichlet(zero),
                                 bottom=Dirichlet(zero), top=Dirichlet(top), sparse=True)
             for top in (lid, zero)]
    return x, stack_constraints(block_constraints(*walls), divergence_constraint(x, x))


def best_of(repeats: int, work, *args) -> tuple[float, object]:
    """Shortest wall time of ``work(*args)`` over ``repeats`` calls, and its result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def ensemble_forward(members, inputs):
    with torch.no_grad():
        return [m(inputs) for m in members]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--var-max", type=int, default=64,
                        help="largest n whose exact marginal variances are timed")
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    members = [FNO2d(1, 2, 12, 32, 4).eval() for _ in range(5)]
    print("| n | N | M | update (s) | variances (s) | ensemble forward (s) | update / forward "
          "| max cell divergence | exponent |")
    print("|---|---|---|---|---|---|---|---|---|")
    previous = None
    for n in args.sizes:
        x, constraint = cavity_rows(n)
        N = 2 * n * n
        mean = torch.randn(1, N, generator=gen, dtype=torch.float64)
        factor = 0.1 * torch.randn(1, N, 5, generator=gen, dtype=torch.float64)
        prior = Gaussian(mean, covariance=LowRankPlusDiagonal(
            torch.full((N,), 1e-3, dtype=torch.float64), factor, torch.eye(5, dtype=torch.float64)))
        update, post = best_of(args.repeats, probconserv, prior, constraint)
        divergence = float(cell_divergence(post.mean.reshape(2, n, n), x, x).abs().max())
        variances = (best_of(1, post.covariance.diagonal)[0]
                     if n <= args.var_max else float("nan"))
        inputs = torch.randn(1, 1, n, n, generator=gen)
        forward, _ = best_of(args.repeats, ensemble_forward, members, inputs)
        exponent = (math.log(update / previous[1]) / math.log(N / previous[0])
                    if previous else float("nan"))
        previous = (N, update)
        print(f"| {n} | {N} | {constraint.n_constraints} | {update:.3f} | {variances:.3f} | "
              f"{forward:.3f} | {update / forward:.2f} | {divergence:.1e} | {exponent:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
