"""Exact Gaussian-process regression (GPyTorch) as a ProbConserv black box.

Each function is its own GP regression problem: a constant mean and a scaled RBF kernel with one
lengthscale per input coordinate (ARD) on the scaled ``(t, x)`` inputs, a Gaussian likelihood with
noise variance ``>= min_noise`` (units of ``u^2``), hyperparameters fitted by maximising the exact
marginal likelihood with Adam (Rasmussen & Williams 2006, Ch. 2 and Sec. 5.4). The functions of
a block are fitted together as one batched GPyTorch model: ``shared=False`` (default) fits
hyperparameters per function; ``shared=True`` one set for the whole block.

The prediction keeps the dense ``nx x nx`` posterior covariance at every grid time (of the noisy
observation ``y = u + eps``, so the variance floor is the fitted noise), which exercises the
dense path of :func:`~physguard.probconserv`. Times are treated as independent blocks, as the
conservation constraint has one row per time.
"""

from __future__ import annotations

from collections.abc import Iterator

import gpytorch
import torch

from ..constraints import Gaussian
from ..training import NPData
from .base import GridPredictor, check_contexts

__all__ = ["GPPredictor", "fit_gp"]


class _BatchGP(gpytorch.models.ExactGP):
    def __init__(self, x, y, likelihood, batch: torch.Size):
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean(batch_shape=batch)
        self.covar_module = gpytorch.kernels.ScaleKernel(
            gpytorch.kernels.RBFKernel(ard_num_dims=x.shape[-1], batch_shape=batch),
            batch_shape=batch)

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x),
                                                         self.covar_module(x))


def fit_gp(xc: torch.Tensor, yc: torch.Tensor, iterations: int = 200, lr: float = 0.05,
           min_noise: float = 1e-6, shared: bool = False):
    """Fit a batch of exact GPs, one per function, by maximising the marginal likelihood.

    Args:
        xc: ``(n, Nc, d)`` inputs (scaled to about ``[0, 1]``); yc: ``(n, Nc)`` observations.
        iterations, lr: Adam steps and learning rate on the summed negative log marginal
            likelihood.
        min_noise: lower bound of the likelihood's noise variance (units of ``u^2``); keeps the
            kernel matrix well conditioned for noiseless data.
        shared: one set of hyperparameters for all ``n`` functions instead of one each.

    Returns:
        ``(model, likelihood)`` in eval mode, float64.

    Raises:
        ValueError: wrong shapes, NaN values, or non-positive ``iterations`` / ``lr`` /
            ``min_noise``.
    """
    if xc.dim() != 3 or yc.shape != xc.shape[:2]:
        raise ValueError(f"xc must be (n, Nc, d) and yc (n, Nc), got {tuple(xc.shape)} and "
                         f"{tuple(yc.shape)}")
    if iterations < 1 or not lr > 0 or not min_noise > 0:
        raise ValueError("iterations, lr and min_noise must be positive")
    if not (torch.isfinite(xc).all() and torch.isfinite(yc).all()):
        raise ValueError("xc and yc must be finite")
    x, y = xc.detach().cpu().double(), yc.detach().cpu().double()
    batch = torch.Size([]) if shared else torch.Size([x.shape[0]])
    likelihood = gpytorch.likelihoods.GaussianLikelihood(
        batch_shape=batch, noise_constraint=gpytorch.constraints.GreaterThan(min_noise)
    ).double()
    model = _BatchGP(x, y, likelihood, batch).double()
    # Start from the data's own scale: lengthscales a quarter of the unit box, signal variance
    # the empirical variance, noise 100x its floor.
    model.covar_module.base_kernel.lengthscale = torch.full_like(
        model.covar_module.base_kernel.lengthscale, 0.25)
    model.covar_module.outputscale = y.var(dim=-1).clamp(min=1e-6).mean() if shared else \
        y.var(dim=-1).clamp(min=1e-6)
    model.mean_module.constant.data.copy_(y.mean() if shared else y.mean(-1))
    likelihood.noise = torch.full_like(likelihood.noise, 100 * min_noise)
    model.train()
    likelihood.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    with gpytorch.settings.max_cholesky_size(10_000):
        for _ in range(iterations):
            optimiser.zero_grad(set_to_none=True)
            loss = -mll(model(x), y).sum()
            loss.backward()
            optimiser.step()
    model.eval()
    likelihood.eval()
    return model, likelihood


class GPPredictor(GridPredictor):
    """Exact GP per function (GPyTorch); dense posterior covariance over ``x`` at each time.

    Args:
        iterations, lr, min_noise, shared: see :func:`fit_gp`.
        block: functions fitted together in one batched model (memory: ``block * nt * nx^2``
            float64 numbers for the prediction; 65 MB per function on the 201 x 201 grid).
        name: method name.
    """

    def __init__(self, iterations: int = 200, lr: float = 0.05, min_noise: float = 1e-6,
                 shared: bool = False, block: int = 4, name: str = "GP"):
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.iterations, self.lr, self.min_noise = iterations, lr, min_noise
        self.shared, self.block, self.name = shared, block, name

    def predict(self, contexts: NPData, grid_inputs: torch.Tensor, nt: int, nx: int,
                generator: torch.Generator) -> Iterator[Gaussian]:
        check_contexts(contexts)
        grid = grid_inputs.detach().cpu().double().reshape(nt, 1, nx, -1)
        for start in range(0, len(contexts), self.block):
            xc = contexts.xc[start:start + self.block]
            yc = contexts.yc[start:start + self.block]
            model, likelihood = fit_gp(xc, yc, self.iterations, self.lr, self.min_noise,
                                       self.shared)
            test = grid.expand(nt, xc.shape[0], nx, grid.shape[-1])
            with torch.no_grad(), gpytorch.settings.max_cholesky_size(10_000), \
                    gpytorch.settings.fast_pred_var(False):
                out = likelihood(model(test))
                mean = out.mean.transpose(0, 1)  # (n_block, nt, nx)
                cov = out.covariance_matrix.transpose(0, 1)  # (n_block, nt, nx, nx)
            for i in range(xc.shape[0]):
                c = cov[i]
                yield Gaussian(mean[i].unsqueeze(0), cov=(0.5 * (c + c.transpose(-1, -2)))
                               .unsqueeze(0))
