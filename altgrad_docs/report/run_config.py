"""What the runs' own config says about how they trained, for the sentences that describe it.

The report pages describe the optimizers and the weight storage by the config the trainer
wrote, never by the hypothesis behind them: whether updates smaller than half a grid step are
lost (no master copy) or only deferred (an FP32 master copy keeps them) is a fact of the runs,
known only where their config records it (the bench writes ``weight_storage`` and
``use_fp32_master``). Unknown is said as unknown: the templates then say nothing about it.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

#: Config keys that record whether a run kept FP32 master weights, and how to read them.
STORAGE_KEYS = ("weight_storage", "use_fp32_master")
FP32_MASTER, QUANTIZED, MIXED = "fp32_master", "quantized", "mixed"
#: Keys that identify or time a run; never "a difference between the optimizers".
_NOT_SETTINGS = {"optimizer", "run_name", "checkpoint_dir", "launch_time", "seed", "name", "run_id"}


def _follows_identity(key: str) -> bool:
    """Keys that follow a run's identity (its tags, names, paths, bookkeeping: the design's
    BOOKKEEPING and IDENTITY rules) describe the run, never an optimizer."""
    from altgrad_docs.analysis.design_keys import BOOKKEEPING, IDENTITY

    return key in _NOT_SETTINGS or key in BOOKKEEPING or bool(IDENTITY.search(key))


def _configs(df: pd.DataFrame) -> list[dict[str, Any]]:
    if "config_json" not in df:
        return []
    out = []
    for text in df["config_json"].fillna(""):
        try:
            value = json.loads(text) if text else {}
        except (TypeError, json.JSONDecodeError):
            value = {}
        out.append(value if isinstance(value, dict) else {})
    return out


def _storage_of(cfg: dict[str, Any]) -> str:
    """fp32_master | quantized | '' (not recorded) for one run's config."""
    value = cfg.get("weight_storage")
    if isinstance(value, str) and value in (FP32_MASTER, QUANTIZED):
        return value
    master = cfg.get("use_fp32_master")
    if isinstance(master, bool):
        return FP32_MASTER if master else QUANTIZED
    return ""


def weight_storage(df: pd.DataFrame | None) -> dict[str, Any]:
    """How the runs stored their weights: ``kind`` is fp32_master or quantized when every run
    records the same, mixed when they record both, "" when any run does not record it;
    ``n`` runs, ``counts`` per kind."""
    configs = _configs(df) if df is not None else []
    kinds = [_storage_of(c) for c in configs]
    counts = {k: kinds.count(k) for k in (FP32_MASTER, QUANTIZED) if k in kinds}
    if not kinds or "" in kinds:
        kind = ""
    else:
        kind = next(iter(counts)) if len(counts) == 1 else MIXED
    return {"kind": kind, "n": len(kinds), "counts": counts}


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def optimizer_differences(df: pd.DataFrame | None, follows: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Config keys whose values tell the optimizers' runs apart *within a format* (formats run
    under both AdamW and ManifoldAdamW only, so a baseline run under one optimizer alone tells
    nothing): keys where no AdamW run of the format shares a value with any of its ManifoldAdamW
    runs, each with the values its AdamW and ManifoldAdamW runs have (sorted, as text) in every
    format run under both (a value shared in one format is kept: ManifoldAdamW's
    manifold_mantissa_bits of E5M2 may equal AdamW's), and ``formats``, the formats where the
    key tells the optimizers apart (all of them: ``everywhere``). Keys that follow a run's
    identity (tags, names, paths, bookkeeping), or ``follows`` (keys that follow the format),
    are left out. ``known`` is False when the runs carry no config."""
    configs = _configs(df) if df is not None else []
    if not any(configs) or "optimizer" not in df or "format" not in df:
        return {"known": False, "differ": []}
    values: dict[str, dict[str, dict[str, set[str]]]] = {}  # format -> optimizer -> key -> values
    for fmt, opt, cfg in zip(df["format"].astype(str), df["optimizer"].astype(str), configs):
        by_key = values.setdefault(fmt, {}).setdefault(opt, {})
        for k, v in cfg.items():
            by_key.setdefault(k, set()).add(_text(v))
    both = {f: v for f, v in values.items() if "AdamW" in v and "ManifoldAdamW" in v}
    apart: dict[str, list[str]] = {}
    for fmt, arms in sorted(both.items()):
        std, man = arms["AdamW"], arms["ManifoldAdamW"]
        for k in sorted(set(std) | set(man)):
            if _follows_identity(k) or k in follows or std.get(k, {"(not set)"}) & man.get(k, {"(not set)"}):
                continue  # a value both optimizers' runs share (bookkeeping, a sweep) tells nothing apart
            apart.setdefault(k, []).append(fmt)
    differ = []
    for k, fmts in sorted(apart.items()):
        adamw = set().union(*(arms["AdamW"].get(k, {"(not set)"}) for arms in both.values()))
        manifold = set().union(*(arms["ManifoldAdamW"].get(k, {"(not set)"}) for arms in both.values()))
        differ.append({"key": k, "adamw": sorted(adamw), "manifold": sorted(manifold), "formats": fmts,
                       "everywhere": len(fmts) == len(both)})
    return {"known": bool(both), "differ": differ}
