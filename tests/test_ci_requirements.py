"""Under CI=true a missing test dependency fails the run instead of skipping (issue #12)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
from tests.conftest import require, require_file

def test_module():
    require("no_such_module_altgrad")

def test_file():
    require_file("/no/such/browser", "a browser")
"""


@pytest.mark.parametrize("ci, outcome", [("true", "2 failed"), ("", "2 skipped")])
def test_missing_dependency_fails_only_under_ci(tmp_path, ci, outcome):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CI": ci}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe),
                           "--rootdir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert outcome in done.stdout, done.stdout[-2000:]
    if ci:
        assert "CI=true: a missing test dependency fails the run" in done.stdout
