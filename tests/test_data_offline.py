"""The offline .wandb reader on runs made by the real wandb.init(mode="offline")."""

import logging
import shutil
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


# ---- resumed runs and exact steps (issue #20) ----------------------------------------------
RESUMED_SCRIPT = """
import sys, time, wandb
def part(run_id, steps, explicit, exit_code=0, **config):
    if wandb.run is None and "started" in globals():
        time.sleep(max(0.0, started + 1.05 - time.time()))  # wandb names a run folder by its second
    globals()["started"] = time.time()
    run = wandb.init(mode="offline", project="altgrad", id=run_id, resume="allow",
                     config={"fp8_format": "E5M2", "use_fp8": True, **config})
    for i, step in enumerate(steps):
        run.log({"loss": float(step) + 0.5}, **({"step": step} if explicit else {}))
    run.finish(exit_code=exit_code)
which = sys.argv[1]
if which == "continued":
    part("res00001", range(30), False, learning_rate=0.01)
    part("res00001", range(30, 60), True, exit_code=1, learning_rate=0.001)
elif which == "restarted":
    part("res00002", range(30), False)
    part("res00002", range(10), False)
else:
    part("big00001", [2**62 + i for i in range(20)], True)
"""


@pytest.fixture(scope="module")
def resumed_runs(tmp_path_factory):
    """Real offline runs resumed with ``wandb.init(id=..., resume="allow")``: ``continued``
    (steps 0-29, then 30-59 logged with step=, exit code 1, a new learning rate),
    ``restarted`` (0-29, then 0-9: the resumed process counted from 0 again) and ``big``
    (20 rows at steps 2**62 + i), each in its own folder's wandb/."""
    import subprocess
    import sys

    from tests.conftest import wandb_env

    base = tmp_path_factory.mktemp("resumed")
    procs = []
    for name in ("continued", "restarted", "big"):
        (base / name).mkdir()
        procs.append(subprocess.Popen([sys.executable, "-c", RESUMED_SCRIPT, name], cwd=base / name,
                                      env=wandb_env(base / name), stderr=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read()
    return {name: base / name / "wandb" for name in ("continued", "restarted", "big")}


@pytest.mark.slow  # the resumed_runs fixture: 3 wandb processes, 5 runs
def test_a_resumed_run_is_one_run_of_every_folder(resumed_runs, tmp_path):
    files = offline_run_files(resumed_runs["continued"])
    assert len(files) == 2 and files[0].parent.name < files[1].parent.name
    run = _one(resumed_runs["continued"])
    assert run.history["_step"].tolist() == list(range(60))
    assert run.history["loss"].tolist() == [s + 0.5 for s in range(60)]
    assert (run.meta["state"], run.meta["exit_code"]) == ("failed", 1)  # the newest part's
    assert run.config["learning_rate"] == 0.001 and run.summary["loss"] == 59.5
    first, newest = (read_offline_run(p) for p in files)
    # the oldest part's start (both parts may start within one second: <=)
    assert run.meta["created_at"] == first.meta["created_at"] <= newest.meta["created_at"]
    assert run.summary["_runtime"] == pytest.approx(first.summary["_runtime"] + newest.summary["_runtime"])
    snap = fetch_offline(resumed_runs["continued"], tmp_path / "snap", progress=False).snapshot
    assert snap.manifest["runs"]["res00001"]["history_rows"] == 60
    assert snap.runs()[["steps", "state", "learning_rate"]].values.tolist() == [[60, "failed", 0.001]]


@pytest.mark.slow  # the resumed_runs fixture: 3 wandb processes, 5 runs
def test_a_resume_that_counts_from_zero_replaces_and_says_so(resumed_runs, caplog):
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        run = _one(resumed_runs["restarted"])
    assert run.history["_step"].tolist() == list(range(10))
    newest = offline_run_files(resumed_runs["restarted"])[1].parent.name
    assert [r.getMessage().split(" --> ")[0] for r in caplog.records] == [
        f"run res00002: its resumed folder {newest} starts at step 0, so 30 rows that earlier "
        "folders logged at that step or later are replaced by its rows."]


def test_merge_takes_over_from_where_each_part_starts():
    import pandas as pd

    from altgrad_docs.runs import RunRecord
    from altgrad_docs.sources.offline_folders import merge_parts

    def part(steps, **summary):
        return RunRecord(meta={"run_id": "r", "created_at": f"t{steps[0]}"}, summary=summary,
                         history=pd.DataFrame({"_step": steps, "loss": [float(s) for s in steps]}))

    merged = merge_parts([part([0, 1, 2, 3], _runtime=2.0, a=1), part([2, 3, 4], b=2),
                          part([5, 6], _runtime=1.5, a=3)], ["p1", "p2", "p3"])
    assert merged.history["_step"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert merged.summary == {"a": 3, "b": 2, "_runtime": 3.5}
    assert merged.meta["created_at"] == "t0" and merged.history["_step"].dtype == "int64"


@pytest.mark.slow  # the resumed_runs fixture: 3 wandb processes, 5 runs
def test_steps_beyond_float_precision_stay_exact(resumed_runs, tmp_path):
    run = _one(resumed_runs["big"])
    assert run.history["_step"].tolist() == [2**62 + i for i in range(20)]
    snap = fetch_offline(resumed_runs["big"], tmp_path / "snap", progress=False).snapshot
    history = snap.history("big00001")
    assert history["_step"].tolist() == [2**62 + i for i in range(20)]
    assert snap.manifest["runs"]["big00001"]["history_rows"] == 20
    assert snap.runs().set_index("run_id").loc["big00001", "steps"] == 2**62 + 20  # exact, not through float


def _write_log(path, payloads):
    """A wandb run log of ``payloads`` (the LevelDB-style framing the reader undoes)."""
    from altgrad_docs.sources.offline import BLOCK_SIZE, CHUNK_HEADER

    out = bytearray(FILE_HEADER)
    for payload in payloads:
        first = True
        while True:
            room = BLOCK_SIZE - len(out) % BLOCK_SIZE
            if room < CHUNK_HEADER:
                out += b"\0" * room
                continue
            body, payload = payload[: room - CHUNK_HEADER], payload[room - CHUNK_HEADER:]
            kind = (1 if not payload else 2) if first else (4 if not payload else 3)
            out += struct.pack("<IHB", zlib.crc32(bytes([kind]) + body), len(body), kind) + body
            first = False
            if not payload:
                break
    path.write_bytes(bytes(out))


@pytest.mark.slow  # the resumed_runs fixture: 3 wandb processes, 5 runs
def test_a_step_no_int64_holds_drops_that_run_only(resumed_runs, tmp_path, caplog):
    """wandb itself refuses step=2**63, so the run log is rewritten: one row's _step of the
    real big-steps run becomes 2**63; the other run of the folder is still fetched."""
    from wandb.proto import wandb_internal_pb2

    wandb = tmp_path / "wandb"
    shutil.copytree(resumed_runs["big"], wandb)
    shutil.copytree(resumed_runs["continued"], wandb, dirs_exist_ok=True)
    source = offline_run_files(resumed_runs["big"])[0]
    payloads, changed = [], 0
    for raw in iter_record_bytes(source):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history" and not changed:
            for item in record.history.item:
                if (item.key or ".".join(item.nested_key)) == "_step":
                    item.value_json, changed = str(2**63), 1
        payloads.append(record.SerializeToString())
    assert changed
    _write_log(wandb / source.parent.name / source.name, payloads)
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        result = fetch_offline(wandb, tmp_path / "snap", progress=False)
    assert result.snapshot.run_ids == ["res00001"] and result.skipped == 1
    assert "big00001" in caplog.text and str(2**63) in caplog.text and "--> Do:" in caplog.text
