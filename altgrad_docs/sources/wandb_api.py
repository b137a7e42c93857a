"""Runs from the W&B Public API, through the real ``wandb.Api()`` (imported lazily, here only).

One ``Runs`` listing with ``lazy=False`` brings every run's config, summary and history keys
(no per-run ``Run`` query); the state filter is applied by the server. A run's history comes
from one ``RunParquetHistory`` request (the query wandb-core sends for
``run.download_history_exports``, sent once through the client's own GraphQL call): its
answer lists the Parquet export files (every row and every key, read by pyarrow at a
fraction of the CPU that decoding JSON rows costs) and carries the rows not exported yet as
``liveData`` (every row on a server without exports), which are read as columns. The answer
(0.9 MB at 2,000 rows) is decoded by orjson where the client takes a decoder
(``execute_graphql(parse=...)``), by json where orjson refuses it (bare NaN/Infinity) or is
not installed. Only when
that is not possible does it fall back to ``download_history_exports`` and then to one
``RunFullHistory`` request for every row and key: asked for keys, W&B returns only the rows
that hold all of them (wandb issues 2266, 5391), which would drop every step where, say,
``val_loss`` was not logged. The API key is
whatever wandb finds in ``WANDB_API_KEY`` or its netrc login; this module never reads, logs
or stores it.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import urlparse

import numpy as np

try:  # decodes a 0.9 MB history answer 5-7x faster than json (optional: json is the fallback)
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by monkeypatching _orjson to None
    _orjson = None

from ..runs import DEFAULT_STATES, RunRecord, public_url, to_float, wanted_history_key
from .steps import StepOutOfRange, arrow_step_column, step_column

if TYPE_CHECKING:  # imported where a frame is made: listing runs needs no pandas (fetch.py)
    import pandas as pd

DEFAULT_TIMEOUT = 19
DEFAULT_RETRIES = 3
OFFLINE_HINT = ("An existing snapshot still builds offline: mkdocs build "
                "(or altgrad-docs fetch --offline-dir wandb --out DIR).")


class WandbSourceError(RuntimeError):
    """A one-line, actionable failure of the W&B source (no key, bad key, unreachable...)."""


@dataclass
class ListedRun:
    """A run as the listing gives it: everything but the history."""

    record: RunRecord
    history_keys: list[str]
    rows: int
    handle: Any  # the wandb Run object, used to fetch the history
    logged_keys: list[str] = field(default_factory=list)


def base_url() -> str:
    """The W&B server, as it may be shown and stored: without a ``user:key@`` part (wandb
    itself reads WANDB_BASE_URL; this is for messages, the manifest and reachability)."""
    return public_url((os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").rstrip("/"))


def _reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def bound_retries(retries: int = DEFAULT_RETRIES) -> None:
    """Cap wandb-core's GraphQL retries unless the user set it (read when wandb starts), and
    keep wandb quiet: every history export download would print "Downloading run history"."""
    os.environ.setdefault("WANDB__GRAPHQL_RETRY_MAX", str(retries))
    os.environ.setdefault("WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS", "5")
    os.environ.setdefault("WANDB_SILENT", "true")


def connect(timeout: int = DEFAULT_TIMEOUT, entity: str | None = None) -> Any:
    """``wandb.Api()`` with errors turned into one line that says what to do.

    Naming the ``entity`` saves the client's default-entity query.
    """
    bound_retries()
    # wandb-core sends the GraphQL queries (history exports too) with its own timeout, read
    # from here when wandb starts; without it a slow server holds a fetch past --timeout.
    os.environ.setdefault("WANDB_HTTP_TIMEOUT", str(int(timeout)))
    import wandb
    from wandb.errors import AuthenticationError, UsageError

    url = base_url()
    has_key = os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE")
    if not has_key and not _netrc_has(url):
        raise WandbSourceError(
            f"no W&B API key for {url}. --> Do: set WANDB_API_KEY or run `wandb login`. "
            + OFFLINE_HINT)
    try:
        return wandb.Api(timeout=timeout, overrides={"entity": entity} if entity else None)
    except (AuthenticationError, UsageError, ValueError) as exc:
        raise _auth_error(url, exc) from None
    except Exception as exc:  # WandbApiFailedError is a plain Exception subclass
        raise WandbSourceError(f"W&B at {url} failed: {_first_line(exc)}. --> Do: retry later. "
                               + OFFLINE_HINT) from None


def _netrc_has(url: str) -> bool:
    import netrc

    try:
        host = urlparse(url).hostname or ""
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@]*@")
#: How wandb words a login that took too long, and a key the server refused.
_SLOW = ("did not respond in time", "timed out", "timeout", "deadline exceeded")
_REJECTED = ("invalid api key", "api key is invalid", "unauthorized", "forbidden", "permission denied",
             "not logged in", "invalid credentials")


def _auth_error(url: str, exc: Exception) -> WandbSourceError:
    """Why the login failed: unreachable, too slow, the key refused, or something else;
    only a refusal says to change the key."""
    text = _first_line(exc)
    said = _USERINFO.sub(r"\1", str(exc)).replace(url, "").lower()  # a port may spell "401"
    if not _reachable(url):
        return WandbSourceError(
            f"cannot reach W&B at {url}. --> Do: check the network or WANDB_BASE_URL. "
            + OFFLINE_HINT)
    if any(word in said for word in _SLOW):
        return WandbSourceError(
            f"W&B at {url} did not answer in time while checking the API key ({text}). "
            "--> Do: retry later, or raise --timeout. " + OFFLINE_HINT)
    if any(word in said for word in _REJECTED):
        return WandbSourceError(
            f"W&B at {url} rejected the API key ({text}). --> Do: set a valid "
            "WANDB_API_KEY or run `wandb login --relogin`. " + OFFLINE_HINT)
    return WandbSourceError(f"W&B at {url} failed while checking the API key ({text}). "
                            "--> Do: retry later. " + OFFLINE_HINT)


def _first_line(exc: BaseException) -> str:
    """The first line of wandb's message, with any ``user:key@`` taken out of its URLs."""
    text = _USERINFO.sub(r"\1", str(exc)).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def wrap_failure(url: str, what: str, exc: BaseException) -> WandbSourceError:
    return WandbSourceError(f"W&B at {url} failed while {what}: {_first_line(exc)}. "
                            "--> Do: retry later, or raise WANDB__GRAPHQL_RETRY_MAX. " + OFFLINE_HINT)


def run_filters(states: Iterable[str] = DEFAULT_STATES, study: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The server-side filter: the states, and the study's own filter (``extra.altgrad.filters``)."""
    by_state = {"state": {"$in": list(states)}}
    return {"$and": [by_state, dict(study)]} if study else by_state


def list_runs(api: Any, project: str, states: Iterable[str] = DEFAULT_STATES,
              per_page: int = 200, filters: Mapping[str, Any] | None = None) -> list[ListedRun]:
    """Every run of ``ENTITY/PROJECT`` (or PROJECT under the default entity) in ``states``
    that passes ``filters`` (a W&B Mongo-style filter, applied by the server)."""
    filters = run_filters(states, filters)
    try:
        runs = api.runs(project, filters=filters, per_page=per_page, lazy=False)
        return [_listed(run) for run in runs]
    except WandbSourceError:
        raise
    except ValueError as exc:
        if "Could not find project" in str(exc):
            raise WandbSourceError(f"W&B has no project {project} (or the key cannot see it). "
                                   "--> Do: check --project ENTITY/PROJECT.") from None
        raise wrap_failure(base_url(), "listing runs", exc) from None
    except Exception as exc:
        raise wrap_failure(base_url(), "listing runs", exc) from None


def _field(run: Any, name: str) -> Any:
    """A field of the listed node through wandb's public attribute access (None if absent)."""
    try:
        return getattr(run, name)
    except AttributeError:
        return None


def _listed(run: Any) -> ListedRun:
    meta = {
        "run_id": run.id, "name": _field(run, "display_name") or run.id, "state": run.state,
        "url": public_url(run.url), "entity": run.entity, "project": run.project,
        "group": _field(run, "group") or "", "tags": list(_field(run, "tags") or []),
        "created_at": _field(run, "created_at") or "",
        "updated_at": _field(run, "heartbeat_at") or _field(run, "updated_at") or "",
    }
    summary = {k: v for k, v in dict(run.summary_metrics).items() if not k.startswith("_wandb")}
    record = RunRecord(meta=meta, config=dict(run.config), summary=summary)
    info = _field(run, "history_keys")
    info = info if isinstance(info, dict) else {}
    logged = sorted((info.get("keys") or {}).keys())
    # every row: the larger of the row count and the last step + 1 (steps may skip)
    rows = int(np.nanmax([0.0, to_float(_field(run, "history_line_count")),
                          to_float(info.get("lastStep")) + 1]))
    return ListedRun(record, site_keys(logged), rows, run, logged)


def site_keys(logged: Iterable[str]) -> list[str]:
    """The history keys the site reads, out of the keys a run logged (``runs.wanted_history_key``):
    SITE_HISTORY_KEYS, the losses by any spelling, evaluation metrics (candidates for the primary
    metric) and every per-layer key (``grad_norm_l2/<param>``, ``train/grad_snr/<param>``...)."""
    logged = list(logged)
    return sorted(k for k in logged if wanted_history_key(k))


def fetch_history(listed: ListedRun) -> pd.DataFrame:
    """The run's history for its site keys, every row, as columns (_step + float64).

    One ``RunParquetHistory`` request per run: its answer holds the export's URLs and the
    rows not exported yet (``liveData``; every row on a server without exports). The export
    files are then fetched directly (signed URLs); when that is not possible, the client's
    own ``download_history_exports`` and ``history`` paths are the fallback."""
    if not listed.history_keys or listed.rows <= 0:
        import pandas as pd

        return pd.DataFrame({"_step": np.zeros(0, dtype=np.int64)})
    try:
        return _history(listed)
    except StepOutOfRange as exc:  # raised where the run is not known
        raise StepOutOfRange(exc.step, listed.record.run_id) from None


def _history(listed: ListedRun) -> pd.DataFrame:
    what = f"fetching the history of run {listed.record.run_id}"
    try:
        columns = _one_request_columns(listed.handle, listed.history_keys)
    except StepOutOfRange:
        raise
    except Exception as exc:
        raise wrap_failure(base_url(), what, exc) from None
    if columns is not None:
        return _frame(columns)
    try:
        exported = _exported_columns(listed.handle, listed.history_keys)
    except StepOutOfRange:
        raise
    except Exception as exc:  # wandb says "Failed to download history"; the cause says why
        raise wrap_failure(base_url(), what, exc.__cause__ or exc) from None
    if exported is not None:
        return _frame(exported)
    try:  # no keys: with keys W&B keeps only the rows that hold every one of them
        rows = listed.handle.history(samples=listed.rows, pandas=False)
    except Exception as exc:
        raise wrap_failure(base_url(), what, exc) from None
    return rows_to_frame(rows or [], listed.history_keys)


#: The operation wandb-core sends for ``download_history_exports`` (its fields as in 0.31), sent here once.
PARQUET_HISTORY = """
query RunParquetHistory($entity: String!, $project: String!, $name: String!, $liveKeys: [String!]!) {
    project(name: $project, entityName: $entity) {
        run(name: $name) { parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } }
    }
}
"""


def _one_request_columns(run: Any, keys: list[str]) -> dict[str, np.ndarray] | None:
    """_step and ``keys`` from one ``RunParquetHistory`` answer (export files plus live rows);
    None when this client cannot send the query or an export file cannot be read directly."""
    answer = _graphql(run, PARQUET_HISTORY, liveKeys=["_step", *keys])
    if not isinstance(answer, dict):
        return None
    history = ((answer.get("project") or {}).get("run") or {}).get("parquetHistory")
    if not isinstance(history, dict):
        return None
    parts = []
    for url in history.get("parquetUrls") or []:
        table = _read_export(url, keys)
        if table is None:
            return None
        parts.append(table)
    live = live_rows(history.get("liveData"))
    if live or not parts:
        parts.append(_rows_columns(live, keys))
    return _merged(parts, keys)


def loads(text: str | bytes) -> Any:
    """JSON text decoded by orjson when it is installed, else (or when orjson refuses the
    text) by json. orjson refuses what json accepts: bare ``NaN``/``Infinity`` tokens, numbers
    beyond the float range, lone surrogates; json then decodes them as it always did."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _graphql(run: Any, query: str, **variables: Any) -> Any:
    """``query`` through the client's own GraphQL call for its Run queries, decoded by
    :func:`loads` where the client takes a decoder (wandb 0.31's
    ``execute_graphql(..., parse=...)``; ``Run._exec`` always decodes with json.loads, 40 ms
    of a 0.9 MB answer's time). None when this client has neither call."""
    service = getattr(run, "_service_api", None)
    execute = getattr(service, "execute_graphql", None)
    if execute is not None and _takes_parse(type(service)):
        names = {"entity": run.entity, "project": run.project, "name": run.id}  # as Run._exec
        return execute(query, {**names, **variables}, parse=loads)
    execute = getattr(run, "_exec", None)
    return None if execute is None else execute(query, **variables)


@functools.lru_cache(maxsize=8)
def _takes_parse(service_type: type) -> bool:
    """Whether this client's ``execute_graphql`` has a ``parse`` keyword (older ones do not)."""
    try:
        params = inspect.signature(service_type.execute_graphql).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "parse" in params and params["parse"].kind in (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def live_rows(data: Any) -> list[dict[str, Any]]:
    """``liveData`` as row dicts. Its items are GraphQL ``JSON`` values: objects (as the fake
    server sends them, already decoded with the answer) or JSON texts, decoded here in one
    call as one array; per row only when that array does not come out one value per text."""
    rows = list(data) if isinstance(data, list) else []
    at = [i for i, r in enumerate(rows) if isinstance(r, (str, bytes))]
    if at:
        texts = [rows[i] if isinstance(rows[i], str) else rows[i].decode() for i in at]
        try:
            decoded = loads("[" + ",".join(texts) + "]")
        except ValueError:
            decoded = None
        if not isinstance(decoded, list) or len(decoded) != len(texts):
            decoded = [loads(t) for t in texts]  # a malformed row fails here, as it always did
        for i, row in zip(at, decoded):
            rows[i] = row
    return [r for r in rows if isinstance(r, dict)]


def _read_export(url: str, keys: list[str]) -> dict[str, np.ndarray] | None:
    """One export file (a signed URL: no credentials are sent) as columns; None if it cannot
    be fetched or holds no ``_step`` (then the client's own download is used)."""
    import urllib.request

    import pyarrow as pa
    import pyarrow.parquet as pq

    if urlparse(url).scheme not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(url, timeout=DEFAULT_TIMEOUT) as resp:
            data = resp.read()
        parquet = pq.ParquetFile(pa.BufferReader(data))
        wanted = [n for n in parquet.schema_arrow.names if n in {"_step", *keys}]
        table = parquet.read(columns=wanted)
    except (OSError, ValueError, pa.ArrowException):
        return None
    if "_step" not in table.column_names:
        return None
    return _part(arrow_step_column(table.column("_step")), {name: _arrow_column(table, name) for name in keys})


def _merged(parts: list[dict[str, np.ndarray]], keys: list[str]) -> dict[str, np.ndarray]:
    """Export files and live rows as one set of columns in step order; a step both exported
    and live keeps its exported row (the parts come export first)."""
    if len(parts) == 1:
        return parts[0]
    columns = {name: np.concatenate([p[name] for p in parts]) for name in ["_step", *keys]}
    if columns["_step"].dtype.kind == "f":  # steps read as floats: rows without one dropped
        finite = np.isfinite(columns["_step"])
        columns = {name: values[finite] for name, values in columns.items()}
    order = np.argsort(columns["_step"], kind="stable")
    _, first = np.unique(columns["_step"][order], return_index=True)
    return {name: values[order[first]] for name, values in columns.items()}


def _exported_columns(run: Any, keys: list[str]) -> dict[str, np.ndarray] | None:
    """_step and ``keys`` from the run's Parquet history export; None when the export is
    incomplete (live rows not exported yet), missing or failed to download."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from wandb.apis.public import IncompleteRunHistoryError

    with tempfile.TemporaryDirectory(prefix="altgrad-history-") as folder:
        try:
            result = run.download_history_exports(folder, require_complete_history=True)
        except IncompleteRunHistoryError:
            return None
        if result.errors or not result.paths:
            return None
        wanted = {"_step", *keys}
        tables = [pq.read_table(path, columns=[n for n in pq.read_schema(path).names if n in wanted])
                  for path in sorted(result.paths)]
    table = pa.concat_tables(tables, promote_options="permissive")
    if "_step" not in table.column_names:
        return None
    return _part(arrow_step_column(table.column("_step")), {name: _arrow_column(table, name) for name in keys})


def _arrow_column(table: Any, name: str) -> np.ndarray:
    """One column as float64 (NaN where absent); non-numeric cells read as rows_to_frame does."""
    import pyarrow as pa

    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = table.column(name)
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
            or pa.types.is_null(kind):
        return column.cast(pa.float64()).to_numpy()
    return _column(column.to_pylist())


def rows_to_frame(rows: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    """History rows (dicts; "NaN"/"Infinity" strings, None, junk) to _step + float64 columns."""
    return _frame(_rows_columns(rows, keys))


def _rows_columns(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, np.ndarray]:
    return _part(step_column([r.get("_step") for r in rows]),
                 {name: _column([r.get(name) for r in rows]) for name in keys})


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """_step (int64, exact) + float64 columns."""
    import pandas as pd

    return pd.DataFrame({**columns, "_step": columns["_step"].astype(np.int64)})


def _part(steps: tuple[np.ndarray, np.ndarray], columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``_step`` and ``columns`` of the rows that have a step (``steps``: values, which)."""
    values, ok = steps
    if ok.all():
        return {"_step": values, **columns}
    return {"_step": values[ok], **{name: column[ok] for name, column in columns.items()}}





def _column(values: list[Any]) -> np.ndarray:
    try:  # numpy reads floats, ints, bools, None and "NaN"/"Infinity" strings in C
        column = np.array(values, dtype=np.float64)
        if column.ndim == 1:
            return column
    except (TypeError, ValueError):  # a string that is not a number, a dict...
        pass
    return np.array([to_float(v) for v in values], dtype=np.float64)
