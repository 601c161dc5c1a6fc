"""Probabilistic black boxes for ProbConserv's Step 1: each returns a :class:`~physguard.Gaussian`
on the evaluation grid, so that :func:`~physguard.probconserv` and :func:`~physguard.hardc`
apply unchanged (Hansen et al., ICML 2023, Sec. 3: "any probabilistic model").

Every predictor maps the context points of ``n`` functions to, per function, the mixture
components of its prediction: a :class:`~physguard.Gaussian` with mean ``(S, nt, nx)`` (``S``
components, one constraint row per time) whose covariance structure is the model's own:

* :class:`ANPPredictor`: ``S`` latent samples, diagonal covariance per sample;
* :class:`GPPredictor`: ``S = 1``, a dense ``nx x nx`` covariance per time (exact GP, GPyTorch);
* :class:`EnsemblePredictor`: ``S = 1``, diagonal plus the rank-``M`` ensemble spread.
"""

from .base import GridPredictor
from .ensemble import EnsemblePredictor, train_ensemble
from .gp import GPPredictor, fit_gp
from .np import ANPPredictor

__all__ = ["GridPredictor", "ANPPredictor", "GPPredictor", "fit_gp", "EnsemblePredictor",
           "train_ensemble"]
