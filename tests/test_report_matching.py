"""Failure reports matched to their runs (sources/report_files.py): by checkpoint_dir under
whatever --checkpoints names, the format in the file name and the report time; the older
<run id> folders; warnings naming the report and the candidates; unmatched reports kept."""

import logging
import shutil
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from altgrad_docs.fetch import fetch_offline
from altgrad_docs.sources.report_files import RunInfo, match_failure_reports, path_parts

T0 = datetime(2026, 12, 6, 4, 55, 11, tzinfo=timezone.utc)
LOGGER = "mkdocs.plugins.altgrad"


def _report(root, folder, name):
    path = root.joinpath(*folder.split("/"), "failure_reports", name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Failure Report: E7M0 Experiment\n")
    return path


def _run(run_id, checkpoint_dir, fmt="E7M0", start=T0, seconds=10.0, name=""):
    return RunInfo(run_id, name, path_parts(checkpoint_dir), fmt, start, start + timedelta(seconds=seconds))


def test_checkpoint_dir_is_matched_by_its_trailing_folders_under_either_root(tmp_path):
    work = tmp_path / "runner"  # the trainer's working folder; checkpoint_dir is relative to it
    a = _report(work, "checkpoints-runner/run-a", "E7M0_20261206_045516_failure_report.md")
    b = _report(work, "checkpoints-runner/run-b", "E7M0_20261206_045516_failure_report.md")
    runs = [_run("aaaa1111", "checkpoints-runner/run-a"), _run("bbbb2222", "./checkpoints-runner/run-b"),
            _run("cccc3333", "checkpoints-runner/run-c")]
    for root in (work, work / "checkpoints-runner", work / "checkpoints-runner" / "run-a"):
        found = match_failure_reports(root, runs)
        expected = {"aaaa1111": [a]} if root.name == "run-a" else {"aaaa1111": [a], "bbbb2222": [b]}
        assert found.by_run == expected and found.unmatched == []
    # an absolute checkpoint_dir, as a trainer may write it
    found = match_failure_reports(work, [_run("dddd4444", str(work / "checkpoints-runner" / "run-a"))])
    assert found.by_run == {"dddd4444": [a]} and found.unmatched == [b]


def test_the_older_run_id_folders_still_match(tmp_path):
    one = _report(tmp_path, "abc123", "E5M2_20260101_000000_failure_report.md")
    two = _report(tmp_path, "E5M2-run-def456", "notes.md")
    found = match_failure_reports(tmp_path, [_run("abc123", ""), _run("def456", "")])
    assert found.by_run == {"abc123": [one], "def456": [two]} and found.unmatched == []


def test_runs_sharing_a_folder_are_told_apart_by_format_and_time(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    early = _report(tmp_path, "ckpt/shared", "E7M0_20261206_045516_failure_report.md")
    late = _report(tmp_path, "ckpt/shared", "E7M0_20261206_055516_failure_report.md")
    e5 = _report(tmp_path, "ckpt/shared", "E5M2_20261206_045516_failure_report.md")
    runs = [_run("first111", "ckpt/shared"), _run("second22", "ckpt/shared", start=T0 + timedelta(hours=1)),
            _run("e5m2run1", "ckpt/shared", fmt="E5M2")]
    found = match_failure_reports(tmp_path, runs)
    assert found.by_run == {"first111": [early], "second22": [late], "e5m2run1": [e5]}
    assert caplog.records == []


def test_several_candidates_or_none_leave_the_report_unmatched_with_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    both = _report(tmp_path, "ckpt/shared", "E7M0_20261206_045516_failure_report.md")
    stray = _report(tmp_path, "ckpt/nobody", "E7M0_20261206_045516_failure_report.md")
    wrong_format = _report(tmp_path, "ckpt/solo", "E3M4_20261206_045516_failure_report.md")
    too_late = _report(tmp_path, "ckpt/solo", "E7M0_20261207_000000_failure_report.md")
    runs = [_run("twin0001", "ckpt/shared", name="twin-a"), _run("twin0002", "ckpt/shared", name="twin-b"),
            _run("solo0001", "ckpt/solo")]
    found = match_failure_reports(tmp_path, runs)
    assert found.by_run == {} and sorted(found.unmatched) == sorted([both, stray, wrong_format, too_late])
    text = {r.getMessage().split(" matches")[0].removeprefix("failure report "): r.getMessage()
            for r in caplog.records}
    assert "several runs" in text[str(both)] and "twin0001 (twin-a), twin0002 (twin-b)" in text[str(both)]
    assert "no run's checkpoint_dir ends in 'ckpt/nobody'" in text[str(stray)]
    assert "names format E3M4" in text[str(wrong_format)] and "solo0001" in text[str(wrong_format)]
    assert "2026-12-07 00:00:00 (read as UTC) is outside" in text[str(too_late)]
    assert all("--> Do:" in r.getMessage() for r in caplog.records)


def test_a_missing_or_empty_checkpoints_folder_is_named(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert match_failure_reports(tmp_path / "nope", []).by_run == {}
    (tmp_path / "empty" / "run-a").mkdir(parents=True)
    assert match_failure_reports(tmp_path / "empty", []).by_run == {}
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(f"--checkpoints folder {tmp_path / 'nope'} does not exist")
    assert messages[1].startswith(f"--checkpoints folder {tmp_path / 'empty'} holds no failure report")


@pytest.fixture(scope="module")
def runner(upstream_runs):
    return upstream_runs / "runner"


@pytest.mark.parametrize("where", ["checkpoints-runner", "."])
def test_the_trainers_reports_reach_their_runs_in_the_snapshot(runner, tmp_path, where):
    """The AltGrad runner's 3 reports (checkpoint_dir never names the run id), from the folder
    of reports or the working folder; the run that crashed before writing one has none."""
    snap = fetch_offline(runner / "wandb", tmp_path / "snap", runner / where, progress=False).snapshot
    reports = {r: [p.name for p in snap.failure_reports(r)] for r in snap.run_ids}
    assert reports == {"gy9dapiz": ["E7M0_20261206_045516_failure_report.md"], "lrbxztvi": [],
                       "kag70y9k": ["E7M0_20261206_045546_failure_report.md"],
                       "zce8j3nj": ["E7M0_20261206_045546_failure_report.md"]}
    runs = snap.runs().set_index("run_id")
    assert runs.loc["gy9dapiz", "status_reason"] == "failure report: NaN/Inf loss at step 4"
    assert runs.loc["zce8j3nj", "status_reason"] == "failure report: NaN/Inf loss at step 5"
    assert runs.loc["lrbxztvi", "status_reason"] == "W&B state failed: exited with an error, exit code 1"
    assert set(runs["status"]) == {"failed"} and snap.unmatched_reports() == []


def test_reports_of_runs_not_fetched_are_kept_unmatched(runner, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    one = tmp_path / "wandb"
    shutil.copytree(runner / "wandb" / "offline-run-20261206_045511-gy9dapiz", one / "offline-run-20261206_045511-gy9dapiz")
    snap = fetch_offline(one, tmp_path / "snap", runner / "checkpoints-runner", progress=False).snapshot
    assert [p.name for p in snap.unmatched_reports()] == [
        "runner-e7m0-manifold-lr10-s42--E7M0_20261206_045546_failure_report.md",
        "runner-e7m0-manifold-lr10-s43--E7M0_20261206_045546_failure_report.md"]
    assert len(snap.failure_reports("gy9dapiz")) == 1
    assert sum("matches no run" in r.getMessage() for r in caplog.records) == 2


def test_failure_modes_lists_the_reports_of_no_run(runner, tmp_path):
    """A report left unmatched is a row without a run and a line of its own; it is not
    counted as a failed run, and its seed and format never pair it with a run."""
    from altgrad_docs.analysis.failure_reports import parse_failure_report
    from altgrad_docs.analysis.failures import FailureAnalyzer
    from altgrad_docs.report.generator import ReportGenerator

    path = next((runner / "checkpoints-runner" / "runner-e7m0-adamw-lr10-s43" / "failure_reports").glob("*.md"))
    report = parse_failure_report(path) | {"unmatched": True, "path": "failure_reports/_unmatched/x--E7M0.md"}
    analyzer = FailureAnalyzer()
    failures = analyzer.merge_failure_data(pd.DataFrame(columns=["run_id", "format", "seed"]), [report])
    text = ReportGenerator(tmp_path, generated_at="2026-01-01T00:00:00+00:00").render_failure_modes(failures)
    assert "0 failed runs." in text
    assert "1 failure report matches no run of this data" in text
    assert "- failure&#95;reports/&#95;unmatched/x--E7M0.md: format E7M0, collapse step 4, reason: NaN/Inf loss" in text
    # columns: format, optimizer, seed, run, onset step, detection step (issue 19)
    assert "| E7M0     | -           | 43     | failure&#95;reports/&#95;unmatched/x--E7M0.md | -            | 4 " in text
    # nothing classified: a sentence, not a table of headers only
    assert "No failed run has a failure mode" in text and "| mode |" not in text


def test_a_torn_run_is_warned_about_once_when_reports_are_matched(runner, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    source = runner / "wandb" / "offline-run-20261206_045511-gy9dapiz"
    folder = tmp_path / "wandb" / source.name
    folder.mkdir(parents=True)
    data = (source / "run-gy9dapiz.wandb").read_bytes()
    (folder / "run-gy9dapiz.wandb").write_bytes(data[: len(data) - 100])
    snap = fetch_offline(tmp_path / "wandb", tmp_path / "snap", runner / "checkpoints-runner", progress=False).snapshot
    assert sum("is torn at byte" in r.getMessage() for r in caplog.records) == 1
    assert [p.name for p in snap.failure_reports("gy9dapiz")] == ["E7M0_20261206_045516_failure_report.md"]


def test_a_reports_format_is_read_by_meaning_as_the_run_tables():
    """A report named by another spelling of its format (fp8_e4m3fn, float8_e5m2) matches
    the run the run table calls E4M3 / E5M2, not "E4M3FN" / "FLOAT8_E5M2"."""
    from pathlib import Path

    from altgrad_docs.sources.report_files import report_format

    names = {"fp8_e4m3fn": "E4M3", "float8_e5m2": "E5M2", "FP8_E5M2": "E5M2", "E7M0": "E7M0"}
    for spelled, label in names.items():
        assert report_format(Path(f"{spelled}_20261206_045516_failure_report.md")) == label
    assert report_format(Path("notes.md")) is None
