"""A run page as a W&B user reads it (fixture site, Chromium): overview first, links to the
paired run, the sibling seeds and the condition's place in the report; the history chart's
legend works from the keyboard, its canvases are labelled, the loss panel switches between
log and linear scale, and hovering between evaluations shows a sparse series' last value."""

from __future__ import annotations

import json

import pytest

from tests.browser_audit import new_context, visit
from tests.browser_sites import fixture_site  # noqa: F401 - fixture
from tests.site_fixtures import CONSOLE_LAST_WORDS, FAILED_RUN_ID
from tests.test_browser_site import browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser

RUN, PAIR, SIBLING = "a1e4m3s1", "m1e4m3s1", "a2e4m3s2"  # tests/site_fixtures.py RUNS


@pytest.fixture
def run_page(browser, fixture_site):
    _, base, _ = fixture_site
    context = new_context(browser, 1280)
    pg = context.new_page()
    yield pg, base
    context.close()


def test_overview_comes_first_and_links_pair_siblings_and_condition(run_page):
    pg, base = run_page
    visit(pg, f"{base}runs/{RUN}/")
    headings = pg.eval_on_selector_all("article h2", "hs => hs.map(h => h.textContent.replace('¶', '').trim())")
    assert headings[:3] == ["Overview", "History", "Summary"], headings
    hrefs = pg.eval_on_selector_all("article a[href]", "as => as.map(a => [a.textContent.trim(), a.href])")
    by_text = dict(hrefs)
    assert by_text["e4m3-manifold-s1"].endswith(f"/runs/{PAIR}/")
    assert by_text["seed 2"].endswith(f"/runs/{SIBLING}/")
    summary = pg.locator("#tab-summary").inner_text()
    assert "_step" not in summary and "nats" in summary  # W&B's own keys out, units in
    condition = next(h for t, h in hrefs if t.startswith("E4M3 · AdamW"))
    assert condition.endswith("/format-comparison/#results")
    visit(pg, condition)
    assert pg.locator("#results").count() == 1


def test_legend_toggles_from_the_keyboard_and_canvases_are_labelled(run_page):
    pg, base = run_page
    visit(pg, f"{base}runs/{RUN}/")
    labels = pg.eval_on_selector_all("figure.altgrad-runchart canvas", "cs => cs.map(c => c.getAttribute('aria-label'))")
    assert labels and all(lbl and "against step" in lbl for lbl in labels), labels
    entry = pg.locator("figure.altgrad-runchart .u-legend .u-series[tabindex='0']").first
    assert entry.get_attribute("aria-checked") == "true"
    pg.locator("figure.altgrad-runchart .altgrad-scale-toggle").first.focus()
    pg.keyboard.press("Tab")  # the keyboard reaches the legend
    assert pg.evaluate("() => document.activeElement.getAttribute('role')") == "switch"
    entry.focus()
    pg.keyboard.press("Enter")
    assert entry.get_attribute("aria-checked") == "false" and "u-off" in entry.get_attribute("class")
    pg.keyboard.press(" ")
    assert entry.get_attribute("aria-checked") == "true" and "u-off" not in entry.get_attribute("class")


def test_loss_panel_switches_log_and_linear(run_page):
    pg, base = run_page
    visit(pg, f"{base}runs/{RUN}/")
    loss = pg.locator("figure.altgrad-runchart .altgrad-runchart-panel[data-panel='loss']")
    toggle = loss.locator(".altgrad-scale-toggle")
    assert toggle.get_attribute("aria-pressed") == "true" and "(log)" in loss.locator(".u-title").inner_text()
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false" and "(log)" not in loss.locator(".u-title").inner_text()
    assert loss.locator("canvas").count() == 1


def test_hover_shows_the_last_value_of_a_sparse_series(run_page, fixture_site):
    """val_loss logged every 10 steps (the chart data served so): between evaluations the
    legend shows the last logged value and its step, not "--"."""
    site, _, _ = fixture_site
    pg, base = run_page
    data = json.loads((site / "runs" / RUN / "figures" / "fig-history.json").read_text())
    loss = data["panels"][0]
    val = next(s for s in loss["series"] if s["name"] == "val_loss")
    val["y"] = [y if x % 10 == 0 else None for x, y in zip(loss["x"], val["y"])]
    pg.route("**/fig-history.json", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                   body=json.dumps(data)))
    visit(pg, f"{base}runs/{RUN}/")
    over = pg.locator("figure.altgrad-runchart .altgrad-runchart-panel[data-panel='loss'] .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    step_x = 15 / 39 * box["width"]  # step 15 of 0-39: no val_loss there
    over.hover(position={"x": step_x, "y": box["height"] / 2})
    pg.wait_for_timeout(200)
    values = pg.eval_on_selector_all(
        "figure.altgrad-runchart .altgrad-runchart-panel[data-panel='loss'] .u-legend .u-series",
        "rs => rs.map(r => [r.querySelector('.u-label').textContent.trim(), r.querySelector('.u-value').textContent.trim()])")
    shown = dict(values)
    step = int(shown["step"])
    assert step % 10 != 0, shown
    assert shown["val_loss"].endswith(f"(step {step - step % 10})"), shown


def test_failed_run_shows_its_console_tail_first_escaped_and_downloadable(run_page):
    pg, base = run_page
    visit(pg, f"{base}runs/{FAILED_RUN_ID}/")
    blocks = pg.eval_on_selector_all("article > *", "es => es.map(e => e.tagName + ' ' + e.textContent.slice(0, 60))")
    first_h2 = next(i for i, b in enumerate(blocks) if b.startswith("H2"))
    tail = pg.locator("article details.quote").first
    assert CONSOLE_LAST_WORDS in tail.inner_text() and "\x1b" not in tail.inner_text()
    assert blocks.index(next(b for b in blocks if b.startswith("DETAILS"))) < first_h2  # above the overview
    assert "<script>alert('console')</script>" in tail.inner_text()  # shown as text
    assert pg.locator("article script").count() == 0
    link = pg.locator("a[href$='logs/console.txt']").first
    text = pg.evaluate("u => fetch(u).then(r => r.text())", link.evaluate("a => a.href"))
    assert CONSOLE_LAST_WORDS in text
    for heading in ("Environment", "System metrics", "Console output"):
        assert pg.locator("article h2", has_text=heading).count() == 1, heading
    assert "fixture-host" in pg.locator("article").inner_text()
