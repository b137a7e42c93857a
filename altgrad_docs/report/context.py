"""Template contexts of the three reports: numbers from the analysis, tables as Markdown.

No prose here: sentences live in templates/reports/*.md.j2 and are chosen there from the
numbers (n, ranges, intervals) passed in, so every claim a page makes is hedged by its n.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis import stats
from altgrad_docs.analysis.comparisons import FormatComparator
from altgrad_docs.analysis.facts import REFERENCES, facts_table_rows, init_zero_fractions, stagnation_band
from altgrad_docs.analysis.failures import MODES, FailureAnalyzer, collapse_summary, ensure_failure_columns
from altgrad_docs.formats import BASELINES, FORMATS

from . import tables
from .markdown import RunLink, escape_md, table


def _summary_of(ranked: pd.DataFrame, fmt: str | None) -> dict[str, Any] | None:
    if not fmt or fmt not in set(ranked["format"]):
        return None
    r = ranked.set_index("format").loc[fmt]
    return {"format": fmt, "n": int(r["n"]), "median": r["median"], "min": r["min"], "max": r["max"]}


def crash_rates(runs: pd.DataFrame, failures: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Per format: k failed of n completed runs with the Clopper-Pearson interval and the
    collapse steps of its failures (from ``failures`` when given)."""
    done = sc.completed(runs)
    out = []
    for fmt in sc.sorted_formats(done["format"]) if not done.empty else []:
        sel = (done["format"].astype("string") == fmt).fillna(False).to_numpy()
        rate = stats.crash_rate(int(sc.crashed_mask(done)[sel].sum()), int(sel.sum()))
        fail = failures[failures["format"].astype(str) == fmt] if failures is not None and len(failures) else None
        out.append({"format": fmt, "k": rate.k, "n": rate.n, "low": rate.low, "high": rate.high,
                    "collapse": collapse_summary(fail) if fail is not None else collapse_summary(pd.DataFrame())})
    return out


def format_comparison(df: pd.DataFrame, sweet_spot: str, run_link: RunLink,
                      failures: pd.DataFrame | None = None) -> dict[str, Any]:
    df = sc.ensure_columns(df)
    done = sc.completed(df)
    if done.empty:
        return {"has_data": False}
    comp = FormatComparator(df)
    ranked = comp.rank_by_metric("final_loss")
    candidates = ranked[~ranked["format"].isin(BASELINES) & (ranked["n"] > 0)]
    runner = next((f for f in candidates["format"] if f != sweet_spot), None)
    spot, second = _summary_of(ranked, sweet_spot), _summary_of(ranked, runner)
    base = _summary_of(ranked, next((b for b in BASELINES if b in set(ranked["format"])), None))
    rates = crash_rates(df, failures if failures is not None else comp_failures(df))
    failed = done[sc.crashed_mask(done)]
    status = df["status"].astype("string").fillna("")
    return {
        "has_data": True, "metric": "final_loss",
        "counts": {"runs": len(df), "completed": len(done), "failed": len(failed),
                   "excluded": int((~status.isin(["finished", "failed"])).sum()),
                   "formats": len(sc.sorted_formats(done["format"]))},
        "sweet_spot": spot, "sweet_spot_name": sweet_spot, "runner_up": second, "baseline": base,
        "ranges_overlap": bool(spot and second and not (spot["max"] < second["min"] or second["max"] < spot["min"])),
        "improvement_vs_baseline": comp.compute_improvement(base["format"], sweet_spot) if spot and base else math.nan,
        "results_table": tables.runs_table(_ordered(df), run_link),
        "scorecard_table": tables.scorecard_table(sc.scorecard(df), tables.run_links(done, run_link)),
        "rank_loss_table": tables.ranking_table(ranked, "final loss"),
        "rank_stall_table": tables.ranking_table(comp.rank_by_metric("bit_stall_final"), "bit stall", pct=True),
        "failures_table": tables.runs_table(_ordered(failed), run_link) if len(failed) else "",
        "crash_rates_table": tables.crash_rates_table(rates),
        "crashed_formats": [r for r in rates if r["k"] > 0],
        "clean_formats": [r for r in rates if r["k"] == 0],
        "run_links": [{"format": str(r["format"]), "optimizer": str(r["optimizer"]),
                       "seed": r["seed"], "link": run_link(r)} for _, r in _ordered(df).iterrows()],
    }


def comp_failures(df: pd.DataFrame) -> pd.DataFrame:
    a = FailureAnalyzer()
    return a.merge_failure_data(a.extract_failures(df), [])


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    key = [(sc.format_sort_key(str(f)), str(o), float(s) if pd.notna(s) else math.inf, str(i))
           for f, o, s, i in zip(df["format"], df["optimizer"], df["seed"], df["run_id"])]
    return df.iloc[sorted(range(len(df)), key=key.__getitem__)]


def failure_modes(failures: pd.DataFrame, runs: pd.DataFrame | None, run_link: RunLink) -> dict[str, Any]:
    failures = ensure_failure_columns(failures)
    e7m0 = FORMATS["E7M0"]
    ctx: dict[str, Any] = {"has_data": len(failures) > 0, "n_failures": len(failures),
                           "e7m0": {"max": e7m0.max_value, "min_positive": e7m0.min_positive,
                                    "stall_band": stagnation_band(e7m0.man_bits)}}
    rate_list = crash_rates(runs, failures) if runs is not None else []
    rates = {r["format"]: r for r in rate_list}
    ctx["e7m0"]["rate"] = rates.get("E7M0")
    ctx["crash_rates_table"] = tables.crash_rates_table(rate_list) if rate_list else ""
    if not len(failures):
        return ctx
    per_format = []
    for fmt in sc.sorted_formats(failures["format"]):
        sub = failures[failures["format"].astype(str) == fmt]
        per_format.append({
            "format": fmt, "k": len(sub), "rate": rates.get(fmt), "collapse": collapse_summary(sub),
            "modes": _counts(sub["failure_mode"]), "history_modes": _counts(sub["history_mode"].dropna()),
            "evidence": sorted({str(e) for e in sub["evidence"].dropna()}),
            "reports": int(sub["report_path"].notna().sum()),
        })
    ctx.update(
        summary_table=tables.failures_table(failures, run_link),
        per_format=per_format,
        e7m0_failures=next((p for p in per_format if p["format"] == "E7M0"), None),
        classification=[{"mode": m, "plan": int((failures["failure_mode"] == m).sum()),
                         "history": int((failures["history_mode"] == m).sum()),
                         "formats": sc.sorted_formats(failures.loc[(failures["failure_mode"] == m)
                                                                   | (failures["history_mode"] == m), "format"])}
                        for m in MODES],
        modes_present=sorted(set(failures["failure_mode"].dropna()) | set(failures["history_mode"].dropna())),
    )
    return ctx


def _counts(series: pd.Series) -> list[tuple[str, int]]:
    counts = series.astype(str).value_counts()
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))


def manifold_comparison(df: pd.DataFrame, layers: pd.DataFrame | None = None,
                        run_link: RunLink | None = None) -> dict[str, Any]:
    df = sc.ensure_columns(df)
    done = sc.completed(df)
    if done.empty:
        return {"has_data": False}
    layer_table = None if layers is None else tables.layer_table(
        FormatComparator(df).compare_by_layer_type(layers[["format", "optimizer", "layer_type", "stall"]]))
    metric = sc.default_metric(df)
    mc = sc.manifold_comparison(df, metric)
    card = sc.scorecard(df, metric)
    rows = [_effect(r) for _, r in mc.iterrows()]
    return {
        "has_data": True, "metric": metric, "n_formats": len(mc),
        "results_table": tables.scorecard_table(card, tables.run_links(done, run_link) if run_link else None),
        "stats_table": tables.manifold_stats_table(mc) if len(mc) else "",
        "helps": [r for r in rows if r["direction"] == "helps"],
        "hurts": [r for r in rows if r["direction"] == "hurts"],
        "unclear": [r for r in rows if r["direction"] == "unclear"],
        "too_few": [r for r in rows if r["status"] == stats.TOO_FEW],
        "tested": [r for r in rows if r["status"] == stats.TESTED],
        "max_pairs": max((r["n"] for r in rows), default=0),
        "unpaired": [r for r in rows if r["design"] == "unpaired"],
        "best": min((r for r in rows if np.isfinite(r["mean"])), key=lambda r: r["mean"], default=None),
        "mantissa_bits": {f: FORMATS[f].man_bits for f in FORMATS},
        "layer_table": layer_table,  # None: not asked; "": no per-layer metrics logged
    }


def _effect(r: pd.Series) -> dict[str, Any]:
    """One format's paired result; direction only when the 95% CI excludes 0."""
    lo, hi = r["ci_low"], r["ci_high"]
    direction = "unclear"
    if np.isfinite(hi) and hi < 0:
        direction = "helps"
    elif np.isfinite(lo) and lo > 0:
        direction = "hurts"
    n_text = (f"{r['n_pairs']} pair{'s' if r['n_pairs'] != 1 else ''}" if r["design"] == "paired"
              else f"{r['n_manifold']} vs {r['n_adamw']} runs, unpaired")
    return {"format": r["format"], "n": int(r["n_pairs"]), "n_text": n_text, "design": r["design"],
            "mean": r["mean_delta"], "low": lo, "high": hi,
            "g": r["hedges_g"], "p_improve": r["p_improve"], "status": r["status"], "p_holm": r["p_holm"],
            "direction": direction, "significant": bool(r["status"] == stats.TESTED and r["p_holm"] < stats.ALPHA)}


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
