"""The run table and history schema that every stage shares (the typed hand-off).

Sources (W&B API, offline runs, snapshot) turn whatever they read into :class:`RunRecord`
objects; :func:`run_row` turns one record into one row of the run table whose columns are
:data:`RUN_COLUMNS`. Analysis and the site only ever see these tables, never a W&B object.
This module imports nothing of the project but the format registry (formats.py, the other
half of the ground floor), which names formats, and, when a row is made, ``run_facts.py``
(history facts, the status decided by the pure rules of ``analysis/status.py``).

Normalisation follows the data contract (shared/reference/data-contract.md): missing config
keys take the contract's defaults, numbers that arrive as strings become NaN (``"NaN"`` and
``"inf"`` strings become the float they spell), old unprefixed metric names are read after
the ``quantization/`` ones, and a run's ``status`` is decided from every signal it gives
(W&B state, exit code, alerts, last loss, steps, failure reports: run_facts.py) while
the original W&B state is kept in ``state`` and the reason in ``status_reason``. Where the
runs and the contract differ, the runs win: a config without ``seed`` has no seed (NaN, not
42), and formats are read by meaning (:func:`normalize_format`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from altgrad_docs.formats import classify_format

if TYPE_CHECKING:  # imported where a frame is made: listing runs needs no pandas (fetch.py)
    import pandas as pd

#: W&B states, as W&B reports them.
STATES = ("finished", "crashed", "failed", "killed", "running")
#: States the loader returns by default (the plan's "finished and crashed", see contract).
DEFAULT_STATES = ("finished", "crashed", "failed")
#: status = the state as the site groups it: crashed and failed are both "failed".
STATUS_OF_STATE = {
    "finished": "finished",
    "crashed": "failed",
    "failed": "failed",
    "killed": "killed",
    "running": "running",
}

#: The snapshot schema version (manifest ``schema_version``), the one constant of it: bump it
#: whenever the meaning of a stored value changes (a run-table column, a history file's name
#: or layout, a manifest key), note here what changed, and give the previous version a
#: migration step (snapshot_read.Snapshot._migrate) or refuse it (snapshot_schema.READABLE_FROM).
#: 1  steps = last logged _step (+ 1 only since commit e4b0bcf); files named by path_slug.
#: 2  the manifest lists every file's sha256 (``files``) and each run's file name
#:    (``runs.<id>.slug``); steps = last logged _step + 1; ids with capitals get a hash suffix;
#:    format, seed and use_fp8 by meaning (no seed is NaN, not 42: renormalize migrates them);
#:    status decided from every signal, with status_reason and the other run_facts columns
#:    (run_facts.complete_table migrates a table without them).
#: 3  the run table's ``program``: the file name of the script that made the run (W&B's
#:    ``program``), from the run's environment (logs/<run>.json migrates it).
SCHEMA_VERSION = 3

#: Run ids used as they are in file names and page paths (W&B's own ids all are).
_PLAIN_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.))*(?<!\.)")  # inner dots: lr0.1


def path_slug(run_id: str) -> str:
    """A run id as a file name and URL path segment: the id itself when it is plain
    (lowercase letters, digits, ``_-`` and single inner dots, such as ``lr0.1``; at most 64
    characters; no leading ``_-.``), else its plain characters plus a hash of the
    whole id, so ``.hidden`` -> ``hidden-<10 hex>``: stable, and distinct ids stay distinct,
    also where file names are compared without regard to case (macOS, Windows):
    ``AbCdEf12`` -> ``AbCdEf12-<10 hex>`` beside ``abcdef12``.

    MkDocs leaves out pages under a folder starting with a dot, a slash would nest folders,
    and ``?#%`` break links: W&B accepts such ids (``wandb.init(id=".hidden")``)."""
    run_id = str(run_id)
    if len(run_id) <= 64 and _PLAIN_ID.fullmatch(run_id) and run_id == run_id.lower():
        return run_id
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", run_id).strip("-_")[:32].strip("-_")
    return f"{stem or 'run'}-{hashlib.sha256(run_id.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def public_url(url: str) -> str:
    """A URL without the ``user:password@`` part: a key put into WANDB_BASE_URL
    (``http://user:KEY@host``) must not reach the manifest, a run_url or a page. Done on
    the text (not urlsplit), so that a URL urlsplit rejects (a bad port) is stripped too."""
    url = str(url or "")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return scheme + sep + authority.rpartition("@")[2] + rest[end:]


#: Metric keys with the old unprefixed names read after the prefixed one.
METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "quantization/bit_stall_rate": ("quantization/bit_stall_rate", "bit_stall_rate"),
    "quantization/overflow_rate": ("quantization/overflow_rate", "overflow_rate"),
    "quantization/underflow_rate": ("quantization/underflow_rate", "underflow_rate"),
}

#: The history keys the site needs (per-layer keys, LAYER_PREFIXES, come on top).
SITE_HISTORY_KEYS: tuple[str, ...] = (
    "loss",
    "val_loss",
    "train/loss",  # a trainer that logs its loss under train/ (analysis/status.PRIMARY_METRICS)
    "eval/loss",
    "grad_norm",
    "learning_rate",
    "quantization/bit_stall_rate",
    "quantization/overflow_rate",
    "quantization/underflow_rate",
    "bit_stall_rate",
    "overflow_rate",
    "underflow_rate",
)
#: Per-layer metric families (``<family>/<parameter name>``) the site reads from the history:
#: the contract's and those the AltGrad trainer logs (shared/upstream/README.md).
LAYER_FAMILIES: tuple[str, ...] = (
    "stall", "flips", "grad_norm_l2", "grad_norm_linf", "dead_neuron_frac", "grad_snr",
    "grad_cos_sim", "stable_rank", "effective_rank",
)
#: Their key prefixes, bare and under ``train/``.
LAYER_PREFIXES: tuple[str, ...] = tuple(f"{p}{f}/" for p in ("", "train/") for f in LAYER_FAMILIES)
#: Any other ``<family>/<parameter name>`` key: the last part names a weight or bias.
LAYER_KEY = re.compile(r"^(?:train/)?[A-Za-z0-9_]+/.+\.(?:weight|bias)(?:_[A-Za-z0-9]+)?$")


def is_layer_key(key: str) -> bool:
    """Whether a history key is a per-layer metric (LAYER_PREFIXES, or LAYER_KEY)."""
    return key.startswith(LAYER_PREFIXES) or bool(LAYER_KEY.match(key))


#: Keys of the train and the validation loss, as trainers spell them (analysis/metrics.py).
TRAIN_LOSS_KEYS = ("loss", "train/loss", "train_loss", "training/loss", "train/avg_loss")
VAL_LOSS_KEYS = ("val_loss", "eval/loss", "val/loss", "valid/loss", "validation/loss", "eval_loss")
#: Prefixes of evaluation metrics (f1, accuracy ...: candidates for the primary metric).
EVAL_KEY_PREFIXES = ("eval/", "val/", "valid/", "validation/", "test/")


def wanted_history_key(key: str) -> bool:
    """A history key the site reads: the site's own keys, the losses by any spelling, an
    evaluation metric, or a per-layer metric (``[train/]<family>/<dotted.param>``, or
    ``<family>/<param/with/slashes>_<variant>``: analysis/layers.py decides which are layers)."""
    if key in SITE_HISTORY_KEYS or key in TRAIN_LOSS_KEYS or key in VAL_LOSS_KEYS:
        return True
    if key.startswith(EVAL_KEY_PREFIXES) or is_layer_key(key):
        return True
    family, sep, rest = key.removeprefix("train/").partition("/")
    return bool(sep and family and ("." in rest or "/" in rest))


#: Config keys copied into columns, with the contract's default when missing.
CONFIG_COLUMNS: dict[str, Any] = {
    "learning_rate": math.nan,
    "batch_size": math.nan,
    "max_steps": math.nan,
    "warmup_steps": math.nan,
    "grad_clip": math.nan,
    "n_layer": math.nan,
    "n_head": math.nan,
    "n_embd": math.nan,
    "block_size": math.nan,
    "vocab_size": math.nan,
    "manifold_mantissa_bits": 2,
    "bit_stall_threshold": 0.5,
    "overflow_threshold": 0.01,
    "nan_patience": 10,
}

#: Columns of the run table, in order, with their pandas dtype. The first nine are the
#: original plan's ``get_format_comparison_runs`` columns.
RUN_COLUMNS: dict[str, str] = {
    "format": "string",
    "run_id": "string",
    "run_url": "string",
    "state": "string",
    "steps": "Int64",  # steps trained = last logged _step + 1
    "final_loss": "float64",
    "best_loss": "float64",
    "bit_stall_final": "float64",
    "overflow_final": "float64",
    "optimizer": "string",
    "manifold_aware": "boolean",
    "seed": "Int64",
    "status": "string",  # decided from every signal (analysis/status.py), not the W&B state alone
    "status_reason": "string",  # why: "stopped by trainer: NaN loss at step 19"; "" when finished
    "status_signals": "string",  # every failure signal found, comma-separated (status.decide)
    "exit_code": "Int64",  # from the offline run log; NA from the W&B API
    "alerts": "string",  # JSON list of W&B alerts, one per title: {title, text, level, count}
    "primary_metric": "string",  # the loss-like key the status and last good value read
    "last_good_loss": "float64",  # last finite value of the primary metric
    "last_good_step": "Int64",  # its step
    "nonfinite_step": "Int64",  # first step of the non-finite stretch that ends the run
    "log_every": "float64",  # logging interval in steps (median gap of the logged steps)
    "name": "string",
    "use_fp8": "boolean",
    "final_val_loss": "float64",
    "underflow_final": "float64",
    "grad_norm_final": "float64",
    "runtime_s": "float64",
    **{k: "float64" for k in CONFIG_COLUMNS},
    "entity": "string",
    "project": "string",
    "group": "string",
    "program": "string",  # file name of the script that made the run (W&B's program); NA unknown
    "tags": "string",  # JSON list
    "created_at": "string",  # ISO 8601, UTC
    "updated_at": "string",  # ISO 8601, UTC; heartbeat for the API
    "config_json": "string",  # the whole config, canonical JSON (NaN/Inf as strings)
    "summary_json": "string",  # the whole summary, canonical JSON
}


@dataclass
class RunRecord:
    """One run as any source hands it over: plain Python values and one history frame.

    ``meta`` holds ``run_id`` (required), ``name``, ``state``, ``url``, ``entity``,
    ``project``, ``group``, ``tags`` (list), ``created_at``, ``updated_at``.
    ``history`` has an int ``_step`` column and one float64 column per metric key; left
    out, it is an empty frame, made (and pandas imported) only when first read, so that a
    listing of records costs no pandas import (see :func:`_history_property`).
    """

    meta: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = None  # type: ignore[assignment]  # see _history_property

    @property
    def run_id(self) -> str:
        return str(self.meta["run_id"])


def _history_property() -> property:
    """``RunRecord.history`` as a property over ``_history``: None (the default) reads as an
    empty ``_step`` frame, made on first read. Set after the dataclass is made, so the
    generated ``__init__`` (``self.history = history``) goes through the setter."""

    def get(record: RunRecord) -> pd.DataFrame:
        if record._history is None:
            import pandas as pd

            record._history = pd.DataFrame({"_step": []})
        return record._history

    def put(record: RunRecord, value: pd.DataFrame | None) -> None:
        record._history = value

    return property(get, put)


RunRecord._history = None  # type: ignore[attr-defined]
RunRecord.history = _history_property()  # type: ignore[assignment,method-assign]


def program_name(environment: Any) -> str | None:
    """The file name of the script that made a run, from its environment (W&B's ``program``:
    a path as the trainer was started, absolute or not, on whatever machine): runs of one
    script compare equal wherever they ran. None when the run does not say."""
    program = environment.get("program") if isinstance(environment, Mapping) else None
    if not isinstance(program, str) or not program.strip():
        return None
    return program.strip().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or None


#: The range of a pandas ``Int64`` cell.
_INT64 = (-(2**63), 2**63 - 1)


def exact_int(value: Any) -> int | None:
    """A whole number from whatever a run logged, exactly (never through float, which rounds
    above 2**53); None for anything else, and for what an ``Int64`` cell cannot hold."""
    if isinstance(value, (bool, np.bool_)):
        out: int | None = int(value)
    elif isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, (float, np.floating)):
        out = int(value) if math.isfinite(value) and float(value).is_integer() else None
    elif isinstance(value, str):
        text = value.strip()
        try:
            out = int(text)
        except ValueError:
            out = exact_int(to_float(text)) if text else None
    else:
        out = None
    return out if out is not None and _INT64[0] <= out <= _INT64[1] else None


def seed_of(config: Mapping[str, Any]) -> int | float:
    """The run's seed, exactly; NaN without one in the config (never the contract's 42:
    replicates of a trainer that logs none are not duplicates of one seed)."""
    return _int_or_nan(config_value(config, "seed")) if "seed" in config else math.nan


def _int_or_nan(value: Any) -> int | float:
    whole = exact_int(value)
    return math.nan if whole is None else whole


def int_column(values: Any) -> Any:
    """An ``Int64`` array of :func:`exact_int` of each value (NA where there is none)."""
    import pandas as pd

    return pd.array([exact_int(v) for v in values], dtype="Int64")


def to_float(value: Any) -> float:
    """A number from whatever a run logged; NaN for anything that is not one."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def to_bool(value: Any, default: bool = False) -> bool:
    """A flag from a config value: real bools, 0/1, and the strings true/false."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    return default


def config_value(config: Mapping[str, Any], key: str) -> Any:
    """A config value, unwrapping W&B's ``{"value": v, "desc": ...}`` form."""
    value = config.get(key)
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


#: Config keys that may name the precision a baseline run trained in (first found wins).
PRECISION_KEYS = ("precision", "dtype", "compute_dtype", "amp_dtype", "autocast_dtype", "mixed_precision",
                  "param_dtype", "torch_dtype")
#: The precision of a baseline run whose config names none: the AltGrad trainer's (bf16 autocast).
DEFAULT_BASELINE = "BF16"


def baseline_precision(config: Mapping[str, Any]) -> str:
    """The label of a run that trained without an 8-bit format: BF16/FP16/FP32 as the config's
    precision key says (``dtype: float32``), else the trainer's default, BF16."""
    for key in PRECISION_KEYS:
        if key in config:
            found = classify_format(config_value(config, key))
            if found.kind == "baseline" and found.label:
                return found.label
    return DEFAULT_BASELINE


def normalize_format(config: Mapping[str, Any]) -> str:
    """The format label of a run, by meaning (formats.classify_format): ``E5M2`` for
    ``FP8_E5M2``, ``float8_e5m2`` or ``fp8_e5m2``; ``E4M3`` for PyTorch's ``fp8_e4m3fn``; the
    baseline (BF16, FP16, FP32) when ``use_fp8`` is false or ``fp8_format`` is ``none``,
    ``bf16``, ``fp32`` ... in any case; a name outside the registry keeps its own label
    (``E4M3FNUZ``, ``FP4_E2M1``, ``NVFP4``), for the design to name and leave out."""
    raw = config_value(config, "fp8_format")
    named = classify_format(raw) if raw not in (None, "") else None
    flag = to_bool(config_value(config, "use_fp8"), default=False) if "use_fp8" in config else None
    if named is None:
        return "unknown" if flag else baseline_precision(config)
    if named.kind == "baseline":  # fp8_format none / bf16 / fp32: the run's baseline precision
        return named.label or baseline_precision(config)
    if flag is False:  # the trainer's BF16 runs carry fp8_format E5M2 with use_fp8 false
        return baseline_precision(config)
    return named.label


def assumed_precision(config: Mapping[str, Any]) -> str | None:
    """Why a run was labelled the default baseline (BF16) without its config naming a
    precision: ``'fp8_format "none"'`` or ``"use_fp8 false"``; None when the config names the
    precision (``fp8_format: fp32``, ``dtype: bfloat16``) or the run is no baseline run."""
    if normalize_format(config) != DEFAULT_BASELINE:
        return None
    raw = config_value(config, "fp8_format")
    named = classify_format(raw) if raw not in (None, "") else None
    if (named is not None and named.label == DEFAULT_BASELINE) or any(
            classify_format(config_value(config, k)).label == DEFAULT_BASELINE for k in PRECISION_KEYS if k in config):
        return None
    if named is not None and named.kind == "baseline":
        return f"fp8_format {json.dumps(str(raw))}"
    return "use_fp8 false" if "use_fp8" in config else "no fp8_format"


def is_baseline(label: str) -> bool:
    """True for a baseline label (BF16, FP16, FP32) of :func:`normalize_format`."""
    return classify_format(label).kind == "baseline"


def optimizer_label(config: Mapping[str, Any]) -> str:
    return "ManifoldAdamW" if to_bool(config_value(config, "use_manifold_aware")) else "AdamW"


def summary_metric(summary: Mapping[str, Any], key: str) -> float:
    """A summary value as float, reading old unprefixed names after the prefixed one."""
    for name in METRIC_ALIASES.get(key, (key,)):
        if name in summary and summary[name] is not None:
            return to_float(summary[name])
    return math.nan


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'nan', 'inf', '-inf'
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _json_safe(value.item())
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, NaN/Inf spelled as strings, no trailing spaces."""
    return json.dumps(_json_safe(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def run_row(record: RunRecord) -> dict[str, Any]:
    """One row of the run table (keys = RUN_COLUMNS) from one record."""
    from .run_facts import alert_list, decided_status, history_facts

    meta, config, summary = record.meta, record.config, record.summary
    state = str(meta.get("state") or "running")
    facts = history_facts(record)
    decided = decided_status(record, state, facts)
    code = meta.get("exit_code")
    row: dict[str, Any] = {
        "format": normalize_format(config),
        "run_id": record.run_id,
        "run_url": public_url(meta.get("url") or ""),
        "state": state,
        "steps": facts["steps"],
        "final_loss": summary_metric(summary, "loss"),
        "best_loss": facts["best_loss"],
        "bit_stall_final": summary_metric(summary, "quantization/bit_stall_rate"),
        "overflow_final": summary_metric(summary, "quantization/overflow_rate"),
        "optimizer": optimizer_label(config),
        "manifold_aware": to_bool(config_value(config, "use_manifold_aware")),
        "seed": seed_of(config),  # NaN without one (analysis/design.py: seeded)
        "status": decided.status,
        "status_reason": decided.reason,
        "status_signals": ",".join(decided.signals),
        "exit_code": _int_or_nan(code),
        "alerts": canonical_json(alert_list(meta)),
        "primary_metric": facts.get("primary_metric") or "",
        "last_good_loss": facts["last_good_loss"],
        "last_good_step": facts["last_good_step"],
        "nonfinite_step": facts["nonfinite_step"],
        "log_every": facts["log_every"],
        "name": str(meta.get("name") or record.run_id),
        "use_fp8": (to_bool(config_value(config, "use_fp8")) if "use_fp8" in config
                    else not is_baseline(normalize_format(config))),
        "final_val_loss": summary_metric(summary, "val_loss"),
        "underflow_final": summary_metric(summary, "quantization/underflow_rate"),
        "grad_norm_final": summary_metric(summary, "grad_norm"),
        "runtime_s": summary_metric(summary, "_runtime"),
        "entity": meta.get("entity") or "",
        "project": meta.get("project") or "",
        "group": meta.get("group") or "",
        "program": program_name((meta.get("run_log") or {}).get("environment")),
        "tags": canonical_json(list(meta.get("tags") or [])),
        "created_at": meta.get("created_at") or "",
        "updated_at": meta.get("updated_at") or "",
        "config_json": canonical_json(config),
        "summary_json": canonical_json(summary),
    }
    for key, default in CONFIG_COLUMNS.items():
        row[key] = to_float(config_value(config, key)) if key in config else float(default)
    return row


def renormalize(df: pd.DataFrame) -> pd.DataFrame:
    """A run table written before formats and seeds were read by meaning (``format`` "NONE",
    ``seed`` 42 for a config without seed, ``use_fp8`` false for an FP8 run without the flag),
    with those three columns made again from each row's ``config_json`` as :func:`run_row`
    makes them now: the migration of an older snapshot (a pure function of stored values)."""
    import pandas as pd

    out = df.copy()
    configs = [_stored_config(c) for c in out["config_json"]]
    out["format"] = pd.array([normalize_format(c) for c in configs], dtype="string")
    out["seed"] = int_column([seed_of(c) for c in configs])
    out["use_fp8"] = pd.array([to_bool(config_value(c, "use_fp8")) if "use_fp8" in c
                               else not is_baseline(normalize_format(c)) for c in configs], dtype="boolean")
    return out


def _stored_config(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The run table with RUN_COLUMNS in order and their dtypes; sorted by run_id."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    for col, dtype in RUN_COLUMNS.items():
        if dtype == "Int64":  # from the rows: the frame's column may be float64 already
            df[col] = int_column([row.get(col) for row in rows])
        else:
            df[col] = df[col].astype(dtype)
    return df.sort_values("run_id", kind="stable").reset_index(drop=True)


def tidy_history(history: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """A history frame with int64 ``_step`` first and float64 metric columns, by step.

    Strings and other non-numbers become NaN; rows without a step are dropped; when a step
    was logged more than once, the last row wins (that is what W&B keeps).
    """
    import pandas as pd

    df = pd.DataFrame(history)
    if "_step" not in df:
        df["_step"] = np.arange(len(df))
    step = pd.to_numeric(df["_step"], errors="coerce")
    df = df.loc[step.notna()].copy()
    df["_step"] = step[step.notna()].astype("int64")
    metrics = sorted(c for c in df.columns if c != "_step" and not str(c).startswith("_"))
    out = pd.DataFrame({"_step": df["_step"].to_numpy()})
    for col in metrics:
        values = df[col]
        if values.dtype == object:
            values = values.map(to_float)
        out[col] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    out = out.drop_duplicates("_step", keep="last").sort_values("_step", kind="stable")
    return out.reset_index(drop=True)


#: Layer types by parameter-name parts, checked in this order (nanoGPT and generic names:
#: DistilBERT's q_lin/ffn.lin1, Llama's q_proj/mlp, BERT's attention/intermediate ...).
_LAYER_PATTERNS = (
    ("classifier", re.compile(r"(^|\.)(lm_head|classifier|pre_classifier|head|score|fc_out|output_layer)(\.|$)")),
    ("embedding", re.compile(r"(^|\.)(wte|wpe|embed\w*|embeddings|tok_embeddings|position_embeddings)(\.|$)")),
    ("attention", re.compile(r"attn|attention|(^|\.)(q|k|v|o|out|qkv|query|key|value)_?(lin|proj)?(\.|$)")),
    ("mlp", re.compile(r"mlp|c_fc|ffn|feed_?forward|(^|\.)(fc\d|lin\d|w\d|intermediate|up_proj|down_proj|gate_proj)(\.|$)")),
)


def layer_type(param_name: str) -> str:
    """attention / mlp / embedding / classifier / other, by nanoGPT and generic parameter names."""
    name = param_name.lower()
    for kind, pattern in _LAYER_PATTERNS:
        if pattern.search(name):
            return kind
    return "other"
