"""The parts of the findings besides the family (analysis/findings.py): counts in one unit,
the sweet spot with its uncertainty, each optimizer at its own best tuning level, and the
failure rates of the two optimizers compared per setting.

A condition is format x optimizer x setting (the design's ``setting``) everywhere here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from altgrad_docs.formats import BASELINES

from . import digits, stats
from . import scorecard as sc
from .design import level_key, level_text, paired_seeds, setting_label

MANIFOLD, STANDARD = sc.MANIFOLD, sc.STANDARD


@dataclass(frozen=True)
class Counts:
    snapshot_runs: int  # runs in the snapshot
    study_runs: int  # runs of the study (after extra.altgrad.filters)
    completed: int  # finished + failed: the runs conditions are made of
    failed: int
    left_out: int  # killed or running runs: in no condition
    conditions: int  # format x optimizer x setting with >= 1 completed run
    conditions_failed: int  # conditions with >= 1 failed run
    formats: tuple[str, ...]
    optimizers: tuple[str, ...]
    settings: int
    seeds_min: int  # completed runs per condition, fewest
    seeds_max: int


def counts_of(runs: pd.DataFrame, cond: pd.DataFrame, design: Any, n_snapshot: int | None) -> Counts:
    groups = cond.groupby(["format", "optimizer", "setting"], sort=False)
    sizes = groups.size()
    failed = groups["crashed"].sum()
    return Counts(
        snapshot_runs=int(n_snapshot if n_snapshot is not None else len(runs)), study_runs=len(runs),
        completed=len(cond), failed=int(cond["crashed"].sum()), left_out=len(runs) - len(cond),
        conditions=len(sizes), conditions_failed=int((failed > 0).sum()),
        formats=tuple(sc.sorted_formats(cond["format"])), optimizers=tuple(sorted(set(cond["optimizer"]))),
        settings=len(set(cond["setting"])), seeds_min=int(sizes.min()) if len(sizes) else 0,
        seeds_max=int(sizes.max()) if len(sizes) else 0,
    )


@dataclass(frozen=True)
class Condition:
    format: str
    optimizer: str
    setting: str
    n: int  # finished runs with a finite metric
    median: float
    min: float
    max: float

    @property
    def text(self) -> str:
        return digits.spread(self.median, self.min, self.max)


@dataclass(frozen=True)
class SweetSpot:
    """The best 8-bit condition by the primary metric's median, and those within seed noise."""

    branch: str  # "found" | "no_single" | "scripts" | "none"
    best: Condition | None = None
    near: tuple[Condition, ...] = ()
    candidates: int = 0
    scripts: tuple[str, ...] = ()  # branch "scripts": the scripts the candidates came from


def sweet_spot(card: pd.DataFrame, higher: bool = False,
               programs: Mapping[tuple[str, str, str], str] | None = None) -> SweetSpot:
    """Best = the median of the primary metric over finished runs (direction from the design).
    Within seed noise: conditions whose [min, max] over seeds overlaps the best one's; any such
    condition makes the branch "no_single" (no single best). ``programs``: (format, optimizer,
    setting) -> the script that made the condition's runs, when the runs came from several:
    candidates of two scripts or more are not ranked (branch "scripts"), since one metric
    name need not be one scale across trainers (an LM's loss, a classifier's)."""
    if not len(card):
        return SweetSpot("none")
    rows = card[~card["format"].astype(str).isin(BASELINES)]
    conds = [Condition(str(r["format"]), str(r["optimizer"]), str(r.get("setting") or ""), int(r["n_finite"]),
                       float(r["median"]), float(r["min"]), float(r["max"]))
             for _, r in rows.iterrows() if np.isfinite(float(r["median"]))]
    if not conds:
        return SweetSpot("none")
    scripts = sorted({programs[k] for c in conds if (k := (c.format, c.optimizer, c.setting)) in (programs or {})})
    if len(scripts) > 1:
        return SweetSpot("scripts", candidates=len(conds), scripts=tuple(scripts))
    sign = -1.0 if higher else 1.0
    best = min(conds, key=lambda c: (sign * c.median, c.format, c.optimizer, c.setting))
    near = sorted((c for c in conds if c is not best and c.min <= best.max and best.min <= c.max),
                  key=lambda c: (sign * c.median, c.format, c.optimizer, c.setting))
    return SweetSpot("no_single" if near else "found", best, tuple(near), len(conds))


@dataclass(frozen=True)
class ConditionRate:
    format: str
    optimizer: str
    setting: str
    k: int
    n: int
    low: float
    high: float


def condition_rates(cond: pd.DataFrame) -> list[ConditionRate]:
    out = []
    rank = {s: i for i, s in enumerate(sc.settings_of(cond))} if len(cond) else {}
    for (fmt, opt, setting), g in cond.groupby(["format", "optimizer", "setting"], sort=False):
        r = stats.crash_rate(int(g["crashed"].sum()), len(g))
        out.append(ConditionRate(str(fmt), str(opt), str(setting), r.k, r.n, r.low, r.high))
    return sorted(out, key=lambda r: (sc.format_sort_key(r.format), rank.get(r.setting, 0), r.optimizer))


def format_rates(rates: list[ConditionRate]) -> dict[str, dict[str, Any]]:
    """Per format: k/n failed over every one of its conditions (all settings and optimizers),
    with the Clopper-Pearson interval and how many conditions that is."""
    out = {}
    for fmt in dict.fromkeys(r.format for r in rates):
        rows = [r for r in rates if r.format == fmt]
        rate = stats.crash_rate(sum(r.k for r in rows), sum(r.n for r in rows))
        out[fmt] = {"k": rate.k, "n": rate.n, "low": rate.low, "high": rate.high, "conditions": len(rows)}
    return out


@dataclass(frozen=True)
class FailureComparison:
    """Failed runs of the two optimizers in one (format, setting), compared by an exact test."""

    format: str
    setting: str
    k_manifold: int
    n_manifold: int
    k_adamw: int
    n_adamw: int
    p: float  # Boschloo exact, two-sided; NaN when nothing differs to test
    branch: str  # "one_fails" | "both_fail" | "none_fail"

    @property
    def p_is(self) -> str:
        return digits.p_phrase(self.p)


def failure_comparisons(cond: pd.DataFrame) -> list[FailureComparison]:
    """Every (format, setting) with runs of both optimizers and at least one failure."""
    out = []
    for (fmt, setting), g in cond.groupby(["format", "setting"], sort=False):
        m, s = g[g["optimizer"] == MANIFOLD], g[g["optimizer"] == STANDARD]
        if not len(m) or not len(s):
            continue
        km, ks = int(m["crashed"].sum()), int(s["crashed"].sum())
        if km + ks == 0:
            continue
        test = stats.failure_rate_test(km, len(m), ks, len(s))
        branch = "both_fail" if km and ks else "one_fails"
        out.append(FailureComparison(str(fmt), str(setting), km, len(m), ks, len(s), test.p, branch))
    rank = {s: i for i, s in enumerate(sc.settings_of(cond))} if len(cond) else {}
    return sorted(out, key=lambda f: (sc.format_sort_key(f.format), rank.get(f.setting, 0)))


@dataclass(frozen=True)
class AtBest:
    """ManifoldAdamW and AdamW each at its own best level of a tuning factor (selected on this
    data), in one format and setting of the other factors, paired by seed across the levels."""

    format: str
    factor: str
    rest: str  # the other factors' setting ("" when the tuning factor is the only one)
    manifold_level: str
    adamw_level: str
    n: int
    mean: float
    low: float
    high: float
    favour: int
    against: int
    headline_levels: tuple[str, ...] = field(default_factory=tuple)  # levels of the family's comparisons here

    @property
    def text(self) -> str:
        return digits.estimate(self.mean, self.low, self.high)

    @property
    def headline_best_for(self) -> str:
        """Whether the level(s) of the significant comparisons here are best for "both"
        optimizers, only "one", or "neither" ("" when no significant comparison is here)."""
        if not self.headline_levels:
            return ""
        hits = sum(level in self.headline_levels for level in (self.manifold_level, self.adamw_level))
        return ("neither", "one", "both")[hits]


def _level_of(value: Any) -> tuple:
    """A factor level as a key: a run without the key (None, NaN or NA) is "unset", one level
    (pandas 3 keeps a missing value missing through ``astype(str)``, so text keys broke on it)."""
    return (3, 0.0, "unset") if _unset(value) else level_key(value)


def _unset(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _best_level(g: pd.DataFrame, factor: str, higher: bool) -> tuple[Any | None, int]:
    """(the level with the best median, how many levels have a finite value)."""
    meds = []
    for level, sub in g.groupby(factor, sort=False):
        vals = stats.finite(sub["value"])
        if len(vals):
            meds.append(((-1 if higher else 1) * float(np.median(vals)), level_key(level), level))
    return (min(meds)[2] if meds else None), len(meds)


def at_best(cond: pd.DataFrame, tuning: list[str], factors: list[str], higher: bool,
            comparisons: list[Any]) -> list[AtBest]:
    """For every tuning factor, format (8-bit) and setting of the other factors: each optimizer
    at the level with its best median, then ManifoldAdamW - AdamW paired by seed."""
    out = []
    better = 1.0 if higher else -1.0
    for factor in tuning:
        others = [k for k in factors if k != factor]
        for fmt in sc.sorted_formats(cond["format"]):
            if fmt in BASELINES:
                continue
            f = cond[cond["format"] == fmt]
            keys = [tuple(_level_of(v) for v in row) for row in f[others].itertuples(index=False, name=None)]
            for rest_key in dict.fromkeys(keys):
                g = f[[k == rest_key for k in keys]]
                best = {o: _best_level(g[g["optimizer"] == o], factor, higher) for o in (MANIFOLD, STANDARD)}
                levels = {o: level for o, (level, _) in best.items()}
                if any(v is None for v in levels.values()) or max(n for _, n in best.values()) < 2:
                    continue  # nothing was selected: each optimizer ran at one level only
                pick = [g[(g["optimizer"] == o) & (g[factor].map(level_key) == level_key(levels[o]))]
                        for o in (MANIFOLD, STANDARD)]
                both = pd.concat([pick[0].assign(optimizer=MANIFOLD), pick[1].assign(optimizer=STANDARD)])
                seeds, _ = paired_seeds(both)
                wide = both[both["seed"].isin(seeds)].pivot(index="seed", columns="optimizer", values="value")
                d = (wide[MANIFOLD] - wide[STANDARD]).to_numpy() if len(wide) else np.array([])
                est = stats.paired_delta(d, np.zeros(len(d)))
                first = g.iloc[0]
                rest = setting_label({k: None if _unset(first[k]) else first[k] for k in others})
                here = tuple(sorted({level_text(r[factor]) for _, r in g.iterrows()
                                     if any(c.in_family and c.format == fmt and c.setting == r["setting"]
                                            and c.branch in ("holds", "fragile") for c in comparisons)}))
                d = d[np.isfinite(d)]
                out.append(AtBest(fmt, factor, rest, level_text(levels[MANIFOLD]), level_text(levels[STANDARD]),
                                  est.n, est.mean, est.low, est.high, int(np.sum(d * better > 0)),
                                  int(np.sum(d * better < 0)), here))
    return out
