"""BOON on neuraloperator's FNO (``physguard[neuralop]``): same forward, exact walls, corrected
blocks, shared weights, training, and the configurations it refuses."""

import warnings

import pytest
import torch
from test_boon_2d import CASES, STENCIL, _check

import physguard as pg
from physguard.boundary.neuralop_fno import NeuralopFNO
from physguard.boundary.walls import WallCorrection

neuralop = pytest.importorskip("neuralop")
from neuralop.models import FNO  # noqa: E402

D = torch.float64
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CONFIGS = [
    dict(n_modes=(16,)),
    dict(n_modes=(16,), preactivation=True, fno_skip="soft-gating", channel_mlp_skip="linear"),
    dict(n_modes=(8, 8)),
    dict(n_modes=(7, 6), fno_skip="identity", separable=True, use_channel_mlp=False),
    dict(n_modes=(6, 6), factorization="tucker", rank=0.5, positional_embedding=None),
]


@pytest.mark.parametrize("config", CONFIGS,
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_without_conditions_the_wrapper_is_the_model(config):
    """physguard's reading of the model (its weights in the lattice form of the correction)
    gives the model's own output, to float32 round-off."""
    torch.manual_seed(0)
    model = FNO(in_channels=2, out_channels=3, hidden_channels=8, **config)
    x = torch.randn(4, 2, 40) if len(config["n_modes"]) == 1 else torch.randn(4, 2, 20, 17)
    with torch.no_grad():
        expected, got = model(x), NeuralopFNO(model)(x)
    assert float((got - expected).abs().max()) < 1e-6 * float(expected.abs().max()) + 1e-7


ONE_D = {
    "dirichlet": dict(left=pg.Dirichlet(1.5), right=pg.Dirichlet(-0.5)),
    "neumann-2": dict(left=pg.Neumann(1.0), right=pg.Neumann(-2.0)),
    "neumann-3": dict(left=pg.Neumann(0.5, order=3), right=pg.Dirichlet(2.0)),
    "periodic": dict(left=pg.Periodic(), right=pg.Periodic()),
}


@pytest.mark.parametrize("name", sorted(ONE_D))
def test_1d_conditions_hold_to_round_off(name):
    torch.manual_seed(1)
    model = FNO(n_modes=(12,), in_channels=1, out_channels=2, hidden_channels=8).double()
    n, (a, b) = 33, (0.0, 2.0)
    out = pg.BOON(model, domain=((a, b),), **ONE_D[name])(torch.randn(3, 1, n, dtype=D))
    h = (b - a) / (n - 1)
    for side, bc in ONE_D[name].items():
        if isinstance(bc, pg.Dirichlet):
            wall = out[..., 0] if side == "left" else out[..., -1]
            assert float((wall - bc.value).abs().max()) < 1e-12
        elif isinstance(bc, pg.Neumann):
            c = STENCIL[bc.order]
            rows = range(len(c)) if side == "left" else [n - 1 - i for i in range(len(c))]
            sign = 1 if side == "left" else -1
            flux = sign * sum(ci * out[..., i] for ci, i in zip(c, rows, strict=True)) / h
            assert float((flux - bc.flux).abs().max()) * h < 1e-12
    if name == "periodic":
        assert torch.equal(out[..., 0], out[..., -1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_2d_conditions_hold_to_round_off(name):
    torch.manual_seed(2)
    model = FNO(n_modes=(6, 6), in_channels=1, out_channels=2, hidden_channels=8).double()
    domain = ((0.0, 2.0), (-1.0, 1.0))
    out = pg.BOON(model, domain=domain, **CASES[name])(torch.randn(3, 1, 20, 17, dtype=D))
    assert out.shape == (3, 2, 20, 17)
    _check(out, CASES[name], (2.0 / 19, 2.0 / 16), 1e-10)


@pytest.mark.parametrize("shape, walls", [
    ((24,), [(0, [0, 23])]),
    ((24,), [(0, [23])]),
    ((16, 12), [(0, [0, 15])]),  # x walls
    ((16, 12), [(1, [0, 11])]),  # y walls (the rfft axis)
])
@pytest.mark.parametrize("preactivation", [False, True])
def test_each_corrected_block_keeps_its_wall_rows_from_the_interior(shape, walls, preactivation):
    """Change every block input off the walls: the block's wall outputs move only at the
    level of the Tikhonov shift (1e-7 relative), the interior fully."""
    torch.manual_seed(3)
    model = FNO(n_modes=(6,) * len(shape), in_channels=1, out_channels=1, hidden_channels=6,
                n_layers=2, preactivation=preactivation).double()
    wrapper = NeuralopFNO(model)
    mask = torch.zeros(shape, dtype=torch.bool)
    for axis, points in walls:
        for p in points:
            mask.select(axis, p).fill_(True)
    v1 = torch.randn(2, 6, *shape, dtype=D)
    v2 = torch.where(mask, v1, torch.randn(2, 6, *shape, dtype=D))
    with torch.no_grad():
        for block in range(2):
            change = (wrapper._block(v1, block, WallCorrection(walls))
                      - wrapper._block(v2, block, WallCorrection(walls))).abs()
            plain = (wrapper._block(v1, block, None) - wrapper._block(v2, block, None)).abs()
            assert float(change[..., mask].max()) < 1e-5 * float(plain[..., mask].max())
            assert float(change[..., ~mask].max()) > 1e-2


def test_weights_are_shared_and_train():
    """BOON's parameters are the model's own tensors; a step on BOON's loss moves them."""
    torch.manual_seed(4)
    model = FNO(n_modes=(8,), in_channels=1, out_channels=1, hidden_channels=8)
    boon = pg.BOON(model, left=pg.Dirichlet(0.0), right=pg.Neumann(1.0))
    assert {id(p) for p in boon.parameters()} == {id(p) for p in model.parameters()}
    before = model.fno_blocks.convs[0].weight.to_tensor().detach().clone()
    optimiser = torch.optim.SGD(boon.parameters(), lr=0.1)
    boon(torch.randn(4, 1, 32)).square().mean().backward()
    optimiser.step()
    assert not torch.equal(before, model.fno_blocks.convs[0].weight.to_tensor())


def test_boon_beats_the_plain_model_on_the_walls_of_physguard_data():
    """Train the same neuraloperator FNO (same seed, data, budget) plain and inside BOON on
    viscous Burgers with Dirichlet walls: the walls are exact only with BOON, and both learn
    the field (relative L2 well below the untrained model's 1)."""
    from physguard.datasets import make_operator_data
    from physguard.experiments.boon import BOONConfig
    from physguard.training import fit_operator

    data = make_operator_data("burgers-dirichlet", 50, 64, seed=0)
    train, test = data.subset(range(40)), data.subset(range(40, 50))
    config = BOONConfig(problem=data.problem, epochs=30, batch_size=10, lr=3e-3, lr_step=10)
    domain = ((float(data.x[0]), float(data.x[-1])),)

    def apply(boon: bool, part):
        def run(model, index, x):
            if not boon:
                return model(x)
            left = pg.Dirichlet(part.left_values[index].float())
            right = pg.Dirichlet(part.right_values[index].float())
            return pg.BOON(model, left=left, right=right, domain=domain)(x)
        return run

    results = {}
    for boon in (False, True):
        torch.manual_seed(0)
        model = FNO(n_modes=(16,), in_channels=1, out_channels=1, hidden_channels=16)
        fit_operator(model, apply(boon, train), train.inputs, train.targets, config,
                     "neuralop", progress=False)
        with torch.no_grad():
            pred = apply(boon, test)(model.eval(), torch.arange(10), test.inputs.float())
        truth = test.targets.float()
        wall = torch.stack([pred[..., 0] - test.left_values, pred[..., -1] - test.right_values])
        rel = ((pred - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).mean()
        results[boon] = (float(wall.abs().max()), float(rel))
    print("neuralop FNO, burgers-dirichlet: (wall error, relative L2) plain", results[False],
          "BOON", results[True])
    (plain_wall, plain_rel), (boon_wall, boon_rel) = results[False], results[True]
    assert boon_wall < 1e-5 and plain_wall > 1e-2
    assert boon_rel < 0.75 and plain_rel < 0.75


@pytest.mark.parametrize("options, message", [
    (dict(domain_padding=0.25), "domain_padding"),
    (dict(norm="instance_norm"), "norm"),
    (dict(stabilizer="tanh"), "stabilizer"),
    (dict(resolution_scaling_factor=2.0), "resolution_scaling_factor"),
    (dict(fno_block_precision="half"), "fno_block_precision"),
    (dict(n_modes=(4, 4, 4)), "1-D and 2-D"),
])
def test_refused_configurations_say_why(options, message):
    settings = dict(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=4)
    settings.update(options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FNO(**settings)
    with pytest.raises(ValueError, match=message):
        pg.BOON(model, left=pg.Dirichlet(0.0))


def test_call_time_errors():
    model = FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=4)
    boon = pg.BOON(model, left=pg.Dirichlet(0.0))
    with pytest.raises(ValueError, match="even number of points"):
        boon(torch.randn(1, 1, 15, 16))  # neuraloperator's layer is not a convolution there
    with pytest.raises(ValueError, match="more than the 8 kept modes"):
        boon(torch.randn(1, 1, 8, 16))
    periodic = pg.BOON(model, left=pg.Periodic(), right=pg.Periodic())
    out = periodic(torch.randn(2, 1, 15, 16))  # no kernel correction: the model's own layers
    assert torch.equal(out[..., 0, :], out[..., -1, :])
    with pytest.raises(ValueError, match="input must have shape"):
        boon(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match="domain must be"):
        pg.BOON(model, domain=((0.0, 1.0),))
    with pytest.raises(ValueError, match="domain is for a wrapped neuraloperator"):
        pg.BOON(pg.FNO1d(1, 1, 4, 8, 2), domain=((0.0, 1.0),))


# -- issue 25: a drop-in model for neuraloperator's training loop ------------------------------

def _fno(**options):
    torch.manual_seed(0)
    return FNO(n_modes=(8,), in_channels=1, out_channels=1, hidden_channels=8, n_layers=2,
               **options)


def test_called_like_neuraloperator_models_with_batch_values():
    """model(**sample) as neuraloperator's Trainer calls it: x, y (ignored) and per-sample
    wall values that replace the built ones for that batch only."""
    boon = pg.BOON(_fno(), left=pg.Dirichlet(0.0), right=pg.Neumann(0.0))
    x = torch.randn(3, 1, 33)
    left = torch.tensor([1.0, -2.0, 0.5])
    right = torch.tensor([0.3, 0.0, -4.0])
    out = boon(x=x, y=torch.zeros(3, 1, 33), left_values=left, right_values=right)
    assert torch.equal(out[:, 0, 0], left)
    h = 1.0 / 32
    flux = (3 * out[:, 0, -1] - 4 * out[:, 0, -2] + out[:, 0, -3]) / (2 * h)
    torch.testing.assert_close(flux, right, atol=2e-4, rtol=0)
    assert boon.left == pg.Dirichlet(0.0)  # the built conditions are back
    assert float(boon(x)[:, 0, 0].abs().max()) == 0.0
    with pytest.raises(ValueError, match="names no wall"):
        boon(x=x, middle_values=left)
    with pytest.raises(ValueError, match="output_shape"):
        boon(x=x, output_shape=(65,))
    periodic = pg.BOON(_fno(), left=pg.Periodic(), right=pg.Periodic())
    with pytest.raises(ValueError, match="a periodic one"):
        periodic(x=x, left_values=left)


def test_state_dict_and_checkpoints_round_trip(tmp_path):
    """The reproduction: Unexpected key(s) "_metadata"; and the Trainer's checkpoint calls."""
    boon = pg.BOON(_fno(), left=pg.Dirichlet(1.0), right=pg.Neumann(torch.tensor([0.5])))
    state = boon.state_dict()
    assert "_metadata" not in state
    other = pg.BOON(FNO(n_modes=(8,), in_channels=1, out_channels=1, hidden_channels=8,
                        n_layers=2), left=pg.Dirichlet(1.0), right=pg.Neumann(0.5))
    other.load_state_dict(state)
    x = torch.randn(2, 1, 33)
    with torch.no_grad():
        assert torch.equal(other(x), boon(x))
    boon.save_checkpoint(tmp_path, "model")
    torch.load(tmp_path / "model_state_dict.pt", weights_only=True)
    torch.load(tmp_path / "model_metadata.pkl", weights_only=True)
    third = pg.BOON(_fno(), left=pg.Dirichlet(1.0), right=pg.Neumann(0.5))
    with torch.no_grad():
        for parameter in third.parameters():
            parameter.zero_()
    third.load_checkpoint(tmp_path, "model")
    rebuilt = pg.BOON.from_checkpoint(tmp_path, "model")
    assert rebuilt.left == pg.Dirichlet(1.0) and rebuilt.right.flux.tolist() == [0.5]
    with torch.no_grad():
        assert torch.equal(third(x), boon(x)) and torch.equal(rebuilt(x), boon(x))
    with pytest.raises(FileNotFoundError):
        pg.BOON.from_checkpoint(tmp_path, "missing")


def test_conditions_in_physical_units_with_a_normaliser():
    """Dirichlet(1.0) held as mean + std (2.9456) in physical units before; now the walls hold
    after the processor's inverse transform, also with a mean that varies along the normal."""
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer

    torch.manual_seed(1)
    targets = 2.0 + torch.randn(16, 1, 33) * torch.linspace(0.5, 1.5, 33) \
        + torch.linspace(0, 3, 33)
    for dim in ([0, 2], [0]):  # per channel; per point (mean varies along the normal)
        norm = UnitGaussianNormalizer(dim=dim)
        norm.fit(targets)
        boon = pg.BOON(_fno(), left=pg.Dirichlet(1.0), right=pg.Neumann(-2.0),
                       output_normalizer=norm)
        with torch.no_grad():
            physical = norm.inverse_transform(boon(torch.randn(4, 1, 33)))
        assert float((physical[:, 0, 0] - 1.0).abs().max()) < 1e-5
        h = 1.0 / 32
        flux = (3 * physical[:, 0, -1] - 4 * physical[:, 0, -2] + physical[:, 0, -3]) / (2 * h)
        assert float((flux + 2.0).abs().max()) < 1e-3
    with pytest.raises(TypeError, match="inverse_transform"):
        pg.BOON(_fno(), left=pg.Dirichlet(0.0), output_normalizer=object())
    with pytest.raises(ValueError, match="input_walls"):
        pg.BOON(FNO(n_modes=(8,), in_channels=1, out_channels=1, hidden_channels=8),
                left=pg.Dirichlet(0.0), input_walls=True, output_normalizer=norm)


class MyFNO(FNO):
    """A subclass defined outside neuraloperator (as The Well's benchmark FNO is)."""

    def __init__(self, width=8, **kwargs):
        super().__init__(n_modes=(8,), in_channels=1, out_channels=1, hidden_channels=width,
                         n_layers=2, **kwargs)


def test_subclasses_of_neuraloperators_fno():
    torch.manual_seed(0)
    boon = pg.BOON(MyFNO(), left=pg.Dirichlet(2.0), right=pg.Dirichlet(-1.0))
    out = boon(torch.randn(2, 1, 33))
    assert torch.equal(out[:, 0, 0], torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="MyFNO: norm is set"):
        pg.BOON(MyFNO(norm="group_norm"), left=pg.Dirichlet(0.0))


def test_well_files_yield_trainer_samples_that_boon_takes(tmp_path):
    """physguard's reader as a Trainer data set: each sample carries its walls' values, and
    BOON(neuralop FNO) holds them per sample from the batch."""
    from physguard.datasets.operator import make_operator_data
    from physguard.datasets.well import TrainerSamples, export_well, read_well

    data = make_operator_data("stokes", 6, 33, "single", seed=1)
    export_well(data, tmp_path / "s.h5")
    samples = TrainerSamples(read_well(tmp_path / "s.h5", "stokes"))
    batch = next(iter(torch.utils.data.DataLoader(samples, batch_size=4)))
    assert set(batch) == {"x", "y", "left_values", "right_values"}
    boon = pg.BOON(_fno(), left=pg.Dirichlet(0.0), right=pg.Dirichlet(0.0))
    out = boon(**batch)
    torch.testing.assert_close(out[:, 0, 0], batch["left_values"][:, 0])
    torch.testing.assert_close(out[:, 0, -1], batch["right_values"][:, 0])
    assert float(batch["left_values"].std()) > 0  # the values differ between samples
