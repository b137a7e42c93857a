"""Temp folders named by their pid: removed by the next run once their process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from altgrad_docs.snapshot import clean_leftovers, open_snapshot, write_snapshot
from altgrad_docs.tempdirs import owner_pid, private_tmpdir, remove_stale
from tests.site_fixtures import fixture_records


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_owner_pid():
    assert owner_pid(".snap.tmp-123-abc", ".snap.tmp-") == 123
    assert owner_pid(".snap.old-123", ".snap.old-") == 123
    assert owner_pid(".snap.tmp-abc", ".snap.tmp-") is None
    assert owner_pid("other", ".snap.tmp-") is None


def test_remove_stale_keeps_live_and_foreign_entries(tmp_path):
    dead = _dead_pid()
    for name in (f".s.tmp-{dead}-x", f".s.tmp-{os.getpid()}-y", f".s.tmp-{os.getppid()}-z", ".s.tmp-nopid", "s"):
        (tmp_path / name).mkdir()
    removed = sorted(p.name for p in remove_stale(tmp_path, ".s.tmp-"))
    assert removed == [f".s.tmp-{dead}-x", ".s.tmp-nopid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".s.tmp-{os.getpid()}-y", f".s.tmp-{os.getppid()}-z", "s"])


def test_next_write_cleans_a_killed_writers_folder_and_restores_a_killed_swap(tmp_path):
    out = write_snapshot(fixture_records()[:2], tmp_path / "snap", source={"kind": "x"})
    sha = open_snapshot(out).sha256
    dead = _dead_pid()
    (tmp_path / f".snap.tmp-{dead}-abcd").mkdir()
    os.replace(out, tmp_path / f".snap.old-{dead}")  # killed between the two renames
    clean_leftovers(out)
    assert open_snapshot(out).sha256 == sha
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def test_private_tmpdir_is_removed_however_the_block_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    (tmp_path / f"altgrad-fetch-{_dead_pid()}-old").mkdir()  # a SIGKILLed fetch's
    try:
        with private_tmpdir() as path:
            assert os.environ["TMPDIR"] == str(path) and tempfile.gettempdir() == str(path)
            (path / "tmpxyzwandb-media").mkdir()
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert os.environ["TMPDIR"] == str(tmp_path) and list(tmp_path.iterdir()) == []
