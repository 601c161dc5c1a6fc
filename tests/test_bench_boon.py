"""``physguard bench boon`` at tiny sizes: files, records, exact BOON rows, the penalty's
residual, and clean errors."""

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from physguard.cli import main
from physguard.datasets.operator import make_operator_data
from physguard.datasets.operator2d import make_operator_data_2d
from physguard.experiments.bench_boon import (
    BENCH_MODELS,
    BOONBenchConfig,
    _identical_walls,
    _penalised_loss,
    boundary_residual,
    conditions_spread,
    interior_rel_l2,
    run_bench_boon,
    seed_statistics,
    wall_error_share,
)

TINY = dict(n_train=4, n_test=2, n_points=17, width=4, modes=3, epochs=1, n_steps=4)


def test_tiny_bench_writes_report_and_records(tmp_path):
    config = BOONBenchConfig(cases=("stokes", "wave2d"), settings=("single", "multi"),
                             overrides=TINY, device="cpu", seeds=1)
    records = run_bench_boon(config, tmp_path / "bench", progress=False)
    folder = tmp_path / "bench"
    assert {p.name for p in folder.iterdir()} == {"config.json", "metrics.json", "report.md",
                                                  "rel_l2.png"}
    stored = json.loads((folder / "metrics.json").read_text())
    assert len(stored) == len(records) == 4 * len(BENCH_MODELS)
    for r in stored:
        assert {"problem", "setting", "model", "rel_l2", "interior_rel_l2", "boundary_error",
                "train_seconds", "wall_error_share"} <= set(r)
        assert 0.0 <= r["wall_error_share"] <= 1.0
        if r["model"] == "BOON":  # exact in float64 (Dirichlet value / Neumann stencil)
            assert r["boundary_error"] < 1e-10, r
    report = (folder / "report.md").read_text()
    for problem, setting in config.rows():
        assert f"| {problem} | {setting} |" in report
    assert "BOON 0.0123" in report  # the Stokes multi-step notebook number beside ours
    by = {(r["problem"], r["setting"], r["model"]): r["rel_l2"] for r in stored}
    below_2x = [row for row in config.rows()
                if by[(*row, "FNO")] < 2 * by[(*row, "BOON")]]
    for problem, setting in below_2x:  # each says what the exact walls alone could give
        assert f"- {problem} {setting}: FNO / BOON" in report
    options = {(r["problem"], r["setting"]): r["boon_options"] for r in stored
               if r["model"] == "BOON"}
    assert "wall values written into the input" in options["stokes", "single"]
    assert "wall values written into the input" in options["stokes", "multi"]
    assert options["wave2d", "single"] == options["wave2d", "multi"] == ""
    assert "- stokes single: BOON runs without the per-layer kernel correction" in report
    spreads = {(r["problem"], r["setting"]): r["conditions_spread"] for r in stored}
    assert spreads["wave2d", "single"] == 0 and spreads["stokes", "multi"] > 0
    assert "conditions that differ between samples (2 rows): stokes single" in report


@pytest.mark.parametrize("problem", ["stokes", "burgers-dirichlet", "burgers-periodic"])
def test_penalty_residual_vanishes_on_the_solution_1d(problem):
    """The data satisfy their own Dirichlet / periodic conditions: zero residual."""
    data = make_operator_data(problem, 3, 33, "multi", 4, seed=1)
    index = torch.arange(3)
    r = boundary_residual(data.targets, data, index)
    assert r.shape[0] == 3 and float(r.abs().max()) < 1e-12


def test_penalty_residual_of_a_neumann_problem_is_the_stencil_error():
    """heat-neumann: the residual is h (stencil - flux), and the stencil's flux error is at
    least second order: it shrinks by 4x or more when h halves (measured: 7.5x, since the
    h^2 term, proportional to the third derivative, vanishes at the walls for this cosine
    series)."""
    coarse = make_operator_data("heat-neumann", 2, 65, "single", seed=3)
    fine = make_operator_data("heat-neumann", 2, 129, "single", seed=3)
    index = torch.arange(2)
    rc = boundary_residual(coarse.targets, coarse, index).abs().max() / (1 / 64)
    rf = boundary_residual(fine.targets, fine, index).abs().max() / (1 / 128)
    assert float(rc / rf) > 3.5


def test_penalty_residual_2d_and_identical_wall_inputs():
    cavity = make_operator_data_2d("cavity", 2, n_points=9, progress=False)
    assert float(boundary_residual(cavity.targets, cavity, torch.arange(2)).abs().max()) == 0
    assert _identical_walls(cavity)  # lid and no slip: the same walls in every sample
    wave = make_operator_data_2d("wave2d", 2, n_points=9, progress=False)
    assert not _identical_walls(wave)  # the initial field varies on the walls
    heat = make_operator_data("heat-neumann", 3, 17, "single", seed=0)
    assert not _identical_walls(heat)


def test_seeds_give_the_ratio_per_seed_its_median_range_and_spreads(tmp_path):
    config = BOONBenchConfig(cases=("heat-neumann",), settings=("single",), overrides=TINY,
                             device="cpu", seeds=(0, 3, 5))
    assert config.seed == 0
    records = run_bench_boon(config, tmp_path / "b", progress=False)
    # FNO and BOON on every seed, the penalty baseline on the first only
    assert sorted((r["model"], r["seed"]) for r in records) == sorted(
        [("FNO", 0), ("BOON", 0), ("FNO+penalty", 0), ("FNO", 3), ("BOON", 3), ("FNO", 5),
         ("BOON", 5)])
    rel = {(r["model"], r["seed"]): r["rel_l2"] for r in records}
    ratios = [rel["FNO", k] / rel["BOON", k] for k in (0, 3, 5)]
    assert len(set(ratios)) == 3  # new data and weights per seed
    stat = seed_statistics(records)
    assert stat["median"] == pytest.approx(sorted(ratios)[1])
    assert (stat["min"], stat["max"]) == pytest.approx((min(ratios), max(ratios)))
    boon = [rel["BOON", k] for k in (0, 3, 5)]
    assert stat["boon_spread"] == pytest.approx(max(boon) / min(boon))
    expected = "ahead" if min(ratios) > 1 else "behind" if max(ratios) < 1 else "unresolved"
    assert stat["verdict"] == expected
    report = (tmp_path / "b" / "report.md").read_text()
    assert "| seed 0 | seed 3 | seed 5 | median | range |" in report
    assert f"{sorted(ratios)[1]:.2f} [{min(ratios):.2f}, {max(ratios):.2f}]" in report
    assert f"| {expected} |" in report and "Over 3 seeds" in report


def test_seed_options():
    assert BOONBenchConfig().seeds == (0, 1, 2)  # three seeds by default
    assert BOONBenchConfig(seed=4, seeds=2).seeds == (4, 5)
    assert BOONBenchConfig(seed=4, extra_seeds=(7,)).seeds == (4, 7)
    assert BOONBenchConfig(seeds=(9, 2)).seed == 9
    with pytest.raises(ValueError, match="extra_seeds"):
        BOONBenchConfig(extra_seeds=(0,))
    with pytest.raises(ValueError, match="extra_seeds"):
        BOONBenchConfig(extra_seeds=(2, 2))
    with pytest.raises(ValueError, match="distinct"):
        BOONBenchConfig(seeds=(2, 2))
    with pytest.raises(ValueError, match="count >= 1"):
        BOONBenchConfig(seeds=0)
    with pytest.raises(ValueError, match="not both"):
        BOONBenchConfig(seeds=2, extra_seeds=(5,))
    with pytest.raises(ValueError, match="4294967295"):
        BOONBenchConfig(seeds=(1, 2**32))


def test_bench_boon_cli_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["bench", "boon", "--cases", "nope", "--out",
                                  str(tmp_path / "b")])
    assert result.exit_code == 2 and "cases must be" in result.output
    result = runner.invoke(main, ["bench", "boon", "--settings", "both", "--out",
                                  str(tmp_path / "b")])
    assert result.exit_code == 2 and "settings must be" in result.output
    result = runner.invoke(main, ["bench", "boon", "--extra-seeds", "1,x", "--out",
                                  str(tmp_path / "b")])
    assert result.exit_code == 2 and "extra seeds must be integers" in result.output
    result = runner.invoke(main, ["bench", "boon", "--seeds", "two", "--out",
                                  str(tmp_path / "b")])
    assert result.exit_code == 2 and "--seeds must be a count" in result.output
    assert not (tmp_path / "b").exists()
    with pytest.raises(ValueError, match="penalty"):
        BOONBenchConfig(penalty=-1.0)


def test_notes_explain_a_lost_row_only_with_what_was_measured():
    from physguard.experiments.bench_boon import _note

    fno = dict(problem="p", setting="single", rel_l2=0.1, identical_walls=True,
               final_train_loss=0.05)
    boon = dict(fno, rel_l2=0.2, final_train_loss=0.2)
    note = _note([fno, boon])
    assert "same values on the walls" in note and "trains more slowly" in note
    assert _note([fno, dict(boon, rel_l2=0.05)]) is None  # BOON won: nothing to explain
    plain = _note([dict(fno, identical_walls=False), dict(boon, identical_walls=False,
                                                          final_train_loss=0.05)])
    assert "not explained" in plain
    periodic = _note([dict(fno, identical_walls=False),
                      dict(boon, identical_walls=False, kernel_correction=False,
                           conditions_spread=None)])
    assert "end values averaged after every layer" in periodic and "section 9" in periodic
    assert "corrected kernel" not in periodic and "switched off" not in periodic
    switched_off = _note([dict(fno, identical_walls=False),
                          dict(boon, identical_walls=False, kernel_correction=False,
                               conditions_spread=0.5)])
    assert "correction switched off" in switched_off and "averaged" not in switched_off
    exact_only = _note([fno, dict(boon, kernel_correction=False)])  # identical walls, no
    assert "exact output only" in exact_only  # correction: the walls' reason is not claimed
    assert "corrected hidden wall rows" not in exact_only
    assert "corrected kernel" in note
    lost = dict(boon, identical_walls=False, final_train_loss=0.05, recheck_seed=1)
    flips = _note([dict(fno, identical_walls=False),
                   dict(lost, recheck_fno_rel_l2=0.3, recheck_boon_rel_l2=0.1)])
    assert "changes sign with the seed" in flips and "3.00" in flips
    stays = _note([dict(fno, identical_walls=False),
                   dict(lost, recheck_fno_rel_l2=0.1, recheck_boon_rel_l2=0.3)])
    assert "loses with both seeds" in stays and "not explained" in stays


def test_recheck_trains_a_lost_row_again_with_the_next_seed(tmp_path, monkeypatch):
    """A row BOON loses for no measured reason is trained again (FNO and BOON, same data,
    seed + 1) and the BOON record carries both errors; --no-recheck skips it."""
    import physguard.experiments.bench_boon as bench_module

    calls = []
    plain = bench_module.train_and_evaluate

    def rigged(name, train, test, config, progress=True, loss=None):
        calls.append((name, config.seed, loss is not None))
        model, losses, prediction, record = plain(name, train, test, config, progress, loss)
        # BOON "loses" at seed 0 with an equal training loss: nothing else explains it
        if config.seed == 0 and name == "BOON":
            record["rel_l2"] = 10.0
        return model, [0.1], prediction, record

    monkeypatch.setattr(bench_module, "train_and_evaluate", rigged)
    config = BOONBenchConfig(cases=("heat-neumann",), settings=("single",), overrides=TINY,
                             device="cpu", seeds=1)
    records = run_bench_boon(config, tmp_path / "bench", progress=False)
    assert calls[-2:] == [("FNO", 1, False), ("BOON", 1, False)]
    boon = {r["model"]: r for r in records}["BOON"]
    assert boon["recheck_seed"] == 1 and boon["recheck_boon_rel_l2"] < 10.0
    report = (tmp_path / "bench" / "report.md").read_text()
    assert "seed 1" in report
    calls.clear()
    quiet = dataclasses.replace(config, recheck=False)
    run_bench_boon(quiet, tmp_path / "quiet", progress=False)
    assert len(calls) == len(BENCH_MODELS)


@pytest.mark.parametrize("two_d", [False, True])
def test_interior_rel_l2_ignores_the_walls_only(two_d):
    """Errors on the wall points do not count; one interior error does, relative to the
    interior's norm."""
    gen = torch.Generator().manual_seed(0)
    truth = torch.randn(3, 2, 9, *((7,) if two_d else ()), generator=gen, dtype=torch.float64)
    pred = truth.clone()
    pred[:, :, 0] += 5.0
    pred[:, :, -1] -= 5.0
    if two_d:
        pred[..., 0] += 5.0
        pred[..., -1] += 5.0
    assert interior_rel_l2(pred, truth, two_d) == 0.0
    inner = (slice(None), slice(None), slice(1, -1)) + ((slice(1, -1),) if two_d else ())
    pred[(0, 0, 4) + ((3,) if two_d else ())] += 1.0
    expected = 1.0 / float(truth[0][inner[1:]].norm()) / 3
    assert abs(interior_rel_l2(pred, truth, two_d) - expected) < 1e-12


@pytest.mark.parametrize("two_d", [False, True])
def test_wall_error_share_counts_the_wall_points_once(two_d):
    """An error of 3 on every wall point and 4 on one interior point: the share is the walls'
    squared error over the total; all on the walls gives 1, none gives 0."""
    truth = torch.zeros(2, 1, 9, *((7,) if two_d else ()), dtype=torch.float64)
    pred = truth.clone()
    inner = (slice(None), slice(None), slice(1, -1)) + ((slice(1, -1),) if two_d else ())
    pred += 3.0
    pred[inner] = 0.0
    assert wall_error_share(pred, truth, two_d) == 1.0
    n_wall = 2 * (9 + 7 - 2) if two_d else 2
    pred[(0, 0, 4) + ((3,) if two_d else ())] = 4.0
    expected = 2 * n_wall * 9.0 / (2 * n_wall * 9.0 + 16.0)
    assert abs(wall_error_share(pred, truth, two_d) - expected) < 1e-12
    assert wall_error_share(truth, truth, two_d) == 0.0


def test_gain_note_bounds_what_the_exact_walls_can_give():
    from physguard.experiments.bench_boon import _gain_note

    fno = dict(problem="p", setting="single", rel_l2=0.1, interior_rel_l2=0.09,
               wall_error_share=0.36)
    boon = dict(rel_l2=0.08, interior_rel_l2=0.09)
    note = _gain_note([fno, boon])
    assert "36.0 %" in note and "at most 1.25x" in note and "interior to gain" in note
    assert "off the walls FNO / BOON is 1.00" in note
    walls_enough = _gain_note([dict(fno, wall_error_share=0.8), boon])
    assert "at most 2.24x" in walls_enough and "did not keep" in walls_enough
    assert _gain_note([fno, dict(boon, rel_l2=0.05)]) is None  # 2x reached: no note
    assert "same conditions" in _gain_note([fno, dict(boon, conditions_spread=0.0)])
    assert "no condition data" in _gain_note([fno, dict(boon, conditions_spread=None)])
    assert "largest spread 0.25" in _gain_note([fno, dict(boon, conditions_spread=0.25)])


def test_conditions_spread_says_which_rows_give_boon_sample_data():
    """Stokes' wall velocity cos(omega t) differs between samples; the heat flux (0 and
    5 sin(pi t)), the velocity cavity's lid and no slip, and the wave's zero flux do not;
    periodic Burgers has no condition data. The spread is the largest range over samples."""
    stokes = make_operator_data("stokes", 3, 17, "multi", 4, seed=1)
    assert conditions_spread(stokes) > 0.1
    heat = make_operator_data("heat-neumann", 3, 17, "multi", 4, seed=1)
    assert conditions_spread(heat) == 0.0
    assert conditions_spread(make_operator_data("burgers-periodic", 2, 17, seed=1)) is None
    cavity = make_operator_data_2d("cavity", 2, n_points=9, progress=False)
    wave = make_operator_data_2d("wave2d", 2, n_points=9, progress=False)
    assert conditions_spread(cavity) == conditions_spread(wave) == 0.0
    moved = dataclasses.replace(heat, right_values=heat.right_values.clone())
    moved.right_values[1, 2] += 0.75  # one sample's flux at one time
    assert conditions_spread(moved) == pytest.approx(0.75)
    assert conditions_spread(heat, moved) == pytest.approx(0.75)  # pooled over both
    top = cavity.top.clone()
    top[0, 0, 3] -= 2.0
    assert conditions_spread(dataclasses.replace(cavity, top=top)) == pytest.approx(2.0)


def test_penalty_gradient_is_finite_where_the_residual_is_exactly_zero():
    """A periodic prediction whose two ends agree exactly: the penalty's gradient must be 0,
    not NaN (sqrt(mean(r^2)) gave NaN and wiped out a bench row's training)."""
    data = make_operator_data("burgers-periodic", 3, 17, "single", seed=0)
    pred = data.targets.float().clone().requires_grad_(True)
    loss = _penalised_loss(data, 1.0)(pred, data.targets.float(), torch.arange(3))
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    # the residual is 0 here, so the gradient is the relative L2's alone
    plain = pred.detach().clone().requires_grad_(True)
    from physguard.training import relative_l2_loss
    relative_l2_loss(plain, data.targets.float()).backward()
    assert torch.equal(pred.grad, plain.grad)


def test_cavity_multi_row_learns_the_authors_vorticity():
    """The bench's multi-step cavity row compares with the authors' (vorticity) figure, in
    both presets, while ``physguard run cavity`` defaults to the velocity."""
    for paper in (False, True):
        config = BOONBenchConfig(cases=("cavity",), paper=paper)
        assert config.case_config("cavity", "multi").field == "vorticity"
        assert config.case_config("cavity", "single").field == "velocity"
