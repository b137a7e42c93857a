"""The site pipeline: load snapshot -> analyse -> figures and tables -> templates -> pages.

:func:`build` is the only place that knows the order of the stages; the ``altgrad`` MkDocs
plugin (``altgrad_docs/plugin.py``) calls it on every build, as do ``altgrad-docs render``
and a gen-files script of a site made before the plugin. Where the data come from is set in
one place, the plugin's options (:mod:`.options`): ``snapshot`` (default ``data/bundled``),
``wandb_project`` and ``wandb_snapshot`` (where a project's snapshot is cached, default
``data/wandb``), each overridable by its environment variable (``ALTGRAD_SNAPSHOT``,
``ALTGRAD_WANDB_PROJECT``, ``ALTGRAD_WANDB_SNAPSHOT``).

Caching, so that ``mkdocs serve`` reloads stay fast and never refetch:

* a W&B project is fetched at most once per process (the data layer's snapshot cache);
* analysis results and page artifacts are kept in memory by snapshot sha256, and the
  analysis results on disk too (by snapshot and analysis-code hash); every build first checks
  each snapshot file against that sha256 (``Snapshot.verify``: hashed once per process, then
  a stat per file while it stays the same), so the caches are keyed on verified content;
* figures are kept on disk (``.cache/altgrad/`` or ``ALTGRAD_CACHE_DIR``) by snapshot and
  drawing-code hash, so a warm ``mkdocs build`` draws nothing;
* templates are re-rendered on every build (edits to ``templates/`` show at once).

Everything is logged through ``mkdocs.plugins.altgrad``: a warning there (e.g. stale data
because W&B was unreachable) makes ``mkdocs build --strict`` fail.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from mkdocs.exceptions import PluginError

from . import analysis as site_analysis, options as site_options, pages as site_pages, run_overview
from .markers import MARKER, fill_markers  # noqa: F401  (MARKER: re-exported for old imports)
from .incremental import OpenFile, StableWriter, memory_for
from .nav import site_nav
from .progress import SlowProgress, stage
from .artifacts import PageArtifacts
from ..report import catalog
from ..report.bench_note import bench_note, from_bench
from .render import make_environment, render
from ..analysis.design import DesignError, DesignOptions
from .. import __version__
from ..snapshot import Snapshot, SnapshotError, open_snapshot, source_date
from ..templates_dir import template_path

log = logging.getLogger("mkdocs.plugins.altgrad")

_FETCHED: dict[tuple[str, str], tuple[Snapshot, str | None]] = {}
_PAGES: dict[str, tuple[dict[str, Any], list[site_pages.SitePage]]] = {}
_DRAWING: list[Any] = []  # the report figures being drawn for this process's pages


def finish_drawing() -> None:
    """Wait for the report figures of :func:`pages_for` and put their files in place.

    A cold build draws them in worker processes; the wait is put off for as long as nothing
    reads the files: with the ``altgrad`` plugin (``altgrad_docs/plugin.py``: ``on_env``), until
    MkDocs has converted every page's Markdown, which the workers' drawing overlaps. A
    worker's error is raised here."""
    while _DRAWING:
        drawing = _DRAWING.pop()
        if drawing.pending:
            stage(3, f"waiting for {len(drawing.missing)} figures drawn on {max(drawing.workers, 1)} "
                     "core(s) while the pages were converted")
        drawing.finish()


def cancel_drawing() -> None:
    """Stop the report figures' workers (the build failed before it waited for them)."""
    while _DRAWING:
        _DRAWING.pop().cancel()


def pending_figure_files() -> set[Path]:
    """Files of the report figures still being drawn (named by pages, not there yet)."""
    return {path for d in _DRAWING if d.pending for files in d.paths() for path in files.values()}


@dataclass(frozen=True)
class DataSource:
    """Where the site's data come from, resolved against the folder of mkdocs.yml."""

    snapshot: Path
    wandb_project: str | None
    root: Path
    design: DesignOptions = DesignOptions()
    templates: tuple[Path, ...] = ()  # the search path: the site's own folder, then the shipped one
    console: bool = True  # run pages show the runs' console output (the plugin's console option)

    @classmethod
    def from_config(cls, config: Any, options: Mapping[str, Any] | None = None) -> DataSource:
        """``snapshot`` without a W&B project; ``wandb_snapshot`` (the cache) with one; the
        study's design options (factors, ignore, filters, baseline, metric). ``options``: the
        plugin's (:mod:`.options`); without them, ``extra.altgrad`` (a site built by a
        gen-files script, as before the plugin), checked the same way."""
        root = Path(config.config_file_path).resolve().parent
        try:
            opts = dict(options) if options is not None else site_options.effective(
                None, (config.extra or {}).get("altgrad"))
            design = DesignOptions.from_config(opts)
        except (DesignError, site_options.OptionsError) as exc:
            raise PluginError(f"altgrad: {exc}") from exc
        project = opts.get("wandb_project") or None
        key = "wandb_snapshot" if project else "snapshot"
        default = "data/wandb" if project else "data/bundled"
        templates = tuple(template_path(root / (opts.get("templates") or "templates")))
        return cls(root / (opts.get(key) or default), project, root, design, templates,
                   bool(opts.get("console", True)))


def build(config: Any, open_file: OpenFile, options: Mapping[str, Any] | None = None) -> None:
    """Generate every page of the site into the MkDocs build (called by the ``altgrad``
    plugin with its checked options, or by a gen-files script without)."""
    source = DataSource.from_config(config, options)
    try:
        source_date()  # before anything imports scipy: numpy's f2py reads it (int(), a traceback)
        snapshot, stale = load_snapshot(source)
        snapshot.verify()  # every file is what the manifest says, before any cache keyed on it
        reproducible_dates(snapshot)
    except SnapshotError as exc:  # no snapshot, or not what its manifest says: one line
        _FETCHED.pop((source.wandb_project, str(source.snapshot)), None)  # the next reload fetches again
        raise PluginError(f"altgrad: {exc}") from None
    templates = list(source.templates)
    try:
        context, pages = pages_for(snapshot, cache_root(source), templates, source.design, source.console)
    except (DesignError, SnapshotError) as exc:  # a file changed while it was being read, too
        cancel_drawing()
        raise PluginError(f"altgrad: {exc}") from None
    site_analysis.replay_warnings(context["results"])  # cached or not, every build
    bench = from_bench(snapshot.manifest)  # bench text and nav only for data the bench made
    config.nav = site_nav(config.nav, Path(config.docs_dir), [p.path for p in pages], bench)
    docs = Path(config.docs_dir)
    context = {**context, "stale": stale, "from_bench": bench,
               "bench_page": bench and (docs / "bench.md").is_file(),
               "methods_page": (docs / "methods.md").is_file()}  # the findings link its family's definition
    config.extra["altgrad_stamp"] = {**stamp(snapshot, stale), "cite": (docs / "cite.md").is_file(),
                                     "generator": f"altgrad-docs {__version__}"}
    env = make_environment(templates, compiled_templates(cache_root(source)))
    writer = StableWriter(open_file, memory_for(config.site_dir))
    if writer.memory.direct_assets:  # the plugin adds figures by path and waits in on_env
        writer.memory.pending = pending_figure_files()
    else:  # figures are copied into the build while the pages are written
        finish_drawing()
    check_page_paths(pages)
    write_pages(env, pages, context, writer)
    fill_markers(env, docs, context, writer, site_name=config.site_name)
    log.info("altgrad: %d pages from snapshot %s", len(pages), snapshot.short_hash)


def load_snapshot(source: DataSource) -> tuple[Snapshot, str | None]:
    """The snapshot to build from, and why it is stale (None when it is not)."""
    if not source.wandb_project:
        return open_snapshot(source.snapshot), None
    key = (source.wandb_project, str(source.snapshot))
    if key not in _FETCHED:  # serve reloads never refetch
        from ..fetch import load_or_refresh
        from ..sources.wandb_api import WandbSourceError

        try:
            _FETCHED[key] = load_or_refresh(source.snapshot, project=source.wandb_project,
                                            filters=dict(source.design.filters) if source.design.filters else None)
        except WandbSourceError as exc:  # and no snapshot to fall back on: one error line
            raise SnapshotError(f"no snapshot at {source.snapshot} to build from, and W&B project "
                                f"{source.wandb_project} could not be read: {exc}") from None
    snapshot, stale = _FETCHED[key]
    if stale:
        log.warning(
            "altgrad: building from the last snapshot %s because W&B project %s could not be "
            "read: %s --> Do: check network access and WANDB_API_KEY, then rebuild.",
            snapshot.short_hash, source.wandb_project, stale,
        )
    return snapshot, stale


def reproducible_dates(snapshot: Snapshot) -> None:
    """Pin MkDocs' build date (sitemap, gzip) to the snapshot unless the caller set one."""
    fetched = snapshot.manifest.get("fetched_at")  # a date: checked when the snapshot was opened
    epoch = int(datetime.fromisoformat(fetched.replace("Z", "+00:00")).timestamp()) if fetched else 0
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(epoch))


def cache_root(source: DataSource) -> Path:
    return cache_root_of(source.root)


def cache_root_of(root: Path) -> Path:
    """The build cache of the site whose mkdocs.yml is in ``root`` (``ALTGRAD_CACHE_DIR``
    overrides)."""
    return Path(os.environ.get("ALTGRAD_CACHE_DIR") or root / ".cache" / "altgrad")


def compiled_templates(cache_base: Path) -> Path:
    """Where the templates' compiled code is kept between builds (altgrad_docs/jinja_cache.py)."""
    return cache_base / "jinja"


def pages_for(snapshot: Snapshot, cache_base: Path, templates: Path | list[Path] | None = None,
              design: DesignOptions | None = None,
              console: bool = True) -> tuple[dict[str, Any], list[site_pages.SitePage]]:
    """Analysis results and page artifacts for a snapshot, computed once per process
    (``console``: whether run pages show and publish the runs' console output)."""
    key = f"{snapshot.sha256}:{templates}:{design!r}:{console}"
    if key not in _PAGES:
        # Two caches, so that an edit to the analysis code does not redraw 1,000 run figures.
        run_code = site_pages.code_files() + site_analysis.reader_files()  # the run table's CSV too
        run_cache = site_pages.artifact_cache(cache_base, snapshot, run_code)
        cold = not run_cache.root.is_dir()  # a first build: say which stage it is in
        report_cache = site_pages.artifact_cache(cache_base, snapshot, run_code + site_analysis.code_files())
        runs = snapshot.runs()
        results = site_analysis.analyse_cached(snapshot, runs, cache_base / "analysis", design,
                                               also=partial(site_pages.make_chart, run_cache))  # one read a history
        traces = results["analysis"].traces
        failures = site_analysis.failures_by_run(results["analysis"])
        # report figures are drawn in worker processes while this one makes the run pages
        figures = catalog.figure_specs(results["analysis"])  # once: they hash every trace
        drawing = site_analysis.start_report_figures(results["analysis"], report_cache, figures)
        if cold:
            stage(2, f"{len(runs)} runs (each chart is made once, then cached)")
        progress = SlowProgress("run pages (charts are made once, then cached)", len(runs))
        design = results["analysis"].design
        rels = run_overview.relations(design.runs if design is not None else None,
                                      design.settings if design is not None else None)
        keys = run_overview.ConfigKeys.of(design)
        try:
            run_pages = [site_pages.runs_page(runs)]
            for _, row in runs.iterrows():
                run_pages.append(site_pages.run_page(snapshot, row, run_cache, _collapse(traces, row["run_id"]),
                                                     failures.get(str(row["run_id"])), rels.get(str(row["run_id"])),
                                                     keys, console))
                progress.step()
        except BaseException:
            drawing.cancel()
            raise
        report_pages = site_analysis.analysis_pages(snapshot, runs, results, report_cache, drawing, templates,
                                                    figures, compiled_templates(cache_base))
        _DRAWING[:] = [drawing]  # finished by finish_drawing, as late as the build allows
        for cache, group in ((run_cache, run_pages), (report_cache, report_pages)):
            for page in group:
                for tab in page.artifacts.tables:
                    tab.files = cache.table(page.folder, tab)
        pages = report_pages + run_pages
        context = {"snapshot": snapshot_info(snapshot), "results": results, "runs": runs,
                   "bench_note": bench_note(snapshot.manifest.get("bench"), runs)}
        _PAGES.clear()  # one snapshot per process is enough to keep
        _PAGES[key] = (context, pages)
    return _PAGES[key]


def _collapse(traces: dict[str, Any], run_id: str) -> int | None:
    trace = traces.get(str(run_id))
    return trace.collapse_step if trace is not None else None


def snapshot_info(snapshot: Snapshot) -> dict[str, Any]:
    manifest = snapshot.manifest
    return {
        "sha256": snapshot.sha256, "short_hash": snapshot.short_hash,
        "fetched_at": manifest.get("fetched_at") or "unknown", "n_runs": manifest.get("n_runs"),
        "source": manifest.get("source") or {}, "path": snapshot.path.name,
        "bench": manifest.get("bench") or {},  # how the bundled data were made, when they were
    }


def stamp(snapshot: Snapshot, stale: str | None) -> dict[str, Any]:
    """What every page shows in its data stamp (read by altgrad_docs/theme/main.html)."""
    fetched = snapshot.manifest.get("fetched_at") or "unknown"
    return {"hash": snapshot.short_hash, "fetched_at": fetched[:10], "stale": stale}


def check_page_paths(pages: list[site_pages.SitePage]) -> None:
    """Warn (so ``--strict`` fails) about a page MkDocs would leave out or two pages on one
    path, compared without regard to case (one file on macOS and Windows): MkDocs only logs
    an info line for a link to a page in a folder starting with a dot, so a strict build
    would pass with broken links (run ids are made plain by ``runs.path_slug``; this is the
    net under it)."""
    seen: set[str] = set()
    for page in pages:
        parts = page.path.split("/")
        twice = page.path.casefold() in seen  # one path on macOS and Windows file systems
        if twice or any(not p or p.startswith(".") for p in parts):
            log.warning("altgrad: generated page %s cannot be published (%s): links to it would "
                        "break. --> Do: report this as a bug of altgrad-docs.", page.path,
                        "two pages on one path, without regard to case" if twice else "empty or dot path segment")
        seen.add(page.path.casefold())


def write_pages(env: Any, pages: list[site_pages.SitePage], context: dict[str, Any],
                writer: StableWriter) -> None:
    """Render each page's template and write it with its figure and table downloads."""
    for page in pages:
        prefix = f"{page.folder}/" if page.folder else ""
        lazy = {name: compute() for name, compute in page.lazy.items()}
        text = render(env, page.template, **context, **page.context, **lazy, page=page,
                      figures={f.id: f for f in page.artifacts.figures},
                      tables={t.id: t for t in page.artifacts.tables})
        writer.text(page.path, text)
        _write_downloads(page.artifacts, prefix, writer)


def _write_downloads(artifacts: PageArtifacts, prefix: str, writer: StableWriter) -> None:
    for fig in artifacts.figures:
        for ext, path in sorted(fig.files.items()):
            writer.copy(f"{prefix}figures/{fig.id}.{ext}", Path(path))
    for tab in artifacts.tables:
        for name, path in sorted(tab.files.items()):
            writer.copy(prefix + name, Path(path))
    for name, path in sorted(artifacts.files.items()):
        writer.copy(prefix + name, Path(path))
