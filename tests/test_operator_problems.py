"""Heat with Neumann walls and Stokes' second problem: exact solutions, data sets, metrics."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from physguard import metrics as M
from physguard.cli import main
from physguard.datasets import OperatorData, make_operator_data
from physguard.pdes import HeatNeumann, StokesSecond

F64 = torch.float64


def fd_residual(pde, diffusivity, t, x, dt=1e-5, dx=1e-3):
    u = pde.solution
    u_t = (u(t + dt, x) - u(t - dt, x)) / (2 * dt)
    u_xx = (u(t, x + dx) - 2 * u(t, x) + u(t, x - dx)) / dx**2
    return u_t - diffusivity * u_xx


@pytest.mark.parametrize("omega", [2.01, 2.7, 3.99])
def test_heat_series_solves_pde_bcs_and_heat_balance(omega):
    pde = HeatNeumann(omega)
    x = torch.linspace(0.05, 0.95, 40, dtype=F64)
    for t in (0.05, 0.25, 0.45):
        r = fd_residual(pde, pde.kappa, torch.tensor(t, dtype=F64), x)
        assert r.abs().max() < 1e-4
    grid = torch.linspace(0, 1, 4001, dtype=F64)
    h = float(grid[1] - grid[0])
    for t in (0.1, 0.3, 0.5):
        u = pde.solution(t, grid)
        assert abs(float(M.boundary_flux(u, h, "left", 3))) < 1e-5
        assert abs(float(M.boundary_flux(u, h, "right", 3) - pde.right_flux(t))) < 1e-4
        # d/dt int u = kappa (u_x(1) - u_x(0)): the closed-form total from the fluxes.
        assert abs(float(torch.trapezoid(u, grid) - pde.mass(t))) < 1e-7
    # The series at a small time approaches the initial condition away from the right wall.
    near0 = pde.solution(1e-4, x[:30]) - pde.initial_condition(x[:30])
    assert near0.abs().max() < 5e-3


def test_stokes_solution_solves_pde_and_matches_reference_value():
    pde = StokesSecond(omega=2.0, nu=0.1)
    # u(0.5, 1.0) with nu = 0.1, omega = 2, U = 1 (shared/reference/solutions.md, computed).
    assert abs(float(pde.solution(1.0, 0.5)) - 0.18795494) < 1e-8
    y = torch.linspace(0.02, 0.98, 30, dtype=F64)
    assert fd_residual(pde, 0.1, torch.tensor(0.7, dtype=F64), y).abs().max() < 1e-4
    t = torch.linspace(0, 2, 9, dtype=F64)
    assert torch.allclose(pde.left_value(t), torch.cos(2.0 * t))


def test_invalid_parameters():
    with pytest.raises(ValueError, match="integer"):
        HeatNeumann(3.0)
    with pytest.raises(ValueError, match="kappa"):
        HeatNeumann(2.5, kappa=0.0)
    with pytest.raises(ValueError, match="omega and nu"):
        StokesSecond(omega=-1.0)


@pytest.mark.parametrize("problem", ["heat-neumann", "stokes"])
def test_operator_data_carry_their_boundary_conditions(problem, tmp_path):
    data = make_operator_data(problem, 4, n_points=64, setting="multi", n_steps=5, seed=1)
    assert data.inputs.shape == (4, 1, 64) and data.targets.shape == (4, 5, 64)
    h = float(data.x[1] - data.x[0])
    for side in ("left", "right"):
        err = M.boundary_error(data.targets, getattr(data, f"{side}_type"),
                               getattr(data, f"{side}_values"), side, h, order=3)
        # Exact for Dirichlet; the 3rd-order stencil's truncation error for Neumann.
        assert err.max() < (1e-12 if data.left_type == "dirichlet" else 5e-2)
    data.save(tmp_path / "d.npz")
    back = OperatorData.load(tmp_path / "d.npz")
    assert back.left_type == data.left_type and torch.equal(back.targets, data.targets)
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[:100])
    with pytest.raises(ValueError, match="truncated"):
        OperatorData.load(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError):
        OperatorData.load(tmp_path / "none.npz")


def test_pdebench_metrics_bands_1d():
    """PDEBench's metric_func (Takamoto et al. 2022): rfft modes k < 4 low, 4..11 mid, >= 12
    high; each band the mean over its modes of sqrt(mean_b |E_k|^2) / N * Lx."""
    n = 64
    x = torch.arange(n, dtype=F64) / n
    truth = torch.ones(3, 2, n, dtype=F64)
    for k, band in ((2, "low"), (4, "mid"), (11, "mid"), (12, "high")):
        err = 0.1 * torch.cos(2 * math.pi * k * x)
        got = M.pdebench_metrics(truth + err, truth)
        # |E_k| = 0.1 N / 2 at one mode: sqrt(...) / N = 0.05, averaged over the band's modes
        modes = {"low": 4, "mid": 8, "high": n // 2 + 1 - 12}[band]
        assert got[f"fRMSE_{band}"] == pytest.approx(0.05 / modes, rel=1e-12)
        for other in {"low", "mid", "high"} - {band}:
            assert got[f"fRMSE_{other}"] < 1e-15
        assert M.pdebench_metrics(truth + err, truth, lengths=2.0)[f"fRMSE_{band}"] == \
            pytest.approx(0.1 / modes, rel=1e-12)


def test_pdebench_metrics_rmse_crmse_brmse_1d():
    """cRMSE = sqrt(mean_b (mean_x e)^2), not the mean |.|; bRMSE = mean_b of the RMS over the
    two ends; RMSE / nRMSE per sample, then averaged; max over everything."""
    n = 8
    truth = torch.full((2, 1, n), 2.0, dtype=F64)
    err = torch.zeros(2, 1, n, dtype=F64)
    err[0, 0] = 0.3                           # sample 0: uniform offset 0.3
    err[1, 0, 0], err[1, 0, -1] = 0.4, -0.4    # sample 1: the ends only, mean 0
    got = M.pdebench_metrics(truth + err, truth)
    assert got["cRMSE"] == pytest.approx(math.sqrt((0.3 ** 2 + 0.0) / 2), rel=1e-12)
    assert got["bRMSE"] == pytest.approx((0.3 + 0.4) / 2, rel=1e-12)
    rmse = (0.3 + math.sqrt(2 * 0.16 / n)) / 2
    assert got["RMSE"] == pytest.approx(rmse, rel=1e-12)
    assert got["nRMSE"] == pytest.approx(rmse / 2.0, rel=1e-12)
    assert got["max_error"] == pytest.approx(0.4, rel=1e-12)


def test_pdebench_metrics_2d():
    """2-D: bRMSE over the four walls with the corners on both, / (2 nx + 2 ny); fRMSE on the
    shells floor(sqrt(i^2 + j^2)) of the first quadrant, k < min(nx, ny) // 2."""
    nx, ny = 16, 12
    truth = torch.zeros(1, 1, nx, ny, dtype=F64)
    err = torch.zeros_like(truth)
    err[0, 0, 0, :] = 1.0  # the whole x = 0 wall
    got = M.pdebench_metrics(truth + err, truth)
    assert got["bRMSE"] == pytest.approx(math.sqrt((ny + 2) / (2 * nx + 2 * ny)), rel=1e-12)
    x = (torch.arange(nx, dtype=F64) / nx)[:, None]
    y = (torch.arange(ny, dtype=F64) / ny)[None, :]
    # cos(2 pi (3 x + 4 y)): energy at (3, 4) in the quadrant (shell 5 = "mid"), and at
    # (-3, -4) outside it, which PDEBench does not count
    wave = torch.cos(2 * math.pi * (3 * x + 4 * y))[None, None]
    got = M.pdebench_metrics(wave, truth)
    shells = min(nx, ny) // 2
    assert got["fRMSE_mid"] == pytest.approx((nx * ny / 2) / (nx * ny) / (shells - 4),
                                             rel=1e-12)
    assert got["fRMSE_low"] < 1e-15
    assert math.isnan(got["fRMSE_high"])  # shells 12.. do not exist: PDEBench's NaN
    with pytest.raises(ValueError, match="spatial axes"):
        M.pdebench_metrics(torch.zeros(2, 3), torch.zeros(2, 3))


def test_brmse_per_field():
    truth = torch.zeros(2, 16, dtype=F64)
    assert torch.allclose(M.brmse(truth + 1.0, truth), torch.ones(2, dtype=F64))


def test_cli_boon_run(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "stokes", "--out", str(out), "--epochs", "2",
                                       "--functions", "8", "--test-functions", "4",
                                       "--setting", "multi", "--quiet"])
    assert result.exit_code == 0, result.output
    import json

    records = json.loads((out / "metrics.json").read_text())
    assert [r["model"] for r in records] == ["FNO", "BOON"]
    boon = records[1]
    assert boon["boundary_error"] < 1e-12  # enforced in float64 at evaluation
    assert records[0]["boundary_error"] > 1e-4  # an untrained FNO misses the wall values
    for name in ("prediction.png", "error.png", "boundary.png", "error_over_time.png",
                 "fno.pt", "boon.pt", "table.md"):
        assert (out / name).is_file()
    torch.load(out / "boon.pt", weights_only=True)
    assert np.isfinite([r["rel_l2"] for r in records]).all()


def test_single_step_stokes_run_gives_boon_the_output_wall_values(tmp_path):
    """Single-step Stokes defaults to BOON's exact output with the output's wall values in
    its input (measured: benchmarks/results/boon_interior.md); the table says so, the walls
    hold exactly, and --kernel-correction --no-input-walls gives the plain wrapper."""
    import json

    from physguard.experiments.boon import BOONConfig

    config = BOONConfig.default("stokes")
    assert (config.kernel_correction, config.input_walls) == (False, True)
    multi = BOONConfig.default("stokes", "multi")  # each output time's walls (section 8)
    assert (multi.kernel_correction, multi.input_walls) == (False, True)
    assert BOONConfig.default("burgers-dirichlet", "multi").input_walls is False
    assert BOONConfig.default("heat-neumann").kernel_correction is True
    assert BOONConfig.default("stokes", "multi", input_walls=True).input_walls is True
    with pytest.raises(ValueError, match="heat-neumann has none"):
        BOONConfig.default("heat-neumann", input_walls=True)
    with pytest.raises(ValueError, match="input_walls"):
        BOONConfig(problem="stokes", input_walls="yes")
    args = ["run", "stokes", "--epochs", "1", "--functions", "4", "--test-functions", "2",
            "--quiet"]
    out = tmp_path / "walls"
    result = CliRunner().invoke(main, args + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert (saved["kernel_correction"], saved["input_walls"]) == (False, True)
    assert "wall values written into the input" in (out / "table.md").read_text()
    assert json.loads((out / "metrics.json").read_text())[1]["boundary_error"] < 1e-12
    plain = tmp_path / "plain"
    result = CliRunner().invoke(main, args + ["--out", str(plain), "--kernel-correction",
                                              "--no-input-walls"])
    assert result.exit_code == 0, result.output
    assert "BOON here" not in (plain / "table.md").read_text()
    result = CliRunner().invoke(main, ["run", "stefan", "--input-walls"])
    assert result.exit_code == 2 and "apply to the BOON runs" in result.output
    result = CliRunner().invoke(main, ["run", "wave2d", "--input-walls", "--out",
                                       str(tmp_path / "wave")])
    assert result.exit_code == 1 and "wave2d has none" in result.output
    assert not (tmp_path / "wave").exists()


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_burgers_solver_matches_cole_hopf(a):
    from physguard.pdes import cole_hopf_sine, solve_burgers_dirichlet

    x = torch.linspace(0, 1, 513, dtype=F64)
    t = torch.tensor([0.1, 0.5, 1.0], dtype=F64)
    numeric = solve_burgers_dirichlet(a * torch.sin(math.pi * x)[None], x, t, nu=0.1)[0]
    exact = cole_hopf_sine(a, 0.1, t[:, None], x)
    assert (numeric - exact).abs().max() < 1e-4
    # The exact solution itself: residual of u_t + u u_x - nu u_xx by finite differences.
    xi = torch.linspace(0.1, 0.9, 9, dtype=F64)
    e, d = 1e-5, 1e-3

    def u(tt, xx):
        return cole_hopf_sine(a, 0.1, tt, xx)

    u_t = (u(0.3 + e, xi) - u(0.3 - e, xi)) / (2 * e)
    u_x = (u(0.3, xi + d) - u(0.3, xi - d)) / (2 * d)
    u_xx = (u(0.3, xi + d) - 2 * u(0.3, xi) + u(0.3, xi - d)) / d**2
    # Relative to the size of the viscous term: the stencil's own error grows at the front.
    residual = u_t + u(0.3, xi) * u_x - 0.1 * u_xx
    assert ((residual.abs() / (1 + (0.1 * u_xx).abs())) < 1e-4).all()


def test_burgers_solver_is_second_order():
    from physguard.pdes import cole_hopf_sine, solve_burgers_dirichlet

    errors = []
    for n in (65, 129):
        x = torch.linspace(0, 1, n, dtype=F64)
        t = torch.tensor([0.5], dtype=F64)
        num = solve_burgers_dirichlet(torch.sin(math.pi * x)[None], x, t, nu=0.1, dt=1e-4)
        errors.append(float((num[0, 0] - cole_hopf_sine(1.0, 0.1, 0.5, x)).abs().max()))
    assert 3.5 < errors[0] / errors[1] < 4.5


def test_periodic_burgers_self_convergence_and_random_field():
    from physguard.pdes import gaussian_random_field, solve_burgers_periodic
    from physguard.pdes.burgers import fourier_eval

    gen = torch.Generator().manual_seed(0)
    grid = torch.arange(256, dtype=F64) / 256
    u0 = gaussian_random_field(3, grid, gen)
    t = torch.tensor([0.5, 1.0], dtype=F64)
    x = torch.linspace(0, 1, 50, dtype=F64)
    coarse = fourier_eval(solve_burgers_periodic(u0, t, 0.1), 256, x)
    fine_dt = fourier_eval(solve_burgers_periodic(u0, t, 0.1, dt=2.5e-4), 256, x)
    fine_x = fourier_eval(solve_burgers_periodic(
        fourier_eval(torch.fft.rfft(u0), 256, torch.arange(512, dtype=F64) / 512), t, 0.1),
        512, x)
    assert (coarse - fine_dt).abs().max() < 1e-8  # fourth order in time
    assert (coarse - fine_x).abs().max() < 1e-10  # spectral in space
    assert torch.allclose(coarse[..., 0], coarse[..., -1], atol=1e-12)  # periodic
    # Mean is conserved: (u^2/2)_x and u_xx integrate to zero over a period.
    u_hat = solve_burgers_periodic(u0, t, 0.1)
    assert torch.allclose(u_hat[..., 0].real / 256, u0.mean(-1, keepdim=True).expand(3, 2),
                          atol=1e-12)
    # Random-field variance at a point: sum_k lambda_k (1 + 2 sum_{k>=1}) = 1 + 2 sum ...
    many = gaussian_random_field(4000, torch.tensor([0.3], dtype=F64), gen)
    k = torch.arange(1, 65, dtype=F64)
    expected = 1 + 2 * (625 / (4 * math.pi**2 * k**2 + 25) ** 2).sum()
    assert abs(float(many.var()) / float(expected) - 1) < 0.1


def test_cli_periodic_run_is_exactly_periodic(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "burgers-periodic", "--out", str(out),
                                       "--epochs", "1", "--functions", "4",
                                       "--test-functions", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    import json

    records = json.loads((out / "metrics.json").read_text())
    assert records[1]["boundary_error"] == 0.0 and records[0]["boundary_error"] > 0


@pytest.mark.parametrize("make", [lambda w: HeatNeumann(w), lambda w: StokesSecond(w)])
@pytest.mark.parametrize("omega", [1.5, 3.3, 5.5])
def test_net_inflow_is_the_rate_of_change_of_the_total(make, omega):
    """``net_inflow(t)`` (the flux form: walls only) against the closed-form total's time
    derivative by a central difference (error O(dt^2) ~ 1e-8 relative), and the total from
    the fluxes (``mass_from_fluxes``) against the closed form to 1e-9."""
    from physguard.constraints import mass_from_fluxes

    pde, dt = make(omega), 1e-4
    for t in (0.1, 0.37, 0.8, 1.6):
        rate = float(pde.mass(t + dt) - pde.mass(t - dt)) / (2 * dt)
        assert pde.net_inflow(t) == pytest.approx(rate, rel=1e-6, abs=1e-9)
    times = torch.linspace(0.0, 2.0, 9, dtype=torch.float64)
    total = mass_from_fluxes(float(pde.mass(0.0)), pde.net_inflow, times)
    torch.testing.assert_close(total, pde.mass(times), rtol=1e-9, atol=1e-9)
