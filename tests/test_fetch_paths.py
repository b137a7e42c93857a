"""Paths as the user typed them (issue #20): the README's offline commands, verbatim, from a
folder that is not the repository; every path option relative (from the folder, from a
sibling) and absolute; and a fetch that finds runs it cannot read, or none where there are
run folders, fails with one line instead of writing an empty snapshot.

The runs are the AltGrad trainer's own (``upstream_runs``: runner/wandb, 4 runs of one
history row each), with a failure report in ``checkpoints/<name>-<run id>/failure_reports``.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from altgrad_docs import cli
from altgrad_docs.snapshot import open_snapshot, write_snapshot
from tests.conftest import ROOT

RUN_IDS = ["gy9dapiz", "kag70y9k", "lrbxztvi", "zce8j3nj"]
REPORT = "# Failure Report: E7M0 Experiment\n"


def _readme_commands(prefix: str) -> list[list[str]]:
    """The README's command lines that start with ``prefix``, split as a shell would."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    found = [shlex.split(line, comments=True) for line in lines if line.startswith(prefix)]
    assert found, f"the README has no `{prefix}` line"
    return found


@pytest.fixture
def work(upstream_runs, tmp_path) -> Path:
    """A researcher's folder as the README assumes it: ``wandb/`` and ``checkpoints/``."""
    work = tmp_path / "work"
    shutil.copytree(upstream_runs / "runner" / "wandb", work / "wandb")
    reports = work / "checkpoints" / f"runner-e7m0-adamw-lr10-s42-{RUN_IDS[2]}" / "failure_reports"
    reports.mkdir(parents=True)
    (reports / "E7M0_20261206_045516_failure_report.md").write_text(REPORT)
    return work


def _reports(snap) -> int:
    return sum(len(snap.failure_reports(r)) for r in snap.run_ids)


def _snapshot_of(folder: Path) -> tuple[list[str], int, int]:
    snap = open_snapshot(folder)
    return sorted(snap.run_ids), sum(e["history_rows"] for e in snap.manifest["runs"].values()), _reports(snap)


def test_readme_offline_commands_verbatim_outside_the_repository(work):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env["PYTHONPATH"] = str(ROOT)
    fetch, = _readme_commands("altgrad-docs fetch --offline-dir")
    info, = _readme_commands("altgrad-docs snapshot info")
    assert fetch[0] == "altgrad-docs" and not Path(fetch[fetch.index("--out") + 1]).is_absolute()
    for args in (fetch, info):
        done = subprocess.run([sys.executable, "-m", "altgrad_docs.cli", *args[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    out = work / fetch[fetch.index("--out") + 1]
    assert _snapshot_of(out) == (RUN_IDS, 4, 1)
    assert "runs       4 (" in done.stdout


@pytest.mark.parametrize("where", ["inside", "sibling", "absolute", "dotted"])
def test_every_path_option_relative_or_absolute(work, tmp_path, capsys, monkeypatch, where):
    sibling = tmp_path / "elsewhere"
    sibling.mkdir()
    wandb, checkpoints, out = {
        "inside": ("wandb", "checkpoints", "snap"),
        "sibling": ("../work/wandb", "../work/checkpoints", "../work/snap"),
        "absolute": (str(work / "wandb"), str(work / "checkpoints"), str(work / "snap")),
        "dotted": ("./wandb/", "./checkpoints/.", "./out/../snap"),
    }[where]
    monkeypatch.chdir(sibling if where == "sibling" else work)
    code = cli.main(["fetch", "--offline-dir", wandb, "--checkpoints", checkpoints, "--out", out])
    printed, err = capsys.readouterr()
    assert code == 0 and err == "" and "4 runs" in printed, err
    assert _snapshot_of(work / "snap") == (RUN_IDS, 4, 1)
    assert open_snapshot(work / "snap").manifest["source"] == {
        "kind": "offline", "path": "wandb", "checkpoints": "checkpoints"}


def test_the_folder_above_wandb_works_too(work, capsys, monkeypatch):
    monkeypatch.chdir(work.parent)
    assert cli.main(["fetch", "--offline-dir", "work", "--out", "snap"]) == 0
    assert _snapshot_of(work.parent / "snap")[:2] == (RUN_IDS, 4)
    assert open_snapshot(work.parent / "snap").manifest["source"]["path"] == "wandb"


def _junk_runs(wandb: Path, n: int, body: bytes | None) -> None:
    for i in range(n):
        folder = wandb / f"offline-run-20260101_00000{i}-junk{i}"
        folder.mkdir(parents=True)
        if body is not None:
            (folder / f"run-junk{i}.wandb").write_bytes(body)


@pytest.mark.parametrize("make, words", [
    (lambda w: _junk_runs(w, 2, b"not a run log"), ("none of the 2 offline runs", "not a wandb run log")),
    (lambda w: _junk_runs(w, 2, None), ("none of the 2 offline-run folders", "it holds no run-*.wandb")),
    (lambda w: (w / "run-20260101_000000-abc").mkdir(parents=True), ("logged online", "--project")),
    (lambda w: w.mkdir(), ("it holds no offline-run-* folder",)),
    (lambda w: None, ("does not exist",)),
])
def test_nothing_readable_fails_and_keeps_the_previous_snapshot(tmp_path, capsys, make, words):
    wandb, snap = tmp_path / "wandb", tmp_path / "snap"
    make(wandb)
    write_snapshot([], snap, source={"kind": "earlier"})
    before = {p.name: p.read_bytes() for p in snap.iterdir() if p.is_file()}
    code = cli.main(["fetch", "--offline-dir", str(wandb), "--out", str(snap)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--> Do:" in lines[-1], lines
    assert all(w in lines[-1] for w in words), lines[-1]
    assert {p.name: p.read_bytes() for p in snap.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["snap", *(["wandb"] if wandb.exists() else [])])


def test_some_unreadable_runs_are_left_out_by_name(work, capsys, caplog):
    _junk_runs(work / "wandb", 1, b"not a run log")
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        code = cli.main(["fetch", "--offline-dir", str(work / "wandb"), "--out", str(work / "snap")])
    printed = capsys.readouterr().out
    assert code == 0 and "4 runs" in printed and "1 left out" in printed
    assert [r.getMessage()[:34] for r in caplog.records] == ["skipped run junk0: " + str(work)[:15]]
    assert "not a wandb run log" in caplog.text and "--> Do:" in caplog.text
    assert _snapshot_of(work / "snap")[0] == RUN_IDS


def test_a_misspelt_checkpoints_folder_is_an_error(work, capsys):
    code = cli.main(["fetch", "--offline-dir", str(work / "wandb"), "--checkpoints",
                     str(work / "checkpoint"), "--out", str(work / "snap")])
    err = capsys.readouterr().err
    assert code == 2 and "--checkpoints" in err and "does not exist" in err and "--> Do:" in err
    assert not (work / "snap").exists()


def test_a_run_id_in_two_unrelated_folders_is_an_error_with_its_fix(work, capsys):
    """A run folder copied under another run's name (its file renamed): the run record
    inside still names the first id. Not a resume (the folders' ids differ), so the fetch
    stops, naming both folders and what to do; the previous snapshot stays."""
    source = next((work / "wandb").glob(f"offline-run-*-{RUN_IDS[0]}"))
    copy = work / "wandb" / "offline-run-20991231_235959-copy0001"
    copy.mkdir()
    shutil.copyfile(source / f"run-{RUN_IDS[0]}.wandb", copy / "run-copy0001.wandb")
    write_snapshot([], work / "snap", source={"kind": "earlier"})
    before = (work / "snap" / "manifest.json").read_bytes()
    code = cli.main(["fetch", "--offline-dir", str(work / "wandb"), "--out", str(work / "snap")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert f"run {RUN_IDS[0]} is logged in {copy.name} and in {source.name}" in lines[0]
    assert "--> Do: move the copy you do not want out of" in lines[0]
    assert (work / "snap" / "manifest.json").read_bytes() == before


def test_render_without_a_config_here_is_one_line_and_writes_nothing(tmp_path):
    """``render`` run outside the site's folder without ``-f``: one line naming the file and
    the folder it was looked for in, before ``--out`` is made (it was a traceback after)."""
    done = subprocess.run([sys.executable, "-m", "altgrad_docs.cli", "render", "--out", "tree"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"mkdocs.yml: no such file in {tmp_path}" in done.stderr and "--> Do:" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_folder_above_wandb_may_hold_the_snapshot(work, capsys, monkeypatch):
    """``--offline-dir .`` in the project folder reads ``./wandb``: a snapshot beside it is
    not inside the input (one inside ``wandb/`` still is)."""
    monkeypatch.chdir(work)
    assert cli.main(["fetch", "--offline-dir", ".", "--out", "data/snapshot"]) == 0
    assert _snapshot_of(work / "data" / "snapshot")[:2] == (RUN_IDS, 4)
    assert cli.main(["fetch", "--offline-dir", ".", "--out", "wandb/snap"]) == 2
    assert "is inside the --offline-dir folder wandb" in capsys.readouterr().err


def test_a_checkpoints_folder_with_no_report_of_these_runs_is_said(work, tmp_path, capsys, caplog):
    other = tmp_path / "other-study"
    (other / "run-zzz99999" / "failure_reports").mkdir(parents=True)
    (other / "run-zzz99999" / "failure_reports" / "a_failure_report.md").write_text(REPORT)
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        code = cli.main(["fetch", "--offline-dir", str(work / "wandb"), "--checkpoints", str(other),
                         "--out", str(work / "snap")])
    assert code == 0 and "4 runs" in capsys.readouterr().out
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"--checkpoints {other} holds no failure report of any of the 4 runs"]


@pytest.mark.parametrize("epoch", ["abc", "1e30", "99999999999999999999"])
def test_a_source_date_epoch_that_is_no_time_is_one_line(work, capsys, monkeypatch, epoch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    code = cli.main(["fetch", "--offline-dir", str(work / "wandb"), "--out", str(work / "snap")])
    err = capsys.readouterr().err
    assert code == 2 and f"SOURCE_DATE_EPOCH={epoch!r} is not a time" in err and "--> Do:" in err
    assert not (work / "snap").exists()
