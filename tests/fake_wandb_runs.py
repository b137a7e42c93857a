"""The runs a fake W&B server holds: GraphQL nodes, history rows as W&B sends them, filters.

Part of the fake W&B server (tests/fake_wandb.py). A :class:`ServedRun` wraps one
:class:`~altgrad_docs.runs.RunRecord` and answers what the GraphQL operations ask of a run:
its ``Runs``/``Run`` node, its history rows (pre-encoded once, as a real server has them
stored), its Parquet history export and its ``historyKeys``. :func:`matches` applies the
Mongo-style filters that ``api.runs(filters=...)`` sends.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, Iterable

import numpy as np

from altgrad_docs.runs import RunRecord





def _json_number(value: float) -> Any:
    """W&B spells non-finite numbers as strings; bare NaN would break wandb-core."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    return _json_number(value) if isinstance(value, float) else value


class ServedRun:
    """One run as the server holds it: the GraphQL node and the history rows."""

    def __init__(self, record: RunRecord, entity: str) -> None:
        self.record = record
        self.id = record.run_id
        self.entity = record.meta.get("entity") or entity
        self.history_version = 0
        self._columns: dict[str, list[Any]] | None = None
        self._pairs: dict[str, list[str]] | None = None
        self._parquet: bytes | None = None

    def columns(self) -> dict[str, list[Any]]:
        """History columns as JSON-ready lists (non-finite numbers spelled as strings)."""
        if self._columns is None:
            h = self.record.history
            self._columns = {"_step": [int(v) for v in h["_step"].tolist()]}
            for c in h.columns:
                if c != "_step":
                    values = h[c].tolist()
                    if not np.isfinite(h[c].to_numpy(dtype=float, na_value=np.nan)).all():
                        values = [_jsonable(v) for v in values]
                    self._columns[c] = values
        return self._columns

    def rows(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """History rows with ``_step`` and the asked keys the run logged (all if None)."""
        names = self._names(keys)
        cols = self.columns()
        return [dict(zip(names, values)) for values in zip(*(cols[n] for n in names))]

    def _names(self, keys: Iterable[str] | None) -> list[str]:
        cols = self.columns()
        names = ["_step", *(k for k in (cols if keys is None else keys) if k in cols and k != "_step")]
        return [] if len(names) == 1 and keys is not None else names

    def prepare(self) -> None:
        """Encode every cell once ("key":value texts) and the Parquet export; later requests
        only join them."""
        if self._pairs is None:
            self._pairs = {c: [_cell(json.dumps(c) + ":", v) for v in values]
                           for c, values in self.columns().items()}
        self.parquet()

    def parquet(self) -> bytes:
        """The run's history export, as W&B serves it from its parquetUrls (made once)."""
        if self._parquet is None:
            import io

            import pyarrow as pa
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(self.record.history, preserve_index=False), buf)
            self._parquet = buf.getvalue()
        return self._parquet

    def rows_json(self, keys: Iterable[str] | None, samples: int) -> list[str]:
        """The same rows as JSON texts, from per-cell texts encoded once per run (fast)."""
        self.prepare()
        names = self._names(keys)
        if not names:
            return []
        pairs = [self._pairs[n] for n in names]
        index = _sample_index(len(pairs[0]), samples)
        return ["{" + ",".join(cells) + "}" for cells in
                zip(*([col[i] for i in index] for col in pairs))]

    def history_keys(self) -> dict[str, Any]:
        keys = [c for c in self.record.history.columns if c != "_step"]
        last = int(self.record.history["_step"].max()) if len(self.record.history) else -1
        return {"lastStep": last,
                "keys": {k: {"typeCounts": [{"type": "number", "count": 1}]} for k in keys}}

    def node(self, full: bool) -> dict[str, Any]:
        m = self.record.meta
        node: dict[str, Any] = {
            "id": base64.b64encode(f"Run:{self.id}".encode()).decode(),
            "projectId": "1", "name": self.id, "displayName": m.get("name"),
            "tags": list(m.get("tags") or []), "sweepName": None, "state": m.get("state"),
            "group": m.get("group"), "jobType": None, "commit": None, "readOnly": False,
            "createdAt": m.get("created_at"), "heartbeatAt": m.get("updated_at"),
            "description": None, "notes": m.get("notes"),
            "historyLineCount": len(self.record.history),
            "user": {"name": "tester", "username": "tester"},
        }
        if full:
            node.update(
                config=json.dumps({k: {"value": _jsonable(v), "desc": None}
                                   for k, v in self.record.config.items()}),
                summaryMetrics=json.dumps(_jsonable(self.record.summary)),
                systemMetrics="{}",
                historyKeys=self.history_keys(),
            )
        return node

    def run_files(self) -> dict[str, bytes]:
        """The run's files as W&B stores them, from ``meta["run_log"]`` (the offline reader's
        structure): ``wandb-metadata.json`` (wandb 0.31's field names) and ``output.log``."""
        log = self.record.meta.get("run_log") or {}
        files: dict[str, bytes] = {}
        env = log.get("environment") or {}
        if env:
            meta = {k: env[k] for k in ("host", "os", "python", "program", "executable", "root",
                                        "cpu_count", "gpu", "gpu_count") if k in env}
            meta.update(args=str(env.get("args") or "").split(), email="tester@example.invalid",
                        startedAt=self.record.meta.get("created_at"),
                        git={"commit": env.get("git_commit"), "remote": env.get("git_remote")})
            if env.get("memory_bytes"):
                meta["memory"] = {"total": str(env["memory_bytes"])}  # wandb writes it as text
            files["wandb-metadata.json"] = json.dumps(meta).encode()
        if log.get("console"):
            files["output.log"] = "".join(log["console"]).encode()
        return files

    def events_json(self, samples: int) -> list[str]:
        """The ``events`` stream (system metrics) as W&B sends it: one JSON text per sample,
        each metric under ``system.<key>``."""
        rows = (self.record.meta.get("run_log") or {}).get("system") or []
        start = rows[0].get("time", 0.0) if rows else 0.0
        out = []
        for i in _sample_index(len(rows), samples):
            row = rows[i]
            event = {f"system.{k}": _jsonable(v) for k, v in row.items() if k != "time"}
            event.update(_timestamp=row.get("time"), _runtime=(row.get("time") or 0.0) - (start or 0.0),
                         _wandb=True)
            out.append(json.dumps(event))
        return out

    def doc(self) -> dict[str, Any]:
        """The fields filters can test, Mongo style."""
        m = self.record.meta
        doc = {"name": self.id, "state": m.get("state"), "displayName": m.get("name"),
               "display_name": m.get("name"), "tags": list(m.get("tags") or []),
               "group": m.get("group"), "createdAt": m.get("created_at")}
        doc.update({f"config.{k}.value": v for k, v in self.record.config.items()})
        doc.update({f"summary_metrics.{k}": v for k, v in self.record.summary.items()})
        return doc


def matches(doc: dict[str, Any], flt: Any) -> bool:
    """A small Mongo-style filter: field equality, $in, $nin, $eq, $ne, $and, $or."""
    if not isinstance(flt, dict):
        return True
    for key, cond in flt.items():
        if key == "$and":
            ok = all(matches(doc, c) for c in cond)
        elif key == "$or":
            ok = any(matches(doc, c) for c in cond)
        else:
            ok = _test(doc.get(key), cond)
        if not ok:
            return False
    return True


def _test(value: Any, cond: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    if not isinstance(cond, dict):
        return cond in values
    checks = {"$in": lambda c: any(v in c for v in values),
              "$nin": lambda c: not any(v in c for v in values),
              "$eq": lambda c: c in values, "$ne": lambda c: c not in values}
    return all(checks[op](c) if op in checks else False for op, c in cond.items())


def _cell(prefix: str, value: Any) -> str:
    return prefix + (repr(value) if type(value) is float else json.dumps(value))


def _sample_index(n: int, samples: int) -> list[int]:
    """Evenly spaced row indices, first and last kept, as W&B's sampled history does."""
    if n <= samples or samples <= 0:
        return list(range(n))
    return np.unique(np.linspace(0, n - 1, samples).round().astype(int)).tolist()
