"""Report figures as a reader at 1280 px sees them: at most MAX_PANELS panels in a figure,
no text smaller than MIN_TEXT_PX as shown, alt text = the caption, click to enlarge, and a
link to the table that holds the figure's numbers. Figures in content tabs (one per setting)
are measured in their tab. On the fixture site by default; on the bundled site and the
six-setting study (slow)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest

from altgrad_docs.report.figure_style import MAX_PANELS
from tests.browser_audit import new_context, visit
from tests.browser_sites import bundled_site, fixture_site, six_setting_site  # noqa: F401 - fixtures
from tests.test_browser_site import browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser

MIN_TEXT_PX = 9.0
REPORT_PAGES = ("format-comparison/", "failure-modes/", "manifold-vs-adamw/", "formats/")

#: Every report figure's image as shown (each tab opened in turn): src, shown width, alt,
#: caption, the enlarge link and the "numbers" link.
FIGURES_JS = """() => {
  const out = {};
  const measure = () => {
    for (const img of document.querySelectorAll('article figure.altgrad-figure:not(.altgrad-runchart) img')) {
      const w = img.getBoundingClientRect().width, src = img.getAttribute('src');
      if (w > 0 && !(src in out)) {
        const fig = img.closest('figure'), cap = fig.querySelector('figcaption');
        const numbers = [...cap.querySelectorAll('a')].find(a => a.textContent.startsWith('table '));
        out[src] = {shown: w, alt: img.alt, caption: cap.textContent, id: fig.id,
                    enlarge: !!img.closest('a.altgrad-lightbox'), numbers: numbers ? numbers.href : null};
      }
    }
  };
  measure();
  for (const input of document.querySelectorAll('.tabbed-set > input')) { input.checked = true; measure(); }
  return out;
}"""


def svg_measures(svg: str) -> tuple[int, float, float]:
    """(panels, smallest text in pt, width in pt) of a matplotlib SVG (text drawn as paths:
    each glyph run is scaled by font size / 100; a panel is an axes with x ticks)."""
    width = float(re.search(r'<svg[^>]* width="([0-9.]+)pt"', svg).group(1))
    chunks = svg.split('<g id="axes_')[1:]
    panels = sum('id="xtick_' in c for c in chunks)
    sizes = [100 * float(s) for s in re.findall(r"scale\(([0-9.]+) -[0-9.]+\)", svg)]
    return panels, min(sizes, default=float("inf")), width


def _check_figures(browser, site: Path, base: str) -> tuple[list, int]:
    context = new_context(browser, 1280)
    faults, n = [], 0
    try:
        pg = context.new_page()
        for page in REPORT_PAGES:
            visit(pg, base + page)
            for src, f in pg.evaluate(FIGURES_JS).items():
                n += 1
                panels, text_pt, width_pt = svg_measures((site / page / src).read_text(encoding="utf-8"))
                shown_px = text_pt * f["shown"] / width_pt  # pt -> px at the shown scale
                where = (page, f["id"])
                if panels > MAX_PANELS:
                    faults.append((where, f"{panels} panels"))
                if shown_px < MIN_TEXT_PX:
                    faults.append((where, f"text {shown_px:.1f} px"))
                if not f["alt"] or f["alt"] == f["id"] or f["alt"] not in f["caption"]:
                    faults.append((where, "alt text is not the caption", f["alt"]))
                if not f["enlarge"]:
                    faults.append((where, "no click to enlarge"))
                if f["numbers"] is None:
                    faults.append((where, "no link to its numbers"))
                elif f["numbers"] and pg.evaluate("u => fetch(u).then(r => r.text())", f["numbers"].split("#")[0]).find(
                        'id="' + f["numbers"].split("#")[1] + '"') < 0:
                    faults.append((where, "its numbers' table is not where the link points", f["numbers"]))
    finally:
        context.close()
    return faults, n


def test_fixture_site_figures_are_legible(browser, fixture_site):
    site, base, _ = fixture_site
    faults, n = _check_figures(browser, site, base)
    assert faults == [] and n >= 8


def test_figure_opens_enlarged(browser, fixture_site):
    _, base, _ = fixture_site
    context = new_context(browser, 1280)
    try:
        pg = context.new_page()
        visit(pg, base + "format-comparison/")
        pg.locator("a.altgrad-lightbox").first.click()
        pg.locator(".glightbox-container .gslide-image img").first.wait_for(timeout=10000)
        pg.keyboard.press("Escape")
        pg.locator(".glightbox-container").wait_for(state="detached", timeout=10000)
    finally:
        context.close()


def test_svg_measures_reads_matplotlib_text_and_panels(tmp_path):
    from altgrad_docs.report import figures as F
    from altgrad_docs.report.export import save_figure

    fig = F.new_figure(figsize=(4.0, 2.0))
    axes = fig.subplots(1, 2)
    axes[0].set_title("small", fontsize=6)
    axes[1].plot([0, 1], [0, 1])
    svg = save_figure(fig, tmp_path / "f", ("svg",))["svg"].read_text()
    assert svg_measures(svg) == (2, 6.0, 288.0)


@pytest.mark.slow
def test_six_setting_figures_are_legible_one_figure_per_setting(browser, six_setting_site):
    site, base, _ = six_setting_site
    faults, n = _check_figures(browser, site, base)
    assert faults == []
    assert n >= 6 * 3  # loss curves, flow and stall: one figure per setting each
    html = (site / "format-comparison" / "index.html").read_text(encoding="utf-8")
    assert html.count('class="tabbed-set') >= 1


@pytest.mark.slow
def test_bundled_site_figures_are_legible(browser, bundled_site):
    site, base, _ = bundled_site
    faults, n = _check_figures(browser, site, base)
    assert faults == [] and n > 10
