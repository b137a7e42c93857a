"""The figures and tables of each report page, with stable ids and captions.

``figure_specs(analysis)`` lists every figure as a :class:`FigureSpec`: a stable id
(``fig-<name>``, never a position), the page it belongs to, a caption that states n, a
``draw()`` that returns a new Figure, and the data its bytes depend on (``key``) for
``export.render_cached``. ``table_specs`` does the same for the raw tables (CSV/LaTeX).
Pages: ``format_comparison``, ``failure_modes``, ``manifold_comparison``, ``formats``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from altgrad_docs.analysis.facts import facts_frame
from altgrad_docs.analysis.pipeline import Analysis
from altgrad_docs.formats import BASELINES

from . import figures as F
from . import figures_summary as S
from .export import FORMATS, render_cached, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class FigureSpec:
    id: str
    page: str
    caption: str
    draw: Callable[[], Figure]
    key: tuple


@dataclass(frozen=True)
class TableSpec:
    id: str
    page: str
    caption: str
    data: pd.DataFrame


def _fig(ax) -> Figure:
    return (ax[0] if isinstance(ax, np.ndarray) else ax).figure


def _traces_key(a: Analysis, run_ids) -> list:
    return [(r, a.traces[r]) for r in sorted(run_ids) if r in a.traces]


def figure_specs(a: Analysis) -> list[FigureSpec]:
    runs, tr = a.runs, a.traces
    fp8 = [f for f in a.formats if f not in BASELINES] or a.formats[:1]
    n_runs = len(runs)
    failed = [tr[r] for r in a.failures["run_id"].dropna().astype(str) if r in tr]
    names = dict(zip(runs["run_id"].astype(str), runs["name"].astype(str))) if "name" in runs else {}
    labels = [names.get(t.run_id, t.run_id) for t in failed]
    all_key = (runs[["run_id", "format", "optimizer", "bit_stall_threshold"]], _traces_key(a, tr))

    def grid(plot, **kw):
        return lambda: F.panel_grid(fp8, lambda f, ax: plot(tr, runs, f, ax=ax, **kw))

    return [
        FigureSpec("fig-loss-curves", "format_comparison",
                   f"Training loss per format ({n_runs} runs): every seed thin, median bold, AdamW blue, "
                   f"ManifoldAdamW orange{', BF16 baseline dashed' if 'BF16' in a.formats else ''}; "
                   "x = the step where a run's loss became NaN/Inf.",
                   grid(F.plot_loss_curves), ("loss",) + all_key),
        *per_setting(a.card, "fig-loss-vs-mantissa", "format_comparison",
                     f"Final {a.metric.removeprefix('final_')} (median, min-max bar) against mantissa bits, per "
                     f"optimizer{'; dashed = baseline median' if set(BASELINES) & set(a.formats) else ''}; "
                     "labels give crashed runs as k/n.", S.plot_loss_vs_mantissa),
        FigureSpec("fig-survival", "failure_modes",
                   "Fraction of runs whose loss is still finite against step, per format (runs that end "
                   "without collapsing count until their last step).",
                   lambda: _fig(F.plot_survival(tr, runs)), all_key),
        FigureSpec("fig-crash-forensics", "failure_modes",
                   f"The last 50 logged steps before collapse of the {len(failed)} failed runs with a "
                   "history: loss, gradient norm, overflow rate (0 = collapse step).",
                   lambda: _fig(F.plot_crash_forensics(failed, labels)), (labels, [(t.run_id, t) for t in failed])),
        FigureSpec("fig-over-under-flow", "failure_modes",
                   "Overflow (solid) and underflow (dotted) rate per format over training, median over runs "
                   "per optimizer.", grid(F.plot_over_under_flow), ("flow",) + all_key),
        *per_setting(a.paired, "fig-forest", "manifold_comparison",
                     f"Paired difference in final {a.metric.removeprefix('final_')} (ManifoldAdamW minus AdamW, "
                     "same format and seed): grey dots = seeds, diamond = mean, bar = 95% t interval.",
                     S.plot_forest),
        FigureSpec("fig-bit-stall", "manifold_comparison",
                   "Bit-stall rate over training per format (log scale) per optimizer, with the alert threshold; "
                   "each panel states the update size below which round-to-nearest loses an update.",
                   grid(F.plot_stall), ("stall",) + all_key),
        FigureSpec("fig-layer-stall", "manifold_comparison",
                   "Mean stall ratio per layer type and condition (from per-layer stall/ metrics).",
                   lambda: _fig(S.plot_layer_heatmap(a.layers)), (a.layers,)),
        FigureSpec("fig-layer-stall-difference", "manifold_comparison",
                   "Per-layer-type stall, ManifoldAdamW minus AdamW (blue = less stall with manifold-aware).",
                   lambda: _fig(S.plot_layer_heatmap(a.layers, difference=True)), (a.layers, "diff")),
        FigureSpec("fig-number-lines", "formats",
                   "Every positive value of each 8-bit format on a log2 axis; ▼ marks the smallest normal value.",
                   lambda: _fig(S.plot_number_lines()), ("number-lines",)),
    ]


def setting_slug(setting: str) -> str:
    """A setting label as a stable id part: 'learning_rate=0.001' -> 'learning-rate-0-001'."""
    return re.sub(r"[^a-z0-9]+", "-", setting.lower()).strip("-") or "all"


def per_setting(table: pd.DataFrame, fid: str, page: str, caption: str,
                plot: Callable[[pd.DataFrame], Any]) -> list[FigureSpec]:
    """One figure of a per-condition table (scorecard, paired comparison), or one per setting of
    the design's factors when there are several (``<fid>-<setting slug>``, the setting named in
    the caption): a figure never mixes the levels of a factor."""
    settings = list(dict.fromkeys(table["setting"])) if "setting" in table and len(table) else [""]
    if len(settings) <= 1:
        return [FigureSpec(fid, page, caption, lambda: _fig(plot(table)), (table,))]
    specs = []
    for setting in settings:
        sub = table[table["setting"] == setting].reset_index(drop=True)
        specs.append(FigureSpec(f"{fid}-{setting_slug(setting)}", page, f"{setting}: {caption}",
                                lambda sub=sub: _fig(plot(sub)), (sub, setting)))
    return specs


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """Lists in cells (run ids, seeds, deltas) as ';'-joined text, for CSV and LaTeX."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, list)).any():
            out[col] = out[col].map(lambda v: ";".join(str(x) for x in v) if isinstance(v, list) else v)
    return out


def table_specs(a: Analysis) -> list[TableSpec]:
    facts = facts_frame()
    return [
        TableSpec("tab-scorecard", "format_comparison", "Scorecard per format and optimizer.", _flat(a.card)),
        TableSpec("tab-failures", "failure_modes", "Failed runs: collapse step, reason, classification.",
                  _flat(a.failures)),
        TableSpec("tab-paired", "manifold_comparison",
                  "Paired ManifoldAdamW - AdamW differences per format with 95% t intervals and tests.",
                  _flat(a.paired)),
        TableSpec("tab-format-facts", "formats", "Facts of the 8-bit formats, computed from their bit patterns.",
                  facts),
    ]


def by_page(specs: list[Any], page: str) -> list[Any]:
    return [s for s in specs if s.page == page]


def render_all(specs: list[FigureSpec], out_dir: str | Path, cache_dir: str | Path | None = None,
               formats: tuple[str, ...] = FORMATS) -> dict[str, dict[str, Path]]:
    """Write every figure as ``out_dir/<id>.<ext>``; with ``cache_dir`` a figure whose data did
    not change is copied from the cache instead of drawn again. Returns id -> ext -> path."""
    out = {}
    for spec in specs:
        stem = Path(out_dir) / spec.id
        if cache_dir is None:
            out[spec.id] = save_figure(spec.draw(), stem, formats)
        else:
            out[spec.id] = render_cached(spec.draw, (spec.id, spec.caption, *spec.key), stem, cache_dir, formats)
    return out
