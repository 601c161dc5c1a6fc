"""Sampling, saving and loading observations of PDE solutions."""

from .gpme import FunctionSamples, context_grid, sample_functions
from .operator import OPERATOR_PROBLEMS, OperatorData, make_operator_data

__all__ = ["FunctionSamples", "OPERATOR_PROBLEMS", "OperatorData", "context_grid",
           "make_operator_data", "sample_functions"]
