"""Numeric tables -> Markdown strings for the reports (the formatting half of the analysis).

Every table carries n; user text (run names) is escaped; runs are linked through the
``run_link`` function the caller passes (W&B by default; the site adds its run pages).
"""

from __future__ import annotations

import re

import pandas as pd

from altgrad_docs.analysis import digits

from .markdown import (RunLink, escape_md, fmt_int, fmt_measured, fmt_num, fmt_pct, fmt_sig, interval_kind,
                       metric_name, table)


def has_settings(df: pd.DataFrame) -> bool:
    """Whether a table's rows come from several settings of the design's factors."""
    return "setting" in df and bool((df["setting"].fillna("").astype(str) != "").any())


def _setting(r, show: bool) -> dict[str, str]:
    """The setting cell of a row, when the table shows settings."""
    return {"setting": escape_md(r.get("setting") or "-")} if show else {}


def range_cell(median, lo, hi, n=None) -> str:
    """'1.23 [1.10, 1.40]' at the range's precision (analysis/digits.py); n = k appended when given."""
    text = digits.spread(float(median), float(lo), float(hi)) if fmt_num(median) != "-" else "-"
    return f"{text} (n = {n})" if n is not None else text


def ci_cell(mean, lo, hi) -> str:
    if fmt_num(mean) == "-":
        return "-"
    if fmt_num(lo) == "-":
        return f"{digits.number(float(mean))} (no CI: n < 2)"
    return digits.estimate(float(mean), float(lo), float(hi))


def rate_cell(k, n, lo, hi) -> str:
    return f"{k}/{n} [{fmt_pct(lo, 0)}, {fmt_pct(hi, 0)}]" if n else "-"


def runs_table(runs: pd.DataFrame, run_link: RunLink) -> str:
    cols = {"format": "format", "optimizer": "optimizer", "seed": "seed", "run": "run", "state": "state",
            "steps": "steps", "final_loss": metric_name("final_loss"), "best_loss": "best loss",
            "bit_stall_final": "bit stall (final)"}
    show = has_settings(runs)
    if show:
        cols = {"format": "format", "optimizer": "optimizer", "setting": "setting", **cols}
    rows = [{
        "format": escape_md(r["format"]), "optimizer": escape_md(r["optimizer"]), **_setting(r, show),
        "seed": fmt_int(r["seed"]), "run": run_link(r), "state": escape_md(r["state"]), "steps": fmt_int(r["steps"]),
        "final_loss": fmt_num(r["final_loss"]), "best_loss": fmt_num(r["best_loss"]),
        "bit_stall_final": fmt_pct(r["bit_stall_final"]),
    } for _, r in runs.iterrows()]
    return table(pd.DataFrame(rows, columns=list(cols)).rename(columns=cols))


def ranking_table(ranked: pd.DataFrame, value_label: str, pct: bool = False) -> str:
    f = (lambda v: fmt_pct(v)) if pct else fmt_num
    show = has_settings(ranked)
    rows = [{"rank": fmt_int(r["rank"]), "format": escape_md(r["format"]),
             **({"optimizer": escape_md(r["optimizer"])} if "optimizer" in ranked else {}),
             **_setting(r, show), "n": str(int(r["n"])),
             f"median {value_label}": f(r["median"]), "min": f(r["min"]), "max": f(r["max"])}
            for _, r in ranked.iterrows()]
    return table(pd.DataFrame(rows))


#: A scorecard row lists its runs' links up to this many runs (else only their count).
MAX_LINKED_RUNS = 8


def run_links(runs: pd.DataFrame, run_link: RunLink) -> dict[str, str]:
    """run_id -> its Markdown link, for tables that cite the runs behind a number.

    The link text is the run id, not the free-text name: short enough for a table cell
    that lists several runs, and the stable id a reader can quote.
    """
    return {str(r["run_id"]): run_link(_named_by_id(r))
            for _, r in runs.iterrows()}


def _named_by_id(r: pd.Series) -> pd.Series:
    r = r.copy()
    r["name"] = r["run_id"]
    return r


def _runs_cell(run_ids: list[str], links: dict[str, str] | None) -> str:
    if not links or len(run_ids) > MAX_LINKED_RUNS:
        return f"{len(run_ids)} runs"
    return ", ".join(links.get(r, escape_md(r)) for r in run_ids)


def scorecard_table(sc: pd.DataFrame, links: dict[str, str] | None = None, baseline: str = "BF16") -> str:
    """The scorecard (analysis.scorecard.scorecard) as Markdown; with ``links`` (run_links)
    each row names the runs behind it."""
    rows = []
    show = has_settings(sc)
    for _, r in sc.iterrows():
        rows.append({
            "format": escape_md(r["format"]), "optimizer": escape_md(r["optimizer"]), **_setting(r, show),
            "n": str(r["n"]),
            "crashed [95% CI]": rate_cell(r["crashes"], r["n"], r["crash_low"], r["crash_high"]),
            f"median {r['metric']} [min, max]": range_cell(r["median"], r["min"], r["max"], r["n_finite"]),
            f"Δ vs {baseline} (median)": fmt_num(r["delta_vs_baseline"]),
            "paired Δ Manifold−AdamW [95% CI]": (ci_cell(r["paired_delta"], r["paired_low"], r["paired_high"])
                                                 + f" (pairs = {r['paired_n']})") if r["paired_n"] else "-",
            "stall": fmt_pct(r["stall_mean"]), "overflow": fmt_pct(r["overflow_mean"], 2),
            "underflow": fmt_pct(r["underflow_mean"], 2),
            **({"runs": _runs_cell(r["run_ids"], links)} if links is not None else {}),
        })
    return table(pd.DataFrame(rows))


WORDING = {"holds": "significant, robust", "fragile": "significant, fragile",
           "consistent": "consistent on every seed, not significant", "excludes_zero": "interval excludes 0",
           "unclear": "no clear difference", "no_spread": "no spread: no test", "single": "one pair: no test",
           "no_pairs": "no pair: every pair lost to a failed run"}


def comparisons_table(f) -> str:
    """Every ManifoldAdamW - AdamW comparison of the findings (analysis/findings.py) as printed:
    effect and interval by the digits rule, seeds each way, the paired effect size, the family's
    Holm-adjusted t p, the exact test (Holm across the same family) and the wording branch."""
    show = any(c.setting for c in f.comparisons)
    rows = []
    for c in f.comparisons:
        r = c.robustness
        n_text = (f"{c.n} pair{'s' if c.n != 1 else ''}" + (f" ({c.lost} lost to failed runs)" if c.lost else "")
                  if c.design == "paired" else f"{c.n} runs, unpaired (Welch)")
        rows.append({
            "format": escape_md(c.format), **({"setting": escape_md(c.setting or "-")} if show else {}),
            "n": n_text, "Δ Manifold − AdamW [95% CI]": c.text, "per-seed Δ": c.deltas_text or "—",
            "seeds Manifold / AdamW better": f"{c.favour} / {c.against}" if c.design == "paired" else "—",
            "d_z (paired)": fmt_sig(c.dz, 2) if c.design == "paired" and c.n >= 3 else "—",
            f"t test, Holm p (family of {f.family.size})": c.p_text if c.in_family else "not in the family",
            "exact test p (Holm)": (f"{r.exact_p_text} ({r.exact_p_holm_text})" if r else "—"),
            "reads": WORDING.get(c.branch, c.branch),
        })
    return table(pd.DataFrame(rows))


def step_range(c: dict) -> str:
    """'50 [40, 60]' for a collapse_summary; '-' when no collapse step is known."""
    return f"{c['median']:g} [{c['min']:g}, {c['max']:g}]" if c["n"] else "-"


def crash_rates_table(rates: list[dict]) -> str:
    show = any(r.get("setting") for r in rates)
    rows = [{"format": escape_md(r["format"]),
             **({"optimizer": escape_md(r["optimizer"])} if "optimizer" in r else {}),
             **_setting(r, show), "failed / runs [95% Clopper-Pearson]":
             rate_cell(r["k"], r["n"], r["low"], r["high"]),
             "detection step median [min, max]": step_range(r["collapse"])}
            for r in rates]
    return table(pd.DataFrame(rows))


def _text(value) -> str | None:
    """A text cell's value, None for a missing one (None, NaN, NA, "")."""
    return value if isinstance(value, str) and value else None


def last_good_cell(r) -> str:
    """'2449 (step 5)': the last finite value of the primary metric before the collapse."""
    value = fmt_num(r.get("last_good_loss"))
    step = fmt_int(r.get("last_good_step"))
    return value if value == "-" or step == "-" else f"{value} (step {step})"


def failures_table(failures: pd.DataFrame, run_link: RunLink, plan: bool = True, history: bool = True) -> str:
    """One row per failed run: the onset step (where the loss left its healthy range) beside the
    detection step; a classification column only when it classifies something (``plan``,
    ``history``); how a stagnation ended."""
    show = has_settings(failures)
    onset = "onset_step" in failures
    stagnation = "stagnation" in failures and bool((failures["stagnation"].fillna("") != "").any())
    rows = [{
        "format": escape_md(r["format"]), "optimizer": escape_md(_text(r["optimizer"]) or "-"), **_setting(r, show),
        "seed": fmt_int(r["seed"]),
        "run": run_link(r) if _text(r.get("run_id")) else escape_md(_text(r.get("report_path")) or "-"),
        **({"onset step": fmt_int(r["onset_step"])} if onset else {}),
        "detection step": fmt_int(r["collapse_step"]), "reason": escape_md(_text(r["reason"]) or "-"),
        "last good loss": last_good_cell(r), "best loss": fmt_num(r.get("best_loss")),
        **({"mode (plan heuristic)": escape_md(r["failure_mode"])} if plan else {}),
        **({"mode (history)": escape_md(_text(r["history_mode"]) or "-")} if history else {}),
        **({"stagnation": escape_md(_text(r["stagnation"]) or "-")} if stagnation else {}),
        "failure report": _report_cell(r, run_link),
    } for _, r in failures.iterrows()]
    return table(pd.DataFrame(rows))


_LINK_TARGET = re.compile(r"\]\(([^)]*)\)$")


def _report_cell(r: pd.Series, run_link: RunLink) -> str:
    """A link to the failure report shown on the run's site page ("none" without a report);
    elsewhere (a standalone report linking W&B, a report of no run) its path in the snapshot."""
    if not _text(r.get("report_path")):
        return "none"
    target = _LINK_TARGET.search(run_link(r)) if _text(r.get("run_id")) else None
    if target is None or not target.group(1).endswith("index.md"):  # a site page shows the report
        return escape_md(r["report_path"])
    return f"[report]({target.group(1)}#failure-report)"


def layer_table(by_type: pd.DataFrame, pct: bool = True) -> str:
    """Mean stall (or another per-layer family's value, ``pct`` False: 3 significant
    digits) per layer type (columns) for each condition (rows); '' when empty."""
    if by_type.empty:
        return ""
    keys = ["format", "optimizer", *(["setting"] if has_settings(by_type) else [])]
    wide = by_type.pivot_table(index=keys, columns="layer_type", values="stall", sort=False)
    show = fmt_pct if pct else fmt_sig
    rows = [{**{k: escape_md(v) for k, v in zip(keys, idx)},
             **{escape_md(t): show(wide.at[idx, t]) for t in wide.columns}} for idx in wide.index]
    return table(pd.DataFrame(rows))


def cells_table(cells: pd.DataFrame) -> str:
    """n per condition, compact: one row per format (and setting), one column per optimizer;
    'k failed' and duplicated seeds noted in the cell."""
    show = has_settings(cells)
    keys = ["format", *(["setting"] if show else [])]
    optimizers = sorted(set(cells["optimizer"]))
    rows = []
    for key, g in cells.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        by_opt = {r["optimizer"]: r for _, r in g.iterrows()}
        rows.append({**{k: escape_md(v) for k, v in zip(keys, key)},
                     **{escape_md(o): _n_cell(by_opt.get(o)) for o in optimizers}})
    return table(pd.DataFrame(rows))


def _n_cell(r) -> str:
    if r is None:
        return "0 (missing)"
    notes = [f"{r['crashed']} failed"] if r["crashed"] else []
    notes += [f"{r['n_duplicates']} duplicate seed{'s' if r['n_duplicates'] != 1 else ''}"] if r["n_duplicates"] else []
    return f"{r['n']}" + (f" ({', '.join(notes)})" if notes else "")


_sig = fmt_measured  # measured values in the compact tables: 3.00, not 3; NaN is "—"

def interval_cell(mean, lo, hi, n: int) -> str:
    """'−0.117 [−0.306, 0.0733]'; a zero-width interval says 'no spread among n pairs' and no
    interval at all (fewer than 2 pairs) 'no interval'."""
    if fmt_num(mean) == "-":
        return "—"
    kind = interval_kind(lo, hi)
    if kind == "zero":
        return f"{_sig(mean)} (no spread among {n} pairs)"
    if kind == "none":
        return f"{_sig(mean)} (no interval: {n} pair{'s' if n != 1 else ''})"
    return digits.estimate(float(mean), float(lo), float(hi))


def primary_table(card: pd.DataFrame, metric_label: str) -> str:
    """The compact table a report leads with: one row per format (and setting), the median of
    the primary metric per optimizer with its n, the paired delta ManifoldAdamW − AdamW with its
    95% t interval and pairs, and k/n failed runs per optimizer. The metric is in the header."""
    if card.empty:
        return ""
    show = has_settings(card)
    keys = ["format", *(["setting"] if show else [])]
    optimizers = [o for o in ("AdamW", "ManifoldAdamW") if o in set(card["optimizer"])]
    optimizers += sorted(set(card["optimizer"].astype(str)) - set(optimizers))
    rows = []
    for key, g in card.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        by_opt = {str(r["optimizer"]): r for _, r in g.iterrows()}
        row = {k: escape_md(v) for k, v in zip(keys, key)}
        for o in optimizers:
            r = by_opt.get(o)
            row[f"{escape_md(o)}: median {metric_label} (n)"] = (
                f"{_sig(r['median'])} ({r['n_finite']})" if r is not None else "—")
        man = by_opt.get("ManifoldAdamW")
        paired = man is not None and man["paired_n"]
        row["Δ Manifold − AdamW [95% CI]"] = (interval_cell(man["paired_delta"], man["paired_low"],
                                                            man["paired_high"], man["paired_n"]) if paired else "—")
        row["pairs"] = str(int(man["paired_n"])) if paired else "0"
        row["failed"] = ", ".join(f"{escape_md(o)} {by_opt[o]['crashes']}/{by_opt[o]['n']}"
                                  for o in optimizers if o in by_opt)
        rows.append(row)
    return table(pd.DataFrame(rows))


def layer_values(layers: pd.DataFrame) -> pd.DataFrame:
    """The numbers of the per-layer heatmaps (``analysis.comparisons.layer_frame``): per family,
    layer type, format, optimizer (and setting, when the runs have several) the mean over runs
    and the number of runs; in the figures' order. Empty (with those columns) when no run
    logged a per-layer metric."""
    from altgrad_docs.analysis.comparisons import LAYER_TYPES
    from altgrad_docs.analysis.layers import family_sort_key
    from altgrad_docs.analysis.scorecard import format_sort_key

    keys = ["family", "layer_type", "format", "optimizer", *(["setting"] if "setting" in layers else [])]
    if layers.empty or "family" not in layers:
        return pd.DataFrame(columns=[*keys, "value", "runs"])
    grouped = layers.astype({k: str for k in keys}).groupby(keys, sort=False)["value"]
    out = grouped.agg(value="mean", runs="count").reset_index()
    order = sorted(range(len(out)), key=lambda i: (
        family_sort_key(out.at[i, "family"]), _type_rank(out.at[i, "layer_type"], LAYER_TYPES),
        format_sort_key(out.at[i, "format"]),
        *(out.at[i, k] for k in keys[3:])))
    return out.iloc[order].reset_index(drop=True)


def _type_rank(layer_type: str, known: tuple[str, ...]) -> tuple[int, str]:
    return (known.index(layer_type) if layer_type in known else len(known), layer_type)
