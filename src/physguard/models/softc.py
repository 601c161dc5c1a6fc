"""SoftC: the PDE residual as a soft penalty in the training loss (a physics-informed loss).

The SoftC-ANP baseline of Hansen et al., ICML 2023 (Sec. 4; the physics-informed loss of Raissi,
Perdikaris, Karniadakis 2019): training minimises ``ELBO loss + lambda * mean_i r_i^2`` with
``r = u_t + F(u, u_x)_x`` the residual of the differential form of the conservation law evaluated
on the predicted mean at the training targets, derivatives by automatic differentiation through
the network, and ``lambda = 1``. For the GPME family ``F = -k(u) u_x`` with the problem's own
``k(u)`` (constant, ``u^m``, or the Stefan step); for advection ``F = a u``; for Burgers
``F = u^2 / 2``.
"""

from __future__ import annotations

import torch

from ..pdes import ConservationProblem

__all__ = ["pde_residual", "softc_penalty"]


def pde_residual(mean: torch.Tensor, xt: torch.Tensor, param: torch.Tensor,
                 problem_cls: type[ConservationProblem]) -> torch.Tensor:
    """Residual ``u_t + F(u, u_x)_x`` of a predicted field, by autograd, in physical units.

    Args:
        mean: ``(B, Nt)`` predicted ``u`` at ``xt``, computed from ``xt`` with autograd on.
        xt: ``(B, Nt, 2)`` inputs ``(t, x)`` scaled to ``[0, 1]`` from the problem's
            ``t_range`` and ``domain`` (``requires_grad=True``).
        param: ``(B,)`` the PDE parameter of each function.
        problem_cls: the conservation law.

    Returns:
        ``(B, Nt)`` residual (units of ``u`` per time); differentiable (graph kept).

    Raises:
        ValueError: ``xt`` does not require grad, or shapes that do not match.
    """
    if not xt.requires_grad:
        raise ValueError("xt must require grad: the residual differentiates the network in xt")
    if mean.shape != xt.shape[:-1] or xt.shape[-1] != 2 or param.shape != mean.shape[:1]:
        raise ValueError(f"need mean (B, Nt), xt (B, Nt, 2), param (B,); got "
                         f"{tuple(mean.shape)}, {tuple(xt.shape)}, {tuple(param.shape)}")
    t_scale = problem_cls.t_range[1] - problem_cls.t_range[0]
    x_scale = problem_cls.domain[1] - problem_cls.domain[0]
    grad = torch.autograd.grad(mean.sum(), xt, create_graph=True)[0]
    u_t, u_x = grad[..., 0] / t_scale, grad[..., 1] / x_scale
    flux = problem_cls.flux(mean, u_x, param.to(mean.dtype).unsqueeze(-1))
    flux_x = torch.autograd.grad(flux.sum(), xt, create_graph=True, allow_unused=True)[0]
    if flux_x is None:  # a flux that does not depend on the inputs
        return u_t
    return u_t + flux_x[..., 1] / x_scale


def softc_penalty(problem_cls: type[ConservationProblem], weight: float = 1.0):
    """The SoftC penalty ``weight * mean(r^2)`` for :func:`~physguard.models.train_anp`.

    Raises:
        ValueError: ``weight <= 0``.
    """
    if not weight > 0:
        raise ValueError(f"weight must be > 0, got {weight}")

    def penalty(mean: torch.Tensor, xt: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        return weight * pde_residual(mean, xt, param, problem_cls).square().mean()

    return penalty
