"""Analysis of the run table and run histories: statistics, comparisons, failures.

Pure computation: inputs are the run table (columns ``altgrad_docs.runs.RUN_COLUMNS``) and
history frames (``_step`` + float64 metric columns, names per the data contract). Nothing
here knows where the data came from, and nothing here draws or formats text.

The short way (one call, everything below at once)::

    from altgrad_docs.analysis.pipeline import analyse
    a = analyse(runs, snapshot.iter_histories(), reports)   # -> Analysis: runs, traces,
        # metric, card, paired, failures, layers, sweet_spot, formats, and a.findings: every
        # number a page states, computed once (findings.py: the family of comparisons with
        # its Holm-adjusted t test, exact test and robustness, wording branches, counts per
        # condition, failure rates compared, each optimizer at its best level, sweet spot)
        # iter_histories() with keys=None reads all columns of one run at a time, so the
        # per-layer stall/<param> columns reach the heatmap; measured (benchmarks/
        # analysis_scale.md): 1,000 runs x 10,000 steps in ~3.4 s, peak 40 MB, ~36 KB kept per run.

The same, step by step (``runs = snapshot.runs()``)::

    from altgrad_docs.analysis.curves import collect_traces, SITE_TRACE_KEYS
    traces = collect_traces(snapshot.iter_histories(keys), max_points=300)
        # keys: SITE_TRACE_KEYS + the run's stall/<param> columns (per-layer heatmap); one
        # history in memory at a time; each Trace keeps <= max_points points per metric
        # (evenly strided: medians), <= PLOT_POINTS MinMaxLTTB points of the curves drawn
        # run by run, the failure classification's summary of every row, the collapse
        # step and the 50 steps before it.

    from altgrad_docs.analysis import scorecard as sc
    card = sc.scorecard(runs)              # format x optimizer: n, crashes + CP interval,
                                           # median [min, max], Δ vs BF16, paired Δ + CI, ...
    paired = sc.manifold_comparison(runs)  # per format: per-seed deltas, t CI, Hedges' g,
                                           # P(improve), exact test or "too few seeds to test", Holm

    from altgrad_docs.analysis.failures import FailureAnalyzer, failure_table
    from altgrad_docs.analysis.failure_reports import read_failure_reports
    reports = read_failure_reports(paths, run_ids)      # broken files skipped with a warning
    failures = failure_table(runs, traces, reports)     # one row per failed run

    from altgrad_docs.analysis.comparisons import FormatComparator, layer_stall_frame
    layers = layer_stall_frame(traces, runs)            # for the per-layer-type heatmap

The original plan's API: ``FormatComparator(df)`` (rank_by_metric, identify_sweet_spot,
compute_improvement, compare_by_layer_type) and ``FailureAnalyzer()`` (extract_failures,
parse_local_failure_reports, classify_failure_mode, merge_failure_data, classify_history).
Statistics on plain arrays are in :mod:`.stats`; format facts in :mod:`.facts`.
"""
