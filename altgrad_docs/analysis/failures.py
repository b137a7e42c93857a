"""FailureAnalyzer: which runs failed, when, and (by the plan's heuristic and by the history) why.

Two classifications sit side by side, and both are kept:

* ``failure_mode``: the original plan's heuristic on the collapse reason text and the
  gradient sparsity (``classify_failure_mode``);
* ``history_mode``: from the logged history (``classify_trace``): the collapse step is the
  first non-finite loss; the evidence is read in the window of steps before it, in the order
  it appeared: an overflow rate above the run's ``overflow_threshold`` means overflow, unless
  the loss had already exploded (a finite loss above EXPLOSION_FACTOR x its first value, or
  a non-finite or EXPLOSION_FACTOR^3 x larger gradient norm) before the overflow: then
  divergence; else a bit-stall rate above ``bit_stall_threshold`` means the updates vanished
  (gradient_vanishing); else an underflow rate above 0.5 means underflow; else unknown.
  A rate that is cumulative since step 0 (``cumulative``: analysis.metrics) is read as its
  window values, (k1 r1 - k0 r0) / (k1 - k0) between logged steps before the collapse
  (k = step + 1, equal counts per step; a counter may stop once the weights are NaN); where
  those leave [0, 1] the counts per step are not recoverable and the rate is left out, which
  the evidence says. A run whose loss stayed finite is classified as the trainer's
  monitor does (altgrad_docs/bench/monitor.py), on the logged rows: ``divergence`` when every
  loss of its last ``divergence_window`` steps is above its first loss; ``stagnation`` when
  the smoothed loss (the monitor's moving average, replayed on the logged rows) last improved
  by ``stagnation_min_delta`` (relative) on its best at least ``stagnation_window`` steps
  (less one logging interval) before the end, while the mean bit-stall rate since then is
  above ``bit_stall_threshold``; else no mode ("loss stayed finite").
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..runs import to_float
from .curves import Trace, make_trace
from .loss_replay import DIVERGENCE_WINDOW, STAGNATION_MIN_DELTA, FiniteLoss, finite_loss
from .rates import TOLERANCE, window_values
from .failure_reports import parse_failure_report, read_failure_reports
from .scorecard import _num, completed, crashed_mask

MODES = ("overflow", "gradient_vanishing", "underflow", "divergence", "stagnation", "unknown")
NON_FINITE = re.compile(r"\b(nan|inf)\b", re.I)
UNDERFLOW_LIMIT = 0.5
STAGNATION_WINDOW = 100  # the bench trainer's default (RunConfig); the others in loss_replay
#: A loss this many times its first value (a gradient norm this factor cubed) is an explosion.
EXPLOSION_FACTOR = 10.0
RATE_NAMES = {"quantization/overflow_rate": "overflow rate", "quantization/bit_stall_rate": "bit-stall rate",
              "quantization/underflow_rate": "underflow rate"}
FAILURE_COLUMNS = [
    "run_id", "format", "optimizer", "setting", "seed", "name", "run_url", "state", "steps", "collapse_step",
    "reason", "final_loss", "best_loss", "last_good_loss", "last_good_step", "grad_sparsity",
    "failure_mode", "history_mode", "evidence", "source", "report_path", "status_reason",
]

__all__ = ["FailureAnalyzer", "classify_trace", "parse_failure_report", "MODES"]


def _or(value: Any, default: float) -> float:
    x = to_float(value)
    return x if math.isfinite(x) else default


def classify_trace(trace: Trace, overflow_threshold: float = 0.01, stall_threshold: float = 0.5,
                   cumulative: dict[str, bool] | None = None) -> dict[str, Any]:
    """Collapse step, mode and the evidence from one run's trace (see the module docstring)."""
    cumulative = cumulative or {}
    notes: list[str] = []
    rates = {m: _window_rate(trace, m, bool(cumulative.get(m)), notes) for m in RATE_NAMES}
    over, stall = (_max(rates["quantization/overflow_rate"][1]), _max(rates["quantization/bit_stall_rate"][1]))
    under = _underflow_peak(trace, rates["quantization/underflow_rate"], bool(cumulative.get("quantization/underflow_rate")))
    if trace.collapse_step is None:
        mode, evidence = _finite_mode(trace, stall_threshold, bool(cumulative.get("quantization/bit_stall_rate")))
    else:
        mode, evidence = _collapse_mode(trace, rates, overflow_threshold, stall_threshold, under, cumulative)
    if notes and mode not in (None,):
        evidence = f"{evidence}; " + "; ".join(notes)
    return {"collapse_step": trace.collapse_step, "history_mode": mode, "evidence": evidence,
            "overflow_peak": over, "stall_peak": stall, "underflow_peak": under}


def _max(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.max()) if len(values) else math.nan


def _window_rate(trace: Trace, metric: str, cumulative: bool, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(absolute steps, values) of a rate in the forensic window: as logged, or for a cumulative
    rate its window values (module docstring); empty, with a note, when they are not rates."""
    empty = (np.array([]), np.array([]))
    rel, values = trace.forensics.get(metric, empty)
    if values is None or not len(values):
        return empty
    end = trace.collapse_step if trace.collapse_step is not None else trace.last_step
    steps = np.asarray(rel, dtype=float) + float(end or 0)
    keep = np.isfinite(values)
    steps, values = steps[keep], np.asarray(values, dtype=float)[keep]
    if not cumulative:
        return steps, values
    if trace.collapse_step is not None:  # a counter may stop counting once the loss is NaN: before it only
        before = steps < float(trace.collapse_step)
        steps, values = steps[before], values[before]
    if len(values) < 2:
        first = len(values) == 1 and steps[0] == 0  # the first step's value is its own window
        if not first:
            notes.append(f"{RATE_NAMES[metric]} is cumulative and has one value in the window: left out")
            return empty
        return steps, values
    w = window_values(steps, values)
    if ((w < -TOLERANCE) | (w > 1 + TOLERANCE)).any():
        notes.append(f"{RATE_NAMES[metric]} is cumulative, but its counts per step cannot be recovered "
                     "(window values outside [0, 1]): left out")
        return empty
    return steps[1:], np.clip(w, 0.0, 1.0)


def _underflow_peak(trace: Trace, window: tuple[np.ndarray, np.ndarray], cumulative: bool) -> float:
    if cumulative:
        return _max(window[1])
    return _peak(trace, "quantization/underflow_rate")


def _first(steps: np.ndarray, hit: np.ndarray) -> float:
    idx = np.flatnonzero(hit)
    return float(steps[idx[0]]) if len(idx) else math.inf


def _collapse_mode(trace: Trace, rates: dict[str, tuple[np.ndarray, np.ndarray]], overflow_threshold: float,
                   stall_threshold: float, under: float, cumulative: dict[str, bool]) -> tuple[str, str]:
    """The mode of a collapsed run: the first signal in the window (module docstring)."""
    o_steps, o_vals = rates["quantization/overflow_rate"]
    over_at = _first(o_steps, o_vals > overflow_threshold)
    blown_at, blown = _explosion(trace)
    def kind(m: str) -> str:
        return " (window of the cumulative rate)" if cumulative.get(m) else ""
    if math.isfinite(over_at) and over_at <= blown_at:
        peak = _max(o_vals)
        return "overflow", (f"overflow rate {peak:.3g}{kind('quantization/overflow_rate')} > "
                            f"{overflow_threshold:g} before collapse")
    if blown:
        return "divergence", blown
    stall = _max(rates["quantization/bit_stall_rate"][1])
    if stall > stall_threshold:
        return "gradient_vanishing", (f"bit-stall rate {stall:.3g}{kind('quantization/bit_stall_rate')} > "
                                      f"{stall_threshold:g} before collapse")
    if under > UNDERFLOW_LIMIT:
        return "underflow", f"underflow rate {under:.3g}{kind('quantization/underflow_rate')} > {UNDERFLOW_LIMIT:g}"
    return "unknown", "no overflow, stall or underflow signal logged before collapse"


def _explosion(trace: Trace) -> tuple[float, str]:
    """(first step, evidence) of a loss or gradient-norm explosion before the collapse;
    (inf, "") when there was none."""
    end = trace.collapse_step
    start = trace.finite.start_loss if trace.summarised and trace.finite is not None else math.nan
    rel, loss = trace.forensics.get("loss", (np.array([]), np.array([])))
    steps = np.asarray(rel, dtype=float) + float(end or 0)
    if not math.isfinite(start):
        s_all, l_all = trace.curve("loss")
        ok = np.isfinite(l_all)
        start = float(l_all[ok][0]) if ok.any() else math.nan
    before = steps < float(end)
    loss_at = _first(steps, before & np.isfinite(loss) & (loss > EXPLOSION_FACTOR * abs(start))) \
        if math.isfinite(start) and start != 0 else math.inf
    g_rel, grad = trace.forensics.get("grad_norm", (np.array([]), np.array([])))
    g_steps = np.asarray(g_rel, dtype=float) + float(end or 0)
    g_all = trace.curve("grad_norm")[1]
    g_first = float(g_all[np.isfinite(g_all)][0]) if np.isfinite(g_all).any() else math.nan
    g_hit = (g_steps <= float(end)) & (np.isinf(grad) | (np.isfinite(grad) & math.isfinite(g_first)
                                                         & (grad > EXPLOSION_FACTOR ** 3 * abs(g_first))))
    grad_at = _first(g_steps, g_hit)
    at = min(loss_at, grad_at)
    if not math.isfinite(at):
        return math.inf, ""
    finite = np.isfinite(loss) & before
    peak_loss = float(loss[finite].max()) if finite.any() else math.nan
    peak_grad = float(np.nanmax(np.where(np.isnan(grad), -np.inf, grad))) if len(grad) else math.nan
    parts = []
    if math.isfinite(loss_at):
        parts.append(f"loss rose from {start:.4g} to {peak_loss:.4g} (> {EXPLOSION_FACTOR:g}x) from step {int(loss_at)}")
    if len(grad) and peak_grad > -math.inf:
        parts.append(f"gradient norm up to {peak_grad:.3g}")
    return at, "; ".join(parts) + f" before the collapse at step {end}"


def _peak(trace: Trace, metric: str) -> float:
    """The largest logged value of a metric over the whole history (NaN: none finite)."""
    if trace.summarised:
        return trace.peaks.get(metric, math.nan)
    _, values = trace.curve(metric)  # a Trace built by hand: its curves are all there is
    return float(np.nanmax(values)) if np.isfinite(values).any() else math.nan


def _finite_summary(trace: Trace) -> FiniteLoss | None:
    """The loss summary of every logged row (make_trace), or of the curves of a hand-built Trace."""
    if trace.summarised:
        return trace.finite
    return finite_loss(*trace.curve("loss"), *trace.curve("quantization/bit_stall_rate"))


def _finite_mode(trace: Trace, stall_threshold: float, cumulative: bool = False) -> tuple[str | None, str]:
    """Divergence or stagnation of a run whose loss stayed finite (module docstring)."""
    f = _finite_summary(trace)
    if f is None:  # e.g. a trainer that logs no loss (the AltGrad runner): nothing to judge
        return None, "fewer than 2 finite loss values in the history"
    if f.span >= DIVERGENCE_WINDOW and f.above_start:
        return "divergence", (f"loss above its starting value {f.start_loss:.4g} over the last "
                              f"{DIVERGENCE_WINDOW} steps")
    stall = _stall_since(trace, f.best_at) if cumulative else f.stall_since_best
    if f.end - f.best_at >= STAGNATION_WINDOW - f.gap and math.isfinite(stall) and stall > stall_threshold:
        return "stagnation", (f"smoothed loss not {STAGNATION_MIN_DELTA:.0%} below its best since step "
                              f"{f.best_at} ({f.end - f.best_at} steps) at bit-stall rate {stall:.3g} "
                              f"> {stall_threshold:g}")
    return None, "loss stayed finite"


def _stall_since(trace: Trace, step: int) -> float:
    """The bit-stall rate from ``step`` to the end of a cumulative rate: the window value
    (k1 r1 - k0 r0) / (k1 - k0); NaN when it is not a rate (counts per step not recoverable)."""
    steps, values = trace.curve("quantization/bit_stall_rate")
    ok = np.isfinite(values)
    steps, values = steps[ok].astype(float), values[ok]
    at = np.flatnonzero(steps <= step)
    if not len(at) or steps[-1] <= steps[at[-1]]:
        return math.nan
    w = float(window_values(np.array([steps[at[-1]], steps[-1]]), np.array([values[at[-1]], values[-1]]))[0])
    return w if -TOLERANCE <= w <= 1 + TOLERANCE else math.nan


class FailureAnalyzer:
    """Failures from the run table, local failure reports and histories (the plan's API)."""

    def extract_failures(self, df: pd.DataFrame) -> pd.DataFrame:
        """Failed runs: state crashed/failed, or finished with a non-finite final loss."""
        runs = completed(df)
        if runs.empty:
            return df.iloc[0:0].copy()
        return runs[crashed_mask(runs)].reset_index(drop=True)

    def parse_local_failure_reports(self, checkpoint_dir: str = "checkpoints") -> list[dict]:
        """Every ``<checkpoint_dir>/*/failure_reports/*.md``, parsed; broken ones skipped with
        a warning naming the file. ``run_id`` is None (the checkpoint folder does not say)."""
        paths = sorted(Path(checkpoint_dir).glob("*/failure_reports/*.md"))
        return read_failure_reports(paths)

    def classify_failure_mode(self, reason: str | None, grad_sparsity: float | None = None) -> str:
        """The plan's heuristic: NaN/Inf in the reason -> overflow; gradient sparsity > 0.5
        -> gradient_vanishing; 'underflow' in the reason -> underflow; else unknown."""
        text = reason or ""
        if NON_FINITE.search(text):
            return "overflow"
        if grad_sparsity is not None and to_float(grad_sparsity) > 0.5:
            return "gradient_vanishing"
        if "underflow" in text.lower():
            return "underflow"
        return "unknown"

    def classify_history(self, history: pd.DataFrame, overflow_threshold: float = 0.01,
                         stall_threshold: float = 0.5, window: int = 50) -> dict[str, Any]:
        """classify_trace on a whole history frame (``_step`` + metric columns)."""
        return classify_trace(make_trace("", history, window=window), overflow_threshold, stall_threshold)

    def merge_failure_data(self, wandb_failures: pd.DataFrame, local_reports: list[dict],
                           traces: dict[str, Trace] | None = None,
                           cumulative: dict[str, bool] | None = None) -> pd.DataFrame:
        """One row per failed run (FAILURE_COLUMNS), joining W&B failures and local reports.

        A report joins a run by run_id when it has one, else by (format, seed) from its
        config block when exactly one failed run matches; unmatched reports become rows of
        their own (source "local"). With ``traces`` the history classification is added.
        """
        rows = [self._wandb_row(r, traces or {}, cumulative) for _, r in wandb_failures.iterrows()]
        for report in local_reports:
            row = self._match(rows, report)
            if row is None:
                row = {c: None for c in FAILURE_COLUMNS} | {"run_id": report.get("run_id"),
                       "format": report["format"], "seed": report.get("config", {}).get("seed"),
                       "state": None, "source": "local"}
                rows.append(row)
            else:
                row["source"] = "both"
            row["collapse_step"] = row.get("collapse_step") if row.get("collapse_step") is not None \
                else report["collapse_step"]
            row["reason"] = report.get("reason")
            row["grad_sparsity"] = report.get("grad_sparsity")
            row["report_path"] = report.get("path")
            for key in ("final_loss", "best_loss"):
                if row.get(key) is None or not np.isfinite(to_float(row.get(key))):
                    row[key] = report.get(key)
            if not np.isfinite(to_float(row.get("last_good_loss"))):
                row["last_good_step"], row["last_good_loss"] = last_good(report.get("loss_trend") or [])
        for row in rows:
            row["failure_mode"] = self.classify_failure_mode(row.get("reason"), row.get("grad_sparsity"))
        out = pd.DataFrame(rows, columns=FAILURE_COLUMNS)
        return out.sort_values(["format", "run_id"], kind="stable", na_position="last").reset_index(drop=True)

    @staticmethod
    def _wandb_row(r: pd.Series, traces: dict[str, Trace], cumulative: dict[str, bool] | None = None) -> dict[str, Any]:
        row = {c: (r[c] if c in r.index else None) for c in FAILURE_COLUMNS}
        row.update(collapse_step=None, reason=_trainer_reason(r), grad_sparsity=None, history_mode=None,
                   evidence=None, source="wandb", report_path=None)
        trace = traces.get(str(r["run_id"]))
        if trace is not None:
            cls = classify_trace(trace, _or(r.get("overflow_threshold"), 0.01),
                                 _or(r.get("bit_stall_threshold"), 0.5), cumulative)
            row.update(collapse_step=cls["collapse_step"], history_mode=cls["history_mode"],
                       evidence=cls["evidence"])
            if cls["history_mode"] in ("divergence", "stagnation") and cls["collapse_step"] is None:  # stopped by the trainer
                row.update(collapse_step=trace.last_step, reason=row.get("reason") or cls["evidence"])
            if cls["collapse_step"] is not None and not row.get("reason"):
                kind = "NaN" if math.isnan(trace.collapse_value) else "Inf"
                row["reason"] = f"{kind} loss at step {cls['collapse_step']} (history)"
        if not row.get("reason") and isinstance(r.get("status_reason"), str) and r.get("status_reason"):
            row["reason"] = r["status_reason"]  # W&B state, exit code, or a stop before max_steps
        return {k: (None if v is pd.NA else v) for k, v in row.items()}

    @staticmethod
    def _match(rows: list[dict], report: dict) -> dict | None:
        if report.get("unmatched"):  # the fetch found no run, or several (sources/report_files.py)
            return None
        if report.get("run_id"):
            hits = [r for r in rows if r.get("run_id") == report["run_id"]]
        else:
            seed = report.get("config", {}).get("seed")
            hits = [r for r in rows if r.get("source") == "wandb" and str(r.get("format")) == report["format"]
                    and seed is not None and to_float(r.get("seed")) == to_float(seed)]
        return hits[0] if len(hits) == 1 else None


def _trainer_reason(r: pd.Series) -> str | None:
    """The run's status reason when it says why training ended (a stop alert, a failure
    report, a non-finite loss: analysis/status.py); None when it only says that it ended
    (W&B state, exit code, steps short of max_steps): the history then tells more."""
    reason, signals = r.get("status_reason"), r.get("status_signals")
    if not (isinstance(reason, str) and reason and isinstance(signals, str)):
        return None
    return reason if signals.split(",")[0] in ("alert", "report", "non_finite") else None


def last_good(points: Iterable[tuple[Any, Any]]) -> tuple[int | None, float]:
    """(step, value) of the last finite value among (step, value) points in step order, the
    last good value before a collapse; (None, NaN) when none is finite."""
    good = [(s, to_float(v)) for s, v in points if np.isfinite(to_float(v))]
    return (good[-1][0], good[-1][1]) if good else (None, math.nan)


def ensure_failure_columns(failures: pd.DataFrame) -> pd.DataFrame:
    """A failure table with every FAILURE_COLUMNS column: a frame in the plan's shape
    (format, collapse_step, reason, last_good_loss) or extract_failures' output works too; a
    column it lacks (the plan's has no best_loss) is left empty, never filled from another."""
    out = failures.copy()
    for col in FAILURE_COLUMNS:
        if col not in out:
            out[col] = None
    if out["failure_mode"].isna().any():
        classify = FailureAnalyzer().classify_failure_mode
        out["failure_mode"] = [m if isinstance(m, str) else classify(r, g) for m, r, g in
                               zip(out["failure_mode"], out["reason"], out["grad_sparsity"])]
    return out


def collapse_summary(failures: pd.DataFrame) -> dict[str, Any]:
    """n, median, min, max of the collapse steps in a failure table (NaN where unknown)."""
    steps = _num(failures["collapse_step"]) if len(failures) else np.array([])
    steps = steps[np.isfinite(steps)]
    if not len(steps):
        return {"n": 0, "median": math.nan, "min": math.nan, "max": math.nan}
    return {"n": len(steps), "median": float(np.median(steps)), "min": float(steps.min()), "max": float(steps.max())}


def failure_table(runs: pd.DataFrame, traces: dict[str, Trace] | None = None,
                  reports: Iterable[dict] = (), cumulative: dict[str, bool] | None = None) -> pd.DataFrame:
    """Convenience for the site: failures of the run table merged with reports and traces
    (``cumulative``: rate key -> read as cumulative since step 0, analysis.pipeline)."""
    analyzer = FailureAnalyzer()
    return analyzer.merge_failure_data(analyzer.extract_failures(runs), list(reports), traces, cumulative)
