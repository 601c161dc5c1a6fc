"""Bring your own probabilistic model to ProbConserv.

Any prediction that is a Gaussian on a grid (a GP, an ensemble, an MC-dropout net...) can be
conditioned on the integral form of a conservation law. Here "your model" is a stand-in: a
perturbed heat solution with a pointwise variance, as many surrogates give.

    python examples/probconserv_your_gaussian.py [--tiny]
"""

import argparse

import torch

import physguard as pg

parser = argparse.ArgumentParser()
parser.add_argument("--tiny", action="store_true", help="small sizes (CI)")
args = parser.parse_args()
n = 32 if args.tiny else 201

# The truth: heat with insulated walls; its total heat is known from the boundary fluxes.
problem = pg.Diffusion(1.0)  # u_t = k u_xx, the ProbConserv paper's diffusion case
x = torch.linspace(*problem.domain, n, dtype=torch.float64)
t = torch.tensor([0.1, 0.3, 0.5], dtype=torch.float64)
truth = problem.solution(t[:, None], x[None, :])  # (T, N)

# "Your model": mean and variance on the grid, one Gaussian per time step.
gen = torch.Generator().manual_seed(0)
bias = 0.05 * torch.sin(3 * x)[None, :] + 0.02
mean = truth + bias + 0.01 * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
var = torch.full_like(mean, 0.05**2) * (1 + x[None, :])  # less sure on the right
prediction = pg.Gaussian(mean, var=var)

# The constraint: trapezoid mass of each time step = the conserved total U(t).
constraint = pg.mass_constraint(x, problem.mass(t))
posterior = pg.probconserv(prediction, constraint)

before = constraint.residual(prediction.mean).abs().max()
after = constraint.residual(posterior.mean).abs().max()
mse = lambda m: float((m - truth).square().mean())  # noqa: E731
print(f"conservation error: {float(before):.2e} -> {float(after):.2e}")
print(f"MSE:                {mse(prediction.mean):.2e} -> {mse(posterior.mean):.2e}")
assert after < 1e-10
