"""Headline claims, one test per branch, on hand-built run tables through the real analysis.

Every table below is small enough to check by hand; the expected p-values come from scipy
directly (``ttest_rel``), never from the code under test.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.report.claims import benefit_claim, sweet_spot_claim
from altgrad_docs.runs import RunRecord, run_row, runs_frame


def table(spec: dict[tuple[str, str], list[float]], train_offset: dict[str, float] | None = None):
    """Runs from {(format, optimizer): [val_loss per seed 1..n]}; train loss = val + offset."""
    rows = []
    for (fmt, opt), values in spec.items():
        for seed, val in enumerate(values, start=1):
            config = {"use_fp8": fmt not in ("BF16", "FP16"), "fp8_format": fmt,
                      "use_manifold_aware": opt == "ManifoldAdamW", "seed": seed}
            train = val + (train_offset or {}).get(fmt, 0.1)
            run_id = f"{fmt}-{opt}-{seed}".lower()
            rows.append(run_row(RunRecord({"run_id": run_id, "state": "finished"}, config,
                                          {"loss": train, "val_loss": val, "_step": 99})))
    return runs_frame(rows)


def claim(df):
    metric = "final_val_loss"
    paired = sc.manifold_comparison(df, metric)
    return benefit_claim(paired, sc.scorecard(df, metric, paired=paired), metric)


ADAMW = [1.00, 1.10, 0.95, 1.05, 1.02, 0.98]


def test_a_small_effect_on_every_seed_holds_after_holm():
    small = [a - d for a, d in zip(ADAMW, [0.010, 0.012, 0.011, 0.009, 0.010, 0.011])]
    noisy = [a + d for a, d in zip(ADAMW, [-0.30, 0.25, -0.28, 0.20, -0.35, 0.22])]
    c = claim(table({("E4M3", "AdamW"): ADAMW, ("E4M3", "ManifoldAdamW"): small,
                     ("E5M2", "AdamW"): ADAMW, ("E5M2", "ManifoldAdamW"): noisy}))
    assert c.branch == "holds" and c.family == 2
    assert [e.format for e in c.winners] == ["E4M3"]
    win = c.winners[0]
    p = sps.ttest_rel(small, ADAMW).pvalue
    assert win.p == pytest.approx(p) and win.p_holm == pytest.approx(min(1.0, 2 * p))
    assert win.mean == pytest.approx(-0.0105) and win.n == 6 and win.favour == 6
    assert win.percent == pytest.approx(100 * -0.0105 / 1.01)  # AdamW median = 1.01
    noisy_effect = next(e for e in c.effects if e.format == "E5M2")
    assert noisy_effect.mean < win.mean and not noisy_effect.holds  # larger, but noise


def test_a_larger_but_noisy_mean_is_not_distinguishable_from_no_effect():
    noisy = [a + d for a, d in zip(ADAMW, [-0.30, 0.25, -0.28, 0.20, -0.35, 0.22])]
    c = claim(table({("E5M2", "AdamW"): ADAMW, ("E5M2", "ManifoldAdamW"): noisy}))
    assert c.branch == "none" and not c.winners and not c.harms
    assert c.best.format == "E5M2" and c.best.mean == pytest.approx(-0.26 / 6)
    assert c.best.low < 0 < c.best.high and c.best.favour == 3


def test_a_harm_that_holds_is_reported_as_a_harm():
    worse = [a + d for a, d in zip(ADAMW, [0.05, 0.06, 0.05, 0.055, 0.05, 0.06])]
    c = claim(table({("E5M2", "AdamW"): ADAMW, ("E5M2", "ManifoldAdamW"): worse}))
    assert c.branch == "none" and c.best is None
    assert [e.format for e in c.harms] == ["E5M2"] and c.harms[0].direction == "harms"
    assert c.harms[0].p_holm == pytest.approx(sps.ttest_rel(worse, ADAMW).pvalue)


def test_a_baseline_that_improves_most_is_never_the_headline():
    better = [a - 0.2 - 0.001 * i for i, a in enumerate(ADAMW)]
    slight = [a - 0.01 for a in ADAMW[:-1]] + [ADAMW[-1] + 0.004]
    c = claim(table({("BF16", "AdamW"): ADAMW, ("BF16", "ManifoldAdamW"): better,
                     ("E3M4", "AdamW"): ADAMW, ("E3M4", "ManifoldAdamW"): slight}))
    assert {e.format for e in c.effects} == {"E3M4"} and c.family == 1
    # BF16 improves by 0.2 on every seed, E3M4 by 0.0077 (5 of 6 seeds): E3M4 is the headline
    assert sps.ttest_rel(slight, ADAMW).pvalue == pytest.approx(0.0218, abs=1e-4)
    assert c.branch == "holds" and [e.format for e in c.winners] == ["E3M4"] and c.winners[0].favour == 5


def test_no_effect_anywhere():
    c = claim(table({("E4M3", "AdamW"): ADAMW, ("E4M3", "ManifoldAdamW"): ADAMW}))
    assert c.branch == "none" and c.best is None and not c.harms
    assert c.effects[0].mean == 0 and c.effects[0].no_spread


def test_identical_deltas_have_no_spread_and_no_test():
    shifted = [a - 0.5 for a in ADAMW[:2]]
    c = claim(table({("E2M5", "AdamW"): ADAMW[:2], ("E2M5", "ManifoldAdamW"): shifted}))
    e = c.effects[0]
    assert e.no_spread and e.low == e.high == pytest.approx(-0.5)
    assert math.isnan(e.p) and not e.holds and c.family == 0 and c.branch == "none"


def test_no_comparison_at_all():
    c = claim(table({("E4M3", "AdamW"): ADAMW}))
    assert c.branch == "no_data" and c.family == 0


def test_sweet_spot_follows_the_primary_metric_when_train_and_val_disagree():
    # val: E3M4 best; train (val + offset): E4M3 best
    df = table({("E3M4", "AdamW"): [0.039, 0.040, 0.041], ("E4M3", "AdamW"): [0.044, 0.045, 0.046],
                ("E5M2", "AdamW"): [0.0395, 0.050, 0.060], ("BF16", "AdamW"): [0.01, 0.01, 0.01]},
               train_offset={"E3M4": 0.02, "E4M3": 0.0, "E5M2": 0.02, "BF16": 0.0})
    val = sweet_spot_claim(sc.scorecard(df, "final_val_loss"))
    train = sweet_spot_claim(sc.scorecard(df, "final_loss"))
    assert val.branch == "found" and val.best.format == "E3M4" and val.best.median == pytest.approx(0.040)
    assert [c.format for c in val.near] == ["E5M2"]  # its range [0.0395, 0.06] overlaps [0.039, 0.041]
    assert train.best.format == "E4M3" and val.metric == "final_val_loss" and val.candidates == 3


def test_no_sweet_spot_without_a_finite_8bit_condition():
    df = table({("BF16", "AdamW"): [0.01, 0.02]})
    assert sweet_spot_claim(sc.scorecard(df, "final_val_loss")).branch == "none"


# --- the sentences: one rendering per branch of templates/partials/findings.md -------------

from pathlib import Path  # noqa: E402

from altgrad_docs.report.claims import BenefitClaim, Condition, Effect, SweetSpotClaim  # noqa: E402
from altgrad_docs.site.render import make_environment, render  # noqa: E402

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def effect(fmt="E4M3", mean=-0.0105, low=-0.012, high=-0.009, p_holm=0.0004, holds=True, **kw):
    base = dict(format=fmt, setting="", n=6, design="paired", mean=mean, low=low, high=high,
                percent=100 * mean / 1.01, p=p_holm / 2, p_holm=p_holm, no_spread=False, favour=6, holds=holds)
    return Effect(**(base | kw))


def findings(benefit, sweet=None, metric="final_val_loss", crashes=()):
    sweet = sweet or SweetSpotClaim("none", metric)
    results = {"n_runs": 24, "formats": ["E4M3", "E5M2"], "optimizers": ["AdamW", "ManifoldAdamW"],
               "n_failed": 0, "headline": {"benefit": benefit, "sweet_spot": sweet, "metric": metric,
                                          "crashes": list(crashes), "n_completed": 24, "n_conditions": 4}}
    text = render(make_environment(TEMPLATES), "partials/findings.md", results=results)
    return " ".join(text.split())


def test_sentence_when_an_improvement_holds():
    text = findings(BenefitClaim("holds", "final_val_loss", 2, 0.05, [effect()], [], None, []))
    assert "**Manifold-aware updates lower final validation loss** in 1 of the 2 comparisons tested" in text
    assert "after Holm's correction across all 2" in text
    assert "E4M3: ManifoldAdamW − AdamW = −0.0105 nats (−1.04 % of AdamW's median)" in text
    assert "95 % t interval [−0.0120, −0.00900], 6 pairs, ManifoldAdamW lower on 6/6 seeds" in text
    assert "not distinguishable" not in text


def test_sentence_when_nothing_holds_names_the_largest_mean_as_no_effect():
    best = effect("E7M0", mean=-0.1, low=-0.5, high=0.3, p_holm=1.0, holds=False, favour=1, n=3)
    text = findings(BenefitClaim("none", "final_val_loss", 8, 0.05, [], [], best, [best]))
    assert "**No improvement from manifold-aware updates holds** after Holm's correction across the 8" in text
    assert "The largest mean improvement is not distinguishable from no effect: E7M0:" in text
    assert "ManifoldAdamW lower on 1/3 seeds" in text and "Harm" not in text


def test_sentence_for_a_harm_that_holds_and_no_improvement():
    harm = effect("E5M2", mean=0.05, low=0.04, high=0.06, p_holm=0.01, favour=0)
    text = findings(BenefitClaim("none", "final_loss", 1, 0.05, [], [harm], None, [harm]), metric="final_loss")
    assert "holds** after Holm's correction across the 1 comparison tested" in text
    assert "ManifoldAdamW lower on 0/6 seeds" in text
    assert "ManifoldAdamW lowered the mean final train loss of no 8-bit format." in text
    assert "**Harm that holds:** ManifoldAdamW raises final train loss for E5M2: ManifoldAdamW − AdamW = 0.0500" in text


def test_sentence_without_any_comparison():
    text = findings(BenefitClaim("no_data", "final_val_loss", 0, 0.05))
    assert "these data hold no ManifoldAdamW-vs-AdamW comparison" in text
    assert "Manifold-aware vs AdamW](" not in text


def test_sentence_for_no_spread():
    flat = effect("E2M5", mean=-0.5, low=-0.5, high=-0.5, p_holm=math.nan, holds=False, no_spread=True, n=2,
                  favour=2)
    text = findings(BenefitClaim("none", "final_val_loss", 0, 0.05, [], [], flat, [flat]))
    assert "no spread among the 2 pairs (every seed gave the same difference), so no interval and no test" in text
    assert "[-0.5, -0.5]" not in text and "Holm-adjusted p" not in text


def test_sentences_for_the_sweet_spot_with_and_without_rivals():
    best = Condition("E3M4", "AdamW", "learning_rate=0.001", 6, 0.040, 0.039, 0.041)
    rival = Condition("E5M2", "ManifoldAdamW", "learning_rate=0.001", 6, 0.045, 0.0395, 0.06)
    none = BenefitClaim("no_data", "final_val_loss", 0, 0.05)
    text = findings(none, SweetSpotClaim("found", "final_val_loss", best, [rival], 4))
    assert "**Best 8-bit condition by final validation loss:** **E3M4 with AdamW (learning&#95;rate&#61;0.001)**" in text
    assert "median 0.0400 (range [0.0390, 0.0410] over 6 finished runs)" in text
    assert "Within seed noise of it" in text and "E5M2 with ManifoldAdamW (learning&#95;rate&#61;0.001) 0.0450." in text
    alone = findings(none, SweetSpotClaim("found", "final_val_loss", best, [], 4))
    assert "No other of the 4 8-bit conditions has a seed range that overlaps its range." in alone
    assert "these data name no best condition" in findings(none)


def test_identical_comparisons_count_once_in_the_family_and_are_named_together():
    small = [a - d for a, d in zip(ADAMW, [0.010, 0.012, 0.011, 0.009, 0.010, 0.011])]
    df = table({("E1M6", "AdamW"): ADAMW, ("E1M6", "ManifoldAdamW"): small,
                ("E2M5", "AdamW"): ADAMW, ("E2M5", "ManifoldAdamW"): small,
                ("E4M3", "AdamW"): ADAMW, ("E4M3", "ManifoldAdamW"): ADAMW[::-1]})
    metric = "final_val_loss"
    paired = sc.manifold_comparison(df, metric)
    identical = [[("E1M6", "AdamW", ""), ("E2M5", "AdamW", "")],
                 [("E1M6", "ManifoldAdamW", ""), ("E2M5", "ManifoldAdamW", "")]]
    c = benefit_claim(paired, sc.scorecard(df, metric, paired=paired), metric, identical=identical)
    assert [e.format for e in c.effects] == ["E1M6", "E4M3"] and c.family == 2
    assert c.winners[0].same_as == ("E2M5",)
    p = sps.ttest_rel(small, ADAMW).pvalue
    assert c.winners[0].p_holm == pytest.approx(min(1.0, 2 * p))  # 2 comparisons, not 3
    text = findings(c)
    assert "E1M6 (and E2M5, whose runs were bit-identical): ManifoldAdamW − AdamW" in text
    assert "in 1 of the 2 comparisons tested" in text
    # identical under one optimizer only: two comparisons
    half = benefit_claim(paired, None, metric, identical=identical[:1])
    assert len(half.effects) == 3


def test_sentences_for_failures_and_many_rivals():
    none = BenefitClaim("no_data", "final_val_loss", 0, 0.05)
    crashes = [{"format": "E7M0", "setting": "lr=1.5", "k": 4, "n": 4},
               {"format": "E5M2", "setting": "lr=1.5", "k": 3, "n": 4}, {"format": "E7M0", "setting": "lr=0.1", "k": 1, "n": 4}]
    text = findings(none, crashes=crashes)
    assert "**Failures:** 8 of the 24 completed runs failed, in 3 of the 4 conditions (2 formats: E7M0, E5M2)." in text
    assert "(all E7M0)" in findings(none, crashes=crashes[:1])
    assert "none of the 24 completed runs failed" in findings(none)
    best = Condition("E3M4", "AdamW", "", 6, 0.040, 0.039, 0.041)
    rivals = [Condition(f"E{i}M{7 - i}", "AdamW", "", 6, 0.041 + i / 1000, 0.0395, 0.06) for i in range(7)]
    text = findings(none, SweetSpotClaim("found", "final_val_loss", best, rivals, 8))
    assert "E4M3 with AdamW 0.0450; and 2 more conditions (all in the Format comparison's table)." in text
    assert "E5M2 with AdamW" not in text
