"""Rates logged as running totals since step 0, told from per-window rates and read as windows.

The AltGrad trainer's ``quantization/*`` rates are cumulative (counters never reset): every FP8
run sits at 0.99+ however its last steps went. A window of such a rate is the difference of two
cumulative values, (k1 r1 - k0 r0) / (k1 - k0), never one value. The metric map may say which
rates are cumulative (analysis/metrics.py); else :func:`looks_cumulative` reads each run's
history and :func:`decide_cumulative` decides per key over the runs.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

#: A cumulative rate of values in [0, 1], with equal counts per step, implies window values in
#: [-TOLERANCE, 1 + TOLERANCE] between any two logged steps (looks_cumulative).
TOLERANCE = 1e-3
#: Steps from which a change of a rate tells a running mean from a per-window value.
CUMULATIVE_EVIDENCE_STEP = 10


def looks_cumulative(steps: np.ndarray, values: np.ndarray) -> bool | None:
    """Whether a logged rate reads as a running mean since step 0 (``steps`` from 0).

    Rule: a cumulative rate r of per-step values in [0, 1], each step adding the same count,
    gives between logged steps s0 < s1 (k = s + 1 steps counted) the window value
    w = (k1 r1 - k0 r0) / (k1 - k0), which lies in [0, 1]. A per-window rate that changes late
    in training gives w far outside. True: every pair of logged steps gives w in
    [-TOLERANCE, 1 + TOLERANCE] and some value changed at a step >= CUMULATIVE_EVIDENCE_STEP;
    False: some pair gives w outside; None: no evidence (too short, or constant)."""
    keep = np.isfinite(values) & np.isfinite(steps)
    s, v = steps[keep].astype(float), values[keep].astype(float)
    if len(v) < 2:
        return None
    w = window_values(s, v)
    if ((w < -TOLERANCE) | (w > 1 + TOLERANCE)).any():
        return False
    changed = (np.abs(np.diff(v)) > 1e-12) & (s[1:] >= CUMULATIVE_EVIDENCE_STEP)
    return True if changed.any() else None


def window_values(steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-window values between consecutive logged steps of a cumulative rate (equal counts
    per step: k = step + 1 counted steps)."""
    k = steps + 1.0
    dk = np.diff(k)
    with np.errstate(all="ignore"):
        return np.where(dk > 0, (k[1:] * values[1:] - k[:-1] * values[:-1]) / dk, np.nan)


def decide_cumulative(flags: Iterable[bool | None]) -> bool:
    """A key is cumulative when some run shows it and none contradicts it."""
    flags = [f for f in flags if f is not None]
    return bool(flags) and all(flags)
