"""Tables per condition (format x optimizer) from the run table: the scorecard and the
paired manifold-aware vs AdamW comparison. Numbers only; formatting lives in the report.

Runs that were killed or are still running are not part of any condition. A run counts as
crashed when its state is crashed/failed (status "failed") or when it finished with a
non-finite final loss. Crashed runs are counted, never dropped, and never averaged in.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from altgrad_docs.formats import BASELINES, FORMATS
from altgrad_docs.runs import STATUS_OF_STATE

from . import stats
from .design import design_columns, level_key, paired_seeds
from .metrics import final_values

MANIFOLD, STANDARD = "ManifoldAdamW", "AdamW"
#: Order of formats in every table: the FP8 registry (E0M7 .. E7M0), then the baselines.
FORMAT_ORDER = tuple(FORMATS) + BASELINES


def format_sort_key(name: str) -> tuple[int, str]:
    return (FORMAT_ORDER.index(name) if name in FORMAT_ORDER else len(FORMAT_ORDER), str(name))


def sorted_formats(names) -> list[str]:
    return sorted({str(n) for n in names}, key=format_sort_key)


def default_metric(df: pd.DataFrame) -> str:
    """final_val_loss when every finished, non-crashed run logged a finite one, else final_loss
    (train). A run that failed before its first evaluation has no val_loss: it counts as a
    failure and does not change the metric."""
    from .design import choose_metric

    runs = completed(df)
    if runs.empty or "final_val_loss" not in df:
        return "final_loss"
    return choose_metric(runs, runs["status"].astype("string").fillna(""), crashed_mask(runs))


def _num(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()


#: Columns the analysis reads, with the value a narrower frame gets when it lacks them.
_DEFAULTS = {"format": "unknown", "seed": math.nan, "run_url": "", "final_loss": math.nan,
             "final_val_loss": math.nan, "best_loss": math.nan, "bit_stall_final": math.nan,
             "overflow_final": math.nan, "underflow_final": math.nan, "bit_stall_threshold": 0.5,
             "overflow_threshold": 0.01}


def ensure_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column the analysis reads: derived where possible (status from
    state, optimizer from manifold_aware, name from run_id), else the contract's default.
    So the plan's narrower frames (get_manifold_comparison_runs has no status) work too."""
    missing = [c for c in ("run_id", "status", "optimizer", "name", *_DEFAULTS) if c not in df]
    if not missing:
        return df
    out = df.copy()
    if "run_id" not in out:
        out["run_id"] = [f"row{i}" for i in range(len(out))]
    if "status" not in out:
        state = out["state"].astype("string") if "state" in out else pd.Series("finished", index=out.index)
        out["status"] = state.map(lambda s: STATUS_OF_STATE.get(str(s), str(s)))
    if "optimizer" not in out:
        manifold = out["manifold_aware"].fillna(False).astype(bool) if "manifold_aware" in out else False
        out["optimizer"] = np.where(manifold, MANIFOLD, STANDARD)
    if "name" not in out:
        out["name"] = out["run_id"].astype(str)
    for col, default in _DEFAULTS.items():
        if col not in out:
            out[col] = default
    return out


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Finished and failed runs (the ones conditions are made of)."""
    df = ensure_columns(df)
    if df.empty:
        return df.iloc[0:0]
    return df[df["status"].astype("string").isin(["finished", "failed"]).fillna(False).to_numpy()]


def crashed_mask(df: pd.DataFrame) -> np.ndarray:
    """Failed runs: status "failed" (decided from every signal: analysis/status.py), or
    finished with a non-finite final loss, when ``loss`` is the run's primary metric (a run
    table that says another key is, e.g. ``train/loss``, has no ``loss`` to judge by; a table
    without that column reads the train loss by meaning: metrics.final_values)."""
    status = df["status"].astype("string").fillna("").to_numpy()
    judged = np.ones(len(df), dtype=bool)
    if "primary_metric" in df:
        metric = df["primary_metric"].astype("string").fillna("").to_numpy()
        judged = (metric == "loss") | (metric == "")
    return (status == "failed") | ((status == "finished") & judged & ~np.isfinite(final_values(df, "final_loss")))


def _mean(values: pd.Series) -> float:
    return stats.mean(values.to_numpy())


def condition_frame(df: pd.DataFrame, metric: str, factors: list[str] | None = None) -> pd.DataFrame:
    """One slim row per completed run: run_id, format, optimizer, setting, seed, crashed, value
    (the metric, NaN when crashed), the final stall/overflow/underflow rates, then the factor
    columns. ``attrs["factors"]`` names them (``factors`` None: inferred from the runs)."""
    df, names = design_columns(df, factors)
    runs = completed(df)
    crashed = crashed_mask(runs)
    out = pd.DataFrame({
        "run_id": runs["run_id"].astype(str).to_numpy(), "format": runs["format"].astype(str).to_numpy(),
        "optimizer": runs["optimizer"].astype(str).to_numpy(), "setting": runs["setting"].astype(str).to_numpy(),
        "seed": _num(runs["seed"]), "crashed": crashed,
        "value": np.where(crashed, np.nan, final_values(runs, metric)), "stall": _num(runs["bit_stall_final"]),
        "overflow": _num(runs["overflow_final"]), "underflow": _num(runs["underflow_final"]),
        **{k: runs[k].to_numpy() for k in names},
    })
    out.attrs["factors"] = names
    return out


def _in(cond: pd.DataFrame, fmt: str, setting: str | None) -> pd.DataFrame:
    """The rows of one format in one setting (``setting`` None: the format's only setting)."""
    sub = cond[(cond["format"] == fmt).to_numpy()]
    if setting is None:
        settings = sorted(set(sub["setting"]))
        if len(settings) > 1:
            raise ValueError(f"format {fmt} was run in {len(settings)} settings ({'; '.join(settings)}): "
                             "pooling them would mix the levels of a factor --> Do: pass setting=...")
        return sub
    return sub[(sub["setting"] == setting).to_numpy()]


def paired_values(cond: pd.DataFrame, fmt: str, setting: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(manifold, adamw, seeds): per-seed metric of both optimizers of one format in one setting
    (``cond`` = condition_frame).

    Runs are paired by seed. A seed that one optimizer ran more than once in this condition is
    a duplicate: left out of the pairs (and counted by the design), never medianed. Seeds where
    only one optimizer ran are left out; crashed runs give NaN and are dropped by the
    statistics (their count shows in the crash column)."""
    frame = _in(cond, fmt, setting)
    seeds, _ = paired_seeds(frame)
    if not seeds:
        return np.array([]), np.array([]), []
    frame = frame[np.isin(frame["seed"].to_numpy(), seeds)]
    wide = frame.pivot(index="seed", columns="optimizer", values="value").sort_index()
    return wide[MANIFOLD].to_numpy(), wide[STANDARD].to_numpy(), [int(s) for s in wide.index]


def arm_values(cond: pd.DataFrame, fmt: str, setting: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(manifold, adamw): the metric of every completed run of one format (and setting), crashed = NaN."""
    sub = _in(cond, fmt, setting)
    values, opt = sub["value"].to_numpy(), sub["optimizer"].to_numpy()
    return values[opt == MANIFOLD], values[opt == STANDARD]


def settings_of(cond: pd.DataFrame) -> list[str]:
    """The settings of a condition frame in factor-level order ("" only, without factors)."""
    names = cond.attrs.get("factors", [])
    first = cond.drop_duplicates("setting")
    keys = {r["setting"]: tuple(level_key(r[k]) for k in names) for _, r in first.iterrows()}
    return sorted(keys, key=lambda s: (keys[s], s))


def seeded(df: pd.DataFrame) -> bool:
    """Every run of the frame has a seed, so runs can be paired by seed (the rule of
    ``Design.seeded``; a trainer that logs no seed gives False)."""
    return bool(len(df) == 0 or pd.Series(_num(df["seed"])).notna().all()) if "seed" in df else False


def manifold_comparison(df: pd.DataFrame, metric: str | None = None,
                        factors: list[str] | None = None, paired: bool | None = None,
                        higher_is_better: bool = False) -> pd.DataFrame:
    """Per format and setting with runs of both optimizers: ManifoldAdamW - AdamW with a 95% t
    interval, Hedges' g, P(improvement), the exact test or "too few seeds to test", and
    Holm-adjusted p across all rows (formats x settings). Paired by seed within the setting
    (design "paired") when >= 2 seeds have both optimizers once; else Welch's interval over all
    runs of the setting (design "unpaired"). Nothing is pooled across the levels of a factor.
    ``paired`` is the design's choice (``Design.paired``); None: every completed run has a seed
    (:func:`seeded`). Unpaired, every row is Welch's, with no pairs looked for.
    The delta is always ManifoldAdamW minus AdamW in the metric's own units; P(improvement)
    is the chance that a ManifoldAdamW run is better: lower, or higher when ``higher_is_better``."""
    metric = metric or default_metric(df)
    cond = condition_frame(df, metric, factors)
    names = cond.attrs["factors"]
    paired = seeded(cond) if paired is None else paired
    rows = []
    for fmt in sorted_formats(cond["format"]):
        for setting in settings_of(cond[(cond["format"] == fmt).to_numpy()]):
            rows.extend(_paired_row(cond, fmt, setting, metric, names, paired, higher_is_better))
    out = pd.DataFrame(rows, columns=["format", *names, "setting", "metric", "design", "seeds", "n_manifold",
                                      "n_adamw", "n_pairs", "mean_delta", "ci_low", "ci_high", "hedges_g",
                                      "p_improve", "test", "p", "status", "t_p", "deltas", "duplicated_seeds"])
    out["p_holm"] = stats.holm(out["p"].tolist()) if len(out) else []
    return out


def _paired_row(cond: pd.DataFrame, fmt: str, setting: str, metric: str, names: list[str],
                paired: bool = True, higher_is_better: bool = False) -> list[dict]:
    man_all, std_all = arm_values(cond, fmt, setting)
    if not len(man_all) or not len(std_all):
        return []
    sub = _in(cond, fmt, setting)
    if paired:
        man, std, seeds = paired_values(cond, fmt, setting)
        d, design = stats.paired_delta(man, std), "paired"
    else:  # no seeds: nothing to pair, every run of each arm counts
        man, std, seeds = np.array([]), np.array([]), []
        d, design = stats.welch_delta(man_all, std_all), "unpaired"
    if paired and d.n < 2 and len(stats.finite(man_all)) >= 2 and len(stats.finite(std_all)) >= 2:
        d, design = stats.welch_delta(man_all, std_all), "unpaired"
    return [{
        "format": fmt, **{k: sub.iloc[0][k] for k in names}, "setting": setting, "metric": metric,
        "design": design, "seeds": seeds,
        "n_manifold": len(stats.finite(man_all)), "n_adamw": len(stats.finite(std_all)),
        "n_pairs": d.n if design == "paired" else 0, "mean_delta": d.mean, "ci_low": d.low, "ci_high": d.high,
        "hedges_g": stats.hedges_g(man_all, std_all), "p_improve": (stats.prob_improvement(std_all, man_all) if higher_is_better
                                                            else stats.prob_improvement(man_all, std_all)),
        "test": d.exact_test, "p": d.exact_p, "status": d.status, "t_p": d.t_p,
        "deltas": (man - std).tolist() if design == "paired" else [],
        "duplicated_seeds": paired_seeds(sub)[1] if paired else [],
    }]


def scorecard(df: pd.DataFrame, metric: str | None = None, baseline: str = "BF16",
              paired: pd.DataFrame | None = None, factors: list[str] | None = None,
              higher_is_better: bool = False) -> pd.DataFrame:
    """One row per condition (format x optimizer x setting): n, crashes (Clopper-Pearson),
    median [min, max] of the metric over finished runs, median delta vs the baseline format of
    the same setting (same optimizer when it has runs, else any), the paired delta (on the
    ManifoldAdamW row), and mean final stall / overflow / underflow rates. ``paired`` =
    manifold_comparison(df, metric, factors), when the caller has it already."""
    metric = metric or default_metric(df)
    cond = condition_frame(df, metric, factors)
    names = cond.attrs["factors"]
    cols = ["format", "optimizer", *names, "setting", "metric", "n", "crashes", "crash_low", "crash_high",
            "n_finite", "median", "min", "max", "delta_vs_baseline", "paired_n", "paired_delta", "paired_low",
            "paired_high", "p_improve", "stall_mean", "overflow_mean", "underflow_mean", "run_ids"]
    if cond.empty:
        return pd.DataFrame(columns=cols)
    paired = paired if paired is not None else manifold_comparison(df, metric, names, higher_is_better=higher_is_better)
    paired = paired.set_index(["format", "setting"])
    rows = []
    for (fmt, opt, setting), grp in cond.groupby(["format", "optimizer", "setting"], sort=False):
        summ = stats.summarize(grp["value"])
        rate = stats.crash_rate(int(grp["crashed"].sum()), len(grp))
        base_runs = cond[((cond["format"] == baseline) & (cond["setting"] == setting)).to_numpy()]
        base = base_runs[(base_runs["optimizer"] == opt).to_numpy()]
        base_median = stats.summarize((base if len(base) else base_runs)["value"]).median
        key = (fmt, setting)
        pr = paired.loc[key] if (opt == MANIFOLD and key in paired.index
                                 and paired.at[key, "design"] == "paired") else None
        rows.append({
            "format": fmt, "optimizer": opt, **{k: grp.iloc[0][k] for k in names}, "setting": setting,
            "metric": metric, "n": len(grp), "crashes": rate.k,
            "crash_low": rate.low, "crash_high": rate.high, "n_finite": summ.n,
            "median": summ.median, "min": summ.min, "max": summ.max,
            "delta_vs_baseline": summ.median - base_median if fmt != baseline else math.nan,
            "paired_n": int(pr["n_pairs"]) if pr is not None else 0,
            "paired_delta": pr["mean_delta"] if pr is not None else math.nan,
            "paired_low": pr["ci_low"] if pr is not None else math.nan,
            "paired_high": pr["ci_high"] if pr is not None else math.nan,
            "p_improve": pr["p_improve"] if pr is not None else math.nan,
            "stall_mean": _mean(grp["stall"]), "overflow_mean": _mean(grp["overflow"]),
            "underflow_mean": _mean(grp["underflow"]), "run_ids": sorted(grp["run_id"]),
        })
    out = pd.DataFrame(rows, columns=cols)
    rank = {s: i for i, s in enumerate(settings_of(cond))}
    order = sorted(range(len(out)), key=lambda i: (format_sort_key(out.at[i, "format"]), out.at[i, "optimizer"],
                                                   rank[out.at[i, "setting"]]))
    return out.iloc[order].reset_index(drop=True)
