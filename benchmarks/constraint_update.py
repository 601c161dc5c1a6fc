"""Cost of the ProbConserv update with a diagonal prior, against a naive dense implementation.

Prints one table: N points, M = 1 constraint (the trapezoid mass row), time of
``physguard.probconserv`` on ``Gaussian(mean, var=...)`` (which never forms N x N), and the
time of the textbook dense formula (forming the N x N covariance) where that fits in memory.
Both are run in this one process, side by side; the ratio column is what to compare.

    python benchmarks/constraint_update.py [--max-n 1000000] [--dense-max-n 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

import physguard as pg


def naive_dense(mean: torch.Tensor, cov: torch.Tensor, G: torch.Tensor, b: torch.Tensor):
    """Eq. 5-6 of Hansen et al. (2023) with a dense covariance, no structure used."""
    sigma_gt = cov @ G.T
    S = G @ sigma_gt
    gain = sigma_gt @ torch.linalg.inv(S)
    return mean - gain @ (G @ mean - b), cov - gain @ sigma_gt.T


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=1_000_000)
    parser.add_argument("--dense-max-n", type=int, default=10_000,
                        help="largest N for the naive dense path (memory 8 N^2 bytes)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, M = 1")
    print(f"{'N':>9} | {'probconserv diag (s)':>20} | {'per point (ns)':>14} | "
          f"{'naive dense (s)':>15} | {'dense / diag':>12}")
    print("-" * 84)
    sizes = [n for n in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000,
                         3_000_000, 10_000_000) if n <= args.max_n]
    for n in sizes:
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        mean = torch.randn(n, generator=gen, dtype=torch.float64)
        var = torch.rand(n, generator=gen, dtype=torch.float64) + 0.1
        constraint = pg.mass_constraint(x, torch.tensor(0.3, dtype=torch.float64))
        pred = pg.Gaussian(mean, var=var)

        def diag_update(pred=pred, constraint=constraint):
            post = pg.probconserv(pred, constraint)
            return post.mean, post.var  # materialise the marginal variances too

        t_diag = best_time(diag_update, args.repeats)
        if n <= args.dense_max_n:
            cov = torch.diag(var)
            G, b = constraint.G, constraint.b
            t_dense = best_time(lambda cov=cov, G=G, b=b, mean=mean: naive_dense(mean, cov, G, b),
                                args.repeats)
            dense = f"{t_dense:15.5f} | {t_dense / t_diag:12.1f}"
        else:
            dense = f"{'(N x N too big)':>15} | {'-':>12}"
        print(f"{n:9d} | {t_diag:20.6f} | {1e9 * t_diag / n:14.1f} | {dense}")


if __name__ == "__main__":
    main()
