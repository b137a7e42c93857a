"""`altgrad-docs render`: the docs tree as plain files, built by MkDocs and by Zensical."""

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from altgrad_docs.site import engines
from altgrad_docs.site import tree as tree_module
from altgrad_docs.site.tree import MARKER_FILE, ZENSICAL_GAPS, TreeError, tree_config
from tests.site_fixtures import (
    FAILED_RUN_ID, FETCHED_AT, REPO, RUNS, built_fixture_site, mkdocs_env, site_files,
)
from tests.test_browser_site import _visit, browser, page, served_under_subpath  # noqa: F401 (fixtures)

REPORTS = ("format-comparison", "failure-modes", "manifold-vs-adamw", "formats")
HAND_WRITTEN = sorted(p.stem for p in (REPO / "docs").glob("*.md") if p.stem != "index")
EPOCH = str(int(datetime.fromisoformat(FETCHED_AT).timestamp()))


def test_tree_config_keeps_the_site_and_drops_the_in_repo_build():
    raw = {"site_name": "S", "docs_dir": "documents", "hooks": ["docs/serve_hooks.py"],
           "watch": ["templates"], "exclude_docs": "/gen_pages.py\n",
           "theme": {"name": "material", "custom_dir": "theme_overrides"},
           "plugins": ["search", {"gen-files": {"scripts": ["docs/gen_pages.py"]}}],
           "extra": {"altgrad": {"snapshot": "data/bundled"}, "generator": False},
           "nav": [{"Home": "index.md"}]}
    stamp = {"hash": "abc", "fetched_at": "2026-01-15", "stale": None}
    assert tree_config(raw, stamp, overrides=True) == {
        "site_name": "S", "docs_dir": "docs", "theme": {"name": "material", "custom_dir": "overrides"},
        "plugins": ["search"], "extra": {"generator": False, "altgrad_stamp": stamp},
        "nav": [{"Home": "index.md"}]}
    assert tree_config({"plugins": ["gen-files"]}, stamp, overrides=False)["plugins"] == []
    assert "plugins" not in tree_config({}, stamp, overrides=False)


def _fake_render(pages):
    def render_into(config_file, out):
        for name in pages:
            (out / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
            (out / "docs" / name).write_text(name)
        if "FAIL" in pages:
            raise tree_module.TreeError("the render failed half way")
    return render_into


def test_render_leaves_a_foreign_folder_alone_and_replaces_its_own(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    monkeypatch.setattr(tree_module, "_render_into", _fake_render(["index.md"]))
    with pytest.raises(TreeError, match="--> Do: pass --out a new or empty folder"):
        tree_module.render_tree(tmp_path / "mkdocs.yml", tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    tree = tmp_path / "tree"
    monkeypatch.setattr(tree_module, "_render_into", _fake_render(["index.md", "runs/gone/index.md"]))
    assert tree_module.render_tree(tmp_path / "mkdocs.yml", tree).n_files == 3
    monkeypatch.setattr(tree_module, "_render_into", _fake_render(["index.md"]))  # a newer snapshot
    tree_module.render_tree(tmp_path / "mkdocs.yml", tree)
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()) == [MARKER_FILE, "docs/index.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "tree"]  # nothing left beside it


def test_a_failed_render_leaves_the_earlier_tree_as_it_was(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    monkeypatch.setattr(tree_module, "_render_into", _fake_render(["index.md", "runs/a/index.md"]))
    tree_module.render_tree(tmp_path / "mkdocs.yml", tree)
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    monkeypatch.setattr(tree_module, "_render_into", _fake_render(["index.md", "FAIL"]))
    with pytest.raises(TreeError, match="half way"):
        tree_module.render_tree(tmp_path / "mkdocs.yml", tree)
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder the user made: filled, and still a folder when a render fails
    with pytest.raises(TreeError):
        tree_module.render_tree(tmp_path / "mkdocs.yml", empty)
    assert empty.is_dir() and not any(empty.iterdir())


def test_front_door_passes_engine_arguments_through(tmp_path):
    config = tmp_path / "mkdocs.yml"
    door = engines.parse("build", ["-f", str(config), "--strict", "--engine", "mkdocs", "-q"])
    assert engines.mkdocs_command(door) == [sys.executable, "-m", "mkdocs", "build", "-f", str(config),
                                            "--site-dir", str(tmp_path / "site"), "--strict", "-q"]
    serve = engines.parse("serve", ["-f", str(config), "-a", "127.0.0.1:8001"])
    assert engines.mkdocs_command(serve)[3:] == ["serve", "-f", str(config), "--dirty", "-a", "127.0.0.1:8001"]
    zen = engines.parse("build", ["--engine", "zensical", "-f", str(config), "--strict", "--tree",
                                  str(tmp_path / "t"), "-d", str(tmp_path / "out")])
    assert (zen.tree, zen.site_dir) == (tmp_path / "t", tmp_path / "out")
    assert engines.zensical_command(zen) == [sys.executable, "-m", "zensical", "build", "-f",
                                             str(tmp_path / "t" / "mkdocs.yml"), "--strict"]


@pytest.fixture(scope="module")
def repo_site(tmp_path_factory):
    return built_fixture_site(tmp_path_factory.getbasetemp() / "fixture_site")


def _env(repo_site: Path) -> dict[str, str]:
    """The fixture site's snapshot and its warm figure cache."""
    return mkdocs_env(repo_site.parent / "snapshot", repo_site.parent / "cache")


def _cli(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "altgrad_docs.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_mkdocs_builds_the_rendered_tree_into_the_same_site(repo_site, tmp_path):
    """Byte for byte, with the build date the tree's ENGINES.md names (the sitemap's date)."""
    env = {**_env(repo_site), "PYTHONPATH": str(REPO)}
    rendered = _cli(["render", "--out", str(tmp_path / "tree")], env)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    tree = tmp_path / "tree"
    config = yaml.safe_load((tree / "mkdocs.yml").read_text())
    assert "hooks" not in config and config["plugins"] == ["search"]
    assert f"SOURCE_DATE_EPOCH={EPOCH} mkdocs build" in (tree / "ENGINES.md").read_text()
    bare = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "ALTGRAD_SNAPSHOT", "ALTGRAD_CACHE_DIR")}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(tmp_path / "site")], cwd=tmp_path / "tree", capture_output=True,
                           text=True, timeout=600, env={**bare, "SOURCE_DATE_EPOCH": EPOCH})
    assert built.returncode == 0, built.stderr[-3000:]
    ours, theirs = site_files(tmp_path / "site"), site_files(repo_site)
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []


def _zensical_or_skip() -> None:
    """Zensical is in the test extra: under CI a missing one fails, never skips."""
    try:
        import zensical  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("zensical is not installed (bash scripts/setup.sh test installs it)")


@pytest.fixture(scope="module")
def zensical_site(repo_site, tmp_path_factory):
    """The fixture site built through the front door with --engine zensical: (site, stderr)."""
    _zensical_or_skip()
    base = tmp_path_factory.mktemp("zensical")
    env = {**_env(repo_site), "PYTHONPATH": str(REPO)}
    result = _cli(["build", "--engine", "zensical", "--strict", "--tree", str(base / "tree"),
                   "-d", str(base / "site")], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return base / "site", result.stderr


PAGES = ["", *(f"{name}/" for name in HAND_WRITTEN + list(REPORTS)), "runs/",
         *(f"runs/{run_id}/" for run_id, *_ in RUNS)]


@pytest.mark.slow
def test_zensical_builds_every_page_search_and_the_stamp(zensical_site):
    out, stderr = zensical_site
    for gap in ZENSICAL_GAPS:  # the degradation is said on every Zensical build, and in the tree
        assert f"Zensical lacks: {gap}" in stderr
    notice = (out.parent / "tree" / "ENGINES.md").read_text()
    assert notice.count("\n  - ") == len(ZENSICAL_GAPS)
    for url in PAGES:
        html = (out / url / "index.html").read_text()
        assert 'id="altgrad-stamp"' in html and "fetched\n  2026-01-15" in html, url
    for run_id, *_ in RUNS:
        assert (out / "runs" / run_id / "figures" / "fig-history.svg").stat().st_size > 0
    assert (out / "format-comparison" / "figures" / "fig-loss-curves.pdf").stat().st_size > 0
    assert (out / "runs" / "tables" / "tab-runs.csv").is_file()
    index = json.loads((out / "search.json").read_text())
    assert sorted({item["location"].split("#")[0] for item in index["items"]}) == sorted(PAGES)


@pytest.fixture(scope="module")
def zensical_url(zensical_site):
    with served_under_subpath(zensical_site[0]) as url:
        yield url


@pytest.mark.slow
@pytest.mark.browser
def test_zensical_site_loads_clean_and_search_finds_a_run(browser, page, zensical_url):
    for url in PAGES:  # a page each: a request the previous page left open is not this one's
        fresh = browser.new_page()
        problems = _visit(fresh, zensical_url + url)
        fresh.close()
        assert problems == [], url
    page.goto(zensical_url, wait_until="networkidle")
    page.locator("button.md-search__button").click()
    page.locator("input[aria-label='Search']").press_sequentially(FAILED_RUN_ID, delay=20)
    result = page.locator(f"a[role='option'][href*='runs/{FAILED_RUN_ID}/']").first
    result.wait_for(timeout=15000)
    result.click()
    page.wait_for_url(f"**/runs/{FAILED_RUN_ID}/**")
    assert "Failure Report: E7M0 Experiment" in page.content()


def test_render_errors_say_what_to_do(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    env = {**mkdocs_env(tmp_path / "no-snapshot", tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    foreign = _cli(["render", "--out", str(tmp_path / "mine")], env)
    assert foreign.returncode == 2 and "--> Do: pass --out a new or empty folder" in foreign.stderr
    missing = _cli(["render", "--out", str(tmp_path / "tree")], env)
    assert missing.returncode == 2, missing.stderr[-2000:]
    assert f"no snapshot at {tmp_path / 'no-snapshot'}" in missing.stderr and "altgrad-docs fetch" in missing.stderr
