"""Hostile and broken runs for the robustness tests (issue #12), on top of the site fixture.

Each is a run an FP8 study really produces, or a W&B project can hold: a loss NaN from
step 0, a loss that is +Inf at step 0, one step only, no history row at all, huge values.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from altgrad_docs.runs import RunRecord
from altgrad_docs.snapshot import write_snapshot
from tests.site_fixtures import FETCHED_AT, fixture_records

NEVER_FINITE = "nan0step"  # loss and val_loss NaN from step 0
NEVER_FINITE_VAL = "nanvalok"  # loss NaN from step 0, val_loss finite on every row
INF_AT_0 = "inf0step"  # loss +Inf at step 0, then NaN
ONE_STEP = "onestep1"  # one history row
NO_HISTORY = "nohist00"  # no history row at all
HUGE = "huge0001"  # finite but huge values (1e300)
#: Run ids W&B accepts that cannot be a page path as they are (a dot folder is left out by
#: MkDocs; a slash nests; ? # % break links).
HOSTILE_IDS = (".hidden", "a/b c?#%", "..")
#: run id -> the collapse step the analysis must find (None: never collapsed)
EXPECTED_COLLAPSE = {NEVER_FINITE: 0, NEVER_FINITE_VAL: 0, INF_AT_0: 0, ONE_STEP: None,
                     NO_HISTORY: None, HUGE: None}


def _variant(base: RunRecord, run_id: str, name: str, edit) -> RunRecord:
    rec = copy.deepcopy(base)
    rec.meta.update(run_id=run_id, name=name, url=f"https://wandb.ai/altgrad-lab/altgrad/runs/{run_id}")
    rec.history = edit(rec.history.copy())
    rec.summary = {k: float(rec.history[k].iloc[-1]) for k in rec.history.columns if k != "_step"} \
        if len(rec.history) else {}
    return rec


def _set(**columns):
    def edit(history):
        for key, value in columns.items():
            history[key] = value
        return history
    return edit


def hostile_records() -> list[RunRecord]:
    """The site fixture's runs plus one run of each broken kind above."""
    records = fixture_records()
    failed = next(r for r in records if r.meta["state"] == "failed")
    finished = next(r for r in records if r.meta["state"] == "finished" and r.config["fp8_format"] == "E5M2")
    inf_loss = np.full(len(failed.history), np.nan)
    inf_loss[0] = np.inf
    records += [
        _variant(failed, NEVER_FINITE, "e7m0-nan-from-0", _set(loss=np.nan, val_loss=np.nan)),
        _variant(failed, NEVER_FINITE_VAL, "e7m0-nan-from-0-val-ok", _set(loss=np.nan)),
        _variant(failed, INF_AT_0, "e7m0-inf-at-0", _set(loss=inf_loss, val_loss=np.nan)),
        _variant(finished, ONE_STEP, "e5m2-one-step", lambda h: h.iloc[:1].copy()),
        _variant(finished, NO_HISTORY, "e5m2-no-history", lambda h: h.iloc[:0].copy()),
        _variant(finished, HUGE, "e5m2-huge", _set(loss=1e300, grad_norm=1e308)),
    ]
    records += [_variant(finished, run_id, f"e5m2-id-{i}", lambda h: h) for i, run_id in enumerate(HOSTILE_IDS)]
    return records


def build_hostile_snapshot(out: Path) -> Path:
    return write_snapshot(hostile_records(), Path(out), source={"kind": "fixture"}, fetched_at=FETCHED_AT)
