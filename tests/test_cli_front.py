"""The CLI as people expect it: --version, a help line per command, signals reach `serve`'s
engine, and one version number (pyproject.toml) that CITATION.cff and the CHANGELOG repeat."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from altgrad_docs import __version__
from altgrad_docs.cli import _parser, main
from tests.site_fixtures import REPO

COMMANDS = ("new", "fetch", "snapshot", "bench", "render", "build", "serve")


def _pyproject_version() -> str:
    return re.search(r'(?m)^version = "([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"altgrad-docs {__version__}\n"


def test_help_lists_every_command_on_one_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = _parser().format_help()
    lines = {m.group(1): m.group(2) for m in re.finditer(r"(?m)^    (\w+)\s+(\S.*)$", text)}
    assert tuple(lines) == COMMANDS
    for name in COMMANDS:  # each help fits its line: nothing wrapped onto the next one
        assert not re.search(rf"(?m)^    {name}\s+.*\n {{10,}}\S", text), name


def test_one_version_everywhere():
    version = _pyproject_version()
    citation = re.search(r"(?m)^version: (\S+)$", (REPO / "CITATION.cff").read_text()).group(1)
    assert citation == version, "CITATION.cff's version is not pyproject.toml's --> Do: set it to the same"
    assert f"## {version}" in (REPO / "CHANGELOG.md").read_text()
    assert (REPO / "altgrad_docs" / "py.typed").is_file()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_front_door_stops_its_engine(tmp_path, sig):
    pidfile = tmp_path / "engine.pid"
    engine = (f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
    door = ("import sys; from altgrad_docs.site.engines import call; "
            f"sys.exit(call([sys.executable, '-c', {engine!r}]))")
    front = subprocess.Popen([sys.executable, "-c", door], env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline and front.poll() is None
        time.sleep(0.05)
    child = int(pidfile.read_text())
    front.send_signal(sig)
    assert front.wait(timeout=30) == 128 + sig
    with pytest.raises(ProcessLookupError):  # the engine is gone, not orphaned
        os.kill(child, 0)
