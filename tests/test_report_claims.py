"""Headline claims (the findings' branches), one test per branch, on hand-built run tables
through the real analysis.

Every table below is small enough to check by hand; the expected p-values come from scipy
directly (``ttest_rel``), never from the code under test. These tables have no histories, so
the robustness checks are the exact test and leave-one-seed-out only.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.findings import build_findings
from altgrad_docs.analysis.pipeline import analyse
from altgrad_docs.report.claims import sweet_spot_claim
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


def findings(df):
    return analyse(df).findings


ADAMW = [1.00, 1.10, 0.95, 1.05, 1.02, 0.98]


def test_a_small_effect_on_every_seed_is_significant_but_the_exact_test_of_6_pairs_cannot_hold_it():
    small = [a - d for a, d in zip(ADAMW, [0.010, 0.012, 0.011, 0.009, 0.010, 0.011])]
    noisy = [a + d for a, d in zip(ADAMW, [-0.30, 0.25, -0.28, 0.20, -0.35, 0.22])]
    f = findings(table({("E4M3", "AdamW"): ADAMW, ("E4M3", "ManifoldAdamW"): small,
                        ("E5M2", "AdamW"): ADAMW, ("E5M2", "ManifoldAdamW"): noisy}))
    assert f.family.size == 2
    win = f.comparison("E4M3", "")
    p = sps.ttest_rel(small, ADAMW).pvalue
    assert win.t_p == pytest.approx(p) and win.p_holm == pytest.approx(min(1.0, 2 * p))
    assert win.mean == pytest.approx(-0.0105) and win.n == 6 and win.favour == 6
    # 2 comparisons: the sign-flip test's floor 1/32 doubles to 0.0625 >= 0.05 after Holm
    assert win.robustness.exact_p_holm == pytest.approx(0.0625) and win.branch == "fragile"
    noisy_effect = f.comparison("E5M2", "")
    assert noisy_effect.mean < win.mean and noisy_effect.branch == "unclear"  # larger, but noise


def test_a_harm_is_worded_by_the_same_rules():
    worse = [a + d for a, d in zip(ADAMW, [0.05, 0.06, 0.05, 0.055, 0.05, 0.06])]
    f = findings(table({("E5M2", "AdamW"): ADAMW, ("E5M2", "ManifoldAdamW"): worse}))
    c = f.comparison("E5M2", "")
    assert c.p_holm == pytest.approx(sps.ttest_rel(worse, ADAMW).pvalue)
    assert c.against == 6 and c.favour == 0 and c.branch == "holds"  # 6 pairs, family of 1: 1/32 < 0.05


def test_a_baseline_that_improves_most_is_never_in_the_family():
    better = [a - 0.2 - 0.001 * i for i, a in enumerate(ADAMW)]
    slight = [a - 0.01 for a in ADAMW[:-1]] + [ADAMW[-1] + 0.004]
    f = findings(table({("BF16", "AdamW"): ADAMW, ("BF16", "ManifoldAdamW"): better,
                        ("E3M4", "AdamW"): ADAMW, ("E3M4", "ManifoldAdamW"): slight}))
    assert f.family.members == (("E3M4", ""),) and not f.comparison("BF16", "").in_family
    assert sps.ttest_rel(slight, ADAMW).pvalue == pytest.approx(0.0218, abs=1e-4)
    assert f.headline.format == "E3M4" and f.headline.favour == 5


def test_no_effect_anywhere():
    f = findings(table({("E4M3", "AdamW"): ADAMW, ("E4M3", "ManifoldAdamW"): ADAMW}))
    assert f.family.size == 0 and f.headline is None
    assert f.comparisons[0].mean == 0 and f.comparisons[0].text == "0"


def test_identical_deltas_have_no_spread_and_no_test():
    shifted = [a - 0.5 for a in ADAMW[:2]]
    f = findings(table({("E2M5", "AdamW"): ADAMW[:2], ("E2M5", "ManifoldAdamW"): shifted}))
    c = f.comparisons[0]
    assert c.branch == "no_spread" and c.mean == pytest.approx(-0.5)
    assert math.isnan(c.t_p) and not c.in_family and f.family.size == 0


def test_no_comparison_at_all():
    f = findings(table({("E4M3", "AdamW"): ADAMW}))
    assert f.comparisons == [] and f.family.size == 0


def test_identical_comparisons_count_once_in_the_family_and_are_named_together():
    small = [a - d for a, d in zip(ADAMW, [0.010, 0.012, 0.011, 0.009, 0.010, 0.011])]
    df = table({("E1M6", "AdamW"): ADAMW, ("E1M6", "ManifoldAdamW"): small,
                ("E2M5", "AdamW"): ADAMW, ("E2M5", "ManifoldAdamW"): small,
                ("E4M3", "AdamW"): ADAMW, ("E4M3", "ManifoldAdamW"): ADAMW[::-1]})
    a = analyse(df)
    a.design.identical = [[("E1M6", "AdamW", ""), ("E2M5", "AdamW", "")],
                          [("E1M6", "ManifoldAdamW", ""), ("E2M5", "ManifoldAdamW", "")]]
    f = build_findings(a)
    assert f.family.members == (("E1M6", ""), ("E4M3", ""))
    assert f.comparison("E1M6", "").same_as == ("E2M5",)
    p = sps.ttest_rel(small, ADAMW).pvalue
    assert f.comparison("E1M6", "").p_holm == pytest.approx(min(1.0, 2 * p))  # 2 comparisons, not 3
    a.design.identical = a.design.identical[:1]  # identical under one optimizer only: 3 comparisons
    assert build_findings(a).family.size == 3


def test_sweet_spot_follows_the_primary_metric_when_train_and_val_disagree():
    # val: E3M4 best; train (val + offset): E4M3 best
    df = table({("E3M4", "AdamW"): [0.039, 0.040, 0.041], ("E4M3", "AdamW"): [0.044, 0.045, 0.046],
                ("E5M2", "AdamW"): [0.0395, 0.050, 0.060], ("BF16", "AdamW"): [0.01, 0.01, 0.01]},
               train_offset={"E3M4": 0.02, "E4M3": 0.0, "E5M2": 0.02, "BF16": 0.0})
    val = sweet_spot_claim(sc.scorecard(df, "final_val_loss"))
    train = sweet_spot_claim(sc.scorecard(df, "final_loss"))
    assert val.branch == "no_single" and val.best.format == "E3M4" and val.best.median == pytest.approx(0.040)
    assert [c.format for c in val.near] == ["E5M2"]  # its range [0.0395, 0.06] overlaps [0.039, 0.041]
    assert train.best.format == "E4M3" and val.candidates == 3


def test_no_sweet_spot_without_a_finite_8bit_condition():
    df = table({("BF16", "AdamW"): [0.01, 0.02]})
    assert sweet_spot_claim(sc.scorecard(df, "final_val_loss")).branch == "none"


