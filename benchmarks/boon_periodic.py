"""BOON on periodic Burgers, single step: the paper's per-layer periodic mean and two
alternatives, at the bench's sizes, on validation seeds (not the bench's seed 0).

With periodic walls BOON is given no condition data: it is the FNO with the two end values of
every hidden layer set to their mean (Saad et al., ICLR 2023; ``shared/reference/boon.md``) and
of the output. The variants, each trained from the seed's initial weights with the bench's
budget (200 / 50 samples, 128 points, width 32, 16 modes, 150 epochs):

* ``FNO``: the plain operator;
* ``BOON``: the per-layer mean (physguard's ``BOON(op, left=Periodic(), right=Periodic())``);
* ``exact-only``: the mean of the output's two ends only (``kernel_correction=False``);
* ``trimmed``: the operator applied to the first ``N - 1`` points only (the grid includes both
  ends, ``x_0`` and ``x_{N-1}`` are the same point of the circle, so the FFT of all ``N``
  points has the period ``N h`` instead of ``(N - 1) h``), and its value at ``x_0`` copied to
  ``x_{N-1}``. This variant patches ``BOON.forward`` inside this script only.

    python benchmarks/boon_periodic.py --seeds 1 2 3 4

Prints one line per seed and variant (relative L2, boundary error, seconds) and the geometric
mean of FNO / variant over the seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch

from physguard.boundary import boon as boon_module
from physguard.experiments.bench_boon import BOONBenchConfig
from physguard.experiments.boon import split_data, train_and_evaluate

VARIANTS = ("FNO", "BOON", "exact-only", "trimmed")
_plain_forward = boon_module.BOON.forward
_trim = {"on": False}


def _forward(self, u, output_dtype=None):
    """``BOON.forward``, or with ``_trim["on"]`` the operator on one period of the grid."""
    if not (self.periodic and _trim["on"]):
        return _plain_forward(self, u, output_dtype)
    operator = self.operator
    grid = type(operator).grid
    operator.grid = lambda n, like: grid(operator, n + 1, like)[:-1]  # the first N - 1 nodes
    try:
        out = operator(u[..., :-1])
    finally:
        del operator.grid
    out = torch.cat([out, out[..., :1]], dim=-1)
    return out if output_dtype is None else out.to(output_dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    boon_module.BOON.forward = _forward
    errors = {v: [] for v in args.variants}
    for seed in args.seeds:
        bench = BOONBenchConfig(cases=("burgers-periodic",), settings=("single",), seed=seed,
                                device="cpu")
        config = bench.case_config("burgers-periodic", "single")
        train, test = split_data(config)
        for variant in args.variants:
            _trim["on"] = variant == "trimmed"
            run = dataclasses.replace(config, kernel_correction=variant != "exact-only")
            started = time.perf_counter()
            record = train_and_evaluate("FNO" if variant == "FNO" else "BOON", train, test,
                                        run, False)[3]
            errors[variant].append(record["rel_l2"])
            print(f"seed {seed} | {variant:>10} | rel_l2 {record['rel_l2']:.4e} | boundary "
                  f"error {record['boundary_error']:.1e} | "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    if "FNO" in errors:
        print("\ngeometric mean of FNO / variant over the seeds:")
        for variant, values in errors.items():
            logs = [math.log(f / v) for f, v in zip(errors["FNO"], values, strict=True)]
            print(f"{variant:>10} | {math.exp(sum(logs) / len(logs)):.2f}")


if __name__ == "__main__":
    main()
