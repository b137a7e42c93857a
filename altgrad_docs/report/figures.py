"""Figures over training (matplotlib object API, no pyplot): one panel per call.

Every function takes ``ax=None`` (then it makes its own :class:`matplotlib.figure.Figure`,
which pyplot never sees, so there is nothing global to close) and returns the axes it drew
on. Inputs are plain data: the run table and the :class:`~altgrad_docs.analysis.curves.Trace`
objects of ``collect_traces``. Where the data for a figure are missing the panel says so in
words ("no data: <why>") instead of showing an empty frame.

Summary figures (forest plot, loss vs mantissa bits, heatmap, number lines) are in
:mod:`altgrad_docs.report.figures_summary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when the site starts
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from altgrad_docs.analysis.curves import Trace, iter_condition, median_curve, survival
from altgrad_docs.analysis.scorecard import MANIFOLD, STANDARD, sorted_formats
from altgrad_docs.formats import FORMATS

OPTIMIZER_COLORS = {STANDARD: "#1f77b4", MANIFOLD: "#d95f02"}
BASELINE_COLOR = "0.35"
FORMAT_CMAP = "viridis"
#: Above this many runs in one panel the thin per-run lines are rasterised (the medians,
#: axes and text stay vector).
RASTER_ABOVE = 20
#: Lowest bit-stall rate the log axis shows.
STALL_FLOOR = 1e-4
#: Crash forensics names the runs in a legend up to this many.
MAX_LEGEND = 10
#: Up to this many lines in a panel the legend finds the emptiest corner.
BEST_LEGEND_LINES = 40


def new_figure(**kw) -> Figure:
    """A matplotlib Figure (object API; matplotlib is imported here, on first use)."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def new_axes(ax: Axes | None = None, figsize: tuple[float, float] = (5.0, 3.2)) -> Axes:
    """``ax`` itself, or the single axes of a new (pyplot-free) Figure."""
    if ax is not None:
        return ax
    return new_figure(figsize=figsize, layout="constrained").add_subplot()


def no_data(ax: Axes, why: str, title: str | None = None) -> Axes:
    """Say in words that there is nothing to draw, and why."""
    ax.text(0.5, 0.5, plain(f"no data: {why}"), ha="center", va="center", wrap=True, fontsize=9,
            color="0.3", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(plain(title), fontsize=10)
    return ax


def legend(ax: Axes, **kw) -> None:
    """A small frameless legend; "best" placement only while it is cheap (it tests every
    line for overlap), else the upper right corner."""
    loc = "best" if len(ax.lines) <= BEST_LEGEND_LINES else "upper right"
    ax.legend(fontsize=7, frameon=False, loc=loc, **kw)


def plain(text: object) -> str:
    """User text as a matplotlib label: one line, no mathtext ($ escaped)."""
    return " ".join(str(text).split()).replace("$", r"\$")


def panel_grid(names: Sequence[str], draw: Callable[[str, Axes], object], ncols: int = 4,
               panel_size: tuple[float, float] = (3.4, 2.6)) -> Figure:
    """A Figure with one panel per name, drawn by ``draw(name, ax)`` ("no data" when none)."""
    if not names:
        fig = new_figure(figsize=panel_size, layout="constrained")
        no_data(fig.add_subplot(), "no runs to draw")
        return fig
    ncols = max(1, min(ncols, len(names)))
    nrows = max(1, -(-len(names) // ncols))
    fig = new_figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for name, ax in zip(names, axes):
        draw(name, ax)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    return fig


def _draw_condition(ax: Axes, traces: list[Trace], metric: str, color, label: str, mark_collapse: bool,
                    positive_only: bool = False, dashed: bool = False) -> bool:
    """Every run thin, the median bold; an x at each run's collapse. True if anything drawn."""
    curves = []
    many = len(traces) > RASTER_ABOVE  # vector files stay small and quick with hundreds of seeds
    for t in traces:
        s, v = t.curve(metric)
        ok = np.isfinite(v) & ((v > 0) if positive_only else True)
        if ok.any():
            ax.plot(s[ok], v[ok], color=color, lw=0.6, alpha=0.35, ls="--" if dashed else "-", rasterized=many,
                    zorder=1.5)  # below medians and marks, so rasterised lines form one image
            curves.append((s[ok], v[ok]))
        if mark_collapse and t.collapse_step is not None and ok.any():
            ax.plot([t.collapse_step], [v[ok][-1]], marker="x", color=color, ms=7, mew=1.8, ls="none", zorder=3)
    if not curves:
        return False
    grid, med = median_curve(curves)
    ax.plot(grid, med, color=color, lw=2.0, ls="--" if dashed else "-", label=plain(f"{label} (n = {len(curves)})"),
            zorder=2.5)
    return True


def plot_loss_curves(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, metric: str = "loss",
                     baseline: str | None = "BF16", ax: Axes | None = None) -> Axes:
    """Loss of one format over steps: both optimizers, every seed thin, median bold, the
    baseline format's median dashed, an x where a run's loss became NaN/Inf."""
    ax = new_axes(ax)
    drawn = False
    for opt in (STANDARD, MANIFOLD):
        drawn |= _draw_condition(ax, list(iter_condition(traces, runs, fmt, opt)), metric,
                                 OPTIMIZER_COLORS[opt], opt, mark_collapse=True)
    if not drawn:
        return no_data(ax, f"no {metric} logged for {fmt}", title=fmt)
    if baseline and baseline != fmt:
        _draw_condition(ax, list(iter_condition(traces, runs, baseline)), metric, BASELINE_COLOR,
                        baseline, mark_collapse=False, dashed=True)
    ax.set_title(plain(fmt), fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{metric} (nats)")
    legend(ax)
    return ax


def plot_stall(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, threshold: float | None = None,
               ax: Axes | None = None) -> Axes:
    """Bit-stall rate of one format over steps (log y) per optimizer, with the alert threshold
    as a line and the format's stagnation band (updates below 2^-(M+2)..2^-(M+1) of |w| are
    lost to rounding) stated in the panel."""
    ax = new_axes(ax)
    metric = "quantization/bit_stall_rate"
    drawn = False
    for opt in (STANDARD, MANIFOLD):
        drawn |= _draw_condition(ax, list(iter_condition(traces, runs, fmt, opt)), metric,
                                 OPTIMIZER_COLORS[opt], opt, mark_collapse=True, positive_only=True)
    if not drawn:
        return no_data(ax, f"no bit-stall rate logged for {fmt}", title=fmt)
    ax.set_yscale("log")
    if threshold is None:
        sel = runs.loc[(runs["format"].astype("string") == fmt).fillna(False).to_numpy(), "bit_stall_threshold"]
        vals = pd.to_numeric(sel, errors="coerce").dropna()
        threshold = float(vals.median()) if len(vals) else 0.5
    low = min((float(ln.get_ydata().min()) for ln in ax.lines if len(ln.get_ydata())), default=STALL_FLOOR)
    # the data and the threshold in view, a few decades at most: rates below the floor are noise
    ax.set_ylim(max(STALL_FLOOR, 0.8 * min(low, threshold)), 1.1)
    ax.axhline(threshold, color="crimson", lw=0.9, ls=":", label=f"alert threshold {threshold:g}")
    if fmt in FORMATS:
        m = FORMATS[fmt].man_bits
        text = ("stalls: |update| < 2^-8 (absolute)" if FORMATS[fmt].convention == "fixed"
                else f"stalls: |update| < {100 * 2.0 ** -(m + 2):.3g}-{100 * 2.0 ** -(m + 1):.3g}% of |w|")
        ax.set_title(f"{plain(fmt)}\n{text}", fontsize=9)
    else:
        ax.set_title(plain(fmt), fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("bit-stall rate")
    legend(ax)
    return ax


def plot_over_under_flow(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, ax: Axes | None = None) -> Axes:
    """Overflow (solid) and underflow (dotted) rate of one format over steps, per optimizer."""
    ax = new_axes(ax)
    drawn = False
    for opt in (STANDARD, MANIFOLD):
        for metric, style in (("quantization/overflow_rate", "-"), ("quantization/underflow_rate", ":")):
            curves = [t.curve(metric) for t in iter_condition(traces, runs, fmt, opt)]
            curves = [(s[np.isfinite(v)], v[np.isfinite(v)]) for s, v in curves if np.isfinite(v).any()]
            if curves:
                grid, med = median_curve(curves)
                kind = metric.split("/")[1].split("_")[0]
                ax.plot(grid, med, color=OPTIMIZER_COLORS[opt], ls=style, lw=1.6,
                        label=f"{kind}, {opt} (median of {len(curves)})")
                drawn = True
    if not drawn:
        return no_data(ax, f"no overflow or underflow rate logged for {fmt}", title=fmt)
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_title(plain(fmt), fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of values")
    legend(ax)
    return ax


def plot_survival(traces: dict[str, Trace], runs: pd.DataFrame, formats: Iterable[str] | None = None,
                  ax: Axes | None = None) -> Axes:
    """Fraction of runs not yet failed vs step, one step line per format. A run fails at
    its first non-finite loss, or, when its state is failed/crashed with a finite loss (the
    trainer stopped it: divergence, stagnation), at its last step; runs that end without
    failing are censored at their last step."""
    ax = new_axes(ax)
    formats = sorted_formats(formats if formats is not None else runs["format"].dropna())
    colors = _format_colors(formats)
    drawn = False
    styles = ("-", "--", "-.", ":")  # curves often coincide at 1.0: tell them apart by dash too
    stopped = _stopped_runs(runs)
    for i, fmt in enumerate(formats):
        ts = list(iter_condition(traces, runs, fmt))
        events = [t.collapse_step if t.collapse_step is not None or t.run_id not in stopped
                  else t.last_step for t in ts]
        x, y = survival(events, [t.last_step for t in ts])
        if len(x):
            ax.step(x, y, where="post", color=colors[fmt], lw=1.5, ls=styles[i % len(styles)],
                     label=f"{plain(fmt)} (n = {len(ts)})")
            drawn = True
    if not drawn:
        return no_data(ax, "no run histories")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of runs not failed")
    legend(ax, ncols=2)
    return ax


def _stopped_runs(runs: pd.DataFrame) -> set[str]:
    """Run ids whose state is failed or crashed (``status`` of the run table)."""
    if "status" not in runs:
        return set()
    status = runs["status"].astype("string").fillna("")
    return set(runs.loc[status.isin(["failed", "crashed"]).to_numpy(), "run_id"].astype(str))


def _format_colors(formats: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps[FORMAT_CMAP]
    n = max(1, len(formats) - 1)
    return {f: cmap(0.9 * i / n) for i, f in enumerate(formats)}


def plot_crash_forensics(traces: Sequence[Trace], labels: Sequence[str] | None = None,
                         ax: np.ndarray | None = None) -> np.ndarray:
    """Loss, gradient norm and overflow rate of failed runs, aligned on the steps before
    collapse (0 = collapse step). Three panels; ``ax`` is an array of three axes or None."""
    if ax is None:
        fig = new_figure(figsize=(9.0, 2.7), layout="constrained")
        ax = np.asarray(fig.subplots(1, 3))
    panels = (("loss", False), ("grad_norm", True), ("quantization/overflow_rate", False))
    failed = [(t, plain(labels[i] if labels else t.run_id)) for i, t in enumerate(traces)
              if t.collapse_step is not None]
    for a, (metric, log) in zip(ax, panels):
        drawn = False
        for t, label in failed:
            s, v = t.forensics.get(metric, (np.array([]), np.array([])))
            ok = np.isfinite(v) & ((v > 0) if log else True)
            if ok.any():
                a.plot(s[ok], v[ok], lw=1.0, label=label)
                drawn = True
        if not drawn:
            no_data(a, "no failed run logged " + metric.removeprefix("quantization/"))
            continue
        if log:
            a.set_yscale("log")
        a.axvline(0, color="crimson", lw=0.8, ls=":")
        a.set_xlabel("steps before collapse")
        a.set_ylabel(metric.removeprefix("quantization/"))
    if failed and len(failed) <= MAX_LEGEND and ax[0].get_legend_handles_labels()[0]:
        ax[0].legend(fontsize=6, frameon=False)
    elif failed:
        ax[0].set_title(f"{len(failed)} failed runs", fontsize=9)
    return ax
