"""FormatComparator: the original plan's format comparison over the run table.

With several seeds per format every ranking is on a per-format summary (the median over
runs) and carries ``n``; a single number never stands for a format without its n.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from altgrad_docs.formats import BASELINES
from altgrad_docs.runs import layer_type

from . import stats
from .design import design_columns, level_key
from .metrics import final_values
from .scorecard import _num, completed, crashed_mask, ensure_columns, format_sort_key

LAYER_TYPES = ("attention", "mlp", "embedding", "classifier", "other")


class FormatComparator:
    """Rank formats, find the sweet spot and compare against a baseline.

    ``df`` is the run table (columns of ``altgrad_docs.runs.RUN_COLUMNS``). Lower is better
    unless ``higher_is_better`` (the design's primary metric is an f1, accuracy, ...): every
    ranking, sweet spot and improvement follows it; killed and running runs are left out of
    every summary.
    ``factors`` are the design's factors (default: inferred from the runs' configs, see
    analysis/design.py): with factors, every ranking is per format and setting, never pooled
    across the levels of a factor.
    """

    def __init__(self, df: pd.DataFrame, factors: list[str] | None = None, higher_is_better: bool = False):
        self.df, self.factors = design_columns(ensure_columns(df), factors)
        self.higher_is_better = higher_is_better

    def _finished(self) -> pd.DataFrame:
        runs = completed(self.df)
        return runs[~crashed_mask(runs)] if not runs.empty else runs

    def _groups(self, runs: pd.DataFrame, by: list[str]):
        """(key dict, rows) per group of ``by`` (+ setting), in format, optimizer, level order."""
        keys = [*by, "setting"]
        out = []
        for values, g in runs.groupby(keys, sort=False):
            first = g.iloc[0]
            order = (format_sort_key(str(first["format"])), *(str(first[k]) for k in by[1:]),
                     tuple(level_key(first[k]) for k in self.factors))
            out.append((order, {k: first[k] for k in (*by, *self.factors, "setting")}, g))
        return [(key, g) for _, key, g in sorted(out, key=lambda t: t[0])]

    def _ranked(self, metric: str, by: list[str], ascending: bool, finished_only: bool) -> pd.DataFrame:
        runs = self._finished() if finished_only else completed(self.df)
        cols = [*by, *self.factors, *(["setting"] if self.factors else []), "n", "median", "min", "max"]
        rows = []
        if not runs.empty and (metric in runs or "summary_json" in runs):
            runs = runs.assign(**{metric: final_values(runs, metric)})
            for key, g in self._groups(runs, by):
                s = stats.summarize(_num(g[metric]))
                rows.append({**key, "n": s.n, "median": s.median, "min": s.min, "max": s.max})
        out = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
        out = out.sort_values(["median"], ascending=ascending, na_position="last", kind="stable")
        out.insert(0, "rank", out["median"].rank(method="min", ascending=ascending).to_numpy())
        return out.reset_index(drop=True)

    def rank_by_metric(self, metric: str, ascending: bool | None = None, finished_only: bool = True) -> pd.DataFrame:
        """Formats ranked by the median of ``metric`` (finished runs unless told otherwise),
        both optimizers together (the plan's ranking; :meth:`rank_conditions` splits them).

        Columns: rank, format, (the factor columns and setting, when the design has factors:
        one row per format and setting), n (runs with a finite value), median, min, max.
        Rows without any finite value come last with rank NaN. ``ascending`` None: best
        first by the comparator's direction.
        """
        return self._ranked(metric, ["format"], self._ascending(ascending), finished_only)

    def rank_conditions(self, metric: str, ascending: bool | None = None, finished_only: bool = True) -> pd.DataFrame:
        """Conditions (format x optimizer x setting) ranked by the median of ``metric``, best first."""
        return self._ranked(metric, ["format", "optimizer"], self._ascending(ascending), finished_only)

    def _ascending(self, ascending: bool | None) -> bool:
        return (not self.higher_is_better) if ascending is None else ascending

    def sweet_spot_condition(self, metric: str = "final_loss", exclude_crashed: bool = True,
                             include_baselines: bool = False) -> dict | None:
        """The condition with the best (lowest, or highest when ``higher_is_better``) median
        ``metric`` (its rank row as a dict), or None.

        Baselines (BF16/FP16/FP32) are references, not candidates, unless asked for."""
        ranked = self.rank_conditions(metric, None, finished_only=exclude_crashed)
        if not include_baselines:
            ranked = ranked[~ranked["format"].isin(BASELINES)]
        ranked = ranked[ranked["n"] > 0]
        if not len(ranked):
            return None
        row = ranked.iloc[0].to_dict()
        row["setting"] = row.get("setting", "")
        return {**row, "metric": metric}

    def identify_sweet_spot(self, exclude_crashed: bool = True, include_baselines: bool = False,
                            metric: str = "final_loss") -> str:
        """The format of the condition (format x optimizer x setting) with the lowest median
        ``metric``; "" when no condition has one. See :meth:`sweet_spot_condition`.

        Crashed runs are left out (default) or kept (their final loss is usually NaN and
        then does not count either). Baselines (BF16/FP16/FP32) are references, not candidates.
        """
        spot = self.sweet_spot_condition(metric, exclude_crashed, include_baselines)
        return str(spot["format"]) if spot else ""

    def compute_improvement(self, baseline_format: str, test_format: str, metric: str = "final_loss",
                            setting: str | None = None) -> float:
        """Percent by which test_format's median is better than baseline_format's:
        100 * (base - test) / |base| (lower is better), 100 * (test - base) / |base| when
        ``higher_is_better``. Positive = better. NaN when either is missing.
        With several settings, ``setting`` says which (never pooled)."""
        ranked = self.rank_by_metric(metric)
        if self.factors:
            settings = sorted(set(ranked["setting"]))
            if setting is None and len(settings) > 1:
                raise ValueError(f"the runs have {len(settings)} settings ({'; '.join(settings)}) "
                                 "--> Do: pass setting=... to compare within one.")
            ranked = ranked[ranked["setting"] == (setting if setting is not None else settings[0])]
        ranked = ranked.set_index("format")["median"]
        base, test = ranked.get(baseline_format, math.nan), ranked.get(test_format, math.nan)
        if not (np.isfinite(base) and np.isfinite(test)) or base == 0:
            return math.nan
        gain = (test - base) if self.higher_is_better else (base - test)
        return float(100.0 * gain / abs(base))

    def compare_by_layer_type(self, layer_metrics_df: pd.DataFrame) -> pd.DataFrame:
        """Mean of every numeric metric per layer type (attention/mlp/embedding/classifier/other).

        ``layer_metrics_df`` has a ``layer`` column of parameter names (or a ``layer_type``
        column already) and numeric metric columns; ``format`` and ``optimizer`` columns, when
        present, are kept as grouping keys. ``n_layers`` counts the rows behind each mean.
        """
        df = layer_metrics_df.copy()
        if "layer_type" not in df:
            if "layer" not in df:
                raise ValueError("compare_by_layer_type needs a 'layer' (parameter name) or "
                                 "'layer_type' column --> Do: pass one row per layer.")
            df["layer_type"] = [layer_type(str(n)) for n in df["layer"]]
        keys = [k for k in ("format", "optimizer", "setting") if k in df] + ["layer_type"]
        metrics = [c for c in df.columns if c not in keys and c != "layer"
                   and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if df.empty:
            return pd.DataFrame(columns=keys + metrics + ["n_layers"])
        grouped = df.groupby(keys, sort=False)
        out = grouped[metrics].mean()
        out["n_layers"] = grouped.size()
        out = out.reset_index()
        order = {t: i for i, t in enumerate(LAYER_TYPES)}
        sort_cols = [c for c in ("format", "optimizer", "setting") if c in out]
        out["_f"] = [format_sort_key(f) for f in out["format"]] if "format" in out else 0
        out["_t"] = out["layer_type"].map(order)
        out = out.sort_values(["_f", *[c for c in sort_cols if c != "format"], "_t"], kind="stable")
        return out.drop(columns=["_f", "_t"]).reset_index(drop=True)


LAYER_COLUMNS = ["family", "layer_type", "value"]


def layer_frame(traces: dict, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run, per-layer family (Trace.layers: grad_norm_l2, stall, ...) and layer
    type with the mean over training. Empty when no run logged a per-layer metric; a family
    no run logged has no row."""
    rows = []
    keys = ["format", "optimizer", *(["setting"] if "setting" in runs else [])]
    meta = runs.set_index(runs["run_id"].astype(str))[keys] if not runs.empty else None
    known = {str(r): {k: str(v) for k, v in zip(keys, vals)}
             for r, *vals in zip(meta.index, *(meta[k] for k in keys))} if meta is not None else {}
    for run_id, trace in traces.items():
        if run_id not in known:
            continue
        families = getattr(trace, "layers", None) or ({"stall": trace.layer_stall} if trace.layer_stall else {})
        for family, by_type in families.items():
            for ltype, value in by_type.items():
                rows.append({**known[run_id], "run_id": run_id, "family": family, "layer_type": ltype, "value": value})
    return pd.DataFrame(rows, columns=[*keys, "run_id", *LAYER_COLUMNS])


def layer_stall_frame(traces: dict, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and layer type with its mean stall ratio (the ``stall`` family of
    :func:`layer_frame`), ready for compare_by_layer_type. Empty when no run logged it."""
    frame = layer_frame(traces, runs)
    frame = frame[(frame["family"] == "stall").to_numpy()].drop(columns="family")
    return frame.rename(columns={"value": "stall"}).reset_index(drop=True)
