"""The ANP: shapes, a learning signal, checkpoints that load with weights_only=True."""

import pytest
import torch

import physguard as pg
from physguard.datasets import sample_functions
from physguard.experiments.gpme import to_np_data
from physguard.models import ANP
from physguard.training import TrainConfig, load_checkpoint, save_checkpoint, train_anp


def test_predict_shapes_and_positive_variance():
    torch.manual_seed(0)
    model = ANP(hidden=32, n_heads=4).eval()
    data = to_np_data(sample_functions("stefan", 3, seed=0))
    pred = model.predict(data.xc, data.yc, data.xt[:, :50], n_samples=5,
                         generator=torch.Generator().manual_seed(0), chunk_size=16)
    assert pred.mean.shape == (5, 3, 50)
    assert (pred.var >= model.min_std**2).all()
    mixed = pg.moment_match(pred, dim=0)
    assert mixed.mean.shape == (3, 50)
    # Chunking does not change the answer.
    again = model.predict(data.xc, data.yc, data.xt[:, :50], n_samples=5,
                          generator=torch.Generator().manual_seed(0), chunk_size=50)
    assert torch.allclose(pred.mean, again.mean, atol=1e-5)


def test_training_lowers_the_validation_loss_and_keeps_the_best_epoch():
    train = to_np_data(sample_functions("pme", 64, seed=0))
    val = to_np_data(sample_functions("pme", 16, seed=1))
    torch.manual_seed(0)
    model = ANP(hidden=32, n_heads=4)
    result = train_anp(model, train, val, TrainConfig(epochs=15, batch_size=16, lr=3e-3,
                                                      patience=15), progress=False)
    assert result.val_loss[result.best_epoch] == min(result.val_loss)
    assert min(result.val_loss) < result.val_loss[0] - 0.3


def test_checkpoint_roundtrip(tmp_path):
    model = ANP(hidden=16, n_heads=2, min_std=0.01)
    save_checkpoint(tmp_path / "m.pt", model, problem="stefan")
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta == {"problem": "stefan"}
    assert loaded.config == model.config
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    torch.load(tmp_path / "m.pt", weights_only=True)  # plain tensors and primitives only
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
