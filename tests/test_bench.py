"""physguard bench probconserv at a toy size: files, report, checks, CLI errors."""

import json

from click.testing import CliRunner

from physguard.cli import main
from physguard.experiments.bench import BenchConfig, _checks, run_bench


def test_bench_writes_a_report_with_every_method_and_published_numbers(tmp_path):
    config = BenchConfig(cases=("pme",), n_train=12, n_val=4, n_test=2, epochs=1, hidden=16,
                         n_latent=2, ensemble_members=2, ensemble_hidden=8, ensemble_epochs=1,
                         gp_iterations=3, n_grid_t=11, n_grid_x=11)
    report = run_bench(config, tmp_path, progress=False)
    assert (tmp_path / "report.md").read_text() == report
    for name in ("metrics.json", "table.md", "model.pt", "config.json", "profile.png"):
        assert (tmp_path / "pme" / name).is_file(), name
    records = json.loads((tmp_path / "pme" / "metrics.json").read_text())
    methods = {r["method"] for r in records}
    for box in ("ANP", "GP", "Ensemble"):
        assert {box, f"HardC-{box}", f"ProbConserv-{box}",
                f"ProbConserv+NonNeg-{box}"} <= methods
    assert "SoftC-ANP" in methods and "ProbConserv-SoftC-ANP" not in methods
    for r in records:
        if r["method"].startswith("ProbConserv"):
            assert abs(r["CE"]) < 1e-12 and abs(r["CE_all"]) < 1e-12
            assert -1 <= r["update_cos"] <= 1
    # Published / rerun numbers sit beside ours.
    assert "| 3 | ProbConserv-ANP |" in report and "2.09e-04" in report
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["checks"] and all("ok" in c for c in summary["checks"])
    assert "Checks:" in report


def test_checks_flag_a_failure():
    def rec(method, mse, shock=0.1):
        return {"method": method, "param": 0.6, "MSE": mse, "CE": 0.0, "CE_all": 0.0,
                "shock_mae": shock}
    records = [rec("ANP", 1e-3, 0.01), rec("ProbConserv-ANP", 2e-3, 0.02)]
    checks = dict(_checks("stefan", records))
    assert not checks["MSE ProbConserv-ANP < ANP at 0.6 (2.00e-03 vs 1.00e-03)"]
    assert not any(ok for text, ok in checks.items() if text.startswith("shock"))
    records[1]["CE_all"] = 1e-6
    assert not _checks("stefan", records)[0][1]


def test_cli_rejects_unknown_cases(tmp_path):
    result = CliRunner().invoke(main, ["bench", "probconserv", "--cases", "heat",
                                       "--out", str(tmp_path)])
    assert result.exit_code != 0 and "cases must be" in result.output
