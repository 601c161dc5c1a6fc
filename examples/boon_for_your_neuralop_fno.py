"""Exact boundary conditions for your neuraloperator FNO: ``physguard.BOON(neuralop_model, ...)``.

Needs ``pip install "physguard[neuralop]"``. Two parts:

1. 1-D: the same ``neuralop.models.FNO`` (same seed, data and budget) trained plain and
   inside BOON on viscous Burgers with Dirichlet walls; prints both relative L2 errors and
   the wall errors (BOON's is zero to round-off, the plain model's is not).
2. 2-D: a ``neuralop.models.FNO(n_modes=(m, m))`` trained inside BOON on the lid-driven
   cavity's velocity ``(u, v)``: the lid ``u = 1`` on the top wall and no slip on the others,
   per output channel, hold exactly.

BOON reads the kernel correction from the model's own spectral weights and skips (it shares
them: train ``model.parameters()`` or ``boon.parameters()``, they are the same tensors). What
it supports and refuses: ``physguard.boundary.neuralop_fno``.

    python examples/boon_for_your_neuralop_fno.py [--tiny]
"""

import argparse
import warnings

import torch
from neuralop.models import FNO

import physguard as pg
from physguard.datasets import make_operator_data
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.experiments.boon import BOONConfig, fit_operator

warnings.filterwarnings("ignore", module="neuralop")  # its optional-dependency notices
parser = argparse.ArgumentParser()
parser.add_argument("--tiny", action="store_true", help="small sizes (CI)")
args = parser.parse_args()
n_train, n_test, n_points, epochs = (16, 4, 32, 2) if args.tiny else (200, 50, 128, 100)

# 1. 1-D: plain vs BOON on the same data, seed and budget.
data = make_operator_data("burgers-dirichlet", n_train + n_test, n_points, seed=0)
train, test = data.subset(range(n_train)), data.subset(range(n_train, n_train + n_test))
config = BOONConfig(problem=data.problem, epochs=epochs, batch_size=min(20, n_train),
                    lr=3e-3, lr_step=max(1, epochs // 3))
domain = ((float(data.x[0]), float(data.x[-1])),)  # the grid includes both ends


def forward(model, boon: bool, part, index, inputs):
    if not boon:
        return model(inputs)
    left = pg.Dirichlet(part.left_values[index].float())  # (B, 1): one value per sample
    right = pg.Dirichlet(part.right_values[index].float())
    return pg.BOON(model, left=left, right=right, domain=domain)(inputs)


for boon in (False, True):
    torch.manual_seed(0)
    model = FNO(n_modes=(16,), in_channels=1, out_channels=1, hidden_channels=32)
    fit_operator(model, lambda m, i, x, boon=boon: forward(m, boon, train, i, x),
                 train.inputs, train.targets, config, "BOON-FNO" if boon else "FNO",
                 progress=not args.tiny)
    with torch.no_grad():
        pred = forward(model.eval(), boon, test, torch.arange(n_test), test.inputs.float())
    truth = test.targets.float()
    rel = ((pred - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).mean()
    wall = torch.cat([pred[..., 0] - test.left_values, pred[..., -1] - test.right_values])
    print(f"1-D {'BOON(neuralop FNO)' if boon else 'neuralop FNO      '}: relative L2 "
          f"{float(rel):.3e}, largest wall error {float(wall.abs().max()):.1e}")

# 2. 2-D: the cavity's velocity, Dirichlet on every wall and per channel (u, v).
n_2d = 16 if args.tiny else 32  # even: neuraloperator's layer is a convolution only there
cavity = make_operator_data_2d("cavity", 4 if args.tiny else 40, n_points=n_2d,
                               progress=not args.tiny)
torch.manual_seed(0)
model = FNO(n_modes=(12, 12), in_channels=cavity.inputs.shape[1], out_channels=2,
            hidden_channels=16)


def forward_2d(m, index, x):
    # The data's wall values per sample, channel and wall point: (B, 2, N_wall).
    conditions = {side: pg.Dirichlet(getattr(cavity, side)[index].float())
                  for side in ("left", "right", "bottom", "top")}
    return pg.BOON(m, **conditions)(x)  # domain: the unit square, both ends on the grid


fit_operator(model, forward_2d, cavity.inputs, cavity.targets, config, "BOON-FNO 2-D",
             progress=not args.tiny)
with torch.no_grad():
    pred = forward_2d(model.eval(), torch.arange(len(cavity.inputs)), cavity.inputs.float())
targets = cavity.targets.float()
error = max(float((pred[..., 0, :] - cavity.left).abs().max()),
            float((pred[..., :, -1] - cavity.top).abs().max()))
rel = ((pred - targets).flatten(1).norm(dim=1) / targets.flatten(1).norm(dim=1)).mean()
print(f"2-D BOON(neuralop FNO) on the cavity velocity: relative L2 {float(rel):.3e} (training "
      f"set), largest wall error {error:.1e} (the lid: u = 1 on the top wall)")
