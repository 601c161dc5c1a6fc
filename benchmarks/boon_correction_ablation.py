"""Why is BOON's interior gain small at the CPU sizes? Ablations of the 1-D single-step BOON.

For each problem and seed (the seeds select both the data and the initial weights; use seeds
other than the bench's 0, so that nothing is chosen on the bench's test samples), trains the
same FNO1d several ways with the same budget and prints the test relative L2 and the last-epoch
training loss:

* ``FNO``: the plain operator;
* ``BOON``: physguard's BOON, Saad et al.'s Gaussian elimination in every kernel layer (the
  wall inputs are moved by ``delta = -A^-1 K[P, I] v_I``, so the interior sees the Schur
  complement ``K_II - K_IP A^-1 K_PI``);
* ``BOON-rows``: the other way to make a layer's wall rows depend on the wall inputs only:
  the wall rows of ``K`` are replaced by ``[A, 0]`` (the leak ``K[P, I] v_I`` is subtracted
  from the wall outputs) and the interior rows are the plain kernel's (no solve);
* ``BOON-output-only``: BOON with the per-layer correction switched off
  (``kernel_correction=False``, trained and tested so): only the output's wall values are
  set; does setting them slow training?
* ``BOON-ramp``: the correction scaled by ``lambda`` rising from 0 to 1 over the first 30 % of
  the training steps (1 at test time): is it the corrected kernel's start that is slow?
* ``FNO+lift`` / ``BOON+lift``: a second input channel carries the output's prescribed wall
  data, lifted into the domain (Dirichlet: the line through both wall values; Neumann: the
  quadratic with both fluxes), so the interior sees what the walls will be at the output time.
* ``FNO+walls`` / ``BOON+walls`` / ``BOON-output-only+walls``: the output's Dirichlet wall
  values written into the input's wall points instead (the FNO: in its data; BOON: its
  ``input_walls=True``, with and without ``kernel_correction``).

``BOON`` is the plain wrapper here (``kernel_correction=True``, ``input_walls=False``) on every
problem, whatever the run's default for it.

``spike`` is the size of BOON's wall-input change against the hidden field, ``|delta| /
rms(v)`` averaged over the kernel layers, on the trained model and the test inputs.

    python benchmarks/boon_correction_ablation.py [--problems stokes burgers-dirichlet
        heat-neumann] [--seeds 1 2] [--epochs 50 150]

The learning rate halves every third of the epochs (the ``physguard run`` schedule at 150),
except at 50 epochs, where it stays constant as in ``physguard bench boon``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import time

import torch
import torch.nn.functional as F

from physguard.boundary import boon as boon_module
from physguard.datasets.operator import OperatorData
from physguard.experiments import boon as experiment
from physguard.models import fno as fno_module

VARIANTS = ("FNO", "BOON", "BOON-rows", "FNO+lift", "BOON+lift", "BOON-output-only",
            "BOON-ramp", "FNO+walls", "BOON+walls", "BOON-output-only+walls")


def lifted_walls(data: OperatorData) -> torch.Tensor:
    """``(n, 1, N)``: the output's wall data lifted into the domain (see the module)."""
    left, right = data.left_values[:, -1:], data.right_values[:, -1:]
    a, b = float(data.x[0]), float(data.x[-1])
    s = ((data.x - a) / (b - a))[None]
    if data.left_type == "dirichlet":
        field = left + (right - left) * s
    elif data.left_type == "neumann":
        field = (b - a) * (left * s + (right - left) * s.square() / 2)
    else:
        field = torch.zeros(len(data), len(data.x), dtype=data.x.dtype)
    return field[:, None, :]


def with_lift(data: OperatorData) -> OperatorData:
    """A copy of ``data`` whose inputs carry the lifted wall data as a second channel (the
    dataclass checks one channel, so the field is set past it)."""
    lifted = copy.copy(data)
    object.__setattr__(lifted, "inputs", torch.cat([data.inputs, lifted_walls(data)], dim=1))
    return lifted


def with_output_walls(data: OperatorData) -> OperatorData:
    """A copy of ``data`` whose inputs carry the output's Dirichlet wall values at the wall
    points (what BOON's ``input_walls=True`` gives its operator)."""
    inputs = data.inputs.clone()
    for end, kind, values in ((0, data.left_type, data.left_values),
                              (-1, data.right_type, data.right_values)):
        if kind == "dirichlet":
            inputs[:, 0, end] = values[:, -1]
    walled = copy.copy(data)
    object.__setattr__(walled, "inputs", inputs)
    return walled


def _rows_forward(layer, v, correction=None):
    """A kernel layer whose wall rows are ``[A, 0]`` (``BOON-rows``)."""
    n = v.shape[-1]
    z = layer.spectral.spectrum(torch.fft.rfft(v), layer.spectral.n_modes(n))
    out = torch.fft.irfft(z, n=n) + layer.pointwise(v)
    if correction is not None:
        index = torch.tensor(correction.points)
        a_spec = correction.spectral_block(layer, v, z.shape[-1])
        out = out.index_add(2, index, -correction.leak(a_spec, v, z))
    return F.gelu(out) if layer.activation else out


@contextlib.contextmanager
def rows_correction():
    plain = fno_module.FourierLayer1d.forward
    fno_module.FourierLayer1d.forward = _rows_forward
    try:
        yield
    finally:
        fno_module.FourierLayer1d.forward = plain


@contextlib.contextmanager
def with_channels(n_channels: int):
    """``build_operator`` with ``n_channels`` input channels."""
    plain = experiment.build_operator

    def build(data, config):  # built directly: no throwaway model drawing initial weights
        return fno_module.FNO1d(n_channels, data.targets.shape[1], config.modes, config.width,
                                config.n_layers, domain=(float(data.x[0]), float(data.x[-1])))

    experiment.build_operator = build
    try:
        yield
    finally:
        experiment.build_operator = plain


@contextlib.contextmanager
def scaled_correction(scale):
    """BOON's correction with its change ``delta`` (and the spectrum's) scaled by ``scale()``
    at every call."""
    plain = boon_module._LayerCorrection.__call__

    def scaled(self, layer, v, z):
        z_new, points, delta = plain(self, layer, v, z)
        lam = scale()
        return z + lam * (z_new - z), points, lam * delta

    boon_module._LayerCorrection.__call__ = scaled
    try:
        yield
    finally:
        boon_module._LayerCorrection.__call__ = plain


def ramp(config, fraction: float = 0.3):
    """``lambda`` for ``BOON-ramp``: counts the training forward passes (one correction call
    per kernel layer with gradients on), 1 at test time (no gradients)."""
    steps = fraction * config.epochs * -(-config.n_train // config.batch_size)
    calls = [0]

    def scale():
        if not torch.is_grad_enabled():
            return 1.0
        calls[0] += 1
        return min(1.0, calls[0] / config.n_layers / steps)

    return scale


def spike(model, data: OperatorData) -> float:
    """Mean over BOON's kernel layers of ``|delta| / rms(v)`` on ``data``'s inputs."""
    ratios = []
    plain = boon_module._LayerCorrection.__call__

    def record(self, layer, v, z):
        out = plain(self, layer, v, z)
        delta = out[2]
        ratios.append(float(delta.norm() / (v.norm() * math.sqrt(len(self.points)
                                                                 / v.shape[-1]))))
        return out

    boon_module._LayerCorrection.__call__ = record
    try:
        experiment.predict(model, "BOON", data)
    finally:
        boon_module._LayerCorrection.__call__ = plain
    return sum(ratios) / len(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+",
                        default=["stokes", "burgers-dirichlet", "heat-neumann"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, nargs="+", default=[50, 150])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    print("| problem | epochs | seed | variant | rel_l2 | last training loss | spike | s |")
    print("|---|---|---|---|---|---|---|---|")
    for problem in args.problems:
        for epochs in args.epochs:
            for seed in args.seeds:
                config = experiment.BOONConfig.default(
                    problem, "single", epochs=epochs, seed=seed, device="cpu",
                    lr_step=epochs if epochs == 50 else max(1, epochs // 3),
                    kernel_correction=True, input_walls=False)
                train, test = experiment.split_data(config)
                for variant in args.variants:
                    started = time.perf_counter()
                    name = "FNO" if variant.startswith("FNO") else "BOON"
                    lift = variant.endswith("+lift")
                    data = (with_lift(train), with_lift(test)) if lift else (train, test)
                    if variant == "FNO+walls":
                        data = with_output_walls(train), with_output_walls(test)
                    run_config = dataclasses.replace(
                        config, input_walls=name == "BOON" and variant.endswith("+walls"),
                        kernel_correction=not variant.startswith("BOON-output-only"))
                    if variant == "BOON-rows":
                        variation = rows_correction()
                    elif variant == "BOON-ramp":
                        variation = scaled_correction(ramp(config))
                    else:
                        variation = contextlib.nullcontext()
                    with (with_channels(2) if lift else contextlib.nullcontext()), variation:
                        model, losses, _, record = experiment.train_and_evaluate(
                            name, *data, run_config, False)
                    size = f"{spike(model, test):.1f}" if variant == "BOON" else ""
                    print(f"| {problem} | {epochs} | {seed} | {variant} | "
                          f"{record['rel_l2']:.3e} | {losses[-1]:.3e} | {size} | "
                          f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
