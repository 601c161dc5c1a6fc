"""Figures of a run (matplotlib, Agg backend; written atomically as PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from . import metrics as M  # noqa: E402
from ._io import atomic_path  # noqa: E402
from .constraints import trapezoid_weights  # noqa: E402

__all__ = ["boon_2d_figures", "gpme_figures", "save_figure", "uq_figures", "uq_figures_2d"]

class _Colors(dict):
    """Fixed colours for the paper's methods; any other method gets the next unused one."""

    _cycle = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray",
              "tab:red", "gold", "navy", "teal", "lime", "maroon", "orchid", "sienna")

    def __missing__(self, key):
        used = set(self.values())
        free = [c for c in self._cycle if c not in used]
        self[key] = free[0] if free else self._cycle[len(self) % len(self._cycle)]
        return self[key]


COLORS = _Colors({"ANP": "tab:blue", "HardC-ANP": "tab:orange", "ProbConserv-ANP": "tab:green",
                  "truth": "black"})
_Z90 = 1.6448536269514722


def save_figure(fig, path: Path) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _panels(n: int, title: str):
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.8), squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def gpme_figures(out: Path, cls, evaluations, t_grid, x_grid, i_star: int) -> list[Path]:
    """Profile with 90 % band at t*, mass over time, shock position, error over time."""
    p = cls.parameter_name
    t_star = float(t_grid[i_star])
    x, t = x_grid.numpy(), t_grid.numpy()
    written = []

    fig, axes = _panels(len(evaluations), f"{cls.__name__}: solution at t = {t_star:g} "
                        "(test function 0, 90 % band)")
    for ax, ev in zip(axes, evaluations, strict=True):
        ax.plot(x, ev.truth[i_star].numpy(), color=COLORS["truth"], lw=2, label="exact")
        for method, mean in ev.mean.items():
            mu = mean[0, i_star].numpy()
            sd = ev.var[method][0, i_star].sqrt().numpy()
            ax.plot(x, mu, color=COLORS[method], lw=1.2, label=method)
            ax.fill_between(x, mu - _Z90 * sd, mu + _Z90 * sd, color=COLORS[method], alpha=0.15)
        ax.set(title=f"{p} = {ev.param:g}", xlabel="x", ylabel="u")
    axes[0].legend(fontsize=8)
    written.append(out / "profile.png")
    save_figure(fig, written[-1])

    fig, axes = _panels(len(evaluations), f"{cls.__name__}: total mass over time "
                        "(mean over test functions)")
    w = trapezoid_weights(x_grid)
    for ax, ev in zip(axes, evaluations, strict=True):
        ax.plot(t, ev.mass.numpy(), color=COLORS["truth"], lw=2, label="exact U(t)")
        for method, mean in ev.mean.items():
            style = "--" if method.startswith(("HardC-", "ProbConserv-")) else "-"
            ax.plot(t, (mean @ w).mean(0).numpy(), style, color=COLORS[method], label=method)
        ax.set(title=f"{p} = {ev.param:g}", xlabel="t", ylabel="integral of u dx")
    axes[0].legend(fontsize=8)
    written.append(out / "mass.png")
    save_figure(fig, written[-1])

    if evaluations[0].fronts:
        fig, axes = _panels(len(evaluations), f"{cls.__name__}: shock position at t = "
                            f"{t_star:g} (joint posterior samples, test function 0)")
        for ax, ev in zip(axes, evaluations, strict=True):
            true_front = ev.true_front
            first = {method: f[0] for method, f in ev.fronts.items()}  # test function 0
            lo = min(float(f.min()) for f in first.values())
            hi = max(float(f.max()) for f in first.values())
            bins = torch.linspace(min(lo, true_front) - 0.01, max(hi, true_front) + 0.01, 40)
            for method, fronts in first.items():
                ax.hist(fronts.numpy(), bins=bins.numpy(), alpha=0.45, color=COLORS[method],
                        label=f"{method} (mean {float(fronts.mean()):.3f})")
            ax.axvline(true_front, color="black", lw=2, label=f"exact {true_front:.3f}")
            rule = "step fit at the jump's middle" if ev.fronts_paper else "first u <= 0"
            ax.set(title=f"{p} = {ev.param:g}", xlabel=f"shock position x* ({rule})",
                   ylabel="count")
            ax.legend(fontsize=7)
        written.append(out / "shock_position.png")
        save_figure(fig, written[-1])

    fig, axes = _panels(len(evaluations), f"{cls.__name__}: MSE over time "
                        "(mean over test functions)")
    for ax, ev in zip(axes, evaluations, strict=True):
        for method, mean in ev.mean.items():
            ax.semilogy(t, M.mse(mean, ev.truth).mean(0).numpy(), color=COLORS[method],
                        label=method)
        ax.axvline(t_star, color="gray", lw=0.8, ls=":")
        ax.set(title=f"{p} = {ev.param:g}", xlabel="t", ylabel="MSE")
    axes[0].legend(fontsize=8)
    written.append(out / "error_over_time.png")
    save_figure(fig, written[-1])
    return written


_MODEL_COLORS = {"FNO": "tab:red", "BOON": "tab:green", "truth": "black"}


def boon_figures(out: Path, data, predictions: dict) -> list[Path]:
    """Prediction vs truth at the final time, error over x, boundary condition over time,
    and (multi-step) error over time, for FNO and BOON."""
    x, t = data.x.numpy(), data.t.numpy()
    h = float(data.x[1] - data.x[0])
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, data.targets[0, -1].numpy(), color="black", lw=2, label="exact")
    for name, pred in predictions.items():
        ax.plot(x, pred[0, -1].numpy(), "--", color=_MODEL_COLORS[name], label=name)
    ax.set(title=f"{data.problem}: test sample 0 at t = {t[-1]:g}", xlabel="x", ylabel="u")
    ax.legend()
    written.append(out / "prediction.png")
    save_figure(fig, written[-1])

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pred in predictions.items():
        err = (pred[:, -1] - data.targets[:, -1]).abs().mean(0).numpy()
        ax.semilogy(x, err, color=_MODEL_COLORS[name], label=name)
    ax.set(title=f"{data.problem}: mean |error| at t = {t[-1]:g}", xlabel="x",
           ylabel="|u - u_exact|")
    ax.legend()
    written.append(out / "error.png")
    save_figure(fig, written[-1])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, side in zip(axes, ("left", "right"), strict=True):
        kind = getattr(data, f"{side}_type")
        truth = getattr(data, f"{side}_values")[0].numpy()
        if kind == "periodic":  # the prescribed value is the other end's: plot the truth's end
            truth = data.targets[0, :, 0 if side == "left" else -1].numpy()
        ax.plot(t, truth, "o-", color="black", lw=2, label="prescribed")
        for name, pred in predictions.items():
            if kind in ("dirichlet", "periodic"):
                values = pred[0, :, 0 if side == "left" else -1]
            else:
                values = M.boundary_flux(pred[0], h, side)
            ax.plot(t, values.numpy(), "s--", color=_MODEL_COLORS[name], label=name)
        quantity = "du/dx" if kind == "neumann" else "u"
        ax.set(title=f"{side} boundary ({kind}): {quantity}, test sample 0", xlabel="t",
               ylabel=quantity)
        ax.legend(fontsize=8)
    written.append(out / "boundary.png")
    save_figure(fig, written[-1])

    if len(t) > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, pred in predictions.items():
            rel = M.relative_l2(pred, data.targets).mean(0).numpy()
            ax.semilogy(t, rel, color=_MODEL_COLORS[name], label=name)
        ax.set(title=f"{data.problem}: relative L2 error over time", xlabel="t",
               ylabel="relative L2")
        ax.legend()
        written.append(out / "error_over_time.png")
        save_figure(fig, written[-1])
    return written


def _field_row(axes, fields: list, titles: list[str], cmap: str = "RdBu_r",
               shared: bool = True) -> None:
    lim = max(float(f.abs().max()) for f in fields) if shared else None
    for ax, f, title in zip(axes, fields, titles, strict=True):
        scale = lim if shared else float(f.abs().max())
        image = ax.imshow(f.T.numpy(), origin="lower", extent=(0, 1, 0, 1), cmap=cmap,
                          vmin=-scale if cmap == "RdBu_r" else 0, vmax=scale)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        plt.colorbar(image, ax=ax, fraction=0.046)


def boon_2d_figures(out: Path, data, predictions: dict, records: list[dict]) -> list[Path]:
    """Figures of a 2-D BOON run: fields, errors, wall errors (and, for several steps, the
    error over time and an animation of truth / FNO / BOON)."""
    written = []
    truth = data.targets[0]
    n_steps = len(data.t)
    steps = [0] if data.setting == "single" else sorted({0, n_steps // 2, n_steps - 1})
    first = " (u)" if data.fields > 1 else ""  # a vector field: its first component
    fig, axes = plt.subplots(len(steps), 5, figsize=(20, 3.6 * len(steps)), squeeze=False)
    label = "channel" if data.setting == "single" else "t index"
    for row, k in zip(axes, steps, strict=True):
        c = k * data.fields
        fno, boon = predictions["FNO"][0, c], predictions["BOON"][0, c]
        _field_row(row[:3], [truth[c], fno, boon],
                   [f"truth ({label} {k}{first})", "FNO", "BOON"])
        err = [(fno - truth[c]).abs(), (boon - truth[c]).abs()]
        lim = max(float(e.max()) for e in err)
        for ax, e, title in zip(row[3:], err, ("|FNO - truth|", "|BOON - truth|"), strict=True):
            image = ax.imshow(e.T.numpy(), origin="lower", extent=(0, 1, 0, 1), cmap="magma",
                              vmin=0, vmax=lim)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            plt.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"{data.problem}: first test sample ({data.field})")
    save_figure(fig, out / "fields.png")
    written.append(out / "fields.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    walls = ("left", "right", "bottom", "top")
    for i, r in enumerate(records):
        values = [max(r[f"boundary_error_{w}"], 1e-17) for w in walls]
        ax.bar([j + 0.4 * i for j in range(4)], values, width=0.4, label=r["model"])
    ax.set_xticks([j + 0.2 for j in range(4)], walls)
    ax.set_yscale("log")
    ax.set_ylabel("mean |condition violation|")
    ax.set_title("boundary error per wall (corners excluded)")
    ax.legend()
    save_figure(fig, out / "boundary.png")
    written.append(out / "boundary.png")

    if data.setting == "multi":
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in records:
            ax.plot(data.t.numpy(), r["rel_l2_per_step"], marker="o", ms=3, label=r["model"])
        ax.set_xlabel("t")
        ax.set_ylabel("relative L2 error (test mean)")
        ax.legend()
        save_figure(fig, out / "error_over_time.png")
        written.append(out / "error_over_time.png")
        written.append(_animation(out / "animation.gif", data, predictions))
    return written


def _field_animation(path: Path, frames: list, titles: list[str], caption, indices,
                     fps: int) -> Path:
    """GIF of 2-D fields side by side (``frames``: ``(T, Nx, Ny)`` each, one colour scale),
    ``caption(k)`` above frame ``k``, for ``k`` in ``indices``."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    lim = max(float(f.abs().max()) for f in frames)
    fig, axes = plt.subplots(1, len(frames), figsize=(max(11.0, 3.4 * len(frames)), 3.6),
                             squeeze=False)
    images = []
    for ax, f, title in zip(axes[0], frames, titles, strict=True):
        images.append(ax.imshow(f[0].T.numpy(), origin="lower", extent=(0, 1, 0, 1),
                                cmap="RdBu_r", vmin=-lim, vmax=lim))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    label = fig.suptitle("")

    def update(k):
        for image, f in zip(images, frames, strict=True):
            image.set_data(f[k].T.numpy())
        label.set_text(caption(k))
        return images

    animation = FuncAnimation(fig, update, frames=indices, blit=False)
    # Pillow picks the format from the suffix, so no atomic temporary name here: the GIF is
    # written inside a run folder that is itself moved into place only when complete.
    animation.save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


def _animation(path: Path, data, predictions: dict) -> Path:
    """GIF of truth / FNO / BOON over the output times of the first test sample (a vector
    field's first component)."""
    frames = [f[0, ::data.fields] for f in (data.targets, predictions["FNO"],
                                            predictions["BOON"])]
    component = ", u" if data.fields > 1 else ""
    return _field_animation(
        path, frames, ["truth", "FNO", "BOON"],
        lambda k: f"{data.problem} ({data.field}{component}), t = {float(data.t[k]):.2f}",
        range(frames[0].shape[0]), fps=6)


def shock_reliability(path: Path, cls, evaluations, scores: dict, interval) -> Path:
    """Coverage of the shock interval against its nominal level (50 ... 95 %), per test
    parameter and method: the calibrated ``mean +- interval(scores, level) scale`` (solid)
    and the posterior samples' central interval (dotted)."""
    levels = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    fig, axes = _panels(len(evaluations), f"{cls.__name__}: reliability of the shock interval "
                        "(test functions)")
    for ax, ev in zip(axes, evaluations, strict=True):
        ax.plot([0, 1], [0, 1], color="black", lw=1, label="ideal")
        for method, fronts in ev.fronts.items():
            error = (fronts.mean(1) - ev.true_front).abs()
            if method in scores and method in ev.front_scale:
                cover = [float((error <= interval(scores[method], q)
                                * ev.front_scale[method]).double().mean()) for q in levels]
                ax.plot(levels, cover, "o-", color=COLORS[method], label=f"{method}")
            posterior = []
            for q in levels:
                lo, hi = torch.quantile(fronts, torch.tensor([(1 - q) / 2, (1 + q) / 2],
                                                             dtype=fronts.dtype), dim=1)
                posterior.append(float(((lo <= ev.true_front) & (ev.true_front <= hi))
                                       .double().mean()))
            ax.plot(levels, posterior, ":", color=COLORS[method], label=f"{method} (posterior)")
        ax.set(title=f"{cls.parameter_name} = {ev.param:g}", xlabel="nominal level",
               ylabel="fraction of test functions covered", xlim=(0.4, 1), ylim=(-0.02, 1.02))
    axes[0].legend(fontsize=6)
    save_figure(fig, path)
    return path


def uq_figures(out: Path, tests: dict, masses: dict, predictions: dict) -> list[Path]:
    """The UQ run's figures (``physguard run PROBLEM --uq``): for test sample 0 in range, the
    mean with its 90 % band at three times, the total mass over time against the truth, the
    boundary values or fluxes over time; and the calibration (coverage against nominal level)
    of every model in and out of range.

    ``tests``: range -> :class:`~physguard.datasets.operator.OperatorData`; ``masses``: range
    -> ``U(t)`` ``(n, T)``; ``predictions``: range -> model -> ``(mean, var)`` ``(n, T, N)``.
    """
    data, preds, mass = tests["in"], predictions["in"], masses["in"]
    x, t = data.x.numpy(), data.t.numpy()
    h = float(data.x[1] - data.x[0])
    written = []
    steps = sorted({0, len(t) // 2, len(t) - 1})
    fig, axes = plt.subplots(1, len(steps), figsize=(4.5 * len(steps), 3.8), squeeze=False)
    for ax, k in zip(axes[0], steps, strict=True):
        ax.plot(x, data.targets[0, k].numpy(), color="black", lw=2, label="exact")
        for name in ("BOON-Ensemble", "ProbConserv-BOON-Ensemble", "FNO-Ensemble"):
            mean, var = (v[0, k].numpy() for v in preds[name])
            band = _Z90 * var.clip(min=0) ** 0.5
            ax.plot(x, mean, "--", color=COLORS[name], label=name)
            ax.fill_between(x, mean - band, mean + band, color=COLORS[name], alpha=0.2)
        ax.set(title=f"t = {t[k]:.3g}", xlabel="x", ylabel="u")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{data.problem}: mean and 90 % band, test sample 0")
    written.append(out / "uq_band.png")
    save_figure(fig, written[-1])

    w = trapezoid_weights(data.x)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, mass[0].numpy(), "o-", color="black", lw=2, label="U(t) from the fluxes")
    for name, (mean, _) in preds.items():
        ax.plot(t, (mean[0] @ w).numpy(), "s--", color=COLORS[name], label=name, ms=3)
    ax.set(title=f"{data.problem}: total mass, test sample 0", xlabel="t",
           ylabel="int u dx (trapezoid)")
    ax.legend(fontsize=7)
    written.append(out / "uq_mass.png")
    save_figure(fig, written[-1])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, side in zip(axes, ("left", "right"), strict=True):
        kind = getattr(data, f"{side}_type")
        end = 0 if side == "left" else -1
        truth = (data.targets[0, :, end] if kind == "periodic"
                 else getattr(data, f"{side}_values")[0])
        ax.plot(t, truth.numpy(), "o-", color="black", lw=2, label="prescribed")
        for name, (mean, _) in preds.items():
            values = M.boundary_flux(mean[0], h, side) if kind == "neumann" else mean[0, :, end]
            ax.plot(t, values.numpy(), "s--", color=COLORS[name], label=name, ms=3)
        ax.set(title=f"{side} wall ({kind}): {'du/dx' if kind == 'neumann' else 'u'}",
               xlabel="t")
    axes[0].legend(fontsize=7)
    written.append(out / "uq_boundary.png")
    save_figure(fig, written[-1])

    written.append(_calibration_figure(out, tests, predictions))
    return written


def _calibration_figure(out: Path, tests: dict, predictions: dict) -> Path:
    """Observed coverage of the central intervals against their nominal level, per model,
    in range (solid) and out of range (dotted)."""
    levels = torch.linspace(0.05, 0.95, 19)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="black", lw=1, label="ideal")
    for range_name, range_preds in predictions.items():
        truth = tests[range_name].targets.flatten(1)
        for name, (mean, var) in range_preds.items():
            cover = [float(M.interval_coverage(mean.flatten(1), var.flatten(1), truth,
                                               float(q)).mean()) for q in levels]
            ax.plot(levels.numpy(), cover, "-" if range_name == "in" else ":",
                    color=COLORS[name], label=f"{name} ({range_name})")
    ax.set(title="calibration: coverage of central intervals", xlabel="nominal level",
           ylabel="observed coverage", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=6)
    path = out / "uq_calibration.png"
    save_figure(fig, path)
    return path


def uq_figures_2d(out: Path, tests: dict, masses: dict, predictions: dict) -> list[Path]:
    """The 2-D UQ run's figures: test sample 0 (last channel: the final time step, or ``v``
    for the cavity's velocity) as truth, the BOON-ensemble's and the conditioned one's
    means and standard deviations; the conservation of every model (the wave: total over
    time; the cavity: |discrete divergence| per cell); the calibration."""
    from .constraints import cell_divergence, trapezoid_weights_2d

    data, preds = tests["in"], predictions["in"]
    names = ("BOON-Ensemble", "ProbConserv-BOON-Ensemble")
    fields = [data.targets[0, -1]] + [preds[n][0][0, -1] for n in names] \
        + [preds[n][1][0, -1].clamp(min=0).sqrt() for n in names]
    titles = ["truth", *(f"{n} mean" for n in names), *(f"{n} std" for n in names)]
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.8))
    for ax, f, title in zip(axes, fields, titles, strict=True):
        image = ax.imshow(f.numpy().T, origin="lower", extent=(0, 1, 0, 1),
                          cmap="viridis" if "std" in title else "RdBu_r")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    written = [out / "uq_fields.png"]
    save_figure(fig, written[-1])

    fig, ax = plt.subplots(figsize=(6, 4))
    if data.problem == "cavity":
        for name, (mean, _) in preds.items():
            div = cell_divergence(mean, data.x, data.y).abs().flatten().clamp(min=1e-17)
            ax.hist(div.log10().numpy(), bins=40, histtype="step", color=COLORS[name],
                    label=name)
        ax.set(title="cavity: |discrete divergence| of every cell (test means)",
               xlabel="log10 |div u|", ylabel="cells")
    else:
        w = trapezoid_weights_2d(data.x, data.y)
        t = data.t.numpy()
        ax.plot(t, masses["in"][0].numpy(), "o-", color="black", lw=2, label="conserved total")
        for name, (mean, _) in preds.items():
            ax.plot(t, (mean[0].flatten(1) @ w).numpy(), "s--", color=COLORS[name],
                    label=name, ms=3)
        ax.set(title=f"{data.problem}: total over time, test sample 0", xlabel="t",
               ylabel="int u dx dy")
    ax.legend(fontsize=7)
    written.append(out / "uq_conservation.png")
    save_figure(fig, written[-1])
    written.append(_calibration_figure(out, tests, predictions))
    return written


def rollout_figures(out: Path, records: list[dict], traj, predictions: dict) -> list[Path]:
    """``rollout_error.png`` (relative L2, correlation, mass error, boundary error against the
    step), ``rollout_coverage.png`` (coverage90 against the step, ensembles only) and
    ``rollout.gif`` (truth and every model's mean on the first test trajectory, the
    ensembles' 90 % band shaded)."""
    steps = [r for r in records if not r.get("summary")]
    models = list(dict.fromkeys(r["model"] for r in steps))
    fig, axes = _panels(4, f"{traj.problem}: rollout against the step")
    panels = (("rel_l2", "relative L2", True), ("correlation", "correlation with the truth",
                                                 False),
              ("mass_error", "max |div u| (interior nodes)" if traj.local
               else "|int u - U(t)| / |U(t)|", True),
              ("boundary_error", "wall violation", True))
    for ax, (key, label, log) in zip(axes, panels, strict=True):
        for model in models:
            rows = [r for r in steps if r["model"] == model]
            values = [max(r[key], 1e-17) if log else r[key] for r in rows]
            ax.plot([r["step"] for r in rows], values, label=model,
                    linestyle="--" if "Ensemble" in model else "-")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(label)
    axes[0].legend(fontsize=7)
    paths = [out / "rollout_error.png"]
    save_figure(fig, paths[0])
    uq = [m for m in models if any("coverage90" in r for r in steps if r["model"] == m)]
    if uq:
        fig, axes = _panels(1, f"{traj.problem}: coverage of the 90 % interval")
        for model in uq:
            rows = [r for r in steps if r["model"] == model]
            axes[0].plot([r["step"] for r in rows], [r["coverage90"] for r in rows],
                         label=model)
        axes[0].axhline(0.9, color="black", linewidth=0.8, linestyle=":")
        axes[0].set_ylim(0, 1.02)
        axes[0].set_xlabel("step")
        axes[0].legend(fontsize=7)
        paths.append(out / "rollout_coverage.png")
        save_figure(fig, paths[-1])
    animate = _rollout_animation_2d if traj.two_d else _rollout_animation
    paths.append(animate(out / "rollout.gif", traj, predictions))
    return paths


def _rollout_animation_2d(path: Path, traj, predictions: dict) -> Path:
    """Truth and the deterministic models' fields of the first test trajectory."""
    names = ["truth"] + [m for m in predictions if "Ensemble" not in m]
    frames = [traj.fields[0]] + [predictions[m][0][0] for m in names[1:]]
    component = ""
    if traj.n_fields > 1:  # a vector field (the cavity's velocity): its first component
        frames, component = [f[:, 0] for f in frames], " (u)"
    count = frames[0].shape[0]
    return _field_animation(
        path, frames, names,
        lambda k: f"{traj.problem}{component}, step {k}, t = {float(traj.t[k]):.3f}",
        range(0, count, max(1, count // 60)), fps=8)


def _rollout_animation(path: Path, traj, predictions: dict) -> Path:
    from matplotlib.animation import FuncAnimation, PillowWriter

    x = traj.x.numpy()
    truth = traj.fields[0]
    lim = 1.1 * max(float(truth.abs().max()),
                    *(float(mean[0].abs().max()) for mean, _ in predictions.values()))
    fig, ax = plt.subplots(figsize=(7, 4))
    (truth_line,) = ax.plot(x, truth[0].numpy(), color="black", linewidth=2, label="truth")
    lines, bands = {}, {}
    for model, (mean, _) in predictions.items():
        (lines[model],) = ax.plot(x, mean[0, 0].numpy(), label=model,
                                  linestyle="--" if "Ensemble" in model else "-")
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("x")
    ax.legend(fontsize=7, loc="upper right")
    title = ax.set_title("")

    def update(k):
        truth_line.set_ydata(truth[k].numpy())
        for model, (mean, var) in predictions.items():
            lines[model].set_ydata(mean[0, k].numpy())
            if var is not None:
                if model in bands:
                    bands[model].remove()
                sd = var[0, k].clamp(min=0).sqrt()
                bands[model] = ax.fill_between(
                    x, (mean[0, k] - _Z90 * sd).numpy(), (mean[0, k] + _Z90 * sd).numpy(),
                    color=lines[model].get_color(), alpha=0.15, linewidth=0)
        title.set_text(f"{traj.problem}, step {k}, t = {float(traj.t[k]):.3f}")
        return [truth_line, *lines.values()]

    animation = FuncAnimation(fig, update, frames=range(0, truth.shape[0],
                                                        max(1, truth.shape[0] // 60)))
    # Written inside a run folder that is moved into place only when complete (as _animation).
    animation.save(str(path), writer=PillowWriter(fps=8))
    plt.close(fig)
    return path
