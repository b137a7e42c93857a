"""The W&B source against the fake server, with the real wandb client doing the talking."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.fetch import fetch_project, load_or_refresh
from altgrad_docs.runs import RunRecord, tidy_history
from altgrad_docs.snapshot import open_snapshot, write_snapshot
from benchmarks.synthetic import synthetic_records
from tests.conftest import run_cli, wandb_env
from tests.fake_wandb import API_KEY, ENTITY

PROJECT = f"{ENTITY}/altgrad"


def _records(n=6, steps=40, metrics=22, seed=0):
    return list(synthetic_records(n, steps, metrics, np.random.default_rng(seed), entity=ENTITY))


def _with_state(record, state):
    record.meta["state"] = state
    return record


def _snapshot_files(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---- in-process: fetch, filters, keys, reuse ----------------------------------------------
def test_fetch_applies_state_filter_server_side_and_fetches_only_site_keys(live_wandb, tmp_path):
    recs = _records()
    _with_state(recs[0], "running"), _with_state(recs[1], "killed")
    live_wandb.set_runs(recs)
    live_wandb.requests.clear()
    result = fetch_project(PROJECT, tmp_path / "snap", per_page=4, workers=3, progress=False)
    assert result.fetched == 4 and result.reused == 0
    assert sorted(result.snapshot.run_ids) == sorted(r.run_id for r in recs[2:])
    listings = [v for op, v in live_wandb.requests if op == "Runs"]
    assert len(listings) == 1 and listings[0]["perPage"] == 4
    assert json.loads(listings[0]["filters"]) == {"state": {"$in": ["finished", "crashed", "failed"]}}
    assert live_wandb.ops("Run") == []  # lazy=False: no per-run query
    # histories from the Parquet exports, one export query and one download per run
    assert len(live_wandb.ops("RunParquetHistory")) == len(live_wandb.ops("GET parquet")) == 4
    assert live_wandb.ops("RunSampledHistory") == []
    rec = recs[2]
    got = result.snapshot.history(rec.run_id, ["loss", "flips/transformer.h.0.attn.c_attn.weight"])
    np.testing.assert_array_equal(got["loss"].to_numpy(), rec.history["loss"].to_numpy())
    assert len(got) == len(rec.history)
    assert "throughput_tokens_sec" not in result.snapshot.history_keys(rec.run_id)


def test_runs_without_a_complete_export_read_their_live_rows_in_the_same_request(live_wandb, tmp_path):
    recs = _records(n=3)
    _with_state(recs[1], "running")  # its rows are live, not exported yet
    live_wandb.set_runs(recs)
    result = fetch_project(PROJECT, tmp_path / "snap", states=["finished", "crashed", "failed", "running"],
                           progress=False)
    assert result.fetched == 3 and len(live_wandb.ops("GET parquet")) == 2
    # one history request per run, whichever path: the live rows come with the export query
    queries = [v for op, v in live_wandb.requests if op == "RunParquetHistory"]
    assert sorted(q["name"] for q in queries) == sorted(r.run_id for r in recs)
    assert all(q["liveKeys"][0] == "_step" and "loss" in q["liveKeys"] for q in queries)
    assert live_wandb.ops("RunFullHistory") == [] and live_wandb.ops("RunSampledHistory") == []
    for rec in recs:  # the same frame, whichever way it came
        keys = result.snapshot.history_keys(rec.run_id)
        assert "throughput_tokens_sec" not in keys and "loss" in keys
        pd.testing.assert_frame_equal(result.snapshot.history(rec.run_id, keys),
                                      tidy_history(rec.history)[["_step", *keys]])


def test_a_server_without_exports_costs_one_request_per_run(live_wandb, tmp_path):
    recs = _records(n=4)
    live_wandb.set_runs(recs)
    live_wandb.exports = False
    try:
        result = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    finally:
        live_wandb.exports = True
    assert result.fetched == 4
    assert len(live_wandb.ops("RunParquetHistory")) == 4
    # and one request per run for its environment, system metrics and console (wandb_logs.py)
    assert len(live_wandb.ops("RunLogFiles")) == 4
    assert [op for op in live_wandb.ops() if op not in ("Runs", "RunParquetHistory", "Viewer", "RunLogFiles")] == []
    for rec in recs:
        keys = result.snapshot.history_keys(rec.run_id)
        pd.testing.assert_frame_equal(result.snapshot.history(rec.run_id, keys),
                                      tidy_history(rec.history)[["_step", *keys]])


def test_exported_and_live_rows_merge_in_step_order():
    from altgrad_docs.sources.wandb_api import _merged

    exported = {"_step": np.array([0.0, 1.0, 2.0]), "loss": np.array([3.0, 2.0, 1.0])}
    live = {"_step": np.array([2.0, 4.0, 3.0, np.nan]), "loss": np.array([9.0, 0.4, 0.5, 7.0])}
    got = _merged([exported, live], ["loss"])
    assert got["_step"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert got["loss"].tolist() == [3.0, 2.0, 1.0, 0.5, 0.4]  # step 2 keeps its exported row
    assert _merged([live], ["loss"]) is live


def test_refetch_reuses_unchanged_runs_and_is_identical(live_wandb, tmp_path):
    recs = _records(seed=1)
    live_wandb.set_runs(recs)
    first = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    before = _snapshot_files(first.snapshot.path)
    live_wandb.requests.clear()
    os.environ["SOURCE_DATE_EPOCH"] = "1767225600"
    try:
        again = fetch_project(PROJECT, tmp_path / "snap", progress=False)
        same = fetch_project(PROJECT, tmp_path / "snap2", progress=False)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    assert (again.fetched, again.reused, again.changed) == (0, len(recs), False)
    assert same.changed and len(live_wandb.ops("RunParquetHistory")) == len(recs)  # snap2 only
    after = _snapshot_files(again.snapshot.path)
    assert {k for k in after if k.name != "manifest.json"} == {k for k in before if k.name != "manifest.json"}
    assert all(after[k] == before[k] for k in after if k.name != "manifest.json")
    assert again.snapshot.sha256 == first.snapshot.sha256 == same.snapshot.sha256
    # only fetched_at was re-stamped: the manifest is the one a full write gives
    assert after == _snapshot_files(same.snapshot.path)
    assert json.loads(after[Path("manifest.json")])["fetched_at"] == "2026-01-01T00:00:00+00:00"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap", "snap2"]  # no temp folders left
    # a tag edited after the run ended: same heartbeat, so no download, but a new run table
    recs[2].meta["tags"] = ["edited"]
    live_wandb.set_runs(recs)
    edited = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert (edited.fetched, edited.reused, edited.changed) == (0, len(recs), True)
    assert edited.snapshot.runs().set_index("run_id").loc[recs[2].run_id, "tags"] == json.dumps(["edited"])
    assert edited.snapshot.manifest["runs"] == first.snapshot.manifest["runs"]
    # a failure report added, then unchanged, then edited
    reports = tmp_path / "checkpoints" / f"E5M2-{recs[1].run_id}" / "failure_reports"
    reports.mkdir(parents=True)
    (reports / "step_40.md").write_text("loss went NaN")
    runs = [fetch_project(PROJECT, tmp_path / "snap", checkpoints=tmp_path / "checkpoints", progress=False)
            for _ in range(2)]
    (reports / "step_40.md").write_text("loss went NaN at step 40")
    runs.append(fetch_project(PROJECT, tmp_path / "snap", checkpoints=tmp_path / "checkpoints", progress=False))
    assert [r.changed for r in runs] == [True, False, True]
    assert runs[-1].snapshot.failure_reports(recs[1].run_id)[0].read_text() == "loss went NaN at step 40"
    # one run gains data: only that one is downloaded again
    changed = recs[3]
    changed.meta["updated_at"] = "2026-02-01T00:00:00Z"
    changed.history = changed.history.assign(loss=changed.history["loss"] + 1)
    live_wandb.set_runs(recs)
    third = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert (third.fetched, third.reused) == (1, len(recs) - 1)
    np.testing.assert_array_equal(third.snapshot.history(changed.run_id, ["loss"])["loss"],
                                  changed.history["loss"])


def test_unchanged_refetch_keeps_steps_taken_from_the_history(live_wandb, tmp_path):
    recs = _records(n=3, seed=2)
    recs[0].summary.pop("_step", None)  # steps trained then come from the history's last _step
    recs[1].summary.pop("_step", None)
    recs[1].history = recs[1].history.iloc[:0]  # and no history at all
    live_wandb.set_runs(recs)
    first = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    table = first.snapshot.runs().set_index("run_id")["steps"]
    assert table[recs[0].run_id] == recs[0].history["_step"].max() + 1 and pd.isna(table[recs[1].run_id])
    again = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert (again.reused, again.changed) == (3, False)
    recs[2].meta["tags"] = ["edited"]  # the full write with reused histories: same steps
    live_wandb.set_runs(recs)
    edited = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert edited.changed and edited.snapshot.runs().set_index("run_id")["steps"].equals(table)


def test_empty_project_gives_an_empty_snapshot(live_wandb, tmp_path):
    live_wandb.set_runs([])
    result = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert result.n_runs == 0 and list(result.snapshot.runs().columns)[:3] == ["format", "run_id", "run_url"]


def test_bad_runs_survive_the_api(live_wandb, tmp_path):
    rec = RunRecord(
        meta={"run_id": "bad00001", "name": "x | <script>alert(1)</script>\nλ", "state": "failed",
              "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:01:00Z", "tags": []},
        config={"learning_rate": "fast", "use_fp8": "true", "fp8_format": "e5m2"},
        summary={"loss": "NaN", "quantization/bit_stall_rate": "oops"},
        history=pd.DataFrame({"_step": [0, 1], "loss": [1.0, np.inf]}),
    )
    live_wandb.set_runs([rec])
    snap = fetch_project(PROJECT, tmp_path / "snap", progress=False).snapshot
    row = snap.runs().iloc[0]
    assert row["name"] == "x | <script>alert(1)</script>\nλ" and row["format"] == "E5M2"
    assert pd.isna(row["learning_rate"]) and pd.isna(row["final_loss"]) and pd.isna(row["bit_stall_final"])
    assert snap.history("bad00001", ["loss"])["loss"].tolist() == [1.0, np.inf]
    for path in snap.path.rglob("*"):
        assert not path.is_file() or API_KEY.encode() not in path.read_bytes()


def test_load_or_refresh_falls_back_when_wandb_is_unreachable(live_wandb, tmp_path):
    live_wandb.set_runs(_records(n=2))
    fetch_project(PROJECT, tmp_path / "snap", progress=False)
    live_wandb.requests.clear()
    snap, stale = load_or_refresh(tmp_path / "snap")
    assert stale is None and live_wandb.ops("RunParquetHistory") == live_wandb.ops("GET parquet") == []
    assert live_wandb.ops("Runs") == ["Runs"]  # the refresh listed the runs once
    live_wandb.requests.clear()
    assert load_or_refresh(tmp_path / "snap", refresh=False) == (snap, None)
    assert live_wandb.requests == []
    live_wandb.add_fault("500", count=None)
    try:
        snap, stale = load_or_refresh(tmp_path / "snap", timeout=3)
    finally:
        live_wandb.clear_faults()
    assert snap.run_ids and "W&B at" in stale and "builds offline" in stale


# ---- subprocess CLI: faults, each a clear error in bounded time, previous snapshot intact ----
@pytest.fixture
def served(fake_wandb, tmp_path):
    """A server with 4 runs and an earlier snapshot at ``out`` (written directly, so every
    run counts as changed and a fetch must download all histories)."""
    records = _records(n=4, steps=30)
    server = fake_wandb(records)
    env = wandb_env(tmp_path / "w", server.url, WANDB__GRAPHQL_RETRY_MAX="1",
                    WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS="1")
    out = write_snapshot(records, tmp_path / "snap", source={"kind": "earlier"})
    return server, env, out, open_snapshot(out).sha256


def _fails(server, env, out, sha, expect, timeout_s=40, args=()):
    started = time.monotonic()
    done = run_cli(["fetch", "--project", PROJECT, "--out", str(out), "--timeout", "3", *args], env)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("altgrad-docs: error:")]
    assert len(error) == 1 and expect in error[0], done.stderr
    assert "--> Do:" in error[0] and "builds offline" in error[0]
    assert took < timeout_s, took
    assert open_snapshot(out).sha256 == sha
    assert API_KEY not in done.stderr + done.stdout


@pytest.mark.parametrize("kind,op,expect", [
    ("500", "RunParquetHistory", "fetching the history of run"),
    ("429", "Runs", "listing runs"),
    ("malformed", "Runs", "listing runs"),
    ("drop", "RunParquetHistory", "failed while"),
    ("slow", "Runs", "listing runs"),
])
def test_server_faults(served, kind, op, expect):
    server, env, out, sha = served
    server.add_fault(kind, count=None, op=op, retry_after=1, delay=6)
    _fails(server, env, out, sha, expect)


def test_429_once_is_retried_after_retry_after(served):
    server, env, out, sha = served
    server.add_fault("429", count=1, op="Runs", retry_after=2)
    started = time.monotonic()
    done = run_cli(["fetch", "--project", PROJECT, "--out", str(out)], env)
    assert done.returncode == 0 and "4 runs (4 fetched, 0 reused unchanged)" in done.stdout, done.stderr
    assert time.monotonic() - started >= 2
    again = run_cli(["fetch", "--project", PROJECT, "--out", str(out)], env)
    assert again.returncode == 0 and again.stdout.startswith("nothing changed: 4 runs reused;"), again.stdout


def test_bad_key(served):
    server, env, out, sha = served
    _fails(server, dict(env, WANDB_API_KEY="x" * 40), out, sha, "rejected the API key")


def test_no_key(served):
    server, env, out, sha = served
    env = {k: v for k, v in env.items() if k != "WANDB_API_KEY"}
    _fails(server, env, out, sha, "no W&B API key")


def test_connection_refused(served, tmp_path):
    server, env, out, sha = served
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _fails(server, dict(env, WANDB_BASE_URL=f"http://127.0.0.1:{port}"), out, sha, "cannot reach W&B")


def test_fetch_killed_midway_leaves_the_snapshot(served):
    server, env, out, sha = served
    server.latency = 0.5
    proc = subprocess.Popen([sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", PROJECT,
                             "--out", str(out), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not server.ops("RunParquetHistory") and time.monotonic() < deadline:
        time.sleep(0.05)  # kill it once it is downloading histories
    assert server.ops("RunParquetHistory") and proc.poll() is None  # midway: after a history request
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert open_snapshot(out).sha256 == sha


def test_real_client_scan_history_and_lazy_runs(live_wandb):
    import wandb

    recs = list(synthetic_records(2, 25, 4, np.random.default_rng(5), entity=ENTITY, fail_scale=0))
    live_wandb.set_runs(recs)
    api = wandb.Api(timeout=5)
    runs = list(api.runs(PROJECT, per_page=1))  # lazy listing, two pages
    assert [r.id for r in runs] == [r.run_id for r in recs]
    assert runs[0].config["fp8_format"] == recs[0].config["fp8_format"]  # a Run query
    assert "Run" in live_wandb.ops()
    scanned = list(runs[0].scan_history())
    assert [row["_step"] for row in scanned] == list(range(25))
    assert [row["loss"] for row in scanned] == recs[0].history["loss"].tolist()
    assert len(runs[0].history()) == 25  # RunFullHistory, 500 samples by default


@pytest.mark.parametrize("statistics", [True, False])
def test_last_step_of_a_history_file(tmp_path, statistics):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from altgrad_docs.fetch import _last_step

    path = tmp_path / "h.parquet"
    pq.write_table(pa.table({"_step": np.array([0, 7, 3], dtype=np.int64)}), path,
                   write_statistics=statistics, row_group_size=2)
    assert _last_step(path) == 7
    pq.write_table(pa.table({"_step": np.zeros(0, dtype=np.int64)}), path)
    assert _last_step(path) is None


@pytest.mark.parametrize("exports", [True, False], ids=["parquet-export", "live-rows"])
def test_steps_stay_exact_and_a_step_no_int64_holds_drops_that_run_only(live_wandb, tmp_path, caplog,
                                                                        exports):
    """Issue #20: rows at 2**62 + i stay as many steps (through float they were one); a run
    with a step of 2**63 is left out with a warning naming it, the others are fetched."""
    import logging

    recs = _records(n=3, steps=20)
    n, m = len(recs[0].history), len(recs[1].history)
    recs[0].history = recs[0].history.assign(_step=np.arange(n, dtype=np.int64) + 2**62)
    recs[1].history = recs[1].history.assign(_step=np.array([*range(m - 1), 2**63], dtype=np.uint64))
    live_wandb.set_runs(recs)
    live_wandb.exports = exports
    try:
        with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
            result = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    finally:
        live_wandb.exports = True
    assert sorted(result.snapshot.run_ids) == sorted([recs[0].run_id, recs[2].run_id])
    assert (result.fetched, result.skipped) == (2, 1)
    steps = result.snapshot.history(recs[0].run_id, ["loss"])["_step"].tolist()
    assert steps == [2**62 + i for i in range(n)] and n > 10
    assert [r.getMessage().split(" --> ")[0] for r in caplog.records] == [
        f"run {recs[1].run_id} logged step {2**63}, beyond what a 64-bit integer holds: the run "
        "is left out of the snapshot."]
