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
from .comparisons import FormatComparator, layer_frame
from .curves import Trace, collect_traces
from .design import Design, DesignOptions, identical_conditions, infer_design
from .failures import failure_table
from .metrics import RATES, with_metric_columns
from .rates import decide_cumulative
from .findings import Findings, build_findings


@dataclass
class Analysis:
    runs: pd.DataFrame  # the study's run table (filtered), with the string column ``setting``
    traces: dict[str, Trace]  # run_id -> downsampled curves, collapse step, layer stall
    metric: str  # the design's primary metric: final_val_loss or final_loss
    card: pd.DataFrame  # scorecard: format x optimizer x setting
    paired: pd.DataFrame  # manifold_comparison: per format and setting
    failures: pd.DataFrame  # one row per failed run (FAILURE_COLUMNS)
    layers: pd.DataFrame  # per run x per-layer family x layer type: mean (comparisons.layer_frame; may be empty)
    sweet_spot: str  # format of the best condition; "" when no 8-bit format finished
    formats: list[str] = field(default_factory=list)  # formats of completed runs, table order
    design: Design | None = None  # factors, cells, runs left out, identical conditions
    sweet_condition: dict | None = None  # the best condition by the primary metric, or None
    higher_is_better: bool = False  # the primary metric's direction (design.metric_map)
    cumulative: dict[str, bool] = field(default_factory=dict)  # rate key -> read as cumulative since step 0
    findings: Findings | None = None  # every number the pages state, computed once (analysis/findings.py)


def analyse(runs: pd.DataFrame, histories: Iterable[tuple[str, pd.DataFrame]] = (),
            reports: Iterable[dict] = (), max_points: int = 300,
            options: DesignOptions | None = None, design: Design | None = None,
            traces: dict[str, Trace] | None = None) -> Analysis:
    """Every table of the reports, per condition of the design (``design``, else inferred
    from the runs with ``options``); the histories are read once, here, unless their
    ``traces`` come made (``collect_traces`` with this design's ``budgets()`` and
    ``max_points``; the site reads them on every core)."""
    design = design or infer_design(runs, options)
    runs = with_metric_columns(runs, design.metric_map)
    budgets = design.budgets()
    if traces is None:
        traces = collect_traces(histories, max_points=max_points, budgets=budgets, metric_map=design.metric_map)
    if traces and not design.identical:
        design.identical = identical_conditions(design.runs[design.runs["included"]],
                                                {r: t.history_hash for r, t in traces.items()})
    metric, factors, higher = design.metric, design.factor_names, design.higher_is_better
    study = at_budget(design.study(runs), traces, budgets, metric)
    done = sc.completed(study)
    paired = sc.manifold_comparison(study, metric, factors, paired=design.paired, higher_is_better=higher)
    spot = FormatComparator(study, factors, higher_is_better=higher).sweet_spot_condition(metric)
    cumulative = cumulative_rates(traces, design.metric_map.cumulative)
    out = Analysis(
        runs=study, traces=traces, metric=metric,
        card=sc.scorecard(study, metric, design.baseline, paired=paired, factors=factors, higher_is_better=higher),
        paired=paired, failures=failure_table(study, traces, list(reports), cumulative=cumulative),
        layers=layer_frame(traces, study),
        sweet_spot=str(spot["format"]) if spot else "",
        formats=sc.sorted_formats(done["format"]) if not done.empty else [],
        design=design, sweet_condition=spot, higher_is_better=higher, cumulative=cumulative,
    )
    out.findings = build_findings(out, n_snapshot_runs=len(runs), tuning=options.tuning if options else None)
    return out


def cumulative_rates(traces: dict[str, Trace], declared: dict[str, bool | None]) -> dict[str, bool]:
    """Rate key -> cumulative since step 0: as the metric map declares it, else as the runs'
    histories read (metrics.looks_cumulative per run; metrics.decide_cumulative over runs)."""
    out = {}
    for rate in RATES.values():
        if declared.get(rate) is not None:
            out[rate] = bool(declared[rate])
        else:
            out[rate] = decide_cumulative(t.cumulative.get(rate) for t in traces.values())
    return out


def at_budget(study: pd.DataFrame, traces: dict[str, Trace], budgets: dict[str, int], metric: str) -> pd.DataFrame:
    """The study with ``metric`` of the runs in ``budgets`` read at their step budget (from the
    traces), so that runs of different lengths compared with each other are compared at the same
    step; ``metric_step_budget`` says which runs (NaN = the run's own last value)."""
    out = study.copy()
    out["metric_step_budget"] = pd.array([budgets.get(r) for r in out["run_id"].astype(str)], dtype="Int64")
    key = metric.removeprefix("final_")
    for i, run_id in enumerate(out["run_id"].astype(str)):
        trace = traces.get(run_id)
        if run_id in budgets and trace is not None and key in trace.at_budget:
            out.iloc[i, out.columns.get_loc(metric)] = trace.at_budget[key]
    out.attrs = dict(study.attrs)
    return out
