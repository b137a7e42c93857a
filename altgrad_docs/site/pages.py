"""What goes on each generated page: its template, its context, its figures and tables.

Each ``*_page`` function takes plain data (the snapshot's run table, one run's history, the
analysis results) and returns a :class:`SitePage`; nothing here renders Markdown (that is
the templates' job) or writes files (that is :func:`altgrad_docs.site.pipeline.write_pages`).
Figures are drawn, and table downloads (CSV, LaTeX) written, once per snapshot and kept
in the on-disk :class:`ArtifactCache`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd
from markupsafe import Markup

from . import run_log, run_overview, runchart
from ..report import export
from ..report.markdown import metric_name
from .artifacts import FIGURE_FORMATS, FigureArtifact, PageArtifacts, TableArtifact, table, table_files
from .render import ext_url, fmt_num, md_text, plain_title, url_segment
from ..runs import path_slug
from ..snapshot import Snapshot
from ..userfiles import MAX_TEXT_BYTES, read_user_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Columns of the Runs table: (run-table column, header).
RUN_TABLE_COLUMNS = [
    ("name", "run"), ("run_id", "run id"), ("format", "format"), ("optimizer", "optimizer"),
    ("seed", "seed"), ("status", "status"), ("status_reason", "why"), ("state", "W&B state"),
    ("steps", "steps"), ("final_loss", metric_name("final_loss")),
    ("final_val_loss", metric_name("final_val_loss")), ("bit_stall_final", "bit stall"),
    ("overflow_final", "overflow"), ("run_url", "W&B"),
]


@dataclass
class SitePage:
    """One generated page: ``path`` is its Markdown file under docs (``<dir>/index.md``)."""

    path: str
    template: str
    context: dict[str, Any]
    artifacts: PageArtifacts = field(default_factory=PageArtifacts)
    #: context values computed anew at every write, from templates that may have been edited
    #: since the page was made (a report's body during ``mkdocs serve``)
    lazy: dict[str, Callable[[], Any]] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


@dataclass(frozen=True)
class ArtifactCache:
    """Figure and table files by (snapshot, code): a warm build redraws and rewrites nothing
    (LaTeX through pandas costs ~30 ms a table; 2,000 run-page tables would cost a minute)."""

    root: Path

    def figure(self, page: str, fig_id: str, draw: Callable[[], Figure]) -> dict[str, Path]:
        stem = self.root / page / "figures" / fig_id
        paths = {ext: stem.with_suffix(f".{ext}") for ext in FIGURE_FORMATS}
        if all(p.is_file() for p in paths.values()):
            return paths
        return export.save_figure(draw(), stem, FIGURE_FORMATS)

    def blobs(self, page: str, fig_id: str, exts: tuple[str, ...],
              make: Callable[[], dict[str, bytes]]) -> dict[str, Path]:
        """Files ``figures/<fig_id>.<ext>`` made by ``make()`` (ext -> bytes) on first use."""
        stem = self.root / page / "figures" / fig_id
        paths = {ext: stem.with_suffix(f".{ext}") for ext in exts}
        if not all(p.is_file() for p in paths.values()):
            stem.parent.mkdir(parents=True, exist_ok=True)
            for ext, data in make().items():
                tmp = paths[ext].with_suffix(f".{ext}.tmp")
                tmp.write_bytes(data)
                tmp.replace(paths[ext])
        return paths

    def table(self, page: str, t: TableArtifact) -> dict[str, Path]:
        """The CSV and LaTeX files of a table, written on first use."""
        paths = {name: self.root / page / name for name in table_files(t, only_names=True)}
        if not all(p.is_file() for p in paths.values()):
            for name, text in table_files(t).items():
                paths[name].parent.mkdir(parents=True, exist_ok=True)
                tmp = paths[name].with_suffix(".tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(paths[name])
        return paths


def code_files() -> list[Path]:
    """Source files the run pages' charts and tables depend on (part of the cache key): a
    table's CSV/LaTeX is written once per key, so every module that shapes one is here (the
    config split and summary units of run_overview, the console of run_log, the formats of
    artifacts), not only the drawing code."""
    from ..analysis import curves
    from . import artifacts

    return [Path(__file__), Path(runchart.__file__), Path(curves.__file__), Path(export.__file__),
            Path(run_overview.__file__), Path(run_log.__file__), Path(artifacts.__file__)]


def artifact_cache(base: Path, snapshot: Snapshot, code_files: list[Path]) -> ArtifactCache:
    """The cache folder for this snapshot and this version of the drawing code."""
    h = hashlib.sha256(snapshot.sha256.encode())
    for path in sorted(code_files):
        h.update(path.read_bytes())
    return ArtifactCache(base / h.hexdigest()[:20])


def run_link(run_id: str, from_folder: str) -> str:
    """Relative Markdown link target of a run page, seen from the page in ``from_folder``."""
    up = "../" * (from_folder.count("/") + 1) if from_folder else ""
    return f"{up}runs/{url_segment(path_slug(run_id))}/index.md"


def run_cells(row: pd.Series, from_folder: str) -> list[Any]:
    """Display cells (Markup) of one row of the Runs table."""
    cells = []
    for col, _ in RUN_TABLE_COLUMNS:
        value = row[col]
        if col == "name":
            cells.append(md_text(value).join(["[", f"]({run_link(row['run_id'], from_folder)})"]))
        elif col == "run_url":
            url = ext_url(value)
            cells.append(md_text("W&B").join(["[", f"]({url})"]) if url else "")
        elif isinstance(value, (float, int)) or value is pd.NA:
            cells.append(fmt_num(value))
        else:
            cells.append(md_text(value))
    return cells


def runs_page(runs: pd.DataFrame) -> SitePage:
    page = SitePage("runs/index.md", "pages/runs.md", {"n_runs": len(runs)})
    cols = [c for c, _ in RUN_TABLE_COLUMNS]
    page.artifacts.add_table(table(
        "tab-runs", "Every run of the snapshot; click a run for its page.",
        runs[cols], [h for _, h in RUN_TABLE_COLUMNS],
        [run_cells(row, "runs") for _, row in runs.iterrows()], css_class="altgrad-filterable",
    ))
    return page


def _key_value_table(tid: str, caption: str, mapping: dict[str, Any], units: bool = False,
                     collapsed: bool = False) -> Any:
    """A two-column key/value table (a third, unit, with ``units``)."""
    keys = sorted(mapping)
    values = [json.dumps(mapping[k]) if isinstance(mapping[k], (dict, list)) else mapping[k] for k in keys]
    rows = [[md_text(k), fmt_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else md_text(v)]
            for k, v in zip(keys, values)]
    data = {"key": keys, "value": [str(v) for v in values]}
    if units:
        data["unit"] = [run_overview.unit(k) for k in keys]
        rows = [row + [md_text(u)] for row, u in zip(rows, data["unit"])]
    return table(tid, caption, data, list(data), rows, collapsed=collapsed)


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def last_good(row: pd.Series, failure: dict[str, Any] | None) -> dict[str, Any]:
    """The last finite value of the run's primary metric and its step, from the run table,
    else from its failure report's loss table (a run that logged no loss); the best value."""
    source, from_report = row, False
    if _finite(row.get("last_good_loss")) is None and failure and _finite(failure.get("last_good_loss")) is not None:
        source, from_report = failure, True
    step = _finite(source.get("last_good_step"))
    best = _finite(row.get("best_loss"))
    if best is None and failure:
        best = _finite(failure.get("best_loss"))
    metric = row.get("primary_metric")
    return {"metric": metric if isinstance(metric, str) and metric else "loss",
            "value": _finite(source.get("last_good_loss")), "step": None if step is None else int(step),
            "from_report": from_report, "best": best}


def _alert_list(text: Any) -> list[dict[str, Any]]:
    """The run table's ``alerts`` (JSON list) as dicts with every key the run page reads
    (title, level, count: a snapshot written by hand may lack some); [] when absent."""
    try:
        value = json.loads(text) if isinstance(text, str) and text else []
    except ValueError:
        return []
    return [{"title": "", "level": None, "count": None, **a} for a in value if isinstance(a, dict)] \
        if isinstance(value, list) else []


def _loads(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def chart_files(cache: ArtifactCache, run_id: str, history: Callable[[], pd.DataFrame]) -> dict[str, Path]:
    """The run's chart data and SVG fallback (ext -> path), made from ``history()`` only
    when they are not in the cache."""
    def make() -> dict[str, bytes]:
        data = runchart.chart_data(history())
        return {"json": runchart.chart_json(data), "svg": runchart.chart_svg(data), "csv": runchart.chart_csv(data)}

    return cache.blobs(f"runs/{path_slug(run_id)}", "fig-history", ("json", "svg", "csv"), make)


def make_chart(cache: ArtifactCache, run_id: str, history: pd.DataFrame) -> None:
    """:func:`chart_files` from a history already read (the analysis' pass over every history
    calls it on a cold cache, so that no history is read twice)."""
    chart_files(cache, run_id, lambda: history)


def run_page(snapshot: Snapshot, row: pd.Series, cache: ArtifactCache, collapse: int | None,
             failure: dict[str, Any] | None = None, rel: run_overview.Relations | None = None,
             keys: run_overview.ConfigKeys | None = None, console: bool = True) -> SitePage:
    """One run's page; its history is read only when its figure is not in the cache.
    ``rel``: its paired run, sibling seeds and condition; ``keys``: which config keys define
    the condition (both from the design; without them the config is shown as one table);
    ``console``: show and publish the run's console output (when the snapshot has it)."""
    run_id = str(row["run_id"])
    folder = f"runs/{path_slug(run_id)}"  # ".hidden" would be left out by MkDocs
    reports = [read_user_text(p, snapshot.path) for p in snapshot.failure_reports(run_id)]
    files = chart_files(cache, run_id, lambda: snapshot.history(run_id, runchart.HISTORY_KEYS))
    config, summary = _loads(row["config_json"]), _loads(row["summary_json"])
    rel = rel or run_overview.Relations(format=str(row["format"]), optimizer=str(row["optimizer"]), seed=row["seed"])
    page = SitePage(f"{folder}/index.md", "pages/run.md", {
        "run": row.to_dict(), "wandb_url": ext_url(row["run_url"]), "failure_reports": reports,
        "max_report_bytes": MAX_TEXT_BYTES,
        "collapse_step": collapse, "page_title": plain_title(f"Run {run_id}"),
        "history_rows": snapshot.manifest["runs"][run_id].get("history_rows"), "failure": failure,
        "modes": run_overview.mode_agreement(failure) if failure else None,
        "rel": rel, "metrics": run_overview.key_metrics(run_overview.read_chart(files["json"])),
        "links": {r["run_id"]: Markup(run_link(r["run_id"], folder)) for r in rel.pair + rel.siblings},
        "alerts": _alert_list(row.get("alerts")), "last_good": last_good(row, failure),
    })
    page.artifacts.add_figure(FigureArtifact(
        "fig-history", f"Training history of run {run_id}: loss (dotted line = collapse step; log or linear "
        "scale), gradient norm and quantisation rates (log scale) per step; at most "
        f"{runchart.CHART_POINTS} points per line (MinMaxLTTB: each bucket's extremes kept).",
        files, alt=f"Training history of run {run_id}: loss, gradient norm and quantisation rates per step"))
    page.artifacts.add_table(_key_value_table(
        "tab-summary", "Run summary: the last logged value of each metric (W&B's own keys left out).",
        run_overview.clean_summary(summary), units=True))
    _add_run_log(page, cache, folder, snapshot.run_log(run_id), console)
    keys = keys or run_overview.ConfigKeys()
    condition, rest, books = run_overview.split_config(config, keys)
    if condition:
        page.artifacts.add_table(_key_value_table("tab-config", "The config keys that define this run's "
                                                  "condition (format, optimizer, setting, seed).", condition))
    page.artifacts.add_table(_key_value_table("tab-config-rest" if condition else "tab-config",
                                              "The rest of the config, as logged." if condition
                                              else "Run config as logged.", rest))
    if books:
        page.artifacts.add_table(_key_value_table("tab-config-bookkeeping", "Bookkeeping keys of the config "
                                                  "(names, paths, ids, times).", books, collapsed=True))
    return page


def _add_run_log(page: SitePage, cache: ArtifactCache, folder: str, log: dict[str, Any], console: bool) -> None:
    """The run's environment, system metrics and console output (offline runs)."""
    page.context["environment"] = log.get("environment") or {}
    rows = run_log.system_rows(log.get("system") or [])
    if rows:
        cols = ("key", "samples", "mean", "max", "last", "unit")
        page.artifacts.add_table(table(
            "tab-system", "System metrics W&B sampled while the run trained (CPU, memory, disk, network, GPU).",
            {c: [str(r[c]) for r in rows] for c in cols}, list(cols),
            [[md_text(r["key"]), fmt_num(r["samples"]), fmt_num(r["mean"]), fmt_num(r["max"]), fmt_num(r["last"]),
              md_text(r["unit"])] for r in rows], collapsed=len(rows) > 12))
    text = run_log.console_text(log) if console else ""
    page.context["console_tail"] = run_log.console_tail(text)
    page.context["console_lines"] = text.count("\n") + (not text.endswith("\n")) if text else 0
    page.context["console_cut"] = bool(log.get("console_cut"))
    if text:
        files = cache.blobs(folder, "console", ("txt",), lambda: {"txt": text.encode("utf-8", "replace")})
        page.artifacts.files["logs/console.txt"] = files["txt"]
