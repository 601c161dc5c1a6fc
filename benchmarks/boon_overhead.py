"""Forward + backward time of BOON-FNO against the plain FNO, side by side in one process.

The BOON correction computes the boundary block of every kernel layer from the weights once per
forward pass, so its cost should stay close to the plain operator's (issue target: <= 1.5x at
N = 512). Timings are interleaved (FNO, BOON, FNO, BOON, ...) and the median is reported.

    python benchmarks/boon_overhead.py [--batch 20] [--width 64] [--modes 16] [--repeats 15]

The 2-D rows (issue target: <= 1.5x) time FNO2d against BOON-FNO2d at 64 x 64, batch 8,
width 32, 12 modes per axis, 4 layers (``--two-d-only`` skips the 1-D table).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import physguard as pg


def step(model, x):
    start = time.perf_counter()
    model(x).square().mean().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024, 2048, 4096])
    parser.add_argument("--two-d-only", action="store_true")
    args = parser.parse_args()
    if not args.two_d_only:
        one_d(args)
    two_d(args.repeats)


def _median_ratio(base_model, cases: dict, x, repeats: int) -> tuple[float, dict]:
    for model in (base_model, *cases.values()):  # warm-up
        step(model, x)
    times = {name: [] for name in ("base", *cases)}
    for _ in range(repeats):
        times["base"].append(step(base_model, x))
        for name, model in cases.items():
            times[name].append(step(model, x))
    base = statistics.median(times["base"])
    return base, {name: statistics.median(times[name]) for name in cases}


def two_d(repeats: int) -> None:
    torch.manual_seed(0)
    fno = pg.FNO2d(1, 1, modes=12, width=32, n_layers=4)
    d = pg.Dirichlet(0.0)
    cases = {
        "Dirichlet x4": pg.BOON(fno, left=d, right=d, bottom=d, top=pg.Dirichlet(1.0)),
        "Neumann x4": pg.BOON(fno, left=pg.Neumann(0.0), right=pg.Neumann(0.0),
                              bottom=pg.Neumann(0.0), top=pg.Neumann(1.0)),
        "Periodic x, Dirichlet y": pg.BOON(fno, left=pg.Periodic(), right=pg.Periodic(),
                                           bottom=d, top=d),
    }
    x = torch.randn(8, 1, 64, 64)
    base, medians = _median_ratio(fno, cases, x, repeats)
    print(f"\n2-D: FNO2d 64 x 64, batch 8, width 32, 12 x 12 modes, 4 layers; forward + "
          f"backward, median of {repeats}")
    print(f"{'model':>24} | {'ms':>8} | {'ratio':>5}")
    print(f"{'FNO2d':>24} | {1e3 * base:8.2f} | {1.0:5.2f}")
    for name, t in medians.items():
        print(f"{'BOON ' + name:>24} | {1e3 * t:8.2f} | {t / base:5.2f}")


def one_d(args) -> None:
    torch.manual_seed(0)
    fno = pg.FNO1d(1, 1, modes=args.modes, width=args.width, n_layers=args.layers)
    cases = {
        "Dirichlet/Dirichlet": pg.BOON(fno, left=pg.Dirichlet(0.0), right=pg.Dirichlet(1.0)),
        "Neumann/Neumann": pg.BOON(fno, left=pg.Neumann(0.0), right=pg.Neumann(1.0)),
        "Periodic": pg.BOON(fno, left=pg.Periodic(), right=pg.Periodic()),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, batch "
          f"{args.batch}, width {args.width}, modes {args.modes}, {args.layers} layers; "
          f"forward + backward, median of {args.repeats}")
    header = f"{'N':>6} | {'FNO (ms)':>9} | " + " | ".join(
        f"{name + ' (ms)':>24} | {'ratio':>5}" for name in cases)
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        x = torch.randn(args.batch, 1, n)
        row = f"{n:6d} | "
        for model in (fno, *cases.values()):  # warm-up
            step(model, x)
        times = {name: [] for name in ("FNO", *cases)}
        for _ in range(args.repeats):
            times["FNO"].append(step(fno, x))
            for name, model in cases.items():
                times[name].append(step(model, x))
        base = statistics.median(times["FNO"])
        row += f"{1e3 * base:9.2f} | " + " | ".join(
            f"{1e3 * statistics.median(times[name]):24.2f} | "
            f"{statistics.median(times[name]) / base:5.2f}" for name in cases)
        print(row)


if __name__ == "__main__":
    main()
