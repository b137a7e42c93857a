"""The findings (analysis/findings.py): one family, estimation first, robustness, failures
compared, digits, and the sentence each wording rule writes (templates/reports/_findings.md.j2)."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest
import scipy.stats as sps

from altgrad_docs.analysis import digits, stats
from altgrad_docs.analysis.pipeline import analyse
from altgrad_docs.report.forest_svg import forest
from altgrad_docs.report.generator import make_environment as report_environment
from altgrad_docs.site.render import make_environment, render
from altgrad_docs.templates_dir import TEMPLATE_DIR as TEMPLATES
from tests.findings_fixtures import pair_runs, run_table

SENTENCE = ('{% import "reports/_findings.md.j2" as say %}{% macro esc(x) %}{{ x | md }}{% endmacro %}'
            '{{ say.sentence(c, f, esc) }}')


def sentence(f, c) -> str:
    return report_environment(TEMPLATES).from_string(SENTENCE).render(c=c, f=f)


def findings_of(cases: dict) -> object:
    runs, hists = pair_runs(cases)
    return analyse(runs, hists).findings


def home(f) -> str:
    return render(make_environment(TEMPLATES), "partials/findings.md",
                  results={"findings": f, "headline_figure": forest(f)})


# ---- wording rules -------------------------------------------------------------------------

def test_a_large_consistent_effect_that_misses_holm_is_consistent_not_no_evidence():
    # 5 comparisons; E4M3 lower on 4/4 seeds by a large paired effect, t p ~0.02 -> Holm ~0.1
    noise = [0.05, -0.04, 0.03, -0.02]
    cases = {"E4M3": {"last": [-0.30, -0.12, -0.45, -0.20]},
             **{f: {"last": [n * k for n in noise]} for k, f in enumerate(("E5M2", "E3M4", "E2M5", "E6M1"), 1)}}
    f = findings_of(cases)
    c = f.comparison("E4M3", "")
    d = np.array([-0.30, -0.12, -0.45, -0.20])
    assert f.family.size == 5 and c.in_family
    assert c.t_p == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    assert c.p_holm >= 0.05 and c.favour == 4 and abs(c.dz) >= 0.8
    assert c.branch == "consistent"
    text = sentence(f, c)
    assert "ManifoldAdamW lower on 4/4 seeds" in text
    assert "consistent on every seed, not significant after correcting for 5 comparisons" in text
    assert "no evidence" not in text and "no clear difference" not in text


def test_a_t_significant_effect_the_exact_test_cannot_support_is_fragile():
    # 5 tight pairs: t p < 1e-6, but the sign-flip test's smallest p is 2/2^5 = 0.0625
    f = findings_of({"E4M3": {"last": [-0.150, -0.152, -0.149, -0.151, -0.153]}})
    c = f.comparison("E4M3", "")
    assert c.p_holm < 1e-4 and c.robustness.exact_p == pytest.approx(0.0625)
    assert c.robustness.breaks == ("exact",) and c.branch == "fragile"
    text = sentence(f, c)
    assert "**fragile**" in text
    assert "the sign-flip permutation (exact) test of the same 5 pairs gives p = 0.062" in text
    assert "(the smallest it can give with 5 pairs)" in text
    assert f.headline is c


def test_a_headline_that_flips_at_another_final_step_is_fragile_and_says_where():
    last = [-0.15, -0.16, -0.14, -0.15, -0.17, -0.15, -0.16]
    f = findings_of({"E4M3": {"last": last, "previous": [0.10] * 7}})
    c = f.comparison("E4M3", "")
    r = c.robustness
    assert r.exact_p == pytest.approx(2 / 2**7) and "exact" not in r.breaks  # 7 pairs: the exact test holds
    assert r.breaks == ("previous",) and c.branch == "fragile"
    prev = next(a for a in r.alternatives if a.definition == "previous")
    assert prev.mean == pytest.approx(0.10) and prev.mean > 0 > c.mean
    assert "on the evaluation before the last the difference is 0.1" in sentence(f, c)


def test_a_robust_effect_holds():
    last = [-0.15, -0.16, -0.14, -0.15, -0.17, -0.15, -0.16]
    f = findings_of({"E4M3": {"last": last}})
    c = f.comparison("E4M3", "")
    assert c.robustness.breaks == () and c.branch == "holds"
    assert "and it holds under the exact test" in sentence(f, c)


def test_an_interval_that_includes_zero_is_no_clear_difference():
    f = findings_of({"E4M3": {"last": [-0.2, 0.1, -0.05, 0.12]}})
    c = f.comparison("E4M3", "")
    assert c.branch == "unclear" and "the 95 % interval includes 0: no clear difference" in sentence(f, c)


def test_a_setting_where_one_optimizer_fails_and_the_other_does_not_is_a_finding():
    f = findings_of({"E4M3": {"last": [-0.1, -0.12, 0.02, -0.05], "fail_adamw": (2, 3)}})
    (x,) = f.failures
    assert (x.k_manifold, x.n_manifold, x.k_adamw, x.n_adamw) == (0, 4, 2, 4) and x.branch == "one_fails"
    assert x.p == pytest.approx(sps.boschloo_exact([[0, 4], [2, 2]]).pvalue)
    c = f.comparison("E4M3", "")
    assert (c.n, c.n_seeds, c.lost) == (2, 4, 2)  # the failed runs' pairs are left out, and said so
    text = home(f)
    assert "in 1 setting one optimizer failed and the other did not: E4M3: ManifoldAdamW 0/4 failed, AdamW 2/4" in text
    assert "2 seed pairs lost to a failed run" in text and "no data" not in text


def test_two_failed_of_two_against_none_is_compared_not_no_data():
    r = stats.failure_rate_test(2, 2, 0, 2)
    assert r.p == pytest.approx(sps.boschloo_exact([[2, 0], [0, 2]]).pvalue) and r.p < 1
    assert math.isnan(stats.failure_rate_test(2, 2, 2, 2).p)  # every run failed under both: nothing to test


# ---- the sweep: one family, at-best, sweet spot, the home page -------------------------------

@pytest.fixture(scope="module")
def sweep():
    runs, hists = run_table()
    return analyse(runs, hists).findings


def test_one_family_per_question_and_counts_in_one_unit(sweep):
    k = sweep.counts
    assert (k.completed, k.failed, k.conditions, k.conditions_failed, k.seeds_min, k.seeds_max) == (42, 2, 10, 1, 3, 6)
    # 8-bit format x setting; BF16 is a reference outside the family
    assert sweep.family.members == (("E4M3", "learning_rate=0.01"), ("E4M3", "learning_rate=0.1"),
                                    ("E5M2", "learning_rate=0.01"), ("E5M2", "learning_rate=0.1"))
    members = sweep.members()
    assert [c.p_holm for c in members] == pytest.approx(stats.holm([c.t_p for c in members]))
    assert not sweep.comparison("BF16", "learning_rate=0.1").in_family


def test_the_headline_at_a_level_best_for_neither_is_said(sweep):
    h = sweep.headline
    assert (h.format, h.setting, h.branch) == ("E4M3", "learning_rate=0.1", "fragile")
    assert set(h.robustness.breaks) == {"exact", "previous"}  # 6 pairs x 4 comparisons; flips one evaluation earlier
    b = next(b for b in sweep.at_best if b.format == "E4M3")
    assert (b.manifold_level, b.adamw_level, b.headline_levels) == ("0.01", "0.01", ("0.1",))
    text = home(sweep)
    assert "The headline above sits at learning&#95;rate = 0.1, a level best for neither optimizer." in text
    assert "levels selected on this data" in text


def test_the_home_page_is_a_real_markdown_list(sweep):
    text = home(sweep).split('<div class="altgrad-forest"')[0]  # the list, then the figure
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert all(ln.startswith("- ") for ln in lines), lines
    assert all(ln.rfind("- **") in (-1, 0) for ln in lines)  # no item glued to the one before
    assert not re.search(r";\S", html.unescape(text))  # lists inside sentences: "; " with a space


def test_the_headline_figure_marks_the_fragile_comparison_and_links_its_page(sweep):
    text = home(sweep)
    svg = text[text.index("<svg"):text.index("</svg>")]
    assert svg.count("<circle") == sweep.family.size == 4
    assert svg.count('class="mark">fragile</text>') == 1  # E4M3 at lr 0.1 only
    assert '<a href="manifold-vs-adamw/"' in text and "[every comparison explained](manifold-vs-adamw/index.md)" in text
    g = forest(sweep)
    row = next(r for r in g["rows"] if r["fragile"])
    assert row["x_low"] < row["x_mean"] < row["x_high"] < g["x0"]  # the whole interval below zero


def test_no_single_best_when_the_best_conditions_are_within_seed_noise(sweep):
    s = sweep.sweet_spot
    assert s.branch == "no_single" and s.near
    assert all(c.min <= s.best.max and s.best.min <= c.max for c in s.near)
    assert "No single best 8-bit condition" in home(sweep)


# ---- digits and the statistics -------------------------------------------------------------

@pytest.mark.parametrize("mean, low, high, text", [
    (-0.404245, -0.62, -0.19, "−0.40 [−0.62, −0.19]"),  # half-width 0.215 -> 2 decimals
    (-0.145143, -0.185647, -0.104639, "−0.145 [−0.186, −0.105]"),
    (-0.048, -1.2166, 1.1204, "−0.05 [−1.2, 1.1]"),  # would round to 0: first significant digit kept
    (-5.55e-17, -0.1, 0.1, "0 [−0.10, 0.10]"),  # an exact zero prints 0
    (0.0123456, float("nan"), float("nan"), "0.0123"),  # no width: 3 significant digits
])
def test_digits_follow_the_half_width(mean, low, high, text):
    assert digits.estimate(mean, low, high) == text


def test_p_values_get_two_significant_digits():
    assert [digits.p_value(p) for p in (0.00734, 0.03125, 0.90625, 0.0004, float("nan"))] == \
        ["0.0073", "0.031", "0.91", "< 0.001", "n/a"]


def test_sign_flip_test_exact_and_seeded_beyond():
    d = [-0.12, -0.09, -0.14, -0.15, -0.15, -0.21]
    assert stats.sign_flip_test(d).p == pytest.approx(1 / 32) and stats.sign_flip_test(d).exact
    d2 = [-0.1, 0.05, -0.2, 0.02]  # by hand: 16 patterns, |mean| >= 0.0575 in 6 of them
    signs = np.array([[1 - 2 * ((i >> j) & 1) for j in range(4)] for i in range(16)])
    expected = np.mean(np.abs(signs @ np.array(d2)) / 4 >= abs(np.mean(d2)) - 1e-12)
    assert stats.sign_flip_test(d2).p == pytest.approx(expected)
    big = np.r_[np.full(17, -1.0), 0.5]
    a, b = stats.sign_flip_test(big), stats.sign_flip_test(big)
    assert not a.exact and a.p == b.p and a.p < 0.001  # Monte Carlo, seeded: the same p every build


def test_the_paired_effect_size_is_paired():
    d = np.array([-0.3, -0.12, -0.45, -0.2])
    assert stats.paired_dz(d) == pytest.approx(d.mean() / d.std(ddof=1))
    assert math.isnan(stats.paired_dz([0.1])) and math.isnan(stats.paired_dz([0.1, 0.1]))


def test_a_zero_effect_prints_zero_in_the_family_table(sweep):
    c = sweep.comparison("E5M2", "learning_rate=0.1")
    assert abs(c.mean) < 1e-12 and re.match(r"^0 \[", c.text)


# ---- failure modes from runs: onset beside detection, how a stagnation ended ------------------

def test_onset_is_where_the_loss_left_its_healthy_range_before_detection():
    from altgrad_docs.analysis.onset import onset_step

    steps = np.arange(0, 100, 10)
    loss = np.array([5.0, 4.0, 3.0, 2.5, 2.4, 2.9, 4.0, 9.0, 50.0, np.nan])  # 2.9 > 2.4 * 1.1 from step 50
    assert onset_step(steps, loss, detection=90) == 50
    blip = np.array([5.0, 4.0, 3.0, 3.5, 2.5, 2.4, 2.45, 2.5, 2.6, np.nan])  # 3.5 left and came back
    assert onset_step(steps, blip, detection=90) is None  # the last finite loss is still in range


def test_stagnated_is_told_apart_from_stopped_while_recovering():
    from altgrad_docs.analysis.onset import stagnation_kind

    steps = np.arange(0, 200, 10)
    flat = np.r_[np.linspace(5, 3, 10), 3.0 + 0.002 * np.arange(10) + 0.01 * (np.arange(10) % 2)]
    falling = np.r_[np.linspace(5, 3, 10), np.linspace(3.0, 2.95, 10)]
    assert stagnation_kind(steps, flat, best_at=90) == "stagnated"
    assert stagnation_kind(steps, falling, best_at=90) == "stopped while recovering"


def test_tuning_factors_come_from_extra_altgrad(caplog):
    from altgrad_docs.analysis.design import DesignOptions

    assert DesignOptions.from_config({"tuning": "learning_rate, warmup"}).tuning == ("learning_rate", "warmup")
    assert DesignOptions.from_config({}).tuning is None  # default: learning_rate
    runs, hists = run_table()
    assert analyse(runs, hists, options=DesignOptions(tuning=())).findings.at_best == []
    with caplog.at_level("WARNING", logger="mkdocs.plugins.altgrad"):
        f = analyse(runs, hists, options=DesignOptions(tuning=("batch_size",))).findings
    assert f.at_best == [] and "the tuning option names batch_size, which is not a factor" in caplog.text


def test_an_interval_that_excludes_zero_but_misses_holm_is_said_so():
    d = [-0.3, -0.1, -0.35, -0.05, -0.28, 0.05]  # 5/6 seeds, t p ~0.047: the interval just excludes 0
    noise = [0.05, -0.04, 0.03, -0.02, 0.01, -0.03]
    cases = {"E4M3": {"last": d}, **{f: {"last": [n * k for n in noise]} for k, f in enumerate(("E5M2", "E3M4", "E2M5"), 1)}}
    f = findings_of(cases)
    c = f.comparison("E4M3", "")
    assert sps.ttest_1samp(d, 0).pvalue < 0.05 and c.high < 0 and c.p_holm >= 0.05 and c.favour == 5
    assert c.branch == "excludes_zero"
    assert "the 95 % interval excludes 0, but the difference is not significant after correcting for 4 comparisons" in sentence(f, c)


def test_a_comparison_whose_every_pair_lost_a_run_is_said_not_dropped():
    f = findings_of({"E4M3": {"last": [-0.1, -0.2], "fail_adamw": (0, 1)},
                     "E5M2": {"last": [-0.1, -0.2, -0.15]}})
    c = f.comparison("E4M3", "")
    assert c.branch == "no_pairs" and (c.n, c.lost) == (0, 2) and not c.in_family
    assert "no seed where both optimizers finished (2 of 2 seed pairs lost to a failed run)" in sentence(f, c)


def test_at_best_groups_runs_without_a_factors_key_as_unset():
    """A factor some runs lack (None in an object column, NaN in a float one) is one level,
    "unset": pandas 3 keeps it missing through astype(str), which crashed the build on a
    snapshot of the trainer's LM and classification runs together."""
    import pandas as pd

    from altgrad_docs.analysis.findings_parts import at_best

    rows = []
    for shadow, width in ((True, 1.0), (None, float("nan"))):
        for lr in (0.01, 0.1):
            for opt, shift in (("ManifoldAdamW", -0.1), ("AdamW", 0.0)):
                for seed in (1, 2):
                    rows.append({"format": "E4M3", "optimizer": opt, "seed": seed, "learning_rate": lr,
                                 "use_shadow": shadow, "width": width, "setting": f"{lr}-{shadow}",
                                 "value": 2.0 + lr + shift + seed / 100})
    cond = pd.DataFrame(rows).astype({"use_shadow": object})
    got = at_best(cond, ["learning_rate"], ["learning_rate", "use_shadow", "width"], False, [])
    assert sorted(b.rest for b in got) == ["use_shadow=true, width=1", "use_shadow=unset, width=unset"]
    assert all((b.manifold_level, b.adamw_level, b.n) == ("0.01", "0.01", 2) for b in got)


def test_conditions_of_several_scripts_are_not_ranked_together(sweep):
    """An LM's loss and a classifier's are not one scale: with candidates from two scripts the
    findings name no best condition, and say why (one branch of the sweet-spot sentence)."""
    import dataclasses

    import pandas as pd

    from altgrad_docs.analysis.findings_parts import sweet_spot

    card = pd.DataFrame({"format": ["E4M3", "E5M2", "BF16"], "optimizer": ["AdamW"] * 3, "setting": ["a", "b", "c"],
                         "n_finite": [2, 2, 2], "median": [1.0, 3.0, 0.5], "min": [0.9, 2.9, 0.4], "max": [1.1, 3.1, 0.6]})
    assert sweet_spot(card).branch == "found" and sweet_spot(card).best.format == "E4M3"
    one = {("E4M3", "AdamW", "a"): "train.py", ("E5M2", "AdamW", "b"): "train.py", ("BF16", "AdamW", "c"): "cls.py"}
    assert sweet_spot(card, programs=one).branch == "found"  # the baseline is no candidate
    two = {**one, ("E5M2", "AdamW", "b"): "cls.py"}
    s = sweet_spot(card, programs=two)
    assert (s.branch, s.best, s.candidates, s.scripts) == ("scripts", None, 2, ("cls.py", "train.py"))
    text = home(dataclasses.replace(sweep, sweet_spot=s))
    assert "No best condition across scripts:** the 2 8-bit conditions with a finite" in text
    assert "come from 2 scripts (cls.py, train.py)" in text and "Best 8-bit condition" not in text


def test_at_best_needs_a_level_to_select():
    """The trainer's E3M4 ran at one learning rate only: 'each at its best' selected nothing
    and must not be stated (it repeated the headline as an at-best comparison)."""
    import pandas as pd

    from altgrad_docs.analysis.findings_parts import at_best

    rows = [{"format": "E3M4", "optimizer": opt, "seed": seed, "learning_rate": 0.0006, "setting": "lr",
             "value": 2.6 + shift + seed / 100} for opt, shift in (("ManifoldAdamW", 0.02), ("AdamW", 0.0))
            for seed in (42, 43)]
    assert at_best(pd.DataFrame(rows), ["learning_rate"], ["learning_rate"], False, []) == []
    rows += [{**r, "learning_rate": 10.0, "value": float("nan")} for r in rows]  # a level that failed
    assert at_best(pd.DataFrame(rows), ["learning_rate"], ["learning_rate"], False, []) == []
    rows += [{**r, "learning_rate": 0.001, "value": r["value"] + 0.1} for r in rows[:2]]  # ManifoldAdamW: 2 levels
    (b,) = at_best(pd.DataFrame(rows), ["learning_rate"], ["learning_rate"], False, [])
    assert (b.manifold_level, b.adamw_level) == ("0.0006", "0.0006")


def test_no_single_best_names_the_highest_median_when_higher_is_better(sweep):
    """The trainer's classification runs (F1, higher is better) read 'the lowest median' for
    the condition with the highest one."""
    import dataclasses

    assert "the lowest median, " in home(sweep)
    higher = dataclasses.replace(sweep, family=dataclasses.replace(sweep.family, higher_is_better=True))
    text = home(higher)
    assert "the highest median, " in text and "the lowest median" not in text
