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
from .scorecard import _num, completed, crashed_mask, ensure_columns, format_sort_key, sorted_formats

LAYER_TYPES = ("attention", "mlp", "embedding", "classifier", "other")


class FormatComparator:
    """Rank formats, find the sweet spot and compare against a baseline.

    ``df`` is the run table (columns of ``altgrad_docs.runs.RUN_COLUMNS``). Lower is better
    for every loss metric; killed and running runs are left out of every summary.
    """

    def __init__(self, df: pd.DataFrame):
        self.df = ensure_columns(df)

    def _finished(self) -> pd.DataFrame:
        runs = completed(self.df)
        return runs[~crashed_mask(runs)] if not runs.empty else runs

    def rank_by_metric(self, metric: str, ascending: bool = True, finished_only: bool = True) -> pd.DataFrame:
        """Formats ranked by the median of ``metric`` (finished runs unless told otherwise).

        Columns: rank, format, n (runs with a finite value), median, min, max. Formats
        without any finite value come last with rank NaN.
        """
        runs = self._finished() if finished_only else completed(self.df)
        rows = []
        for fmt in sorted_formats(runs["format"]) if not runs.empty and metric in runs else []:
            sel = (runs["format"].astype("string") == fmt).fillna(False).to_numpy()
            s = stats.summarize(_num(runs.loc[sel, metric]))
            rows.append({"format": fmt, "n": s.n, "median": s.median, "min": s.min, "max": s.max})
        out = pd.DataFrame(rows, columns=["format", "n", "median", "min", "max"])
        out = out.sort_values(["median"], ascending=ascending, na_position="last", kind="stable")
        out.insert(0, "rank", out["median"].rank(method="min", ascending=ascending).to_numpy())
        return out.reset_index(drop=True)

    def identify_sweet_spot(self, exclude_crashed: bool = True, include_baselines: bool = False) -> str:
        """The 8-bit format with the lowest median final_loss; "" when no format has one.

        Crashed runs are left out (default) or kept (their final loss is usually NaN and
        then does not count either). Baselines (BF16/FP16/FP32) are references, not candidates.
        """
        ranked = self.rank_by_metric("final_loss", True, finished_only=exclude_crashed)
        if not include_baselines:
            ranked = ranked[~ranked["format"].isin(BASELINES)]
        ranked = ranked[ranked["n"] > 0]
        return str(ranked.iloc[0]["format"]) if len(ranked) else ""

    def compute_improvement(self, baseline_format: str, test_format: str, metric: str = "final_loss") -> float:
        """Percent by which test_format's median is lower than baseline_format's:
        100 * (base - test) / |base|. Positive = better for a loss. NaN when either is missing."""
        ranked = self.rank_by_metric(metric).set_index("format")["median"]
        base, test = ranked.get(baseline_format, math.nan), ranked.get(test_format, math.nan)
        if not (np.isfinite(base) and np.isfinite(test)) or base == 0:
            return math.nan
        return float(100.0 * (base - test) / abs(base))

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
        keys = [k for k in ("format", "optimizer") if k in df] + ["layer_type"]
        metrics = [c for c in df.columns if c not in keys and c != "layer"
                   and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if df.empty:
            return pd.DataFrame(columns=keys + metrics + ["n_layers"])
        grouped = df.groupby(keys, sort=False)
        out = grouped[metrics].mean()
        out["n_layers"] = grouped.size()
        out = out.reset_index()
        order = {t: i for i, t in enumerate(LAYER_TYPES)}
        sort_cols = [c for c in ("format", "optimizer") if c in out]
        out["_f"] = [format_sort_key(f) for f in out["format"]] if "format" in out else 0
        out["_t"] = out["layer_type"].map(order)
        out = out.sort_values(["_f", *[c for c in sort_cols if c != "format"], "_t"], kind="stable")
        return out.drop(columns=["_f", "_t"]).reset_index(drop=True)


def layer_stall_frame(traces: dict, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and layer type with its mean stall ratio (from Trace.layer_stall),
    ready for compare_by_layer_type. Empty when no run logged per-layer stall."""
    rows = []
    meta = runs.set_index("run_id")[["format", "optimizer"]] if not runs.empty else None
    for run_id, trace in traces.items():
        if meta is None or run_id not in meta.index:
            continue
        for ltype, value in trace.layer_stall.items():
            rows.append({"format": str(meta.at[run_id, "format"]), "optimizer": str(meta.at[run_id, "optimizer"]),
                         "run_id": run_id, "layer_type": ltype, "stall": value})
    return pd.DataFrame(rows, columns=["format", "optimizer", "run_id", "layer_type", "stall"])
