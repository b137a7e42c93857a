"""Broken and hostile runs through the analysis, every figure and table, and a full
``mkdocs build --strict`` (issue #12): a loss NaN from step 0 is the run an FP8 study exists
to show, so it must be counted as collapsed at its first step and drawn, never crash."""

from __future__ import annotations

import io
import json
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
import matplotlib.pyplot as plt

from altgrad_docs.analysis.curves import collapse_step, make_trace, metric_column, survival
from altgrad_docs.report import catalog, export
from altgrad_docs.report.figures import plot_survival
from altgrad_docs.site import analysis as site_analysis
from altgrad_docs.site import runchart
from altgrad_docs.snapshot import open_snapshot
from altgrad_docs.runs import path_slug
from altgrad_docs.site import pipeline
from altgrad_docs.site.pages import SitePage
from tests.hostile_fixtures import EXPECTED_COLLAPSE, HOSTILE_IDS, NEVER_FINITE, build_hostile_snapshot
from tests.site_fixtures import run_mkdocs_build

NAN = np.nan


def _save_and_close(fig) -> None:
    """Drawing happens at save time (axis limits, ticks): that is where huge values fail."""
    try:
        fig.savefig(io.BytesIO(), format="svg")
    finally:
        plt.close(fig)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return open_snapshot(build_hostile_snapshot(tmp_path_factory.mktemp("hostile") / "snapshot"))


@pytest.fixture(scope="module")
def results(snapshot):
    return site_analysis.analyse(snapshot, snapshot.runs())


@pytest.mark.parametrize("loss, val, expected", [
    ([NAN, NAN, NAN], None, 10),              # never finite: collapsed at the first step
    ([NAN, NAN, NAN], [1.0, 1.0, 1.0], 10),   # ... even when every row has a val_loss
    ([np.inf, NAN, NAN], None, 10),
    ([1.0, NAN, NAN], None, 11),
    ([1.0, 2.0, NAN], [NAN, NAN, 3.0], None),  # the NaN row is an evaluation-only row
    ([1.0, 2.0, 3.0], None, None),
    ([], None, None),
])
def test_collapse_step(loss, val, expected):
    steps = np.arange(10, 10 + len(loss))
    got = collapse_step(steps, np.asarray(loss, dtype=float), None if val is None else np.asarray(val))
    assert got == expected


def test_metric_column_keeps_a_never_finite_column_and_reads_aliases():
    frame = pd.DataFrame({"loss": [NAN, NAN], "quantization/overflow_rate": [NAN, NAN],
                          "overflow_rate": [0.1, 0.2]})
    assert np.isnan(metric_column(frame, "loss")).all() and len(metric_column(frame, "loss")) == 2
    assert metric_column(frame, "quantization/overflow_rate").tolist() == [0.1, 0.2]
    assert metric_column(frame, "grad_norm") is None


def test_trace_of_never_finite_run_collapses_at_step_zero():
    frame = pd.DataFrame({"_step": [0, 1, 2], "loss": [NAN] * 3, "grad_norm": [1.0, NAN, NAN]})
    trace = make_trace("r", frame)
    assert (trace.collapse_step, trace.last_step) == (0, 2)
    assert np.isnan(trace.collapse_value)


def test_survival_counts_never_finite_run_as_collapsed_at_first_step():
    xs, ys = survival([0, None], [2, 39])
    assert xs.tolist() == [0.0, 0.0, 39.0] and ys.tolist() == [1.0, 0.5, 0.5]


def test_analysis_finds_every_collapse(results):
    traces = results["analysis"].traces
    for run_id, expected in EXPECTED_COLLAPSE.items():
        assert (traces[run_id].collapse_step if run_id in traces else None) == expected, run_id
    failed = set(results["analysis"].failures["run_id"].dropna().astype(str))
    assert {r for r, c in EXPECTED_COLLAPSE.items() if c is not None} <= failed


def test_survival_figure_draws_never_finite_run_as_collapsed(results):
    a = results["analysis"]
    ax = plot_survival(a.traces, a.runs, formats=["E7M0"])
    try:
        line = ax.get_lines()[0]
        # 4 E7M0 runs: 3 collapse at step 0, the fixture's failed run at step 30
        assert line.get_xdata().tolist()[:4] == [0, 0, 0, 0]
        assert line.get_ydata()[3] == pytest.approx(0.25) and line.get_ydata()[-1] == 0.0
    finally:
        plt.close(ax.figure)


def test_every_figure_and_table_copes(results, tmp_path):
    a = results["analysis"]
    for spec in catalog.figure_specs(a):
        _save_and_close(spec.draw())
    for spec in catalog.table_specs(a):
        paths = export.export_table(spec.data, tmp_path / spec.id, spec.caption)
        assert paths["csv"].read_text().count("\n") == len(spec.data) + 1


@pytest.mark.parametrize("run_id", sorted(EXPECTED_COLLAPSE))
def test_run_history_chart_copes(snapshot, run_id):
    data = runchart.chart_data(snapshot.history(run_id, runchart.HISTORY_KEYS))
    assert data["collapse"] == EXPECTED_COLLAPSE[run_id]
    json.loads(runchart.chart_json(data))  # strict JSON: no NaN or Infinity tokens
    svg = runchart.chart_svg(data).decode()
    ElementTree.fromstring(svg)  # well-formed
    loss_panel = svg.split("</text>", 2)[1]
    if run_id == NEVER_FINITE:  # nothing finite to draw: said, not an empty box
        assert "not logged" in loss_panel


def test_site_builds_strict_with_broken_runs(snapshot, tmp_path):
    result = run_mkdocs_build(snapshot.path, tmp_path / "site", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    for run_id in EXPECTED_COLLAPSE:
        assert (tmp_path / "site" / "runs" / run_id / "figures" / "fig-history.svg").is_file()
    page = (tmp_path / "site" / "runs" / NEVER_FINITE / "index.html").read_text()
    assert "loss first NaN/Inf at step" in page and "<td>0</td>" in page
    runs_table = (tmp_path / "site" / "runs" / "index.html").read_text()
    for run_id in HOSTILE_IDS:  # each has its page, and the Runs table links it
        slug = path_slug(run_id)
        assert (tmp_path / "site" / "runs" / slug / "index.html").is_file(), run_id
        assert f'href="{slug}/"' in runs_table, run_id


@pytest.mark.parametrize("run_id, slug", [
    ("abc123", "abc123"), ("ok_1-2", "ok_1-2"), (".hidden", "hidden-1692419006"),
    ("a/b", "a-b-c14cddc033"), ("..", "run-5ec1f7e700"), ("", "run-e3b0c44298"), ("-x", "x-a420962426"),
    ("lr0.1-s1", "lr0.1-s1"), ("a..b", "a-b-f62b42414c"), ("a.", "a-5ab640fad5"), ("x" * 65, "x" * 32 + "-9537c5fdf1"),
    ("AbCdEf12", "AbCdEf12-42d350854c"), ("abcdef12", "abcdef12"),
])
def test_path_slug_is_stable_and_plain(run_id, slug):
    assert path_slug(run_id) == slug


def test_path_slugs_of_distinct_ids_differ():
    ids = [".a", "a.", "-a", "a", "a/", "/a", "A", ".A"]
    assert len({path_slug(i) for i in ids}) == len(ids)


@pytest.mark.parametrize("path, bad", [("runs/abc/index.md", False), ("runs/.hidden/index.md", True),
                                       ("runs//index.md", True)])
def test_unpublishable_page_path_is_a_warning(path, bad, caplog):
    with caplog.at_level("WARNING", logger="mkdocs.plugins.altgrad"):
        pipeline.check_page_paths([SitePage(path, "pages/run.md", {})])
    assert ("cannot be published" in caplog.text) is bad


def test_two_pages_on_one_path_is_a_warning(caplog):
    page = SitePage("runs/a/index.md", "pages/run.md", {})
    with caplog.at_level("WARNING", logger="mkdocs.plugins.altgrad"):
        pipeline.check_page_paths([page, page])
    assert "two pages on one path" in caplog.text


def test_two_pages_whose_paths_differ_only_in_case_is_a_warning(caplog):
    pages = [SitePage(f"runs/{p}/index.md", "pages/run.md", {}) for p in ("abcdef12", "AbCdEf12")]
    with caplog.at_level("WARNING", logger="mkdocs.plugins.altgrad"):
        pipeline.check_page_paths(pages)
    assert "two pages on one path, without regard to case" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mkdocs.plugins.altgrad"):  # as path_slug names them
        pipeline.check_page_paths([SitePage(f"runs/{path_slug(r)}/index.md", "pages/run.md", {})
                                   for r in ("abcdef12", "AbCdEf12")])
    assert not caplog.text


# ---- values near the float limit (issue #20): finite-safe, never a crash -------------------
from altgrad_docs.analysis import stats  # noqa: E402
from tests.site_fixtures import FETCHED_AT, fixture_records  # noqa: E402
from altgrad_docs.snapshot import write_snapshot  # noqa: E402

FLOAT_MAX = np.finfo(np.float64).max


@pytest.mark.filterwarnings("error:overflow:RuntimeWarning")
def test_statistics_near_the_float_limit_do_not_overflow():
    s = stats.summarize([1e308, 1e308, NAN])
    assert (s.n, s.median, s.mean, s.max) == (2, 1e308, 1e308, 1e308)
    assert stats.mean([FLOAT_MAX, FLOAT_MAX]) == FLOAT_MAX and stats.mean([1.0, 2.0]) == 1.5
    assert stats.iqm([1e308] * 4) == 1e308
    d = stats.paired_delta([1.5e308, 1.25e308, 1.0e308], [1.0, 2.0, 3.0])
    assert d.mean == pytest.approx(1.25e308) and d.low == pytest.approx(0.629e308, rel=1e-2)
    assert np.isnan(d.high)  # above the float limit: left out, not Inf
    w = stats.welch_delta([1.5e308, 1.5e308], [-1.5e308, -1.5e308])
    assert np.isnan(w.mean) and w.n == 4  # 3e308 does not fit a float
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.5, 0.25, 1.0])
    big = 2.0 ** 1020
    assert stats.hedges_g(a * big, b * big) == stats.hedges_g(a, b)  # unit-free: the same
    assert stats.paired_delta(a, b) == stats.paired_delta(list(a), list(b))  # ordinary values: as before


def test_figure_with_values_near_the_float_limit_is_cut_and_says_so(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1.0, 1e308, 2.0])
    paths = export.save_figure(fig, tmp_path / "fig", ("svg", "png"))
    svg = paths["svg"].read_text()
    ElementTree.fromstring(svg)
    assert "values beyond ±1e+306 not shown" in svg and paths["png"].stat().st_size
    assert ax.get_ylim() == (1.0, 1e306)


@pytest.mark.slow
def test_every_figure_copes_with_a_loss_of_1e308(tmp_path):
    """Every run's loss 1e308 crashed every build (a figure worker: 'ValueError: arange')."""
    records = fixture_records()
    for record in records:
        record.history["loss"] = 1e308
        record.summary["loss"] = 1e308
    snap = open_snapshot(write_snapshot(records, tmp_path / "s", source={"kind": "fixture"}, fetched_at=FETCHED_AT))
    a = site_analysis.analyse(snap, snap.runs())["analysis"]
    drawn = {spec.id: export.save_figure(spec.draw(), tmp_path / spec.id, ("svg",))["svg"]
             for spec in catalog.figure_specs(a)}
    assert "fig-crash-forensics" in drawn
    assert "not shown" in drawn["fig-crash-forensics"].read_text()
    finals = a.runs["final_loss"].dropna()
    assert (finals == 1e308).all() and len(finals)


@pytest.mark.filterwarnings("error:overflow:RuntimeWarning")
def test_run_chart_spanning_the_whole_float_range_has_no_nan_point():
    steps = np.arange(10)
    loss = np.where(steps % 2, FLOAT_MAX, -FLOAT_MAX)
    data = runchart.chart_data(pd.DataFrame({"_step": steps, "loss": loss, "grad_norm": np.full(10, FLOAT_MAX)}))
    svg = runchart.chart_svg(data).decode()
    ElementTree.fromstring(svg)
    points = svg.split('<polyline points="', 1)[1].split('"', 1)[0].split()
    assert len(points) == 10 and not {"nan", "inf"} & set(svg.lower().replace(",", " ").split())
    assert [p.split(",")[1] for p in points[:2]] == ["158.0", "14.0"]  # bottom, top of the panel
