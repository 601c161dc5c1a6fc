"""Named experiments: a problem, a surrogate, the constraints and the metrics, with a config."""

from .gpme import METHODS, GPMEConfig, run_gpme

__all__ = ["GPMEConfig", "METHODS", "run_gpme"]
