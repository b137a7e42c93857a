"""Every page type in Chromium at 1280 and 390 px, light and dark: axe-core finds no serious
or critical violation (every rule in light; in dark the rules that depend on colour) (tests/browser_audit.py: the vendored axe, the theme's own allowlist),
no table is cut off without a visible, keyboard-operable scroll box, no page scrolls sideways.

The fixture site (tests/site_fixtures.py, built once per session and shared with
test_browser_site) runs by default; the bundled 288-run site, built once per session too,
is marked slow.
"""

from __future__ import annotations

import pytest

from tests.browser_audit import COLOUR_RULES, PAGE_TYPES, axe_violations, blocking, new_context, tables, visit
from tests.site_fixtures import FAILED_RUN_ID, REPO, built_fixture_site, run_mkdocs_build
from tests.test_browser_site import browser, served_under_subpath  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser

VIEWS = [(1280, "light"), (1280, "dark"), (390, "light"), (390, "dark")]


def _bundled_site(base):
    site = base / "site"
    if not (site / "index.html").is_file():
        result = run_mkdocs_build(REPO / "data" / "bundled", site, base / "cache")
        assert result.returncode == 0, result.stderr[-4000:]
    return site


@pytest.fixture(scope="session")
def fixture_url(tmp_path_factory):
    with served_under_subpath(built_fixture_site(tmp_path_factory.getbasetemp() / "fixture_site")) as url:
        yield url, f"runs/{FAILED_RUN_ID}/"


@pytest.fixture(scope="session")
def bundled_url(tmp_path_factory):
    site = _bundled_site(tmp_path_factory.getbasetemp() / "bundled_site")
    run = sorted(p.parent.name for p in (site / "runs").glob("*/index.html"))[0]
    with served_under_subpath(site) as url:
        yield url, f"runs/{run}/"


def _audit(browser, base, run_page):
    """Per view and page: the blocking axe violations and the layout faults (empty = clean),
    and how many tables scrolled (the affordance was exercised)."""
    faults, scrolled = [], 0
    for width, scheme in VIEWS:
        context = new_context(browser, width, scheme)
        pg = context.new_page()
        try:
            for path in (*PAGE_TYPES, run_page):
                visit(pg, base + path)
                where = (width, scheme, path or "home")
                rules = COLOUR_RULES if scheme == "dark" else None
                faults += [(where, v["id"], v["nodes"][:3]) for v in blocking(axe_violations(pg, rules))]
                m = tables(pg)
                if m["sideways"] > 0:
                    faults.append((where, "page scrolls sideways", m["sideways"]))
                for t in m["tables"]:
                    if t["overhang"] > 1:
                        faults.append((where, "table sticks out of the column", t))
                    if t["width"] > m["content"] and not (t["scrolls"] and t["hint"] and t["keyboard"]):
                        faults.append((where, "wide table without a marked, focusable scroll box", t))
                    scrolled += t["scrolls"]
        finally:
            context.close()
    return faults, scrolled


def test_fixture_site_is_accessible_and_fits(browser, fixture_url):
    faults, scrolled = _audit(browser, *fixture_url)
    assert faults == []
    assert scrolled > 0  # at 390 px some tables must scroll: the affordance is exercised


@pytest.mark.slow
def test_bundled_site_is_accessible_and_fits(browser, bundled_url):
    faults, scrolled = _audit(browser, *bundled_url)
    assert faults == []
    assert scrolled > 0


def test_scroll_box_takes_the_keyboard(browser, fixture_url):
    base, _ = fixture_url
    context = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        pg = context.new_page()
        pg.goto(base + "format-comparison/", wait_until="networkidle")
        box = pg.locator(".md-typeset__scrollwrap.altgrad-scrolls").first
        assert box.get_attribute("role") == "region" and "scrolls sideways" in box.get_attribute("aria-label")
        assert pg.locator(".altgrad-scroll-hint:not([hidden])").count() >= 1
        box.focus()
        pg.keyboard.press("ArrowRight")
        pg.keyboard.press("ArrowRight")
        pg.wait_for_timeout(200)
        assert box.evaluate("b => b.scrollLeft") > 0
    finally:
        context.close()
