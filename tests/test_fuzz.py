"""Property-based fuzz campaign over the public entry points (issue #9).

Every call gets random shapes, dtypes, NaN / inf, empty, huge and tiny values. The outcome must
be a correct result (checked where cheap: exact constraints, finite outputs, exact boundary
values) or one of physguard's specific errors, ``ValueError`` / ``TypeError`` (click: a usage
error or an ``Error:`` message), never another exception type, a hang or a partial file.

The normal suite runs a short profile (about 25 examples per entry point); set
``PHYSGUARD_FUZZ_EXAMPLES`` (e.g. 1000) for a long campaign. Each test counts its cases in
``CASES`` and the session prints the totals (``-s`` shows them).
"""

import collections
import io
import json
import os
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import physguard as pg
from physguard.cli import main
from physguard.datasets import FunctionSamples, OperatorData
from physguard.datasets.operator2d import OperatorData2d, make_operator_data_2d
from physguard.experiments.evaluate import load_observations
from physguard.models import ANP
from physguard.pdes import CONSERVATION_PROBLEMS, Stefan
from physguard.training import load_checkpoint, save_checkpoint

EXAMPLES = int(os.environ.get("PHYSGUARD_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
SPECIFIC = (ValueError, TypeError)
CASES: collections.Counter = collections.Counter()

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-310, 1e-30, 1e30, 1e308, -1e308, float("nan"),
           float("inf"), float("-inf")]
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64,
          torch.complex128, torch.bool]


@st.composite
def tensors(draw, max_dims=3, max_size=5, dtypes=DTYPES, min_dims=0, shape=None,
            positive=False):
    """A tensor of random shape (sizes 0..max_size, empty included), dtype and values.

    Two draws in three are well-formed (float64 / float32, finite moderate values), so that
    the valid paths are exercised as well as the checks; the rest mix in NaN, inf, subnormal
    and huge values and every other dtype.
    """
    if shape is None:
        shape = draw(st.lists(st.integers(0, max_size), min_size=min_dims, max_size=max_dims))
    dirty = draw(st.integers(0, 2)) == 0
    dtype = draw(st.sampled_from(dtypes if dirty else [torch.float64, torch.float32]))
    n = int(np.prod(shape)) if shape else 1
    low = 0.0 if positive and not dirty else -10.0
    element = st.floats(low, 10) if not dirty else st.one_of(st.sampled_from(SPECIAL),
                                                             st.floats(-10, 10))
    values = draw(st.lists(element, min_size=n, max_size=n))
    array = torch.tensor(values, dtype=torch.float64).reshape(shape)
    if dtype == torch.bool:
        return array > 0
    if dtype == torch.int64:
        return torch.nan_to_num(array).clamp(-1e6, 1e6).to(torch.int64)
    return array.to(dtype)


def scalars():
    return st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True),
                     st.integers(-10, 10), st.just("1.0"), st.just(None))


def _outcome(name, call):
    """Run ``call``; return its result or ``None`` for a specific error. Other errors fail."""
    CASES[name] += 1
    try:
        return call()
    except SPECIFIC:
        CASES[name + " (specific error)"] += 1
        return None


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nfuzz cases:", dict(sorted(CASES.items())))


# -- the constraint core -------------------------------------------------------------------------

@st.composite
def gaussian_arguments(draw):
    """``(mean, {"var": ...} or {"cov": ...})``, often of matching shapes and PSD."""
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=3))
    mean = draw(tensors(shape=shape))
    kind = draw(st.sampled_from(["var", "cov", "psd-cov"]))
    if kind == "var":
        other = shape if draw(st.booleans()) else None
        return mean, {"var": draw(tensors(shape=other, positive=True))}
    n = shape[-1] if shape else draw(st.integers(0, 3))
    factor = draw(tensors(shape=[*shape[:-1], n, n] if kind == "psd-cov" else None))
    if kind == "psd-cov" and torch.is_floating_point(factor) and factor.dim() >= 2:
        factor = factor @ factor.transpose(-1, -2)
    return mean, {"cov": factor}


@FUZZ
@given(gaussian_arguments())
def test_gaussian(arguments):
    mean, covariance = arguments
    pred = _outcome("Gaussian", lambda: pg.Gaussian(mean, **covariance))
    if pred is not None:
        assert torch.isfinite(pred.mean).all() and (pred.var >= 0).all()
        assert pred.sample(2, generator=torch.Generator().manual_seed(0)).isfinite().all()


@FUZZ
@given(st.integers(1, 6), st.integers(1, 3), tensors(max_dims=2), tensors(max_dims=1),
       st.one_of(scalars(), tensors(max_dims=1)), st.floats(1e-300, 1e300))
def test_constraint_updates(n, m, G, b, noise_var, scale):
    g = torch.Generator().manual_seed(n * 7 + m)
    pred = pg.Gaussian(scale * torch.randn(n, generator=g, dtype=torch.float64),
                       var=scale * torch.rand(n, generator=g, dtype=torch.float64))
    constraint = _outcome("LinearConstraint",
                          lambda: pg.LinearConstraint(G, b, noise_var=noise_var))
    good = pg.LinearConstraint(torch.rand(m, n, generator=g, dtype=torch.float64) + 0.1,
                               torch.randn(m, generator=g, dtype=torch.float64))
    for c in (constraint, good):
        if c is None:
            continue
        for update in (pg.probconserv, pg.hardc):
            post = _outcome(update.__name__, lambda c=c, update=update: update(pred, c))
            if post is None:
                continue
            assert torch.isfinite(post.mean).all() and (post.var >= 0).all()
            if bool((c.noise_var == 0).all()):
                # Round-off is relative to the prior mean too (mean~ = mu - correction).
                magnitude = post.mean.abs() + pred.mean.abs()
                size = (c.G.abs() @ magnitude.unsqueeze(-1)).squeeze(-1) + c.b.abs()
                assert bool((c.residual(post.mean).abs() <= 1e-9 * size + 1e-300).all())


@FUZZ
@given(st.integers(1, 8), st.floats(-1e3, 1e3), st.floats(1e-6, 1e6), st.floats(-5, 5),
       st.sampled_from([0.0, -1.0, 0.5]))
def test_nonnegative(n, shift, var, total, lower):
    g = torch.Generator().manual_seed(n)
    pred = pg.Gaussian(shift + torch.randn(n, generator=g, dtype=torch.float64),
                       var=torch.full((n,), var, dtype=torch.float64))
    G = torch.full((1, n), 1.0 / n, dtype=torch.float64)
    out = _outcome("nonnegative",
                   lambda: pg.nonnegative(pred, pg.LinearConstraint(G, [total]), lower))
    feasible = total >= lower - 1e-12
    if out is None:
        assert not feasible or lower > total - 1e-9  # refused only when no profile exists
    else:
        post, _ = out
        assert float(post.mean.min()) >= lower - 1e-7 * (1 + abs(shift))
        assert abs(float(G @ post.mean) - total) <= 1e-8 * (1 + abs(shift) + abs(total))


@st.composite
def grids(draw):
    """Sorted 1-D grids most of the time, anything else otherwise."""
    x = draw(tensors(max_dims=2, max_size=8))
    if draw(st.booleans()) and torch.is_floating_point(x):
        x = x.flatten().sort().values
    return x


@FUZZ
@given(grids(), tensors(max_dims=2))
def test_quadrature(x, mass):
    weights = _outcome("trapezoid_weights", lambda: pg.trapezoid_weights(x))
    if weights is not None:
        assert torch.isfinite(weights).all()
    constraint = _outcome("mass_constraint", lambda: pg.mass_constraint(x, mass))
    if constraint is not None:
        assert isinstance(constraint, pg.LinearConstraint)


@FUZZ
@given(st.lists(st.integers(1, 4), min_size=2, max_size=3).flatmap(
    lambda shape: st.tuples(tensors(shape=shape), tensors(shape=shape, positive=True))),
    st.integers(-3, 3))
def test_moment_match(arrays, dim):
    mean, var = arrays
    pred = _outcome("Gaussian", lambda: pg.Gaussian(mean, var=var))
    if pred is not None:
        out = _outcome("moment_match", lambda: pg.moment_match(pred, dim))
        if out is not None:
            assert torch.isfinite(out.mean).all() and (out.var >= 0).all()


# -- the problems --------------------------------------------------------------------------------

@st.composite
def problem_arguments(draw):
    """A problem name, a parameter (often in its training range) and (t, x) (often inside)."""
    name = draw(st.sampled_from(sorted(CONSERVATION_PROBLEMS)))
    cls = CONSERVATION_PROBLEMS[name]
    if draw(st.booleans()):
        param = draw(st.floats(*cls.train_range))
        t = torch.tensor(draw(st.lists(st.floats(*cls.t_range), max_size=4)), dtype=torch.float64)
        x = torch.tensor(draw(st.lists(st.floats(*cls.domain), min_size=len(t), max_size=len(t))),
                         dtype=torch.float64)
        return name, param, t, x
    return name, draw(scalars()), draw(tensors()), draw(tensors())


@FUZZ
@given(problem_arguments())
def test_problems(arguments):
    name, param, t, x = arguments
    cls = CONSERVATION_PROBLEMS[name]
    problem = _outcome(name, lambda: cls(param))
    if problem is None:
        return
    u = _outcome(f"{name}.solution", lambda: problem.solution(t, x))
    if u is not None:
        assert torch.isfinite(u).all()
    total = _outcome(f"{name}.mass", lambda: problem.mass(t))
    if total is not None:
        assert torch.isfinite(total).all()
    if problem.has_shock:
        front = _outcome(f"{name}.shock_position", lambda: problem.shock_position(t))
        if front is not None:
            a, b = problem.domain
            assert bool(((front >= a) & (front <= b)).all())


# -- operators and BOON --------------------------------------------------------------------------

def conditions():
    value = st.one_of(st.floats(-5, 5), scalars(), tensors(max_dims=2, max_size=3))
    return st.one_of(
        st.none(),
        st.builds(lambda v: ("Dirichlet", v), value),
        st.builds(lambda v, o: ("Neumann", v, o), value, st.sampled_from([1, 2, 3, 4])),
        st.just(("Periodic",)), st.just("junk"))


def _boon_outcome(kind, make, specs, u, label):
    """Build the operator, the conditions, BOON and its output, counting each step;
    ``(model, out)`` with ``None`` from the first step that raised a specific error."""
    operator = _outcome(kind, make)
    if operator is None:
        return None, None
    walls = [_outcome("condition", lambda s=s: _condition(s)) for s in specs]
    model = _outcome(label, lambda: pg.BOON(operator, *walls))
    if model is None:
        return None, None
    return model, _outcome(f"{label} forward", lambda: model(u))


def _condition(spec):
    if spec is None or spec == "junk":
        return spec
    kind, *args = spec
    return getattr(pg, kind)(*args)


@FUZZ
@given(st.sampled_from(["FNO1d", "SpaceTimeFNO1d"]), st.integers(-1, 3),
       st.one_of(st.just((0.0, 1.0)), st.tuples(scalars(), scalars())), conditions(),
       conditions(),
       st.one_of(tensors(max_dims=4, max_size=6),
                 st.tuples(st.integers(0, 3), st.integers(0, 9)).flatmap(
                     lambda bn: tensors(shape=[bn[0], 1, bn[1]]))))
def test_operators_and_boon(kind, modes, domain, left, right, u):
    torch.manual_seed(0)
    if kind == "FNO1d":
        make = lambda: pg.FNO1d(1, 2, modes, 4, 2, domain=domain)  # noqa: E731
    else:
        make = lambda: pg.SpaceTimeFNO1d(1, 3, modes, 2, 4, 2, domain=domain)  # noqa: E731
    model, out = _boon_outcome(kind, make, (left, right), u, "BOON")
    if out is None:
        return
    assert out.shape[0] == u.shape[0] and out.shape[-1] == u.shape[-1]
    for bc, end in ((model.left, 0), (model.right, -1)):
        if isinstance(bc, pg.Dirichlet) and isinstance(bc.value, float):
            assert torch.allclose(out[..., end], torch.full_like(out[..., end], bc.value),
                                  rtol=1e-6, atol=1e-6)
    if model.periodic:
        assert torch.equal(out[..., 0], out[..., -1])


@FUZZ
@given(st.sampled_from(["FNO2d", "SpaceTimeFNO2d"]), st.integers(-1, 3),
       conditions(), conditions(), conditions(), conditions(),
       st.one_of(tensors(max_dims=5, max_size=5),
                 st.tuples(st.integers(0, 2), st.integers(0, 7), st.integers(0, 7)).flatmap(
                     lambda s: tensors(shape=[s[0], 1, s[1], s[2]]))))
def test_two_d_operators_and_boon(kind, modes, left, right, bottom, top, u):
    torch.manual_seed(0)
    make = {"FNO2d": lambda: pg.FNO2d(1, 2, modes, 4, 2),
            "SpaceTimeFNO2d": lambda: pg.SpaceTimeFNO2d(1, 3, modes, 4, 2, time_padding=1)}
    model, out = _boon_outcome(kind, make[kind], (left, right, bottom, top), u, "BOON 2-D")
    if out is None:
        return
    assert out.shape[0] == u.shape[0] and out.shape[-2:] == u.shape[-2:]
    for bc, wall in ((model.left, out[..., 0, 1:-1]), (model.top, out[..., 1:-1, -1])):
        if isinstance(bc, pg.Dirichlet) and isinstance(bc.value, float):
            assert torch.allclose(wall, torch.full_like(wall, bc.value), rtol=1e-6, atol=1e-6)


@FUZZ
@given(st.sampled_from(["wave", "heat", "cavity"]), scalars(), tensors(max_dims=2),
       tensors(), tensors(), tensors())
def test_two_d_problems(kind, parameter, coefficients, t, x, y):
    if kind == "cavity":
        cavity = _outcome("LidDrivenCavity", lambda: pg.LidDrivenCavity(parameter))
        if cavity is not None:
            omega = _outcome("LidDrivenCavity.simulate",
                             lambda: cavity.simulate(7, t.flatten().tolist()[:3], dt=0.05))
            if omega is not None:
                assert np.isfinite(omega).all()
        return
    make = {"wave": lambda: pg.Wave2d(coefficients, speed=parameter),
            "heat": lambda: pg.Heat2d(coefficients, kappa=parameter)}[kind]
    problem = _outcome(kind, make)
    if problem is not None:
        u = _outcome(f"{kind}.solution", lambda: problem.solution(t, x, y))
        if u is not None:
            assert torch.isfinite(u).all()


# -- data loaders --------------------------------------------------------------------------------

@st.composite
def files(draw):
    """Bytes of an almost-valid or broken file: random, truncated, or an NPZ of odd arrays."""
    kind = draw(st.sampled_from(["bytes", "npz", "npy", "truncated-npz", "checkpoint",
                                 "real"]))
    if kind == "real":  # a file physguard wrote, cut at a random byte (or whole)
        data = draw(st.sampled_from(REAL_FILES))
        return data[:draw(st.integers(0, len(data)))]
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind in ("npz", "truncated-npz"):
        names = draw(st.lists(st.sampled_from(["t", "x", "u", "param", "problem", "inputs",
                                               "targets", "left_type", "version", "junk"]),
                              max_size=6, unique=True))
        arrays = {k: draw(tensors(max_dims=2, dtypes=[torch.float64, torch.complex128,
                                                        torch.int64, torch.bool])).numpy()
                  for k in names}
        if draw(st.booleans()):
            arrays["text"] = np.array(["a", "b"])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        return data[:draw(st.integers(0, len(data)))] if kind == "truncated-npz" else data
    if kind == "npy":
        buffer = io.BytesIO()
        np.save(buffer, draw(tensors()).to(torch.float64).numpy())
        return buffer.getvalue()
    payload = {"model": draw(st.sampled_from(["ANP", "FNO", 3])),
               "config": draw(st.sampled_from([{}, {"hidden": 8, "n_heads": 2},
                                               {"hidden": -1}, {"colour": 1}])),
               "state_dict": {}, "metadata": draw(st.sampled_from([{}, [], {"problem": 1}]))}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    return data[:draw(st.integers(len(data) // 2, len(data)))]


def _real_files() -> list[bytes]:
    import tempfile
    from pathlib import Path

    from physguard.datasets import sample_functions
    from physguard.datasets.operator import make_operator_data

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        sample_functions("stefan", 2, n_targets=5, seed=0).save(folder / "f.npz")
        make_operator_data("heat-neumann", 2, n_points=8).save(folder / "o.npz")
        save_checkpoint(folder / "m.pt", ANP(x_dim=2, hidden=8, n_heads=2), problem="stefan")
        np.savez(folder / "c.npz", t=np.full((1, 3), 0.01), x=np.full((1, 3), 0.5),
                 u=np.zeros((1, 3)), param=np.array([0.6]))
        make_operator_data_2d("wave2d", 2, n_points=5, progress=False).save(folder / "w.npz")
        return [(folder / name).read_bytes()
                for name in ("f.npz", "o.npz", "m.pt", "c.npz", "w.npz")]


REAL_FILES = _real_files()


@FUZZ
@given(files())
def test_loaders(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("file") / "data.npz"
    path.write_bytes(data)
    for name, load in (("FunctionSamples.load", lambda: FunctionSamples.load(path)),
                       ("OperatorData.load", lambda: OperatorData.load(path)),
                       ("OperatorData2d.load", lambda: OperatorData2d.load(path)),
                       ("load_observations", lambda: load_observations(path, Stefan)),
                       ("load_checkpoint", lambda: load_checkpoint(path))):
        _outcome(name, load)


# -- the command line ----------------------------------------------------------------------------

JUNK = ["", "-1", "0", "abc", "1e3", "99999999999999999999999", "nan", "/dev/null/x", "."]


@st.composite
def run_arguments(draw):
    args = [draw(st.sampled_from(["stefan", "heat-neumann", "burgers", "nope", ""]))]
    for option in ("--out", "--epochs", "--functions", "--test-functions", "--setting",
                   "--seed", "--device"):
        if draw(st.booleans()):
            args += [option, draw(st.sampled_from(JUNK + ["1", "2", "multi", "cpu", "cuda",
                                                          "R"]))]
    return args


def _no_partial_folders(root):
    return not any(".partial-" in p.name for p in root.rglob("*"))


@FUZZ
@given(run_arguments())
def test_cli_run(tmp_path_factory, monkeypatch_module, args):
    """``physguard run`` with junk options; the experiments are replaced by a fast writer so
    that arguments which pass reach the run-folder logic without training for minutes."""
    root = tmp_path_factory.mktemp("cli")
    monkeypatch_module.chdir(root)
    result = CliRunner().invoke(main, ["run", *args, "--quiet"])
    CASES["cli run"] += 1
    assert result.exit_code in (0, 1, 2), (args, result.output, result.exception)
    if result.exit_code:
        assert "Error" in result.output, (args, result.output)
    assert _no_partial_folders(root)


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()

    def fast_run(config, out, progress=True, figures=True, overwrite=False):
        from physguard._io import run_folder, write_text

        config.torch_device()
        with run_folder(out, overwrite) as folder:
            write_text(folder / "table.md", f"{config.problem}\n")
        return []

    patch.setattr("physguard.experiments.run_gpme", fast_run)
    patch.setattr("physguard.experiments.boon.run_boon", fast_run)
    yield patch
    patch.undo()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    experiment = {"problem": "stefan", "n_train": 2, "epochs": 1, "n_test": 1, "hidden": 8,
                  "n_latent": 2, "device": "cpu"}
    save_checkpoint(run / "model.pt", ANP(x_dim=2, hidden=8, n_heads=2), problem="stefan",
                    experiment=json.dumps(experiment))
    return run


@settings(FUZZ, max_examples=max(5, EXAMPLES // 3))
@given(files(), st.sampled_from(["out", "run", "run/sub", "", "."]))
def test_cli_evaluate(tmp_path_factory, tiny_checkpoint, data, out):
    root = tmp_path_factory.mktemp("eval")
    (root / "c.npz").write_bytes(data)
    before = sorted(p.name for p in tiny_checkpoint.iterdir())
    target = {"run": tiny_checkpoint, "run/sub": tiny_checkpoint / "sub"}.get(out, root / out)
    result = CliRunner().invoke(main, ["evaluate", "stefan", "--run", str(tiny_checkpoint),
                                       "--contexts", str(root / "c.npz"), "--out", str(target),
                                       "--quiet"])
    CASES["cli evaluate"] += 1
    assert result.exit_code in (0, 1, 2), (result.output, result.exception)
    if result.exit_code:
        assert "Error" in result.output
    assert sorted(p.name for p in tiny_checkpoint.iterdir()) == before
    assert _no_partial_folders(root)


def test_npz_members_are_valid_zip(tmp_path):
    """The byte-identical NPZ writer produces files that zipfile and NumPy both read."""
    from physguard._io import write_npz

    write_npz(tmp_path / "a.npz", {"x": np.arange(3.0), "s": np.array("stefan")}, compress=True)
    assert zipfile.ZipFile(tmp_path / "a.npz").testzip() is None
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert data["x"].tolist() == [0.0, 1.0, 2.0] and str(data["s"]) == "stefan"


# -- users' HDF5 files (issue 24): The Well's and PDEBench's layouts, damaged -------------------

def _hdf5_files() -> dict[str, tuple[bytes, str, str | None]]:
    """Valid files (bytes, problem, stated walls) to damage: physguard's exports in 1-D and 2-D,
    a file in The Well's own conventions and one in PDEBench's layout."""
    import tempfile
    from pathlib import Path

    import h5py

    from physguard.datasets.operator import make_operator_data
    from physguard.datasets.well import export_well

    out = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        export_well(make_operator_data("heat-neumann", 3, 16, "multi", n_steps=2), folder / "h")
        export_well(make_operator_data("burgers-periodic", 3, 16, "multi", n_steps=2),
                    folder / "p")
        export_well(make_operator_data_2d("cavity", 2, "single", "velocity", n_points=5,
                                          progress=False), folder / "c")
        x = np.arange(8) / 8
        with h5py.File(folder / "w", "w") as f:  # The Well's conventions, stated walls
            f.attrs.update(dataset_name="w", grid_type="cartesian", n_spatial_dims=1,
                           n_trajectories=3, simulation_parameters=["nu"], nu=0.1)
            dims = f.create_group("dimensions")
            dims.attrs["spatial_dims"] = ["x"]
            dims.create_dataset("time", data=np.linspace(0, 1, 3))
            dims.create_dataset("x", data=x)
            f.create_group("scalars").attrs["field_names"] = ["nu"]
            f["scalars"].create_dataset("nu", data=0.1)
            g = f.create_group("boundary_conditions").create_group("x_periodic")
            g.attrs.update(bc_type="PERIODIC", associated_dims=["x"], associated_fields=["u"])
            g.create_dataset("mask", data=np.isin(np.arange(8), [0, 7]))
            g.create_dataset("values", data=np.zeros(2))
            f.create_group("t0_fields").attrs["field_names"] = ["u"]
            f["t0_fields"].create_dataset("u", data=np.sin(2 * np.pi * x) * np.ones((3, 3, 1)))
        with h5py.File(folder / "b", "w") as f:  # PDEBench's single-array layout
            f.create_dataset("tensor", data=np.sin(2 * np.pi * x) * np.ones((3, 3, 1)))
            f.create_dataset("x-coordinate", data=x)
            f.create_dataset("t-coordinate", data=np.linspace(0, 1, 4))
        for name, problem, walls in (("h", "heat-neumann", None),
                                     ("p", "burgers-periodic", None),
                                     ("c", "cavity", None), ("w", "file", None),
                                     ("b", "burgers-periodic", "x=periodic")):
            out[name] = ((folder / name).read_bytes(), problem, walls)
    return out


HDF5_FILES = _hdf5_files()
ODD_VALUES = [None, "", "WALL", "wall", "periodic", "OPEN", "x", ["x", "y"], [], 3, -1, 2.5,
              np.array([1.0, np.nan]), np.zeros((2, 3)), np.array([b"a"]), True, 10**12]


def _damage(f, rng, draw) -> None:
    """One random change to an open h5py file: delete an object or attribute, replace an
    attribute or a dataset by an odd value (wrong dtype, shape, NaN, text)."""
    import h5py

    names = []
    f.visit(names.append)
    target = f[draw(st.sampled_from(names))] if names and draw(st.booleans()) else f
    action = draw(st.sampled_from(["delete", "attribute", "replace", "nan", "group"]))
    if action == "group" and target.name != "/":  # an object replaced by a dataset
        parent, name = target.parent, target.name.rsplit("/", 1)[1]
        del parent[name]
        parent.create_dataset(name, data=np.zeros(3))
        return
    if action == "delete":
        keys = list(target.attrs) + (list(target) if isinstance(target, h5py.Group) else [])
        if keys:
            key = draw(st.sampled_from(keys))
            if key in target.attrs:
                del target.attrs[key]
            else:
                del target[key]
    elif action == "attribute":
        keys = list(target.attrs) or ["bc_type"]
        value = draw(st.sampled_from(ODD_VALUES))
        if value is None:
            return
        target.attrs[draw(st.sampled_from(keys))] = value
    elif isinstance(target, h5py.Dataset):
        parent, name = target.parent, target.name.rsplit("/", 1)[1]
        data = target[()]
        del parent[name]
        if action == "nan" and np.issubdtype(np.asarray(data).dtype, np.floating):
            data = np.array(data, dtype=np.float64)
            data.reshape(-1)[rng.integers(0, max(1, data.size))] = np.nan
        elif action == "replace":
            data = draw(st.sampled_from([np.asarray(data).astype(np.complex64),
                                         np.asarray(data) > 0, np.array([b"text"]),
                                         np.asarray(data).reshape(-1)[:1], np.zeros((2, 2)),
                                         np.asarray(data)[..., None]]))
        parent.create_dataset(name, data=data)


@FUZZ
@given(st.sampled_from(sorted(HDF5_FILES)), st.integers(0, 2**32 - 1),
       st.integers(1, 3), st.booleans(), st.data())
def test_damaged_hdf5_files(tmp_path_factory, name, seed, changes, truncate, data):
    """A damaged file ends in a correct read (lazy fields readable, finite) or a specific error
    (ValueError, TypeError, FileNotFoundError): never KeyError, IndexError, OSError, ..."""
    import h5py

    from physguard.datasets.pdebench import read_file

    raw, problem, walls = HDF5_FILES[name]
    path = tmp_path_factory.mktemp("h5") / "d.h5"
    path.write_bytes(raw)
    rng = np.random.default_rng(seed)
    if truncate:
        path.write_bytes(raw[:data.draw(st.integers(0, len(raw)))])
    else:
        with h5py.File(path, "a") as f:
            for _ in range(changes):
                _damage(f, rng, data.draw)

    def read():
        got = read_file(path, problem, walls=walls)
        sample = got.targets[0]
        assert torch.isfinite(sample).all()
        return got

    _outcome(f"read_file ({name})", read)
