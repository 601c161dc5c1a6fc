"""Observations of GPME solutions for neural processes: context and target points per function.

The paper's sampling (Hansen et al., ICML 2023, App. C): per function, 10 context times, one
uniform draw in each of 10 equal sub-intervals of the time range, times 10 sorted uniform
positions, give 100 context points on a tensor grid; 100 target points are uniform in
(t, x). All values are the exact, noiseless solution.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .._io import read_npz, write_npz
from ..pdes import GPMEProblem, get_problem

__all__ = ["FunctionSamples", "sample_functions", "context_grid"]

_FORMAT_VERSION = 1
_ARRAYS = ("params", "context_t", "context_x", "context_u", "target_t", "target_x", "target_u")


@dataclass(frozen=True)
class FunctionSamples:
    """Context and target observations of ``n`` solutions of one problem family.

    Attributes:
        problem: problem name (a key of ``physguard.pdes.CONSERVATION_PROBLEMS``).
        params: ``(n,)`` float64 parameter of each function.
        context_t, context_x, context_u: ``(n, n_context)`` float64 context points and values.
        target_t, target_x, target_u: ``(n, n_target)`` float64 target points and values.
    """

    problem: str
    params: torch.Tensor
    context_t: torch.Tensor
    context_x: torch.Tensor
    context_u: torch.Tensor
    target_t: torch.Tensor
    target_x: torch.Tensor
    target_u: torch.Tensor

    def __post_init__(self):
        get_problem(self.problem)
        n = self.params.shape
        if len(n) != 1:
            raise ValueError(f"params must be 1-D (n_functions,), got {tuple(n)}")
        for group in ("context", "target"):
            shapes = {k: tuple(getattr(self, f"{group}_{k}").shape) for k in "txu"}
            if len(set(shapes.values())) != 1 or len(shapes["t"]) != 2 or shapes["t"][0] != n[0]:
                raise ValueError(
                    f"{group} arrays must all have shape (n_functions={n[0]}, n_points), got "
                    + ", ".join(f"{group}_{k} {s}" for k, s in shapes.items())
                )
        for name in _ARRAYS:
            if not bool(torch.isfinite(getattr(self, name)).all()):
                raise ValueError(f"{name} holds NaN or infinite values")

    def __len__(self) -> int:
        return self.params.shape[0]

    @property
    def problem_class(self) -> type[GPMEProblem]:
        return get_problem(self.problem)

    def subset(self, index) -> FunctionSamples:
        """The functions selected by ``index`` (a slice, an index tensor or a boolean mask)."""
        return FunctionSamples(self.problem, *(getattr(self, k)[index] for k in _ARRAYS))

    def save(self, path: str | os.PathLike) -> None:
        """Write an NPZ file atomically (arrays, problem name, format version)."""
        arrays = {k: getattr(self, k).numpy() for k in _ARRAYS}
        write_npz(path, dict(problem=np.array(self.problem), version=np.array(_FORMAT_VERSION),
                             **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike, problem: str | None = None) -> FunctionSamples:
        """Read a file written by :meth:`save`.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is truncated or not an NPZ archive, misses arrays, has
                inconsistent shapes, another format version, or (with ``problem``) holds
                another problem's data.
        """
        contents = read_npz(path, ("problem", "version", *_ARRAYS))
        if int(contents["version"]) != _FORMAT_VERSION:
            raise ValueError(
                f"{path} has format version {int(contents['version'])}, expected {_FORMAT_VERSION}"
            )
        stored = str(contents["problem"])
        if problem is not None and stored != problem:
            raise ValueError(f"{path} holds {stored!r} data, but {problem!r} was asked for")
        return cls(stored, *(torch.from_numpy(contents[k]).to(torch.float64) for k in _ARRAYS))


def context_grid(problem_cls: type[GPMEProblem], n_functions: int, n_times: int, n_x: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's random tensor grid of context points, ``(n_functions, n_times * n_x)`` each.

    Time ``i`` is uniform in the ``i``-th of ``n_times`` equal sub-intervals of ``t_range``;
    positions are ``n_x`` sorted uniform draws over ``domain``; points are ordered time-major.
    """
    (t0, t1), (a, b) = problem_cls.t_range, problem_cls.domain
    edges = torch.linspace(t0, t1, n_times + 1, dtype=torch.float64)
    width = edges[1] - edges[0]
    t = edges[:-1] + width * torch.rand(n_functions, n_times, generator=generator,
                                        dtype=torch.float64)
    x = a + (b - a) * torch.rand(n_functions, n_x, generator=generator, dtype=torch.float64)
    x = torch.sort(x, dim=-1).values
    tt = t.unsqueeze(-1).expand(n_functions, n_times, n_x).reshape(n_functions, -1)
    xx = x.unsqueeze(1).expand(n_functions, n_times, n_x).reshape(n_functions, -1)
    return tt, xx


def sample_functions(problem: str | type[GPMEProblem], n_functions: int, *,
                     params=None, n_context_times: int = 10, n_context_x: int = 10,
                     n_targets: int = 100, seed: int | None = None,
                     generator: torch.Generator | None = None) -> FunctionSamples:
    """Sample ``n_functions`` solutions with the paper's context and target points.

    Args:
        problem: a problem name (``"stefan"``) or class.
        n_functions: number of functions ``n >= 1``.
        params: ``(n,)`` parameter values; default: uniform in the problem's ``train_range``.
        n_context_times, n_context_x: the context tensor grid (default 10 x 10 = 100 points).
        n_targets: uniform random target points per function (default 100).
        seed / generator: the randomness (give one; default seed 0).

    Returns:
        :class:`FunctionSamples` in float64.

    Raises:
        ValueError: unknown problem, non-positive sizes, ``params`` of the wrong shape.
    """
    cls = get_problem(problem)
    for name, value in (("n_functions", n_functions), ("n_context_times", n_context_times),
                        ("n_context_x", n_context_x), ("n_targets", n_targets)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    if params is None:
        lo, hi = cls.train_range
        params = lo + (hi - lo) * torch.rand(n_functions, generator=generator,
                                             dtype=torch.float64)
    else:
        params = torch.as_tensor(np.asarray(params, dtype=np.float64))
        if params.shape != (n_functions,):
            raise ValueError(f"params must have shape ({n_functions},), got {tuple(params.shape)}")
    ct, cx = context_grid(cls, n_functions, n_context_times, n_context_x, generator)
    (t0, t1), (a, b) = cls.t_range, cls.domain
    tt = t0 + (t1 - t0) * torch.rand(n_functions, n_targets, generator=generator,
                                     dtype=torch.float64)
    tx = a + (b - a) * torch.rand(n_functions, n_targets, generator=generator,
                                  dtype=torch.float64)
    cu = torch.empty_like(ct)
    tu = torch.empty_like(tt)
    for i, value in enumerate(params.tolist()):
        solution = cls(value).solution
        cu[i] = solution(ct[i], cx[i])
        tu[i] = solution(tt[i], tx[i])
    return FunctionSamples(cls.name, params, ct, cx, cu, tt, tx, tu)

