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

from ..analysis.failure_reports import read_failure_reports
from ..analysis.pipeline import Analysis
from ..analysis.pipeline import analyse as analyse_runs
from ..report import catalog, claims, export
from ..report import context as report_context
from ..report.generator import REPORT_TEMPLATES, ReportGenerator
from ..report.markdown import md_link, wandb_link
from .artifacts import FIGURE_FORMATS, FigureArtifact, table
from .pages import ArtifactCache, SitePage, run_link
from .render import fmt_num, md_text
from ..snapshot import Snapshot

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
    return [Path(__file__), *sorted((package / "analysis").glob("*.py")), *sorted((package / "report").glob("*.py"))]


def analyse_cached(snapshot: Snapshot, runs: pd.DataFrame, cache_dir: Path) -> dict[str, Any]:
    """:func:`analyse`, kept on disk by snapshot hash and the hash of the analysis code, so a
    warm build reads no history at all. The cache is this machine's own (a pickle)."""
    h = hashlib.sha256(snapshot.sha256.encode())
    for path in code_files():
        h.update(path.read_bytes())
    path = cache_dir / f"{h.hexdigest()[:24]}.pickle"
    if path.is_file():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    logging.getLogger("mkdocs.plugins.altgrad").info(
        "altgrad: analysing %d runs of snapshot %s (every history is read once; the results "
        "are cached for later builds)", len(runs), snapshot.short_hash)
    results = analyse(snapshot, runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(results, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return results


def analyse(snapshot: Snapshot, runs: pd.DataFrame) -> dict[str, Any]:
    """Every statistic the pages need, histories read one run at a time."""
    paths, owners = [], []
    for run_id in runs["run_id"].astype(str):
        for path in snapshot.failure_reports(run_id):
            paths.append(path)
            owners.append(run_id)
    analysis = analyse_runs(runs, snapshot.iter_histories(), read_failure_reports(paths, owners))
    fp8 = runs[runs["use_fp8"].fillna(False)]
    return {
        "analysis": analysis,
        "report_contexts": report_contexts(runs, analysis),
        "n_runs": len(runs),
        "n_failed": int((runs["status"] == "failed").sum()),
        "formats": sorted(set(runs["format"].dropna())),
        "fp8_formats": sorted(set(fp8["format"].dropna())),
        "optimizers": sorted(set(runs["optimizer"].dropna())),
        "seeds": sorted(int(s) for s in set(runs["seed"].dropna())),
        "headline": headline(analysis),
    }


def report_contexts(runs: pd.DataFrame, a: Analysis) -> dict[str, dict[str, Any]]:
    """Each report page's template context (its statistics), as ReportGenerator computes it;
    runs link to their pages on this site, except on the manifold page (as before: W&B)."""
    def link(key: str):
        return _run_linker(REPORT_PAGES[key])
    return {
        "format_comparison": report_context.format_comparison(runs, a.sweet_spot, link("format_comparison"),
                                                              a.failures),
        "failure_modes": report_context.failure_modes(a.failures, runs, link("failure_modes")),
        "manifold_comparison": report_context.manifold_comparison(runs, None, wandb_link),
        "formats": report_context.formats_page(),
    }


def failures_by_run(a: Analysis) -> dict[str, dict[str, Any]]:
    """run_id -> its row of the failure table (mode, reason, collapse step, evidence)."""
    rows = a.failures.dropna(subset=["run_id"]) if len(a.failures) else a.failures
    return {str(r["run_id"]): r.to_dict() for _, r in rows.iterrows()}


def headline(a: Analysis) -> dict[str, Any]:
    """What the home page claims, each a computed result (``report.claims``) that picks the
    sentence: the best condition, which format benefits (Holm across formats), failures."""
    card = a.card
    crashes = [
        {"format": str(f), "k": int(g["crashes"].sum()), "n": int(g["n"].sum())}
        for f, g in card.groupby("format", sort=False) if int(g["crashes"].sum())
    ] if len(card) else []
    return {"benefit": claims.benefit_claim(a.paired, card, a.metric),
            "sweet_spot": claims.sweet_spot_claim(card, a.metric), "crashes": crashes, "metric": a.metric}


def analysis_pages(snapshot: Snapshot, runs: pd.DataFrame, results: dict[str, Any],
                   cache: ArtifactCache, templates: Path | None = None) -> list[SitePage]:
    """Format comparison, failure modes, manifold-aware vs AdamW and formats pages.

    Each page's body is rendered from ``templates/reports/`` when the page is written, so
    an edit there shows on the next ``mkdocs serve`` rebuild."""
    a: Analysis = results["analysis"]
    fetched = snapshot.manifest.get("fetched_at")
    generator = ReportGenerator(output_dir=cache.root / "reports", generated_at=fetched,
                                template_dir=templates)
    figures, tables = catalog.figure_specs(a), catalog.table_specs(a)
    pages = []
    for key, folder in REPORT_PAGES.items():
        ctx = results["report_contexts"][key]  # statistics from the cache; template rendered at every write
        body = partial(generator.render_template, REPORT_TEMPLATES[key], ctx, figures=[])
        page = SitePage(f"{folder}/index.md", "pages/report.md", {}, lazy={"body": body})
        for spec in catalog.by_page(figures, key):
            files = export.render_cached(spec.draw, (spec.id, spec.caption, *spec.key),
                                         cache.root / folder / spec.id, cache.root / "report-figures",
                                         FIGURE_FORMATS)
            page.artifacts.add_figure(FigureArtifact(spec.id, spec.caption, files, alt=spec.id))
        for spec in catalog.by_page(tables, key):
            data = _relative_paths(spec.data, snapshot.path)
            page.artifacts.add_table(data_table(spec.id, spec.caption, data))
        pages.append(page)
    return pages


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
