"""A run's environment, system metrics and console output fetched from W&B (the fake server on
127.0.0.1, through the real wandb 0.31 client): stored as offline runs store them
(logs/<run>.json), reused for unchanged runs, shown escaped on the run page; a part W&B does
not give is a warning naming the run, never a failed fetch."""

import copy
import html
import logging

import pytest

from altgrad_docs.fetch import fetch_project
from altgrad_docs.snapshot import open_snapshot
from altgrad_docs.sources import wandb_logs
from tests.fake_wandb import ENTITY
from tests.site_fixtures import FAILED_RUN_ID, RUN_LOG, fixture_records, run_mkdocs_build

PROJECT = f"{ENTITY}/altgrad"
ENVIRONMENT = {**RUN_LOG["environment"], "args": "--fp8 E7M0 --steps 40", "gpu": "NVIDIA A100",
               "gpu_count": 1, "git_commit": "0123abc", "git_remote": "https://github.com/lab/altgrad.git",
               "memory_bytes": 16_000_000_000, "program": "train.py"}


def _records():
    """Three of the fixture's runs; the failed one with a full run log (a ``<script>`` in its
    console), served by the fake W&B as W&B stores it (wandb-metadata.json, output.log, events)."""
    chosen = [r for r in fixture_records() if r.run_id in (FAILED_RUN_ID, "a1e4m3s1", "m1e4m3s1")]
    for record in chosen:
        record.meta.pop("run_log", None)
    failed = next(r for r in chosen if r.run_id == FAILED_RUN_ID)
    failed.meta["run_log"] = {**copy.deepcopy(RUN_LOG), "environment": dict(ENVIRONMENT)}
    return chosen


def _served_log():
    return {"environment": ENVIRONMENT, "system": RUN_LOG["system"], "console": RUN_LOG["console"]}


def test_fetch_stores_and_reuses_the_run_log(live_wandb, tmp_path):
    records = _records()
    live_wandb.set_runs(records)
    snap = fetch_project(PROJECT, tmp_path / "snap", workers=2, progress=False).snapshot
    assert snap.run_log(FAILED_RUN_ID) == _served_log()
    assert snap.run_log("a1e4m3s1") == {}  # W&B holds nothing more for it: no logs file
    assert [f for f in snap.files if f.startswith("logs/")] == [f"logs/{FAILED_RUN_ID}.json"]
    assert live_wandb.ops("GET wandb-metadata.json") == ["GET wandb-metadata.json"]
    # a re-fetch after another run changed: the failed run is reused, its log with it, unasked
    live_wandb.requests.clear()
    changed = next(r for r in records if r.run_id == "a1e4m3s1")
    changed.meta["updated_at"] = "2026-01-10T02:00:00+00:00"
    live_wandb.set_runs(records)
    again = fetch_project(PROJECT, tmp_path / "snap", workers=2, progress=False)
    assert (again.fetched, again.reused) == (1, 2)
    assert again.snapshot.run_log(FAILED_RUN_ID) == _served_log()
    assert [op for op, _ in live_wandb.requests if op.startswith("GET ") and op != "GET parquet"] == []
    assert [v["name"] for op, v in live_wandb.requests if op == "RunLogFiles"] == ["a1e4m3s1"]


def test_a_failed_console_request_is_a_warning_naming_the_run(live_wandb, tmp_path, caplog):
    live_wandb.set_runs(_records())
    live_wandb.add_fault("500", op="GET output.log")
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        result = fetch_project(PROJECT, tmp_path / "snap", workers=1, progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"run {FAILED_RUN_ID}: W&B did not give output.log" in warnings[0], warnings
    assert "--> Do:" in warnings[0]
    log = result.snapshot.run_log(FAILED_RUN_ID)
    assert log == {"environment": ENVIRONMENT, "system": RUN_LOG["system"]}  # the rest is kept
    assert result.fetched == 3


def test_console_tail_is_cut_at_a_line_start():
    lines, cut = wandb_logs.console_lines(b"rt of a line\nwhole line\nlast\n", True)
    assert (lines, cut) == (["whole line\n", "last\n"], True)
    assert wandb_logs.console_lines(b"a\nb", False) == (["a\n", "b"], False)


def test_a_long_console_keeps_its_last_mebibyte(live_wandb, tmp_path, monkeypatch):
    monkeypatch.setattr(wandb_logs, "MAX_CONSOLE_BYTES", 64)
    records = _records()
    failed = next(r for r in records if r.run_id == FAILED_RUN_ID)
    failed.meta["run_log"]["console"] = [f"line {i:03d}\n" for i in range(100)]  # 9 bytes each
    live_wandb.set_runs(records)
    log = fetch_project(PROJECT, tmp_path / "snap", workers=1, progress=False).snapshot.run_log(FAILED_RUN_ID)
    assert log["console"] == [f"line {i:03d}\n" for i in range(93, 100)] and log["console_cut"] is True


def test_environment_leaves_out_the_user_and_a_remote_key():
    meta = {"host": "h", "email": "me@example.invalid", "username": "me", "args": ["--a", "1"],
            "git": {"remote": "https://user:tok@github.com/x/y.git", "commit": "c"},
            "memory": {"total": "1024"}, "cpu_count": 0}
    assert wandb_logs.environment(meta) == {"host": "h", "args": "--a 1", "git_commit": "c",
                                            "git_remote": "https://github.com/x/y.git", "memory_bytes": 1024}
    events = [{"system.cpu": 5, "system.gpu.0.temp": "NaN", "_timestamp": 3.0, "_runtime": 1},
              {"_timestamp": 4.0}, "junk"]
    assert wandb_logs.system_samples(events) == [{"time": 3.0, "cpu": 5.0}]


@pytest.mark.slow
def test_a_site_built_from_w_and_b_shows_the_run_log_escaped(live_wandb, tmp_path):
    live_wandb.set_runs(_records())
    fetch_project(PROJECT, tmp_path / "snap", workers=2, progress=False)
    built = run_mkdocs_build(tmp_path / "snap", tmp_path / "site", tmp_path / "cache")
    assert built.returncode == 0, built.stderr[-3000:]
    page = next((tmp_path / "site").rglob(f"runs/{FAILED_RUN_ID}/index.html")).read_text()
    assert "<script>alert('console')</script>" not in page
    assert "&lt;script&gt;alert(&#39;console&#39;)&lt;/script&gt;" in page or \
        "&lt;script&gt;alert('console')&lt;/script&gt;" in page
    text = html.unescape(page)
    for shown in ("fixture-host", "NVIDIA A100", "0123abc", "https://github.com/lab/altgrad.git", "proc.memory.rssMB",
                  "--fp8 E7M0 --steps 40", "Training stopped at step 30 due to alerts"):
        assert shown in text, shown
    home = html.unescape((tmp_path / "site" / "index.html").read_text())
    assert "W&B's API gives no run's alerts" in home  # where the page says where the data came from
    download = next((tmp_path / "site").rglob(f"runs/{FAILED_RUN_ID}/logs/console.txt")).read_text()
    assert download == "".join(RUN_LOG["console"])


def test_the_cli_fetch_succeeds_and_prints_the_warning(fake_wandb, tmp_path):
    from tests.conftest import run_cli, wandb_env

    server = fake_wandb(_records())
    server.add_fault("500", op="GET output.log")
    done = run_cli(["fetch", "--project", PROJECT, "--out", str(tmp_path / "snap")],
                   wandb_env(tmp_path / "w", server.url))
    assert done.returncode == 0, done.stderr
    assert f"WARNING: run {FAILED_RUN_ID}: W&B did not give output.log (HTTP Error 500" in done.stderr
    assert open_snapshot(tmp_path / "snap").run_log(FAILED_RUN_ID)["environment"] == ENVIRONMENT
