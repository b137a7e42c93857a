"""Fetch faults against the fake W&B, table-driven (issue #12).

Each case runs ``altgrad-docs fetch`` in a subprocess against a server that holds 4 runs and
serves one fault, and checks the same things: the exit code; one line on stderr naming the
cause, with a "--> Do:" hint; a bound on seconds; the previous snapshot byte-identical; no
temp folder beside it or in TMPDIR; no wandb-core of that fetch left running; no API key in
the output; and, from the server's request log, that the fault was actually hit (a kill came
after a history request, while the fetch still ran). The key is given inside WANDB_BASE_URL
too (``http://user:KEY@host``), so every message is checked for a leaked URL key as well.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from altgrad_docs.snapshot import write_snapshot
from benchmarks.synthetic import synthetic_records
from tests.conftest import run_cli, wandb_env
from tests.fake_wandb import API_KEY, ENTITY

PROJECT = f"{ENTITY}/altgrad"
URL_KEY = "UrLkEy0000secret"
HISTORY_OPS = ("RunParquetHistory", "GET parquet")


@dataclass(frozen=True)
class Case:
    id: str
    expect: str  # in the one stderr line
    faults: tuple[dict, ...] = ()  # FakeWandb.add_fault keyword arguments
    hit: str = ""  # the operation the server log must show
    code: int = 2
    seconds: float = 30
    env: dict = field(default_factory=dict)
    refused: bool = False  # WANDB_BASE_URL points at a closed port
    kill: int | None = None  # a signal sent once a history request was seen


CASES = [
    Case("500-listing", "listing runs", ({"kind": "500", "count": None, "op": "Runs"},), "Runs"),
    Case("500-history", "fetching the history of run",
         ({"kind": "500", "count": None, "op": "RunParquetHistory"},), "RunParquetHistory"),
    Case("429-retry-after", "listing runs",
         ({"kind": "429", "count": None, "op": "Runs", "retry_after": 1},), "Runs"),
    Case("slow-login", "did not answer in time", ({"kind": "slow", "count": None, "op": "Viewer", "delay": 8},),
         "Viewer"),
    Case("slow-listing", "listing runs", ({"kind": "slow", "count": None, "op": "Runs", "delay": 8},), "Runs"),
    Case("slow-history", "fetching the history of run",
         ({"kind": "slow", "count": None, "op": "RunParquetHistory", "delay": 8},), "RunParquetHistory"),
    Case("refused", "cannot reach W&B", refused=True),
    Case("dropped", "listing runs", ({"kind": "drop", "count": None, "op": "Runs"},), "Runs"),
    Case("malformed-json", "listing runs", ({"kind": "malformed", "count": None, "op": "Runs"},), "Runs"),
    Case("not-json", "listing runs", ({"kind": "nonjson", "count": None, "op": "Runs"},), "Runs"),
    Case("graphql-errors", "listing runs", ({"kind": "graphql", "count": None, "op": "Runs"},), "Runs"),
    Case("bad-key", "rejected the API key", env={"WANDB_API_KEY": "x" * 40}, hit="Viewer"),
    Case("sigint-midway", "interrupted by SIGINT", code=130, kill=signal.SIGINT),
    Case("sigterm-midway", "interrupted by SIGTERM", code=143, kill=signal.SIGTERM),
    Case("sigkill-midway", "", code=-signal.SIGKILL, kill=signal.SIGKILL),
]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wandb_cores_of(pid: int) -> list[int]:
    """wandb-core helpers started for process ``pid`` (they are given ``--pid <pid>``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"wandb-core") for a in args) and str(pid).encode() in args:
            found.append(int(entry))
    return found


def _none_left(pid: int, limit: float = 10.0) -> bool:
    """wandb-core watches its parent's pid and stops once it is gone: allow it a moment."""
    deadline = time.monotonic() + limit
    while _wandb_cores_of(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _leftovers(out: Path, tmpdir: Path) -> list[str]:
    beside = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    inside = [p.name for p in tmpdir.iterdir() if p.name.startswith(("altgrad-fetch-", "tmp"))]
    return beside + inside


@pytest.fixture
def setup(fake_wandb, tmp_path):
    records = list(synthetic_records(4, 30, 8, np.random.default_rng(7), entity=ENTITY))
    server = fake_wandb(records)
    tmpdir = tmp_path / "w"
    env = wandb_env(tmpdir, server.url.replace("http://", f"http://user:{URL_KEY}@"),
                    WANDB__GRAPHQL_RETRY_MAX="1", WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS="1")
    out = write_snapshot(records[:2], tmp_path / "snap", source={"kind": "earlier"})
    return server, env, out, tmpdir


def _run_killed(case: Case, server, env, out) -> tuple[subprocess.CompletedProcess, int, int]:
    """Start the fetch slowly (0.4 s a request, one worker), signal it once the server has
    seen a history request, and return (result, pid, history requests seen before the kill)."""
    server.latency = 0.4
    cmd = [sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", PROJECT, "--out", str(out),
           "--workers", "1", "--timeout", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(op in HISTORY_OPS for op in server.ops()) and time.monotonic() < deadline:
        time.sleep(0.02)
    seen = sum(op in HISTORY_OPS for op in server.ops())
    assert proc.poll() is None, "the fetch ended before it could be killed midway"
    os.kill(proc.pid, case.kill)
    stdout, stderr = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), proc.pid, seen


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fetch_fault(case: Case, setup):
    server, env, out, tmpdir = setup
    before = _files(out)
    for fault in case.faults:
        server.add_fault(**fault)
    env = dict(env, **case.env)
    if case.refused:
        env["WANDB_BASE_URL"] = f"http://user:{URL_KEY}@127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    if case.kill is not None:
        done, pid, seen = _run_killed(case, server, env, out)
        assert seen >= 1  # the kill came after a history request ...
        assert sum(op == "GET parquet" for op in server.ops()) < 4  # ... and before the last one
    else:
        proc = subprocess.Popen([sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", PROJECT,
                                 "--out", str(out), "--timeout", "3"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stdout, stderr = proc.communicate(timeout=90)
        done, pid = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), proc.pid
    took = time.monotonic() - started
    assert done.returncode == case.code, done.stderr
    assert took < case.seconds, took
    if case.hit:
        assert case.hit in server.ops(), server.ops()  # the fault was served
    if case.kill != signal.SIGKILL:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("altgrad-docs: error:"), done.stderr
        assert case.expect in lines[0] and "--> Do:" in lines[0], lines[0]
        assert _leftovers(out, tmpdir) == []
    assert _files(out) == before  # the previous snapshot, byte for byte
    assert API_KEY not in done.stdout + done.stderr and URL_KEY not in done.stdout + done.stderr
    assert _none_left(pid), f"wandb-core of fetch {pid} still runs"
    if case.kill == signal.SIGKILL:  # nothing could clean up: the next fetch does
        server.latency = 0.0
        again = run_cli(["fetch", "--project", PROJECT, "--out", str(out), "--timeout", "5"], env)
        assert again.returncode == 0, again.stderr
        assert _leftovers(out, tmpdir) == []
        assert _files(out) != before
