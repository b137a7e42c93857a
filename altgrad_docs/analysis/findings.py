"""Every quantity any page states, computed once per build: the one result object.

:func:`build_findings` takes the analysis (design, run table, paired comparisons, scorecard,
traces) and returns :class:`Findings`. The home page, every report page, Methods and the
downloadable tables render from it; no template or page context selects or recomputes a number.

**The family** (one per question). Question: "does ManifoldAdamW change the primary metric,
per 8-bit format x setting?". Members: every (8-bit format, setting) with runs of both
optimizers whose paired t test can be computed (>= 2 pairs with a spread; Welch's t for
unpaired runs); baselines (BF16/FP16/FP32) are references, outside the family; comparisons
whose runs are bit-identical count once. Test: the paired t test behind the printed interval;
correction: Holm across the members. The exact sign-flip test of the same pairs is Holm-
corrected across the same members, and so is the t test under each other definition of
"final" (analysis/robustness.py, analysis/findings_robust.py): that is the robustness of each member.

**Units.** A condition is format x optimizer x setting everywhere; every per-format or
per-condition number is computed from that format's or condition's runs only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import pandas as pd

from altgrad_docs.formats import BASELINES
from altgrad_docs.runs import to_float

from . import digits, stats
from . import scorecard as sc
from .findings_parts import (AtBest, ConditionRate, Counts, FailureComparison, SweetSpot, at_best, format_rates,
                             condition_rates, counts_of, failure_comparisons, sweet_spot)
from .findings_robust import EstimateText, Robustness, robust
from .robustness import DEFINITIONS

LOG = logging.getLogger("mkdocs.plugins.altgrad")
MANIFOLD, STANDARD = sc.MANIFOLD, sc.STANDARD
ALPHA = stats.ALPHA
QUESTION = "Does ManifoldAdamW change the primary metric, per 8-bit format × setting?"
#: Size words from the paired effect size |d_z| = |mean difference| / SD of the differences.
SIZES = ((0.8, "large"), (0.5, "moderate"), (0.2, "small"), (0.0, "negligible"))


@dataclass(frozen=True)
class Comparison(EstimateText):
    """ManifoldAdamW minus AdamW in one (format, setting): estimate first, then tests."""

    format: str
    setting: str
    design: str  # "paired" | "unpaired"
    n: int  # pairs used (paired) or runs of both arms (unpaired)
    n_seeds: int  # seeds both optimizers ran once (paired); pairs lost to a failed run = n_seeds - n
    mean: float
    low: float
    high: float
    t_p: float
    dz: float  # paired effect size (NaN unpaired)
    favour: int  # seeds on which ManifoldAdamW was better (by the metric's direction)
    against: int  # seeds on which AdamW was better
    in_family: bool
    p_holm: float = math.nan
    same_as: tuple[str, ...] = ()
    robustness: Robustness | None = None
    branch: str = "unclear"
    size: str = ""
    deltas: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    levels: tuple[tuple[str, Any], ...] = ()  # (factor, level) of the setting, for the download

    @property
    def lost(self) -> int:
        return max(0, self.n_seeds - self.n) if self.design == "paired" else 0

    @property
    def deltas_text(self) -> str:
        """Every per-seed difference, at the precision of the comparison's interval."""
        hw = (self.high - self.low) / 2 if math.isfinite(self.high - self.low) else None
        return ", ".join(digits.number(d, hw) for d in self.deltas)

    @property
    def key(self) -> tuple[str, str]:
        return self.format, self.setting


@dataclass(frozen=True)
class Family:
    question: str
    metric: str
    higher_is_better: bool
    test: str
    correction: str
    alpha: float
    members: tuple[tuple[str, str], ...]

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class Findings:
    counts: Counts
    family: Family
    comparisons: list[Comparison]  # every (format, setting) with runs of both optimizers, table order
    sweet_spot: SweetSpot
    at_best: list[AtBest] = field(default_factory=list)
    failures: list[FailureComparison] = field(default_factory=list)
    rates: list[ConditionRate] = field(default_factory=list)
    by_format: dict[str, dict[str, Any]] = field(default_factory=dict)  # k/n over each format's conditions

    @property
    def pairs_lost(self) -> int:
        """Seed pairs left out of the paired differences because a run of the pair failed."""
        return sum(c.lost for c in self.comparisons)

    @property
    def tally(self) -> dict[str, int]:
        """Family members per wording branch (every branch present, 0 when none)."""
        out = dict.fromkeys(("holds", "fragile", "consistent", "excludes_zero", "unclear", "single", "no_spread"), 0)
        for c in self.members():
            out[c.branch] = out.get(c.branch, 0) + 1
        return out

    @property
    def headline_at_best(self) -> list[AtBest]:
        """Each optimizer at its best level where the headline's format was significant."""
        h = self.headline
        return [b for b in self.at_best if h is not None and b.format == h.format and b.headline_levels]

    @property
    def one_fails(self) -> list[FailureComparison]:
        """The settings where one optimizer failed and the other did not."""
        return [x for x in self.failures if x.branch == "one_fails"]

    def members(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.in_family]

    def by_branch(self, *branches: str) -> list[Comparison]:
        return [c for c in self.members() if c.branch in branches]

    @property
    def headline(self) -> Comparison | None:
        """The family member with the smallest Holm-adjusted p, if any is below alpha."""
        held = sorted(self.by_branch("holds", "fragile"), key=lambda c: (c.p_holm, c.mean))
        return held[0] if held else None

    def comparison(self, fmt: str, setting: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.key == (fmt, setting)), None)


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


def _size(dz: float, n: int) -> str:
    if not math.isfinite(dz) or n < 3:
        return ""
    return next(word for bound, word in SIZES if abs(dz) >= bound)


def _base(row: pd.Series, better_sign: float, factors: Iterable[str] = ()) -> Comparison:
    raw = [(to_float(d), int(s)) for d, s in zip(row.get("deltas") or [], row.get("seeds") or [])]
    pairs = [(d, s) for d, s in raw if math.isfinite(d)]
    deltas = tuple(d for d, _ in pairs)
    paired = row["design"] == "paired"
    n = int(row["n_pairs"]) if paired else int(row["n_manifold"]) + int(row["n_adamw"])
    return Comparison(
        format=str(row["format"]), setting=str(row.get("setting") or ""), design=str(row["design"]), n=n,
        n_seeds=len(raw) if paired else n, mean=to_float(row["mean_delta"]), low=to_float(row["ci_low"]),
        high=to_float(row["ci_high"]), t_p=to_float(row.get("t_p")), dz=stats.paired_dz(deltas) if paired else math.nan,
        favour=sum(1 for d in deltas if d * better_sign > 0), against=sum(1 for d in deltas if d * better_sign < 0),
        in_family=False, deltas=deltas, seeds=tuple(s for _, s in pairs),
        levels=tuple((k, row[k]) for k in factors if k in row.index))


def _members(rows: list[Comparison], identical) -> list[Comparison]:
    """Mark the family's members (8-bit, testable, identical comparisons once)."""
    same, seen, out = identical_comparisons(identical), set(), []
    for c in rows:
        if c.key in seen:
            out.append(c)
            continue
        others = tuple(f for f in same.get(c.key, []) if (f, c.setting) not in seen)
        seen.update({c.key, *((f, c.setting) for f in others)})
        member = c.format not in BASELINES and math.isfinite(c.t_p)
        out.append(replace(c, in_family=member, same_as=others))
    return out


def build_findings(a: Any, n_snapshot_runs: int | None = None, tuning: Iterable[str] | None = None,
                   alpha: float = ALPHA) -> Findings:
    """The findings of one analysis (``pipeline.Analysis``); rules in the module docstring."""
    design = a.design
    higher = bool(getattr(design, "higher_is_better", False))
    better = 1.0 if higher else -1.0  # the sign of a ManifoldAdamW - AdamW difference that favours it
    factors = design.factor_names if design is not None else []
    cond = sc.condition_frame(a.runs, a.metric, factors)
    rows = [_base(r, better, factors) for _, r in a.paired.iterrows()]
    rows = _members(rows, design.identical if design is not None else [])
    members = [c for c in rows if c.in_family]
    holm = dict(zip((c.key for c in members), stats.holm([c.t_p for c in members])))
    rows = [replace(c, p_holm=holm.get(c.key, math.nan)) for c in rows]
    rows = robust(rows, a, cond, higher, alpha)
    rows = [replace(c, size=_size(c.dz, c.n), branch=branch_of(c, alpha, better)) for c in rows]
    family = Family(QUESTION, a.metric, higher, "paired t test (Welch's t for unpaired runs)", "Holm", alpha,
                    tuple(c.key for c in rows if c.in_family))
    given = tuning is not None
    tuning = list(tuning if given else getattr(design, "tuning", None) or ["learning_rate"])
    for name in (t for t in tuning if given and t not in factors):
        LOG.warning("the tuning option names %s, which is not a factor of these runs (factors: %s): no "
                    "optimizer is compared at its best %s --> Do: name a factor, or remove it.", name,
                    ", ".join(factors) or "none", name)
    return Findings(
        counts=counts_of(a.runs, cond, design, n_snapshot_runs),
        family=family, comparisons=rows, sweet_spot=sweet_spot(a.card, higher, condition_programs(design)),
        at_best=at_best(cond, [t for t in tuning if t in factors], factors, higher, rows),
        failures=failure_comparisons(cond), rates=(rates := condition_rates(cond)), by_format=format_rates(rates),
    )


def condition_programs(design: Any) -> dict[tuple[str, str, str], str]:
    """(format, optimizer, setting) -> the script that made its runs, when the design's runs
    came from several scripts ({} otherwise, or where a condition's script is unknown)."""
    runs = getattr(design, "runs", None)
    if runs is None or "program" not in runs:
        return {}
    done = runs[runs["included"] & runs["program"].notna()]
    return {(str(f), str(o), str(s)): str(p) for f, o, s, p in
            zip(done["format"], done["optimizer"], done["setting"], done["program"])}


def branch_of(c: Comparison, alpha: float = ALPHA, better: float = -1.0) -> str:
    """The sentence a comparison gets (rules on Methods; one test per branch):

    * ``no_pairs``: no pair with both runs finished (every pair lost to a failed run);
    * ``single``: fewer than 2 pairs (runs per arm): no interval;
    * ``no_spread``: every seed gave the same nonzero difference: no interval, no test;
    * ``holds``: Holm-adjusted t p < alpha and every robustness check agrees;
    * ``fragile``: Holm-adjusted t p < alpha but a robustness check breaks it;
    * ``consistent``: not significant after Holm, the same direction on every one of >= 3
      seeds and a large paired effect (|d_z| >= 0.8);
    * ``excludes_zero``: not significant after Holm, but the 95% interval excludes 0;
    * ``unclear``: the interval includes 0.
    """
    if not math.isfinite(c.mean):
        return "no_pairs"
    if c.design == "paired" and c.n >= 2 and not math.isfinite(c.t_p) and c.mean != 0:
        return "no_spread"
    if not (math.isfinite(c.low) and math.isfinite(c.high)):
        return "single"
    if c.in_family and c.p_holm < alpha:
        return "fragile" if c.robustness is not None and c.robustness.breaks else "holds"
    if c.design == "paired" and c.n >= 3 and max(c.favour, c.against) == c.n and abs(c.dz) >= 0.8:
        return "consistent"
    if c.high < 0 or c.low > 0:
        return "excludes_zero"
    return "unclear"


def family_table(f: Findings) -> pd.DataFrame:
    """The downloadable table of every comparison: the numbers the pages cite, unrounded."""
    rows = []
    for c in f.comparisons:
        r = c.robustness
        alts = {a.definition: a for a in (r.alternatives if r else ())}
        rows.append({
            "format": c.format, **dict(c.levels), "setting": c.setting, "metric": f.family.metric,
            "design": c.design, "in_family": c.in_family, "family_size": f.family.size if c.in_family else 0,
            "same_as": ", ".join(c.same_as), "n_pairs": c.n if c.design == "paired" else 0,
            "n_runs": c.n if c.design == "unpaired" else 2 * c.n, "pairs_lost_to_failed_runs": c.lost,
            "per_seed_deltas": ";".join(repr(d) for d in c.deltas),
            "mean_delta": c.mean, "ci_low": c.low, "ci_high": c.high,
            "manifold_better_seeds": c.favour, "adamw_better_seeds": c.against, "paired_dz": c.dz,
            "t_p": c.t_p, "t_p_holm": c.p_holm, "exact_test": r.exact_test if r else "",
            "exact_p": r.exact_p if r else math.nan, "exact_p_holm": r.exact_p_holm if r else math.nan,
            **{f"{d}_mean_delta": alts[d].mean if d in alts else math.nan for d in DEFINITIONS[1:]},
            **{f"{d}_t_p_holm": alts[d].p_holm if d in alts else math.nan for d in DEFINITIONS[1:]},
            "breaks": "; ".join(r.breaks) if r else "", "wording": c.branch,
        })
    return pd.DataFrame(rows)
