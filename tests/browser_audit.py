"""What the accessibility and layout browser tests measure in a page (axe-core, table boxes,
figure text), shared by the tests and by a hand run over any built site:

    python -m tests.browser_audit SITE_DIR [out.json]

axe-core is vendored in tests/vendor/axe-core (MPL-2.0, tests only, never shipped).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

AXE_JS = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
#: Impacts that fail a page.
BLOCKING = ("serious", "critical")
#: Violations inside Material for MkDocs' own markup (rule id -> CSS selector prefix of the
#: theme's element): the theme's, not this site's.
THEME_ALLOWED: dict[str, tuple[str, ...]] = {
    # Material's search overlay is role=dialog without a name (theme markup, partials/search.html)
    "aria-dialog-name": (".md-search",),
}
#: One page of each type, relative to the site root (a run page is appended by the caller).
PAGE_TYPES = ("", "format-comparison/", "failure-modes/", "manifold-vs-adamw/", "formats/", "runs/", "methods/")

AXE_RUN = """async (rules) => {
  const opts = {resultTypes: ['violations']};
  if (rules) opts.runOnly = {type: 'rule', values: rules};
  const r = await axe.run(document, opts);
  return r.violations.map(v => ({id: v.id, impact: v.impact,
                                 nodes: v.nodes.map(n => n.target.join(' '))}));
}"""
#: The rules whose outcome depends on the colour scheme (the dark pass runs only these: the
#: other rules see the same markup and layout as in the light pass).
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
SETTLE_JS = """async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await frame();
  const charts = [...document.querySelectorAll('figure.altgrad-runchart[data-src]')];
  for (let i = 0; i < 100 && charts.some(c => !c.classList.contains('altgrad-live')); i++)
    await new Promise(r => setTimeout(r, 50));
  await frame();
}"""


def new_context(browser, width: int, scheme: str = "light"):
    """A browser context of that width and colour scheme, with axe-core in every page."""
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    context.add_init_script(script=AXE_JS.read_text(encoding="utf-8"))
    return context


def visit(page, url: str) -> None:
    """Load ``url`` and wait until the site's scripts are done (tables marked, charts drawn)."""
    page.goto(url, wait_until="load")
    page.evaluate(SETTLE_JS)


#: Every table's box: is the table wider than the place it stands, and if so, does a box
#: around it scroll, say so (class altgrad-scrolls, set by tables.js) and take the keyboard?
TABLES_JS = """() => {
  const content = document.querySelector('.md-content').getBoundingClientRect();
  const scroller = el => {  // the nearest box that scrolls the table sideways
    for (let e = el; e && e.tagName !== 'ARTICLE'; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if ((o === 'auto' || o === 'scroll') && e.scrollWidth > e.clientWidth + 1) return e;
    }
    return null;
  };
  const doc = document.documentElement;
  return {sideways: doc.scrollWidth - doc.clientWidth, content: Math.round(content.width),
    tables: [...document.querySelectorAll('article table')].filter(t => !t.closest('details:not([open])')).map(t => {
      const box = scroller(t), r = t.getBoundingClientRect();
      return {id: (t.closest('[id]') || {}).id || (t.tHead ? t.tHead.textContent.trim().slice(0, 40) : ''), width: Math.round(r.width),
              overhang: Math.round((box ? box.getBoundingClientRect() : r).right - content.right),
              scrolls: !!box, hint: !!(box && box.classList.contains('altgrad-scrolls')
                                        && box.previousElementSibling
                                        && box.previousElementSibling.classList.contains('altgrad-scroll-hint')
                                        && !box.previousElementSibling.hidden),
              keyboard: !!(box && box.tabIndex >= 0 && box.getAttribute('role') === 'region'
                           && box.getAttribute('aria-label'))};
    })};
}"""


def axe_violations(page, rules: list[str] | None = None) -> list[dict]:
    """axe-core's violations of the page (loaded in a :func:`new_context`): id, impact,
    nodes (CSS selectors); ``rules``: only these rules."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(content=AXE_JS.read_text(encoding="utf-8"))
    return page.evaluate(AXE_RUN, rules)


def blocking(violations: list[dict]) -> list[dict]:
    """The serious and critical violations that are not the theme's (THEME_ALLOWED)."""
    out = []
    for v in violations:
        if v["impact"] not in BLOCKING:
            continue
        theirs = THEME_ALLOWED.get(v["id"], ())
        nodes = [n for n in v["nodes"] if not n.startswith(theirs)] if theirs else v["nodes"]
        if nodes:
            out.append({**v, "nodes": nodes})
    return out


def tables(page) -> dict:
    return page.evaluate(TABLES_JS)


def _main(site: Path, out: Path | None) -> None:
    """Audit every page type of a built site at 1280/390 px, light/dark; print counts."""
    from tests.test_browser_site import CHROMIUM_ARGS, served_under_subpath
    from playwright.sync_api import sync_playwright

    runs = sorted(p.parent.name for p in (site / "runs").glob("*/index.html"))
    paths = list(PAGE_TYPES) + [f"runs/{runs[0]}/"]
    result = []
    with served_under_subpath(site) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        for scheme in ("light", "dark"):
            for width in (1280, 390):
                ctx = new_context(browser, width, scheme)
                pg = ctx.new_page()
                for p in paths:
                    visit(pg, base + p)
                    result.append({"page": p, "scheme": scheme, "width": width,
                                   "violations": axe_violations(pg), "layout": tables(pg)})
                ctx.close()
        browser.close()
    for r in result:
        counts = {v["id"]: (v["impact"], len(v["nodes"])) for v in r["violations"]}
        print(r["scheme"], r["width"], r["page"] or "home", counts, "sideways", r["layout"]["sideways"])
    if out:
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    _main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
