"""``mkdocs serve --dirty``: only changed pages are rebuilt, and the result equals a clean build."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from altgrad_docs.site.incremental import (
    SiteMemory, StableWriter, add_assets, build_fingerprint, merge_search_entries,
)
from tests.site_fixtures import REPO, RUNS, build_fixture_snapshot, mkdocs_env, site_files


def _entry(location: str, text: str = "") -> dict:
    return {"location": location, "title": location, "text": text}


def test_merge_keeps_unbuilt_pages_replaces_rebuilt_and_drops_removed():
    previous = {"": [_entry(""), _entry("#findings")], "a/": [_entry("a/", "old")],
                "b/": [_entry("b/")], "gone/": [_entry("gone/")], "quiet/": [_entry("quiet/")]}
    built = [_entry("a/", "new"), _entry("a/#history", "new")]
    index, memory = merge_search_entries(previous, built, {"a/", "quiet/"}, ["", "b/", "a/", "quiet/"])
    assert index == [_entry(""), _entry("#findings"), _entry("b/"), _entry("a/", "new"),
                     _entry("a/#history", "new")]
    assert memory == {"": previous[""], "b/": previous["b/"], "a/": built}


def test_merge_of_a_rebuilt_home_page_keeps_every_other_page():
    """Material's own merge drops every entry under the first rebuilt URL: "" is all of them."""
    previous = {"": [_entry("")], "runs/x/": [_entry("runs/x/")]}
    index, _ = merge_search_entries(previous, [_entry("", "new")], {""}, ["", "runs/x/"])
    assert index == [_entry("", "new"), _entry("runs/x/")]


class _GenFiles:
    """gen-files' behaviour: every build writes into a new temporary folder."""

    def __init__(self, root: Path):
        self.root, self.builds = root, 0

    def new_build(self):
        self.builds += 1
        folder = self.root / f"build{self.builds}"

        def open_file(name, mode="r", **kw):
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            return open(path, mode, **kw)
        return folder, open_file


def test_unchanged_page_keeps_its_mtime_and_changed_page_gets_a_new_one(tmp_path):
    gen, memory = _GenFiles(tmp_path), SiteMemory()
    first, open1 = gen.new_build()
    StableWriter(open1, memory).text("a.md", "same")
    StableWriter(open1, memory).text("b.md", "old")
    os.utime(first / "a.md", ns=(10**18, 10**18))  # as if written long ago
    memory.mtimes["a.md"] = 10**18
    second, open2 = gen.new_build()
    StableWriter(open2, memory).text("a.md", "same")
    StableWriter(open2, memory).text("b.md", "new")
    assert (second / "a.md").stat().st_mtime_ns == 10**18
    assert (second / "b.md").stat().st_mtime_ns != 10**18
    assert (second / "b.md").read_text() == "new"
    assert memory.written["b.md"] != memory.written["a.md"]


def test_assets_come_from_the_cache_and_a_changed_one_is_copied_by_content(tmp_path):
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files

    config = load_config(str(REPO / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    config.plugins._current_plugin = "test"  # File.generated expects to be called from an event
    cached = tmp_path / "cache" / "fig.svg"
    cached.parent.mkdir()
    cached.write_text("<svg/>")
    memory = SiteMemory(direct_assets=True)
    writer = StableWriter(lambda *a, **k: pytest.fail("an asset must not be written"), memory)
    writer.copy("runs/x/figures/fig.svg", cached)
    files = Files([])
    add_assets(files, config, memory)
    (file,) = files
    assert (file.src_uri, file.abs_src_path, file.is_modified()) == ("runs/x/figures/fig.svg", str(cached), True)
    assert memory.assets == []
    other = tmp_path / "cache" / "other.svg"  # the same site path now names another cache file
    other.write_text("<svg>2</svg>")
    writer.copy("runs/x/figures/fig.svg", other)
    files = Files([])
    add_assets(files, config, memory)
    (file,) = files
    assert file.content_bytes == b"<svg>2</svg>"


def test_a_figure_still_being_drawn_is_added_by_path_and_its_next_build_by_identity(tmp_path):
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files

    config = load_config(str(REPO / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    config.plugins._current_plugin = "test"
    drawn_later = tmp_path / "cache" / "fig.svg"  # not there yet: a worker is drawing it
    memory = SiteMemory(direct_assets=True, pending={drawn_later}, written={"a/fig.svg": "older"})
    StableWriter(lambda *a, **k: pytest.fail("an asset must not be written"), memory).copy("a/fig.svg", drawn_later)
    files = Files([])
    add_assets(files, config, memory)
    (file,) = files
    assert (file.src_uri, file.abs_src_path) == ("a/fig.svg", str(drawn_later))
    assert "a/fig.svg" not in memory.written and memory.pending == set()
    drawn_later.parent.mkdir()
    drawn_later.write_text("<svg/>")  # drawn; the next build finds it as any cached file
    memory.direct_assets = True
    StableWriter(lambda *a, **k: pytest.fail("an asset must not be written"), memory).copy("a/fig.svg", drawn_later)
    files = Files([])
    add_assets(files, config, memory)
    (file,) = files
    assert file.abs_src_path == str(drawn_later) and memory.written["a/fig.svg"].startswith(str(drawn_later))


def test_the_pipeline_names_pending_figures_and_waits_for_them_once(tmp_path):
    from functools import partial

    from altgrad_docs.report import drawing
    from altgrad_docs.site import pipeline
    from tests.test_report_drawing import _line_figure

    jobs = [drawing.Job(f"fig-{i}", (i,), tmp_path / "out" / f"fig-{i}", partial(_line_figure, 50, i)) for i in range(2)]
    pipeline._DRAWING[:] = [drawing.Drawing(jobs, tmp_path / "cache", ("svg",), workers=2).start()]
    assert pipeline.pending_figure_files() == {tmp_path / "out" / "fig-0.svg", tmp_path / "out" / "fig-1.svg"}
    pipeline.finish_drawing()
    assert (tmp_path / "out" / "fig-1.svg").is_file() and pipeline.pending_figure_files() == set()
    pipeline.finish_drawing()  # nothing left to wait for
    pipeline._DRAWING[:] = [drawing.Drawing(jobs, tmp_path / "cache-2", ("svg",), workers=2).start()]
    pipeline.cancel_drawing()  # a failed build stops the workers and forgets them
    assert pipeline._DRAWING == []


def test_fingerprint_follows_config_theme_and_stamp(tmp_path):
    config, theme = tmp_path / "mkdocs.yml", tmp_path / "overrides"
    config.write_text("site_name: x\n")
    theme.mkdir()
    (theme / "main.html").write_text("a")
    base = build_fingerprint(config, [theme], {"hash": "1"})
    assert build_fingerprint(config, [theme], {"hash": "1"}) == base
    assert build_fingerprint(config, [theme], {"hash": "2"}) != base
    (theme / "main.html").write_text("ab")
    changed_theme = build_fingerprint(config, [theme], {"hash": "1"})
    assert changed_theme != base
    config.write_text("site_name: y\n")
    assert build_fingerprint(config, [theme], {"hash": "1"}) not in (base, changed_theme)


@pytest.fixture(scope="module")
def dirty_builds(tmp_path_factory):
    """Three dirty builds (initial, report template edit, run template edit) and a clean one."""
    base = tmp_path_factory.mktemp("dirty")
    project = base / "project"
    for name in ("docs", "templates"):
        shutil.copytree(REPO / name, project / name)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    snapshot = build_fixture_snapshot(base / "snapshot")
    out = base / "mtimes.json"
    cmd = [sys.executable, str(REPO / "tests" / "dirty_serve_driver.py"), str(project),
           str(base / "dirty"), str(base / "clean"), str(out)]
    env = {**mkdocs_env(snapshot, base / "cache"), "PYTHONPATH": str(REPO)}
    result = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return base, json.loads(out.read_text())


def test_a_report_template_edit_rebuilds_that_page_only(dirty_builds):
    base, (initial, report_edit, _) = dirty_builds
    rewritten = {name for name in initial if name.endswith(".html") and report_edit[name] != initial[name]}
    assert rewritten == {"format-comparison/index.html", "404.html"}
    assert "Report edit marker." in (base / "dirty" / "format-comparison" / "index.html").read_text()
    assert all(report_edit[name] == initial[name] for name in initial if "/figures/" in name)


def test_a_run_template_edit_rebuilds_every_run_page(dirty_builds):
    base, (_, report_edit, run_edit) = dirty_builds
    for run_id, *_ in RUNS:
        page = f"runs/{run_id}/index.html"
        assert run_edit[page] != report_edit[page]
        assert "Run page edit marker." in (base / "dirty" / page).read_text()
    assert run_edit["format-comparison/index.html"] == report_edit["format-comparison/index.html"]


def test_dirty_builds_end_byte_identical_to_a_clean_build(dirty_builds):
    """Every page and the search index (whole, each section once) as a clean build has them."""
    base, _ = dirty_builds
    dirty, clean = site_files(base / "dirty"), site_files(base / "clean")
    assert sorted(dirty) == sorted(clean)
    assert [name for name in clean if dirty[name] != clean[name]] == []
    index = json.loads(clean["search/search_index.json"])["docs"]
    assert "Run page edit marker." in json.dumps(index) and "Report edit marker." in json.dumps(index)
