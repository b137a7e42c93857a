"""What a run page shows above its charts, as plain data: the run's place in the design
(paired run, sibling seeds, its condition in the report), its config split into what
defines the condition and the rest, its summary without W&B's own keys and with units,
and the final and best value of each key metric (from the chart's data file).

Everything here is a pure function of the design's run table, a run's config/summary and
its chart data; templates/pages/run.md renders it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..report.markdown import setting_slug

#: Summary keys W&B writes for itself (``_timestamp``, ``_runtime``, ``_step``, ``_wandb``).
INTERNAL_PREFIX = "_"
#: Units of the summary and metric keys (the last path part: quantization/overflow_rate ->
#: overflow_rate). Rates are fractions of the values quantised in a step.
UNITS = {
    "loss": "nats", "val_loss": "nats", "train_loss": "nats", "best_loss": "nats", "ppl": "perplexity",
    "grad_norm": "L2 norm", "learning_rate": "per step, at the last logged step (schedule)",
    "lr": "per step, at the last logged step (schedule)",
    "bit_stall_rate": "fraction", "overflow_rate": "fraction", "underflow_rate": "fraction",
    "tok/s": "tokens/s", "tokens_per_sec": "tokens/s", "step_time": "s", "epoch": "epochs",
}
#: Chart series -> (label, lower is better): which get a "best" value in the overview.
KEY_METRICS = {"loss": ("train loss", True), "val_loss": ("validation loss", True),
               "grad_norm": ("gradient norm", None), "bit_stall_rate": ("bit-stall rate", None),
               "overflow_rate": ("overflow rate", None), "underflow_rate": ("underflow rate", None)}


def unit(key: str) -> str:
    return UNITS.get(key.rsplit("/", 1)[-1], "")


def clean_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary without W&B's internal keys (``_timestamp``, ``_runtime``, ``_wandb``...)."""
    return {k: v for k, v in summary.items() if not str(k).startswith(INTERNAL_PREFIX)}


@dataclass
class Relations:
    """A run's neighbours in the design: ``pair``: same format, setting and seed under the
    other optimizer(s); ``siblings``: the other seeds of its condition; ``anchor``: the id of
    its setting's section on the Format comparison page."""

    format: str = ""
    optimizer: str = ""
    setting: str = ""
    seed: Any = None
    included: bool = True
    reason: str = ""
    pair: list[dict[str, Any]] = field(default_factory=list)
    siblings: list[dict[str, Any]] = field(default_factory=list)
    anchor: str = "results"


def relations(design_runs: pd.DataFrame | None, settings: list[str] | None = None) -> dict[str, Relations]:
    """run_id -> :class:`Relations` for every run of the design's run table. ``settings``: the
    design's settings; with more than one, each has a section of its own on the Format
    comparison page. Plain Python over each (format, setting) group's rows: a DataFrame
    filter per run cost ~2.5 ms, a quarter of a second of every 100-run build."""
    if design_runs is None or design_runs.empty:
        return {}
    runs = design_runs.assign(
        run_id=design_runs["run_id"].astype(str),
        setting=design_runs["setting"].astype("string").fillna("") if "setting" in design_runs else "",
        name=design_runs["name"].astype("string").fillna("") if "name" in design_runs else "")
    sectioned = len(settings or []) > 1
    out: dict[str, Relations] = {}
    for (fmt, setting), group in runs.groupby(["format", "setting"], sort=False, dropna=False):
        rows = list(group.itertuples())
        brief = {r.run_id: {"run_id": r.run_id, "name": r.name or r.run_id, "optimizer": str(r.optimizer),
                            "seed": r.seed, "state": str(r.state)} for r in rows}
        for r in rows:
            pair = [o for o in rows if _equal(o.seed, r.seed) and not _equal(o.optimizer, r.optimizer)]
            siblings = [o for o in rows if _equal(o.optimizer, r.optimizer) and o.run_id != r.run_id]
            out[r.run_id] = Relations(
                format=str(fmt), optimizer=str(r.optimizer), setting=str(setting), seed=r.seed,
                included=bool(getattr(r, "included", True)), reason=str(getattr(r, "reason", "") or ""),
                pair=[brief[o.run_id] for o in pair],
                siblings=[brief[o.run_id] for o in sorted(siblings, key=_seed_order)],
                anchor=f"setting-{setting_slug(str(setting))}" if sectioned and setting else "results")
    return out


def _equal(a: Any, b: Any) -> bool:
    """``a == b`` as a DataFrame compares cells: a missing value equals nothing."""
    return not (_missing(a) or _missing(b)) and bool(a == b)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _seed_order(row: Any) -> tuple[bool, Any]:
    """Seeds ascending, runs without one last (as ``sort_values``)."""
    return (_missing(row.seed), 0 if _missing(row.seed) else row.seed)


@dataclass(frozen=True)
class ConfigKeys:
    """Which config keys define a condition (the keys that name the format and optimizer, the
    seed, the design's factors and every key that follows one of them) and which are
    bookkeeping (identity, bookkeeping and ignored keys of the design)."""

    defining: frozenset[str] = frozenset()
    bookkeeping: frozenset[str] = frozenset()

    @classmethod
    def of(cls, design: Any) -> ConfigKeys:
        """From an ``analysis.design.Design`` (None: nothing known, one table)."""
        if design is None:
            return cls()
        from ..analysis.design_keys import DEFINING, SEED

        return cls(DEFINING | {SEED} | frozenset(design.factors) | frozenset(design.follows),
                   frozenset(design.identity) | frozenset(design.bookkeeping) | frozenset(design.ignored))


def split_config(config: Mapping[str, Any], keys: ConfigKeys) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(condition, rest, bookkeeping): the keys that define the run's condition, the other
    settings, and the bookkeeping (names, paths, ids, timestamps, W&B's own keys)."""
    defining, books = keys.defining, keys.bookkeeping
    condition, rest, kept = {}, {}, {}
    for key in sorted(config):
        value = config[key]
        if key in defining:
            condition[key] = value
        elif key in books or str(key).startswith(INTERNAL_PREFIX):
            kept[key] = value
        else:
            rest[key] = value
    return condition, rest, kept


def key_metrics(chart: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Final (last finite) and best (lowest, for a loss) value of each key series of a run
    chart's data (runchart.chart_data; its MinMaxLTTB points keep every bucket's extremes,
    so the lowest point is the run's lowest value), with the step of each. The first of
    equal lowest values is the best."""
    out = []
    for panel in chart.get("panels", []):
        xs = panel["x"]
        for series in panel["series"]:
            name = series["name"]
            if name not in KEY_METRICS:
                continue
            label, lower = KEY_METRICS[name]
            ys = np.array([np.nan if y is None else y for y in series["y"]], dtype=float)
            finite = np.flatnonzero(np.isfinite(ys))
            if not finite.size:
                continue
            last = int(finite[-1])
            best = int(finite[np.argmin(ys[finite])]) if lower else None
            out.append({"key": name, "label": label, "unit": unit(name), "final": series["y"][last],
                        "final_step": xs[last], "best": series["y"][best] if best is not None else None,
                        "best_step": xs[best] if best is not None else None})
    order = list(KEY_METRICS)
    return sorted(out, key=lambda m: order.index(m["key"]))


def mode_agreement(failure: Mapping[str, Any]) -> str:
    """Which failure-mode sentence a failed run's page states (templates/pages/run.md): the
    two classifications are the history's rules (``history_mode``) and the original plan's
    heuristic, which reads only the failure reason (``failure_mode``). ``agree``, ``differ``,
    ``history`` or ``plan`` (only that one gives a mode), ``none``."""
    plan, history = _mode(failure.get("failure_mode")), _mode(failure.get("history_mode"))
    if plan and history:
        return "agree" if plan == history else "differ"
    return "history" if history else "plan" if plan else "none"


def _mode(value: Any) -> str | None:
    """A classification's mode; None for none given ("unknown" is the heuristic's none)."""
    text = value.strip() if isinstance(value, str) else ""
    return text if text and text != "unknown" else None


def read_chart(path) -> dict[str, Any]:
    """A run chart's data file (figures/fig-history.json), {} when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
