"""The site's thin adapter to the analysis and report packages.

The statistics, the report text and the comparison figures come from
:mod:`altgrad_docs.analysis` (``pipeline.analyse``) and :mod:`altgrad_docs.report`
(``ReportGenerator.render_*``, ``catalog.figure_specs`` / ``table_specs``, ``export``);
this module only asks them for what each page shows and wraps the answers as page
artifacts (ids, numbered captions, downloads). It computes no statistic itself.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

from ..analysis.failure_reports import read_failure_reports
from ..analysis.design import DesignOptions, infer_design
from ..analysis.pipeline import Analysis
from ..analysis.pipeline import analyse as analyse_runs
from ..report import catalog, drawing
from ..report.forest_svg import forest
from ..report import context as report_context
from ..report.generator import REPORT_TEMPLATES, ReportGenerator
from ..report.markdown import md_link, wandb_link
from .artifacts import FIGURE_FORMATS, FigureArtifact, table
from .pages import ArtifactCache, SitePage, run_link
from .render import fmt_num, md_text, url_segment
from .progress import stage
from .traces import PerHistory, read_traces
from ..snapshot import Snapshot

LOG = logging.getLogger("mkdocs.plugins.altgrad")

#: Report pages: catalog page key -> site folder.
REPORT_PAGES = {
    "format_comparison": "format-comparison",
    "failure_modes": "failure-modes",
    "manifold_comparison": "manifold-vs-adamw",
    "formats": "formats",
}


def code_files() -> list[Path]:
    """Source files whose changes must invalidate the cached tables and analysis results."""
    package = Path(__file__).parent.parent
    return [Path(__file__), Path(__file__).with_name("traces.py"), *sorted((package / "analysis").glob("*.py")),
            *sorted((package / "report").glob("*.py")), *reader_files()]


def reader_files() -> list[Path]:
    """The snapshot reader's sources: how a stored value is read (an older schema's run table
    migrated, its status decided again), so part of every cache key beside the snapshot's."""
    package = Path(__file__).parent.parent
    return [package / "runs.py", package / "run_facts.py", package / "snapshot_read.py",
            package / "analysis" / "status.py"]


class _HeldWarnings(logging.Handler):
    """Keeps the warnings logged while the analysis runs (passing lower levels on), so that
    they are part of its cached result rather than of the build that happened to compute it."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger, self.held = logger, []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.held.append((record.levelno, record.getMessage()))
        elif self.logger.parent is not None:
            self.logger.parent.handle(record)

    def __enter__(self) -> list[tuple[int, str]]:
        self.propagate, self.logger.propagate = self.logger.propagate, False
        self.logger.addHandler(self)
        return self.held

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.propagate = self.propagate


def replay_warnings(results: dict[str, Any]) -> None:
    """Log the analysis' warnings again: every build, cold or warm, judges the same data
    alike (``mkdocs build --strict`` fails on them whether or not the cache was warm)."""
    for level, message in results.get("warnings", []):
        LOG.log(level, "%s", message)


def analyse_cached(snapshot: Snapshot, runs: pd.DataFrame, cache_dir: Path,
                   options: DesignOptions | None = None, also: PerHistory | None = None) -> dict[str, Any]:
    """:func:`analyse`, kept on disk by snapshot hash (of its verified files: the caller
    checked them, ``Snapshot.verify``), design options and the hash of the analysis code, so a
    warm build reads no history at all. The cache is this machine's own (a pickle); a cache
    file that cannot be read is computed again. The warnings logged while analysing are not
    logged here but kept in ``results["warnings"]`` (see :func:`replay_warnings`). ``also(run_id, history)`` is called
    with each history the analysis reads (none when its results are cached)."""
    h = hashlib.sha256(snapshot.sha256.encode())
    h.update(repr(options or DesignOptions()).encode())
    for path in code_files():
        h.update(path.read_bytes())
    path = cache_dir / f"{h.hexdigest()[:24]}.pickle"
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except Exception as exc:  # cut short, or written by other library versions: not ours to keep
            LOG.info("altgrad: analysis cache %s cannot be read (%s): computing it again", path,
                     type(exc).__name__)
    stage(1, f"analysing {len(runs)} runs of snapshot {snapshot.short_hash} (every history is read "
             "once; the results are cached for later builds)")
    with _HeldWarnings(LOG) as held:
        results = analyse(snapshot, runs, options, also)
    results["warnings"] = held
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(results, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return results


def analyse(snapshot: Snapshot, runs: pd.DataFrame, options: DesignOptions | None = None,
            also: PerHistory | None = None) -> dict[str, Any]:
    """Every statistic the pages need, histories read one run at a time, per condition of the
    design (inferred from the runs; ``options`` = extra.altgrad's factors, ignore, filters...)."""
    paths, owners = [], []
    for run_id in runs["run_id"].astype(str):
        for path in snapshot.failure_reports(run_id):
            paths.append(path)
            owners.append(run_id)
    for path in snapshot.unmatched_reports():  # no run, or several: listed on their own
        paths.append(path)
        owners.append(None)
    reports = read_failure_reports(paths, owners, snapshot.path)
    for report in reports:
        report["unmatched"] = report["run_id"] is None
    design = infer_design(runs, options)
    for message in design.warnings:  # formats outside the registry, options naming nothing
        LOG.warning("altgrad: %s", message)
    analysis = analyse_runs(runs, reports=reports, design=design, options=options,
                            traces=read_traces(snapshot, design.budgets(), also=also,
                                               metric_map=design.metric_map))
    fp8 = runs[runs["use_fp8"].fillna(False)]
    return {
        "analysis": analysis,
        "report_contexts": report_contexts(runs, analysis),
        "n_runs": len(runs),
        "n_failed": analysis.findings.counts.failed,  # the findings' count (failed by every signal)
        "formats": sorted(set(runs["format"].dropna())),
        "fp8_formats": sorted(set(fp8["format"].dropna())),
        "optimizers": sorted(set(runs["optimizer"].dropna())),
        "seeds": sorted(int(s) for s in set(runs["seed"].dropna())),
        "findings": analysis.findings,  # every number the pages state (analysis/findings.py)
        "headline_figure": forest(analysis.findings),  # its layout on the home page
        "design": report_context.design_context(analysis.design, analysis.cumulative, layer_families(analysis)),
    }


def layer_families(a: Analysis) -> list[str]:
    """The per-layer families the runs logged, in the pages' order."""
    from ..analysis.layers import family_sort_key
    return sorted(set(a.layers["family"].astype(str)), key=family_sort_key) if "family" in a.layers else []


def report_contexts(runs: pd.DataFrame, a: Analysis) -> dict[str, dict[str, Any]]:
    """Each report page's template context (its statistics), as ReportGenerator computes it;
    runs link to their pages on this site, except on the manifold page (as before: W&B)."""
    def link(key: str):
        return _run_linker(REPORT_PAGES[key])
    study, factors = a.runs, a.design.factor_names if a.design else None
    base = a.design.baseline if a.design else "BF16"
    identical = {"identical": a.design.identical_formats() if a.design else []}
    best = a.findings.sweet_spot.best if a.findings is not None else None  # the findings' one rule
    return {
        "format_comparison": report_context.format_comparison(study, best.format if best else "", link("format_comparison"),
                                                              a.failures, a.metric, factors, base,
                                                              findings=a.findings, higher_is_better=a.higher_is_better) | identical,
        "failure_modes": report_context.failure_modes(a.failures, study, link("failure_modes"), factors,
                                                      findings=a.findings, traces=a.traces) | identical,
        "manifold_comparison": report_context.manifold_comparison(study, None, wandb_link, a.metric, factors,
                                                                  base, identical["identical"],
                                                                  findings=a.findings,
                                                                  higher_is_better=a.higher_is_better) | identical,
        "formats": report_context.formats_page(),
    }


def failures_by_run(a: Analysis) -> dict[str, dict[str, Any]]:
    """run_id -> its row of the failure table (mode, reason, collapse step, evidence)."""
    rows = a.failures.dropna(subset=["run_id"]) if len(a.failures) else a.failures
    return {str(r["run_id"]): r.to_dict() for _, r in rows.iterrows()}


def analysis_pages(snapshot: Snapshot, runs: pd.DataFrame, results: dict[str, Any],
                   cache: ArtifactCache, figures_drawing: drawing.Drawing,
                   templates: Path | None = None, figures: list[catalog.FigureSpec] | None = None,
                   compiled: Path | None = None) -> list[SitePage]:
    """Format comparison, failure modes, manifold-aware vs AdamW and formats pages.

    Their figures may still be being drawn (``figures_drawing``, from
    :func:`start_report_figures`): the pages name the files; the caller ``finish()``-es the
    drawing before anything reads them (:func:`site.pipeline.finish_drawing`).

    Each page's body is rendered from ``templates/reports/`` when the page is written, so
    an edit there shows on the next ``mkdocs serve`` rebuild. ``figures``: the analysis'
    ``catalog.figure_specs``, when the caller has them already (they hash every trace).
    ``compiled``: where the report templates' compiled code is kept between builds."""
    a: Analysis = results["analysis"]
    fetched = snapshot.manifest.get("fetched_at")
    generator = ReportGenerator(output_dir=cache.root / "reports", generated_at=fetched,
                                template_dir=templates, compiled=compiled)
    figures, tables = figures if figures is not None else catalog.figure_specs(a), catalog.table_specs(a)
    files = {job.name: paths for job, paths in zip(figures_drawing.jobs, figures_drawing.paths())}
    pages = []
    for key, folder in REPORT_PAGES.items():
        ctx = results["report_contexts"][key]  # statistics from the cache; template rendered at every write
        body = partial(generator.render_template, REPORT_TEMPLATES[key], ctx, figures=[])
        page = SitePage(f"{folder}/index.md", "pages/report.md", {}, lazy={"body": body})
        for spec in catalog.by_page(figures, key):
            page.artifacts.add_figure(FigureArtifact(spec.id, spec.caption, files[spec.id], alt=spec.caption,
                                                     group=spec.group, tab=spec.tab,
                                                     table_link=_table_link(spec.table, key)))
        for spec in catalog.by_page(tables, key):
            data = _relative_paths(spec.data, snapshot.path)
            page.artifacts.add_table(data_table(spec.id, spec.caption, data))
        pages.append(page)
    return pages


def start_report_figures(a: Analysis, cache: ArtifactCache,
                         figures: list[catalog.FigureSpec] | None = None) -> drawing.Drawing:
    """Start drawing the report figures missing from the cache, on every core (see
    :class:`report.drawing.Drawing`); the site pipeline waits for them as late as it can
    (:func:`site.pipeline.finish_drawing`). ``figures`` as for :func:`analysis_pages`."""
    figures = figures if figures is not None else catalog.figure_specs(a)
    specs = [spec for spec in figures if spec.page in REPORT_PAGES]
    jobs = [drawing.Job(spec.id, (spec.id, spec.caption, *spec.key), cache.root / REPORT_PAGES[spec.page] / spec.id,
                        partial(catalog.draw_figure, spec.id)) for spec in specs]
    return drawing.Drawing(jobs, cache.root / "report-figures", FIGURE_FORMATS,
                           initializer=catalog.use_analysis, initargs=(a,)).start()


def _table_link(table: tuple[str, str] | None, page: str) -> Markup:
    """Markdown link target of a report table, seen from report page ``page``."""
    if table is None or table[0] not in REPORT_PAGES:
        return Markup("")
    tid = url_segment(table[1])
    return Markup(f"#{tid}" if table[0] == page else f"../{REPORT_PAGES[table[0]]}/index.md#{tid}")


def _relative_paths(data: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Paths inside the snapshot (failure reports) relative to it: the same snapshot must
    give the same bytes wherever it lies, and a published table must not show local paths."""
    prefix = str(root.resolve()) + "/", str(root) + "/"
    out = data.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: v.replace(prefix[0], "").replace(prefix[1], "")
                                    if isinstance(v, str) else v)
    return out


def _run_linker(folder: str):
    def link(row) -> str:
        return md_link(row.get("name") or row.get("run_id"), run_link(str(row.get("run_id")), folder))
    return link


def data_table(tid: str, caption: str, data: pd.DataFrame):
    """A report's raw table: downloads plus every value, folded under its caption."""
    rows = [[fmt_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else md_text(v)
             for v in rec] for rec in data.itertuples(index=False)]
    return table(tid, caption, data, [str(c) for c in data.columns], rows, collapsed=True)
