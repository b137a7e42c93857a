"""Every page type in Chromium at 1280 and 390 px, light and dark: axe-core finds no serious
or critical violation (every rule in light, in dark the rules that depend on colour; the
vendored axe and the theme's allowlist are in tests/browser_audit.py), no table is cut off
without a visible, keyboard-operable scroll box, no page scrolls sideways.

By default the fixture site (tests/site_fixtures.py, built once per session and shared with
test_browser_site) at 390 px, light; marked slow: the fixture site in all four views, the
bundled 288-run site and the six-setting study (tests/browser_sites.py, each built once per
session) likewise.
"""

from __future__ import annotations

import pytest

from tests.browser_audit import COLOUR_RULES, PAGE_TYPES, axe_violations, blocking, new_context, tables, visit
from tests.browser_sites import bundled_site, fixture_site, six_setting_site  # noqa: F401 - fixtures
from tests.test_browser_site import browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser

VIEWS = [(1280, "light"), (1280, "dark"), (390, "light"), (390, "dark")]
#: The quick run (not slow): every rule at 390 px in the light scheme, where most tables
#: scroll; the slow runs cover all four views.
QUICK_VIEWS = [(390, "light")]


def _audit(browser, _site, base, run_page, views=VIEWS):
    """Per view and page: the blocking axe violations and the layout faults (empty = clean),
    and how many tables scrolled (the affordance was exercised)."""
    faults, scrolled = [], 0
    for width, scheme in views:
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


def test_fixture_site_is_accessible_and_fits(browser, fixture_site):
    faults, scrolled = _audit(browser, *fixture_site, views=QUICK_VIEWS)
    assert faults == []
    assert scrolled > 0  # at 390 px some tables must scroll: the affordance is exercised


@pytest.mark.slow
def test_fixture_site_is_accessible_and_fits_in_every_view(browser, fixture_site):
    faults, _ = _audit(browser, *fixture_site)
    assert faults == []


@pytest.mark.slow
def test_bundled_site_is_accessible_and_fits(browser, bundled_site):
    faults, scrolled = _audit(browser, *bundled_site)
    assert faults == []
    assert scrolled > 0


@pytest.mark.slow
def test_six_setting_site_is_accessible_and_fits(browser, six_setting_site):
    faults, _ = _audit(browser, *six_setting_site)
    assert faults == []


def test_scroll_box_takes_the_keyboard(browser, fixture_site):
    _, base, _ = fixture_site
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
