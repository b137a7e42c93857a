"""Every statistic against a direct scipy call on the same numbers."""

import math

import numpy as np
import pytest
from scipy import stats as ss

from altgrad_docs.analysis import stats

X = [2.90, 3.00, 3.05, 3.20, 2.95, 3.10, 2.80]  # manifold-aware, seeds 1..7
Y = [3.00, 3.20, 3.10, 3.25, 3.05, 3.30, 2.85]  # AdamW, same seeds


def test_summarize_counts_only_finite_values():
    s = stats.summarize([3.0, math.nan, 1.0, math.inf, 2.0, None])
    assert (s.n, s.median, s.min, s.max, s.mean) == (3, 2.0, 1.0, 3.0, 2.0)
    assert stats.summarize([math.nan]).n == 0 and math.isnan(stats.summarize([]).median)


def test_crash_rate_is_clopper_pearson():
    r = stats.crash_rate(0, 5)
    assert (r.k, r.n, r.rate, r.low) == (0, 5, 0.0, 0.0)
    assert r.high == pytest.approx(0.5218, abs=1e-4)  # reporting.md: 0/5 -> [0, 0.52]
    ci = ss.binomtest(2, 7).proportion_ci(method="exact")
    r = stats.crash_rate(2, 7)
    assert (r.low, r.high) == (ci.low, ci.high)
    assert math.isnan(stats.crash_rate(0, 0).rate)


def test_paired_delta_matches_ttest_rel_and_wilcoxon():
    d = stats.paired_delta(X, Y)
    res = ss.ttest_rel(X, Y)
    ci = res.confidence_interval(0.95)
    diff = np.subtract(X, Y)
    t = ss.t.ppf(0.975, len(X) - 1) * diff.std(ddof=1) / math.sqrt(len(X))
    assert d.n == 7 and d.mean == pytest.approx(diff.mean())
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert d.low == pytest.approx(diff.mean() - t) and d.t_p == pytest.approx(res.pvalue)
    assert d.status == stats.TESTED
    assert d.exact_p == pytest.approx(ss.wilcoxon(X, Y, method="exact").pvalue)


def test_paired_delta_below_six_pairs_is_too_few_to_test():
    d = stats.paired_delta(X[:5], Y[:5])
    assert d.status == stats.TOO_FEW and math.isnan(d.exact_p)
    assert math.isfinite(d.low)  # the t interval is still given
    assert stats.min_p_wilcoxon(5) == 0.0625 and stats.min_p_wilcoxon(6) == 0.03125


def test_paired_delta_drops_pairs_with_a_crash():
    d = stats.paired_delta([1.0, math.nan, 3.0], [1.5, 2.0, 3.5])
    assert d.n == 2 and d.mean == pytest.approx(-0.5) and d.low == d.high == pytest.approx(-0.5)
    assert stats.paired_delta([math.nan], [1.0]).status == stats.NO_DATA
    one = stats.paired_delta([1.0], [2.0])
    assert one.n == 1 and one.mean == -1.0 and math.isnan(one.low)


def test_welch_delta_matches_ttest_ind_and_mannwhitney():
    a, b = X[:4], Y[:4]
    d = stats.welch_delta(a, b)
    res = ss.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert d.mean == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.low, d.high, d.t_p) == (pytest.approx(ci.low), pytest.approx(ci.high), pytest.approx(res.pvalue))
    assert d.status == stats.TESTED  # 4 vs 4: min p = 2/70
    assert d.exact_p == pytest.approx(ss.mannwhitneyu(a, b, method="exact").pvalue)


def test_mann_whitney_floor_with_three_per_arm():
    assert stats.min_p_mannwhitney(3, 3) == pytest.approx(0.1)  # reporting.md
    assert stats.welch_delta(X[:3], Y[:3]).status == stats.TOO_FEW


def test_hedges_g_by_definition():
    a, b = np.array(X), np.array(Y)
    sp = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    j = 1 - 3 / (4 * (len(a) + len(b)) - 9)
    assert stats.hedges_g(a, b) == pytest.approx((a.mean() - b.mean()) / sp * j)
    assert math.isnan(stats.hedges_g([1.0], [2.0, 3.0]))


def test_probability_of_improvement_is_u_over_nm():
    u = ss.mannwhitneyu(Y, X).statistic  # pairs where AdamW's loss is higher
    assert stats.prob_improvement(X, Y) == pytest.approx(u / (len(X) * len(Y)))
    assert stats.prob_improvement([1.0, 2.0], [3.0, 4.0]) == 1.0
    assert stats.prob_improvement([1.0], [1.0]) == 0.5


def test_holm_step_down():
    # p sorted 0.01, 0.03, 0.04 with m = 3: 0.03, max(0.03, 0.06), max(0.06, 0.04) = 0.06
    assert stats.holm([0.01, 0.04, math.nan, 0.03]) == pytest.approx([0.03, 0.06, math.nan, 0.06], nan_ok=True)
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]
    assert stats.holm([]) == []


def test_bootstrap_is_seeded_by_one_generator():
    a = stats.bootstrap_ci([1, 2, 3, 4, 5], np.random.default_rng(7), n_resamples=500)
    b = stats.bootstrap_ci([1, 2, 3, 4, 5], np.random.default_rng(7), n_resamples=500)
    ref = ss.bootstrap(([1.0, 2, 3, 4, 5],), np.median, n_resamples=500, method="percentile",
                       rng=np.random.default_rng(7), vectorized=False).confidence_interval
    assert a == b == (ref.low, ref.high)


def test_iqm_is_trimmed_mean():
    assert stats.iqm([1, 2, 3, 4, 100, math.nan]) == pytest.approx(ss.trim_mean([1, 2, 3, 4, 100], 0.25))
