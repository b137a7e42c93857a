"""What the run table reads from a run beyond its config and summary: the facts of its
history (steps, best and last good value of the primary metric, where a non-finite stretch
ends it, the logging interval) and its status decided from every signal
(:mod:`altgrad_docs.analysis.status`). :func:`altgrad_docs.runs.run_row` calls it;
:func:`complete_table` brings a run table written before these columns up to date.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .analysis.status import Signals, Status, decide, log_interval, primary_metric
from .runs import RUN_COLUMNS, RunRecord, config_value, exact_int, summary_metric, to_float

if TYPE_CHECKING:
    import pandas as pd


def history_best_loss(history: pd.DataFrame) -> float:
    import pandas as pd

    if "loss" not in history:
        return math.nan
    finite = pd.to_numeric(history["loss"], errors="coerce")
    finite = finite[np.isfinite(finite)]
    return float(finite.min()) if len(finite) else math.nan


def steps_trained(summary: Mapping[str, Any], history: pd.DataFrame) -> int | float:
    """Steps trained: the last logged ``_step`` + 1, since W&B counts steps from 0; exact
    (an int) where the step is a whole number, NaN where there is none.

    A 400-step run logs steps 0..399 and reports 400; a run that hit NaN at step k
    reports k + 1 (the failing step was taken).
    """
    step = exact_int(summary.get("_step"))
    if step is None and "_step" in history and len(history):
        step = exact_int(history["_step"].max())
    return math.nan if step is None else step + 1


def history_facts(record: RunRecord) -> dict[str, Any]:
    """What the run table reads from a run's history: ``steps``, ``best_loss``, the primary
    metric, its last value, last finite value and step, the first step of a non-finite
    stretch that ends the run, and the logging interval.

    A record may carry them ready-made in ``meta["history_facts"]`` (a run reused from an
    earlier snapshot, whose history is not read again: fetch.py)."""
    ready = record.meta.get("history_facts")
    if ready:
        return dict(ready)
    history, summary = record.history, record.summary
    best = summary_metric(summary, "best_loss")
    if math.isnan(best):
        best = history_best_loss(history)
    metric = primary_metric([*history.columns, *summary])
    steps = steps_trained(summary, history)
    facts: dict[str, Any] = {"steps": steps, "best_loss": best, "primary_metric": metric,
                             "last_value": math.nan, "last_good_loss": math.nan,
                             "last_good_step": math.nan, "nonfinite_step": math.nan,
                             "log_every": math.nan}
    step_col = history["_step"].to_numpy(dtype="float64") if "_step" in history else np.array([])
    facts["log_every"] = log_interval(step_col.tolist(), record.config)
    if metric is None:
        return facts
    if metric in history and len(history):
        order = np.argsort(step_col, kind="stable")
        column = history[metric]
        values = (column.to_numpy(dtype="float64", na_value=np.nan) if column.dtype.kind in "fiu"
                  else np.array([to_float(v) for v in column.to_numpy()], dtype="float64"))[order]
        at = step_col[order]
        good = np.flatnonzero(np.isfinite(values))
        facts["last_value"] = float(values[-1])
        if len(good):
            facts.update(last_good_loss=float(values[good[-1]]), last_good_step=float(at[good[-1]]))
        after = good[-1] + 1 if len(good) else 0
        if after < len(values):  # the run ends on non-finite values: where they start
            facts["nonfinite_step"] = float(at[after])
    if metric in summary:
        facts["last_value"] = to_float(summary[metric])
    if math.isfinite(facts["last_value"]):  # rows that did not log the metric (eval rows) read NaN too
        facts["nonfinite_step"] = math.nan
    return facts


def alert_list(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(a) for a in meta.get("alerts") or [] if isinstance(a, Mapping)]


def decided_status(record: RunRecord, state: str, facts: Mapping[str, Any]) -> Status:
    code = record.meta.get("exit_code")
    nonfinite = to_float(facts.get("nonfinite_step"))
    return decide(Signals(
        state=state, exit_code=int(code) if isinstance(code, (int, np.integer)) else None,
        alerts=tuple(alert_list(record.meta)), metric=facts.get("primary_metric"),
        last_value=to_float(facts.get("last_value")),
        collapse_step=int(nonfinite) if math.isfinite(nonfinite) else None,
        last_step=to_float(facts.get("steps")) - 1, log_every=to_float(facts.get("log_every")),
        max_steps=to_float(config_value(record.config, "max_steps")),
        reports=tuple(r for r in record.meta.get("failure_reports") or [] if isinstance(r, Mapping)),
    ))


def complete_table(df: pd.DataFrame) -> pd.DataFrame:
    """A run table written before some RUN_COLUMNS existed, with them added: the status is
    decided again from what the old table holds (W&B state, final loss), the other new
    columns are left empty. A table that has them all is returned as it is."""
    missing = [c for c in RUN_COLUMNS if c not in df]
    if not missing or "state" not in df:
        return df
    import pandas as pd

    out = df.copy()
    decided = [decide(Signals(state=str(state), metric="loss", last_value=to_float(loss)))
               for state, loss in zip(out["state"], out["final_loss"] if "final_loss" in out
                                      else [math.nan] * len(out))]
    fill = {"status": [d.status for d in decided], "status_reason": [d.reason for d in decided],
            "status_signals": [",".join(d.signals) for d in decided],
            "alerts": "[]", "primary_metric": "loss" if "final_loss" in out else ""}
    for col in missing:
        out[col] = fill.get(col, pd.NA if RUN_COLUMNS[col] in ("Int64", "string") else math.nan)
        out[col] = out[col].astype(RUN_COLUMNS[col])
    if "status_reason" in missing:  # the old status was the state's: decide it too
        out["status"] = pd.Series(fill["status"], index=out.index, dtype="string")
    return out[[c for c in RUN_COLUMNS if c in out] + [c for c in out if c not in RUN_COLUMNS]]
