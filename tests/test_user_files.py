"""Reading user files through one gate (issue #12): no symlink, nothing outside the folder,
regular files only; text decoded strictly, with a note on the page for what is not shown."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from altgrad_docs.analysis.failure_reports import BrokenReport, parse_failure_report, read_failure_reports
from altgrad_docs.site import pipeline
from altgrad_docs.site.render import make_environment
from altgrad_docs.snapshot import SnapshotError, open_snapshot, write_snapshot
from tests.snapshot_edits import relist
from altgrad_docs.sources.offline import find_failure_reports, offline_run_files
from altgrad_docs.userfiles import (
    RefusedFile, check_user_file, copy_user_file, decode_text, read_user_bytes, read_user_text,
)
from tests.site_fixtures import FAILED_RUN_ID, FAILURE_REPORT, FETCHED_AT, REPO, fixture_records, mkdocs_env

SECRET = "TOP-SECRET-not-for-publishing"


@pytest.fixture
def tree(tmp_path):
    """root/ with a report, a symlink to a secret outside, a symlinked folder and a FIFO."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.md").write_text(SECRET)
    (root / "ok.md").write_text(FAILURE_REPORT)
    (root / "link.md").symlink_to(outside / "secret.md")
    (root / "linked").symlink_to(outside)
    os.mkfifo(root / "fifo.md")
    return root


@pytest.mark.parametrize("name, reason", [
    ("link.md", "symbolic link"), ("linked/secret.md", "symbolic link"), ("../outside/secret.md", "outside"),
    ("fifo.md", "not a regular file"), ("sub", "not a regular file"), ("gone.md", "no such file"),
])
def test_refused(tree, name, reason):
    with pytest.raises(RefusedFile, match=reason):
        check_user_file(tree / name, tree)
    with pytest.raises(RefusedFile):
        read_user_bytes(tree / name, tree)
    found = read_user_text(tree / name, tree)
    assert found.problems == ("refused",) and found.text == "" and reason in found.detail
    assert str(tree) not in found.detail  # a page must not show local paths


def test_regular_file_is_read_and_a_symlinked_root_is_allowed(tree, tmp_path, monkeypatch):
    assert read_user_bytes(tree / "ok.md", tree) == FAILURE_REPORT.encode()
    monkeypatch.chdir(tree.parent)  # relative paths are the working folder's, as typed
    assert read_user_bytes(Path(tree.name) / "ok.md", tree.name) == FAILURE_REPORT.encode()
    monkeypatch.chdir(tree)
    assert read_user_bytes("ok.md", ".") == FAILURE_REPORT.encode()
    (tmp_path / "root-link").symlink_to(tree)
    assert read_user_text(tmp_path / "root-link" / "ok.md", tmp_path / "root-link").problems == ()
    copy_user_file(tree / "ok.md", tree, tmp_path / "copy.md")
    assert (tmp_path / "copy.md").read_text() == FAILURE_REPORT
    with pytest.raises(RefusedFile):
        copy_user_file(tree / "link.md", tree, tmp_path / "copy2.md")


@pytest.mark.parametrize("data, limit, text, problems", [
    (b"plain\r\ntext\n", 100, "plain\ntext\n", ()),
    (b"\x89PNG\r\n\x1a\n\0\0", 100, "", ("binary",)),
    ("Expérience".encode("latin-1"), 100, "", ("not_utf8",)),
    ("ab\u00e9".encode()[:-1], 100, "ab", ("truncated",)),   # cut inside a character
    ("a\u00e9" * 10, 5, "a\u00e9a", ("huge",)),             # 5 bytes kept, the last char cut
    ("bell\x07 esc\x1b[31m", 100, "bell\ufffd esc\ufffd[31m", ("control",)),
])
def test_decode_text(data, limit, text, problems):
    data = data.encode() if isinstance(data, str) else data
    found = decode_text("r.md", data, len(data), limit)
    assert (found.text, found.problems) == (text, problems)


def test_not_utf8_detail_names_the_byte():
    assert decode_text("r.md", b"ok \xff", 4).detail == "invalid start byte at byte 3"


def test_failure_report_parser_refuses_a_symlink(tree, caplog):
    with pytest.raises(BrokenReport, match="refused"):
        parse_failure_report(tree / "link.md")
    assert parse_failure_report(tree / "ok.md")["collapse_step"] == 30
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        assert len(read_failure_reports([tree / "ok.md", tree / "link.md", tree / "fifo.md"], root=tree)) == 1
    assert len(caplog.records) == 2 and SECRET not in caplog.text


def test_fetch_side_skips_symlinked_reports_and_runs(tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(SECRET)
    reports = tmp_path / "checkpoints" / "e7m0-run1" / "failure_reports"
    reports.mkdir(parents=True)
    (reports / "a_failure_report.md").write_text(FAILURE_REPORT)
    (reports / "b_failure_report.md").symlink_to(outside / "secret.md")
    (tmp_path / "checkpoints" / "e7m0-run2").symlink_to(reports.parent)
    wandb = tmp_path / "wandb" / "offline-run-1-run3"
    wandb.mkdir(parents=True)
    (wandb / "run-run3.wandb").symlink_to(outside / "secret.md")
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        found = find_failure_reports(tmp_path / "checkpoints", ["run1", "run2"])
        assert offline_run_files(tmp_path / "wandb") == []
    assert found == {"run1": [reports / "a_failure_report.md"]}
    assert caplog.text.count("a symbolic link (links are never followed)") == 4  # b, run2 x 2, run3


def test_snapshot_refuses_to_copy_a_symlinked_report(tree, tmp_path):
    with pytest.raises(SnapshotError, match="symbolic link"):
        write_snapshot(fixture_records(), tmp_path / "snap", source={"kind": "fixture"},
                       failure_reports={FAILED_RUN_ID: [tree / "link.md"]})
    assert not (tmp_path / "snap").exists() and not list(tmp_path.glob(".snap.tmp-*"))


HOSTILE_REPORTS = {
    "binary_failure_report.md": b"\x89PNG\r\n\x1a\n\0\0\0 IHDR",
    "latin1_failure_report.md": FAILURE_REPORT.replace("Experiment", "Exp\u00e9rience").encode("latin-1"),
    "cut_failure_report.md": FAILURE_REPORT.encode() + "\u00e9".encode()[:1],
    "huge_failure_report.md": FAILURE_REPORT.encode() + b"x" * (300 * 1024),
    "control_failure_report.md": FAILURE_REPORT.encode() + b"\x1b[31mred\x07",
}
NOTES = {  # what the run page says for each, besides the link below
    "binary_failure_report.md": "holds binary data",
    "latin1_failure_report.md": "is not UTF-8 text",
    "cut_failure_report.md": "ends inside a character",
    "huge_failure_report.md": "only the first 262144 are shown",
    "control_failure_report.md": "are shown as &#65533;",
}


@pytest.fixture(scope="module")
def hostile_report_snapshot(tmp_path_factory):
    base = tmp_path_factory.mktemp("reports")
    (base / "secret.md").write_text(SECRET)
    snap = write_snapshot(fixture_records(), base / "snapshot", source={"kind": "fixture"}, fetched_at=FETCHED_AT)
    folder = snap / "failure_reports" / FAILED_RUN_ID
    folder.mkdir(parents=True)
    for name, data in HOSTILE_REPORTS.items():
        (folder / name).write_bytes(data)
    (folder / "link_failure_report.md").symlink_to(base / "secret.md")  # planted after the fetch
    relist(snap)  # and listed in the manifest (else the reader does not open them at all)
    return open_snapshot(snap)


class _Collect:
    def __init__(self):
        self.files = {}

    def text(self, name, text):
        self.files[name] = text

    def copy(self, name, source):
        pass


def test_run_page_notes_every_hostile_report(hostile_report_snapshot, tmp_path):
    context, pages = pipeline.pages_for(hostile_report_snapshot, tmp_path / "cache", REPO / "templates")
    page = next(p for p in pages if p.path == f"runs/{FAILED_RUN_ID}/index.md")
    out = _Collect()
    pipeline.write_pages(make_environment(REPO / "templates"), [page], context, out)
    text = out.files[page.path]
    for name, note in NOTES.items():
        assert note in text, name
    assert "was not read: a symbolic link" in text
    assert SECRET not in text and "\0" not in text and "\x1b" not in text and "\x07" not in text
    assert text.count("Failure Report: E7M0 Experiment") == 3  # cut, huge, control: shown
    assert "x" * (300 * 1024) not in text and "x" * 1000 in text


def test_site_html_has_no_nul_and_no_secret(hostile_report_snapshot, tmp_path):
    """Non-strict (the skipped reports are warnings): the page is published, safely."""
    cmd = [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(cmd, cwd=REPO, env=mkdocs_env(hostile_report_snapshot.path, tmp_path / "cache"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("skipped failure report") == 3  # binary, latin-1, link
    html = (tmp_path / "site" / "runs" / FAILED_RUN_ID / "index.html").read_bytes()
    assert b"\0" not in html and SECRET.encode() not in html and b"\x1b" not in html
    for page in (tmp_path / "site").rglob("*"):
        if page.is_file():
            assert SECRET.encode() not in page.read_bytes(), page
