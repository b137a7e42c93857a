"""Traces read on every core are the traces read one after another (site.traces)."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.analysis.curves import collect_traces
from altgrad_docs.site import traces as site_traces
from altgrad_docs.runs import RunRecord
from altgrad_docs.snapshot import open_snapshot, write_snapshot


def _snapshot(tmp_path, n_runs: int):
    rng = np.random.default_rng(0)
    records = []
    for i in range(n_runs):
        steps = np.arange(0, 120 + 7 * (i % 5))
        loss = 4.0 - np.log1p(steps) * 0.3 + rng.normal(0, 0.05, len(steps))
        if i % 9 == 0:
            loss[60:] = np.nan  # collapsed runs
        history = pd.DataFrame({"_step": steps, "loss": loss, "grad_norm": rng.gamma(2.0, 1.0, len(steps)),
                                "stall/layer0.attn": rng.uniform(0, 1, len(steps))})
        records.append(RunRecord(meta={"run_id": f"r{i:03d}", "name": f"run {i}", "state": "finished"},
                                 config={"format": "E4M3", "seed": i}, history=history))
    return open_snapshot(write_snapshot(records, tmp_path / "snap", source={"kind": "test"},
                                        fetched_at="2026-01-01T00:00:00+00:00"))


def _plain(value):
    """A trace as nested plain values (arrays as lists, NaN as a string) to compare exactly."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [value.dtype.str, *_plain(value.tolist())]
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def test_traces_from_two_workers_are_those_read_in_one_process(tmp_path, monkeypatch):
    snapshot = _snapshot(tmp_path, 120)
    budgets = {"r003": 100, "r077": 110}
    serial = collect_traces(snapshot.iter_histories(), 300, budgets=budgets)
    monkeypatch.setattr(site_traces, "PARALLEL_FROM", 10)
    parallel = site_traces.read_traces(snapshot, budgets, workers=2)
    assert list(parallel) == list(serial) == [str(r) for r in snapshot.run_ids]
    for run_id, trace in serial.items():  # every array and number the same
        assert _plain(parallel[run_id]) == _plain(trace), run_id
    assert parallel["r003"].at_budget and not parallel["r004"].at_budget
    assert parallel["r009"].collapse_step == 60


def test_a_small_snapshot_is_read_here(tmp_path, monkeypatch):
    snapshot = _snapshot(tmp_path, 12)
    monkeypatch.setattr(site_traces, "ProcessPoolExecutor", None)  # would fail if a pool were started
    assert list(site_traces.read_traces(snapshot, {}, workers=2)) == [str(r) for r in snapshot.run_ids]


def test_charts_made_in_the_analysis_pass_are_the_run_pages_own(tmp_path, monkeypatch):
    from functools import partial

    from altgrad_docs.site import runchart
    from altgrad_docs.site.pages import ArtifactCache, chart_files, make_chart

    snapshot = _snapshot(tmp_path, 30)
    monkeypatch.setattr(site_traces, "PARALLEL_FROM", 10)
    site_traces.read_traces(snapshot, {}, workers=2, also=partial(make_chart, ArtifactCache(tmp_path / "a")))
    for run_id in snapshot.run_ids:
        made = chart_files(ArtifactCache(tmp_path / "a"), run_id, lambda: pytest.fail("read again"))
        own = chart_files(ArtifactCache(tmp_path / "b"), run_id,
                          lambda: snapshot.history(run_id, runchart.HISTORY_KEYS))
        assert {e: p.read_bytes() for e, p in made.items()} == {e: p.read_bytes() for e, p in own.items()}
    assert json.loads(made["json"].read_text())["panels"][0]["series"]  # real data, not empty
