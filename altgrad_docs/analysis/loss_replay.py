"""What the failure classification reads from a finite loss curve, computed from every logged row.

The trainer's monitor (altgrad_docs/bench/monitor.py) sees every step; the classification
replays it on the logged rows (``failures._finite_mode``). Replayed on the 300 strided points a
trace keeps for its medians it differed from the logged rows on 4 of 200 synthetic runs of
1,000 steps (benchmarks/site.md, "Report figures, 2026-12-01"), so :func:`finite_loss` runs once
per history in ``curves.make_trace`` on all of them and the trace keeps only the summary, which
does not depend on a run's thresholds (those are compared in ``failures``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DIVERGENCE_WINDOW = 50  # the bench trainer's defaults (RunConfig)
STAGNATION_MIN_DELTA = 0.02
LOSS_EMA = 0.9  # the monitor's smoothing factor per step


@dataclass(frozen=True)
class FiniteLoss:
    """A finite loss curve (>= 2 points), as the divergence and stagnation rules read it."""

    start_loss: float  # the first logged loss
    span: int  # last step - first step
    above_start: bool  # every loss of the last DIVERGENCE_WINDOW steps above the first one
    best_at: int  # the last step where the smoothed loss improved by STAGNATION_MIN_DELTA
    end: int  # the last step
    gap: float  # median step between logged rows
    stall_since_best: float  # mean finite bit-stall rate after best_at (NaN: none logged)


def finite_loss(steps: np.ndarray, loss: np.ndarray, stall_steps: np.ndarray,
                stall: np.ndarray) -> FiniteLoss | None:
    """The summary of the finite points of (steps, loss), with the bit-stall rate
    (stall_steps, stall) after the last best step; None with fewer than 2 finite losses."""
    ok = np.isfinite(loss)
    steps, loss = steps[ok], loss[ok]
    if len(steps) < 2:
        return None
    end = int(steps[-1])
    recent = steps > end - DIVERGENCE_WINDOW
    best_at = last_best_step(steps, loss)
    after = stall[(stall_steps > best_at) & np.isfinite(stall)]
    return FiniteLoss(
        start_loss=float(loss[0]), span=end - int(steps[0]), above_start=bool((loss[recent] > loss[0]).all()),
        best_at=best_at, end=end, gap=float(np.median(np.diff(steps))),
        stall_since_best=float(after.mean()) if len(after) else math.nan,
    )


def last_best_step(steps: np.ndarray, loss: np.ndarray) -> int:
    """The last step where the smoothed loss improved on its best by STAGNATION_MIN_DELTA:
    the monitor's moving average, with the factor raised to the step gap between rows.
    Vectorised (a Python loop over 10,000 rows costs ~30 ms, 30 s over 1,000 runs)."""
    ema = smoothed(steps, loss)
    idx, best = 0, float(ema[0])
    while (nxt := _first_below(ema, idx + 1, best * (1 - STAGNATION_MIN_DELTA))) is not None:
        idx, best = nxt, float(ema[nxt])
    return int(steps[idx])


def _first_below(values: np.ndarray, start: int, limit: float) -> int | None:
    """The first index >= start whose value is below ``limit``, searched in growing windows
    (improvements come close together early in training, then not at all)."""
    size = 64
    while start < len(values):
        hits = np.flatnonzero(values[start:start + size] < limit)
        if len(hits):
            return start + int(hits[0])
        start, size = start + size, size * 4
    return None


def smoothed(steps: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """The monitor's moving average over the rows, starting at the first loss:
    ema_i = a_i ema_(i-1) + (1 - a_i) loss_i with a_i = LOSS_EMA ** (step gap). One linear
    filter when the rows are evenly spaced (the usual logging), else a loop."""
    loss = np.asarray(loss, dtype=np.float64)
    gaps = np.diff(steps).astype(np.float64)
    if len(gaps) and (gaps == gaps[0]).all():
        from scipy.signal import lfilter

        a = LOSS_EMA ** gaps[0]
        return lfilter([1 - a], [1, -a], loss, zi=[a * loss[0]])[0]
    ema = np.empty_like(loss)
    ema[0] = loss[0]
    for i in range(1, len(loss)):
        a = LOSS_EMA ** gaps[i - 1]
        ema[i] = a * ema[i - 1] + (1 - a) * loss[i]
    return ema
