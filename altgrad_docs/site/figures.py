"""The one figure only the site draws: a single run's history, for its run page.

Comparisons across runs (loss curves per format, forest plots, survival, number lines...)
are drawn by :mod:`altgrad_docs.report.figures`; this module only shows one run alone.
Long histories are thinned for drawing by keeping, per bucket of steps, the points with the
smallest and the largest value (so a spike or a collapse is never smoothed away); the
caption says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis.curves import collapse_step, metric_column
from ..report.figures import new_figure
from ..runs import METRIC_ALIASES

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: At most this many buckets per series; each keeps its min and max point.
MAX_BUCKETS = 400
LOSS_KEYS = ("loss", "val_loss")
RATE_KEYS = ("quantization/bit_stall_rate", "quantization/overflow_rate", "quantization/underflow_rate")
#: Columns read from a history: the metrics above plus their old unprefixed names.
HISTORY_KEYS = LOSS_KEYS + ("grad_norm",) + tuple(n for k in RATE_KEYS for n in METRIC_ALIASES[k])


def thin(steps: np.ndarray, values: np.ndarray, buckets: int = MAX_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Keep the min and max finite point of each of ``buckets`` step buckets, in step order."""
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(values) <= 2 * buckets:
        return steps, values
    edges = np.linspace(0, len(values), buckets + 1).astype(int)
    picked = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        chunk = values[lo:hi]
        picked += [lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))]
    idx = np.unique(picked)
    return steps[idx], values[idx]


def _column(history: pd.DataFrame, key: str) -> np.ndarray | None:
    return history[key].to_numpy(dtype=float) if key in history else None


def _plot_keys(ax: Axes, history: pd.DataFrame, keys: tuple[str, ...], log: bool) -> bool:
    steps = history["_step"].to_numpy()
    drawn = False
    for key in keys:
        values = metric_column(history, key)  # reads old unprefixed names too
        if values is None:
            continue
        x, y = thin(steps, values)
        if log:
            x, y = x[y > 0], y[y > 0]
        if len(y):
            ax.plot(x, y, lw=1.0, label=key.removeprefix("quantization/"))
            drawn = True
    if log and drawn:
        ax.set_yscale("log")
    return drawn


def plot_run_history(history: pd.DataFrame, ax: np.ndarray | None = None) -> np.ndarray:
    """Loss, gradient norm and quantisation rates (log y) of one run over steps (three panels).

    An ``x`` marks the collapse step (``analysis.curves.collapse_step``). Returns the axes.
    """
    if ax is None:
        fig = new_figure(figsize=(9.0, 2.8))  # fixed margins: constrained layout costs ~1 s a figure
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.17, top=0.96, wspace=0.32)
        ax = np.asarray(fig.subplots(1, 3))
    panels = ((LOSS_KEYS, False, "loss (nats)"), (("grad_norm",), False, "gradient norm"),
              (RATE_KEYS, True, "rate"))
    collapse = collapse_step(history["_step"].to_numpy(), _column(history, "loss"), _column(history, "val_loss"))
    for a, (keys, log, label) in zip(ax, panels):
        if not _plot_keys(a, history, keys, log):
            a.text(0.5, 0.5, "not logged", ha="center", va="center", transform=a.transAxes)
        a.set_xlabel("step")
        a.set_ylabel(label)
        if collapse is not None:
            a.axvline(collapse, color="0.5", lw=0.8, ls=":")
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7, frameon=False)
    if collapse is not None:
        finite = history["loss"].to_numpy(dtype=float)
        last = finite[np.isfinite(finite)][-1]
        ax[0].plot([collapse], [last], marker="x", color="crimson", ms=8, mew=2, label="NaN/Inf")
        ax[0].legend(fontsize=7, frameon=False)
    return ax
