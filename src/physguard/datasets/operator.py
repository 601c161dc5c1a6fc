"""Operator-learning data sets for BOON: ``u(x, 0) -> u(x, t_final)`` or the next T snapshots.

Each file holds the fields and the boundary conditions that the targets satisfy (type and value
per boundary and per sample and time step), so a model can be corrected with the right values
and checked against them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import torch

from .._io import read_npz, write_npz
from ..pdes.burgers import BurgersDirichlet, BurgersPeriodic
from ..pdes.linear_bc import HeatNeumann, StokesSecond

__all__ = ["OperatorData", "make_operator_data", "OPERATOR_PROBLEMS"]

#: Problem families with a ``sample(n, x, t, generator)`` class method, ``left_type``,
#: ``right_type``, ``domain`` and ``t_range``.
OPERATOR_PROBLEMS = {cls.name: cls for cls in (HeatNeumann, StokesSecond, BurgersDirichlet,
                                                BurgersPeriodic)}
_ARRAYS = ("x", "t", "params", "inputs", "targets", "left_values", "right_values")
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class OperatorData:
    """Input/target fields and boundary conditions.

    Attributes:
        problem: a key of ``OPERATOR_PROBLEMS``.
        left_type, right_type: ``"dirichlet"``, ``"neumann"`` or ``"periodic"``.
        x: ``(N,)`` grid including both ends; t: ``(T,)`` target times.
        params: ``(n,)`` the sampled parameter (``omega``) of each sample; for
            ``burgers-periodic`` (random fields) the exact conserved total ``int u dx``.
        inputs: ``(n, 1, N)`` the initial condition; targets: ``(n, T, N)`` the solution at ``t``.
        left_values, right_values: ``(n, T)`` the boundary value (Dirichlet) or ``du/dx``
            (Neumann) that each target snapshot satisfies (zeros for periodic).
    """

    problem: str
    left_type: str
    right_type: str
    x: torch.Tensor
    t: torch.Tensor
    params: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor
    left_values: torch.Tensor
    right_values: torch.Tensor

    def __post_init__(self):
        n, T, N = self.targets.shape
        expected = {"x": (N,), "t": (T,), "params": (n,), "inputs": (n, 1, N),
                    "left_values": (n, T), "right_values": (n, T)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must have shape {shape} to match targets "
                                 f"{(n, T, N)}, got {tuple(getattr(self, name).shape)}")
        for side in (self.left_type, self.right_type):
            if side not in ("dirichlet", "neumann", "periodic"):
                raise ValueError("boundary type must be 'dirichlet', 'neumann' or 'periodic', "
                                 f"got {side!r}")

    def __len__(self) -> int:
        return self.targets.shape[0]

    def wall_conditions(self) -> dict[str, tuple[str, torch.Tensor]]:
        """``{"left" | "right": (kind, values (n, T))}``."""
        return {"left": (self.left_type, self.left_values),
                "right": (self.right_type, self.right_values)}

    def subset(self, index) -> OperatorData:
        """The samples ``index``; lazy fields (:class:`~physguard.datasets.well.LazyField`)
        stay lazy."""
        def part(array):
            return array.subset(index) if hasattr(array, "subset") else array[index]

        return OperatorData(self.problem, self.left_type, self.right_type, self.x, self.t,
                            self.params[index], part(self.inputs), part(self.targets),
                            self.left_values[index], self.right_values[index])

    def in_memory(self) -> OperatorData:
        """The same samples with lazy fields read into tensors."""
        def load(array):
            return array.load() if hasattr(array, "load") else array

        return dataclasses.replace(self, inputs=load(self.inputs), targets=load(self.targets))

    def save(self, path: str | os.PathLike) -> None:
        """Write an NPZ file atomically, boundary-condition metadata included."""
        arrays = {k: getattr(self, k).numpy() for k in _ARRAYS}
        write_npz(path, dict(problem=np.array(self.problem), left_type=np.array(self.left_type),
                             right_type=np.array(self.right_type),
                             version=np.array(_FORMAT_VERSION), **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> OperatorData:
        """Read a file written by :meth:`save`.

        Raises:
            FileNotFoundError: no file; ValueError: truncated, incomplete or inconsistent file.
        """
        contents = read_npz(path, ("problem", "left_type", "right_type", *_ARRAYS))
        return cls(str(contents["problem"]), str(contents["left_type"]),
                   str(contents["right_type"]),
                   *(torch.from_numpy(contents[k]).to(torch.float64) for k in _ARRAYS))


def make_operator_data(problem: str, n_samples: int, n_points: int = 128,
                       setting: str = "single", n_steps: int = 25, seed: int = 0,
                       param_range: tuple[float, float] | None = None) -> OperatorData:
    """Sample ``n_samples`` solutions of ``problem`` on a uniform grid of ``n_points``.

    Args:
        problem: ``"heat-neumann"`` (``omega ~ U[2.01, 3.99]``), ``"stokes"``
            (``omega ~ U[2, 6]``, ``nu = 0.1``) or ``"burgers-dirichlet"`` (random sine
            series, ``nu = 0.1``) or ``"burgers-periodic"`` (Gaussian random field).
        setting: ``"single"`` (target: the solution at the final time of ``t_range``) or
            ``"multi"`` (the ``n_steps`` snapshots equally spaced in ``(0, t_final]``).
        seed: seeds the parameters.
        param_range: ``(low, high)`` of the sampled ``omega`` instead of the problem's
            training range (heat-neumann and stokes: out-of-distribution test data).

    Raises:
        ValueError: unknown problem or setting, sizes < 1 or ``n_points < 4``, a
            ``param_range`` for a problem without a parameter range or with ``low > high``.
    """
    if problem not in OPERATOR_PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; known: {', '.join(OPERATOR_PROBLEMS)}")
    if setting not in ("single", "multi"):
        raise ValueError(f"setting must be 'single' or 'multi', got {setting!r}")
    if n_samples < 1 or n_steps < 1 or n_points < 4:
        raise ValueError("n_samples and n_steps must be >= 1 and n_points >= 4")
    cls = OPERATOR_PROBLEMS[problem]
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(*cls.domain, n_points, dtype=torch.float64)
    t_final = cls.t_range[1]
    t = (torch.tensor([t_final], dtype=torch.float64) if setting == "single"
         else torch.linspace(0, t_final, n_steps + 1, dtype=torch.float64)[1:])
    if param_range is None:
        samples = cls.sample(n_samples, x, t, gen)
    elif not hasattr(cls, "omega_range"):
        raise ValueError(f"{problem} has no parameter range (its samples are random fields)")
    elif not param_range[0] <= param_range[1]:
        raise ValueError(f"param_range must be (low, high) with low <= high, got {param_range}")
    else:
        samples = cls.sample(n_samples, x, t, gen, omega_range=tuple(param_range))
    params, inputs, targets, left, right = samples
    return OperatorData(problem, cls.left_type, cls.right_type, x, t, params,
                        inputs.unsqueeze(1), targets, left, right)
