"""ReportGenerator: the plan's three Markdown reports, rendered from templates/reports/.

``render_*`` return the Markdown string (the site renders the same templates into its
pages through them); ``generate_*`` write it to ``output_dir`` and return the absolute path.
The timestamp is never the wall clock: it is the ``generated_at`` passed in (the snapshot's
fetch time), else ``SOURCE_DATE_EPOCH``, else "not recorded" -- same data, same bytes.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from altgrad_docs.analysis.comparisons import FormatComparator
from altgrad_docs.analysis.facts import power_of_two

from altgrad_docs.jinja_cache import keep_compiled
from altgrad_docs.templates_dir import template_dir as resolve_template_dir

from . import context
from .formats_page import format_registry
from .markdown import (RunLink, escape_md, figure_mark, fmt_fraction, fmt_int, fmt_measured, fmt_num, fmt_pct,
                       fmt_sig, interval_kind, md_link, metric_name, safe_url, wandb_link)


def resolve_timestamp(generated_at: str | None = None) -> str:
    if generated_at:
        return str(generated_at)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc).isoformat()
    return "not recorded (no snapshot time given)"


def make_environment(template_dir: str | os.PathLike | list[Path] | None = None,
                     compiled: str | os.PathLike | None = None) -> Environment:
    """The Jinja2 environment of the report templates, with the Markdown filters; compiled
    templates kept in memory and, given a folder ``compiled``, there too. ``template_dir``:
    one folder, or a search path (a site's own templates, then the shipped ones)."""
    search = ([str(p) for p in template_dir] if isinstance(template_dir, list)
              else str(resolve_template_dir(template_dir)))
    env = Environment(loader=FileSystemLoader(search), autoescape=False,
                      undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(md=escape_md, num=fmt_num, pct=fmt_pct, int=fmt_int, url=safe_url, pow2=power_of_two,
                       sig=fmt_sig, val=fmt_measured, frac=fmt_fraction, interval_kind=interval_kind,
                       metric_label=metric_name)
    env.globals.update(link=md_link, format_registry=format_registry, figure=figure_mark)
    return keep_compiled(env, None if compiled is None else Path(compiled))


#: The template of each report, under the templates folder.
REPORT_TEMPLATES = {
    "format_comparison": "reports/format_comparison.md.j2",
    "failure_modes": "reports/failure_modes.md.j2",
    "manifold_comparison": "reports/manifold_comparison.md.j2",
    "formats": "reports/formats.md.j2",
}


class ReportGenerator:
    """Format comparison, failure modes and manifold comparison reports (the plan's API).

    ``generated_at`` and ``run_link`` set here are the defaults of every render; each render
    also takes ``figures`` (a list of ``{"id", "caption", "src"}``, drawn in a numbered
    Figures section) and ``extra`` (more template context, e.g. a data stamp).
    """

    def __init__(self, output_dir: str | os.PathLike = "reports",
                 template_dir: str | os.PathLike | list[Path] | None = None,
                 generated_at: str | None = None, run_link: RunLink | None = None,
                 factors: list[str] | None = None, compiled: str | os.PathLike | None = None):
        """``factors``: the design's factors (config keys; default inferred from the runs, see
        analysis/design.py); every report is per condition, format x optimizer x factors.
        ``compiled``: a folder where compiled templates are kept for the next process."""
        self.factors = list(factors) if factors is not None else None
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.env = make_environment(template_dir, compiled)
        self.generated_at = generated_at
        self.run_link = run_link or wandb_link

    # -- rendering -----------------------------------------------------------------
    def render_template(self, template: str, ctx: dict[str, Any], generated_at: str | None = None,
                        figures: Iterable[Mapping[str, Any]] | None = None,
                        extra: Mapping[str, Any] | None = None) -> str:
        """One report template with a context from :mod:`altgrad_docs.report.context`.

        What each ``render_*`` does after computing its context; the site computes a
        context once and renders it again whenever a template is edited."""
        full = {"generated_at": resolve_timestamp(generated_at or self.generated_at),
                "figures": [dict(f) for f in figures or []], "extra": dict(extra or {}), **ctx}
        text = self.env.get_template(template).render(**full)
        text = "\n".join(line.rstrip() for line in text.strip().splitlines())
        return re.sub(r"\n{3,}", "\n\n", text) + "\n"  # optional sections leave no blank runs

    def render_format_comparison(self, df: pd.DataFrame, sweet_spot: str | None = None, *,
                                 failures: pd.DataFrame | None = None, generated_at: str | None = None,
                                 figures=None, run_link: RunLink | None = None, extra=None) -> str:
        """``failures`` (FailureAnalyzer.merge_failure_data with traces) adds collapse steps."""
        spot = sweet_spot if sweet_spot is not None else FormatComparator(df, self.factors).identify_sweet_spot()
        ctx = context.format_comparison(df, spot, run_link or self.run_link, failures, factors=self.factors)
        return self.render_template(REPORT_TEMPLATES["format_comparison"], ctx, generated_at, figures, extra)

    def render_failure_modes(self, failure_df: pd.DataFrame, *, runs_df: pd.DataFrame | None = None,
                             generated_at: str | None = None, figures=None, run_link: RunLink | None = None,
                             extra=None) -> str:
        """``failure_df`` as FailureAnalyzer.merge_failure_data returns it; ``runs_df`` (the
        whole run table) adds k/n crash rates with Clopper-Pearson intervals per format."""
        ctx = context.failure_modes(failure_df, runs_df, run_link or self.run_link, self.factors)
        return self.render_template(REPORT_TEMPLATES["failure_modes"], ctx, generated_at, figures, extra)

    def render_manifold_comparison(self, df: pd.DataFrame, *, layers: pd.DataFrame | None = None,
                                   generated_at: str | None = None, figures=None, run_link: RunLink | None = None,
                                   extra=None) -> str:
        """``layers`` (analysis.comparisons.layer_stall_frame) adds the per-layer-type stall
        table, or says that no per-layer metrics were logged when it is empty."""
        ctx = context.manifold_comparison(df, layers, run_link or self.run_link, factors=self.factors)
        return self.render_template(REPORT_TEMPLATES["manifold_comparison"], ctx, generated_at, figures, extra)

    def render_formats(self, *, generated_at: str | None = None, figures=None, extra=None) -> str:
        """The format facts page: the table computed from the bit patterns, conventions, traps."""
        return self.render_template(REPORT_TEMPLATES["formats"], context.formats_page(), generated_at,
                                    figures, extra)

    # -- writing (the plan's API) --------------------------------------------------------
    def _write(self, name: str, text: str) -> str:
        path = (self.output_dir / name).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    def generate_format_comparison(self, df: pd.DataFrame, sweet_spot: str,
                                   output_name: str = "format_comparison.md", **kwargs) -> str:
        return self._write(output_name, self.render_format_comparison(df, sweet_spot, **kwargs))

    def generate_failure_modes(self, failure_df: pd.DataFrame, output_name: str = "failure_modes.md",
                               **kwargs) -> str:
        return self._write(output_name, self.render_failure_modes(failure_df, **kwargs))

    def generate_manifold_comparison(self, df: pd.DataFrame, output_name: str = "manifold_comparison.md",
                                     **kwargs) -> str:
        return self._write(output_name, self.render_manifold_comparison(df, **kwargs))
