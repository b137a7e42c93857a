"""The site's thin adapter to the analysis and report packages.

The statistics and the comparison figures are computed by :mod:`altgrad_docs.analysis` and
drawn by :mod:`altgrad_docs.report`; this module only asks them for what the pages show
and wraps the answers as page artifacts. It computes nothing statistical itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .snapshot import Snapshot


def code_files() -> list[Path]:
    """Source files whose changes must invalidate the figure cache."""
    return [Path(__file__)]


def analyse(snapshot: Snapshot, runs: pd.DataFrame) -> dict[str, Any]:
    """Counts the home page states about the data (no statistics here)."""
    fp8 = runs[runs["use_fp8"].fillna(False)]
    return {
        "n_runs": len(runs),
        "n_failed": int((runs["status"] == "failed").sum()),
        "formats": sorted(set(runs["format"].dropna())),
        "fp8_formats": sorted(set(fp8["format"].dropna())),
        "optimizers": sorted(set(runs["optimizer"].dropna())),
        "seeds": sorted(int(s) for s in set(runs["seed"].dropna())),
    }


def analysis_pages(snapshot: Snapshot, runs: pd.DataFrame, results: dict[str, Any], cache: Any) -> list:
    """Format comparison, failure modes, manifold-aware vs AdamW (from the analysis package)."""
    return []
