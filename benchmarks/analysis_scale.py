"""Time and memory of the analysis and report stages on synthetic runs (run by hand).

    MPLBACKEND=Agg .venv/bin/python -m benchmarks.analysis_scale --runs 1000 --steps 10000

Histories are generated twice from the same seed (once for the run table, once streamed
into ``analyse``), so only one run's history is in memory at a time, as with a snapshot.
With --memory, peak memory is Python's traced allocations (tracemalloc) during a second
``analyse`` pass (tracing slows it several times, so it is not timed). Results are
written by hand into benchmarks/analysis_scale.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc

import numpy as np

from altgrad_docs.analysis.pipeline import analyse
from altgrad_docs.report import catalog
from altgrad_docs.report.generator import ReportGenerator
from altgrad_docs.runs import run_row, runs_frame, tidy_history
from benchmarks.synthetic import synthetic_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=12)
    parser.add_argument("--figures", action="store_true", help="also render every figure (SVG + PDF)")
    parser.add_argument("--memory", action="store_true", help="also trace memory (a second, slower pass)")
    args = parser.parse_args()

    def records():
        return synthetic_records(args.runs, args.steps, args.metrics, np.random.default_rng(0))

    t0 = time.perf_counter()
    runs = runs_frame([run_row(r) for r in records()])
    print(f"generating the synthetic runs once (the run table): {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    for r in records():
        tidy_history(r.history)
    t_source = time.perf_counter() - t0
    print(f"generating + tidying the histories (what a snapshot read replaces): {t_source:.1f} s")
    t0 = time.perf_counter()
    a = analyse(runs, ((r.run_id, tidy_history(r.history)) for r in records()))
    t_analyse = time.perf_counter() - t0
    print(f"analyse: {args.runs} runs x {args.steps} steps x {args.metrics} metrics: {t_analyse:.1f} s, of which "
          f"~{t_analyse - t_source:.1f} s analysis")
    if args.memory:  # a second pass: tracemalloc slows allocation-heavy code several times
        tracemalloc.start()
        analyse(runs, ((r.run_id, tidy_history(r.history)) for r in records()))
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"memory during analyse (tracemalloc): peak {peak / 1e6:.0f} MB, kept {kept / 1e6:.1f} MB")

    gen = ReportGenerator(tempfile.mkdtemp(), generated_at="benchmark")
    t0 = time.perf_counter()
    texts = [gen.render_format_comparison(runs, a.sweet_spot, failures=a.failures),
             gen.render_failure_modes(a.failures, runs_df=runs),
             gen.render_manifold_comparison(runs, layers=a.layers), gen.render_formats()]
    print(f"4 reports: {time.perf_counter() - t0:.1f} s, {sum(map(len, texts)) / 1e3:.0f} kB of Markdown")

    if args.figures:
        specs = catalog.figure_specs(a)
        total = 0.0
        with tempfile.TemporaryDirectory() as out:
            for spec in specs:
                t0 = time.perf_counter()
                catalog.render_all([spec], out, formats=("svg", "pdf"))
                took = time.perf_counter() - t0
                total += took
                print(f"  {spec.id}: {took:.1f} s")
        print(f"{len(specs)} figures, SVG + PDF: {total:.1f} s")


if __name__ == "__main__":
    main()
