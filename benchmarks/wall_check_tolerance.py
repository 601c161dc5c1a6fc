"""How the file reader's Neumann check was set (physguard.datasets.well.check_conditions).

heat-neumann's right-wall flux U sin(pi t) sits in a thin boundary layer (kappa = 0.01), so on
coarse grids the 2nd-order one-sided stencil misses the exact flux by up to 8.4 (16 points)
or 0.12 (128 points). The check must pass the exact flux at every resolution the CLI accepts
and refuse a wrong declaration (flux 0). Prints, per grid and seed, whether each is accepted;
then the same for wave2d's insulated walls. Recorded in benchmarks/results/wall_check_tolerance.md.

    python benchmarks/wall_check_tolerance.py
"""

import tempfile
from pathlib import Path

import h5py

from physguard.datasets.operator import make_operator_data
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.datasets.well import WallCheckError, export_well, read_well


def accepted(path: Path, problem: str = "heat-neumann") -> bool:
    try:
        read_well(path, problem)
    except WallCheckError:
        return False
    return True


def corrupt(path: Path, group: str, end: int, value: float) -> None:
    with h5py.File(path, "a") as f:
        values = f[f"boundary_conditions/{group}/physguard_values"]
        wrong = values[...]
        wrong[:, :, end] = value
        values[...] = wrong


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    print("| points | seed | exact flux | flux declared 0 |")
    print("|---|---|---|---|")
    for points in (16, 24, 32, 64, 128, 256):
        for seed in (0, 1, 2):
            path = folder / f"heat-{points}-{seed}.h5"
            export_well(make_operator_data("heat-neumann", 40, points, "multi", seed=seed),
                        path)
            exact = accepted(path)
            corrupt(path, "x_wall", 1, 0.0)
            print(f"| {points} | {seed} | {'accepted' if exact else 'REFUSED'} | "
                  f"{'ACCEPTED' if accepted(path) else 'refused'} |")
    print()
    print("wave2d (insulated walls, 6 x 6 cosine modes): bottom wall declared 1 instead of 0")
    print()
    print("| points per side | seed | exact flux | flux declared 1 |")
    print("|---|---|---|---|")
    for points in (9, 13, 17, 33):
        for seed in (0, 1, 2):
            path = folder / f"wave-{points}-{seed}.h5"
            export_well(make_operator_data_2d("wave2d", 20, "multi", None, points, n_steps=5,
                                              seed=seed, progress=False), path)
            exact = accepted(path, "wave2d")
            corrupt(path, "y_wall", 0, 1.0)
            print(f"| {points} | {seed} | {'accepted' if exact else 'REFUSED'} | "
                  f"{'ACCEPTED' if accepted(path, 'wave2d') else 'refused'} |")


if __name__ == "__main__":
    main()
