"""A run's log beyond its metrics and alerts: read from real offline runs (sources/offline.py), kept in
the snapshot (logs/<run>.json), summarised for the run page (site/run_log.py)."""

import pytest

from altgrad_docs.runs import RunRecord
from altgrad_docs.site import options
from altgrad_docs.site import run_log as rl
from altgrad_docs.snapshot import open_snapshot, write_snapshot
from altgrad_docs.sources.offline import read_offline_run


def test_offline_run_log_of_the_trainer(upstream_runs):
    path = next((upstream_runs / "lm" / "wandb").glob("offline-run-*dog9t1x0/run-dog9t1x0.wandb"))
    log = read_offline_run(path).meta["run_log"]
    assert log["environment"]["host"] == "vm" and log["environment"]["python"] == "CPython 3.11.7"
    assert log["system"] and "proc.memory.rssMB" in log["system"][0]
    assert rl.console_text(log).rstrip().endswith("Training stopped at step 13 due to alerts")


def test_snapshot_keeps_the_run_log(tmp_path):
    log = {"environment": {"host": "h"}, "console": ["a\n", "b\n"]}
    records = [RunRecord(meta={"run_id": "r1", "state": "finished", "run_log": log}),
               RunRecord(meta={"run_id": "r2", "state": "finished"})]
    snap = open_snapshot(write_snapshot(records, tmp_path / "snap", source={"kind": "test"}))
    assert snap.run_log("r1") == log and snap.run_log("r2") == {}


def test_summaries():
    assert rl.console_tail("one\n\x1b[31mtwo\x1b[0m\nbar 10%\rbar 100%\n\x07x\n", lines=3) == "two\nbar 100%\n\ufffdx"
    assert rl.console_tail("") == ""
    rows = rl.system_rows([{"time": 1, "cpu": 10.0, "proc.memory.rssMB": 5.0}, {"time": 2, "cpu": 30.0}])
    assert rows == [{"key": "cpu", "samples": 2, "mean": 20.0, "max": 30.0, "last": 30.0, "unit": "%"},
                    {"key": "proc.memory.rssMB", "samples": 1, "mean": 5.0, "max": 5.0, "last": 5.0, "unit": "MB"}]


def test_run_page_shows_the_log_and_the_console_can_be_left_out(tmp_path):
    from types import SimpleNamespace

    from altgrad_docs.site.pages import artifact_cache, run_page
    from altgrad_docs.site.pipeline import DataSource
    from tests.site_fixtures import CONSOLE_LAST_WORDS, FAILED_RUN_ID, build_fixture_snapshot

    snap = open_snapshot(build_fixture_snapshot(tmp_path / "snap"))
    row = next(r for _, r in snap.runs().iterrows() if r["run_id"] == FAILED_RUN_ID)
    cache = artifact_cache(tmp_path / "cache", snap, [])
    shown = run_page(snap, row, cache, 30, console=True)
    assert CONSOLE_LAST_WORDS in shown.context["console_tail"] and "\x1b" not in shown.context["console_tail"]
    assert list(shown.artifacts.files) == ["logs/console.txt"]
    assert CONSOLE_LAST_WORDS in shown.artifacts.files["logs/console.txt"].read_text()
    assert "tab-system" in {t.id for t in shown.artifacts.tables}
    hidden = run_page(snap, row, cache, 30, console=False)
    assert hidden.context["console_tail"] == "" and hidden.artifacts.files == {}
    assert hidden.context["environment"]["host"] == "fixture-host"  # only the console is left out
    config = SimpleNamespace(config_file_path=str(tmp_path / "mkdocs.yml"), extra={"altgrad": {"console": "false"}})
    assert DataSource.from_config(config).console is False
    config.extra = {"altgrad": {}}
    assert DataSource.from_config(config).console is True
    assert options.effective(None, {}, environ={"ALTGRAD_CONSOLE": "no"})["console"] is False
    with pytest.raises(options.OptionsError, match="console.*not yes or no"):
        options.effective(None, {"console": "maybe"}, environ={})
