"""Template contexts of the three reports: numbers from the analysis, tables as Markdown.

No prose here: sentences live in templates/reports/*.md.j2 and are chosen there from the
numbers (n, ranges, intervals) passed in, so every claim a page makes is hedged by its n.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.comparisons import FormatComparator
from altgrad_docs.analysis.design import design_columns
from altgrad_docs.analysis.facts import REFERENCES, facts_table_rows, init_zero_fractions, stagnation_band
from altgrad_docs.analysis.findings import Findings
from altgrad_docs.analysis.onset import failure_onset
from altgrad_docs.analysis.failures import MODES, FailureAnalyzer, collapse_summary, ensure_failure_columns
from altgrad_docs.formats import BASELINES, FORMATS

from . import run_config, tables
from .markdown import RunLink, escape_md, metric_name, setting_slug, table


def _summary_of(ranked: pd.DataFrame, fmt: str | None) -> dict[str, Any] | None:
    """The best ranked row (a condition) of one format, as a dict; None when it has none."""
    if not fmt or fmt not in set(ranked["format"]):
        return None
    return _row_summary(ranked[ranked["format"] == fmt].iloc[0])


def _row_summary(r: pd.Series) -> dict[str, Any]:
    return {"format": str(r["format"]), "optimizer": str(r.get("optimizer", "")), "setting": str(r.get("setting", "") or ""),
            "n": int(r["n"]), "median": r["median"], "min": r["min"], "max": r["max"]}


def condition_label(fmt: str, setting: str = "", optimizer: str = "") -> str:
    """'E5M2', 'E5M2 · AdamW', 'E5M2 · learning_rate=0.01': a condition as headings name it."""
    return " · ".join(p for p in (fmt, optimizer, setting) if p)


def metric_label(metric: str) -> str:
    """final_val_loss -> 'final validation loss', final_eval/f1_micro -> 'final eval/f1_micro' (how
    tables and sentences name the metric: a logged key keeps its spelling)."""
    return metric_name(metric)


def metric_unit(metric: str) -> str:
    """'nats' for the cross-entropy losses (final_loss, final_val_loss), '' for any other metric."""
    return "nats" if metric in ("final_loss", "final_val_loss") else ""


def _higher(metric: str, higher_is_better: bool | None) -> bool:
    """The direction given (the design's), else the one the metric's name says (lower when it
    says nothing): callers of the plan's API pass a metric, not a design."""
    if higher_is_better is not None:
        return higher_is_better
    from altgrad_docs.analysis.metrics import direction_of, key_of
    return bool(direction_of(key_of(metric)))


def direction_words(higher_is_better: bool) -> dict[str, str]:
    """The words a template needs for the metric's direction."""
    return {"better": "higher" if higher_is_better else "lower", "worse": "lower" if higher_is_better else "higher",
            "sign_better": ">" if higher_is_better else "<"}


def condition_rates(f: Findings, failures: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per condition (format x optimizer x setting, from the findings): k failed of n completed
    runs with the Clopper-Pearson interval, and the collapse steps of that condition's failures."""
    fail = ensure_failure_columns(failures) if failures is not None and len(failures) else None
    out = []
    for r in f.rates:
        sub = pd.DataFrame()
        if fail is not None:
            sel = (fail["format"].astype(str) == r.format) & (fail["optimizer"].astype(str) == r.optimizer)
            if "setting" in fail and r.setting:
                sel &= fail["setting"].astype(str) == r.setting
            sub = fail[sel.to_numpy()]
        out.append({"format": r.format, "optimizer": r.optimizer, "setting": r.setting, "k": r.k, "n": r.n,
                    "low": r.low, "high": r.high, "collapse": collapse_summary(sub)})
    return out


def format_comparison(df: pd.DataFrame, sweet_spot: str, run_link: RunLink,
                      failures: pd.DataFrame | None = None, metric: str = "final_loss",
                      factors: list[str] | None = None, baseline: str = "BF16",
                      findings: Findings | None = None, higher_is_better: bool | None = None) -> dict[str, Any]:
    """The format comparison: conditions (format x optimizer x setting) ranked by ``metric``
    (best first: lowest, or highest when ``higher_is_better``); the sweet spot and every count
    from the findings (``findings``, else computed from ``df``). A ``sweet_spot`` format other
    than the findings' best is the caller's choice: its best condition is shown as given."""
    df, names = design_columns(sc.ensure_columns(df), factors)
    done = sc.completed(df)
    if done.empty:
        return {"has_data": False}
    higher_is_better = _higher(metric, higher_is_better)
    f = findings if findings is not None else findings_of(df, metric, names, baseline)
    comp = FormatComparator(df, names, higher_is_better=higher_is_better)
    ranked = comp.rank_conditions(metric)
    best = f.sweet_spot.best
    if best is not None and sweet_spot in ("", None, best.format):
        spot = {"format": best.format, "optimizer": best.optimizer, "setting": best.setting, "n": best.n,
                "median": best.median, "min": best.min, "max": best.max, "text": best.text}
    else:
        candidates = ranked[~ranked["format"].isin(BASELINES) & (ranked["n"] > 0)]
        spot = _summary_of(candidates, sweet_spot)
    base = _baseline_of(ranked, spot, baseline)
    failures = failures if failures is not None else comp_failures(df)
    failed = done[sc.crashed_mask(done)]
    card = sc.scorecard(df, metric, baseline, factors=names, higher_is_better=higher_is_better)
    links = tables.run_links(done, run_link)
    return {
        "has_data": True, "metric": metric, "metric_label": metric_label(metric), "f": f,
        "metric_unit": metric_unit(metric), "higher_is_better": higher_is_better,
        "direction": direction_words(higher_is_better),
        "counts": {"runs": f.counts.study_runs, "completed": f.counts.completed, "failed": f.counts.failed,
                   "excluded": f.counts.left_out, "formats": len(f.counts.formats),
                   "conditions": f.counts.conditions, "conditions_failed": f.counts.conditions_failed},
        "sweet_spot": spot, "sweet_spot_name": sweet_spot, "baseline": base,
        "spot_is_finding": bool(best is not None and spot is not None and spot.get("text")),
        "results_table": tables.runs_table(_ordered(df), run_link),
        "primary_table": tables.primary_table(card, metric_label(metric)),
        "scorecard_table": tables.scorecard_table(card, links, baseline),
        "settings": _setting_sections(card, links, baseline, metric),
        "rank_loss_table": tables.ranking_table(ranked, metric_label(metric)),
        "rank_stall_table": tables.ranking_table(comp.rank_conditions("bit_stall_final", ascending=True),
                                                 "bit stall", pct=True),
        "failures_table": tables.runs_table(_ordered(failed), run_link) if len(failed) else "",
        "crash_rates_table": tables.crash_rates_table(condition_rates(f, failures)),
    }


def _baseline_of(ranked: pd.DataFrame, spot: dict[str, Any] | None, baseline: str) -> dict[str, Any] | None:
    """The baseline condition to compare the sweet spot with: the ``baseline`` format (else any
    16-bit one) with the same optimizer and setting when it ran, else its best condition in the
    same setting, else its best condition."""
    ran = ranked[ranked["n"] > 0]
    base = ran[ran["format"] == baseline]
    base = base if len(base) else ran[ran["format"].isin(BASELINES)]
    if spot and len(base):
        setting = base["setting"].fillna("") if "setting" in base else pd.Series("", index=base.index)
        same_setting = base[(setting == spot["setting"]).to_numpy()]
        same = same_setting[(same_setting["optimizer"] == spot["optimizer"]).to_numpy()]
        base = same if len(same) else same_setting if len(same_setting) else base
    return _row_summary(base.iloc[0]) if len(base) else None


def _setting_sections(card: pd.DataFrame, links: dict[str, str] | None, baseline: str,
                      metric: str) -> list[dict[str, Any]]:
    """One primary table and one scorecard table per setting (empty list without factors: one
    table of each is enough)."""
    if "setting" not in card or set(card["setting"]) <= {""}:
        return []
    return [{"setting": s, "anchor": f"setting-{setting_slug(s)}", "primary_table": tables.primary_table(card[card["setting"] == s].assign(setting=""),
                                                                 metric_label(metric)),  # the heading names it
             "scorecard_table": tables.scorecard_table(card[card["setting"] == s], links, baseline)}
            for s in dict.fromkeys(card["setting"])]


def comp_failures(df: pd.DataFrame) -> pd.DataFrame:
    a = FailureAnalyzer()
    return a.merge_failure_data(a.extract_failures(df), [])


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    settings = df["setting"].astype(str) if "setting" in df else pd.Series("", index=df.index)
    key = [(sc.format_sort_key(str(f)), str(o), str(g), float(s) if pd.notna(s) else math.inf, str(i))
           for f, o, g, s, i in zip(df["format"], df["optimizer"], settings, df["seed"], df["run_id"])]
    return df.iloc[sorted(range(len(df)), key=key.__getitem__)]


def failure_modes(failures: pd.DataFrame, runs: pd.DataFrame | None, run_link: RunLink,
                  factors: list[str] | None = None, findings: Findings | None = None,
                  traces: dict | None = None) -> dict[str, Any]:
    """Failure modes: every per-format or per-condition statement from that format's or
    condition's runs only (rates from the findings, per condition); onset beside detection step."""
    failures = ensure_failure_columns(failures)
    e7m0 = FORMATS["E7M0"]
    f = findings
    if f is None and runs is not None and len(sc.completed(runs)):
        f = findings_of(runs, None, factors)
    # a failure report matched to no run (the plan's narrow frames have neither a run nor a report)
    no_run = (~failures["run_id"].map(lambda v: isinstance(v, str) and bool(v)).astype(bool)
              & failures["report_path"].map(lambda v: isinstance(v, str) and bool(v)).astype(bool))
    unmatched = [{"path": str(r["report_path"]), "format": str(r["format"]),
                  "reason": r["reason"] if isinstance(r["reason"], str) and r["reason"] else "-",
                  "collapse_step": r["collapse_step"]} for _, r in failures[no_run].iterrows()]
    ctx: dict[str, Any] = {"has_data": len(failures) > 0, "n_failures": int((~no_run).sum()), "f": f,
                           "unmatched_reports": unmatched,
                           "e7m0": {"max": e7m0.max_value, "min_positive": e7m0.min_positive,
                                    "stall_band": stagnation_band(e7m0.man_bits)}}
    if runs is not None and len(failures):
        by_run = dict(zip(*(lambda d: (d["run_id"].astype(str), d["setting"].astype(str)))(
            design_columns(sc.ensure_columns(runs), factors)[0])))
        failures = failures.assign(setting=[by_run.get(str(r), s) for r, s in
                                            zip(failures["run_id"], failures["setting"])])
    failures = _with_onset(failures, traces or {})
    rate_list = condition_rates(f, failures) if f is not None else []
    ctx["crash_rates_table"] = tables.crash_rates_table(rate_list) if rate_list else ""
    e7m0_runs = sc.completed(runs)[sc.completed(runs)["format"].astype(str) == "E7M0"] if runs is not None else None
    ctx["storage"] = run_config.weight_storage(e7m0_runs if e7m0_runs is not None and len(e7m0_runs) else None)
    e7 = [r for r in rate_list if r["format"] == "E7M0"]
    ctx["e7m0"]["rate"] = f.by_format.get("E7M0") if f is not None else None
    ctx["e7m0"]["per_condition"] = [r for r in e7 if r["k"]]
    if not len(failures):
        return ctx
    table_rows, failures = failures, failures[(~no_run).to_numpy()]  # a report of no run: in the table only
    per_format = []
    settings = failures["setting"].fillna("").astype(str)
    for fmt in sc.sorted_formats(failures["format"]):
        for setting in sorted(set(settings[(failures["format"].astype(str) == fmt).to_numpy()])):
            sub = failures[((failures["format"].astype(str) == fmt) & (settings == setting)).to_numpy()]
            per_format.append({
                "format": fmt, "setting": setting, "label": condition_label(fmt, setting), "k": len(sub),
                "rates": [r for r in rate_list if r["format"] == fmt and r["setting"] == setting],
                "collapse": collapse_summary(sub), "onset": collapse_summary(sub.assign(collapse_step=sub["onset_step"])),
                "modes": _counts(sub["failure_mode"]), "history_modes": _counts(sub["history_mode"].dropna()),
                "stagnation": _counts(sub["stagnation"][sub["stagnation"] != ""]),
                "evidence": evidence_lines(sub["evidence"]),
                "reports": int(sub["report_path"].notna().sum()),
            })
    e7m0_fail = failures[(failures["format"].astype(str) == "E7M0").to_numpy()]
    plan_says = bool((failures["failure_mode"].fillna("unknown") != "unknown").any())
    history_says = bool(failures["history_mode"].notna().any())
    ctx.update(
        summary_table=tables.failures_table(table_rows, run_link, plan=plan_says, history=history_says),
        per_format=per_format, plan_classifies=plan_says, history_classifies=history_says,
        e7m0_failures={"k": len(e7m0_fail), "collapse": collapse_summary(e7m0_fail),
                       "onset": collapse_summary(e7m0_fail.assign(collapse_step=e7m0_fail["onset_step"]))}
        if len(e7m0_fail) else None,
        classification=_classification(failures, plan_says, history_says),
        unclassified=int((failures["history_mode"].isna()).sum()),
        modes_present=sorted(set(failures["failure_mode"].dropna()) | set(failures["history_mode"].dropna())),
    )
    return ctx


def _classification(failures: pd.DataFrame, plan: bool, history: bool) -> list[dict[str, Any]]:
    """Runs per mode by each classification that classifies something; modes no shown
    classification gives are left out, and so are the formats only a hidden one names."""
    shown = (failures["failure_mode"] if plan else None,
             failures["history_mode"] if history else None)
    out = []
    for m in MODES:
        hit = np.zeros(len(failures), dtype=bool)
        for col in shown:
            if col is not None:
                hit |= (col == m).fillna(False).to_numpy()
        if hit.any():
            out.append({"mode": m, "plan": int((failures["failure_mode"] == m).sum()),
                        "history": int((failures["history_mode"] == m).sum()),
                        "formats": sc.sorted_formats(failures.loc[hit, "format"])})
    return out


def _with_onset(failures: pd.DataFrame, traces: dict) -> pd.DataFrame:
    """The failure table with each run's onset step and, for stagnation, how it ended."""
    onsets = [failure_onset(traces.get(str(r)), _step(c), m)
              for r, c, m in zip(failures["run_id"], failures["collapse_step"], failures["history_mode"])]
    return failures.assign(onset_step=[o.onset_step for o in onsets], stagnation=[o.stagnation for o in onsets])


def _step(value: Any) -> int | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return int(x) if math.isfinite(x) else None


def _counts(series: pd.Series) -> list[tuple[str, int]]:
    counts = series.astype(str).value_counts()
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))


def findings_of(df: pd.DataFrame, metric: str | None = None, factors: list[str] | None = None,
                baseline: str | None = None, identical: list[list[str]] | None = None) -> Findings:
    """The findings of a bare run table (the ReportGenerator API, without a site analysis):
    the same pipeline, with no histories (so no robustness check that needs one).
    ``identical``: groups of formats whose runs are bit-identical (the site finds them from the
    histories), counted once in the family."""
    from altgrad_docs.analysis.design import DesignOptions
    from altgrad_docs.analysis.findings import build_findings
    from altgrad_docs.analysis.pipeline import analyse

    options = DesignOptions(factors=tuple(factors) if factors is not None else None, metric=metric,
                            baseline=baseline)
    a = analyse(sc.ensure_columns(df), options=options)
    if identical:
        settings = sorted(set(a.runs["setting"].astype(str)))
        a.design.identical = [[(f, o, s) for f in g] for g in identical for o in ("AdamW", "ManifoldAdamW")
                              for s in settings]
        a.findings = build_findings(a, n_snapshot_runs=len(df))
    return a.findings


def manifold_comparison(df: pd.DataFrame, layers: pd.DataFrame | None = None,
                        run_link: RunLink | None = None, metric: str | None = None,
                        factors: list[str] | None = None, baseline: str = "BF16",
                        identical: list[list[str]] | None = None, findings: Findings | None = None,
                        higher_is_better: bool | None = None) -> dict[str, Any]:
    """ManifoldAdamW vs AdamW per format and setting (paired by seed within the setting): every
    number and sentence from the findings (``findings``, else computed from ``df``)."""
    df, names = design_columns(sc.ensure_columns(df), factors)
    done = sc.completed(df)
    if done.empty:
        return {"has_data": False}
    layer_table = None if layers is None else layer_tables(df, names, layers)
    metric = metric or sc.default_metric(df)
    higher_is_better = _higher(metric, higher_is_better)
    f = findings if findings is not None else findings_of(df, metric, names, baseline, identical)
    card = sc.scorecard(df, metric, baseline, factors=names, higher_is_better=higher_is_better)
    links = tables.run_links(done, run_link) if run_link else None
    return {
        "has_data": True, "metric": metric, "metric_label": metric_label(metric), "f": f,
        "metric_unit": metric_unit(metric), "higher_is_better": higher_is_better,
        "direction": direction_words(higher_is_better),
        "n_settings": f.counts.settings,
        "results_table": tables.scorecard_table(card, links, baseline),
        "primary_table": tables.primary_table(card, metric_label(metric)),
        "settings": _setting_sections(card, links, baseline, metric),
        "optimizer_config": run_config.optimizer_differences(done),
        "storage": run_config.weight_storage(done),
        "stats_table": tables.comparisons_table(f) if f.comparisons else "",
        "unpaired": [c for c in f.comparisons if c.design == "unpaired"],
        "seeded": sc.seeded(done),  # False: no seeds logged, every comparison unpaired (Welch)
        "duplicates": _duplicates(df, names, metric),
        "mantissa_bits": {fmt: FORMATS[fmt].man_bits for fmt in FORMATS},
        "layer_table": layer_table,  # None: not asked; "": no per-layer metrics logged
    }


def _duplicates(df: pd.DataFrame, names: list[str], metric: str) -> list[dict[str, Any]]:
    """(format, setting) whose seeds one optimizer ran more than once (left out of the pairs)."""
    mc = sc.manifold_comparison(df, metric, names)
    return [{"label": condition_label(r["format"], r["setting"]), "duplicated_seeds": list(r["duplicated_seeds"])}
            for _, r in mc.iterrows() if len(r["duplicated_seeds"])]


def layer_tables(df: pd.DataFrame, names: list[str], layers: pd.DataFrame) -> list[dict[str, Any]]:
    """One table per per-layer family (analysis.comparisons.layer_frame): the mean per layer
    type for each condition; [] when no run logged a per-layer metric."""
    if layers is None or layers.empty:
        return []
    if "family" not in layers:  # the stall frame of layer_stall_frame
        layers = layers.rename(columns={"stall": "value"}).assign(family="stall")
    from altgrad_docs.analysis.layers import family_sort_key
    out = []
    comp = FormatComparator(df, names)
    for family in sorted(set(layers["family"].astype(str)), key=family_sort_key):
        sub = layers[(layers["family"] == family).to_numpy()]
        keys = [k for k in ("format", "optimizer", "setting", "layer_type") if k in sub]
        by_type = comp.compare_by_layer_type(sub[keys + ["value"]].rename(columns={"value": "stall"}))
        pct = family in ("stall", "dead_neuron_frac")
        out.append({"family": family, "table": tables.layer_table(by_type, pct=pct),
                    "n_runs": int(sub["run_id"].nunique()) if "run_id" in sub else 0})
    return out


def formats_page() -> dict[str, Any]:
    """Context of the formats page: the facts computed from the bit patterns and the
    16-bit references, as Markdown tables."""
    refs = [{"format": r["format"], "E": str(r["exp_bits"]), "M": str(r["man_bits"]), "max": f"{r['max']:.4g}",
             "min normal": f"2^{int(np.log2(r['min_normal']))}", "min positive": f"2^{int(np.log2(r['min_positive']))}",
             "updates lost below": "{:.2g}-{:.2g}% of |w|".format(*(100 * v for v in stagnation_band(r["man_bits"])))}
            for r in REFERENCES]
    return {"facts_table": text_table(facts_table_rows()), "references_table": text_table(refs),
            "e4m3": FORMATS["E4M3"], "e5m2": FORMATS["E5M2"], "init_zero": init_zero_fractions(0.02)}


def text_table(rows: list[dict[str, Any]]) -> str:
    """A table whose every cell (and header) is literal text."""
    return table(pd.DataFrame([{escape_md(k): escape_md(v) for k, v in r.items()} for r in rows]))


def design_context(design: Any, cumulative: dict[str, bool] | None = None,
                   families: list[str] | None = None) -> dict[str, Any]:
    """What the home page and Methods say about the design (analysis/design.py): factors with
    their levels, constants, keys that follow the format/optimizer, a compact n-per-cell table,
    thin/unbalanced/missing cells, duplicates, runs of different lengths, runs left out; and
    which key is the primary metric, its direction and the rates (``cumulative``: rate key ->
    read as cumulative since step 0, Analysis.cumulative; ``families``: the per-layer families
    the runs logged)."""
    from altgrad_docs.analysis.design import level_text
    from altgrad_docs.analysis.metrics import describe

    if design is None:
        return {"known": False}
    cells, left = design.cells, design.left_out
    higher = bool(getattr(design, "higher_is_better", False))
    return {
        "known": True, "explicit": design.explicit, "metric": design.metric,
        "metric_label": metric_label(design.metric), "baseline": design.baseline,
        "metrics": describe(design.metric_map, cumulative) | {"families": list(families or [])},
        "higher_is_better": higher,
        "direction": direction_words(higher),
        "factors": [{"name": k, "levels": [level_text(v) for v in lv]} for k, lv in design.factors.items()],
        "constants": [{"name": k, "value": level_text(v)} for k, v in sorted(design.constants.items())],
        "follows": [{"name": k, "what": v} for k, v in sorted(design.follows.items())],
        "identity": design.identity, "bookkeeping": design.bookkeeping, "ignored": design.ignored,
        "n_conditions": len(cells), "n_settings": len(design.settings), "balanced": design.balanced,
        "cells_table": tables.cells_table(cells) if len(cells) else "",
        "n_range": (int(cells["n"].min()), int(cells["n"].max())) if len(cells) else (0, 0),
        "thin": [{"label": condition_label(r["format"], r["setting"]), "n_pairs": int(r["n_pairs"])}
                 for _, r in design.thin.iterrows()],
        "missing": [condition_label(r["format"], r["setting"], r["optimizer"]) for _, r in design.missing.iterrows()],
        "duplicates": [{"label": condition_label(r["format"], r["setting"], r["optimizer"]), "seed": int(r["seed"]),
                        "n": int(r["n"])} for _, r in design.duplicates.iterrows()],
        "lengths": [{"label": condition_label(r["format"], r["setting"]), "steps": r["steps"],
                     "max_steps": r["max_steps"], "budget": r["budget"]}
                    for _, r in design.lengths.iterrows() if r["scope"] == "format"],
        "lengths_across": [{"setting": r["setting"], "steps": r["steps"], "max_steps": r["max_steps"]}
                           for _, r in design.lengths.iterrows() if r["scope"] == "setting"],
        "left_out": _counts(left["reason"]) if len(left) else [],
        "n_left_out": len(left),
        "identical": design.identical_formats(),
        "seeded": design.seeded,
        "assumed_baseline": design.assumed_baseline,
        "n_unseeded": int(design.runs.loc[design.runs["included"], "seed"].isna().sum()),
        "n_included": int(design.runs["included"].sum()),
        "spellings": [{"name": k, "level": level, "spellings": sp}
                      for k, levels in design.spellings.items() for level, sp in levels.items()],
    }


def evidence_lines(evidence: pd.Series) -> list[str]:
    """Each distinct evidence line once, with how many runs gave it ("... (x4)"), sorted."""
    counts = Counter(str(e) for e in evidence.dropna())
    return [f"{line} (x{n})" if n > 1 else line for line, n in sorted(counts.items())]
