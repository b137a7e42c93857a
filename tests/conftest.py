"""Shared fixtures of the data tests: a sandboxed wandb, the fake W&B server, offline runs
made by the real ``wandb.init(mode="offline")``, and a CLI runner."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.fake_wandb import API_KEY, FakeWandb

ROOT = Path(__file__).resolve().parents[1]
#: Where the tests register the ``altgrad`` plugin when the environment lacks it (see below).
DEV_ENTRY_POINT = ROOT / "altgrad_docs_dev_plugin-0.dist-info"


def _register_plugin() -> None:
    """Make ``plugins: - altgrad`` loadable by MkDocs in this checkout.

    An install (``pip install -e .``, what scripts/setup.sh and CI do) registers the plugin's
    entry point from pyproject.toml. A venv installed from an older checkout lacks it: then a
    dist-info folder with the same entry point is written at the top of the checkout (which
    is on every test process's path; ignored by git), so the tests build sites as a user
    does, through MkDocs' plugin lookup."""
    from importlib.metadata import entry_points

    if entry_points(group="mkdocs.plugins", name="altgrad"):
        return
    DEV_ENTRY_POINT.mkdir(exist_ok=True)
    (DEV_ENTRY_POINT / "METADATA").write_text("Metadata-Version: 2.1\nName: altgrad-docs-dev-plugin\n"
                                              "Version: 0\n")
    (DEV_ENTRY_POINT / "entry_points.txt").write_text(
        "[mkdocs.plugins]\naltgrad = altgrad_docs.plugin:AltgradPlugin\n")


_register_plugin()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(why: str) -> None:
    """Skip on a developer's machine; fail under CI=true, where a skip would pass silently."""
    if in_ci():
        pytest.fail(f"{why} (CI=true: a missing test dependency fails the run) --> Do: install it "
                    "(bash scripts/test.sh does).", pytrace=False)
    pytest.skip(why)


def require(module: str):
    """``pytest.importorskip`` that fails instead of skipping under CI=true."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        _missing(f"{module} cannot be imported: {exc}")


def require_file(path: str, what: str) -> None:
    if not os.access(path, os.X_OK):
        _missing(f"{path} is missing: {what}")


def wandb_env(base: Path, url: str | None = None, **extra: str) -> dict[str, str]:
    """An environment where wandb writes only under ``base`` and talks only to ``url``."""
    base.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env.update(TMPDIR=str(base), WANDB_DIR=str(base), WANDB_CACHE_DIR=str(base / "cache"),
               WANDB_CONFIG_DIR=str(base / "config"), WANDB_DATA_DIR=str(base / "data"),
               WANDB_ERROR_REPORTING="false", WANDB_SILENT="true", NETRC=str(base / "netrc"),
               PYTHONPATH=str(ROOT))
    if url:
        env.update(WANDB_BASE_URL=url, WANDB_API_KEY=API_KEY)
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "altgrad_docs.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fake_wandb():
    """Start FakeWandb servers (``fake_wandb(records, **kw)``); all are stopped after the test."""
    servers: list[FakeWandb] = []

    def start(records=(), **kw) -> FakeWandb:
        server = FakeWandb(records, **kw).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _sandboxed(key: str) -> bool:
    return key.startswith("WANDB") or key in ("TMPDIR", "NETRC")


@contextlib.contextmanager
def process_env(env: dict[str, str]) -> Iterator[None]:
    """This process's WANDB_*, TMPDIR and NETRC as in ``env`` (no other WANDB_*), for code
    that uses wandb in-process. On exit all of them are put back as they were, including
    what was set meanwhile outside any monkeypatch (wandb's service token, the defaults of
    ``bound_retries``), and so is tempfile's cached temp dir (it would keep TMPDIR's)."""
    saved = {k: v for k, v in os.environ.items() if _sandboxed(k)}
    saved_tempdir = tempfile.tempdir

    def replace(values: dict[str, str]) -> None:
        for key in [k for k in os.environ if _sandboxed(k)]:
            del os.environ[key]
        os.environ.update({k: v for k, v in values.items() if _sandboxed(k)})

    replace(env)
    tempfile.tempdir = None
    try:
        yield
    finally:
        replace(saved)
        tempfile.tempdir = saved_tempdir


@pytest.fixture(scope="session")
def _live_server(tmp_path_factory):
    server = FakeWandb().start()
    env = wandb_env(tmp_path_factory.mktemp("wandb-live"), server.url, WANDB__GRAPHQL_RETRY_MAX="1")
    yield server, env
    server.stop()


@pytest.fixture
def live_wandb(_live_server):
    """One fake server, and this process's environment pointed at it for the test (restored
    after it: later tests see no WANDB_*, TMPDIR or NETRC of ours).

    wandb reads its settings once per process, so in-process tests share this server and
    swap its runs with ``set_runs``; fault tests run the CLI in subprocesses instead.
    """
    server, env = _live_server
    server.requests.clear()
    server.clear_faults()
    with process_env(env):
        yield server


OFFLINE_SCRIPTS = {
    "finished": """
        run = wandb.init(mode="offline", project="altgrad", name="E5M2 finished",
                         config={"fp8_format": "E5M2", "use_fp8": True, "seed": 3,
                                 "use_manifold_aware": True, "learning_rate": 0.001})
        for step in range(5):
            run.log({"loss": 4.0 - step, "quantization/bit_stall_rate": 0.25,
                     "stall/transformer.h.0.attn.c_attn.weight": 0.5})
        run.finish()
    """,
    "raised": """
        run = wandb.init(mode="offline", project="altgrad", config={"fp8_format": "E7M0", "use_fp8": True})
        run.log({"loss": 9.0})
        raise RuntimeError("loss went NaN")
    """,
    "naninf": """
        run = wandb.init(mode="offline", project="altgrad", config={"fp8_format": "E1M6", "use_fp8": True})
        run.log({"loss": 2.0, "grad_norm": float("inf")})
        run.log({"loss": float("nan"), "grad_norm": float("-inf")})
        run.finish(exit_code=1)
    """,
    "bad": """
        run = wandb.init(mode="offline", project="altgrad",
                         name="a | b <script>alert(1)</script>\\nzweite Zeile \u00e9\u00e8 \u03bb",
                         config={"learning_rate": "fast", "seed": "one"})
        run.log({"loss": "high", "val_loss": 1.5})
        run.log({"loss": 2.5, "val_loss": "NaN"})
        run.finish()
    """,
    "killed": """
        import sys
        run = wandb.init(mode="offline", project="altgrad", config={"fp8_format": "E4M3", "use_fp8": True})
        for step in range(10**7):
            run.log({f"stall/layer{i}": step * 0.001 + i for i in range(40)} | {"loss": 1.0})
            if step == 300:
                print("ready", flush=True)
    """,
}


def _offline_script(body: str) -> str:
    return "import wandb\n" + textwrap.dedent(body)


@pytest.fixture(scope="session")
def offline_runs(tmp_path_factory) -> dict[str, Path]:
    """Real offline runs, one per OFFLINE_SCRIPTS entry, each in its own wandb/ folder.

    The "killed" run is SIGKILLed while it logs (with its wandb-core helper, as when a
    machine is lost), once its file holds some data.
    """
    base = tmp_path_factory.mktemp("offline")
    procs = {}
    for name, body in OFFLINE_SCRIPTS.items():
        folder = base / name
        env = wandb_env(folder)
        procs[name] = subprocess.Popen([sys.executable, "-c", _offline_script(body)], cwd=folder,
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       text=True, start_new_session=True)
    killed = procs.pop("killed")
    assert readline_within(killed, 60) == "ready"
    _wait_for_data(base / "killed", 64 * 1024)
    os.killpg(killed.pid, signal.SIGKILL)  # the run and its wandb-core: a lost machine
    killed.wait(30)
    _wait_until_still(base / "killed")
    for name, proc in procs.items():
        proc.wait(60)
    return {name: base / name / "wandb" for name in OFFLINE_SCRIPTS}


def readline_within(proc: subprocess.Popen, seconds: float) -> str:
    """One line of ``proc``'s stdout, or AssertionError after ``seconds`` (a bare readline
    waits forever on a child that hangs before printing)."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=seconds):
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no line from {proc.args!r} within {seconds} s")
    return proc.stdout.readline().strip()


def _wait_until_still(folder: Path, quiet: float = 0.5, limit: float = 10) -> None:
    """Wait until the run file stops changing (nothing may still be writing it)."""
    deadline, last = time.monotonic() + limit, -1
    while time.monotonic() < deadline:
        size = sum(p.stat().st_size for p in folder.glob("wandb/offline-run-*/run-*.wandb"))
        if size == last:
            return
        last = size
        time.sleep(quiet)


def _wait_for_data(folder: Path, size: int, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        files = list(folder.glob("wandb/offline-run-*/run-*.wandb"))
        if files and files[0].stat().st_size >= size:
            return
        time.sleep(0.05)
    raise AssertionError(f"the killed run never wrote {size} bytes")


UPSTREAM_RUNS = ROOT / "tests" / "fixtures" / "upstream" / "altgrad-trainer-runs.tar.xz"


@pytest.fixture(scope="session")
def upstream_runs(tmp_path_factory) -> Path:
    """The 38 runs written by the AltGrad trainer itself (tests/fixtures/upstream/README.md),
    unpacked once per session: ``lm/wandb``, ``runner/wandb``, ``runner/checkpoints-runner``,
    ``classification/wandb``. Read-only by convention: copy before changing anything."""
    import tarfile

    out = tmp_path_factory.mktemp("upstream")
    with tarfile.open(UPSTREAM_RUNS, "r:xz") as tar:
        tar.extractall(out, filter="data")
    return out
