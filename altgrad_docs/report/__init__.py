"""Reports and figures from the analysis: Markdown through Jinja2 templates, matplotlib figures.

The short way, from ``a = altgrad_docs.analysis.pipeline.analyse(...)``::

    from altgrad_docs.report import catalog
    specs = catalog.figure_specs(a)      # FigureSpec(id "fig-...", page, caption, draw, key)
    files = catalog.render_all(specs, out_dir, cache_dir)   # id -> {"svg"|"pdf"|"png": Path}
    tables = catalog.table_specs(a)      # TableSpec(id "tab-...", page, caption, data) for CSV/LaTeX
    figs = [{"id": s.id, "caption": s.caption, "src": f"figures/{s.id}.svg"}
            for s in catalog.by_page(specs, "manifold_comparison")]
    md = ReportGenerator(out, generated_at=fetched_at, run_link=link).render_manifold_comparison(
        a.runs, layers=a.layers, figures=figs)
    # pages: format_comparison (pass failures=a.failures for collapse steps), failure_modes
    # (runs_df=a.runs for k/n crash rates), manifold_comparison (layers=a.layers for the
    # per-layer-type table, or the sentence saying none were logged), formats (render_formats)

Piece by piece (``traces``, ``card``, ``paired``, ``failures``, ``layers`` as in the
``altgrad_docs.analysis`` docstring)::

    from altgrad_docs.report.generator import ReportGenerator
    gen = ReportGenerator(output_dir, generated_at=snapshot.manifest["fetched_at"],
                          run_link=lambda row: ...)   # row has run_id, name, run_url
    md = gen.render_format_comparison(runs, sweet_spot=None, failures=failures,
                                      figures=[{"id", "caption", "src"}, ...], extra={"stamp": ...})
    md = gen.render_failure_modes(failures, runs_df=runs, figures=..., extra=...)
    md = gen.render_manifold_comparison(runs, layers=layers, run_link=..., figures=..., extra=...)
    md = gen.render_formats(figures=...)      # format facts, conventions, traps
    # generate_* (the plan's API) write the same text to output_dir and return the path.
    # Templates: templates/reports/*.md.j2; user text is escaped by report.markdown.escape_md,
    # links by md_link (run_link must return Markdown that is already safe: use md_link).

    from altgrad_docs.report import figures as F, figures_summary as S
    F.plot_loss_curves(traces, runs, fmt, metric="loss", baseline="BF16", ax=None)
    F.plot_stall(traces, runs, fmt, threshold=None, ax=None)
    F.plot_over_under_flow(traces, runs, fmt, ax=None)
    F.plot_survival(traces, runs, formats=None, ax=None)
    F.plot_crash_forensics(list_of_traces, labels=None, ax=None)     # 3 panels
    F.panel_grid(formats, lambda fmt, ax: F.plot_loss_curves(traces, runs, fmt, ax=ax))
    S.plot_forest(paired, ax=None)
    S.plot_loss_vs_mantissa(card, ax=None)
    S.plot_layer_heatmap(layers, difference=False, ax=None)
    S.plot_number_lines(formats=None, ax=None)
    # each returns its Axes (ax.figure is the Figure); missing data -> "no data: <why>".

    from altgrad_docs.report.export import save_figure, render_cached, export_table
    save_figure(fig, stem)                       # stem.svg/.pdf/.png, same data -> same bytes
    render_cached(draw, key_parts, stem, cache)  # draw() -> Figure, skipped on a cache hit
    export_table(df, stem)                       # stem.csv + stem.tex (booktabs)
    from altgrad_docs.report.tables import scorecard_table, comparisons_table  # Markdown (comparisons: a.findings)
"""
