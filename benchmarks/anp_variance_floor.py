"""Which variance floor lets the ANP extrapolate with an honest uncertainty? Chosen without the
test parameters: train on the upper part of Stefan's training range (p* in [0.60, 0.70]) and
validate on its lower part (p* in [0.55, 0.60)), an extrapolation in the same direction as the
paper's test value p* = 0.5 (below the range [0.55, 0.70]).

    python benchmarks/anp_variance_floor.py [--floors 1e-3 1e-2 3e-2] [--epochs 100]

Prints, per floor ``min_std``, the validation log-likelihood and MSE at t* = 0.05 (201 grid
points, moment-matched over 16 latent samples) and over the training range's own validation
functions (p* in [0.60, 0.70]).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from physguard.datasets.gpme import sample_functions
from physguard.experiments.gpme import _inputs, to_np_data
from physguard.models.anp import ANP
from physguard.pdes import Stefan
from physguard.training import TrainConfig, train_anp


def uniform(low: float, high: float, n: int, seed: int) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)).tolist()


def score(model: ANP, params: list[float], seed: int) -> tuple[float, float]:
    """(LL, MSE) at t* on the 201-point grid, from each function's own context points."""
    data = to_np_data(sample_functions(Stefan, len(params), params=params, seed=seed))
    x = torch.linspace(*Stefan.domain, 201, dtype=torch.float64)
    t = torch.full_like(x, Stefan.t_star)
    xt = _inputs(Stefan, t, x)[None].expand(len(params), -1, -1)
    with torch.no_grad():
        g = model.predict(data.xc, data.yc, xt, n_samples=16,
                          generator=torch.Generator().manual_seed(0))
    means, variances = g.mean.double(), g.var.double()
    mean = means.mean(0)
    var = variances.mean(0) + means.var(0, unbiased=False)
    truth = torch.stack([Stefan(p).solution(t, x) for p in params]).double()
    err2 = (truth - mean).square()
    ll = -0.5 * (math.log(2 * math.pi) + var.log() + err2 / var)
    return float(ll.mean()), float(err2.mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--floors", type=float, nargs="+", default=[1e-3, 1e-2, 3e-2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--functions", type=int, default=1000)
    args = parser.parse_args()
    train = sample_functions(Stefan, args.functions, params=uniform(0.60, 0.70, args.functions, 1),
                             seed=11)
    val = sample_functions(Stefan, 100, params=uniform(0.60, 0.70, 100, 2), seed=12)
    inside, below = uniform(0.60, 0.70, 20, 3), uniform(0.55, 0.60, 20, 4)
    print("| min_std | LL, p* in [0.60, 0.70] | MSE | LL, p* in [0.55, 0.60) | MSE | train (s) |")
    print("|---|---|---|---|---|---|")
    for floor in args.floors:
        torch.manual_seed(0)
        model = ANP(x_dim=2, hidden=64, min_std=floor)
        tic = time.perf_counter()
        train_anp(model, to_np_data(train), to_np_data(val),
                  TrainConfig(epochs=args.epochs, batch_size=50, lr=1e-3, patience=40, seed=0),
                  progress=False)
        model.eval()
        ll_in, mse_in = score(model, inside, 21)
        ll_out, mse_out = score(model, below, 22)
        print(f"| {floor:g} | {ll_in:.3f} | {mse_in:.3e} | {ll_out:.3f} | {mse_out:.3e} | "
              f"{time.perf_counter() - tic:.0f} |", flush=True)


if __name__ == "__main__":
    main()
