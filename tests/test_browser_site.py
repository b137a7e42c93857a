"""The built fixture site in a real browser (Debian's chromium through Playwright).

The site is served from 127.0.0.1 by an http.server thread on a random port, as a plain
file server would, and under a subpath (``/site/``), as GitHub Pages serves a project site:
any absolute link would break there. Nothing else is contacted.
"""

import contextlib
import os
import threading
import urllib.request
from functools import partial
from pathlib import Path
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from tests.conftest import require, require_file
from tests.site_fixtures import FAILED_RUN_ID, RUNS, XSS_NAME, XSS_RUN_ID, built_fixture_site

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ["ALTGRAD_SHOTS"]) if os.environ.get("ALTGRAD_SHOTS") else None  # keep screenshots

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def served_under_subpath(site):
    """``site`` on 127.0.0.1 at ``/<site.name>/`` (a random port), as Pages serves a project."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{site.name}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    with served_under_subpath(built_fixture_site(tmp_path_factory.getbasetemp() / "fixture_site")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = require("playwright.sync_api")  # under CI=true a missing one fails, never skips
    require_file("/usr/bin/chromium", "the browser tests drive Debian's chromium")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def _page_urls(base_url):
    pages = ["", "runs/", "formats/", "methods/", "cite/", "format-comparison/", "failure-modes/",
             "manifold-vs-adamw/"]
    return [base_url + p for p in pages] + [f"{base_url}runs/{run_id}/" for run_id, *_ in RUNS]


def _visit(page, url):
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="networkidle")
    return problems


def test_every_page_loads_clean_and_images_decode(page, base_url):
    links = set()
    for url in _page_urls(base_url):
        problems = _visit(page, url)
        assert problems == [], (url, problems)
        images = page.eval_on_selector_all(
            "article img", "imgs => imgs.map(i => [i.currentSrc, i.complete && i.naturalWidth > 0])")
        assert all(ok for _, ok in images), (url, images)
        if "/runs/" in url and url.rstrip("/").rsplit("/", 1)[1] in {r[0] for r in RUNS}:
            assert len(images) == 1, url
        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        origin = base_url[: base_url.index("/", len("http://"))]
        same_host = {urldefrag(h)[0] for h in hrefs if h.startswith(origin)}
        assert [h for h in same_host if not h.startswith(base_url)] == [], url  # relative links only
        links |= same_host
    assert len(page.dialogs) == 0
    bad = []
    for link in sorted(links):
        try:
            with urllib.request.urlopen(link, timeout=10) as resp:
                if resp.status != 200:
                    bad.append((link, resp.status))
        except Exception as exc:  # noqa: BLE001 - report every broken link at once
            bad.append((link, str(exc)))
    assert bad == []
    assert any(urlsplit(link).path.endswith("/fig-history.json") for link in links)
    assert any(urlsplit(link).path.endswith("/tab-runs.tex") for link in links)


def test_runs_table_filters_and_sorts(page, base_url):
    page.goto(base_url + "runs/", wait_until="networkidle")
    rows = page.locator("div.altgrad-table tbody tr")
    assert rows.count() == len(RUNS)
    page.fill("input.altgrad-filter", "E4M3 manifold")
    visible = [r for r in range(rows.count()) if rows.nth(r).is_visible()]
    assert len(visible) == 2
    page.fill("input.altgrad-filter", "failed")
    names = [rows.nth(r).locator("td").first.inner_text() for r in range(rows.count()) if rows.nth(r).is_visible()]
    assert names == ["e7m0-adamw-s1"]
    page.fill("input.altgrad-filter", "")
    page.locator("div.altgrad-table th", has_text="final train loss").first.click()
    col = [h.strip() for h in page.eval_on_selector_all("div.altgrad-table th", "t => t.map(x => x.textContent)")].index("final train loss")
    values = page.eval_on_selector_all("div.altgrad-table tbody tr", f"rs => rs.map(r => r.cells[{col}].textContent.trim())")
    finite = [float(v) for v in values if v != "NaN"]
    assert finite == sorted(finite) and values[-1] == "NaN"


def test_search_finds_a_run_id(page, base_url):
    page.goto(base_url, wait_until="networkidle")
    page.locator("label.md-search__icon, .md-search__input").first.click()
    page.locator(".md-search-result__meta", has_text="Type to start searching").wait_for(timeout=15000)
    page.locator("input.md-search__input").press_sequentially(FAILED_RUN_ID, delay=20)
    result = page.locator(f".md-search-result__item a[href*='runs/{FAILED_RUN_ID}/']").first
    result.wait_for(timeout=15000)
    assert FAILED_RUN_ID in result.get_attribute("href")


def test_xss_run_name_shows_as_text(page, base_url):
    problems = _visit(page, f"{base_url}runs/{XSS_RUN_ID}/")
    assert problems == []
    assert page.locator("article h1").first.inner_text().replace("¶", "").strip() == f"Run {XSS_NAME}"
    assert page.locator("img[src='x']").count() == 0
    page.goto(base_url + "runs/", wait_until="networkidle")
    assert page.locator("div.altgrad-table td", has_text=XSS_NAME).count() == 1
    assert page.locator("img[src='x']").count() == 0
    assert page.dialogs == []


#: Measured in the page: sideways scroll of the page, every table (does it, or the box that
#: scrolls it, stay inside the content column?), and every figure (decoded, inside the
#: content column).
LAYOUT_JS = """() => {
  const content = document.querySelector('.md-content').getBoundingClientRect();
  const scroller = el => {  // the nearest box (the table itself or above) that scrolls sideways
    for (let e = el; e && e.tagName !== 'ARTICLE'; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if ((o === 'auto' || o === 'scroll') && e.scrollWidth > e.clientWidth + 1) return e;
    }
    return null;
  };
  const tables = [...document.querySelectorAll('article table')].map(t => {
    const box = scroller(t), r = t.getBoundingClientRect();
    return {width: Math.round(r.width), scrolls: !!box,
            overhang: Math.round((box ? box.getBoundingClientRect() : r).right - content.right)};
  });
  // images hidden on purpose (a run chart's static fallback, once the chart is drawn) are not shown
  const figures = [...document.querySelectorAll('article img')].filter(i => i.getClientRects().length > 0).map(i => {
    const r = i.getBoundingClientRect();
    return {src: i.currentSrc, decoded: i.complete && i.naturalWidth > 0,
            overhang: Math.round(r.right - content.right), width: Math.round(r.width)};
  });
  const doc = document.documentElement;
  return {sideways: doc.scrollWidth - doc.clientWidth, content: Math.round(content.width), tables, figures};
}"""


def test_pages_fit_1280_px_wide_tables_scroll_in_their_box(browser, base_url):
    # Cells wrap (issue 21: unwrapped cells made the primary tables 1,200-2,900 px wide in a
    # 796 px column, their last columns out of sight); a table that still does not fit scrolls
    # in its box with a visible hint (test_browser_a11y checks the hint and the keyboard).
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    try:
        for url in _page_urls(base_url):
            pg.goto(url, wait_until="networkidle")
            m = pg.evaluate(LAYOUT_JS)
            assert m["sideways"] <= 0, (url, "the page scrolls sideways", m["sideways"])
            for t in m["tables"]:
                assert t["overhang"] <= 1, (url, "a table is clipped: it sticks out of the content", t)
                if t["width"] > m["content"]:
                    assert t["scrolls"], (url, "a wide table is clipped, not scrollable", t)
            for f in m["figures"]:
                assert f["decoded"] and f["width"] > 0, (url, "a figure did not decode", f)
                assert f["overhang"] <= 1, (url, "a figure is clipped", f)
    finally:
        context.close()
def _run_chart(page, url):
    problems = _visit(page, url)
    page.locator("figure.altgrad-runchart.altgrad-live").wait_for(timeout=15000)
    return problems


def test_run_chart_draws_its_data(page, base_url):
    """Three uPlot panels with a line each, the static fallback hidden, the collapse marked."""
    problems = _run_chart(page, f"{base_url}runs/{FAILED_RUN_ID}/")
    assert problems == []
    panels = page.locator("figure.altgrad-runchart .altgrad-runchart-panel")
    assert panels.count() == 3
    assert page.locator("figure.altgrad-runchart .uplot canvas").count() == 3
    # each chart holds the JSON's points: uPlot keeps its data on the instance, so count the
    # legend's series and check that the canvas is not blank
    names = page.eval_on_selector_all(
        "figure.altgrad-runchart .u-legend .u-series th", "ths => ths.map(t => t.textContent.trim())")
    assert "loss" in names and "grad_norm" in names and "bit_stall_rate" in names
    inked = page.eval_on_selector_all("figure.altgrad-runchart canvas", """cs => cs.map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })""")
    assert all(n > 200 for n in inked), inked
    assert not page.locator(".altgrad-runchart-fallback img").is_visible()


def test_run_chart_hover_shows_a_value_on_every_panel(page, base_url):
    _run_chart(page, f"{base_url}runs/a1e4m3s1/")
    over = page.locator("figure.altgrad-runchart .altgrad-runchart-panel").first.locator(".u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    over.hover(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "run-chart-hover.png"), full_page=True) if SHOTS else None
    values = page.eval_on_selector_all(
        "figure.altgrad-runchart .altgrad-runchart-panel", """ps => ps.map(p =>
        Array.from(p.querySelectorAll('.u-legend .u-series .u-value')).map(v => v.textContent.trim()))""")
    steps = [v[0] for v in values]
    assert len(set(steps)) == 1 and steps[0].isdigit() and 10 <= int(steps[0]) <= 30, values  # one x across panels
    loss = values[0][1]
    assert loss != "--" and float(loss) > 0, values


def test_run_chart_fallback_without_javascript(browser, base_url):
    context = browser.new_context(java_script_enabled=False)
    try:
        pg = context.new_page()
        pg.goto(f"{base_url}runs/a1e4m3s1/", wait_until="networkidle")
        img = pg.locator("figure.altgrad-runchart .altgrad-runchart-fallback img")
        assert img.is_visible()
        assert pg.eval_on_selector("figure.altgrad-runchart .altgrad-runchart-fallback img",
                                   "i => i.complete && i.naturalWidth > 0")
        assert pg.locator("figure.altgrad-runchart canvas").count() == 0
        assert not pg.locator(".altgrad-runchart-hint").is_visible()
    finally:
        context.close()
