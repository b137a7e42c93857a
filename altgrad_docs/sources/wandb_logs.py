"""A run's log beyond its metrics from the W&B Public API: the environment, system metrics and
console output, in the structure ``sources/offline.py`` gives an offline run
(``meta["run_log"]``, written by the snapshot to ``logs/<run>.json``).

Per run: one GraphQL request (:data:`RUN_LOG_QUERY`, sent through the client's own call) for
the ``events`` stream (system metrics, as ``run.history(stream="system")`` reads them) and the
``directUrl`` of ``wandb-metadata.json`` and ``output.log`` (as ``run.files(names=...)`` reads
them); each file then read from its ``directUrl`` (a signed URL: no credentials are sent; the
console's last :data:`MAX_CONSOLE_BYTES` only, by a ``Range`` request). W&B's
API exposes no alerts (``wandb.alert`` is sent to Slack or e-mail, not stored with the run).
A part that cannot be read is a warning naming the run, never a failed fetch; the fetch
stores the console even when a site's ``console: false`` leaves it out of the pages (the
snapshot serves any site; the option is the site's choice).
"""

from __future__ import annotations

import json
import logging
import math
import urllib.request
from typing import Any
from urllib.parse import urlparse

from ..runs import public_url, to_float

LOG = logging.getLogger("mkdocs.plugins.altgrad")

#: The console output kept per run: its last MiB.
MAX_CONSOLE_BYTES = 1 << 20
#: The metadata file is small; anything larger is not one.
MAX_METADATA_BYTES = 1 << 20
#: System-metric samples asked of the server (it samples a longer run down to this many).
SYSTEM_SAMPLES = 1000
METADATA, CONSOLE = "wandb-metadata.json", "output.log"
TIMEOUT = 19


#: One request per run for its system metrics (the ``events`` stream that
#: ``run.history(stream="system")`` reads) and its two files' download addresses (the
#: ``files`` field that ``run.files(names=...)`` reads), fields as wandb 0.31 asks for them.
RUN_LOG_QUERY = """
query RunLogFiles($entity: String!, $project: String!, $name: String!, $samples: Int, $fileNames: [String]) {
    project(name: $project, entityName: $entity) {
        run(name: $name) {
            events(samples: $samples)
            files(names: $fileNames) { edges { node { name directUrl sizeBytes } } }
        }
    }
}
"""


def fetch_run_log(run: Any, run_id: str) -> dict[str, Any]:
    """The run's environment, system metrics and console output ({} for none of them)."""
    from .wandb_api import _graphql

    log: dict[str, Any] = {}
    problems: list[str] = []
    try:
        answer = _graphql(run, RUN_LOG_QUERY, samples=SYSTEM_SAMPLES, fileNames=[METADATA, CONSOLE])
        node = ((answer or {}).get("project") or {}).get("run")
        if not isinstance(node, dict):
            raise ValueError("no such run in the answer")
    except Exception as exc:  # a wandb CommError, a timeout, a GraphQL error...
        node = {}
        problems.append(f"its system metrics and files ({_short(exc)})")
    if node:
        try:
            log["system"] = system_samples([_row(e) for e in node.get("events") or []])
        except ValueError as exc:
            problems.append(f"its system metrics ({_short(exc)})")
    edges = ((node.get("files") or {}).get("edges") or []) if node else []
    files = {e["node"]["name"]: e["node"] for e in edges if isinstance((e or {}).get("node"), dict)}
    if METADATA in files:
        try:
            data, _ = _download(files[METADATA], MAX_METADATA_BYTES)
            log["environment"] = environment(json.loads(data.decode("utf-8", "replace")))
        except Exception as exc:
            problems.append(f"{METADATA} ({_short(exc)})")
    if CONSOLE in files:
        try:
            data, cut = _download(files[CONSOLE], MAX_CONSOLE_BYTES)
            log["console"], log_cut = console_lines(data, cut)
            if log_cut:
                log["console_cut"] = True
        except Exception as exc:
            problems.append(f"{CONSOLE} ({_short(exc)})")
    if problems:
        LOG.warning("run %s: W&B did not give %s; its page shows the rest. --> Do: fetch again "
                    "later (the run's history is fetched anew when the run changes).",
                    run_id, "; ".join(problems))
    return {k: v for k, v in log.items() if v}


def _row(event: Any) -> Any:
    """An ``events`` item: a JSON text (as W&B sends it) or an already decoded object."""
    return json.loads(event) if isinstance(event, (str, bytes)) else event


def environment(meta: Any) -> dict[str, Any]:
    """wandb-metadata.json's fields under the names the offline reader gives them (no e-mail
    or user name; a git remote without any ``user:token@``)."""
    if not isinstance(meta, dict):
        return {}
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    memory = meta.get("memory") if isinstance(meta.get("memory"), dict) else {}
    args = meta.get("args")
    fields = {"host": meta.get("host"), "os": meta.get("os"), "python": meta.get("python"),
              "program": meta.get("program") or meta.get("codePath"),
              "args": " ".join(str(a) for a in args) if isinstance(args, list) else args,
              "executable": meta.get("executable"), "root": meta.get("root"),
              "cpu_count": meta.get("cpu_count"), "memory_bytes": _int(memory.get("total")),
              "gpu": meta.get("gpu"), "gpu_count": meta.get("gpu_count"),
              "git_commit": git.get("commit"),
              "git_remote": public_url(git.get("remote")) if git.get("remote") else None}
    return {k: v if isinstance(v, (int, float)) else str(v)
            for k, v in fields.items() if v not in ("", None, 0)}


def system_samples(events: Any) -> list[dict[str, Any]]:
    """The ``events`` stream's rows as the offline reader's samples: ``time`` and each
    ``system.<key>`` under ``<key>``; non-numbers and non-finite values left out."""
    samples = []
    for row in events if isinstance(events, list) else []:
        if not isinstance(row, dict):
            continue
        sample: dict[str, Any] = {"time": to_float(row.get("_timestamp"))}
        for key, value in row.items():
            if key.startswith("system."):
                number = to_float(value) if not isinstance(value, (str, bool, dict, list)) else math.nan
                if math.isfinite(number):
                    sample[key[len("system."):]] = number
        if len(sample) > 1:
            samples.append(sample if math.isfinite(sample["time"]) else {k: v for k, v in sample.items() if k != "time"})
    return samples


def console_lines(data: bytes, cut: bool) -> tuple[list[str], bool]:
    """The console text as lines (ends kept); a tail that starts mid-line drops that part."""
    text = data.decode("utf-8", "replace")
    if cut and "\n" in text:
        text = text.split("\n", 1)[1]
    return text.splitlines(keepends=True), cut


def _download(file: dict[str, Any], limit: int) -> tuple[bytes, bool]:
    """The file's last ``limit`` bytes and whether it was longer, from its ``directUrl``."""
    url = str(file.get("directUrl") or "")
    if urlparse(url).scheme not in ("http", "https"):
        raise ValueError("no download address")
    size = int(to_float(file.get("sizeBytes")) if math.isfinite(to_float(file.get("sizeBytes"))) else 0)
    request = urllib.request.Request(url)
    if size > limit:
        request.add_header("Range", f"bytes=-{limit}")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
        data = resp.read()
    return (data[-limit:], True) if size > limit or len(data) > limit else (data, False)


def _int(value: Any) -> int | None:
    number = to_float(value)
    return int(number) if math.isfinite(number) and number > 0 else None


def _short(exc: BaseException) -> str:
    from .wandb_api import _first_line  # its first line, without any user:key@ in a URL

    return _first_line(exc)[:160]
