"""The robustness of each comparison in the family (analysis/findings.py): the exact test of
the same pairs, the effect under other definitions of "final" (analysis/robustness.py) and
leave-one-seed-out, each corrected across the same family. A check that disagrees with the
t test breaks the comparison's claim: it is then called fragile, with what breaks it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from . import digits, stats
from . import scorecard as sc
from .robustness import DEFINITIONS, LABELS, finals_by_run, leave_one_out

MANIFOLD, STANDARD = sc.MANIFOLD, sc.STANDARD


class EstimateText:
    """Wording of an estimate with its interval and Holm-adjusted p, at the digits n supports
    (a mixin of the dataclasses with fields ``mean``, ``low``, ``high`` and ``p_holm``)."""

    @property
    def text(self) -> str:
        return digits.estimate(self.mean, self.low, self.high)

    @property
    def p_text(self) -> str:
        return digits.p_value(self.p_holm)

    @property
    def p_is(self) -> str:
        """'= 0.0073' or '< 0.001': the family's adjusted p after the letter p."""
        return digits.p_phrase(self.p_holm)


@dataclass(frozen=True)
class Alternative(EstimateText):
    """The comparison with "final" defined another way (robustness.DEFINITIONS)."""

    definition: str
    label: str
    n: int
    mean: float
    low: float
    high: float
    p_holm: float  # t test Holm-corrected across the family on this definition



@dataclass(frozen=True)
class Robustness:
    exact_p: float  # sign-flip permutation test (paired) or exact Mann-Whitney (unpaired)
    exact_p_holm: float
    exact_min_p: float  # the smallest p the exact test can give with these n
    exact_test: str
    alternatives: tuple[Alternative, ...] = ()
    loso_break: tuple[int, float, float, float] | None = None  # (seed, mean, low, high)
    breaks: tuple[str, ...] = ()  # "exact", a definition of final, "loso"

    @property
    def exact_p_text(self) -> str:
        return digits.p_value(self.exact_p)

    @property
    def exact_p_holm_text(self) -> str:
        return digits.p_value(self.exact_p_holm)

    @property
    def exact_p_is(self) -> str:
        return digits.p_phrase(self.exact_p)

    @property
    def at_floor(self) -> bool:
        """The exact p is the smallest its test can give with these n: no data could say more."""
        return math.isfinite(self.exact_min_p) and math.isfinite(self.exact_p) and self.exact_p <= self.exact_min_p * (1 + 1e-9)

    @property
    def loso_text(self) -> str:
        return "" if self.loso_break is None else digits.estimate(*self.loso_break[1:])


def _pairs_of(cond: pd.DataFrame, c: Any) -> list[tuple[int, str, str]]:
    """(seed, ManifoldAdamW run, AdamW run) of the comparison's seeds."""
    sub = cond[((cond["format"] == c.format) & (cond["setting"] == c.setting)).to_numpy()]
    out = []
    for seed in c.seeds:
        at = sub[sub["seed"] == seed]
        m, s = at[at["optimizer"] == MANIFOLD], at[at["optimizer"] == STANDARD]
        if len(m) == 1 and len(s) == 1:
            out.append((seed, str(m["run_id"].iloc[0]), str(s["run_id"].iloc[0])))
    return out


def robust(rows: list[Any], a: Any, cond: pd.DataFrame, higher: bool, alpha: float) -> list[Any]:
    """Exact test, other definitions of final and leave-one-seed-out for every family member."""
    members = [c for c in rows if c.in_family]
    if not members:
        return rows
    key = a.metric.removeprefix("final_")
    failed = set(cond.loc[cond["crashed"].to_numpy(), "run_id"].astype(str))
    budgets = a.design.budgets() if a.design is not None else {}
    finals = finals_by_run(a.traces, list(cond["run_id"].astype(str)), key, failed, higher, budgets)
    exact = []
    for c in members:
        if c.design == "paired":
            sf = stats.sign_flip_test(c.deltas)
            exact.append((sf.p, sf.min_p, "sign-flip permutation" + (" (exact)" if sf.exact else " (Monte Carlo)")))
        else:
            sub = cond[((cond["format"] == c.format) & (cond["setting"] == c.setting)).to_numpy()]
            arms = [stats.finite(sub.loc[(sub["optimizer"] == o).to_numpy(), "value"]) for o in (MANIFOLD, STANDARD)]
            mw = stats.scipy_stats().mannwhitneyu(*arms, alternative="two-sided", method="exact").pvalue
            exact.append((float(mw), stats.min_p_mannwhitney(len(arms[0]), len(arms[1])), "Mann-Whitney U (exact)"))
    exact_holm = stats.holm([e[0] for e in exact])
    alternatives: dict[tuple[str, str], list[Alternative]] = {c.key: [] for c in members}
    pairs = {c.key: _pairs_of(cond, c) for c in members if c.design == "paired"}
    for definition in DEFINITIONS[1:]:
        ests = []
        for c in members:
            if c.design == "paired":
                d = [finals[m][definition] - finals[s][definition] for _, m, s in pairs[c.key]]
                est = stats.paired_delta(d, [0.0] * len(d))  # its t_p is the paired t test's p
                ests.append((est, est.t_p))
            else:
                sub = cond[((cond["format"] == c.format) & (cond["setting"] == c.setting)).to_numpy()]
                vals = {o: [finals[r][definition] for r in sub.loc[sub["optimizer"] == o, "run_id"].astype(str)]
                        for o in (MANIFOLD, STANDARD)}
                est = stats.welch_delta(vals[MANIFOLD], vals[STANDARD])
                ests.append((est, est.t_p))
        adjusted = stats.holm([p for _, p in ests])
        for c, (est, _), adj in zip(members, ests, adjusted):
            if est.n:  # no trace holds this definition (e.g. a table without histories): not a check
                alternatives[c.key].append(Alternative(definition, LABELS[definition], est.n, est.mean, est.low,
                                                       est.high, adj))
    out = []
    it = iter(zip(members, exact, exact_holm))
    lookup = {c.key: (e, h) for c, e, h in it}
    for c in rows:
        if not c.in_family:
            out.append(c)
            continue
        (p, min_p, test), p_adj = lookup[c.key]
        sign = float(np.sign(c.mean))
        loso = leave_one_out(c.deltas, c.seeds).breaking(sign) if c.design == "paired" and sign else None
        breaks = []
        if not (math.isfinite(p_adj) and p_adj < alpha):
            breaks.append("exact")
        for alt in alternatives[c.key]:
            if not (math.isfinite(alt.mean) and np.sign(alt.mean) == sign and alt.p_holm < alpha):
                breaks.append(alt.definition)
        if loso is not None:
            breaks.append("loso")
        out.append(replace(c, robustness=Robustness(p, p_adj, min_p, test, tuple(alternatives[c.key]), loso,
                                                    tuple(breaks))))
    return out
