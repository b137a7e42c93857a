"""Headline claims: computed results whose ``branch`` picks the sentence.

Every claim the pages make is a field of the one findings object (analysis/findings.py): the
family's comparisons with their wording branch (``findings.branch_of``: holds, fragile,
consistent, excludes_zero, unclear, no_spread, single), the failure rates compared per setting,
each optimizer at its own best level, and the sweet spot. The sentences are the macros of
``templates/reports/_findings.md.j2``; the rules are listed on Methods
(``templates/partials/family.md``). This module keeps the names earlier callers used.
"""

from __future__ import annotations

import pandas as pd

from altgrad_docs.analysis.findings import Comparison, Family, Findings, branch_of, build_findings
from altgrad_docs.analysis.findings_parts import Condition, SweetSpot, sweet_spot

__all__ = ["Comparison", "Condition", "Family", "Findings", "SweetSpot", "branch_of", "build_findings",
           "sweet_spot_claim"]


def sweet_spot_claim(card: pd.DataFrame, metric: str = "", higher_is_better: bool = False) -> SweetSpot:
    """The best 8-bit condition of a scorecard and those within seed noise of it (branch
    "found", "no_single" or "none"); ``metric`` is the scorecard's own (kept for callers)."""
    return sweet_spot(card, higher_is_better)
