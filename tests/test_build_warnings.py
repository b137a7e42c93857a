"""Strict mode does not depend on the cache (issue #12): the warnings of the analysis (a
skipped failure report) belong to its cached result and are logged again on every build."""

from __future__ import annotations

import logging

import pytest

from altgrad_docs.site import analysis as site_analysis
from altgrad_docs.snapshot import open_snapshot, write_snapshot
from tests.site_fixtures import FAILED_RUN_ID, FETCHED_AT, fixture_records, run_mkdocs_build

SKIPPED = "skipped failure report"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """The site fixture with a failure report that cannot be parsed (no title)."""
    base = tmp_path_factory.mktemp("warned")
    report = base / "E7M0_20260110_010000_failure_report.md"
    report.write_text("## Summary\n\nnot a report\n")
    return open_snapshot(write_snapshot(fixture_records(), base / "snapshot", source={"kind": "fixture"},
                                        fetched_at=FETCHED_AT, failure_reports={FAILED_RUN_ID: [report]}))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_cold_and_warm_analysis_hold_the_same_warnings(snapshot, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mkdocs.plugins.altgrad")
    cold = site_analysis.analyse_cached(snapshot, snapshot.runs(), tmp_path)
    assert _warnings(caplog) == []  # held, not logged while computing ...
    assert any("analysing" in r.getMessage() for r in caplog.records)  # ... info passes on
    warm = site_analysis.analyse_cached(snapshot, snapshot.runs(), tmp_path)
    assert len(cold["warnings"]) == 1 and SKIPPED in cold["warnings"][0][1]
    assert warm["warnings"] == cold["warnings"]
    site_analysis.replay_warnings(warm)
    assert _warnings(caplog) == [cold["warnings"][0][1]]


def test_strict_build_fails_cold_and_warm(snapshot, tmp_path):
    cache = tmp_path / "cache"
    for build in ("cold", "warm"):
        result = run_mkdocs_build(snapshot.path, tmp_path / f"site-{build}", cache)
        assert result.returncode == 1, (build, result.stderr[-2000:])
        assert result.stderr.count(SKIPPED) == 1, (build, result.stderr[-2000:])
        assert "Aborted with 1 warnings in strict mode" in result.stdout, build
    assert (cache / "analysis").is_dir() and list((cache / "analysis").glob("*.pickle"))
