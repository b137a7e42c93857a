"""A run's ``_step`` values exactly as logged, whatever the source.

Steps are integers, and the snapshot stores them as int64. Read through float (as every
other metric is), a step above 2**53 is rounded: 20 rows at 2**62 + i became one. So a step
is read as an integer wherever it is one, and a step that no int64 holds (wandb refuses to
log one, but a server or a hand-made file can hold it) leaves its run out with a warning
naming it (:class:`StepOutOfRange`), never the whole fetch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..runs import to_float

INT64_MIN, INT64_END = -2**63, 2**63


class StepOutOfRange(ValueError):
    """A run logged a ``_step`` that no int64 holds: that run is left out, not the fetch."""

    def __init__(self, step: int, run_id: str = "", where: str = "") -> None:
        who = f"run {run_id}" if run_id else "a run"
        where = f" ({where})" if where else ""
        super().__init__(f"{who}{where} logged step {step}, beyond what a 64-bit integer holds: "
                         "the run is left out of the snapshot. --> Do: log steps below 2**63 "
                         "(run.log(..., step=N)).")
        self.step, self.run_id = step, run_id


def exact_step(value: Any) -> int | None:
    """One logged step as an int, exactly; a float step truncated; None for what is no
    number (None, NaN, Inf, a bool, junk text)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = to_float(value)
    return int(number) if math.isfinite(number) else None


def step_column(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Logged steps as int64, exactly, and which rows have one (a row without is dropped by
    the caller). A step that no int64 holds raises :class:`StepOutOfRange`."""
    try:  # ints (the usual case) in C; None, NaN, junk and big numbers below
        steps = np.array(values, dtype=np.int64)
        if steps.ndim == 1 and not any(v is True or v is False for v in values):
            return steps, np.ones(len(steps), dtype=bool)
    except (TypeError, ValueError, OverflowError):
        pass
    steps, ok = np.zeros(len(values), dtype=np.int64), np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        step = exact_step(value)
        if step is None:
            continue
        if not INT64_MIN <= step < INT64_END:
            raise StepOutOfRange(step)
        steps[i], ok[i] = step, True
    return steps, ok


def int64_steps(steps: list[int], run_id: str, where: str = "") -> np.ndarray:
    """Whole-int steps (one per row) as int64, or :class:`StepOutOfRange` naming the run."""
    try:
        return np.asarray(steps, dtype=np.int64)
    except OverflowError:
        bad = next(s for s in steps if not INT64_MIN <= s < INT64_END)
        raise StepOutOfRange(bad, run_id, where) from None


def arrow_step_column(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`step_column` of a pyarrow column; integers without nulls stay in C."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) and column.null_count == 0:
        if pa.types.is_unsigned_integer(column.type) and len(column):
            largest = pc.max(column).as_py()
            if largest >= INT64_END:
                raise StepOutOfRange(largest)
        return column.cast(pa.int64()).to_numpy(), np.ones(len(column), dtype=bool)
    return step_column(column.to_pylist())
