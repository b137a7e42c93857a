"""Per-layer metric families, discovered from the history's keys.

A trainer logs per-parameter metrics as ``<family>/<parameter name>``, with or without a
``train/`` prefix: ``grad_norm_l2/transformer.h.0.attn.c_attn.weight``,
``train/stable_rank/encoder.transformer.layer.0.ffn.lin1.weight``, the old ``stall/...``.
A key is per-layer when its family is a known per-layer family (:data:`FAMILY_ORDER`) and its
last part is not an aggregate (``mean``, ``mean_ratio``, ``total``, ...), or when its last part is a parameter
name, i.e. dotted as torch's ``named_parameters`` gives it (``tokens_per_sec`` under
``throughput/`` is no layer). The AltGrad trainer also writes ``grad_snr/<name with / for .>_{fp8,fp32,diff}``:
family ``grad_snr_fp8`` etc., the name read back with dots. A family is every such prefix any
run logged; nothing is assumed about which families exist.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from altgrad_docs.runs import layer_type

PREFIXES = ("train/",)
_VARIANT = re.compile(r"^(?P<name>.+)_(?P<variant>fp8|fp32|fp16|bf16|diff)$")
#: Families in the order the pages show them (others follow by name).
FAMILY_ORDER = ("stall", "flips", "grad_norm_l2", "grad_norm_linf", "grad_snr", "grad_cos_sim",
                "dead_neuron_frac", "stable_rank", "effective_rank")


def split_layer_key(key: str) -> tuple[str, str] | None:
    """(family, parameter name) of a per-layer key, None for any other key."""
    key = str(key)
    for prefix in PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    family, sep, rest = key.partition("/")
    if not sep or not family or not rest:
        return None
    if "/" in rest:  # grad_snr/transformer/h/0/attn/c_attn/weight_fp8
        m = _VARIANT.match(rest)
        if not m or "/" in family:
            return None
        return f"{family}_{m['variant']}", m["name"].replace("/", ".")
    if "." not in rest and (family not in FAMILY_ORDER or AGGREGATE.match(rest)):
        return None
    return family, rest


#: Names of aggregates over layers (``mean``, ``mean_ratio``, ``total``, ``max_fp8`` ...), never a layer.
AGGREGATE = re.compile(r"^(mean|min|max|std|median|sum|total|count|avg|average)(_\w+)?$")


def family_sort_key(family: str) -> tuple[int, str]:
    """FAMILY_ORDER's place; a variant family (``grad_snr_fp8``) at its base family's place."""
    m = _VARIANT.match(family)
    base = m["name"] if m and m["name"] in FAMILY_ORDER else family
    return (FAMILY_ORDER.index(base) if base in FAMILY_ORDER else len(FAMILY_ORDER), family)


def layer_families(history: pd.DataFrame) -> dict[str, dict[str, float]]:
    """family -> layer type -> mean over training of the per-parameter means (finite values;
    a parameter with none is left out). One array for all per-layer columns: a run's history
    is read once per build, at 1,000 runs."""
    cols, groups = [], []
    for col in history.columns:
        split = split_layer_key(str(col))
        if split is not None:
            cols.append(col)
            groups.append((split[0], layer_type(split[1])))
    if not cols:
        return {}
    try:  # a tidy history's columns are float64: one block
        values = history[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        values = np.column_stack([pd.to_numeric(history[c], errors="coerce").to_numpy(dtype=np.float64)
                                  for c in cols])
    finite = np.isfinite(values)
    counts = finite.sum(axis=0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # near the float64 limit: inf
        means = np.where(finite, values, 0.0).sum(axis=0) / counts
    by: dict[str, dict[str, list[float]]] = {}
    for (family, kind), mean, n in zip(groups, means, counts):
        if n:
            by.setdefault(family, {}).setdefault(kind, []).append(float(mean))
    return {f: {t: float(np.mean(v)) for t, v in sorted(types.items())}
            for f, types in sorted(by.items(), key=lambda kv: family_sort_key(kv[0]))}
