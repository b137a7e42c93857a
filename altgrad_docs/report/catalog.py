"""The figures and tables of each report page, with stable ids and captions.

``figure_specs(analysis)`` lists every figure as a :class:`FigureSpec`: a stable id
(``fig-<name>``, never a position), the page it belongs to, a caption that states n, a
``draw()`` that returns a new Figure, and the data its bytes depend on (``key``) for
``export.render_cached``. ``table_specs`` does the same for the raw tables (CSV/LaTeX).
Pages: ``format_comparison``, ``failure_modes``, ``manifold_comparison``, ``formats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.facts import facts_frame
from altgrad_docs.analysis.findings import family_table
from altgrad_docs.analysis.layers import family_sort_key
from altgrad_docs.analysis.pipeline import Analysis
from altgrad_docs.formats import BASELINES

from . import figures as F
from . import figures_summary as S
from .figure_style import MAX_PANELS, SETTING, facet_title, facets, settings_of
from .export import FORMATS, digest, render_cached, save_figure
from .markdown import setting_slug
from .tables import layer_values

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class FigureSpec:
    id: str
    page: str
    caption: str
    draw: Callable[[], Figure]
    key: tuple
    #: one of several figures in one place (one per setting): the place's id and this one's tab
    group: str = ""
    tab: str = ""
    #: (page, table id) of the table that holds the figure's numbers
    table: tuple[str, str] | None = None


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


def _faceted(runs: pd.DataFrame, keys: list[str]) -> list[tuple[str | None, pd.DataFrame, str]]:
    """(setting, its runs, key) for every setting x key with runs; setting None when the
    run table has one setting only (then nothing is separated)."""
    out = []
    for setting, sub in facets(runs):
        present = set(sub["format"].dropna().astype(str)) | set(sub["optimizer"].dropna().astype(str))
        out += [(setting, sub, k) for k in keys if k in present]
    return out


def _facet_grid(panels: list[tuple[str | None, pd.DataFrame, str]], plot: Callable,
                panel_size: tuple[float, float] = (3.4, 2.6), share: bool = True) -> Figure:
    """One panel per (setting, key): ``plot(key, runs_of_setting, ax)``, the setting above
    the panel's own title; the panels share their axes' limits unless ``share`` is False."""
    def draw(panel, ax):
        setting, sub, key = panel
        plot(key, sub, ax)
        if setting is not None:
            ax.set_title(f"{F.plain(setting)}\n{ax.get_title()}", fontsize=8)
    return F.panel_grid(panels, draw, panel_size=panel_size, share=share)


def _grid_specs(fid: str, page: str, caption: str, panels: list[tuple[str | None, pd.DataFrame, str]],
                plot: Callable, key: tuple, table: tuple[str, str] | None, single: Callable[[], Figure] | None = None,
                **grid) -> list[FigureSpec]:
    """The figure ``fid`` of these panels, or, when they are more than ``MAX_PANELS``, one
    figure per setting (``fid-<setting>``, grouped under ``fid``: the page shows them as
    tabs). ``single``: how to draw the figure of one panel without settings."""
    settings = list(dict.fromkeys(p[0] for p in panels))
    if len(panels) <= MAX_PANELS or None in settings:
        draw = single if single is not None and settings == [None] else partial(_facet_grid, panels, plot, **grid)
        return [FigureSpec(fid, page, caption, draw, key, table=table)]
    return [FigureSpec(f"{fid}-{setting_slug(s)}", page, f"{caption} Setting {s}.",
                       partial(_facet_grid, [(None, sub, k) for t, sub, k in panels if t == s], plot, **grid),
                       key + (s,), group=fid, tab=s, table=table)
            for s in settings]
def _per_setting(a: Analysis, table: pd.DataFrame, compute: Callable[[pd.DataFrame, str], pd.DataFrame],
                 setting: str | None, sub: pd.DataFrame) -> pd.DataFrame:
    """The analysis table of one setting: its rows when the table has a setting column,
    else computed from that setting's runs (the pooled table when there is one setting)."""
    if setting is None:
        return table
    if SETTING in table.columns:
        return table[(table[SETTING].astype("string") == setting).fillna(False).to_numpy()]
    return compute(sub, a.metric)


def _summary_specs(a: Analysis, fid: str, page: str, caption: str, table: pd.DataFrame, compute,
                   plot: Callable[..., Any], key: tuple, numbers: tuple[str, str] | None,
                   share: bool = True) -> list[FigureSpec]:
    """A single-panel summary figure ``plot(table, runs, ax=None)``, or one panel per setting
    (that setting's table and runs) when the runs have several (sharing their axes' limits
    unless ``share`` is False)."""
    panels = [(s, sub, s) for s, sub in facets(a.runs)]
    return _grid_specs(fid, page, caption, panels,
                       lambda s, sub, ax: plot(_per_setting(a, table, compute, s, sub), sub, ax=ax), key, numbers,
                       single=lambda: _fig(plot(table, a.runs)), share=share)


def curve_metric(a: Analysis) -> str:
    """The history metric behind the primary final metric (``final_val_loss`` -> ``val_loss``),
    or ``loss`` when no trace logged it."""
    name = a.metric.removeprefix("final_")
    return name if any(len(t.curve(name)[0]) for t in a.traces.values()) else "loss"


def figure_specs(a: Analysis) -> list[FigureSpec]:
    runs, tr = a.runs, a.traces
    fp8 = [f for f in a.formats if f not in BASELINES] or a.formats[:1]
    n_runs = len(runs)
    failed = [tr[r] for r in a.failures["run_id"].dropna().astype(str) if r in tr]
    names = dict(zip(runs["run_id"].astype(str), runs["name"].astype(str))) if "name" in runs else {}
    labels = [names.get(t.run_id, t.run_id) for t in failed]
    formats = dict(zip(runs["run_id"].astype(str), runs["format"].astype(str)))
    groups = [formats.get(t.run_id, "unknown") for t in failed]
    cols = ["run_id", "format", "optimizer", "bit_stall_threshold"] + ([SETTING] if SETTING in runs else [])
    run_cols = runs[cols]
    all_key = (digest(run_cols, _traces_key(a, tr)),)  # every run's trace, hashed once for all figures
    metric = curve_metric(a)
    baseline = "BF16" if "BF16" in a.formats else None
    optimizers = [o for o in (sc.STANDARD, sc.MANIFOLD) if o in set(runs["optimizer"].dropna().astype(str))]
    per = " per setting" if settings_of(runs) is not None else ""
    dashed = "; dashed = baseline median" if set(BASELINES) & set(a.formats) else ""
    unseeded = a.design is not None and not a.design.paired  # no seeds: every comparison unpaired

    families = sorted(set(a.layers["family"].astype(str)), key=family_sort_key) if "family" in a.layers else []
    layer_names = ", ".join(families) or "none logged"

    scorecard, failures, paired = ("format_comparison", "tab-scorecard"), ("failure_modes", "tab-failures"), \
        ("manifold_comparison", "tab-paired")
    layer_numbers = ("manifold_comparison", "tab-layer-values")

    def grid(fid, page, caption, plot, key, numbers, **kw) -> list[FigureSpec]:
        return _grid_specs(fid, page, caption, _faceted(runs, fp8),
                           lambda f, sub, ax: plot(tr, sub, f, ax=ax, **kw), key, numbers)

    return [
        *grid("fig-loss-curves", "format_comparison",
              f"Curves of {metric} per format{per} ({n_runs} runs, log scale): every seed thin, median bold, "
              "AdamW blue solid, ManifoldAdamW vermillion dash-dot"
              f"{', BF16 baseline grey dashed' if baseline else ''}; "
              "x = the step where a run's loss became NaN/Inf.",
              F.plot_loss_curves, (metric,) + all_key, scorecard, metric=metric, baseline=baseline),
        *_grid_specs("fig-loss-end", "format_comparison",
                     f"The last {100 * F.END_FRACTION:.0f}% of training: median {metric} over seeds of every format"
                     f"{per}, one panel per optimizer (linear scale, where the formats differ).",
                     _faceted(runs, optimizers),
                     lambda o, sub, ax: F.plot_loss_end(tr, sub, o, a.formats, metric, ax=ax),
                     ("end", metric) + all_key, scorecard, panel_size=(4.6, 3.2)),
        *_summary_specs(a, "fig-loss-vs-mantissa", "format_comparison",
                        f"Final {a.metric.removeprefix('final_')} against mantissa bits{per}: median with min-max bar "
                        f"per optimizer, every seed a dot{dashed}; "
                        "labels give failed runs as k/n (no label: none failed).",
                        a.card, sc.scorecard, lambda t, r, ax=None: S.plot_loss_vs_mantissa(t, ax=ax, runs=r),
                        (a.card, runs[[c for c in cols if c != "bit_stall_threshold"] + [a.metric]]), scorecard),
        *_summary_specs(a, "fig-survival", "failure_modes",
                        f"Fraction of runs not yet failed against step, per format{per}: a run fails at its first "
                        "non-finite loss, or at its last step when the trainer stopped it as failed "
                        "(divergence, stagnation); runs that end without failing count until their last step.",
                        runs, lambda sub, _: sub, lambda _, r, ax=None: F.plot_survival(tr, r, ax=ax),
                        all_key, failures),
        FigureSpec("fig-crash-forensics", "failure_modes",
                   f"The last 50 logged steps before failure of the {len(failed)} failed runs with a "
                   "history, per format: median bold, range of the runs shaded; loss, gradient norm, overflow rate "
                   "(0 = the first non-finite loss, or the step at which the trainer stopped the run as failed). "
                   "Each run's own curves are on its page, linked from the failed-runs table.",
                   lambda: _fig(S.plot_crash_summary(failed, groups)),
                   ("summary", labels, groups, [(t.run_id, t) for t in failed]), table=failures),
        *grid("fig-over-under-flow", "failure_modes",
              "Overflow (solid) and underflow (dotted) rate per format over training, median over runs "
              "per optimizer.", F.plot_over_under_flow, ("flow",) + all_key, scorecard),
        *_summary_specs(a, "fig-forest", "manifold_comparison",
                        f"Unpaired difference in final {a.metric.removeprefix('final_')} (mean ManifoldAdamW minus "
                        "mean AdamW over all finished runs of a format; the runs hold no seed to pair by): diamond = "
                        "difference, bar = 95% Welch t interval." if unseeded else
                        f"Paired difference in final {a.metric.removeprefix('final_')} (ManifoldAdamW minus AdamW, "
                        "same format and seed): open circles = seeds, diamond = mean, bar = 95% t interval.",
                        a.paired, sc.manifold_comparison,
                        lambda t, _, ax=None: S.plot_forest(t, ax=ax, higher_is_better=a.higher_is_better),
                        (a.paired, run_cols, a.higher_is_better), paired),
        *grid("fig-bit-stall", "manifold_comparison",
              "Bit-stall rate over training per format (log scale) per optimizer, with the alert threshold; "
              "each panel states the update size below which round-to-nearest loses an update.",
              F.plot_stall, ("stall",) + all_key, scorecard),
        FigureSpec("fig-layer-stall", "manifold_comparison",
                   f"Mean of each per-layer metric the runs logged ({layer_names}) per layer type and "
                   f"condition{per}; panels of one metric share one colour scale.",
                   lambda: S.plot_layer_families(a.layers, settings=settings_of(runs)),
                   (a.layers, run_cols), table=layer_numbers),
        FigureSpec("fig-layer-stall-difference", "manifold_comparison",
                   f"Each per-layer metric ({layer_names}) per layer type{per}, ManifoldAdamW minus AdamW "
                   "(blue = lower with manifold-aware).",
                   lambda: S.plot_layer_families(a.layers, difference=True, settings=settings_of(runs)),
                   (a.layers, "diff", run_cols), table=layer_numbers),
        FigureSpec("fig-number-lines", "formats",
                   "Every positive value of each 8-bit format on a log2 axis; ▼ marks the smallest normal value.",
                   lambda: _fig(S.plot_number_lines()), ("number-lines",), table=("formats", "tab-format-facts")),
    ]


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
        TableSpec("tab-scorecard", "format_comparison", "Scorecard per format and optimizer.",
                  _flat(a.card.drop(columns=["p_improve"], errors="ignore"))),
        TableSpec("tab-failures", "failure_modes", "Failed runs: collapse step, reason, classification.",
                  _flat(a.failures)),
        TableSpec("tab-paired", "manifold_comparison",
                  ("Every ManifoldAdamW - AdamW comparison as the pages state it, unpaired (no seeds): effect, 95% "
                   "Welch t interval, the family's Holm-adjusted t p, the exact test and every robustness check."
                   if a.design is not None and not getattr(a.design, "paired", True) else
                   "Every ManifoldAdamW - AdamW comparison as the pages state it: effect, 95% t interval, "
                   "the family's Holm-adjusted t p, the exact test and every robustness check."),
                  _flat(family_table(a.findings)) if a.findings is not None else _flat(a.paired)),
        TableSpec("tab-layer-values", "manifold_comparison",
                  "Per-layer metrics: the mean over runs of each family per layer type, format, optimizer"
                  " (and setting), as the per-layer heatmaps show them (a difference heatmap's cell is "
                  "ManifoldAdamW minus AdamW of two rows here).", layer_values(a.layers)),
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


#: The analysis a drawing worker process draws from (set once per process by use_analysis).
_WORKER: dict[str, Any] = {}


def use_analysis(a: Analysis) -> None:
    """Make ``a`` the analysis :func:`draw_figure` draws from (a worker's initializer)."""
    _WORKER["specs"] = {s.id: s for s in figure_specs(a)}


def draw_figure(spec_id: str) -> Figure:
    """Draw one figure of the analysis set by :func:`use_analysis`: a picklable draw, for
    ``report.drawing.render_many``'s worker processes."""
    return _WORKER["specs"][spec_id].draw()
