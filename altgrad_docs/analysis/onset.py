"""When a failure began, not only when it was detected; and how a stagnated run ended.

* **Onset step**: the first step of the final stretch in which the training loss stays above its
  healthy range, the running minimum so far plus ``ONSET_TOLERANCE`` of it, up to the last
  finite loss before the detection step (the first non-finite loss, or the trainer's stop).
  A NaN collapse whose last finite loss is still within range has its onset at the detection
  step itself ("no departure logged before it"). Read on the trace's evenly strided curve.
* **Stagnation, told apart**: a run the stagnation rule flagged either *stagnated* (its loss
  did not fall over the window since its last improvement) or was *stopped while recovering*
  (the least-squares slope of its loss over that window is negative and its last loss is below
  the window's median: it was improving again when stopped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .curves import Trace

ONSET_TOLERANCE = 0.10


@dataclass(frozen=True)
class Onset:
    onset_step: int | None  # None: the loss never left its healthy range before detection
    detection_step: int | None
    stagnation: str = ""  # "stagnated" | "stopped while recovering" | "" (not a stagnation)


def onset_step(steps: np.ndarray, loss: np.ndarray, detection: int | None,
               tolerance: float = ONSET_TOLERANCE) -> int | None:
    """The first step of the final stretch above the running minimum's healthy range."""
    keep = np.isfinite(loss) & ((steps <= detection) if detection is not None else True)
    s, v = steps[keep], loss[keep]
    if len(v) < 2:
        return None
    floor = np.minimum.accumulate(v)
    above = v > floor + tolerance * np.abs(floor)
    if not above[-1]:
        return None
    start = len(above) - 1
    while start > 0 and above[start - 1]:
        start -= 1
    return int(s[start])


def stagnation_kind(steps: np.ndarray, loss: np.ndarray, best_at: int) -> str:
    """'stopped while recovering' or 'stagnated' for a run flagged by the stagnation rule."""
    keep = np.isfinite(loss) & (steps >= best_at)
    s, v = steps[keep].astype(np.float64), loss[keep]
    if len(v) < 3 or np.ptp(s) == 0:
        return "stagnated"
    slope = np.polyfit(s, v, 1)[0]
    return "stopped while recovering" if slope < 0 and v[-1] < np.median(v) else "stagnated"


def failure_onset(trace: Trace | None, detection: int | None, mode: str | None) -> Onset:
    """Onset and (for stagnation) how the run ended, from its trace."""
    if trace is None:
        return Onset(None, detection)
    steps, loss = trace.curve("loss")
    kind = ""
    if mode == "stagnation":
        best_at = trace.finite.best_at if trace.finite is not None else (int(steps[0]) if len(steps) else 0)
        kind = stagnation_kind(steps, loss, best_at)
    if mode == "stagnation":
        return Onset(None, detection, kind)
    start = onset_step(steps, loss, detection)
    return Onset(start if start is not None else detection, detection, kind)

