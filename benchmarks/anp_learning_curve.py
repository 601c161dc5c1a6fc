"""How far is the ANP from the published diffusion / PME numbers, and is the gap compute?

Trains physguard's ANP (``hidden`` 64, Adam lr 1e-3 with a cosine schedule, batches of 16,
the ``physguard bench probconserv`` settings) on ``n`` training functions for ``E`` epochs, for
each ``(n, E)`` of ``--grid``, and prints the test MSE at the paper's t* = 0.5 (201 grid
points, the mean of 16 latent samples, each test function's own context points) against the
training budget ``n x E`` (functions seen). Hansen et al. (ICML 2023, App. C) train on 10,000
functions for up to 500 epochs (5,000,000 functions seen, hidden 128, batches of 250, lr 1e-4):
Table 1 gives ANP MSE 1.71e-4 on diffusion, Table 3 9.57e-5 on PME m = 1.

    python benchmarks/anp_learning_curve.py [--problems diffusion pme]
        [--grid 250x30 1000x30 250x120 2000x30] [--hidden 64]

A measurement, not a test: the published numbers are not used to choose anything here.
"""

from __future__ import annotations

import argparse
import time

import torch

from physguard.datasets.gpme import sample_functions
from physguard.experiments.gpme import _inputs, to_np_data
from physguard.models.anp import ANP
from physguard.pdes import get_problem
from physguard.training import TrainConfig, train_anp

#: The paper's ANP MSE at t* = 0.5 per (problem, test parameter) (Hansen et al. 2023,
#: Table 1 diffusion: one row for the case; Table 3 PME).
PUBLISHED = {("diffusion", 1.0): 1.71e-4, ("diffusion", 5.0): 1.71e-4, ("pme", 1.0): 9.57e-5}


def test_mse(model: ANP, cls, param: float, n_functions: int = 10, seed: int = 123) -> float:
    """MSE at t* on the 201-point grid, mean over ``n_functions`` test functions."""
    data = to_np_data(sample_functions(cls, n_functions, params=[param] * n_functions,
                                       seed=seed))
    x = torch.linspace(*cls.domain, 201, dtype=torch.float64)
    t = torch.full_like(x, cls.t_star)
    xt = _inputs(cls, t, x)[None].expand(n_functions, -1, -1)
    with torch.no_grad():
        g = model.predict(data.xc, data.yc, xt, n_samples=16,
                          generator=torch.Generator().manual_seed(0))
    mean = g.mean.double().mean(0)
    truth = cls(param).solution(t, x).double()
    return float((mean - truth).square().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["diffusion", "pme"])
    parser.add_argument("--grid", nargs="+", default=["250x30", "1000x30", "250x120", "2000x30"],
                        help="training functions x epochs")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"hidden {args.hidden}, lr {args.lr}, batch {args.batch_size}, seed {args.seed}, "
          f"{torch.get_num_threads()} threads")
    print("| problem | functions | epochs | functions seen | test param | MSE at t* | "
          "published | MSE / published | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.problems:
        cls = get_problem(name)
        val = to_np_data(sample_functions(cls, 50, seed=args.seed + 1))
        for cell in args.grid:
            n, epochs = (int(v) for v in cell.split("x"))
            train = to_np_data(sample_functions(cls, n, seed=args.seed))
            torch.manual_seed(args.seed)
            model = ANP(x_dim=2, hidden=args.hidden, min_std=1e-3)
            started = time.perf_counter()
            train_anp(model, train, val, TrainConfig(epochs=epochs, batch_size=args.batch_size,
                                                     lr=args.lr, patience=epochs,
                                                     seed=args.seed), progress=False)
            seconds = time.perf_counter() - started
            model.eval()
            params = [p for p in cls.test_params if (name, p) in PUBLISHED]
            for param in params:
                mse = test_mse(model, cls, param)
                ref = PUBLISHED[(name, param)]
                print(f"| {name} | {n} | {epochs} | {n * epochs} | {param:g} | {mse:.3e} | "
                      f"{ref:.2e} | {mse / ref:.1f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
