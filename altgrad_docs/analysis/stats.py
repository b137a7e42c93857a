"""Statistics for comparisons with 1-5 seeds: pure functions on arrays, scipy underneath.

Follows shared/reference/reporting.md: n, median and [min, max] per condition; crash rates
with Clopper-Pearson intervals; paired per-seed deltas with a t interval (Welch's interval
for unpaired data); effect sizes (Hedges' g, probability of improvement) before p-values;
exact tests only where they can reach p < 0.05, otherwise the explicit status
:data:`TOO_FEW`; Holm's step-down correction across formats.

Every function takes plain sequences of numbers and ignores non-finite values (a crashed
run has no final loss; it is counted by :func:`crash_rate`, never averaged in). Values near
the float limit (a loss of 1e308) are combined scaled by a power of two (:func:`_scale`, exact),
so a mean or a difference never overflows to Inf: a result that does not fit a float is NaN.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Sequence

import numpy as np


def scipy_stats():
    """scipy.stats, imported on first use: importing it takes about 0.8 s, which a warm site
    build (statistics from the cache) never needs."""
    from scipy import stats

    return stats


ALPHA = 0.05
#: Status of a comparison whose exact test cannot reach p < ALPHA with the seeds at hand.
TOO_FEW = "too few seeds to test"
TESTED = "tested"
NO_DATA = "no data"


def finite(values: Iterable[float]) -> np.ndarray:
    """The finite values as a float array (NaN, +/-Inf and None dropped)."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


#: Values above this magnitude are scaled before they are summed or subtracted.
_HUGE = 2.0 ** 1000


def _scale(*arrays: np.ndarray) -> float:
    """1.0, or a power of two ``s`` that brings every finite value below 2 in magnitude when
    one is above :data:`_HUGE` (~1e301): dividing by it is exact, and sums, means and
    differences of the scaled values cannot overflow. Scale-free results (p, g) are unchanged."""
    top = max((float(np.max(np.abs(a))) for a in arrays if len(a)), default=0.0)
    return 1.0 if top <= _HUGE else math.ldexp(1.0, math.frexp(top)[1] - 1)


def _unscaled(value: float, scale: float) -> float:
    """A mean, median or difference of scaled values in the values' units; NaN where the
    result does not fit a float (left out rather than shown as Inf)."""
    out = float(value) * scale if math.isfinite(value) else float(value)
    return out if math.isfinite(out) or not math.isfinite(value) else math.nan


def mean(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN when there are none), computed without overflow."""
    x = finite(values)
    if not len(x):
        return math.nan
    s = _scale(x)
    return _unscaled(float((x / s).mean()), s)


@dataclass(frozen=True)
class Summary:
    """n, median and range of the finite values of one condition."""

    n: int
    median: float
    min: float
    max: float
    mean: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(values: Iterable[float]) -> Summary:
    x = finite(values)
    if not len(x):
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    s = _scale(x)
    return Summary(len(x), _unscaled(float(np.median(x / s)), s), float(x.min()), float(x.max()),
                   _unscaled(float((x / s).mean()), s))


@dataclass(frozen=True)
class Rate:
    """k events out of n with the Clopper-Pearson (exact) 95% interval."""

    k: int
    n: int
    rate: float
    low: float
    high: float


def crash_rate(k: int, n: int, confidence: float = 0.95) -> Rate:
    """Divergence rate k/n with its exact interval (0/5 -> [0, 0.52], not "never")."""
    if n <= 0:
        return Rate(k, n, math.nan, math.nan, math.nan)
    ci = scipy_stats().binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return Rate(int(k), int(n), k / n, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Delta:
    """A difference of means with its 95% t interval and the test behind it."""

    n: int  # pairs (paired) or n_x + n_y (unpaired)
    mean: float
    low: float
    high: float
    method: str  # "paired t" | "Welch t"
    t_p: float  # p of the t test (reported for completeness; see exact_p)
    exact_test: str  # "Wilcoxon signed-rank (exact)" | "Mann-Whitney U (exact)"
    exact_p: float  # NaN when status != TESTED
    status: str  # TESTED | TOO_FEW | NO_DATA

    def as_dict(self) -> dict:
        return asdict(self)


def min_p_wilcoxon(n_pairs: int) -> float:
    """Smallest two-sided p an exact Wilcoxon signed-rank test can give: 2 / 2^n."""
    return min(1.0, 2.0 / 2.0**n_pairs) if n_pairs > 0 else 1.0


def min_p_mannwhitney(nx: int, ny: int) -> float:
    """Smallest two-sided p of an exact Mann-Whitney test: 2 / C(nx + ny, nx)."""
    if nx <= 0 or ny <= 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(nx + ny, nx))


def paired_delta(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Delta:
    """Mean of x - y over pairs where both are finite, with a t interval (scipy ttest_rel).

    x and y are aligned by position (same seed). The exact test is Wilcoxon's signed-rank;
    below 6 pairs it cannot reach p < 0.05, so the status is :data:`TOO_FEW`.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    exact = "Wilcoxon signed-rank (exact)"
    if n == 0:
        return Delta(0, math.nan, math.nan, math.nan, "paired t", math.nan, exact, math.nan, NO_DATA)
    scale = _scale(a, b)
    if scale != 1.0:  # near the float limit: the same computation on exactly scaled values
        got = paired_delta(a / scale, b / scale, confidence)
        return replace(got, mean=_unscaled(got.mean, scale), low=_unscaled(got.low, scale),
                       high=_unscaled(got.high, scale))
    d = a - b
    mean = float(d.mean())
    if n < 2:
        return Delta(n, mean, math.nan, math.nan, "paired t", math.nan, exact, math.nan, TOO_FEW)
    if np.ptp(d) <= 1e-12 * max(1.0, abs(mean)):  # no spread: the interval is the point
        low = high = mean
        t_p = math.nan
    else:
        res = scipy_stats().ttest_rel(a, b)
        ci = res.confidence_interval(confidence)
        low, high, t_p = float(ci.low), float(ci.high), float(res.pvalue)
    status, exact_p = TOO_FEW, math.nan
    if min_p_wilcoxon(n) < ALPHA and np.any(d != 0):
        status = TESTED
        exact_p = float(scipy_stats().wilcoxon(a, b, method="exact").pvalue)
    return Delta(n, mean, low, high, "paired t", t_p, exact, exact_p, status)


def welch_delta(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Delta:
    """Mean of x minus mean of y for unpaired samples: Welch's t interval, exact Mann-Whitney."""
    a, b = finite(x), finite(y)
    exact = "Mann-Whitney U (exact)"
    if not len(a) or not len(b):
        return Delta(len(a) + len(b), math.nan, math.nan, math.nan, "Welch t", math.nan, exact, math.nan, NO_DATA)
    scale = _scale(a, b)
    if scale != 1.0:  # near the float limit: the same computation on exactly scaled values
        got = welch_delta(a / scale, b / scale, confidence)
        return replace(got, mean=_unscaled(got.mean, scale), low=_unscaled(got.low, scale),
                       high=_unscaled(got.high, scale))
    mean = float(a.mean() - b.mean())
    low = high = t_p = math.nan
    if len(a) >= 2 and len(b) >= 2:
        res = scipy_stats().ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(confidence)
        low, high, t_p = float(ci.low), float(ci.high), float(res.pvalue)
    status, exact_p = TOO_FEW, math.nan
    if min_p_mannwhitney(len(a), len(b)) < ALPHA:
        status = TESTED
        exact_p = float(scipy_stats().mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)
    return Delta(len(a) + len(b), mean, low, high, "Welch t", t_p, exact, exact_p, status)


def hedges_g(x: Sequence[float], y: Sequence[float]) -> float:
    """Standardised mean difference (x - y) / pooled SD with the small-sample correction."""
    a, b = finite(x), finite(y)
    nx, ny = len(a), len(b)
    if nx < 2 or ny < 2:
        return math.nan
    scale = _scale(a, b)  # g has no unit: the same for exactly scaled values
    a, b = a / scale, b / scale
    pooled = math.sqrt(((nx - 1) * a.var(ddof=1) + (ny - 1) * b.var(ddof=1)) / (nx + ny - 2))
    if pooled == 0:
        return math.nan
    correction = 1 - 3 / (4 * (nx + ny) - 9)
    return float((a.mean() - b.mean()) / pooled * correction)


def prob_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(a run of x has a LOWER loss than a run of y), ties count half: U / (n_x * n_y).

    U is scipy's Mann-Whitney statistic of (y, x): the number of (y, x) pairs with y > x.
    """
    a, b = finite(x), finite(y)
    if not len(a) or not len(b):
        return math.nan
    u = scipy_stats().mannwhitneyu(b, a, alternative="two-sided", method="asymptotic").statistic
    return float(u / (len(a) * len(b)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values; NaN entries (untested) stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(len(p), np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def iqm(values: Iterable[float]) -> float:
    """Interquartile mean (rliable's aggregate): mean of the middle 50% of the values."""
    x = finite(values)
    if not len(x):
        return math.nan
    s = _scale(x)
    return _unscaled(float(scipy_stats().trim_mean(x / s, 0.25)), s)


def bootstrap_ci(
    values: Iterable[float], rng: np.random.Generator, statistic=np.median,
    confidence: float = 0.95, n_resamples: int = 2000,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic, seeded by the one Generator passed in.

    Prefer t intervals for means at small n: a percentile bootstrap of a mean covers the
    truth only ~76% of the time at n = 3 (reporting.md). Needs n >= 2.
    """
    x = finite(values)
    if len(x) < 2:
        return math.nan, math.nan
    res = scipy_stats().bootstrap((x,), statistic, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", rng=rng, vectorized=False)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


#: Up to this many pairs the sign-flip test enumerates all 2^n sign patterns (65,536 at 16).
EXACT_LIMIT = 16
#: Beyond it: this many random sign patterns from one seeded numpy Generator (recorded on Methods).
PERMUTATIONS, PERMUTATION_SEED = 100_000, 20240601


@dataclass(frozen=True)
class SignFlip:
    """Sign-flip permutation test of the mean of paired differences (two-sided)."""

    n: int
    p: float  # NaN: fewer than 1 nonzero difference
    exact: bool  # every sign pattern enumerated (else Monte Carlo, seeded)
    min_p: float  # the smallest p this test can give with these n pairs


def sign_flip_test(diffs: Sequence[float], exact_limit: int = EXACT_LIMIT,
                   n_resamples: int = PERMUTATIONS, seed: int = PERMUTATION_SEED) -> SignFlip:
    """Under "no effect" each per-seed difference is as likely negative as positive: p is the
    share of the 2^n sign patterns whose |mean| is at least the observed |mean| (exact up to
    ``exact_limit`` pairs; beyond, ``n_resamples`` patterns of a Generator seeded ``seed``,
    counting the observed one). The smallest p it can give is 2 / 2^n: 0.031 for 6 pairs."""
    d = finite(diffs)
    n = len(d)
    if n == 0 or not np.any(d != 0):
        return SignFlip(n, math.nan, True, 1.0)
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, observed)
    if n <= exact_limit:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        means = np.abs(signs @ d) / n
        return SignFlip(n, float(np.mean(means >= observed - tol)), True, min(1.0, 2.0 / 2.0**n))
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
    hits = int(np.sum(np.abs(signs @ d) / n >= observed - tol))
    return SignFlip(n, (hits + 1) / (n_resamples + 1), False, 1.0 / (n_resamples + 1))


def paired_dz(diffs: Sequence[float]) -> float:
    """The paired standardised effect: mean difference / SD of the differences (Cohen's d_z)
    -- the effect size of a paired design (an unpaired g ignores the pairing). NaN below 2
    differences or with no spread."""
    d = finite(diffs)
    if len(d) < 2:
        return math.nan
    sd = float(d.std(ddof=1))
    return float(d.mean() / sd) if sd > 1e-12 * max(1.0, abs(float(d.mean()))) else math.nan


@dataclass(frozen=True)
class RateDifference:
    """k1/n1 vs k2/n2 failed runs, with Boschloo's exact test (two-sided)."""

    k1: int
    n1: int
    k2: int
    n2: int
    p: float  # NaN: nothing to test (no failure, or every run failed, or an empty arm)
    test: str = "Boschloo exact"


def failure_rate_test(k1: int, n1: int, k2: int, n2: int) -> RateDifference:
    """Whether two failure rates differ: Boschloo's exact test on the 2x2 table (uniformly more
    powerful than Fisher's). 2/2 vs 0/2 failed is a result (p = 0.25 here), not missing data."""
    if n1 <= 0 or n2 <= 0 or k1 + k2 == 0 or k1 + k2 == n1 + n2:
        return RateDifference(k1, n1, k2, n2, math.nan)
    table = [[int(k1), int(n1 - k1)], [int(k2), int(n2 - k2)]]
    p = float(scipy_stats().boschloo_exact(table, alternative="two-sided").pvalue)
    return RateDifference(k1, n1, k2, n2, min(1.0, p))
