"""What a comparison's effect becomes when "final" is measured another way, or a seed is left out.

Pure functions of the traces (every evaluation of a run, analysis/curves.py) and of the pairs
of a comparison. The definitions of "final" (Methods lists them):

* ``last``: the last evaluation (the primary metric, as every table states it);
* ``previous``: the evaluation before it (one evaluation interval earlier);
* ``mean_last_k``: the mean of the last ``k`` evaluations;
* ``best``: the best evaluation over the run (lowest, or highest when higher is better).

Runs of different lengths read every definition below their step budget (Design.budgets), as
the primary metric does. A failed run has no value under any definition (it is counted as a
failure, never averaged in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .curves import Trace

LAST_K = 3
DEFINITIONS = ("last", "previous", "mean_last_k", "best")
LABELS = {"last": "the last evaluation", "previous": "the evaluation before the last",
          "mean_last_k": f"the mean of the last {LAST_K} evaluations", "best": "the best evaluation"}


def evaluations(trace: Trace, key: str, budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a run's finite evaluations of ``key`` (below ``budget`` when given)."""
    steps, values = trace.curve(key)
    keep = np.isfinite(values)
    if budget is not None:
        keep &= steps < budget
    return steps[keep], values[keep]


def final_values(trace: Trace, key: str, higher_is_better: bool = False, budget: int | None = None,
                 k: int = LAST_K) -> dict[str, float]:
    """The run's value under every definition of "final" (NaN where it has too few evaluations)."""
    _, v = evaluations(trace, key, budget)
    if not len(v):
        return {d: math.nan for d in DEFINITIONS}
    return {"last": float(v[-1]), "previous": float(v[-2]) if len(v) >= 2 else math.nan,
            "mean_last_k": float(v[-k:].mean()) if len(v) >= k else math.nan,
            "best": float(v.max() if higher_is_better else v.min())}


def finals_by_run(traces: Mapping[str, Trace], run_ids: Sequence[str], key: str, failed: set[str],
                  higher_is_better: bool = False, budgets: Mapping[str, int] | None = None) -> dict[str, dict[str, float]]:
    """run_id -> definition -> value; failed runs NaN under every definition."""
    out = {}
    for run_id in run_ids:
        trace = traces.get(run_id)
        if trace is None or run_id in failed:
            out[run_id] = {d: math.nan for d in DEFINITIONS}
        else:
            out[run_id] = final_values(trace, key, higher_is_better, (budgets or {}).get(run_id))
    return out


@dataclass(frozen=True)
class LeaveOneOut:
    """The mean paired difference with each seed left out in turn."""

    seeds: tuple[int, ...]
    means: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]

    def breaking(self, sign: float) -> tuple[int, float, float, float] | None:
        """The first (seed, mean, low, high) whose mean has not ``sign``'s sign or whose interval
        includes 0; None when every leave-one-out estimate keeps the direction and excludes 0."""
        for s, m, lo, hi in zip(self.seeds, self.means, self.lows, self.highs):
            if not (np.sign(m) == sign and np.isfinite(lo) and (hi < 0 if sign < 0 else lo > 0)):
                return s, m, lo, hi
        return None


def leave_one_out(diffs: Sequence[float], seeds: Sequence[int]) -> LeaveOneOut:
    """Mean and 95% t interval of the differences without each seed (needs >= 3 pairs)."""
    from .stats import scipy_stats

    d = np.asarray(diffs, dtype=np.float64)
    means, lows, highs = [], [], []
    if len(d) < 3:
        return LeaveOneOut((), (), (), ())
    for i in range(len(d)):
        rest = np.delete(d, i)
        m = float(rest.mean())
        sd = float(rest.std(ddof=1))
        half = float(scipy_stats().t.ppf(0.975, len(rest) - 1)) * sd / math.sqrt(len(rest))
        means.append(m)
        lows.append(m - half)
        highs.append(m + half)
    return LeaveOneOut(tuple(int(s) for s in seeds), tuple(means), tuple(lows), tuple(highs))
