"""A small evaluator of W&B's Mongo-style run filters, so that one filter chooses a study's
runs both server-side (``api.runs(filters=...)``) and in a snapshot when the site is built.

Supported: field paths with dots (``config.learning_rate``, ``summary_metrics.loss``,
``state``, ``tags``, ``display_name``), the operators ``$eq $ne $in $nin $gt $gte $lt $lte
$exists`` and the combinators ``$and $or`` (also ``$nor``). As in Mongo, a field holding a list
(``tags``) matches a value when any element does; a bare value means ``$eq``; several keys in
one mapping must all hold.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

_MISSING = object()


class FilterError(ValueError):
    """A filter this evaluator cannot read (an unknown operator or a malformed argument)."""


def _get(doc: Any, path: str) -> Any:
    parts = path.split(".")
    for i, part in enumerate(parts):
        if isinstance(doc, Mapping) and part in doc:
            doc = doc[part]
        elif part == "value" and i == len(parts) - 1 and parts[0] == "config" and not isinstance(doc, Mapping):
            return doc  # W&B's own spelling config.KEY.value of a config value
        else:
            return _MISSING
    return doc


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _eq(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb or (math.isnan(na) and math.isnan(nb))
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _cmp(a: Any, b: Any, op: str) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        x, y = na, nb
    elif isinstance(a, str) and isinstance(b, str):
        x, y = a, b
    else:
        return False
    return {"$gt": x > y, "$gte": x >= y, "$lt": x < y, "$lte": x <= y}[op]


def _any(value: Any, test) -> bool:
    """Mongo's array rule: a list matches when the list itself or any element does."""
    if isinstance(value, list):
        return test(value) or any(test(v) for v in value)
    return test(value)


def _field(value: Any, cond: Any) -> bool:
    if not (isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond)):
        return value is not _MISSING and _any(value, lambda v: _eq(v, cond))
    for op, arg in cond.items():
        if op == "$exists":
            ok = (value is not _MISSING and value is not None) == bool(arg)
        elif op == "$eq":
            ok = value is not _MISSING and _any(value, lambda v: _eq(v, arg))
        elif op == "$ne":
            ok = value is _MISSING or not _any(value, lambda v: _eq(v, arg))
        elif op in ("$in", "$nin"):
            if not isinstance(arg, (list, tuple)):
                raise FilterError(f"{op} needs a list, got {arg!r}")
            hit = value is not _MISSING and _any(value, lambda v: any(_eq(v, a) for a in arg))
            ok = hit if op == "$in" else not hit
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            ok = value is not _MISSING and _any(value, lambda v: _cmp(v, arg, op))
        elif op == "$not":
            ok = not _field(value, arg)
        else:
            raise FilterError(f"unknown operator {op}")
        if not ok:
            return False
    return True


def matches(flt: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """Whether one run (``doc``: config, summary_metrics, state, tags, display_name...) passes."""
    if not isinstance(flt, Mapping):
        raise FilterError(f"a filter must be a mapping, got {flt!r}")
    for key, cond in flt.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(cond, (list, tuple)):
                raise FilterError(f"{key} needs a list of filters")
            hits = [matches(c, doc) for c in cond]
            ok = all(hits) if key == "$and" else any(hits) if key == "$or" else not any(hits)
        elif str(key).startswith("$"):
            raise FilterError(f"unknown operator {key}")
        else:
            ok = _field(_get(doc, str(key)), cond)
        if not ok:
            return False
    return True
