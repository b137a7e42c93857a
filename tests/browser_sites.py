"""Built sites for the browser tests, each built once per session and served from 127.0.0.1
under a subpath: the fixture site (tests/site_fixtures.py, shared with test_browser_site),
the bundled 288-run site and a six-setting study (tests/settings_data.py). The last two take
a minute or more to build: the tests that use them are marked slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.settings_data import build_six_setting_snapshot
from tests.site_fixtures import FAILED_RUN_ID, REPO, built_fixture_site, run_mkdocs_build
from tests.test_browser_site import served_under_subpath


def _built(base: Path, snapshot: Path) -> Path:
    site = base / "site"
    if not (site / "index.html").is_file():
        result = run_mkdocs_build(snapshot, site, base / "cache")
        assert result.returncode == 0, result.stderr[-4000:]
    return site


def _first_run(site: Path) -> str:
    return "runs/" + sorted(p.parent.name for p in (site / "runs").glob("*/index.html"))[0] + "/"


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory):
    """(site folder, base URL, a run page path) of the fixture site."""
    site = built_fixture_site(tmp_path_factory.getbasetemp() / "fixture_site")
    with served_under_subpath(site) as url:
        yield site, url, f"runs/{FAILED_RUN_ID}/"


@pytest.fixture(scope="session")
def bundled_site(tmp_path_factory):
    site = _built(tmp_path_factory.getbasetemp() / "bundled_site", REPO / "data" / "bundled")
    with served_under_subpath(site) as url:
        yield site, url, _first_run(site)


@pytest.fixture(scope="session")
def six_setting_site(tmp_path_factory):
    base = tmp_path_factory.getbasetemp() / "six_setting_site"
    snapshot = base / "snapshot"
    if not (snapshot / "manifest.json").is_file():
        build_six_setting_snapshot(snapshot)
    site = _built(base, snapshot)
    with served_under_subpath(site) as url:
        yield site, url, _first_run(site)
