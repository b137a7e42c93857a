"""Which config keys make the conditions: the classification of every key of the completed
runs' configs into factors, constants, keys that follow the format, optimizer, seed or script,
identity, bookkeeping and ignored keys (:func:`classify_keys`), and how a level is written and
compared (:func:`level_text`, :func:`level_key`, :func:`setting_label`).

Split from :mod:`.design`, which reads the design from the run table with these rules.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np
import pandas as pd

from . import design_checks as checks

if TYPE_CHECKING:
    from .design import DesignOptions

#: Bookkeeping the trainer writes into every config (data contract): never a factor.
BOOKKEEPING = frozenset({
    "run_name", "checkpoint_dir", "project", "tags", "log_interval", "eval_interval",
    "checkpoint_interval", "max_checkpoints", "diagnostic_interval", "wandb_project",
    "wandb_entity", "entity", "name", "run_id", "id", "output_dir", "out_dir", "save_dir",
    "log_dir", "notes", "group", "job_type",
})
#: Keys that define the format or the optimizer themselves.
DEFINING = frozenset({"fp8_format", "use_fp8", "use_manifold_aware", "optimizer"})
SEED = "seed"
#: Contract defaults of config keys that older runs may lack (data-contract.md).
DEFAULTS: dict[str, Any] = {
    "manifold_mantissa_bits": 2, "bit_stall_threshold": 0.5, "overflow_threshold": 0.01,
    "nan_patience": 10, "enable_partition_clipping": False, "enable_emergency_shift": False,
    "eval_interval": 100, "seed": 42,
}
#: The design's name for the script that made a run (the run table's ``program``), a factor
#: like a config key when the runs came from different scripts: runs of two trainers are
#: never pooled, even where their configs agree.
PROGRAM = "program"
#: Names that look like a run's identity (checked only for keys unique per run).
IDENTITY = re.compile(r"(^|_)(name|dir|path|id|uuid|time|timestamp|date|stamp|url|host)s?$")


def canon_value(value: Any) -> str:
    """Hashable, type-aware form of a config value: values equal as numbers are one level (1,
    1.0, "1e0"; 0.001 and "1e-3"); True is not 1."""
    num = checks.number(value)
    if num is not None:
        return repr(num)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, default=str)


def level_text(value: Any) -> str:
    """A level as the setting label writes it: 0.001, true, unset, or the text itself."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{float(value):g}" if math.isfinite(float(value)) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def level_key(value: Any) -> tuple:
    if isinstance(value, bool):
        return (1, float(value), "")
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (2, 0.0, level_text(value))


def values_of(configs: list[dict[str, Any]], key: str) -> list[Any]:
    """The key's level in each config (the contract default when missing; a string that spells
    a number as that number: one value, one level)."""
    return [checks.as_value(c.get(key, DEFAULTS.get(key))) for c in configs]


def _function_of(groups: Iterable[Any], values: list[str]) -> bool:
    seen: dict[Any, str] = {}
    for g, v in zip(groups, values):
        if seen.setdefault(g, v) != v:
            return False
    return True


def _groups(frame: pd.DataFrame, scope: list[Any]) -> dict[str, list[Any]]:
    """Each completed run's format, optimizer, format and optimizer, and seed, within its scope
    (its script, or None for all)."""
    fmt, opt = frame["format"].tolist(), frame["optimizer"].tolist()
    seeds = [None if pd.isna(s) else float(s) for s in frame["seed"]]
    return {"format": list(zip(scope, fmt)), "optimizer": list(zip(scope, opt)),
            "cell": list(zip(scope, fmt, opt)), "seed": list(zip(scope, seeds))}


def _follows(groups: dict[str, list[Any]], canon: list[str], seed: bool = True) -> str | None:
    """What a key's value is set by: the format, the optimizer, both, the seed, or None."""
    if _function_of(groups["cell"], canon):
        return ("format" if _function_of(groups["format"], canon) else "optimizer"
                if _function_of(groups["optimizer"], canon) else "format and optimizer")
    return "seed" if seed and _function_of(groups["seed"], canon) else None


def classify_keys(frame: pd.DataFrame, configs: list[dict[str, Any]], options: DesignOptions,
                  programs: list[str | None] | None = None
                  ) -> tuple[dict[str, list[Any]], dict[str, Any], dict[str, str], list[str], list[str], list[str]]:
    """(factors, constants, follows, identity, bookkeeping, ignored) over the completed runs.

    ``frame`` holds format, optimizer, seed of the completed runs, ``configs`` their configs.
    ``programs``: the script of each run when the runs came from several (:func:`program_scopes`):
    a key then follows the format, optimizer or seed when it does so within each script's
    runs, so that one script's runs without the key (another trainer's config) do not make
    a key that follows the optimizer a factor that keeps its two optimizers apart."""
    keys = sorted({k for c in configs for k in c})
    plain = _groups(frame, [None] * len(frame))
    scoped = _groups(frame, programs) if programs is not None else plain
    factors, constants, follows = {}, {}, {}
    identity, bookkeeping, ignored = [], [], []
    for key in keys:
        raw = values_of(configs, key)
        canon = [canon_value(v) for v in raw]
        if key in options.ignore:
            ignored.append(key)
            continue
        if key in BOOKKEEPING:
            bookkeeping.append(key)
            continue
        if key in DEFINING or key == SEED:
            continue
        if len(set(canon)) == 1:
            constants[key] = raw[0]
            continue
        if options.factors is not None:
            continue
        if len(set(canon)) == len(canon) >= 3 or (len(set(canon)) == len(canon) and IDENTITY.search(key)):
            identity.append(key)
        elif programs is not None and key != PROGRAM and _function_of(programs, canon):
            follows[key] = "program"  # set by the script: its own model, data or schedule
        elif (by := _follows(scoped, canon) if key != PROGRAM else _follows(plain, canon, seed=False)) is not None:
            follows[key] = by  # a script is never set by the seed: two scripts' seeds may differ
        else:
            factors[key] = _levels(raw)
    if options.factors is not None:
        factors = {k: _levels(values_of(configs, k)) for k in options.factors}
        for k in options.factors:
            constants.pop(k, None)
    else:
        factors = _drop_aliases(factors, configs, follows)
    return factors, constants, follows, identity, bookkeeping, ignored


def _drop_aliases(factors: dict[str, list[Any]], configs: list[dict[str, Any]],
                  follows: dict[str, str]) -> dict[str, list[Any]]:
    """Factors whose value is set by another factor add no condition (``use_fp32_master`` next
    to ``weight_storage``): they go to ``follows``. Kept first: non-boolean keys, then those
    with more levels, then by name; the order of ``factors`` is kept."""
    def rank(key: str) -> tuple:
        levels = factors[key]
        return (all(isinstance(v, bool) for v in levels), -len(levels), key)

    canon = {k: [canon_value(v) for v in values_of(configs, k)] for k in factors}
    kept: list[str] = []
    for key in sorted(factors, key=rank):
        by = next((k for k in kept if _function_of(canon[k], canon[key])), None)
        if by is None:
            kept.append(key)
        else:
            follows[key] = f"factor {by}"
    return {k: v for k, v in factors.items() if k in kept}


def _levels(raw: list[Any]) -> list[Any]:
    by_canon = {}
    for v in raw:
        by_canon.setdefault(canon_value(v), v)
    return sorted(by_canon.values(), key=level_key)


def setting_label(levels: Mapping[str, Any]) -> str:
    """'learning_rate=0.001, enable_partition_clipping=true'; '' without factors."""
    return ", ".join(f"{k}={level_text(v)}" for k, v in levels.items())


# ---------------------------------------------------------------------------------------------
# The design


def program_scopes(programs: Iterable[Any] | None) -> list[str | None] | None:
    """Each run's script (None where unknown) when the runs name two scripts or more; else
    None: one script, or none known, changes nothing in the design."""
    if programs is None:
        return None
    names = [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
             for v in programs]
    return names if len({n for n in names if n}) >= 2 else None


def with_program(configs: list[dict[str, Any]], programs: list[str | None] | None) -> list[dict[str, Any]]:
    """The configs with the script that made each run under :data:`PROGRAM` (``programs``:
    :func:`program_scopes`). A run whose script is unknown gets no value, so it is pooled with
    neither; a config that has a key of that name keeps its own."""
    if programs is None:
        return configs
    return [c if not n or PROGRAM in c else {**c, PROGRAM: n} for c, n in zip(configs, programs)]
