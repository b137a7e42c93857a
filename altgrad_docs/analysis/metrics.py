"""Which logged key means what: the train loss, the primary metric and its direction, the
quantisation rates (cumulative or per window), and the per-layer families.

Trainers spell the same thing differently: the LM trainer logs ``loss`` and ``val_loss``, its
classification script ``train/loss`` and ``eval/f1_micro``. The site reads metrics by meaning:

* **train loss**: the first of :data:`TRAIN_LOSS_KEYS` a run logged (``loss``, ``train/loss`` ...);
* **primary metric**: the first candidate that every finished, non-failed run logged with a
  finite final value, in this order: a validation loss (:data:`VAL_LOSS_KEYS`), then a task
  metric under an evaluation prefix (``eval/``, ``val/`` ...; by :data:`TASK_PREFERENCE`, then
  by name), then the train loss. Its direction follows its name (:func:`direction_of`):
  loss-like (loss, perplexity, error, hamming, ...) lower is better; f1, accuracy, AUC,
  precision, recall, AP higher is better;
* **rates**: ``quantization/bit_stall_rate`` etc. (old unprefixed names after them);
  cumulative or per window as declared, else as ``rates.looks_cumulative`` reads the histories.

``extra.altgrad.metric`` (``ALTGRAD_METRIC``) names the primary metric's key; the metric map
``extra.altgrad.metrics`` (``ALTGRAD_METRICS``, JSON) may name ``train_loss``, ``primary``,
``direction`` (``lower``/``higher``) and ``rates`` (name -> key, or {key, cumulative}).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from altgrad_docs.runs import EVAL_KEY_PREFIXES, METRIC_ALIASES, TRAIN_LOSS_KEYS, VAL_LOSS_KEYS

EVAL_PREFIXES = (*EVAL_KEY_PREFIXES, "eval_", "val_")
#: Task metrics, most wanted first, when no validation loss was logged.
TASK_PREFERENCE = ("f1_micro", "f1", "micro_f1", "f1_macro", "f1_weighted", "f1_samples", "accuracy",
                   "acc", "subset_accuracy", "roc_auc_micro", "roc_auc", "auc", "pr_auc_micro")
#: Canonical rate -> its names, prefixed first (runs.METRIC_ALIASES).
RATES = {"bit_stall": "quantization/bit_stall_rate", "overflow": "quantization/overflow_rate",
         "underflow": "quantization/underflow_rate"}
#: Name parts (split at _ - . /) that say lower / higher is better.
LOWER_PARTS = frozenset({"loss", "perplexity", "ppl", "error", "err", "hamming", "mse", "mae", "rmse", "nll",
                         "wer", "cer", "bpc", "bpb", "coverage"})
HIGHER_PARTS = frozenset({"f1", "acc", "accuracy", "auc", "precision", "recall", "ap", "map", "score", "r2",
                          "bleu", "rouge", "iou", "dice", "jaccard", "match"})
class MetricError(ValueError):
    """A metric option in mkdocs.yml that cannot be used (the message says which and how)."""


def direction_of(key: str) -> bool | None:
    """True: higher is better; False: lower is better; None: the name does not say."""
    parts = set(re.split(r"[_\-./]", str(key).rsplit("/", 1)[-1].lower()))
    if parts & LOWER_PARTS:
        return False
    if parts & HIGHER_PARTS:
        return True
    return None


def column_of(key: str) -> str:
    """The run-table column holding a key's final value: final_loss / final_val_loss for the
    train and validation loss (the table's own columns), else ``final_<key>``."""
    if key in TRAIN_LOSS_KEYS[:1]:
        return "final_loss"
    if key in VAL_LOSS_KEYS[:1]:
        return "final_val_loss"
    return "final_" + key


def key_of(column: str) -> str:
    return str(column).removeprefix("final_")


@dataclass(frozen=True)
class MetricMap:
    """What each logged key means for this study (see the module docstring)."""

    train_loss: str = "loss"
    primary: str = "loss"
    higher_is_better: bool = False
    source: str = "inferred"  # "declared" | "inferred": how the primary metric was chosen
    direction_source: str = "name"  # "declared" | "name" | "assumed" (name says nothing: lower)
    rates: dict[str, str] = field(default_factory=lambda: dict(RATES))  # canonical -> key
    cumulative: dict[str, bool | None] = field(default_factory=dict)  # canonical rate key -> declared

    @property
    def column(self) -> str:
        """The run-table column of the primary metric."""
        if self.primary == self.train_loss:
            return "final_loss"
        return "final_val_loss" if self.primary in VAL_LOSS_KEYS else "final_" + self.primary

    @property
    def val_key(self) -> str:
        return self.primary if self.primary in VAL_LOSS_KEYS else "val_loss"

    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Canonical trace metric -> history names to read, for curves.make_trace."""
        out = {"loss": (self.train_loss, *[k for k in TRAIN_LOSS_KEYS if k != self.train_loss]),
               "val_loss": (self.val_key, *[k for k in VAL_LOSS_KEYS if k != self.val_key])}
        for canon, key in self.rates.items():
            name = RATES.get(canon, key)
            out[name] = (key, *[k for k in METRIC_ALIASES.get(name, (name,)) if k != key])
        return out


def metric_options(opts: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(the primary metric's run-table column, metric map) from ``extra.altgrad`` (the map may come
    as JSON from the environment); ``metric: loss`` gives final_loss, as before."""
    metric = opts.get("metric") or None
    raw = opts.get("metrics") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise MetricError(f"altgrad option metrics is not valid JSON ({exc.msg}) --> Do: write it as "
                              "YAML in mkdocs.yml or as JSON in ALTGRAD_METRICS.") from exc
    if not isinstance(raw, Mapping):
        raise MetricError("altgrad option metrics must be a mapping (train_loss, primary, direction, rates) "
                          "--> Do: fix mkdocs.yml.")
    unknown = sorted(set(raw) - {"train_loss", "primary", "direction", "rates"})
    if unknown:
        raise MetricError(f"altgrad option metrics has unknown keys {unknown} --> Do: use train_loss, "
                          "primary, direction (lower/higher) and rates.")
    direction = raw.get("direction")
    if direction is not None and str(direction).lower() not in ("lower", "higher"):
        raise MetricError(f"altgrad option metrics.direction is {direction!r} --> Do: set lower or higher.")
    rates = raw.get("rates") or {}
    if not isinstance(rates, Mapping) or not all(isinstance(v, (str, Mapping)) for v in rates.values()):
        raise MetricError("altgrad option metrics.rates must map a rate (bit_stall, overflow, underflow) to a "
                          "key or to {key: ..., cumulative: true/false} --> Do: fix mkdocs.yml.")
    if metric is not None:
        metric = key_of(str(metric))
        if raw.get("primary") and key_of(raw["primary"]) != metric:
            raise MetricError(f"altgrad option metric ({metric}) and metrics.primary ({raw['primary']}) differ "
                              "--> Do: set one of them.")
    metric = metric or (key_of(raw["primary"]) if raw.get("primary") else None)
    return (column_of(metric) if metric else None), dict(raw)


def declared_rates(raw: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, bool | None]]:
    rates, cumulative = dict(RATES), {}
    for canon, spec in dict(raw.get("rates") or {}).items():
        canon = str(canon).removesuffix("_rate")
        key = spec if isinstance(spec, str) else str(spec.get("key") or RATES.get(canon, canon))
        rates[canon] = key
        if isinstance(spec, Mapping) and "cumulative" in spec:
            cumulative[RATES.get(canon, key)] = bool(spec["cumulative"])
    return rates, cumulative


def summary_of(row: Mapping[str, Any]) -> dict[str, Any]:
    text = row.get("summary_json") if hasattr(row, "get") else None
    try:
        out = json.loads(text) if isinstance(text, str) and text else {}
    except json.JSONDecodeError:
        return {}
    return out if isinstance(out, dict) else {}


def _finite(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x


def final_values(runs: pd.DataFrame, column: str) -> np.ndarray:
    """The final value of a run-table column for every run: the column where it holds a number,
    else the run's summary value of its key (``final_eval/f1_micro`` -> ``eval/f1_micro``); for
    final_loss / final_val_loss the keys of the same meaning (train/loss, eval/loss ...)."""
    n = len(runs)
    out = pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float, copy=True) if column in runs \
        else np.full(n, math.nan)
    if "summary_json" not in runs or not np.isnan(out).any():
        return out
    keys = TRAIN_LOSS_KEYS if column == "final_loss" else VAL_LOSS_KEYS if column == "final_val_loss" \
        else (key_of(column),)
    texts = runs["summary_json"].tolist()
    for i in np.flatnonzero(np.isnan(out)):
        summary = summary_of({"summary_json": texts[i]})
        hit = next((k for k in keys if k in summary and summary[k] is not None), None)
        out[i] = _finite(summary[hit]) if hit is not None else math.nan
    return out


def with_metric_columns(runs: pd.DataFrame, mmap: MetricMap) -> pd.DataFrame:
    """The run table with final_loss (the train loss by meaning), final_val_loss and the
    primary metric's column filled from the summaries where the table has no value."""
    out = runs.copy()
    if mmap.train_loss == "loss":  # the table's own column; other spellings where it has none
        out["final_loss"] = pd.array(final_values(out, "final_loss"), dtype="float64")
    else:
        out["final_loss"] = pd.array(_summary_values(out, (mmap.train_loss,), final_values(out, "final_loss")),
                                     dtype="float64")
    if mmap.column == "final_val_loss" and mmap.primary != "val_loss":  # eval/loss declared: its
        out[mmap.column] = pd.array(_summary_values(out, (mmap.primary,), final_values(out, mmap.column)),
                                    dtype="float64")  # values first, not the table's val_loss
    elif mmap.column != "final_loss":
        out[mmap.column] = pd.array(final_values(out, mmap.column), dtype="float64")
    out.attrs = dict(runs.attrs)
    return out


def _summary_values(runs: pd.DataFrame, keys: tuple[str, ...], fallback: np.ndarray) -> np.ndarray:
    """The summary value of the first of ``keys`` a run logged; ``fallback`` where none."""
    out = fallback.copy()
    if "summary_json" not in runs:
        return out
    for i, text in enumerate(runs["summary_json"].tolist()):
        summary = summary_of({"summary_json": text})
        hit = next((k for k in keys if k in summary), None)
        if hit is not None:
            out[i] = _finite(summary[hit])
    return out


def summary_keys(runs: pd.DataFrame) -> list[str]:
    """Every key any run's summary holds (what the runs logged), in first-seen order."""
    keys: dict[str, None] = {}
    for text in runs["summary_json"].tolist() if "summary_json" in runs else []:
        for k in summary_of({"summary_json": text}):
            if not str(k).startswith("_"):
                keys.setdefault(str(k), None)
    return list(keys)


def train_loss_key(runs: pd.DataFrame, declared: Mapping[str, Any] | None = None) -> str:
    """The train loss' key: declared, else the first of TRAIN_LOSS_KEYS any run logged."""
    if declared and declared.get("train_loss"):
        return str(declared["train_loss"])
    present = set(summary_keys(runs))
    return next((k for k in TRAIN_LOSS_KEYS if k in present), "loss")


def primary_candidates(keys: Iterable[str], train_loss: str) -> list[str]:
    """Candidates for the primary metric, most wanted first (module docstring)."""
    keys = list(keys)
    present = set(keys)
    val = [k for k in VAL_LOSS_KEYS if k in present]
    task = [k for k in keys if k.startswith(EVAL_PREFIXES) and direction_of(k) is True and "/" not in
            k.split("/", 1)[-1]]
    rank = {name: i for i, name in enumerate(TASK_PREFERENCE)}
    task.sort(key=lambda k: (rank.get(k.rsplit("/", 1)[-1], len(rank)), k))
    return [*val, *task, train_loss]


def infer_metric_map(runs: pd.DataFrame, ok: np.ndarray | None = None, metric: str | None = None,
                     declared: Mapping[str, Any] | None = None) -> MetricMap:
    """The metric map of a run table (``ok``: the finished, non-failed runs, which must all
    have a finite final value of an inferred primary metric); ``metric``/``declared`` as
    extra.altgrad gives them."""
    declared = dict(declared or {})
    keys = summary_keys(runs)
    train = train_loss_key(runs, declared)
    rates, cumulative = declared_rates(declared)
    primary = key_of(metric or declared.get("primary") or "") or None
    source = "declared" if primary else "inferred"
    present = set(keys)
    if primary == "loss" and primary not in present:  # the train loss, however it is spelled
        primary = train
    elif primary == "val_loss" and primary not in present:
        primary = next((k for k in VAL_LOSS_KEYS if k in present), primary)
    if not primary:
        ok = np.ones(len(runs), dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
        primary = train
        for key in primary_candidates(keys, train):
            vals = final_values(runs[ok], column_of(key)) if key != train \
                else _summary_values(runs[ok], (train,), final_values(runs[ok], "final_loss"))
            if len(vals) and np.isfinite(vals).all():
                primary = key
                break
    if source == "declared" and keys and primary not in present:
        raise MetricError(f"altgrad option metric is {primary!r}, which no run logged --> Do: set it to a "
                          f"key the runs logged (e.g. {', '.join(primary_candidates(keys, train)[:4])}), "
                          "or remove it.")
    if declared.get("direction"):
        higher, dsource = str(declared["direction"]).lower() == "higher", "declared"
    else:
        guess = direction_of(primary)
        higher, dsource = (bool(guess), "name") if guess is not None else (False, "assumed")
    return MetricMap(train_loss=train, primary=str(primary), higher_is_better=higher, source=source,
                     direction_source=dsource, rates=rates, cumulative=cumulative)


def describe(mmap: MetricMap, cumulative: Mapping[str, bool] | None = None) -> dict[str, Any]:
    """The metric map as the Methods page states it."""
    return {"primary": mmap.primary, "column": mmap.column, "train_loss": mmap.train_loss,
            "higher_is_better": mmap.higher_is_better, "source": mmap.source,
            "direction_source": mmap.direction_source,
            "rates": [{"name": canon, "key": key, "cumulative": bool((cumulative or {}).get(RATES.get(canon, key)))}
                      for canon, key in mmap.rates.items()]}
