"""Consistency over a built site: every quantity stated on more than one page has one value.

:func:`consistency` reads any built site (run it on the bundled one with
``python -m tests.test_findings_site SITE_DIR``); the tests build the small learning-rate sweep of
tests/findings_fixtures.py, whose findings are known by construction: 42 runs, 2 failed, in 1
of 10 conditions; a family of 4; a fragile headline (E4M3 at lr 0.1) at a learning rate best
for neither optimizer; 2/6 vs 0/6 failed runs at E5M2 lr 0.1.
"""

from __future__ import annotations

import csv
import html
import re
import sys
from pathlib import Path

import pytest

from altgrad_docs.analysis import digits
from tests.findings_fixtures import build_sweep_snapshot
from tests.site_fixtures import run_mkdocs_build

PAGES = {"home": "index.html", "methods": "methods/index.html", "format": "format-comparison/index.html",
         "failures": "failure-modes/index.html", "manifold": "manifold-vs-adamw/index.html"}
#: quantity -> page -> the pattern that reads it there
STATED = {
    "completed runs": {"home": r"(\d+) completed runs in", "format": r"(\d+) completed runs \(",
                       "failures": r"failed runs? of (\d+) completed", "methods": r"These data hold (\d+) completed"},
    "failed runs": {"home": r"(\d+) of the \d+ failed", "format": r"\((\d+) failed\) in",
                    "failures": r"(\d+) failed runs? of"},
    "conditions": {"home": r"completed runs in (\d+) conditions", "format": r"failed\) in (\d+) conditions",
                   "failures": r"in \d+ of the (\d+) conditions", "methods": r"completed runs in (\d+) conditions"},
    "conditions with a failure": {"home": r"failed, in (\d+) of the", "format": r"(\d+) of the \d+ conditions had",
                                  "failures": r"completed, in (\d+) of the"},
    "family size": {"home": r"One family of (\d+) comparisons?", "methods": r"In these data: (\d+) comparisons?",
                    "manifold": r"family of (\d+)\)"},
    "sweet spot": {"home": r"(?:(?:lowest|highest) median, |condition by [^:*]+: )(\S+ with \S+(?: at [^(:]+?)?)(?: \(|:)",
                   "format": r"(?:best median [a-z ]+, |the sweet spot .*? is )(\S+ with \S+(?: at [^(:]+?)?)(?: \(|:)"},
}


#: Quantities the findings may name nowhere (no best condition when the runs came from several
#: scripts, or none has a finite metric): consistent when no page states one.
UNSTATED_ON_EVERY_PAGE_OK = {"sweet spot"}


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8")
    body = raw[raw.index('<article'):raw.index('</article>')]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def read_site(site_dir: Path) -> dict:
    pages = {k: _text(Path(site_dir) / v) for k, v in PAGES.items()}
    with open(Path(site_dir) / "manifold-vs-adamw" / "tables" / "tab-paired.csv", newline="") as fh:
        pages["csv"] = list(csv.DictReader(fh))
    return pages


def consistency(site: dict) -> dict[str, str]:
    """Each quantity's one value; AssertionError naming the quantity and every value found when
    two pages disagree (or a page does not state it)."""
    out = {}
    for name, patterns in STATED.items():
        found = {page: set(re.findall(pattern, site[page])) for page, pattern in patterns.items()}
        values = set().union(*found.values())
        if name in UNSTATED_ON_EVERY_PAGE_OK and not values:  # e.g. no best condition named: on no page
            out[name] = ""
            continue
        assert all(found.values()) and len(values) == 1, f"{name}: {found}"
        out[name] = values.pop()
    members = [r for r in site["csv"] if r["in_family"] == "True"]
    assert {r["family_size"] for r in members} <= {out["family size"]}
    held = [r for r in members if r["wording"] in ("holds", "fragile")]
    if held:  # the headline: one effect and one adjusted p, on the home page, the Manifold page and in the CSV
        head = min(held, key=lambda r: float(r["t_p_holm"]))
        effect = digits.estimate(float(head["mean_delta"]), float(head["ci_low"]), float(head["ci_high"]))
        p = digits.p_phrase(float(head["t_p_holm"]))
        where = f"{head['format']} at {head['setting']}" if head["setting"] else head["format"]
        for page in ("home", "manifold"):
            hit = re.search(re.escape(where) + r" : [^;]*?= " + re.escape(effect) + r"; significant by the t test "
                            r"after Holm's correction for " + out["family size"] + r" comparisons? \(p " + re.escape(p),
                            site[page])
            assert hit, (page, where, effect, p)
        out["headline"] = f"{where}: {effect}, Holm p {p}, {head['wording']}"
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("findings-site")
    snapshot = build_sweep_snapshot(base / "snapshot")
    result = run_mkdocs_build(snapshot, base / "site", base / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    return read_site(base / "site")


@pytest.mark.slow
def test_every_quantity_on_more_than_one_page_has_one_value(site):
    values = consistency(site)
    assert values == {"completed runs": "42", "failed runs": "2", "conditions": "10", "conditions with a failure": "1",
                      "family size": "4", "sweet spot": "E4M3 with AdamW at learning_rate=0.01",
                      "headline": "E4M3 at learning_rate=0.1: −0.1440 [−0.1498, −0.1382], Holm p < 0.001, fragile"}


@pytest.mark.slow
def test_consistency_fails_when_a_page_disagrees(site):
    broken = dict(site, failures=site["failures"].replace("in 1 of the 10 conditions", "in 1 of the 7 conditions"))
    with pytest.raises(AssertionError, match="conditions"):
        consistency(broken)


@pytest.mark.slow
def test_the_headline_is_fragile_in_its_own_sentence_with_what_breaks_it(site):
    head = next(r for r in site["csv"] if (r["format"], r["setting"]) == ("E4M3", "learning_rate=0.1"))
    assert head["wording"] == "fragile" and head["breaks"] == "exact; previous"
    exact = ("the sign-flip permutation (exact) test of the same 6 pairs gives p = 0.031 (the smallest it can "
             f"give with 6 pairs), {digits.p_value(float(head['exact_p_holm']))} after Holm")
    assert exact in site["home"] and exact in site["manifold"]
    assert "on the evaluation before the last the difference is 0.2560 [0.2502, 0.2618]" in site["home"]


@pytest.mark.slow
def test_best_levels_and_failures_are_said_alike(site):
    assert "The headline above sits at learning_rate = 0.1, a level best for neither optimizer." in site["home"]
    failure = "E5M2 at learning_rate=0.1: ManifoldAdamW 0/6 failed, AdamW 2/6 (Boschloo exact test p = 0.21"
    assert failure in site["home"] and failure in site["manifold"]
    assert "No single best 8-bit condition" in site["home"] and "no single best" in site["format"]


if __name__ == "__main__":  # a built site's one value per quantity, e.g. the bundled one
    for key, value in consistency(read_site(Path(sys.argv[1]))).items():
        print(f"{key}: {value}")
