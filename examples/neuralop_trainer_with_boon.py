"""BOON as the model of neuraloperator's own training loop (``neuralop.Trainer``).

The heat equation with an insulated left wall and a heated right wall whose flux differs per
sample (``du/dx(1, t) = U sin(pi t)``, ``U ~ U[2, 6]``): each sample carries its wall flux
under the key ``right_values``, which the Trainer passes to the model with ``model(**sample)``.
The data processor normalises the targets (``UnitGaussianNormalizer``); BOON, given the same
normaliser, keeps the conditions in physical units. The Trainer saves a checkpoint every epoch
(``save_every``), a second Trainer resumes from it (``resume_from_dir``), and the walls of the
decoded predictions are checked: the left flux 0 and each sample's right flux, with the
2nd-order one-sided stencil BOON enforces.

    python examples/neuralop_trainer_with_boon.py [--tiny]
"""

import argparse
import tempfile
import warnings
from pathlib import Path

import torch
from neuralop import LpLoss, Trainer
from neuralop.data.transforms.data_processors import DefaultDataProcessor
from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
from neuralop.models import FNO

import physguard as pg
from physguard.pdes import HeatNeumann

parser = argparse.ArgumentParser()
parser.add_argument("--tiny", action="store_true", help="small sizes (CI)")
args = parser.parse_args()
# neuraloperator's LpLoss warns about the batch keys the Trainer passes it (x, right_values)
warnings.filterwarnings("ignore", message="LpLoss.__call__")
n_train, n_test, points, epochs = (24, 8, 32, 2) if args.tiny else (400, 100, 64, 30)

# -- data: x = u(x, 0), y = u(x, 0.5), right_values = U (the flux at t = 0.5) -------------------
torch.manual_seed(0)
x = torch.linspace(0, 1, points, dtype=torch.float64)
samples = []
for _ in range(n_train + n_test):
    omega, amplitude = 2.01 + 1.98 * torch.rand(()).item(), 2 + 4 * torch.rand(()).item()
    heat = HeatNeumann(omega, amplitude=amplitude)
    samples.append({"x": heat.initial_condition(x)[None].float(),
                    "y": heat.solution(0.5, x)[None].float(),
                    "right_values": torch.tensor(float(heat.right_flux(torch.tensor(0.5))))})
train, test = samples[:n_train], samples[n_train:]
loader = torch.utils.data.DataLoader(train, batch_size=8, shuffle=True)
test_loader = torch.utils.data.DataLoader(test, batch_size=8)

y_train = torch.stack([s["y"] for s in train])
out_normalizer = UnitGaussianNormalizer(dim=[0, 2])
out_normalizer.fit(y_train)
processor = DefaultDataProcessor(out_normalizer=out_normalizer)


def make_model() -> pg.BOON:
    torch.manual_seed(0)
    fno = FNO(n_modes=(8,), in_channels=1, out_channels=1, hidden_channels=16, n_layers=2)
    return pg.BOON(fno, left=pg.Neumann(0.0), right=pg.Neumann(0.0),
                   output_normalizer=out_normalizer)  # right: per sample, from the batch


def train_for(model, n_epochs, **options):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 100)
    trainer = Trainer(model=model, n_epochs=n_epochs, data_processor=processor, device="cpu",
                      verbose=False)
    return trainer.train(loader, {"test": test_loader}, optimizer, scheduler,
                         training_loss=LpLoss(d=1, p=2), eval_losses={"l2": LpLoss(d=1, p=2)},
                         **options)


folder = Path(tempfile.mkdtemp())
model = make_model()
train_for(model, epochs, save_every=1, save_dir=folder)
print("checkpoint files:", sorted(p.name for p in folder.iterdir()))

resumed = make_model()
metrics = train_for(resumed, epochs + 1, resume_from_dir=folder)  # one more epoch
print("after resuming:", {k: round(float(v), 4) for k, v in metrics.items()
                          if isinstance(v, (int, float, torch.Tensor))})

# -- the walls in physical units, after the processor's postprocess -------------------------------
batch = next(iter(test_loader))
processor.eval()
resumed.eval()
with torch.no_grad():
    sample = processor.preprocess(dict(batch))
    out, _ = processor.postprocess(resumed(**sample), sample)
h = 1.0 / (points - 1)
left = (-3 * out[..., 0] + 4 * out[..., 1] - out[..., 2]) / (2 * h)
right = (3 * out[..., -1] - 4 * out[..., -2] + out[..., -3]) / (2 * h)
left_error = float(left.abs().max())
right_error = float((right[:, 0] - batch["right_values"]).abs().max())
print(f"left flux error {left_error:.1e}, right flux error {right_error:.1e} (fluxes "
      f"{batch['right_values'].min():.2f} .. {batch['right_values'].max():.2f})")
assert left_error < 5e-3 and right_error < 5e-3, "walls not held in physical units"
resumed.save_checkpoint(folder / "final", "boon")  # neuraloperator's layout, weights_only-safe
reloaded = pg.BOON.from_checkpoint(folder / "final", "boon")
with torch.no_grad():
    again = reloaded(**processor.preprocess(dict(batch)))
    before = resumed(**processor.preprocess(dict(batch)))
print(f"from_checkpoint: largest difference {float((again - before).abs().max()):.1e}")
assert torch.equal(again, before)
