"""Summary figures: forest plot of paired deltas, final loss vs mantissa bits, per-layer-type
stall heatmap, and the format number lines. Same conventions as :mod:`.figures`
(``ax=None``, return the axes, "no data: <why>" instead of an empty frame)."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from altgrad_docs.analysis.comparisons import LAYER_TYPES
from altgrad_docs.analysis.scorecard import MANIFOLD, STANDARD, format_sort_key
from altgrad_docs.formats import BASELINES, FORMATS

from .figure_style import (BASELINE_STYLE, MAX_FIGURE_WIDTH, axes_legend, figure_legend, format_colors,
                           optimizer_style)
from .markdown import fmt_fixed
from .figures import (BASELINE_COLOR, FORENSICS, OPTIMIZER_COLORS, forensics_axes, new_axes, new_figure,
                      no_data, plain)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_forest(comparison: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Paired delta (ManifoldAdamW - AdamW) per format: per-seed dots, mean, 95% t interval.

    ``comparison`` is ``analysis.scorecard.manifold_comparison(df)``. Left of 0 = the
    manifold-aware optimizer reached the lower loss."""
    ax = new_axes(ax, (5.0, 0.5 + 0.45 * max(1, len(comparison))))
    if len(comparison):
        unpaired = (comparison["design"] == "unpaired") if "design" in comparison else False
        rows = comparison[(comparison["n_pairs"] > 0) | (unpaired & np.isfinite(comparison["mean_delta"]))]
    else:
        rows = comparison
    if rows.empty:
        return no_data(ax, "no format has finished runs of both optimizers")
    for y, (_, r) in enumerate(rows.iloc[::-1].iterrows()):
        deltas = np.asarray(r["deltas"], dtype=float)
        deltas = deltas[np.isfinite(deltas)]
        ax.plot(deltas, np.full(len(deltas), y), "o", ms=4.5, mfc="white", mec="0.3", mew=0.9,
                zorder=5)  # every seed on top of its interval
        if np.isfinite(r["ci_low"]):
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color="black", lw=1.6, zorder=3)
        paired = r.get("design", "paired") == "paired"
        ax.plot([r["mean_delta"]], [y], "D", ms=6, zorder=4, color=OPTIMIZER_COLORS[MANIFOLD],
                markerfacecolor=OPTIMIZER_COLORS[MANIFOLD] if paired else "white")
        label = f"n = {int(r['n_pairs'])}" if paired else f"{r['n_manifold']} vs {r['n_adamw']} (Welch)"
        ax.annotate(label, (1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.axvline(0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [plain(f) for f in rows["format"]][::-1])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    metric = str(rows["metric"].iloc[0]) if "metric" in rows else "final loss"
    ax.set_xlabel(f"Δ {metric.replace('_', ' ')} (nats)\nManifold − AdamW; < 0: Manifold better")
    return ax


def _band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median, min and max over runs at each step before failure (a run counts only at the
    steps it logged, where its value is finite)."""
    grid = np.unique(np.concatenate([s for s, _ in curves]))
    stack = np.full((len(curves), len(grid)), np.nan)
    for i, (s, v) in enumerate(curves):
        stack[i, np.searchsorted(grid, s)] = v
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step no run logged: NaN, said once
        return grid, np.nanmedian(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def plot_crash_summary(traces, groups, ax: np.ndarray | None = None) -> np.ndarray:
    """Crash forensics per format: loss, gradient norm and overflow rate over the steps before
    failure (0 = the first non-finite loss, or the step the trainer stopped the run), the
    median of the format's failed runs bold and their range shaded. ``traces``: the failed
    runs' :class:`~altgrad_docs.analysis.curves.Trace`; ``groups``: each one's format."""
    from altgrad_docs.analysis.scorecard import sorted_formats

    if ax is None:
        ax = np.asarray(new_figure(figsize=(MAX_FIGURE_WIDTH, 2.9), layout="constrained").subplots(1, 3))
    formats = sorted_formats(set(map(str, groups)))
    colours = format_colors(formats)
    for a, (metric, log) in zip(ax, FORENSICS):
        drawn = False
        for fmt in formats:
            curves = []
            for t, g in zip(traces, groups):
                s, v = t.forensics.get(metric, (np.array([]), np.array([])))
                ok = np.isfinite(v) & ((v > 0) if log else True)
                if str(g) == fmt and ok.any():
                    curves.append((np.asarray(s)[ok], np.asarray(v)[ok]))
            if not curves:
                continue
            grid, med, lo, hi = _band(curves)
            a.fill_between(grid, lo, hi, color=colours[fmt], alpha=0.18, lw=0)
            a.plot(grid, med, color=colours[fmt], lw=1.6, label=plain(f"{fmt} (n = {len(curves)})"))
            drawn = True
        forensics_axes(a, metric, log, drawn)
    if any(a.get_legend_handles_labels()[0] for a in ax):
        figure_legend(ax[0].figure, ncols=4)
    return ax


def _seed_values(runs: pd.DataFrame | None, run_ids, metric: str) -> np.ndarray:
    """The finite final metric of the given runs (one value per seed)."""
    if runs is None or metric not in runs or not isinstance(run_ids, (list, tuple, np.ndarray)):
        return np.array([])
    values = pd.to_numeric(runs.loc[runs["run_id"].astype(str).isin([str(r) for r in run_ids]), metric],
                           errors="coerce").to_numpy(float)
    return values[np.isfinite(values)]


def plot_loss_vs_mantissa(card: pd.DataFrame, ax: Axes | None = None, runs: pd.DataFrame | None = None) -> Axes:
    """Median final loss [min, max] vs mantissa bits M, one line per optimizer (colour and
    line style), every seed as a dot when ``runs`` (the run table) is given, baselines as
    horizontal lines, and "k/n failed" under each point with a failure.
    ``card`` = ``scorecard(df)``."""
    ax = new_axes(ax, (5.5, 3.4))
    fp8 = card[card["format"].isin(list(FORMATS))] if len(card) else card
    if fp8.empty:
        return no_data(ax, "no 8-bit format runs")
    offsets = {STANDARD: -0.1, MANIFOLD: 0.1}
    medians = fp8["median"].to_numpy(float)
    fallback_y = float(np.nanmax(medians)) if np.isfinite(medians).any() else 0.0  # all-crashed points
    drawn = False
    for opt, grp in fp8.groupby("optimizer", sort=True):
        grp = grp.assign(M=[FORMATS[f].man_bits for f in grp["format"]]).sort_values("M")
        x = grp["M"].to_numpy(float) + offsets.get(str(opt), 0.0)
        med = grp["median"].to_numpy(float)
        lo, hi = med - grp["min"].to_numpy(float), grp["max"].to_numpy(float) - med
        color, ls = optimizer_style(str(opt))
        ok = np.isfinite(med)
        if ok.any():
            ax.errorbar(x[ok], med[ok], yerr=[lo[ok], hi[ok]], color=color, marker="o", ms=4, lw=1.2, ls=ls,
                        capsize=2, label=plain(f"{opt} (median, min-max)"))
            drawn = True
        for xi, ids in zip(x, grp["run_ids"] if "run_ids" in grp else [None] * len(grp)):
            seeds = _seed_values(runs, ids, str(grp["metric"].iloc[0]) if "metric" in grp else "final_loss")
            if len(seeds):
                ax.plot(np.full(len(seeds), xi + 1.5 * offsets.get(str(opt), 0.0)), seeds, "o", ms=3.5, mfc="none",
                        mec=color, mew=0.8, ls="none", zorder=3, label=plain(f"{opt}, one seed"))
        for xi, m, k, n in zip(x, med, grp["crashes"], grp["n"]):
            if k:
                y = m if np.isfinite(m) else fallback_y
                ax.annotate(f"{k}/{n} failed", (xi, y), xytext=(0, -11), textcoords="offset points",
                            ha="center", fontsize=7, color=color)
    for b in BASELINES:
        base = card[card["format"] == b]
        vals = base["median"].to_numpy(float) if len(base) else np.array([])
        if np.isfinite(vals).any():
            ax.axhline(float(np.nanmedian(vals)), color=BASELINE_COLOR, ls=BASELINE_STYLE, lw=1, label=f"{b} (median)")
    if not drawn:
        return no_data(ax, "every 8-bit run crashed or has no final loss")
    ax.set_xticks(range(8), [f"{m}\n{f}" for f, m in sorted(((f, FORMATS[f].man_bits) for f in FORMATS),
                                                           key=lambda fm: fm[1])], fontsize=7)
    ax.set_xlabel("mantissa bits M (format)")
    ax.set_ylabel(f"final {str(fp8['metric'].iloc[0]).removeprefix('final_')}")
    axes_legend(ax)
    return ax


def plot_layer_heatmap(layer_df: pd.DataFrame, difference: bool = False, ax: Axes | None = None) -> Axes:
    """Mean stall per layer type (columns) and format x optimizer (rows); with
    ``difference=True`` one row per format: ManifoldAdamW minus AdamW. ``layer_df`` is
    ``analysis.comparisons.layer_stall_frame(traces, runs)``."""
    ax = new_axes(ax, (5.0, 3.2))
    if layer_df.empty:
        return no_data(ax, "no per-layer stall/<param> metrics were logged")
    table = layer_df.groupby(["format", "optimizer", "layer_type"])["stall"].mean().unstack("layer_type")
    cols = [c for c in LAYER_TYPES if c in table.columns]
    table = table[cols]
    if difference:
        wide = table.unstack("optimizer")
        if MANIFOLD not in wide.columns.get_level_values(1) or STANDARD not in wide.columns.get_level_values(1):
            return no_data(ax, "per-layer stall was not logged for both optimizers of any format")
        table = (wide.xs(MANIFOLD, axis=1, level=1) - wide.xs(STANDARD, axis=1, level=1)).dropna(how="all")
        if table.empty:
            return no_data(ax, "no format has per-layer stall for both optimizers")
        labels = list(table.index)
        order = sorted(range(len(labels)), key=lambda i: format_sort_key(labels[i]))
        lim = max(1e-9, float(np.nanmax(np.abs(table.to_numpy()))))
        cmap, vmin, vmax, cbar = "RdBu_r", -lim, lim, "Δ stall (Manifold − AdamW)"
    else:
        labels = [f"{f} · {o}" for f, o in table.index]
        order = sorted(range(len(labels)), key=lambda i: (format_sort_key(table.index[i][0]), table.index[i][1]))
        cmap, vmin, vmax, cbar = "viridis", 0.0, 1.0, "mean stall ratio"
    data = table.to_numpy(float)[order]
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(data):
        if math.isfinite(v):
            ax.text(j, i, fmt_fixed(v, 2), ha="center", va="center", fontsize=7,
                    color="white" if not difference and v < 0.5 else "black")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(order)), [plain(labels[i]) for i in order], fontsize=8)
    ax.figure.colorbar(image, ax=ax, label=cbar, shrink=0.8)
    return ax


def plot_number_lines(formats: list[str] | None = None, ax: Axes | None = None) -> Axes:
    """Every positive finite value of each format on a log2 axis (one row per format), the
    smallest normal marked; the spacing of the ticks is the format's precision."""
    names = formats or list(FORMATS)
    ax = new_axes(ax, (7.0, 0.6 + 0.38 * len(names)))
    for y, name in enumerate(reversed(names)):
        f = FORMATS[name]
        vals = f.all_values[:128]
        vals = np.unique(vals[np.isfinite(vals) & (vals > 0)])
        ax.vlines(np.log2(vals), y - 0.3, y + 0.3, color="0.2", lw=0.4)
        if f.min_normal is not None:
            ax.plot([math.log2(f.min_normal)], [y + 0.38], "v", ms=4, color=OPTIMIZER_COLORS[MANIFOLD])
        ax.annotate(f"max {f.max_value:.4g}", (math.log2(f.max_value), y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), list(reversed(names)), fontsize=8)
    ax.set_xlabel("log2 of the positive values (▼ = smallest normal)")
    ax.set_ylim(-0.6, len(names) - 0.2)
    return ax
