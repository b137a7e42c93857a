"""The GraphQL operations a fake W&B server answers, and the JSON encoding of the answers.

Part of the fake W&B server (tests/fake_wandb.py), which inherits :class:`GraphQL` and adds
the HTTP and fault layer. Operations answered (see shared/reference/wandb-client.md):
Viewer, GetDefaultEntity, Runs, Run, RunSampledHistory, RunFullHistory (its ``events``:
system metrics), RunHistoryKeys, RunFiles (``directUrl``s served by ``GET /files/<run
id>/<name>``), RunLogFiles (altgrad's one request for ``events`` and ``files``),
RunParquetHistory (whose URL points back at the server: ``GET /parquet/<run id>.parquet``;
wandb 0.31's ``scan_history`` and ``download_history_exports`` read history that way; a
``running`` run has no export yet, all of its rows are live) and HistoryPage. Anything else
gets a GraphQL error naming the operation.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from tests.fake_wandb_runs import ServedRun, matches


class GraphQL:
    """Answers GraphQL operations from ``runs`` (run id -> ServedRun) of one entity/project."""

    entity: str
    project: str
    runs: dict[str, ServedRun]
    live_rows: str
    _lock: threading.Lock

    @property
    def url(self) -> str:
        raise NotImplementedError

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

    def _run(self, var: dict[str, Any]) -> ServedRun | None:
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
        if re.search(r"\bevents\s*\(", query):  # history(stream="system")
            return {"project": {"run": {"events": self._events(run, var)}}}
        rows = run.rows_json(None, int(var.get("samples") or 500))
        return {"project": {"run": {"history": RawJSON(json.dumps(rows))}}}

    def _events(self, run: ServedRun, var: dict[str, Any]) -> RawJSON:
        return RawJSON(json.dumps(run.events_json(int(var.get("samples") or 500))))

    def _op_RunLogFiles(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        """altgrad's one request for a run's ``events`` and ``files`` (the fields of
        RunFullHistory's system stream and of RunFiles, answered as those are)."""
        run = self._run(var)
        if run is None:
            return {"project": {"run": None}}
        files = self._op_RunFiles(query, var)["project"]["run"]["files"]
        return {"project": {"run": {"events": self._events(run, var), "files": files}}}

    def _op_RunFiles(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        """``run.files(names=...)``: each file's ``directUrl`` points back at this server
        (``GET /files/<run id>/<name>``, which honours a ``Range: bytes=-N`` header)."""
        run = self._run(var)
        if run is None:
            return {"project": {"internalId": "UHJvamVjdDox", "run": None}}
        files = run.run_files()
        names = [n for n in (var.get("fileNames") or sorted(files)) if n in files]
        edges = [{"node": {"id": f"file-{i}", "name": n, "url": f"{self.url}/files/{run.id}/{n}",
                           "directUrl": f"{self.url}/files/{run.id}/{n}", "sizeBytes": len(files[n]),
                           "mimetype": "text/plain", "updatedAt": None, "md5": None},
                  "cursor": str(i + 1)} for i, n in enumerate(names)]
        return {"project": {"internalId": "UHJvamVjdDox", "run": {
            "fileCount": len(files), "files": {"edges": edges, "pageInfo": {
                "endCursor": str(len(edges)), "hasNextPage": False}}}}}

    def _op_RunHistoryKeys(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        return {"project": {"run": {"historyKeys": run.history_keys()} if run else None}}

    def _op_RunParquetHistory(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        """scan_history reads the run's exported Parquet file, served by this server."""
        run = self._run({**var, "name": var.get("runName", var.get("name"))})
        if run is None:
            return {"project": {"run": None}}
        if not self.exports or run.record.meta.get("state") == "running":  # not exported: every row is live
            return {"project": {"run": {"parquetHistory": {  # rows encoded once, as a server stores them
                "parquetUrls": [], "liveData": self._live_data(run.rows_json(None, 0))}}}}
        urls = [f"{self.url}/parquet/{run.id}.parquet"] if len(run.record.history) else []
        return {"project": {"run": {"parquetHistory": {"parquetUrls": urls, "liveData": []}}}}

    def _live_data(self, rows: list[str]) -> Any:
        """liveData as ``live_rows`` says: the rows as objects, or as JSON texts."""
        if self.live_rows == "objects":
            return RawJSON("[" + ",".join(rows) + "]")
        if self.live_rows == "bare-texts":
            rows = [re.sub(r'"(NaN|-?Infinity)"', r"\1", row) for row in rows]
        return rows

    def _op_HistoryPage(self, query: str, var: dict[str, Any]) -> dict[str, Any]:
        run = self._run(var)
        if run is None:
            return {"project": {"run": None}}
        lo, hi = int(var.get("minStep") or 0), int(var.get("maxStep") or 1 << 62)
        rows = [r for r in run.rows() if lo <= r["_step"] < hi][: int(var.get("pageSize") or 1000)]
        return {"project": {"run": {"history": [json.dumps(r) for r in rows]}}}


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
