"""Each reproduction of the reliability issue (#9), as a test that failed before its fix."""

import json
import os
import stat

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import physguard as pg
from physguard._io import run_folder, write_json, write_npz
from physguard.cli import main
from physguard.constraints import gaussian as gaussian_module
from physguard.models import ANP
from physguard.training import load_checkpoint, save_checkpoint

D = torch.float64
TINY_RUN = ["--epochs", "1", "--functions", "2", "--test-functions", "1", "--quiet"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- 1, 2: run folders ---------------------------------------------------------------------------

def _old_run(folder):
    folder.mkdir()
    (folder / "config.json").write_text('{"old": true}\n')
    (folder / "model.pt").write_bytes(b"old weights")
    (folder / "metrics.json").write_text("[]\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_failed_run_leaves_the_old_folder_untouched(tmp_path):
    out = tmp_path / "R"
    before = _old_run(out)
    # --device cuda on a machine without CUDA used to overwrite config.json, then fail.
    if not torch.cuda.is_available():
        result = _invoke("run", "stefan", "--device", "cuda", "--out", out, "--overwrite",
                         *TINY_RUN)
        assert result.exit_code == 1 and "no CUDA device" in result.output
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(RuntimeError, match="boom"), run_folder(out, overwrite=True) as tmp:
        (tmp / "config.json").write_text("new")
        raise RuntimeError("boom")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["R"]  # no partial folder left beside it


def test_interrupted_run_leaves_nothing(tmp_path):
    out = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt), run_folder(out) as tmp:
        write_json(tmp / "config.json", {})
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_non_empty_destination_refused_unless_overwrite(tmp_path):
    out = tmp_path / "R"
    before = _old_run(out)
    result = _invoke("run", "heat-neumann", "--out", out, *TINY_RUN)
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    result = _invoke("run", "heat-neumann", "--out", out, "--overwrite", *TINY_RUN)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert "model.pt" not in names and {"fno.pt", "boon.pt", "metrics.json"} <= names  # whole
    assert json.loads((out / "config.json").read_text())["problem"] == "heat-neumann"


def test_evaluate_never_writes_into_its_run(tmp_path):
    run = tmp_path / "R"
    before = _old_run(run)
    for out in (run, run / "sub", tmp_path):
        result = _invoke("evaluate", "stefan", "--run", run, "--contexts", tmp_path / "c.npz",
                         "--out", out, "--overwrite")
        assert result.exit_code == 1
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    with pytest.raises(ValueError, match="outside"), run_folder(run / "x", protect=(run,)):
        pass


def test_unusable_out_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    for out, message in (("", "current directory"), ("file/sub", "file is a file"),
                         (".", "current directory")):
        result = _invoke("run", "stefan", "--out", out, *TINY_RUN)
        assert result.exit_code != 0 and message in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_stale_partial_folder_of_a_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".R.partial-999999999-abc"  # no such pid
    stale.mkdir()
    with run_folder(tmp_path / "R") as tmp:
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]


# -- 3, 4, 5, 7: Gaussian ------------------------------------------------------------------------

def test_indefinite_covariance_refused_with_its_smallest_eigenvalue():
    with pytest.raises(ValueError, match="smallest eigenvalue -1"):
        pg.Gaussian(torch.zeros(2, dtype=D), cov=[[1.0, 2.0], [2.0, 1.0]])
    # PSD with an exactly singular direction is accepted (round-off negatives included).
    v = torch.randn(5, 1, dtype=D)
    pg.Gaussian(torch.zeros(5, dtype=D), cov=v @ v.T)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 2**31), st.integers(1, 40), st.integers(1, 3),
       st.sampled_from([1e-12, 1e-6, 1.0, 1e6]))
def test_zero_variance_points_sample_and_conserve(seed, n, m, scale):
    g = torch.Generator().manual_seed(seed)
    var = scale * torch.rand(n, generator=g, dtype=D)
    var[torch.rand(n, generator=g, dtype=D) < 0.3] = 0.0
    if float(var.sum()) == 0:
        var[0] = scale
    m = min(m, int((var > 0).sum()))  # rows independent on the points with variance
    G = torch.rand(m, n, generator=g, dtype=D) + 0.1
    prior = pg.Gaussian(torch.randn(n, generator=g, dtype=D), var=var)
    post = pg.probconserv(prior, pg.LinearConstraint(G, torch.ones(m, dtype=D)))
    samples = post.sample(50, generator=g)  # raised "strictly positive diagonal" before
    spread = (samples[:, var == 0] - post.mean[var == 0]).abs()
    assert float(spread.max()) < 1e-12 * scale if spread.numel() else True  # no variance there
    assert torch.allclose(post.var, torch.diagonal(post.cov), rtol=1e-10, atol=1e-12 * scale)
    resid = (samples @ G.T - 1).abs() / (samples.abs() @ G.T.abs() + 1)
    # Round-off of a solve with the rows restricted to the points that carry variance.
    assert float(resid.max()) < 1e-13 * float(torch.linalg.cond(G[:, var > 0]))


@pytest.mark.parametrize("var", [1e-10, 1e-6, 1e-2, 1.0, 1e4])
def test_samples_conserve_to_the_round_off_of_the_mean(var):
    """The README's example: one constraint row per time, at any scale of the variance."""
    x = torch.linspace(0, 1, 201, dtype=D)
    problem = pg.Stefan(0.6)
    t = torch.tensor([0.02, 0.05], dtype=D)
    truth = problem.solution(t[:, None], x)
    constraint = pg.mass_constraint(x, problem.mass(t))
    post = pg.probconserv(pg.Gaussian(truth + 0.05, var=torch.full_like(truth, var)), constraint)
    samples = post.sample(200, generator=torch.Generator().manual_seed(0))
    size = samples.abs() @ constraint.G[0].abs() + constraint.b.abs()[:, 0]
    mean_size = post.mean.abs() @ constraint.G[0].abs() + constraint.b.abs()[:, 0]
    mean_rel = float((constraint.residual(post.mean)[:, 0].abs() / mean_size).max())
    sample_rel = float((constraint.residual(samples)[..., 0].abs() / size).max())
    assert mean_rel < 1e-14 and sample_rel < 1e-14  # samples: 1.6e-8 at var = 1e-6 before


def test_dense_form_of_a_structured_covariance_is_refused_when_huge(monkeypatch):
    n = 10**6
    pred = pg.Gaussian(torch.zeros(n), var=torch.ones(n))
    with pytest.raises(ValueError, match="matmul.*sample"):
        _ = pred.cov
    monkeypatch.setattr(gaussian_module, "DENSE_LIMIT_BYTES", 10)
    small = pg.Gaussian(torch.zeros(3), var=torch.ones(3))
    with pytest.raises(ValueError, match="GiB"):
        _ = small.cov
    assert small.var.shape == (3,)  # the structured operations still work


# -- 6: file modes -------------------------------------------------------------------------------

def test_files_get_the_mode_a_plain_open_gives(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {})
        write_npz(tmp_path / "b.npz", {"x": np.zeros(2)})
        with run_folder(tmp_path / "R") as tmp:
            (tmp / "c").write_text("c")
        with open(tmp_path / "plain", "w"):
            pass
        expect = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
        for name in ("a.json", "b.npz"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == expect == 0o644
        assert stat.S_IMODE(os.stat(tmp_path / "R").st_mode) == 0o755
    finally:
        os.umask(old)


# -- 8: clean errors -----------------------------------------------------------------------------

def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    result = _invoke("run", "stefan", "--seed", 2**64, "--out", tmp_path / "a")
    assert result.exit_code == 2 and "--seed" in result.output
    result = _invoke("run", "stefan", "--setting", "multi", "--out", tmp_path / "a")
    assert result.exit_code == 2 and "--setting applies to the BOON problems" in result.output
    assert not (tmp_path / "a").exists()


def _tiny_checkpoint(path, **metadata):
    save_checkpoint(path, ANP(x_dim=2, hidden=8, n_heads=2), **metadata)


def test_evaluate_refuses_bad_inputs_before_writing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _tiny_checkpoint(run / "model.pt", problem="stefan", experiment=json.dumps(
        {"problem": "stefan", "n_train": 2, "epochs": 1, "n_test": 1, "hidden": 8}))
    ok = dict(t=np.full((1, 3), 0.01), x=np.full((1, 3), 0.5), u=np.zeros((1, 3)),
              param=np.array([0.6]))
    cases = {
        "zero functions": dict(ok, t=np.zeros((0, 3)), x=np.zeros((0, 3)), u=np.zeros((0, 3)),
                               param=np.zeros(0)),
        "complex t": dict(ok, t=ok["t"] + 1j),
    }
    for label, arrays in cases.items():
        np.savez(tmp_path / "c.npz", **arrays)
        result = _invoke("evaluate", "stefan", "--run", run, "--contexts", tmp_path / "c.npz",
                         "--out", tmp_path / "out")
        assert result.exit_code == 1 and "Error:" in result.output, (label, result.output)
        assert not (tmp_path / "out").exists(), label
    with open(tmp_path / "npy.npz", "wb") as handle:  # a .npy array under an .npz name
        np.save(handle, np.zeros(3))
    result = _invoke("evaluate", "stefan", "--run", run, "--contexts", tmp_path / "npy.npz",
                     "--out", tmp_path / "out")
    assert result.exit_code == 1 and "not an NPZ data file" in result.output


def test_checkpoint_with_the_wrong_config_or_state(tmp_path):
    model = ANP(x_dim=2, hidden=8, n_heads=2)
    payload = {"model": "ANP", "config": dict(model.config), "state_dict": model.state_dict(),
               "metadata": {}}
    for _label, edit in (("config", lambda p: p["config"].update(hidden=16)),
                        ("unknown key", lambda p: p["config"].update(colour=1)),
                        ("state", lambda p: p["state_dict"].popitem())):
        bad = {k: (dict(v) if isinstance(v, dict) else v) for k, v in payload.items()}
        edit(bad)
        torch.save(bad, tmp_path / "m.pt")
        with pytest.raises(ValueError, match="do not fit together"):
            load_checkpoint(tmp_path / "m.pt")


def test_constraint_core_errors():
    with pytest.raises(ValueError, match="last dim must be 1 or M = 1"):
        pg.LinearConstraint(torch.ones(1, 4), [1.0], noise_var=torch.ones(3))
    tiny = pg.Gaussian(torch.zeros(3, dtype=D), var=torch.full((3,), 1e-310, dtype=D))
    with pytest.raises(ValueError, match="prior variance along the constraint rows"):
        pg.probconserv(tiny, pg.LinearConstraint(torch.ones(1, 3, dtype=D), [1.0]))
    grad = pg.Gaussian(torch.zeros(4, requires_grad=True), var=torch.ones(4))
    with pytest.raises(ValueError, match="detached"):
        pg.nonnegative(grad, pg.LinearConstraint(torch.ones(1, 4), [1.0]))


def test_boon_input_errors():
    fno = pg.FNO1d(1, 1, modes=4, width=8, n_layers=2)
    boon = pg.BOON(fno, left=pg.Dirichlet(0.0), right=pg.Neumann(1.0))
    for bad, error, message in (
            (torch.randn(2, 1, 1), ValueError, "N >= 2"),
            (torch.randn(0, 1, 16), ValueError, "non-empty batch"),
            (torch.randn(2, 1, 16, dtype=torch.float16), TypeError, "float16"),
            (torch.randn(2, 1, 16, dtype=torch.bfloat16), TypeError, "bfloat16")):
        with pytest.raises(error, match=message):
            boon(bad)
    with pytest.raises(ValueError, match="overflows"):
        pg.BOON(fno, left=pg.Dirichlet(1e39))(torch.randn(2, 1, 16))
    assert float(pg.BOON(fno.double(), left=pg.Dirichlet(1e39))(
        torch.randn(2, 1, 16, dtype=D))[0, 0, 0]) == 1e39


def test_boon_with_all_zero_kernel_weights_is_exact():
    fno = pg.FNO1d(1, 1, modes=4, width=8, n_layers=2).double()
    with torch.no_grad():
        for p in fno.parameters():
            p.zero_()
    out = pg.BOON(fno, left=pg.Dirichlet(0.5), right=pg.Dirichlet(1.0))(
        torch.randn(3, 1, 16, dtype=D))
    assert torch.all(out[..., 0] == 0.5) and torch.all(out[..., -1] == 1.0)


@pytest.mark.parametrize("p_star", [1e-300, 1e-50, 1e-10, 0.5, 0.6, 1 - 1e-16])
def test_stefan_root_for_every_admissible_parameter(p_star):
    z = pg.Stefan(p_star).z1
    lhs = np.log(p_star) + np.log(float(torch.special.erf(torch.tensor(z, dtype=D)))) \
        + np.log(z) + z * z
    assert abs(lhs - np.log((1 - p_star) / np.sqrt(np.pi))) < 1e-11 * max(1.0, z * z)


# -- 9: badly scaled non-negativity --------------------------------------------------------------

def test_badly_scaled_feasible_qp_is_solved_and_infeasible_is_named():
    torch.manual_seed(0)
    mean = 1000 * torch.randn(201, dtype=D)
    G = torch.full((1, 201), 1 / 200, dtype=D)
    pred = pg.Gaussian(mean, var=torch.full((201,), 0.1, dtype=D))
    post, _ = pg.nonnegative(pred, pg.LinearConstraint(G, [1.0]))
    assert float(post.mean.min()) >= -1e-9
    assert abs(float(G @ post.mean) - 1) < 1e-9
    with pytest.raises(ValueError, match="no solution"):
        pg.nonnegative(pred, pg.LinearConstraint(G, [-1.0]))


# -- 10: silent coercions ------------------------------------------------------------------------

def test_solutions_are_not_extrapolated_and_fronts_are_clipped():
    stefan = pg.Stefan(0.6)
    with pytest.raises(ValueError, match="outside the domain"):
        stefan.solution(torch.tensor(0.05), torch.tensor(-0.5))
    assert float(stefan.shock_position(torch.tensor(100.0))) == stefan.domain[1]
    from physguard.pdes import HeatNeumann, StokesSecond

    for problem in (HeatNeumann(), StokesSecond()):
        with pytest.raises(ValueError, match=r"x\[1\] = 1.5 lies outside the domain"):
            problem.solution(torch.tensor(0.1), torch.tensor([0.5, 1.5]))


def test_space_time_operator_checks_its_intervals():
    for kwargs in (dict(domain=(1.0, 0.0)), dict(domain=(float("nan"), 1.0)),
                   dict(t_range=(0.0, float("inf")))):
        with pytest.raises(ValueError, match="finite interval"):
            pg.SpaceTimeFNO1d(1, 4, 4, 2, 8, 2, **kwargs)


def test_dependent_constraint_rows_refused_at_any_scale():
    """Found by the fuzz campaign: round-off made the Gram matrix of two rows on one point
    numerically positive definite, and the returned mean missed G u = b by O(1)."""
    for scale in (1e-184, 1e-6, 1.0, 1e100):
        pred = pg.Gaussian(torch.zeros(1, dtype=D), var=torch.tensor([scale], dtype=D))
        constraint = pg.LinearConstraint([[1.0], [2.0]], [0.0, 1.0])
        for update in (pg.probconserv, pg.hardc):
            with pytest.raises(ValueError, match="linearly dependent"):
                update(pred, constraint)


def test_empty_prediction_refused():
    """Found by the fuzz campaign: an empty mean with a (0, 0) cov crashed inside amax."""
    with pytest.raises(ValueError, match="empty"):
        pg.Gaussian(torch.zeros(0, dtype=D), cov=torch.zeros(0, 0, dtype=D))
