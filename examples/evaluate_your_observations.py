"""Predict from your own observations with a trained ProbConserv run.

Trains a (tiny) Stefan run, writes observations in the ``physguard evaluate`` format (an NPZ
with ``t``, ``x``, ``u`` of shape ``(n_functions, n_points)`` and ``param`` ``(n_functions,)``)
and evaluates the run on them. From the shell: ``physguard evaluate stefan --run RUN
--contexts obs.npz --out OUT``.

    python examples/evaluate_your_observations.py [--tiny]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from physguard import Stefan
from physguard.experiments import GPMEConfig, run_gpme
from physguard.experiments.evaluate import evaluate_run

parser = argparse.ArgumentParser()
parser.add_argument("--tiny", action="store_true", help="small sizes (CI)")
args = parser.parse_args()
folder = Path(tempfile.mkdtemp())
sizes = dict(n_train=20, n_val=5, n_test=2, epochs=1, n_grid_t=11, n_grid_x=11,
             n_shock_samples=10, n_latent=2, hidden=8) if args.tiny else {}
run_gpme(GPMEConfig(problem="stefan", **sizes), folder / "run", progress=not args.tiny)

# Your observations: here sampled from the exact solution at p* = 0.55 with a little noise.
rng = np.random.default_rng(0)
param = np.array([0.55, 0.55])
t = rng.uniform(0.0, 0.1, size=(2, 40))
x = rng.uniform(0.0, 1.0, size=(2, 40))
u = np.stack([Stefan(p).solution(ti, xi).numpy() for p, ti, xi in zip(param, t, x,
                                                                       strict=True)])
np.savez(folder / "obs.npz", t=t, x=x, u=u + 1e-3 * rng.standard_normal(u.shape), param=param)

records = evaluate_run("stefan", folder / "run", folder / "obs.npz", folder / "evaluation",
                       progress=not args.tiny)
for r in records:
    print({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in r.items()})
