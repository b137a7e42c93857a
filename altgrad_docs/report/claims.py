"""Headline claims as computed results: which format benefits, which conditions are best.

Each function takes the analysis tables (the paired ManifoldAdamW-vs-AdamW comparison, the
scorecard) and returns a small frozen result whose ``branch`` tells the template which
sentence to write (``templates/partials/findings.md``). No prose here; the rules are:

**Which format benefits most.** The family is every (format, setting) comparison of an 8-bit
format that has a p-value; baselines (BF16, FP16, FP32) are references and never a headline.
The test is the t test behind the interval the pages print (paired t on per-seed deltas, or
Welch's t for unpaired runs), Holm-adjusted across the family. The exact Wilcoxon test is not
used for the claim: its smallest two-sided p is 2/2^n, so below 6 pairs it cannot reach 0.05,
and after Holm across k comparisons it needs 2/2^n < 0.05/k (9 pairs for k = 8).

* ``holds``: at least one improvement (mean delta < 0; > 0 when higher is better, the
  design's ``higher_is_better``) whose Holm-adjusted p < 0.05;
* ``none``: no improvement holds; the largest mean improvement is given as "not
  distinguishable from no effect" (``best``);
* ``no_data``: no 8-bit format has a comparison.

Harms (mean delta > 0, or < 0 when higher is better; Holm-adjusted p < 0.05) are listed in
every branch.

Conditions whose runs are bit-identical seed by seed (``Design.identical``: e.g. two formats
with the same grid in the weights' range) are one comparison, not several: the family counts
them once and the claim names them together.

**Sweet spot.** A condition (format x optimizer x setting) of an 8-bit format with the best
(lowest, or highest when higher is better) median of the primary metric over its finished runs. Conditions "within seed noise" of it are
those whose seed range [min, max] overlaps the best condition's range: with few seeds a
difference smaller than the spread of the seeds is not a ranking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import numpy as np
import pandas as pd

from altgrad_docs.analysis import stats
from altgrad_docs.formats import BASELINES

MANIFOLD, STANDARD = "ManifoldAdamW", "AdamW"


def _f(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x


def _setting(row: pd.Series) -> str:
    value = row.get("setting", "")
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


@dataclass(frozen=True)
class Effect:
    """One (format, setting) comparison, ManifoldAdamW minus AdamW in the primary metric."""

    format: str
    setting: str
    n: int  # pairs (paired) or runs of both arms (unpaired)
    design: str  # "paired" | "unpaired"
    mean: float  # nats
    low: float
    high: float
    percent: float  # 100 * mean / AdamW median of the same condition (NaN when unknown)
    p: float  # t-test p (NaN: not testable)
    p_holm: float
    no_spread: bool  # every per-seed delta equal: the interval has no width, no t test
    favour: int  # seeds on which ManifoldAdamW was better: lower, or higher (paired only)
    holds: bool  # Holm-adjusted p < alpha
    same_as: tuple[str, ...] = ()  # formats whose runs were bit-identical to this one's here
    higher_is_better: bool = False

    @property
    def gain(self) -> float:
        """The mean delta signed so that positive is better."""
        return self.mean if self.higher_is_better else -self.mean

    @property
    def direction(self) -> str:
        return "improves" if self.gain > 0 else "harms" if self.gain < 0 else "none"


@dataclass(frozen=True)
class BenefitClaim:
    branch: str  # "holds" | "none" | "no_data"
    metric: str
    family: int  # comparisons in the Holm family
    alpha: float
    winners: list[Effect] = field(default_factory=list)  # improvements that hold, best first
    harms: list[Effect] = field(default_factory=list)  # harms that hold
    best: Effect | None = None  # the largest mean improvement (branch "none")
    effects: list[Effect] = field(default_factory=list)  # the whole family, table order


def _reference_medians(card: pd.DataFrame | None) -> dict[tuple[str, str], float]:
    """(format, setting) -> AdamW median of the metric, from the scorecard."""
    if card is None or not len(card):
        return {}
    rows = card[card["optimizer"].astype(str) == STANDARD]
    return {(str(r["format"]), _setting(r)): _f(r["median"]) for _, r in rows.iterrows()}


def _effect(row: pd.Series, reference: dict[tuple[str, str], float], p_holm: float, alpha: float,
            higher_is_better: bool = False) -> Effect:
    deltas = [d for d in (row.get("deltas") or []) if np.isfinite(_f(d))]
    mean, low, high = _f(row["mean_delta"]), _f(row["ci_low"]), _f(row["ci_high"])
    n = int(row["n_pairs"]) if row["design"] == "paired" else int(row["n_manifold"]) + int(row["n_adamw"])
    base = reference.get((str(row["format"]), _setting(row)), math.nan)
    percent = 100.0 * mean / abs(base) if np.isfinite(base) and base != 0 else math.nan
    no_spread = row["design"] == "paired" and n >= 2 and np.isfinite(low) and low == high
    return Effect(format=str(row["format"]), setting=_setting(row), n=n, design=str(row["design"]),
                  mean=mean, low=low, high=high, percent=percent, p=_f(row.get("t_p")),
                  p_holm=p_holm, no_spread=bool(no_spread),
                  favour=sum(1 for d in deltas if (d > 0 if higher_is_better else d < 0)),
                  holds=bool(np.isfinite(p_holm) and p_holm < alpha), higher_is_better=higher_is_better)


def identical_comparisons(identical: Iterable[Iterable[tuple[str, str, str]]]) -> dict[tuple[str, str], list[str]]:
    """(format, setting) -> the other formats whose comparison at that setting is the same data:
    identical under AdamW and under ManifoldAdamW (groups of (format, optimizer, setting))."""
    same: dict[tuple[str, str, str], set[str]] = {}
    for group in identical:
        group = list(group)
        for fmt, opt, setting in group:
            same.setdefault((fmt, opt, setting), set()).update(f for f, _, _ in group if f != fmt)
    out: dict[tuple[str, str], list[str]] = {}
    for (fmt, opt, setting), others in same.items():
        if opt == STANDARD:
            both = others & same.get((fmt, MANIFOLD, setting), set())
            if both:
                out[(fmt, setting)] = sorted(both)
    return out


def _distinct(rows: pd.DataFrame, same: dict[tuple[str, str], list[str]]) -> tuple[pd.DataFrame, list[tuple[str, ...]]]:
    """Rows with each group of identical comparisons kept once (its first row in table order),
    and for each kept row the formats it stands for too."""
    keep, also, seen = [], [], set()
    for i, (_, r) in enumerate(rows.iterrows()):
        key = (str(r["format"]), _setting(r))
        if key in seen:
            continue
        others = tuple(f for f in same.get(key, []) if (f, key[1]) not in seen)
        seen.update({key, *((f, key[1]) for f in others)})
        keep.append(i)
        also.append(others)
    return rows.iloc[keep], also


def benefit_claim(paired: pd.DataFrame, card: pd.DataFrame | None = None, metric: str = "",
                  baselines: tuple[str, ...] = BASELINES, alpha: float = stats.ALPHA,
                  identical: Iterable[Iterable[tuple[str, str, str]]] = (),
                  higher_is_better: bool = False) -> BenefitClaim:
    """Which 8-bit format benefits most from ManifoldAdamW (rules in the module docstring)."""
    rows = paired[~paired["format"].astype(str).isin(baselines)] if len(paired) else paired
    rows = rows[np.isfinite(pd.to_numeric(rows["mean_delta"], errors="coerce"))] if len(rows) else rows
    rows, also = _distinct(rows, identical_comparisons(identical)) if len(rows) else (rows, [])
    metric = metric or (str(rows["metric"].iloc[0]) if len(rows) and "metric" in rows else "")
    if not len(rows):
        return BenefitClaim("no_data", metric, 0, alpha)
    pvals = [_f(p) for p in rows["t_p"]]
    adjusted = stats.holm(pvals)
    family = int(sum(np.isfinite(pvals)))
    reference = _reference_medians(card)
    effects = [replace(_effect(r, reference, adj, alpha, higher_is_better), same_as=same)
               for (_, r), adj, same in zip(rows.iterrows(), adjusted, also)]
    winners = sorted((e for e in effects if e.holds and e.gain > 0), key=lambda e: -e.gain)
    harms = sorted((e for e in effects if e.holds and e.gain < 0), key=lambda e: e.gain)
    if winners:
        return BenefitClaim("holds", metric, family, alpha, winners, harms, None, effects)
    improving = [e for e in effects if e.gain > 0]
    best = max(improving, key=lambda e: e.gain) if improving else None
    return BenefitClaim("none", metric, family, alpha, [], harms, best, effects)


@dataclass(frozen=True)
class Condition:
    format: str
    optimizer: str
    setting: str
    n: int  # finished runs with a finite metric
    median: float
    min: float
    max: float


@dataclass(frozen=True)
class SweetSpotClaim:
    branch: str  # "found" | "none"
    metric: str
    best: Condition | None = None
    near: list[Condition] = field(default_factory=list)  # within seed noise of the best
    candidates: int = 0  # 8-bit conditions with a finite median


def sweet_spot_claim(card: pd.DataFrame, metric: str = "",
                     baselines: tuple[str, ...] = BASELINES, higher_is_better: bool = False) -> SweetSpotClaim:
    """The best 8-bit condition by the primary metric and those within seed noise of it."""
    metric = metric or (str(card["metric"].iloc[0]) if len(card) and "metric" in card else "")
    if not len(card):
        return SweetSpotClaim("none", metric)
    rows = card[~card["format"].astype(str).isin(baselines)]
    conds = [Condition(str(r["format"]), str(r["optimizer"]), _setting(r), int(r["n_finite"]),
                       _f(r["median"]), _f(r["min"]), _f(r["max"]))
             for _, r in rows.iterrows() if np.isfinite(_f(r["median"]))]
    if not conds:
        return SweetSpotClaim("none", metric)
    sign = -1.0 if higher_is_better else 1.0
    best = min(conds, key=lambda c: (sign * c.median, c.format, c.optimizer, c.setting))
    near = [c for c in conds if c is not best and c.min <= best.max and best.min <= c.max]
    near.sort(key=lambda c: (sign * c.median, c.format, c.optimizer, c.setting))
    return SweetSpotClaim("found", metric, best, near, len(conds))
