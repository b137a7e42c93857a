"""Outputs never replace what is not ours (issue #20): ``fetch --out`` and ``render --out``
refuse, before anything is written, a folder of the user's files, an input folder (equal,
inside, around, by a link), and a file; every user file is byte-identical afterwards. An OS
error while a snapshot is written (disk full, a read-only folder) is one line naming the
path, the cause and the fix, and the previous snapshot stays as it was.

The offline runs are the AltGrad trainer's own (``upstream_runs``: runner/wandb, 4 runs, 3
failure reports); the CLI runs in-process (``cli.main``) so that faults can be injected.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from altgrad_docs import cli, snapshot
from altgrad_docs.outdirs import foreign_to_snapshot


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links not followed) with its bytes; folders as b"/"."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        found[rel] = (b"link:" + str(path.readlink()).encode() if path.is_symlink()
                      else path.read_bytes() if path.is_file() else b"/")
    return found


@pytest.fixture
def runs(upstream_runs, tmp_path) -> Path:
    """A copy of the runner runs: ``tmp/work/wandb`` and ``tmp/work/checkpoints``."""
    work = tmp_path / "work"
    shutil.copytree(upstream_runs / "runner" / "wandb", work / "wandb")
    shutil.copytree(upstream_runs / "runner" / "checkpoints-runner", work / "checkpoints")
    return work


def _fetch(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["fetch", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("altgrad-docs: error:") and "--> Do:" in lines[0], lines[0]
    assert all(w in lines[0] for w in words), lines[0]


def test_a_folder_of_user_files_is_left_byte_identical(runs, tmp_path, capsys, monkeypatch):
    thesis = tmp_path / "thesis"
    (thesis / "figures").mkdir(parents=True)
    (thesis / "thesis.tex").write_text("\\documentclass{article}\n")
    (thesis / "figures" / "plot.pdf").write_bytes(b"%PDF-1.7\n\x00\xff")
    before, beside = _files(thesis), sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(runs)
    code, out, err = _fetch(capsys, "--offline-dir", "wandb", "--out", str(thesis))
    _refused(code, err, str(thesis), "not a snapshot", "no manifest.json", "new or empty folder")
    assert out == "" and _files(thesis) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == beside  # no temp folder either


@pytest.mark.parametrize("out, words", [
    ("wandb", ("is the --offline-dir folder itself",)),
    ("wandb/offline-run-x", ("is inside the --offline-dir folder wandb",)),
    (".", ("contains the --offline-dir folder wandb",)),
    ("checkpoints", ("is the --checkpoints folder itself",)),
    ("checkpoints/snap", ("is inside the --checkpoints folder",)),
    ("link-to-wandb", ("is the --offline-dir folder itself",)),
])
def test_an_input_is_never_the_output(runs, capsys, monkeypatch, out, words):
    (runs / "link-to-wandb").symlink_to(runs / "wandb")
    before = _files(runs)
    monkeypatch.chdir(runs)
    code, _, err = _fetch(capsys, "--offline-dir", "wandb", "--checkpoints", "checkpoints",
                          "--out", out)
    _refused(code, err, f"--out {out} ", *words)
    assert _files(runs) == before  # the offline runs (for unsynced runs the only copy)


def test_out_naming_a_file_leaves_the_file(runs, capsys):
    for out in (runs / "notes.txt", runs / "notes.txt" / "snap"):
        (runs / "notes.txt").write_bytes(b"my notes\n")
        before = _files(runs)
        code, _, err = _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(out))
        _refused(code, err, "notes.txt", "a file, not a folder")
        assert _files(runs) == before


def test_a_snapshot_with_a_user_file_in_it_is_refused(runs, tmp_path, capsys):
    snap = tmp_path / "snap"
    assert _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(snap))[0] == 0
    assert foreign_to_snapshot(snap) is None
    (snap / "thesis.tex").write_text("mine")
    before = _files(snap)
    code, _, err = _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(snap))
    _refused(code, err, "it holds thesis.tex, which no snapshot holds")
    assert _files(snap) == before


@pytest.mark.parametrize("make, why", [
    (lambda s: (s / "manifest.json").write_text("{}"), "is not a snapshot manifest"),
    (lambda s: (s / "manifest.json").write_text("not json"), "is not a snapshot manifest"),
    (lambda s: (s / "history" / "notes.md").write_text("x"), "history/ holds notes.md"),
    (lambda s: (s / "failure_reports" / "r" / "sub").mkdir(parents=True), "holds sub"),
    (lambda s: (s / "history" / "x.parquet").symlink_to(s / "runs.parquet"), "history/ holds x.parquet"),
])
def test_what_is_not_a_snapshot_is_named(tmp_path, make, why):
    snap = snapshot.write_snapshot([], tmp_path / "snap", source={"kind": "test"})
    assert foreign_to_snapshot(snap) is None
    make(snap)
    assert why in foreign_to_snapshot(snap)


def test_missing_empty_and_earlier_snapshot_are_written(runs, tmp_path, capsys):
    wandb = str(runs / "wandb")
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new" / "deeper" / "snap", empty):
        code, printed, err = _fetch(capsys, "--offline-dir", wandb, "--out", str(out))
        assert code == 0 and f"wrote {out}: 4 runs" in printed, err
    older = snapshot.write_snapshot([], tmp_path / "older", source={"kind": "earlier version"})
    assert _fetch(capsys, "--offline-dir", wandb, "--out", str(older))[0] == 0
    assert snapshot.open_snapshot(older).manifest["n_runs"] == 4


def test_render_refuses_files_inputs_and_user_folders(tmp_path, capsys, monkeypatch):
    """``render --out`` is checked before the (slow) render starts: nothing of the repo's is
    touched and no page is built."""
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "index.md").write_text("# hi\n")
    (repo / "mkdocs.yml").write_text("site_name: x\nextra:\n  altgrad:\n    snapshot: snaps/one\n")
    (repo / "snaps" / "one").mkdir(parents=True)
    (repo / "mine").mkdir()
    (repo / "mine" / "thesis.tex").write_text("mine")
    monkeypatch.chdir(repo)
    cases = {"docs": "is the docs folder itself", "docs/tree": "is inside the docs folder docs",
             ".": "contains the config file mkdocs.yml", "mkdocs.yml": "a file, not a folder",
             "snaps/one/tree": "is inside the snapshot", "snaps": "contains the snapshot",
             "mine": "holds no rendered tree"}
    before = _files(repo)
    for out, words in cases.items():
        code = cli.main(["render", "--out", out])
        err = capsys.readouterr().err
        _refused(code, err, words)
        assert _files(repo) == before


def test_disk_full_is_one_line_and_keeps_the_previous_snapshot(runs, tmp_path, capsys, monkeypatch):
    snap = tmp_path / "snap"
    assert _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(snap))[0] == 0
    before = _files(snap)
    real = snapshot._write_history

    def full(history, path):
        real(history, path)  # half a snapshot is on disk when the space runs out
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(snapshot, "_write_history", full)
    code, _, err = _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(snap))
    _refused(code, err, "No space left on device", f"previous snapshot at {snap} is unchanged",
             "free space on the disk that holds", ".parquet")
    assert _files(snap) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap", "work"]  # no temp folder


@pytest.mark.parametrize("where", ["make_owned_dir", "swap"])
def test_a_read_only_output_folder_is_one_line(runs, tmp_path, capsys, monkeypatch, where):
    """The tests run as root, for whom chmod does not protect: the refusal the kernel would
    give (EROFS, EACCES) is raised where it would come: making the temp folder beside the
    snapshot, or the rename that swaps the new snapshot in."""
    snap = tmp_path / "snap"
    assert _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(snap))[0] == 0
    before = _files(snap)
    if where == "make_owned_dir":
        def refuse(folder, prefix):
            raise OSError(errno.EROFS, "Read-only file system", str(folder))
        monkeypatch.setattr(snapshot, "make_owned_dir", refuse)
        fix = "a disk that is not mounted read-only"
    else:
        real, calls = snapshot.os.replace, []

        def replace(src, dst):
            calls.append(dst)
            if len(calls) == 2:  # the previous snapshot is aside, the new one not yet in
                raise PermissionError(errno.EACCES, "Permission denied", str(dst))
            return real(src, dst)
        monkeypatch.setattr(snapshot.os, "replace", replace)
        fix = "writable for you"
    code, _, err = _fetch(capsys, "--offline-dir", str(runs / "wandb"), "--out", str(snap))
    _refused(code, err, str(tmp_path), "is unchanged", fix)
    monkeypatch.undo()
    assert _files(snap) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap", "work"]  # no temp folder


def test_a_wandb_fetch_is_refused_before_it_connects(tmp_path, capsys, monkeypatch):
    """The same checks for ``fetch --project``, made before wandb is asked anything (the
    base URL is a closed port: a connection attempt would fail differently)."""
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("mine")
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    before = _files(tmp_path)
    for out, words in ((thesis, "not a snapshot"), (checkpoints, "is the --checkpoints folder itself")):
        code, _, err = _fetch(capsys, "--project", "e/p", "--checkpoints", str(checkpoints), "--out", str(out))
        _refused(code, err, words)
    assert _files(tmp_path) == before
