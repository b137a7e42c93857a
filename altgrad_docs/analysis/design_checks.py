"""What the design checks in the runs before it trusts them: the formats they name, config
values spelled in more than one way, and the ``extra.altgrad`` options held against the data.

Pure functions of the run table's columns and configs; each finding is a sentence-free record
or a warning line (cause, value, "--> Do:") that the site adapter logs through
``mkdocs.plugins.altgrad``, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

from altgrad_docs.formats import BASELINES, FORMAT_NAMES, classify_format
from altgrad_docs.runs import DEFAULT_BASELINE, assumed_precision

#: Format kinds that form conditions: the registry's 8-bit formats and the baselines.
STUDIED_KINDS = ("registry", "baseline")


def number(value: Any) -> float | None:
    """The number a config value means: numbers, and strings that spell one (``"1e-3"``,
    ``" 42 "``, ``"nan"``); None for anything else (booleans are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_value(value: Any) -> Any:
    """A config value as one level: a string that spells a number becomes that number, so
    ``"1e-3"`` and ``0.001`` are one level (and one setting label); anything else unchanged."""
    if isinstance(value, str):
        n = number(value)
        return value if n is None else n
    return value


def spelling(value: Any) -> str:
    """How a value was written: a string in quotes, a number as its shortest text (1 and 1.0
    are one spelling: both are the JSON number one)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return json.dumps(value, sort_keys=True, default=str)


def spellings(configs: Sequence[Mapping[str, Any]], keys: Iterable[str], canon, label
              ) -> dict[str, dict[str, list[str]]]:
    """key -> level text -> its spellings, for the levels of ``keys`` written in more than one
    way across ``configs`` (``canon`` makes a level's hashable form, ``label`` its text)."""
    out: dict[str, dict[str, list[str]]] = {}
    for key in keys:
        seen: dict[str, dict[str, None]] = {}
        first: dict[str, Any] = {}
        for c in configs:
            if key not in c:
                continue
            v = c[key]
            k = canon(v)
            first.setdefault(k, as_value(v))
            seen.setdefault(k, {})[spelling(v)] = None
        merged = {label(first[k]): sorted(s) for k, s in seen.items() if len(s) > 1}
        if merged:
            out[key] = merged
    return out


def format_exclusions(formats: Sequence[str], run_ids: Sequence[str]) -> tuple[list[bool], dict[str, str], list[str]]:
    """(studied, reasons, warnings) for each run's format label: runs whose format is neither a
    registry 8-bit format nor a baseline are left out of every condition (never ranked among
    the 8-bit formats), with one warning per such format naming what it is and its runs."""
    kinds = {f: classify_format(f) for f in set(formats)}
    studied = [kinds[f].kind in STUDIED_KINDS for f in formats]
    reasons, warnings = {}, []
    for label in sorted(f for f, k in kinds.items() if k.kind not in STUDIED_KINDS):
        name = kinds[label]
        ids = sorted(str(r) for r, f in zip(run_ids, formats) if f == label)
        reasons[label] = f"format {label} outside the registry"
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        warnings.append(
            f"{len(ids)} run{'s' if len(ids) != 1 else ''} ({shown}) name format {label!r}: "
            f"{'unknown' if name.kind == 'unknown' else name.what}; left out of every comparison, "
            f"never ranked among the 8-bit formats --> Do: name a format of the registry "
            f"({', '.join(FORMAT_NAMES)}) or a baseline ({', '.join(BASELINES)}, none) in fp8_format, "
            "or leave these runs out with altgrad option filters.")
    return studied, reasons, warnings


def assumed_baseline(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The runs labelled the default baseline although their configs name no precision, as
    {"label": "BF16", "n": runs, "because": ['fp8_format "none"', ...]}; {} when there are none."""
    why = [w for w in (assumed_precision(c) for c in configs) if w]
    if not why:
        return {}
    return {"label": DEFAULT_BASELINE, "n": len(why), "because": sorted(set(why))}


def option_warnings(factors: Sequence[str] | None, ignore: Sequence[str], keys: Iterable[str]) -> list[str]:
    """altgrad option factors / ignore naming a config key that no run has."""
    present = sorted(set(keys))
    shown = ", ".join(present[:20]) + (" ..." if len(present) > 20 else "") or "none"
    out = []
    for what, names in (("factors", factors or ()), ("ignore", ignore)):
        for name in names:
            if name not in present:
                out.append(f"altgrad option {what} (ALTGRAD_{what.upper()}) names {name!r}, a config key no "
                           f"run has (the runs' keys: {shown}) --> Do: correct the key or remove it.")
    return out


def filters_warning(filters: Mapping[str, Any] | None, n_kept: int, n_runs: int) -> str | None:
    """altgrad option filters that leave no run of a non-empty snapshot: the warning, else None."""
    if not filters or n_kept or not n_runs:
        return None
    return (f"altgrad option filters (ALTGRAD_FILTERS) {json.dumps(filters, default=str)[:200]} matches none of the "
            f"{n_runs} runs, so the site shows no study --> Do: correct the filter (keys are config.<key>, "
            "summary_metrics.<key>, state, tags, display_name) or remove it.")


def baseline_warning(wanted: str, found: str, formats: Iterable[str], used: str) -> str | None:
    """altgrad option baseline naming a format with no completed run: the warning, else None."""
    present = sorted(set(formats))
    if found in present:
        return None
    return (f"altgrad option baseline (ALTGRAD_BASELINE) is {wanted!r}, but no completed run has that format "
            f"(formats: {', '.join(present) or 'none'}); the baseline used is {used} --> Do: set baseline to "
            "one of those formats, or remove it.")
