"""A fake W&B server: real HTTP on 127.0.0.1, enough GraphQL for the real wandb 0.31 client.

The real client (Python ``wandb.Api`` and its Go helper ``wandb-core``) does all the talking;
this server only answers. It serves the :class:`~altgrad_docs.runs.RunRecord` objects it is
given, applies ``Runs`` filters server-side with cursor pagination, checks the API key, and
can inject faults (HTTP 500, 429 + Retry-After, a response slower than the client's timeout,
malformed JSON, a dropped connection) and a fixed latency on every request.

Operations answered (see shared/reference/wandb-client.md): Viewer, GetDefaultEntity, Runs,
Run, RunSampledHistory, RunFullHistory, RunHistoryKeys, RunParquetHistory (whose URL points
back at this server: ``GET /parquet/<run id>.parquet``; wandb 0.31's ``scan_history`` reads
history that way) and HistoryPage. Anything else gets a GraphQL error naming the operation
(``SampledHistoryPage`` was never sent by wandb 0.31 in our trials, so it is not served).
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

import numpy as np

from altgrad_docs.runs import RunRecord

API_KEY = "fake" + "0123456789" * 4  # 44 chars of [A-Za-z0-9_], as the client demands
ENTITY = "test-entity"
_OP = re.compile(r"\b(?:query|mutation)\s+(\w+)")


@dataclass
class Fault:
    """A fault served to the next ``count`` matching requests (None = every request)."""

    kind: str  # "500" | "429" | "slow" | "malformed" | "drop" | "401"
    count: int | None = 1
    op: str | None = None  # only requests of this GraphQL operation
    retry_after: int = 1
    delay: float = 0.0


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


class _ServedRun:
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


class FakeWandb:
    """The server. ``url`` is what WANDB_BASE_URL should be; ``requests`` logs (op, variables)."""

    def __init__(self, records: Iterable[RunRecord] = (), *, entity: str = ENTITY,
                 project: str = "altgrad", api_key: str = API_KEY, latency: float = 0.0) -> None:
        self.entity, self.project, self.api_key, self.latency = entity, project, api_key, latency
        self.runs: dict[str, _ServedRun] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.set_runs(records)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "FakeWandb":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def set_runs(self, records: Iterable[RunRecord]) -> None:
        served = [_ServedRun(r, self.entity) for r in records]
        with self._lock:
            self.runs = {s.id: s for s in sorted(served, key=lambda s: (s.record.meta.get("created_at") or "", s.id))}

    def prepare(self) -> "FakeWandb":
        """Pre-encode every run's history (as a real server has it stored), e.g. before timing."""
        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            run.prepare()
        return self

    def add_fault(self, kind: str, **kw: Any) -> Fault:
        fault = Fault(kind, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def ops(self, name: str | None = None) -> list[str]:
        with self._lock:
            return [op for op, _ in self.requests if name is None or op == name]

    def take_fault(self, op: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.op in (None, op):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # ---- GraphQL ---------------------------------------------------------------------------
    def answer(self, op: str, query: str, var: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            return {"errors": [{"message": f"fake W&B server does not know operation {op}"}]}
        return {"data": handler(query, var)}

    def _viewer(self) -> dict[str, Any]:
        return {"id": "VXNlcjox", "entity": self.entity, "username": "tester", "email": None,
                "admin": False, "flags": "{}", "teams": {"edges": []}}

    def _op_Viewer(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        return {"viewer": self._viewer()}

    def _op_GetDefaultEntity(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        return {"viewer": self._viewer()}

    def _project_ok(self, var: dict[str, Any]) -> bool:
        return var.get("project") == self.project and var.get("entity") == self.entity

    def _op_Runs(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        if not self._project_ok(var):
            return {"project": None}
        flt = json.loads(var.get("filters") or "{}")
        with self._lock:
            chosen = [s for s in self.runs.values() if matches(s.doc(), flt)]
        if str(var.get("order") or "").startswith("-"):
            chosen.reverse()
        start = int(var["cursor"]) if var.get("cursor") else 0
        per_page = int(var.get("perPage") or 50)
        page = chosen[start : start + per_page]
        full = "fragment RunFragment on Run" in query
        edges = [{"node": s.node(full), "cursor": str(start + i + 1)} for i, s in enumerate(page)]
        return {"project": {
            "internalId": "UHJvamVjdDox", "runCount": len(chosen), "readOnly": False,
            "runs": {"edges": edges, "pageInfo": {"endCursor": str(start + len(page)),
                                                   "hasNextPage": start + per_page < len(chosen)}},
        }}

    def _run(self, var: dict[str, Any]) -> _ServedRun | None:
        if not self._project_ok(var):
            return None
        with self._lock:
            return self.runs.get(var.get("name"))

    def _op_Run(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        node = run.node("fragment RunFragment on Run" in query) if run else None
        return {"project": {"run": node}}

    def _op_RunSampledHistory(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        if run is None:
            return {"project": {"run": None}}
        out = []
        for spec in var.get("specs") or []:
            spec = json.loads(spec)
            rows = run.rows_json(spec.get("keys", []), int(spec.get("samples") or 500))
            out.append(RawJSON("[" + ",".join(rows) + "]"))
        return {"project": {"run": {"sampledHistory": out}}}

    def _op_RunFullHistory(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        if run is None:
            return {"project": {"run": None}}
        rows = run.rows_json(None, int(var.get("samples") or 500))
        return {"project": {"run": {"history": RawJSON(json.dumps(rows))}}}

    def _op_RunHistoryKeys(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        return {"project": {"run": {"historyKeys": run.history_keys()} if run else None}}

    def _op_RunParquetHistory(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        """scan_history reads the run's exported Parquet file, served by this server."""
        run = self._run({**var, "name": var.get("runName", var.get("name"))})
        if run is None:
            return {"project": {"run": None}}
        if run.record.meta.get("state") == "running":  # not exported yet: every row is live
            return {"project": {"run": {"parquetHistory": {
                "parquetUrls": [], "liveData": [json.loads(r) for r in run.rows_json(None, 0)]}}}}
        urls = [f"{self.url}/parquet/{run.id}.parquet"] if len(run.record.history) else []
        return {"project": {"run": {"parquetHistory": {"parquetUrls": urls, "liveData": []}}}}

    def parquet_bytes(self, run_id: str) -> bytes | None:
        with self._lock:
            run = self.runs.get(run_id)
        return None if run is None else run.parquet()

    def _op_HistoryPage(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        if run is None:
            return {"project": {"run": None}}
        lo, hi = int(var.get("minStep") or 0), int(var.get("maxStep") or 1 << 62)
        rows = [r for r in run.rows() if lo <= r["_step"] < hi][: int(var.get("pageSize") or 1000)]
        return {"project": {"run": {"history": [json.dumps(r) for r in rows]}}}


def _cell(prefix: str, value: Any) -> str:
    return prefix + (repr(value) if type(value) is float else json.dumps(value))


def _sample_index(n: int, samples: int) -> list[int]:
    """Evenly spaced row indices, first and last kept, as W&B's sampled history does."""
    if n <= samples or samples <= 0:
        return list(range(n))
    return np.unique(np.linspace(0, n - 1, samples).round().astype(int)).tolist()


class RawJSON(str):
    """Text that is already JSON: spliced into the response as it is."""


def encode(answer: Any) -> bytes:
    """json.dumps, with RawJSON values spliced in verbatim (history pages are pre-encoded)."""
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, RawJSON):
            raws.append(value)
            return f"\u0000raw{len(raws) - 1}\u0000"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(answer), allow_nan=False)
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{i}\\u0000"', raw, 1)
    return text.encode()


def _handler(server: FakeWandb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            found = re.fullmatch(r"/parquet/([^/]+)\.parquet", self.path)
            with server._lock:
                server.requests.append(("GET parquet", {"run": found.group(1) if found else None}))
            if server.latency:
                time.sleep(server.latency)
            data = server.parquet_bytes(found.group(1)) if found else None
            if data is None:
                self._send(404, b'{"error":"not found"}')
            else:
                self._send(200, data, {"Content-Type": "application/octet-stream"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.startswith("/graphql"):
                self._send(404, b'{"error":"not found"}')
                return
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                self._send(400, b'{"errors":[{"message":"bad json"}]}')
                return
            query = payload.get("query") or ""
            found = _OP.search(query)
            op = payload.get("operationName") or (found.group(1) if found else "anonymous")
            variables = payload.get("variables") or {}
            with server._lock:
                server.requests.append((op, variables))
            if server.latency:
                time.sleep(server.latency)
            if not self._authorised():
                self._send(401, b'{"errors":[{"message":"invalid api key"}]}')
                return
            fault = server.take_fault(op)
            if fault is not None and self._serve_fault(fault):
                return
            self._send(200, encode(server.answer(op, query, variables)))

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization") or ""
            if not auth.startswith("Basic "):
                return False
            try:
                user_key = base64.b64decode(auth[6:]).decode()
            except ValueError:
                return False
            return user_key.split(":", 1)[-1] == server.api_key

        def _serve_fault(self, fault: Fault) -> bool:
            if fault.kind == "500":
                self._send(500, b'{"errors":[{"message":"internal server error"}]}')
            elif fault.kind == "401":
                self._send(401, b'{"errors":[{"message":"invalid api key"}]}')
            elif fault.kind == "429":
                self._send(429, b'{"errors":[{"message":"rate limited"}]}',
                           {"Retry-After": str(fault.retry_after)})
            elif fault.kind == "malformed":
                self._send(200, b'{"data": {"project": {"runs": [')
            elif fault.kind == "drop":
                self.close_connection = True
                self.connection.close()
            elif fault.kind == "slow":
                time.sleep(fault.delay)
                return False  # then answer normally (the client has given up by then)
            return True

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(code)
                headers = {"Content-Type": "application/json", **(headers or {})}
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
