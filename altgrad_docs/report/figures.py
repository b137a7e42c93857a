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

from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when the site starts
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from altgrad_docs.analysis.curves import Trace, iter_condition, median_curve, survival
from altgrad_docs.analysis.scorecard import MANIFOLD, STANDARD, sorted_formats
from altgrad_docs.formats import FORMATS

from .figure_style import (BASELINE_COLOR, BASELINE_STYLE, FORMAT_DASHES, FORMAT_PALETTE, OPTIMIZER_COLORS,
                           axes_legend, figure_legend, format_colors, optimizer_style, plain_log_ticks, stall_rule)

#: Above this many runs in one panel the thin per-run lines are rasterised (the medians,
#: axes and text stay vector).
RASTER_ABOVE = 20
#: Lowest bit-stall rate the log axis shows.
STALL_FLOOR = 1e-4
#: Overflow/underflow rates at or below this are drawn on it (the axis is log, no negatives).
FLOW_FLOOR = 1e-5
#: The loss-at-the-end figure shows this last fraction of training.
END_FRACTION = 0.25
#: Crash forensics names the runs in a legend up to this many.
MAX_LEGEND = 10


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
    """The legend of one panel, outside its data; :func:`panel_grid` merges the panels'
    legends into one per figure."""
    axes_legend(ax, **kw)


def plain(text: object) -> str:
    """User text as a matplotlib label: one line, no mathtext ($ escaped)."""
    return " ".join(str(text).split()).replace("$", r"\$")


def panel_grid(names: Sequence, draw: Callable[[object, Axes], object], ncols: int = 4,
               panel_size: tuple[float, float] = (3.4, 2.6)) -> Figure:
    """A Figure with one panel per name, drawn by ``draw(name, ax)`` ("no data" when none),
    and one legend for the figure, below the panels."""
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
    figure_legend(fig)
    return fig


def _draw_condition(ax: Axes, traces: list[Trace], metric: str, color, label: str, mark_collapse: bool,
                    positive_only: bool = False, ls: str = "-") -> tuple[int, bool]:
    """Every run thin (its MinMaxLTTB curve: spikes stay), the median bold (of the evenly
    strided curves: a median of envelope points would lean to the extremes); an x at each
    run's collapse. Returns how many runs were drawn (0: nothing) and whether any collapsed."""
    curves, collapsed, bundle = [], False, []
    many = len(traces) > RASTER_ABOVE  # vector files stay small and quick with hundreds of seeds
    for t in traces:
        s, v = _shown(t.plot_curve(metric), positive_only)
        if len(s):
            if many:  # one raster collection, not hundreds of Line2D (each with its own copies)
                bundle.append(np.column_stack([s, v]))
            else:
                ax.plot(s, v, color=color, lw=0.6, alpha=0.35, ls=ls, zorder=1.5)
            curves.append(_shown(t.curve(metric), positive_only))
        if mark_collapse and t.collapse_step is not None and len(s):
            ax.plot([t.collapse_step], [v[-1]], marker="x", color=color, ms=7, mew=1.8, ls="none", zorder=3,
                    label="x = loss became NaN/Inf")
            collapsed = True
    if bundle:  # below medians and marks, so the rasterised lines form one image
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(bundle, colors=[color], linewidths=0.6, alpha=0.35, linestyles=ls,
                                         rasterized=True, zorder=1.5), autolim=True)
    if not curves:
        return 0, collapsed
    grid, med = median_curve(curves)
    ax.plot(grid, med, color=color, lw=2.0, ls=ls, label=plain(label), zorder=2.5)
    return len(curves), collapsed


def _lowest(ax: Axes) -> Iterator[float]:
    """The smallest y of each line and of each line of a collection (many runs) drawn."""
    for line in ax.lines:
        if len(line.get_ydata()):
            yield float(np.min(line.get_ydata()))
    for collection in ax.collections:
        for segment in getattr(collection, "get_segments", lambda: [])():
            if len(segment):
                yield float(segment[:, 1].min())


def _shown(curve: tuple[np.ndarray, np.ndarray], positive_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve a (log) axis can show: finite, and > 0 with ``positive_only``."""
    s, v = curve
    ok = np.isfinite(v) & ((v > 0) if positive_only else True)
    return s[ok], v[ok]


def _draw_optimizers(ax: Axes, traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, metric: str,
                     positive_only: bool = False) -> dict[str, int]:
    """Both optimizers of one format (colour and line style per optimizer): runs drawn each."""
    counts = {}
    for opt in (STANDARD, MANIFOLD):
        color, ls = optimizer_style(opt)
        counts[opt] = _draw_condition(ax, list(iter_condition(traces, runs, fmt, opt)), metric, color, opt,
                                      mark_collapse=True, positive_only=positive_only, ls=ls)[0]
    return counts


def _counted_title(ax: Axes, fmt: str, counts: dict[str, int], extra: Sequence[str] = ()) -> None:
    """The panel title: the format, the runs per optimizer (n), and any extra lines."""
    n = ", ".join(f"{opt} n = {k}" for opt, k in counts.items() if k)
    ax.set_title("\n".join([plain(fmt), n, *extra]), fontsize=8)


#: Trace metrics in nats (cross-entropy); any other primary metric is drawn without a unit.
NATS = ("loss", "val_loss")


def plot_loss_curves(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, metric: str = "loss",
                     baseline: str | None = "BF16", ax: Axes | None = None) -> Axes:
    """Loss of one format over steps on a log axis (the formats differ by a few hundredths of
    a nat near the end, invisible on a linear axis from the initial loss): both optimizers,
    every seed thin, median bold, the baseline format's median grey and dashed, an x where a
    run's loss became NaN/Inf."""
    ax = new_axes(ax)
    counts = _draw_optimizers(ax, traces, runs, fmt, metric, positive_only=True)
    if not any(counts.values()):
        return no_data(ax, f"no {metric} logged for {fmt}", title=fmt)
    if baseline and baseline != fmt:
        _draw_condition(ax, list(iter_condition(traces, runs, baseline)), metric, BASELINE_COLOR,
                        f"{baseline} baseline", mark_collapse=False, positive_only=True, ls=BASELINE_STYLE)
    ax.set_yscale("log")
    plain_log_ticks(ax)
    _counted_title(ax, fmt, counts)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{metric} ({'nats, ' if metric in NATS else ''}log)")
    legend(ax)
    return ax


def _tail(s: np.ndarray, v: np.ndarray, start: float) -> tuple[np.ndarray, np.ndarray]:
    keep = (s >= start) & np.isfinite(v)
    return s[keep], v[keep]


def plot_loss_end(traces: dict[str, Trace], runs: pd.DataFrame, optimizer: str, formats: Sequence[str],
                  metric: str = "loss", fraction: float = END_FRACTION, ax: Axes | None = None) -> Axes:
    """The last ``fraction`` of training for one optimizer: the median of every format on one
    linear axis, where the formats differ (the full curves start an order of magnitude higher).
    Each format keeps its colour across panels; baselines are grey and dashed."""
    ax = new_axes(ax)
    last = max((t.last_step for t in traces.values() if t.last_step is not None), default=None)
    if last is None:
        return no_data(ax, f"no {metric} logged", title=optimizer)
    start = (1 - fraction) * last
    colors = format_colors(formats)
    drawn = False
    for i, fmt in enumerate(formats):
        curves = [_tail(*t.curve(metric), start) for t in iter_condition(traces, runs, fmt, optimizer)]
        curves = [c for c in curves if len(c[0])]
        if not curves:
            continue
        grid, med = median_curve(curves)
        ls = FORMAT_DASHES[i % len(FORMAT_DASHES)] if fmt in FORMATS else BASELINE_STYLE
        ax.plot(grid, med, color=colors[fmt], lw=1.5, ls=ls, label=plain(fmt))
        drawn = True
    if not drawn:
        return no_data(ax, f"no {metric} logged for {optimizer} after step {start:.0f}", title=optimizer)
    ax.set_title(plain(f"{optimizer}: last {100 * fraction:.0f}% of steps"), fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{metric} (nats)" if metric in NATS else metric)
    legend(ax)
    return ax


def plot_stall(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, threshold: float | None = None,
               ax: Axes | None = None) -> Axes:
    """Bit-stall rate of one format over steps (log y) per optimizer, with the alert threshold
    as a line, and in the title the update sizes round-to-nearest loses: relative to |w| in
    the normal range, absolute below the smallest normal (``figure_style.stall_rule``)."""
    ax = new_axes(ax)
    metric = "quantization/bit_stall_rate"
    counts = _draw_optimizers(ax, traces, runs, fmt, metric, positive_only=True)
    if not any(counts.values()):
        return no_data(ax, f"no bit-stall rate logged for {fmt}", title=fmt)
    ax.set_yscale("log")
    if threshold is None:
        sel = runs.loc[(runs["format"].astype("string") == fmt).fillna(False).to_numpy(), "bit_stall_threshold"]
        vals = pd.to_numeric(sel, errors="coerce").dropna()
        threshold = float(vals.median()) if len(vals) else 0.5
    low = min(_lowest(ax), default=STALL_FLOOR)
    # the data and the threshold in view, a few decades at most: rates below the floor are noise
    ax.set_ylim(max(STALL_FLOOR, 0.8 * min(low, threshold)), 1.1)
    plain_log_ticks(ax)
    ax.axhline(threshold, color="#CC79A7", lw=0.9, ls=":", label=f"alert threshold {threshold:g}")
    _counted_title(ax, fmt, counts, stall_rule(fmt))
    ax.set_xlabel("step")
    ax.set_ylabel("bit-stall rate")
    legend(ax)
    return ax


def plot_over_under_flow(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, ax: Axes | None = None) -> Axes:
    """Overflow (solid) and underflow (dotted) rate of one format over steps, per optimizer
    (colour), on a log axis from ``FLOW_FLOOR`` to 1: a rate of 0 (or below the floor) is
    drawn on the floor, so no tick is negative and zero is visibly "none"."""
    ax = new_axes(ax)
    drawn = False
    for opt in (STANDARD, MANIFOLD):
        for metric, style in (("quantization/overflow_rate", "-"), ("quantization/underflow_rate", ":")):
            curves = [t.curve(metric) for t in iter_condition(traces, runs, fmt, opt)]
            curves = [(s[np.isfinite(v)], v[np.isfinite(v)]) for s, v in curves if np.isfinite(v).any()]
            if curves:
                grid, med = median_curve(curves)
                kind = metric.split("/")[1].split("_")[0]
                ax.plot(grid, np.maximum(med, FLOW_FLOOR), color=OPTIMIZER_COLORS[opt], ls=style, lw=1.6,
                        label=f"{kind}, {opt}")
                drawn = True
    if not drawn:
        return no_data(ax, f"no overflow or underflow rate logged for {fmt}", title=fmt)
    ax.set_yscale("log")
    ax.set_ylim(FLOW_FLOOR / 1.5, 1.5)
    plain_log_ticks(ax)
    ax.set_title(plain(fmt), fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel(f"fraction of values\n(≤ {FLOW_FLOOR:g} drawn at the floor)", fontsize=8)
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
    colors = format_colors(formats)
    drawn = False
    stopped = _stopped_runs(runs)
    for i, fmt in enumerate(formats):
        ts = list(iter_condition(traces, runs, fmt))
        events = [t.collapse_step if t.collapse_step is not None or t.run_id not in stopped
                  else t.last_step for t in ts]
        x, y = survival(events, [t.last_step for t in ts])
        if len(x):  # curves often coincide at 1.0: tell them apart by dash too
            ax.step(x, y, where="post", color=colors[fmt], lw=1.5, ls=FORMAT_DASHES[i % len(FORMAT_DASHES)],
                    label=f"{plain(fmt)} (n = {len(ts)})")
            drawn = True
    if not drawn:
        return no_data(ax, "no run histories")
    ax.set_ylim(-0.03, 1.03)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of runs not failed")
    legend(ax)
    return ax


def _stopped_runs(runs: pd.DataFrame) -> set[str]:
    """Run ids whose state is failed or crashed (``status`` of the run table)."""
    if "status" not in runs:
        return set()
    status = runs["status"].astype("string").fillna("")
    return set(runs.loc[status.isin(["failed", "crashed"]).to_numpy(), "run_id"].astype(str))


def plot_crash_forensics(traces: Sequence[Trace], labels: Sequence[str] | None = None,
                         ax: np.ndarray | None = None, groups: Sequence[str] | None = None) -> np.ndarray:
    """Loss, gradient norm and overflow rate of failed runs, aligned on the steps before
    they failed (0 = the first non-finite loss, or the last step of a run the trainer stopped
    as failed: divergence, stagnation). Three panels; ``ax`` is an array of three axes or None.
    With ``groups`` (e.g. each run's format) and more runs than a legend can name, runs are
    coloured and named by group."""
    if ax is None:
        fig = new_figure(figsize=(9.0, 2.7), layout="constrained")
        ax = np.asarray(fig.subplots(1, 3))
    panels = (("loss", False), ("grad_norm", True), ("quantization/overflow_rate", False))
    by_group = groups is not None and len(traces) > MAX_LEGEND
    names = [plain(labels[i] if labels else t.run_id) for i, t in enumerate(traces)]
    if by_group:
        colours = format_colors(sorted_formats(groups))
        styles = [dict(color=colours[str(g)], alpha=0.6) for g in groups]
        names = [plain(g) for g in groups]
    else:
        styles = [dict(color=FORMAT_PALETTE[i % len(FORMAT_PALETTE)]) for i in range(len(traces))]
    for a, (metric, log) in zip(ax, panels):
        drawn, named = False, set()
        for t, name, style in zip(traces, names, styles):
            s, v = t.forensics.get(metric, (np.array([]), np.array([])))
            ok = np.isfinite(v) & ((v > 0) if log else True)
            if ok.any():
                a.plot(s[ok], v[ok], lw=1.0, label=None if name in named else name, **style)
                named.add(name)
                drawn = True
        if not drawn:
            no_data(a, "no failed run logged " + metric.removeprefix("quantization/"))
            continue
        if log:
            a.set_yscale("log")
            plain_log_ticks(a)  # plain numbers like the other log axes (mathtext is slow to lay out)
        a.axvline(0, color="crimson", lw=0.8, ls=":")
        a.set_xlabel("steps before failure")
        a.set_ylabel(metric.removeprefix("quantization/"))
    if traces and (by_group or len(traces) <= MAX_LEGEND) and ax[0].get_legend_handles_labels()[0]:
        figure_legend(ax[0].figure, ncols=5)
    if traces and len(traces) > MAX_LEGEND:
        ax[0].set_title(f"{len(traces)} failed runs", fontsize=9)
    return ax
