"""The ``altgrad`` MkDocs plugin: checked options, and a site from ``plugins: [search, altgrad]``
alone (no gen-files script, no hooks, no custom_dir, no extra CSS/JS or extensions listed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from altgrad_docs.site.nav import default_nav
from altgrad_docs.site import bundle, options
from tests.site_fixtures import FAILED_RUN_ID, build_fixture_snapshot, mkdocs_env

MINIMAL = "site_name: My study\ntheme: material\nplugins:\n  - search\n  - altgrad:\n      snapshot: {snapshot}\n"


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    base = tmp_path_factory.mktemp("plugin")
    return build_fixture_snapshot(base / "snapshot"), base / "cache"


def _site(tmp_path: Path, config: str, index: str | None = "# Home\n\nOur study.\n") -> Path:
    (tmp_path / "docs").mkdir(parents=True)
    (tmp_path / "mkdocs.yml").write_text(config)
    if index is not None:
        (tmp_path / "docs" / "index.md").write_text(index)
    return tmp_path


def _build(root: Path, cache: Path, snapshot: Path, **env: str) -> subprocess.CompletedProcess:
    environ = mkdocs_env(snapshot, cache)
    del environ["ALTGRAD_SNAPSHOT"]  # the config names it
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=root,
                          env=environ | env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_minimal_config_builds_the_whole_site(snap, tmp_path):
    snapshot, cache = snap
    root = _site(tmp_path, MINIMAL.format(snapshot=snapshot) + "site_url: https://someone.github.io/study/\n")
    result = _build(root, cache, snapshot)
    assert result.returncode == 0, result.stderr[-3000:]
    # a cold build says which stage it is in
    assert "stage 1/3 (analysis: every history read once): analysing 9 runs" in result.stderr
    assert "stage 2/3 (run pages and their charts): 9 runs" in result.stderr
    site = root / "site"
    home = (site / "index.html").read_text()
    assert "Headline findings" in home and "9 runs in the snapshot" in home  # no marker: added
    assert 'id="altgrad-stamp"' in home and "assets/stylesheets/altgrad.css" in home
    assert "assets/javascripts/runcharts.js" in home and (site / "assets/vendor/uplot/uPlot.iife.min.js").is_file()
    nav = home.split('md-nav--primary', 1)[1].split("md-sidebar--secondary", 1)[0]
    assert 'href="runs/"' in nav and "runs/a1e4m3s1" not in nav  # run pages behind the Runs index
    assert 'href="format-comparison/"' in nav
    report = (site / "format-comparison" / "index.html").read_text()
    figures = re.findall(r'<img[^>]+src="(figures/fig-[^"]+\.svg)"', report)
    assert figures and all((site / "format-comparison" / f).is_file() for f in figures)
    run = (site / "runs" / FAILED_RUN_ID / "index.html").read_text()
    assert 'data-src="figures/fig-history.json"' in run
    assert (site / "runs" / FAILED_RUN_ID / "figures" / "fig-history.json").is_file()
    # with site_url, the 404 page (served at any depth) links absolutely, and the sitemap lists pages
    missing = (site / "404.html").read_text()
    assert 'href="/study/assets/stylesheets/altgrad.css"' in missing and 'href="/study/."' in missing
    assert f"https://someone.github.io/study/runs/{FAILED_RUN_ID}/" in (site / "sitemap.xml").read_text()
    for page in (home, report, run):  # admonitions, attribute lists and details are converted
        text = re.sub(r"<(code|pre)>.*?</\1>", "", page, flags=re.S)
        assert "!!! " not in text and "??? " not in text and "{: " not in text and "{#" not in text


@pytest.mark.parametrize("added, says", [
    # under the plugin: MkDocs names the plugin and the option
    ("      wandb_projet: my-entity/my-study\n", ["'wandb_projet'", "did you mean 'wandb_project'"]),
    # the deprecated extra.altgrad is checked the same way
    ("extra:\n  altgrad:\n    basline: BF16\n", ["extra.altgrad.basline", "did you mean 'baseline'"]),
    # a value of the wrong form
    ("      wandb_project: just-a-name\n", ["wandb_project", "must be ENTITY/PROJECT"]),
])
def test_a_bad_option_fails_the_build_in_one_line(snap, tmp_path, added, says):
    snapshot, cache = snap
    result = _build(_site(tmp_path, MINIMAL.format(snapshot=snapshot) + added), cache, snapshot)
    assert result.returncode == 1
    assert all(text in result.stderr for text in says), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_without_an_index_the_home_page_is_generated(snap, tmp_path):
    snapshot, cache = snap
    root = _site(tmp_path, MINIMAL.format(snapshot=snapshot), index=None)
    (root / "docs" / "notes.md").write_text("# Notes\n")
    (root / "templates" / "pages").mkdir(parents=True)  # the site's own template, file by file
    (root / "templates" / "pages" / "runs.md").write_text("# Our runs\n\n{{ n_runs }} runs, our way.\n")
    result = _build(root, cache, snapshot)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "9 runs, our way." in (root / "site" / "runs" / "index.html").read_text()
    assert "Training history of run" in (root / "site" / "runs" / FAILED_RUN_ID / "index.html").read_text()
    home = (root / "site" / "index.html").read_text()
    assert "<h1 id=\"my-study\">My study" in home and "9 runs in the snapshot" in home
    assert 'href="notes/"' in home  # hand-written pages follow the generated ones in the nav


def test_options_merge_extra_plugin_and_environment():
    legacy = {"snapshot": "old", "factors": "lr, wd", "metric": "loss"}
    merged = options.effective({"snapshot": "new", "metric": None, "templates": "templates"}, legacy,
                               {"ALTGRAD_FILTERS": '{"config.lr": 1}', "ALTGRAD_METRIC": ""})
    assert merged["snapshot"] == "new" and merged["factors"] == ["lr", "wd"] and merged["metric"] == "loss"
    assert merged["filters"] == {"config.lr": 1} and merged["templates"] == "templates"
    with pytest.raises(options.OptionsError, match="environment variable ALTGRAD_FACTORS"):
        options.effective({}, None, {"ALTGRAD_FACTORS": "[1, 2]"})
    with pytest.raises(options.OptionsError, match="must be a list of config keys"):
        options.effective({}, None, {"ALTGRAD_IGNORE": '{"tags": true}'})


def test_the_metric_map_is_an_option_a_mapping_or_json():
    merged = options.effective({}, {"metrics": {"primary": "eval/f1_micro", "direction": "higher"}}, {})
    assert merged["metrics"] == {"primary": "eval/f1_micro", "direction": "higher"}
    env = options.effective({}, None, {"ALTGRAD_METRICS": '{"train_loss": "train/loss"}'})
    assert env["metrics"] == {"train_loss": "train/loss"}
    with pytest.raises(options.OptionsError, match="must be a mapping of train_loss, primary"):
        options.effective({}, None, {"ALTGRAD_METRICS": '["eval/f1_micro"]'})


def test_the_nearest_option_is_named():
    assert "did you mean 'metric'" in options.unknown_key_error("metrc")
    assert "did you mean" not in options.unknown_key_error("colour_scheme")


def test_default_nav_leaves_run_pages_out():
    files = ("cite.md", "formats/index.md", "index.md", "runs/abc/index.md", "runs/index.md", "extra/more.md")
    assert default_nav(files) == ["index.md", "formats/index.md", "runs/index.md", "cite.md", "extra/more.md"]


def test_a_missing_markdown_extension_is_named(monkeypatch):
    monkeypatch.setattr(bundle, "MARKDOWN_EXTENSIONS", (("pymdownx.nonexistent", {}, "pymdown-extensions"),))
    config = SimpleNamespace(markdown_extensions=[], mdx_configs={})
    with pytest.raises(bundle.BundleError, match="pymdownx.nonexistent.*pip install pymdown-extensions"):
        bundle.add_markdown_extensions(config)


def test_the_sites_templates_come_first_then_the_shipped_ones(tmp_path):
    from altgrad_docs.templates_dir import TEMPLATE_DIR, template_path

    assert template_path(tmp_path / "none") == [TEMPLATE_DIR]  # a new site has no folder: no error
    (tmp_path / "templates").mkdir()
    assert template_path(tmp_path / "templates") == [tmp_path / "templates", TEMPLATE_DIR]
    assert template_path(TEMPLATE_DIR) == [TEMPLATE_DIR]  # this repository: one folder, not twice



def test_the_site_nav_is_made_once_for_every_way_a_site_is_built(tmp_path):
    """site_nav: the config's nav kept (without the bench page for other data); none: the
    default nav of the hand-written and generated pages, the home page always first."""
    from altgrad_docs.site.nav import site_nav

    for name in ("cite.md", "bench.md", "notes/more.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    generated = ["runs/index.md", "runs/r1/index.md", "formats/index.md"]
    assert site_nav(None, tmp_path, generated, from_bench=False) == [
        "index.md", "formats/index.md", "runs/index.md", "cite.md", "notes/more.md"]
    assert "bench.md" in site_nav(None, tmp_path, generated, from_bench=True)
    assert site_nav([{"Home": "index.md"}, {"Bench": "bench.md"}], tmp_path, generated, False) == [{"Home": "index.md"}]
