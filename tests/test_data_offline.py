"""The offline .wandb reader on runs made by the real wandb.init(mode="offline")."""

import logging
import math
import struct
import zlib

import pytest

from altgrad_docs.fetch import fetch_offline
from altgrad_docs.runs import run_row
from altgrad_docs.snapshot import open_snapshot
from altgrad_docs.sources.offline import (FILE_HEADER, OfflineRunError, find_failure_reports,
                                          iter_record_bytes, offline_run_files, read_offline_run,
                                          read_offline_runs)


def _one(folder):
    runs = list(read_offline_runs(folder))
    assert len(runs) == 1
    return runs[0]


def test_finished_run_reads_config_history_and_state(offline_runs):
    run = _one(offline_runs["finished"])
    assert run.meta["state"] == "finished" and run.meta["name"] == "E5M2 finished"
    assert run.config["fp8_format"] == "E5M2" and run.config["seed"] == 3
    assert run.history["_step"].tolist() == [0, 1, 2, 3, 4]
    assert run.history["loss"].tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert run.history["stall/transformer.h.0.attn.c_attn.weight"].tolist() == [0.5] * 5
    row = run_row(run)
    assert (row["format"], row["optimizer"], row["final_loss"], row["best_loss"], row["steps"]) == (
        "E5M2", "ManifoldAdamW", 0.0, 0.0, 5)
    assert row["bit_stall_final"] == 0.25 and row["learning_rate"] == 0.001


def test_run_that_raised_is_failed(offline_runs):
    run = _one(offline_runs["raised"])
    assert run.meta["state"] == "failed" and run.meta["exit_code"] == 1
    assert run.history["loss"].tolist() == [9.0]


def test_nan_and_inf_survive(offline_runs):
    run = _one(offline_runs["naninf"])
    assert run.meta["state"] == "failed"
    loss, grad = run.history["loss"].tolist(), run.history["grad_norm"].tolist()
    assert loss[0] == 2.0 and math.isnan(loss[1])
    assert grad == [math.inf, -math.inf]
    assert math.isnan(run.summary["loss"]) and run.summary["grad_norm"] == -math.inf


def test_bad_values_become_nan_and_names_are_kept(offline_runs):
    run = _one(offline_runs["bad"])
    assert run.meta["name"] == "a | b <script>alert(1)</script>\nzweite Zeile \u00e9\u00e8 \u03bb"
    assert math.isnan(run.history["loss"][0]) and run.history["loss"][1] == 2.5
    assert run.history["val_loss"][0] == 1.5 and math.isnan(run.history["val_loss"][1])
    row = run_row(run)
    assert row["format"] == "BF16" and math.isnan(row["learning_rate"]) and math.isnan(row["seed"])
    assert row["best_loss"] == 2.5


def test_sigkilled_run_is_read_up_to_the_tear(offline_runs, caplog):
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        run = _one(offline_runs["killed"])
    assert run.meta["state"] == "crashed" and run.meta["exit_code"] is None
    assert len(run.history) > 0 and run.history["_step"].is_monotonic_increasing
    path = offline_run_files(offline_runs["killed"])[0]
    assert all(str(path) in r.message for r in caplog.records)
    whole = read_offline_run(path)
    assert len(whole.history) == len(run.history)  # reading twice gives the same rows


@pytest.mark.parametrize("cut", [7, 100, 2000, -3])
def test_truncated_file_keeps_what_came_before(offline_runs, tmp_path, cut, caplog):
    source = offline_run_files(offline_runs["finished"])[0]
    data = source.read_bytes()
    folder = tmp_path / "wandb" / "offline-run-20260101_000000-cut00001"
    folder.mkdir(parents=True)
    torn = folder / "run-cut00001.wandb"
    torn.write_bytes(data[:cut])
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        run = read_offline_run(torn)
    assert run.meta["state"] == "crashed"  # the exit record is at the very end
    assert len(run.history) <= 5
    if cut != 7:
        assert any(str(torn) in r.message and "torn" in r.message for r in caplog.records)


def test_checksum_mismatch_stops_reading(tmp_path, caplog):
    body = b"\x00" * 10
    good = struct.pack("<IHB", zlib.crc32(b"\x01" + body), len(body), 1) + body
    bad = struct.pack("<IHB", 12345, len(body), 1) + body
    path = tmp_path / "run-x.wandb"
    path.write_bytes(FILE_HEADER + good + bad + good)
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        assert list(iter_record_bytes(path)) == [body]
    assert "checksum mismatch" in caplog.text


def test_not_a_wandb_file_is_a_clear_error(tmp_path):
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"hello world")
    with pytest.raises(OfflineRunError, match="not a wandb run log"):
        read_offline_run(path)


def test_failure_reports_are_matched_by_run_dir(tmp_path):
    for name in ("abc123", "E5M2-run-def456", "other"):
        (tmp_path / name / "failure_reports").mkdir(parents=True)
        (tmp_path / name / "failure_reports" / f"{name}_20260101_000000_failure_report.md").write_text("# x")
    found = find_failure_reports(tmp_path, ["abc123", "def456", "zzz"])
    assert sorted(found) == ["abc123", "def456"]
    assert found["def456"][0].name == "E5M2-run-def456_20260101_000000_failure_report.md"


def test_offline_snapshot_is_byte_identical_and_keeps_reports(offline_runs, tmp_path):
    folder = offline_runs["finished"]
    run_id = offline_run_files(folder)[0].stem.removeprefix("run-")
    reports = tmp_path / "checkpoints" / f"E5M2-{run_id}" / "failure_reports"
    reports.mkdir(parents=True)
    (reports / "E5M2_20260101_000000_failure_report.md").write_text("# Failure Report: E5M2 Experiment\n")
    one = fetch_offline(folder, tmp_path / "one", tmp_path / "checkpoints", progress=False).snapshot
    two = fetch_offline(folder, tmp_path / "two", tmp_path / "checkpoints", progress=False).snapshot
    files = sorted(p.relative_to(one.path) for p in one.path.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two.path) for p in two.path.rglob("*") if p.is_file())
    assert all((one.path / f).read_bytes() == (two.path / f).read_bytes() for f in files)
    assert one.failure_reports(run_id)[0].read_text().startswith("# Failure Report")
    assert one.manifest["fetched_at"].startswith(one.runs()["updated_at"][0][:16])
    assert open_snapshot(one.path).runs()["state"].tolist() == ["finished"]
