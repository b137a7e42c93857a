"""Consistency over a built site: every quantity stated on more than one page has one value.

The site is built (``mkdocs build --strict``) from the small learning-rate sweep of
tests/findings_fixtures.py, whose findings are known by construction: 42 runs, 2 failed, in 1
of 10 conditions; a family of 4; a fragile headline (E4M3 at lr 0.1) at a learning rate best
for neither optimizer; 2/6 vs 0/6 failed runs at E5M2 lr 0.1.
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import pytest

from altgrad_docs.analysis import digits
from tests.findings_fixtures import build_sweep_snapshot
from tests.site_fixtures import run_mkdocs_build

PAGES = {"home": "index.html", "methods": "methods/index.html", "format": "format-comparison/index.html",
         "failures": "failure-modes/index.html", "manifold": "manifold-vs-adamw/index.html"}


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8")
    body = raw[raw.index('<article'):raw.index('</article>')]
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("findings-site")
    snapshot = build_sweep_snapshot(base / "snapshot")
    result = run_mkdocs_build(snapshot, base / "site", base / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    pages = {k: _text(base / "site" / v) for k, v in PAGES.items()}
    with open(base / "site" / "manifold-vs-adamw" / "tables" / "tab-paired.csv", newline="") as fh:
        pages["csv"] = list(csv.DictReader(fh))
    return pages


def _values(site: dict, pattern: str, pages: tuple[str, ...]) -> dict[str, set[str]]:
    found = {p: set(re.findall(pattern, site[p])) for p in pages}
    for page, values in found.items():
        assert values, f"{pattern!r} is not stated on {page}"
    return found


def _one(site: dict, patterns: dict[str, str], expected: str) -> None:
    """Each page's pattern finds one value, the same on every page, and it is ``expected``."""
    values = set()
    for page, pattern in patterns.items():
        found = set(re.findall(pattern, site[page]))
        assert found, f"{pattern!r} is not stated on {page}"
        values |= found
    assert values == {expected}, patterns


@pytest.mark.slow
def test_counts_have_one_value_on_every_page(site):
    _one(site, {"home": r"(\d+) completed runs", "format": r"(\d+) completed runs",
                "failures": r"of (\d+) completed", "methods": r"These data hold (\d+) completed runs"}, "42")
    _one(site, {"home": r"(\d+) of the 42 failed", "format": r"\((\d+) failed\)",
                "failures": r"(\d+) failed runs? of 42"}, "2")
    _one(site, {"home": r"completed runs in (\d+) conditions", "format": r"\) in (\d+) conditions",
                "failures": r"of the (\d+) conditions", "methods": r"in (\d+) conditions"}, "10")
    _one(site, {"home": r"failed, in (\d+) of the 10 conditions", "format": r"(\d+) of the 10 conditions had",
                "failures": r"in (\d+) of the 10 conditions"}, "1")


@pytest.mark.slow
def test_the_family_and_its_headline_have_one_value_on_every_page_and_in_the_download(site):
    _one(site, {"home": r"One family of (\d+) comparisons", "methods": r"In these data: (\d+) comparisons",
                "manifold": r"family of (\d+)\)"}, "4")
    assert {r["family_size"] for r in site["csv"] if r["in_family"] == "True"} == {"4"}
    head = next(r for r in site["csv"] if (r["format"], r["setting"]) == ("E4M3", "learning_rate=0.1"))
    effect = digits.estimate(float(head["mean_delta"]), float(head["ci_low"]), float(head["ci_high"]))
    p = digits.p_phrase(float(head["t_p_holm"]))
    sentence = (f"E4M3 at learning_rate=0.1 : ManifoldAdamW lower on 6/6 seeds, ManifoldAdamW − AdamW = {effect}; "
                f"significant by the t test after Holm's correction for 4 comparisons (p {p}), but fragile")
    for page in ("home", "manifold"):
        assert sentence in site[page], page
    exact = f"the sign-flip permutation (exact) test of the same 6 pairs gives p = 0.031 (the smallest it can " \
            f"give with 6 pairs), {digits.p_value(float(head['exact_p_holm']))} after Holm"
    assert exact in site["home"] and exact in site["manifold"]
    assert head["wording"] == "fragile" and head["breaks"] == "exact; previous"
    # every adjusted p printed for a member is the download's, by the digits rule
    for r in site["csv"]:
        if r["in_family"] == "True":
            assert f"(Holm p {digits.p_phrase(float(r['t_p_holm']))})" in site["manifold"] or \
                f"(p {digits.p_phrase(float(r['t_p_holm']))})" in site["manifold"]


@pytest.mark.slow
def test_best_levels_failures_and_the_sweet_spot_are_said_alike(site):
    assert "The headline above sits at learning_rate = 0.1, a level best for neither optimizer." in site["home"]
    failure = "E5M2 at learning_rate=0.1: ManifoldAdamW 0/6 failed, AdamW 2/6 (Boschloo exact test p = 0.21"
    assert failure in site["home"] and failure in site["manifold"]
    spot = _values(site, r"E4M3 with AdamW at learning_rate=0.01 \(?:? ?(\d\.\d+ \[\d\.\d+, \d\.\d+\])",
                   ("home", "format"))
    assert spot["home"] == spot["format"] and len(spot["home"]) == 1
    assert "No single best 8-bit condition" in site["home"] and "no single best" in site["format"]
