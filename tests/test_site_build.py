"""A full `mkdocs build --strict` of the site on the tiny fixture snapshot."""

import logging
import re
import shutil
from pathlib import Path

import pytest

from altgrad_docs.site import pipeline as site
from tests.site_fixtures import (
    FAILED_RUN_ID, REPO, RUNS, XSS_NAME, XSS_RUN_ID, build_fixture_snapshot, built_fixture_site,
    run_mkdocs_build, site_files,
)


REPORT_PAGES = ("format-comparison/index.html", "failure-modes/index.html", "manifold-vs-adamw/index.html",
                "formats/index.html")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    return built_fixture_site(tmp_path_factory.getbasetemp() / "fixture_site")


def test_build_has_every_page(site_dir):
    for page in REPORT_PAGES + ("index.html", "runs/index.html", "methods/index.html", "cite/index.html"):
        assert (site_dir / page).is_file(), page
    for run_id, *_ in RUNS:
        assert (site_dir / "runs" / run_id / "index.html").is_file()
        assert (site_dir / "runs" / run_id / "figures" / "fig-history.svg").is_file()
        assert (site_dir / "runs" / run_id / "figures" / "fig-history.json").is_file()
        assert (site_dir / "runs" / run_id / "tables" / "tab-config.tex").is_file()
    assert not (site_dir / "gen_pages.py").exists() and not (site_dir / "serve_hooks.py").exists()
    assert (site_dir / "assets" / "vendor" / "uplot" / "uPlot.iife.min.js").is_file()
    assert (site_dir / "assets" / "vendor" / "uplot" / "LICENSE").is_file()
    assert not (site_dir / "assets" / "vendor" / "uplot" / "index.html").exists()  # its README stays out


def test_rebuild_is_byte_identical_cold_cache(site_dir, tmp_path):
    """Same snapshot (copied elsewhere, so no local path may leak) -> the same bytes."""
    moved = shutil.copytree(site_dir.parent / "snapshot", tmp_path / "elsewhere" / "snap")
    again = run_mkdocs_build(moved, tmp_path / "site", tmp_path / "cache")
    assert again.returncode == 0, again.stderr[-3000:]
    first, second = site_files(site_dir), site_files(tmp_path / "site")
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_a_warm_build_uses_the_theme_templates_compiled_before(site_dir, tmp_path):
    """The theme's templates are compiled once into the build cache (~0.2 s of every build
    otherwise); a warm build in a new process loads them, writes none and makes the same site."""
    cache = site_dir.parent / "cache"
    compiled = {p: p.stat().st_mtime_ns for p in (cache / "jinja" / "theme").glob("*/*.bc")}
    assert len(compiled) >= 10  # Material's base, partials and ours
    again = run_mkdocs_build(site_dir.parent / "snapshot", tmp_path / "site", cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (cache / "jinja" / "theme").glob("*/*.bc")} == compiled
    first, second = site_files(site_dir), site_files(tmp_path / "site")
    assert [name for name in first if first.get(name) != second.get(name)] == [] and sorted(first) == sorted(second)


def test_xss_run_name_is_text_everywhere(site_dir):
    for page in site_dir.rglob("*.html"):
        assert "<img src=x" not in page.read_text(), page
    run_page = (site_dir / "runs" / XSS_RUN_ID / "index.html").read_text()
    assert "&#60;img src&#61;x onerror&#61;alert&#40;1&#41;&#62;" in run_page
    assert "<script>alert('config')" not in run_page


def test_runs_table_links_every_run_and_wandb(site_dir):
    html = (site_dir / "runs" / "index.html").read_text()
    links = set(re.findall(r'href="([a-z0-9]{8})/"', html))
    assert links == {run_id for run_id, *_ in RUNS}
    assert html.count('href="https://wandb.ai/altgrad-lab/altgrad/runs/') == len(RUNS)
    csv = (site_dir / "runs" / "tables" / "tab-runs.csv").read_text().splitlines()
    assert len(csv) == len(RUNS) + 1 and csv[0].startswith("name,run_id,format")
    assert any(line.startswith(f'"{XSS_NAME}"') or line.startswith(XSS_NAME) for line in csv)


def test_failed_run_page_shows_its_failure_report(site_dir):
    html = (site_dir / "runs" / FAILED_RUN_ID / "index.html").read_text()
    assert "Failure Report: E7M0 Experiment" in html
    assert "loss first NaN/Inf at step" in html and "<td>30</td>" in html


def test_every_page_carries_the_data_stamp(site_dir):
    pages = list(site_dir.rglob("index.html"))
    hand_written = len(list((REPO / "docs").glob("*.md")))  # index, methods, cite, bench (if written)
    assert len(pages) == hand_written + 1 + len(REPORT_PAGES) + len(RUNS)  # + the Runs table
    for page in pages:
        assert 'id="altgrad-stamp"' in page.read_text(), page


def test_report_pages_publish_their_figures_and_tables(site_dir):
    """Each figure/table id of a report page: an anchor, a numbered caption, downloads."""
    html = (site_dir / "format-comparison" / "index.html").read_text()
    for fig_id in ("fig-loss-curves", "fig-loss-vs-mantissa"):
        assert f'id="{fig_id}"' in html
        for ext in ("svg", "pdf"):
            assert (site_dir / "format-comparison" / "figures" / f"{fig_id}.{ext}").stat().st_size > 0
    assert "<strong>Figure 1.</strong>" in html and "<strong>Table 1.</strong>" in html
    tex = (site_dir / "formats" / "tables" / "tab-format-facts.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "E4M3" in tex
    assert (site_dir / "manifold-vs-adamw" / "figures" / "fig-forest.svg").is_file()
    failures = (site_dir / "failure-modes" / "tables" / "tab-failures.csv").read_text()
    assert f"failure_reports/{FAILED_RUN_ID}/E7M0_20260110_010000_failure_report.md" in failures
    assert str(site_dir.parent) not in failures
    page = (site_dir / "failure-modes" / "index.html").read_text()  # the report linked from the table
    assert f'href="../runs/{FAILED_RUN_ID}/#failure-report"' in page
    assert 'id="failure-report"' in (site_dir / "runs" / FAILED_RUN_ID / "index.html").read_text()


def test_home_states_findings_from_the_data(site_dir):
    html = (site_dir / "index.html").read_text()
    from html import unescape

    text = " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())
    assert "Best 8-bit condition by final validation loss: E4M3 with ManifoldAdamW (2.420 [2.397, 2.444], median" in text
    # one family of 1 (E4M3: 2 pairs; E5M2 has 1 pair, no test), worded by the findings' rules
    assert "One family of 1 comparison (8-bit format × setting" in text
    assert "0 significant and robust, 0 significant but fragile" in text
    # counts in one unit: conditions are format x optimizer x setting on both sides
    assert "1 of the 9 failed, in 1 of the 6 conditions" in text
    assert "altgrad-docs bench" not in text and "training bench" not in text  # a fixture snapshot is no bench snapshot (issue 22)


def test_stale_wandb_data_shows_a_banner_and_fails_strict(tmp_path, monkeypatch, caplog):
    """W&B unreachable: pages say "stale data"; a warning through mkdocs.plugins.altgrad."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    from altgrad_docs import fetch
    from altgrad_docs.snapshot import open_snapshot

    snapshot = open_snapshot(build_fixture_snapshot(tmp_path / "snap"))
    monkeypatch.setattr(fetch, "load_or_refresh", lambda *a, **k: (snapshot, "W&B is unreachable"))
    monkeypatch.setattr(site, "_FETCHED", {})
    for key, value in {"ALTGRAD_WANDB_PROJECT": "lab/altgrad", "ALTGRAD_CACHE_DIR": str(tmp_path / "c"),
                       "SOURCE_DATE_EPOCH": "0", "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(key, value)
    caplog.set_level(logging.WARNING, logger="mkdocs.plugins.altgrad")
    config = load_config(str(REPO / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    build(config)
    assert "W&B is unreachable" in caplog.text
    for page in ("index.html", "runs/index.html", f"runs/{XSS_RUN_ID}/index.html"):
        assert "Stale data:" in (tmp_path / "site" / page).read_text()
    strict = load_config(str(REPO / "mkdocs.yml"), site_dir=str(tmp_path / "site2"), strict=True)
    with pytest.raises(Abort):
        build(strict)


def test_home_findings_are_separate_list_items(site_dir):
    """Issue 21: each headline finding is its own <li>; none is glued to another by a literal " - "."""
    html = (site_dir / "index.html").read_text()
    section = html[html.index('id="headline-findings"'):]
    section = section[:section.index("<h2", 1)] if "<h2" in section[1:] else section
    items = [" ".join(re.sub(r"<[^>]+>", "", li).split()) for li in re.findall(r"<li>(.*?)</li>", section, re.S)]
    assert len(items) >= 4
    assert items[0].startswith("Data:") and any(i.startswith("Does ManifoldAdamW change") for i in items)
    assert not any(" - **" in i or " - Failures" in i for i in items)
