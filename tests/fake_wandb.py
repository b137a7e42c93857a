"""A fake W&B server: real HTTP on 127.0.0.1, enough GraphQL for the real wandb 0.31 client.

The real client (Python ``wandb.Api`` and its Go helper ``wandb-core``) does all the talking;
this server only answers. It serves the :class:`~altgrad_docs.runs.RunRecord` objects it is
given, applies ``Runs`` filters server-side with cursor pagination, checks the API key, and
can inject faults (HTTP 500, 429 + Retry-After, a response slower than the client's timeout,
malformed JSON, a body that is not JSON, GraphQL errors, a dropped connection) and a fixed latency on every request (the Parquet
downloads too). ``requests`` logs every request as (operation, variables); a history
export download is logged as ``GET parquet``, a run file's as ``GET <name>`` (faults
may target it by that name).

Three modules: this one (the server, its HTTP handler and the fault layer),
``fake_wandb_graphql`` (the operations answered, and the JSON encoding) and
``fake_wandb_runs`` (a run as the server holds it, and the run filters).
(``SampledHistoryPage`` was never sent by wandb 0.31 in our trials, so it is not served.)
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from altgrad_docs.runs import RunRecord
from tests.fake_wandb_graphql import GraphQL, encode
from tests.fake_wandb_runs import ServedRun

API_KEY = "fake" + "0123456789" * 4  # 44 chars of [A-Za-z0-9_], as the client demands
ENTITY = "test-entity"
_OP = re.compile(r"\b(?:query|mutation)\s+(\w+)")


@dataclass
class Fault:
    """A fault served to the next ``count`` matching requests (None = every request)."""

    kind: str  # "500" | "429" | "slow" | "malformed" | "nonjson" | "graphql" | "drop" | "401"
    count: int | None = 1
    op: str | None = None  # only requests of this GraphQL operation
    retry_after: int = 1
    delay: float = 0.0


class FakeWandb(GraphQL):
    """The server. ``url`` is what WANDB_BASE_URL should be; ``requests`` logs (op, variables)."""

    def __init__(self, records: Iterable[RunRecord] = (), *, entity: str = ENTITY,
                 project: str = "altgrad", api_key: str = API_KEY, latency: float = 0.0,
                 exports: bool = True) -> None:
        self.entity, self.project, self.api_key, self.latency = entity, project, api_key, latency
        self.exports = exports  # False: no run has a Parquet export, every row is live data
        # how liveData's items (GraphQL JSON values) are sent: "objects"; "texts", one JSON
        # text per row; "bare-texts", texts whose non-finite numbers are bare NaN/Infinity
        # tokens (as Python's json writes them), which only a lenient decoder reads
        self.live_rows = "objects"
        self.runs: dict[str, ServedRun] = {}
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
        served = [ServedRun(r, self.entity) for r in records]
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

    def parquet_bytes(self, run_id: str) -> bytes | None:
        with self._lock:
            run = self.runs.get(run_id)
        return None if run is None else run.parquet()


def _handler(server: FakeWandb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/files/"):
                self._get_file()
                return
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

        def _get_file(self) -> None:
            """A run file (``RunFiles``' directUrl); logged and faulted as ``GET <name>``."""
            run_id, _, name = self.path[len("/files/"):].partition("/")
            op = f"GET {name}"
            with server._lock:
                server.requests.append((op, {"run": run_id}))
            fault = server.take_fault(op)
            if fault is not None and self._serve_fault(fault):
                return
            with server._lock:
                run = server.runs.get(run_id)
            data = run.run_files().get(name) if run else None
            if data is None:
                self._send(404, b"not found", {"Content-Type": "text/plain"})
                return
            tail = re.fullmatch(r"bytes=-(\d+)", self.headers.get("Range") or "")
            if tail and int(tail.group(1)) < len(data):
                start = len(data) - int(tail.group(1))
                self._send(206, data[start:], {"Content-Type": "text/plain",
                                               "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
                return
            self._send(200, data, {"Content-Type": "text/plain"})

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
            elif fault.kind == "nonjson":  # a proxy's error page
                self._send(200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
            elif fault.kind == "graphql":  # HTTP 200 with GraphQL errors and no data
                self._send(200, b'{"data": null, "errors": [{"message": "query failed", "path": ["project"]}]}')
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
