"""Everything the reports need from one set of runs, computed in one call.

``analyse(runs, histories, reports)`` reads the histories one run at a time (an iterable of
``(run_id, frame)``, e.g. ``Snapshot.iter_histories()``) and returns an :class:`Analysis`
holding only small things: tables per condition and downsampled traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd

from . import scorecard as sc
from .comparisons import FormatComparator, layer_stall_frame
from .curves import Trace, collect_traces
from .failures import failure_table


@dataclass
class Analysis:
    runs: pd.DataFrame  # the run table as given
    traces: dict[str, Trace]  # run_id -> downsampled curves, collapse step, layer stall
    metric: str  # final_val_loss when logged, else final_loss
    card: pd.DataFrame  # scorecard: format x optimizer
    paired: pd.DataFrame  # manifold_comparison: per format
    failures: pd.DataFrame  # one row per failed run (FAILURE_COLUMNS)
    layers: pd.DataFrame  # per run x layer type mean stall (may be empty)
    sweet_spot: str  # "" when no 8-bit format finished
    formats: list[str] = field(default_factory=list)  # formats of completed runs, table order


def analyse(runs: pd.DataFrame, histories: Iterable[tuple[str, pd.DataFrame]] = (),
            reports: Iterable[dict] = (), max_points: int = 300) -> Analysis:
    traces = collect_traces(histories, max_points=max_points)
    metric = sc.default_metric(runs)
    done = sc.completed(runs)
    paired = sc.manifold_comparison(runs, metric)
    return Analysis(
        runs=runs, traces=traces, metric=metric,
        card=sc.scorecard(runs, metric, paired=paired), paired=paired,
        failures=failure_table(runs, traces, list(reports)),
        layers=layer_stall_frame(traces, runs),
        sweet_spot=FormatComparator(runs).identify_sweet_spot(),
        formats=sc.sorted_formats(done["format"]) if not done.empty else [],
    )
