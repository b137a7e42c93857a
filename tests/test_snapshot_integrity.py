"""A snapshot is what its manifest says, or it is not read (issue #20).

Table-driven: each case edits a freshly written snapshot as a user, a sync tool or a broken
disk may, then reads all of it (open, verify, run table, every history, every report) and
expects one :class:`SnapshotError` line naming the file, the cause and a "--> Do:" fix. Then
the schema versions (an older snapshot migrated, a newer one refused), the per-process digest
cache, case-insensitive file names, and real ``mkdocs build --strict`` runs that stop with
one line instead of a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from altgrad_docs import snapshot_files
from altgrad_docs.runs import RUN_COLUMNS, SCHEMA_VERSION, RunRecord, path_slug
from altgrad_docs.snapshot import (SnapshotError, content_hash, open_snapshot, source_date, upgrade_snapshot,
                                   write_snapshot)
from tests.site_fixtures import REPO, mkdocs_env
from tests.snapshot_edits import manifest_of, relist, write_manifest

FETCHED_AT = "2026-01-15T12:00:00+00:00"
RUN_IDS = ("run00001", "run00002", "AbCdEf12", "abcdef12")


def _records() -> list[RunRecord]:
    records = []
    for i, run_id in enumerate(RUN_IDS):
        history = pd.DataFrame({"_step": np.arange(40), "loss": np.linspace(5.0, 2.0, 40) + i})
        records.append(RunRecord(meta={"run_id": run_id, "name": f"run {i}", "state": "finished"},
                                 config={"use_fp8": True, "fp8_format": "E5M2", "seed": i},
                                 summary={"loss": 2.0 + i, "_step": 39}, history=history))
    return records


@pytest.fixture
def snap(tmp_path) -> Path:
    report = tmp_path / "E5M2_failure_report.md"
    report.write_text("# Failure Report\n\nloss went NaN\n")
    return write_snapshot(_records(), tmp_path / "snapshot", source={"kind": "offline", "path": "wandb"},
                          fetched_at=FETCHED_AT, failure_reports={"run00002": [report]})


def read_everything(path: Path) -> None:
    snapshot = open_snapshot(path)
    snapshot.verify()
    snapshot.runs()
    for run_id in snapshot.run_ids:
        snapshot.history(run_id, ["loss"])
        snapshot.history_keys(run_id)
        snapshot.failure_reports(run_id)


def _rewrite_parquet(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    pq.write_table(pa.Table.from_pandas(edit(pq.read_table(path).to_pandas()), preserve_index=False), path)


def _set(frame: pd.DataFrame, column: str, value) -> pd.DataFrame:
    frame.loc[frame.index[-1], column] = value
    return frame


def _edit_manifest(**changes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        write_manifest(path, {**manifest_of(path), **changes})
    return edit


def _truncate(rel: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        data = (path / rel).read_bytes()
        (path / rel).write_bytes(data[: len(data) // 2])
    return edit


def _then_relist(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """The edit, and a manifest that lists the result (so the file's own check passes)."""
    def both(path: Path) -> None:
        edit(path)
        relist(path)
    return both


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Path], None]
    expect: str  # in the one error line
    names: str = ""  # the file the line must name


H1 = "history/run00001.parquet"
CASES = [
    Case("history-changed", lambda p: _rewrite_parquet(p / H1, lambda f: _set(f, "loss", 0.5)),
         "is not the file the snapshot was written with", H1),
    Case("runs-changed", lambda p: _rewrite_parquet(p / "runs.parquet", lambda f: _set(f, "final_loss", 0.5)),
         "is not the file the snapshot was written with", "runs.parquet"),
    Case("report-changed", lambda p: next((p / "failure_reports").rglob("*.md")).write_text("# edited\n"),
         "is not the file the snapshot was written with", "failure_reports/run00002/E5M2_failure_report.md"),
    Case("sha256-zeros", _edit_manifest(sha256="0" * 64), "is not the digest of the files it lists",
         "manifest.json"),
    Case("sha256-not-hex", _edit_manifest(sha256="abc"), "sha256 is not a sha256", "manifest.json"),
    Case("history-truncated", _truncate(H1), "cut short", H1),
    Case("history-truncated-and-listed", _then_relist(_truncate(H1)), "is not a readable Parquet file", H1),
    Case("runs-truncated-and-listed", _then_relist(_truncate("runs.parquet")), "is not a readable Parquet file",
         "runs.parquet"),
    Case("history-deleted", lambda p: (p / H1).unlink(), "is missing", H1),
    Case("history-a-folder", lambda p: ((p / H1).unlink(), (p / H1).mkdir()), "cannot be read", H1),
    Case("fetched-at-not-a-date", _edit_manifest(fetched_at="last tuesday"),
         "fetched_at 'last tuesday' is not a date", "manifest.json"),
    Case("runs-missing-columns", _then_relist(lambda p: _rewrite_parquet(
        p / "runs.parquet", lambda f: f.drop(columns=["steps", "final_loss"]))),
         "lacks the column(s) steps, final_loss", "runs.parquet"),
    Case("manifest-not-json", lambda p: (p / "manifest.json").write_text("{\"runs\": "), "is not valid JSON",
         "manifest.json"),
    Case("manifest-not-utf8", lambda p: (p / "manifest.json").write_bytes(b"\xff\xfe{}"), "is not valid JSON",
         "manifest.json"),
    Case("manifest-a-list", lambda p: (p / "manifest.json").write_text("[]"), "is not a JSON object",
         "manifest.json"),
    Case("schema-newer", _edit_manifest(schema_version=SCHEMA_VERSION + 1), "newer than this altgrad-docs reads",
         "snapshot"),
    Case("schema-missing", _edit_manifest(schema_version=None), "schema version None", "snapshot"),
    Case("file-outside", _edit_manifest(files={"../secret.parquet": "0" * 64}), "outside the snapshot folder",
         "manifest.json"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_snapshot_is_one_line_with_a_fix(case: Case, snap: Path):
    case.edit(snap)
    with pytest.raises(SnapshotError) as info:
        read_everything(snap)
    message = str(info.value)
    assert case.expect in message
    assert str(snap / case.names) in message or (case.names == "snapshot" and str(snap) in message)
    assert "\n" not in message and "--> Do:" in message
    if case.id not in ("manifest-not-json", "manifest-not-utf8", "manifest-a-list"):  # source unknown then
        assert f"altgrad-docs fetch --offline-dir wandb --out {snap}" in message


def test_unchanged_snapshot_reads_and_its_hash_is_its_files(snap: Path):
    read_everything(snap)
    snapshot = open_snapshot(snap)
    assert snapshot.sha256 == content_hash(snap) == manifest_of(snap)["sha256"]
    assert set(manifest_of(snap)["files"]) == {p.relative_to(snap).as_posix() for p in snap.rglob("*")
                                               if p.is_file() and p.name != "manifest.json"}


def test_a_file_not_listed_is_not_read(snap: Path):
    """A report dropped into the folder later is not published (the manifest does not list it)."""
    (snap / "failure_reports" / "run00001").mkdir()
    (snap / "failure_reports" / "run00001" / "planted.md").write_text("# planted\n")
    snapshot = open_snapshot(snap)
    snapshot.verify()
    assert snapshot.failure_reports("run00001") == []
    assert [p.name for p in snapshot.failure_reports("run00002")] == ["E5M2_failure_report.md"]


def test_digest_is_kept_while_the_file_stays_the_same(snap: Path, monkeypatch):
    snapshot = open_snapshot(snap)
    snapshot.verify()
    monkeypatch.setattr(snapshot_files.hashlib, "sha256", lambda *a: pytest.fail("hashed again"))
    snapshot.verify()  # a reload: a stat per file, nothing read
    snapshot.history("run00001", ["loss"])
    monkeypatch.undo()
    # same size, same mtime, other bytes: the ctime still tells
    path = snap / H1
    stat, data = path.stat(), bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(SnapshotError, match="is not the file the snapshot was written with"):
        open_snapshot(snap).verify()


def test_source_date_epoch_not_a_number_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "abc")
    with pytest.raises(SnapshotError, match=r"SOURCE_DATE_EPOCH='abc' is not a time .* --> Do: unset it"):
        write_snapshot(_records()[:1], tmp_path / "s", source={"kind": "test"})
    assert not (tmp_path / "s").exists()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_date() == "2023-11-14T22:13:20+00:00"


# ---- schema versions --------------------------------------------------------------------
def _as_schema_1(path: Path, steps_shift: int) -> None:
    """Rewrite a snapshot as the first writers left it: no files list, no slugs, files named
    by the plain run id (AbCdEf12.parquet), version 1, ``steps`` ``steps_shift`` from today's
    meaning (-1: before commit e4b0bcf)."""
    _rewrite_parquet(path / "runs.parquet", lambda f: f.assign(steps=f["steps"] + steps_shift))
    manifest = manifest_of(path)
    manifest.pop("files")
    for run_id, entry in manifest["runs"].items():
        slug = entry.pop("slug")
        (path / "history" / f"{slug}.parquet").rename(path / "history" / f"{run_id}.parquet")
        if (path / "failure_reports" / slug).is_dir():
            (path / "failure_reports" / slug).rename(path / "failure_reports" / run_id)
    write_manifest(path, {**manifest, "schema_version": 1, "sha256": content_hash(path)})


@pytest.mark.parametrize("shift", [-1, 0])
def test_schema_1_is_read_with_steps_counted_again_and_upgraded(snap: Path, shift: int, caplog):
    expected = open_snapshot(snap).runs()
    _as_schema_1(snap, shift)
    old = open_snapshot(snap)
    assert old.version == 1
    with caplog.at_level("INFO", logger="mkdocs.plugins.altgrad"):
        got = old.runs()
    assert got["steps"].tolist() == [40] * len(RUN_IDS) == expected["steps"].tolist()
    assert "altgrad-docs snapshot upgrade" in caplog.text
    assert [p.name for p in old.failure_reports("run00002")] == ["E5M2_failure_report.md"]
    assert old.history("AbCdEf12", ["loss"])["loss"].iloc[0] == 7.0  # found by its hash
    before, new = upgrade_snapshot(snap)
    assert (before, new.version, manifest_of(snap)["schema_version"]) == (1, SCHEMA_VERSION, SCHEMA_VERSION)
    read_everything(snap)
    pd.testing.assert_frame_equal(new.runs(), expected)
    assert (new.sha256 == old.sha256) is (shift == 0)  # the run table is written again only if it changed


def test_schema_2_gets_each_runs_program_from_its_log_and_upgrades(tmp_path):
    """Schema 3 added the run table's program (the script that made the run): an older
    snapshot's comes from the environment in its logs/ (none there: unknown)."""
    records = _records()[:3]
    records[0].meta["run_log"] = {"environment": {"program": "/srv/altgrad/experiments/run_experiment.py"}}
    records[1].meta["run_log"] = {"environment": {"program": "tools/run_format_runner.py"}}
    path = write_snapshot(records, tmp_path / "s", source={"kind": "test"}, fetched_at=FETCHED_AT)
    expected = open_snapshot(path).runs()
    program = expected.set_index("run_id")["program"]
    ids = [r.run_id for r in records]
    assert program[ids[:2]].tolist() == ["run_experiment.py", "run_format_runner.py"] and program.isna()[ids[2]]
    _rewrite_parquet(path / "runs.parquet", lambda f: f.drop(columns="program"))
    manifest = manifest_of(path)
    manifest["files"]["runs.parquet"] = snapshot_files.sha256_file(path / "runs.parquet")
    write_manifest(path, {**manifest, "schema_version": 2, "sha256": snapshot_files.files_digest(manifest["files"])})
    old = open_snapshot(path)
    assert old.version == 2
    pd.testing.assert_frame_equal(old.runs(), expected)
    assert upgrade_snapshot(path)[0] == 2 and open_snapshot(path).version == SCHEMA_VERSION == 3
    pd.testing.assert_frame_equal(open_snapshot(path).runs(), expected)


def test_schema_1_seeds_and_formats_are_read_by_meaning(tmp_path):
    """Schema 1 stored seed 42 for a config without seed: read now as no seed (runs.renormalize)."""
    records = _records()[:2]
    del records[0].config["seed"]
    path = write_snapshot(records, tmp_path / "s", source={"kind": "test"}, fetched_at=FETCHED_AT)
    _rewrite_parquet(path / "runs.parquet", lambda f: f.assign(seed=f["seed"].fillna(42)))
    _as_schema_1(path, 0)
    assert open_snapshot(path).runs().set_index("run_id")["seed"].isna().tolist() == [True, False]


def test_schema_1_reads_beside_a_killed_restamp(snap: Path):
    _as_schema_1(snap, 0)
    (snap / ".manifest.json.tmp-4242").write_text("{")  # a restamp killed before its rename
    read_everything(snap)


def test_schema_1_with_a_changed_file_is_refused(snap: Path):
    _as_schema_1(snap, 0)
    _rewrite_parquet(snap / H1, lambda f: _set(f, "loss", 0.5))
    with pytest.raises(SnapshotError, match=r"\(schema 1\) is not what its manifest says.*--> Do: re-fetch it"):
        read_everything(snap)


def test_bundled_snapshot_reads_checked_with_every_column():
    """data/bundled keeps its files (and sha256) from before the run table grew columns: it
    is read through the migration, every file checked."""
    snapshot = open_snapshot(REPO / "data" / "bundled")
    snapshot.verify()
    runs = snapshot.runs()
    assert list(runs.columns)[:len(RUN_COLUMNS)] == list(RUN_COLUMNS) and len(runs) == 288
    assert snapshot.sha256 == manifest_of(REPO / "data" / "bundled")["sha256"]


# ---- names without regard to case --------------------------------------------------------
def test_ids_that_differ_only_in_case_get_distinct_names(snap: Path):
    names = [p.name.lower() for p in (snap / "history").iterdir()]
    assert len(set(names)) == len(names) == len(RUN_IDS)
    assert path_slug("abcdef12") == "abcdef12" and path_slug("AbCdEf12").lower() != "abcdef12"
    snapshot = open_snapshot(snap)
    assert snapshot.history("AbCdEf12", ["loss"])["loss"].iloc[0] == 7.0
    assert snapshot.history("abcdef12", ["loss"])["loss"].iloc[0] == 8.0


# ---- real builds: one line, no traceback ---------------------------------------------------
BUILD_CASES = {
    "history-changed": (lambda p: _rewrite_parquet(p / H1, lambda f: _set(f, "loss", 0.5)), {},
                        "is not the file the snapshot was written with"),
    "source-date-epoch": (lambda p: None, {"SOURCE_DATE_EPOCH": "abc"}, "SOURCE_DATE_EPOCH='abc'"),
    "runs-cut-and-listed": (_then_relist(_truncate("runs.parquet")), {}, "is not a readable Parquet file"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILD_CASES))
def test_strict_build_stops_with_one_line(name: str, snap: Path, tmp_path):
    edit, env, expect = BUILD_CASES[name]
    edit(snap)
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(cmd, cwd=REPO, env={**mkdocs_env(snap, tmp_path / "cache"), **env},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and expect in errors[0] and "--> Do:" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


# ---- the fix the error names works: a re-fetch never keeps a changed file ------------------
@pytest.mark.slow
def test_refetch_replaces_a_changed_file_instead_of_reusing_it(live_wandb, tmp_path):
    from altgrad_docs.fetch import fetch_project
    from benchmarks.synthetic import synthetic_records
    from tests.fake_wandb import ENTITY

    records = list(synthetic_records(3, 20, 4, np.random.default_rng(0), entity=ENTITY))
    live_wandb.set_runs(records)
    first = fetch_project(f"{ENTITY}/altgrad", tmp_path / "snap", progress=False)
    _rewrite_parquet(first.snapshot.history_path(records[0].run_id), lambda f: _set(f, "loss", 0.5))
    with pytest.raises(SnapshotError, match="is not the file the snapshot was written with"):
        read_everything(tmp_path / "snap")
    again = fetch_project(f"{ENTITY}/altgrad", tmp_path / "snap", progress=False)
    assert (again.fetched, again.reused, again.changed) == (3, 0, True)
    read_everything(tmp_path / "snap")
    assert again.snapshot.sha256 == first.snapshot.sha256


def test_cli_upgrades_and_infos_a_schema_1_snapshot(snap: Path, capsys):
    from altgrad_docs.cli import main

    _as_schema_1(snap, -1)
    assert main(["snapshot", "info", str(snap)]) == 0
    assert f"schema     1 (this version writes {SCHEMA_VERSION}: snapshot upgrade)" in capsys.readouterr().out
    assert main(["snapshot", "upgrade", str(snap)]) == 0
    assert f"schema 1 -> {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["snapshot", "info", str(snap)]) == 0
    assert f"schema     {SCHEMA_VERSION}\n" in capsys.readouterr().out
    _rewrite_parquet(snap / H1, lambda f: _set(f, "loss", 0.5))
    assert main(["snapshot", "info", str(snap)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not the file the snapshot was written with" in err


def test_a_refresh_from_a_schema_1_snapshot_judges_reused_runs_by_their_real_history(snap: Path):
    """A W&B snapshot written before the run facts: a reused run's stand-in history read the
    empty facts as a NaN last loss and stamped finished runs "failed: NaN loss"."""
    from altgrad_docs.fetch import FACT_COLUMNS, _stand_in_histories
    from altgrad_docs.runs import run_row

    newer = ["status_reason", "status_signals", "exit_code", "alerts", "nonfinite_step", *FACT_COLUMNS]
    _rewrite_parquet(snap / "runs.parquet", lambda f: f.drop(columns=[c for c in newer if c in f and c != "best_loss"]))
    _as_schema_1(snap, 0)
    reused = [RunRecord(meta={"run_id": r.run_id, "state": "finished"}, config=r.config, summary=r.summary,
                        history=None) for r in _records()]
    _stand_in_histories(reused, open_snapshot(snap))
    assert {run_row(r)["status"] for r in reused} == {"finished"}
    assert [run_row(r)["steps"] for r in reused] == [40] * len(reused)
