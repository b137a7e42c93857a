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


#: Beyond this magnitude matplotlib's axis margins and log ticks overflow to inf (a
#: grad norm of 1e308 is finite but cannot be drawn): such points are left out.
PLOT_LIMIT = 1e300


def drawable(values: np.ndarray) -> np.ndarray:
    """Which values can be drawn: finite and at most PLOT_LIMIT in magnitude."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) <= PLOT_LIMIT)


def thin(steps: np.ndarray, values: np.ndarray, buckets: int = MAX_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Keep the min and max drawable point of each of ``buckets`` step buckets, in step order."""
    keep = drawable(values)
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


def _plot_keys(ax: Axes, history: pd.DataFrame, keys: tuple[str, ...], log: bool) -> str | None:
    """Draw the keys' finite points; None when drawn, else why not ("not logged", ...)."""
    steps = history["_step"].to_numpy()
    drawn, logged = False, False
    for key in keys:
        values = metric_column(history, key)  # reads old unprefixed names too
        if values is None:
            continue
        logged = True
        x, y = thin(steps, values)
        if log:
            x, y = x[y > 0], y[y > 0]
        if len(y):
            ax.plot(x, y, lw=1.0, label=key.removeprefix("quantization/"))
            drawn = True
    if log and drawn:
        ax.set_yscale("log")
    if drawn:
        return None
    return ("no positive finite value" if log else "no finite value") if logged else "not logged"


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
        missing = _plot_keys(a, history, keys, log)
        if missing:
            a.text(0.5, 0.5, missing, ha="center", va="center", transform=a.transAxes)
        a.set_xlabel("step")
        a.set_ylabel(label)
        if collapse is not None:
            a.axvline(collapse, color="0.5", lw=0.8, ls=":")
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7, frameon=False)
    if collapse is not None:
        _mark_collapse(ax[0], collapse, _column(history, "loss"))
    return ax


def _mark_collapse(ax: Axes, collapse: int, loss: np.ndarray) -> None:
    """An ``x`` at the collapse step, at the last finite loss; half-way up the panel when
    the loss was never finite (the run diverged at its first step)."""
    finite = loss[drawable(loss)]
    if len(finite):
        ax.plot([collapse], [finite[-1]], marker="x", color="crimson", ms=8, mew=2, label="NaN/Inf")
    else:
        ax.plot([collapse], [0.5], marker="x", color="crimson", ms=8, mew=2, label="NaN/Inf",
                transform=ax.get_xaxis_transform())
    ax.legend(fontsize=7, frameon=False)
