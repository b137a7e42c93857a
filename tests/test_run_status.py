"""A run's status from every signal it gives (analysis/status.py), one rule per case, and the
run table columns that carry it (runs.run_row, run_facts.complete_table, scorecard.crashed_mask)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.analysis.scorecard import crashed_mask
from altgrad_docs.analysis.status import Signals, decide, log_interval, primary_metric, stop_alerts
from altgrad_docs.run_facts import complete_table
from altgrad_docs.runs import RUN_COLUMNS, RunRecord, run_row, runs_frame

STOP = {"title": "Training stopped: NaN loss", "text": "Loss was NaN for 10 consecutive steps",
        "level": "ERROR", "count": 1}
STALL = {"title": "High bit stall rate", "text": "Bit stall rate 99.84% exceeds threshold",
         "level": "WARN", "count": 150}


def _ok(**kw):
    base = dict(state="finished", exit_code=0, metric="loss", last_value=2.5, last_step=149,
                log_every=1, max_steps=150)
    return Signals(**{**base, **kw})


@pytest.mark.parametrize("signals, status, reason", [
    (_ok(), "finished", ""),
    (_ok(alerts=(STALL,)), "finished", ""),  # a warning is not a stop
    (_ok(state="crashed", exit_code=None), "failed", "W&B state crashed: no heartbeat (process lost)"),
    (_ok(state="failed", exit_code=1), "failed", "W&B state failed: exited with an error, exit code 1"),
    (_ok(exit_code=3), "failed", "exit code 3"),
    (_ok(alerts=(STALL, STOP), last_value=math.nan, collapse_step=19, last_step=27),
     "failed", "stopped by trainer: NaN loss at step 19"),
    (_ok(alerts=({"title": "Run halted - divergence", "level": "INFO"},)), "failed",
     "stopped by trainer: divergence"),
    (_ok(alerts=({"title": "Gradient explosion", "level": "ERROR"},)), "failed",
     "stopped by trainer: Gradient explosion"),
    (_ok(reports=({"file": "E7M0_x.md", "reason": "NaN/Inf loss", "collapse_step": 4},), last_step=0,
                  log_every=50), "failed", "failure report: NaN/Inf loss at step 4"),
    (_ok(last_value=math.nan, collapse_step=7), "failed", "NaN loss at step 7"),
    (_ok(metric="train/loss", last_value=math.inf), "failed", "Inf train/loss"),
    (_ok(last_step=12), "failed", "stopped at step 12 of max_steps 150"),
    (_ok(last_step=100, log_every=50), "finished", ""),  # the last log of a 150-step run every 50
    (_ok(last_step=0, log_every=math.nan), "finished", ""),  # no interval known: not judged
    (_ok(metric=None, last_value=math.nan), "finished", ""),  # no loss logged: nothing to judge
    (_ok(state="killed"), "killed", "W&B state killed"),
    (_ok(state="running"), "running", "W&B state running"),
])
def test_each_signal_decides_the_status_and_names_the_reason(signals, status, reason):
    decided = decide(signals)
    assert (decided.status, decided.reason) == (status, reason)


def test_the_first_signal_is_the_reason_and_every_signal_is_listed():
    decided = decide(_ok(alerts=(STOP,), last_value=math.nan, collapse_step=6, last_step=14))
    assert decided.reason == "stopped by trainer: NaN loss at step 6"
    assert decided.signals == ("alert", "non_finite", "early_stop")
    assert [a["title"] for a in stop_alerts([STALL, STOP])] == ["Training stopped: NaN loss"]


def test_primary_metric_and_logging_interval():
    assert primary_metric(["grad_norm", "train/loss", "val_loss"]) == "train/loss"
    assert primary_metric(["loss", "train/loss"]) == "loss"
    assert primary_metric(["eval/f1_micro"]) is None
    assert log_interval([0, 50, 100, 150], {}) == 50
    assert log_interval([0, 1, 2, 10], {}) == 1  # median gap
    assert log_interval([0], {"log_interval": 1, "diagnostic_interval": 50}) == 50
    assert math.isnan(log_interval([0], {}))


def _record(loss, *, state="finished", exit_code=0, alerts=(), max_steps=150, reports=None, summary_loss=None):
    steps = np.arange(len(loss))
    meta = {"run_id": "r1", "name": "lm", "state": state, "exit_code": exit_code, "alerts": list(alerts)}
    if reports:
        meta["failure_reports"] = reports
    summary = {"loss": loss[-1] if summary_loss is None else summary_loss, "_step": int(steps[-1])}
    return RunRecord(meta=meta, config={"max_steps": max_steps, "fp8_format": "E7M0", "use_fp8": True},
                     summary=summary, history=pd.DataFrame({"_step": steps, "loss": np.asarray(loss, float)}))


def test_run_row_of_a_run_the_trainer_stopped():
    """The AltGrad trainer's NaN stop: exit 0, state finished, the stop alert."""
    loss = [5.37, 900.0, 2448.6, math.nan, math.nan]
    row = run_row(_record(loss, alerts=[STALL, STOP]))
    assert (row["state"], row["status"]) == ("finished", "failed")
    assert row["status_reason"] == "stopped by trainer: NaN loss at step 3"
    assert row["status_signals"] == "alert,non_finite,early_stop"
    assert (row["last_good_loss"], row["last_good_step"], row["nonfinite_step"]) == (2448.6, 2.0, 3.0)
    assert row["best_loss"] == 5.37 and row["exit_code"] == 0.0 and row["log_every"] == 1.0
    assert json.loads(row["alerts"])[1]["title"] == "Training stopped: NaN loss"
    table = runs_frame([row])
    assert list(table.columns) == list(RUN_COLUMNS)
    assert table.loc[0, "last_good_step"] == 2 and table.loc[0, "exit_code"] == 0


def test_run_row_of_a_healthy_run_and_of_one_with_a_report():
    loss = list(np.linspace(5, 2, 150))
    row = run_row(_record(loss))
    assert (row["status"], row["status_reason"], row["status_signals"]) == ("finished", "", "")
    assert row["last_good_loss"] == loss[-1] and row["last_good_step"] == 149.0 and math.isnan(row["nonfinite_step"])
    reported = run_row(_record(loss, reports=[{"file": "E7M0_20260101_000000_failure_report.md",
                                               "reason": "NaN/Inf loss", "collapse_step": 412}]))
    assert (reported["status"], reported["status_reason"]) == ("failed", "failure report: NaN/Inf loss at step 412")


def test_rows_without_the_metric_at_the_end_are_no_collapse():
    """An evaluation row after the last training row holds no loss: not a non-finite stretch."""
    record = _record([5.0, 4.0, 3.0, math.nan], summary_loss=3.0, max_steps=4)
    row = run_row(record)
    assert (row["status"], row["last_good_step"]) == ("finished", 2.0) and math.isnan(row["nonfinite_step"])


def test_a_table_written_before_the_status_columns_is_decided_again():
    old = runs_frame([run_row(_record([5.0, 4.0])), run_row(_record([5.0, 4.0], state="crashed"))])
    old.loc[0, "final_loss"] = math.nan  # an old table: a finished run whose last loss is NaN
    old = old.drop(columns=["status_reason", "status_signals", "exit_code", "alerts", "primary_metric",
                            "last_good_loss", "last_good_step", "nonfinite_step", "log_every"])
    old["status"] = ["finished", "failed"]  # the state as it was
    new = complete_table(old)
    assert list(new.columns) == list(RUN_COLUMNS)
    assert new["status"].tolist() == ["failed", "failed"]
    assert new["status_reason"].tolist() == ["NaN loss", "W&B state crashed: no heartbeat (process lost)"]
    assert new["alerts"].tolist() == ["[]", "[]"] and new["last_good_step"].isna().all()


def test_crashed_mask_follows_the_decided_status_and_the_primary_metric():
    df = pd.DataFrame({"status": ["finished", "failed", "finished", "finished"],
                       "status_reason": ["", "x", "", ""],
                       "primary_metric": ["train/loss", "loss", "loss", ""],
                       "final_loss": [math.nan, 3.0, math.inf, math.nan]})
    # train/loss runs have no `loss` to judge by; a NaN `loss` of a loss run is a failure
    assert crashed_mask(df).tolist() == [False, True, True, True]
