"""Per-run traces from history frames, consumed one run at a time.

A site may hold 1,000 runs x 10,000 steps; no figure needs all of it. :func:`collect_traces`
reads an iterable of ``(run_id, history)`` (e.g. ``Snapshot.iter_histories(keys)``) and
keeps, per run, a :class:`Trace`: each metric downsampled to at most ``max_points`` evenly
strided points (what the statistics read: the failure classification's moving average and
means, the figures' medians on a common grid, all assume even sampling), the curves a figure
draws run by run downsampled for drawing (MinMaxLTTB to ``PLOT_POINTS``: every extreme kept, so
a spike survives), the collapse step (first non-finite loss), the window of steps before it
(for crash forensics) and per-layer stall means. Memory is O(runs x metrics x max_points).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from altgrad_docs.runs import METRIC_ALIASES

from .layers import layer_families
from .loss_replay import FiniteLoss, finite_loss
from .metrics import RATES, MetricMap
from .rates import looks_cumulative

#: Metrics a trace keeps (canonical names; old unprefixed names are read as aliases).
TRACE_METRICS = (
    "loss",
    "val_loss",
    "grad_norm",
    "quantization/bit_stall_rate",
    "quantization/overflow_rate",
    "quantization/underflow_rate",
)
#: History keys to read for collect_traces (prefixed and old unprefixed rate names).
SITE_TRACE_KEYS = tuple(dict.fromkeys(
    name for metric in TRACE_METRICS for name in METRIC_ALIASES.get(metric, (metric,))))
#: Metrics the figures draw as one line per run (the others only as medians over runs).
PLOT_METRICS = ("loss", "val_loss", "quantization/bit_stall_rate")
#: Points per drawn curve: two per pixel column of a report panel (3.4 in wide at the site's
#: 150 dpi: 510 columns; the axes inside are narrower), so MinMaxLTTB's envelope is the
#: drawn one. tests/test_plot_downsampling.py checks the panel and the picture.
PLOT_POINTS = 1020
FORENSIC_METRICS = ("loss", "grad_norm", "quantization/overflow_rate", "quantization/bit_stall_rate",
                    "quantization/underflow_rate")
#: History columns left out of the history hash: wall-clock speed differs between identical runs.
UNHASHED = ("throughput_tokens_sec", "step_time_ms")


@dataclass
class Trace:
    """What the figures need from one run's history."""

    run_id: str
    last_step: int | None
    collapse_step: int | None  # first step whose loss is NaN or +/-Inf
    collapse_value: float = math.nan  # the loss logged there (NaN, inf or -inf)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    forensics: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    layer_stall: dict[str, float] = field(default_factory=dict)  # layer type -> mean stall
    #: per-layer family (grad_norm_l2, stall, ...) -> layer type -> mean over training (layers.py)
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    #: rate -> whether its logged values read as a running mean since step 0 (metrics.looks_cumulative)
    cumulative: dict[str, bool | None] = field(default_factory=dict)
    history_hash: str = ""  # sha256 of the logged values (identical conditions share it)
    at_budget: dict[str, float] = field(default_factory=dict)  # metric -> last logged value within a step budget
    #: PLOT_METRICS for drawing when the strided curve left rows out: finite points only,
    #: MinMaxLTTB, int32 steps and float32 values (a drawing worker holds every trace; float32
    #: is far finer than a pixel)
    plot: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: What the failure classification reads, from every logged row (not the strided curves):
    #: the largest logged value per metric, and the finite loss curve's summary
    #: (``loss_replay.finite_loss``; None: fewer than 2 finite losses). ``summarised`` is False
    #: for a Trace built by hand from curves only; the classification then reads the curves.
    peaks: dict[str, float] = field(default_factory=dict)
    finite: FiniteLoss | None = None
    summarised: bool = False

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The evenly strided curve (statistics, medians)."""
        empty = np.array([], dtype=np.float64)
        return self.curves.get(metric, (empty, empty))

    def plot_curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The curve to draw as a line: the MinMaxLTTB one, else (a history of at most
        ``max_points`` rows, or a Trace built by hand) the strided one, which is then every row."""
        return self.plot[metric] if metric in self.plot else self.curve(metric)


def _floats(column: pd.Series) -> np.ndarray:
    """A column as float64 (free for the float64 columns of a tidy history)."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def metric_column(history: pd.DataFrame, metric: str,
                  aliases: dict[str, tuple[str, ...]] | None = None) -> np.ndarray | None:
    """The values of a metric, reading its other names (``aliases``: the metric map's, else
    the old unprefixed names after the prefixed one) in order.

    None only when no name of the metric is a column: a column logged but never finite
    (a loss NaN from step 0) is returned as it is, so that the run counts as collapsed."""
    found = None
    for name in (aliases or {}).get(metric) or METRIC_ALIASES.get(metric, (metric,)):
        if name in history:
            values = _floats(history[name])
            if not np.isnan(values).all():
                return values
            found = values if found is None else found
    return found


def downsample_index(n: int, max_points: int) -> np.ndarray:
    """Indices of at most max_points evenly spread rows, always keeping the first and last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def plot_points(steps: np.ndarray, values: np.ndarray, n_out: int = PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The finite points of a curve to draw, at most ``n_out`` (MinMaxLTTB from tsdownsample:
    each bucket's minimum and maximum are candidates, so spikes and dips stay), as int32 steps
    and float32 values (wider types only where those would not hold them)."""
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(values) > n_out:
        from tsdownsample import MinMaxLTTBDownsampler

        idx = MinMaxLTTBDownsampler().downsample(steps.astype(np.float64), values, n_out=n_out)
        steps, values = steps[idx], values[idx]
    return _compact(steps, np.int32), _compact(values, np.float32)


def _compact(a: np.ndarray, small: type) -> np.ndarray:
    """``a`` as ``small`` when that holds every value (a float32 keeps 7 digits, far finer
    than a pixel; but not 1e39, nor a rate of 1e-40 on a log axis), else as it is."""
    if not len(a):
        return a.astype(small)
    info = np.iinfo(small) if np.issubdtype(small, np.integer) else np.finfo(small)
    big = np.abs(a).max() > info.max
    tiny = np.issubdtype(small, np.floating) and bool(((a != 0) & (np.abs(a) < info.smallest_normal)).any())
    return a if big or tiny else a.astype(small)


def collapse_step(steps: np.ndarray, loss: np.ndarray | None, val_loss: np.ndarray | None = None,
                  *evaluated: np.ndarray | None) -> int | None:
    """The step at which the training loss stopped being finite; None when it never did.

    A wide history has NaN both for "logged NaN" and for "not logged at this step", so a NaN
    counts only in the tail after the last finite loss, and rows of that tail holding a
    finite val_loss or other evaluation metric (``evaluated``: evaluation-only rows) are
    skipped. +/-Inf always counts. A loss logged but never finite (NaN from step 0)
    collapsed at the first step.
    """
    if loss is None or not len(loss):
        return None
    finite_idx = np.flatnonzero(np.isfinite(loss))
    if not len(finite_idx):
        return int(steps[0])
    tail = np.zeros(len(loss), dtype=bool)
    tail[(finite_idx[-1] + 1) if len(finite_idx) else 0:] = True
    for values in (val_loss, *evaluated):
        if values is not None:
            tail &= ~np.isfinite(values)
    hits = np.flatnonzero(np.isinf(loss) | tail)
    return int(steps[hits[0]]) if len(hits) else None


def make_trace(run_id: str, history: pd.DataFrame, max_points: int = 300, window: int = 50,
               budget: int | None = None, n_plot: int = PLOT_POINTS,
               aliases: dict[str, tuple[str, ...]] | None = None, primary: str | None = None) -> Trace:
    """A Trace of one history frame (``_step`` + metric columns); with ``budget`` (a number of
    steps) also the last value of loss, val_loss (and ``primary``) logged at a step below it, so
    that runs of different lengths are compared at the same step budget. ``n_plot``: points per
    drawn curve; ``aliases``: canonical metric -> history names (``MetricMap.aliases``);
    ``primary``: the primary metric's key, kept as a curve of its own when it is no loss."""
    steps = pd.to_numeric(history.get("_step", pd.Series(dtype="float64")), errors="coerce").to_numpy()
    keep = np.isfinite(steps)
    if not keep.all():
        history = history.loc[keep]
    steps = steps[keep].astype(np.int64)
    columns = {m: metric_column(history, m, aliases) for m in TRACE_METRICS}
    if primary and primary not in columns and primary not in (aliases or {}).get("loss", ("loss",)) \
            and primary not in (aliases or {}).get("val_loss", ("val_loss",)):
        columns[primary] = metric_column(history, primary)
    loss = columns["loss"]
    collapse = collapse_step(steps, loss, columns["val_loss"], *(columns[k] for k in columns if k not in TRACE_METRICS))
    trace = Trace(run_id, int(steps[-1]) if len(steps) else None, collapse)
    if collapse is not None:
        trace.collapse_value = float(loss[_index_of(steps, collapse)])
    for metric, values in columns.items():
        if values is None:
            continue
        logged = ~np.isnan(values) | (np.arange(len(values)) == _index_of(steps, trace.collapse_step))
        s, v = steps[logged], values[logged]
        idx = downsample_index(len(s), max_points)
        trace.curves[metric] = (s[idx], v[idx])
        if metric in PLOT_METRICS and len(idx) < len(s):  # else the curve holds every row already
            trace.plot[metric] = plot_points(s, v, n_plot)
        if np.isfinite(v).any():
            trace.peaks[metric] = float(np.nanmax(v))
    trace.finite = finite_loss(*_logged(steps, loss), *_logged(steps, columns["quantization/bit_stall_rate"]))
    trace.summarised = True
    end = trace.collapse_step if trace.collapse_step is not None else trace.last_step
    if end is not None:
        near = (steps <= end) & (steps > end - window)
        for metric in FORENSIC_METRICS:
            values = columns[metric]
            if values is not None:
                trace.forensics[metric] = (steps[near] - end, values[near])
    trace.layers = layer_families(history)
    trace.layer_stall = dict(trace.layers.get("stall", {}))
    for rate in RATES.values():
        if columns.get(rate) is not None:
            trace.cumulative[rate] = looks_cumulative(steps.astype(float), columns[rate])
    trace.history_hash = history_hash(history)
    if budget is not None:
        trace.at_budget = {m: value_within(steps, columns[m], budget) for m in columns
                           if m in ("loss", "val_loss") or m not in TRACE_METRICS}
    return trace


def history_hash(history: pd.DataFrame) -> str:
    """sha256 over the column names and float64 bytes of a history (speed columns left out):
    two runs with the same hash logged bit-identical values, e.g. two formats whose grids
    coincide over the range the weights use."""
    h = hashlib.sha256()
    for col in sorted(str(c) for c in history.columns if str(c) not in UNHASHED):
        h.update(col.encode() + b"\0")
        h.update(np.ascontiguousarray(_floats(history[col])).tobytes())
    return h.hexdigest()


def value_within(steps: np.ndarray, values: np.ndarray | None, budget: int) -> float:
    """The last value logged at a step < budget, NaN when none was: a run's "final" value at a
    step budget (a wide history is NaN where a metric was not logged; failed runs count as
    failures whatever their value)."""
    if values is None:
        return math.nan
    logged = np.flatnonzero((steps < budget) & ~np.isnan(values))
    return float(values[logged[-1]]) if len(logged) else math.nan


def _logged(steps: np.ndarray, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the rows where a metric was logged (not NaN)."""
    if values is None:
        return steps[:0], np.array([], dtype=np.float64)
    logged = ~np.isnan(values)
    return steps[logged], values[logged]


def _index_of(steps: np.ndarray, step: int | None) -> int:
    if step is None:
        return -1
    hits = np.flatnonzero(steps == step)
    return int(hits[0]) if len(hits) else -1


def collect_traces(
    histories: Iterable[tuple[str, pd.DataFrame]], max_points: int = 300, window: int = 50,
    budgets: dict[str, int] | None = None, metric_map: MetricMap | None = None,
) -> dict[str, Trace]:
    """Traces of every run, reading one history at a time (``budgets``: run_id -> step budget;
    ``metric_map``: which key is the train loss, the primary metric and each rate)."""
    budgets = budgets or {}
    aliases = metric_map.aliases() if metric_map is not None else None
    primary = metric_map.primary if metric_map is not None else None
    return {run_id: make_trace(run_id, frame, max_points, window, budgets.get(str(run_id)),
                               aliases=aliases, primary=primary)
            for run_id, frame in histories}


def median_curve(curves: Iterable[tuple[np.ndarray, np.ndarray]], n_grid: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Median over runs on a common step grid; a run counts only over the steps it covers
    and only where its value is finite (a collapsed run drops out after its collapse)."""
    curves = [(s, v) for s, v in curves if len(s)]
    if not curves:
        return np.array([]), np.array([])
    hi = max(float(s[-1]) for s, _ in curves)
    lo = min(float(s[0]) for s, _ in curves)
    grid = np.linspace(lo, hi, n_grid) if hi > lo else np.array([lo])
    stack = np.full((len(curves), len(grid)), np.nan)
    for i, (s, v) in enumerate(curves):
        ok = np.isfinite(v)
        if ok.sum() == 0:
            continue
        inside = (grid >= s[0]) & (grid <= s[ok][-1])
        stack[i, inside] = np.interp(grid[inside], s[ok], v[ok])
    counts = np.isfinite(stack).sum(axis=0)
    with np.errstate(all="ignore"):
        med = np.where(counts > 0, np.nanmedian(np.where(counts > 0, stack, 0.0), axis=0), np.nan)
    return grid, med


def survival(collapse_steps: Iterable[int | None], last_steps: Iterable[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of runs whose loss is still finite at each step where something happened.

    A run that ends (killed, finished) without collapsing is censored at its last step and
    stays in the denominator until then (Kaplan-Meier product); at a tie, collapses come
    before censorings, so runs censored at that step still count as at risk."""
    events = sorted(
        ((int(c if c is not None else l), c is not None)
         for c, l in zip(collapse_steps, last_steps) if c is not None or l is not None),
        key=lambda e: (e[0], not e[1]),
    )
    if not events:
        return np.array([]), np.array([])
    at_risk, frac = len(events), 1.0
    xs, ys = [0], [1.0]
    for step, collapsed in events:
        if collapsed and at_risk:
            frac *= (at_risk - 1) / at_risk
            xs.append(step)
            ys.append(frac)
        at_risk -= 1
    xs.append(events[-1][0])
    ys.append(frac)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys)


def iter_condition(traces: dict[str, Trace], runs: pd.DataFrame, fmt: str, optimizer: str | None = None) -> Iterator[Trace]:
    """Traces of the runs of one format (and optimizer), in run-table order."""
    sel = (runs["format"].astype("string") == fmt).fillna(False)
    if optimizer is not None:
        sel &= (runs["optimizer"].astype("string") == optimizer).fillna(False)
    for run_id in runs.loc[sel.to_numpy(), "run_id"]:
        if str(run_id) in traces:
            yield traces[str(run_id)]
