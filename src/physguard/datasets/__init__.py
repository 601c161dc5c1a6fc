"""Sampling, saving and loading observations of PDE solutions."""

from .gpme import FunctionSamples, context_grid, sample_functions

__all__ = ["FunctionSamples", "context_grid", "sample_functions"]
