"""Each plot function on tiny data: the artists it should draw; same data -> same bytes."""

import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.comparisons import layer_stall_frame
from altgrad_docs.analysis.curves import collect_traces
from altgrad_docs.report import export
from altgrad_docs.report import figures as F
from altgrad_docs.report import figures_summary as S
from tests.analysis_data import histories, runs


@pytest.fixture(scope="module")
def data():
    return runs(), collect_traces(histories())


def _texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _x_markers(ax: Axes) -> list[Line2D]:
    return [ln for ln in ax.lines if ln.get_marker() == "x"]


def test_loss_curves_every_seed_median_baseline_and_collapse_marks(data):
    df, tr = data
    ax = F.plot_loss_curves(tr, df, "E7M0")
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["x = loss became NaN/Inf", "AdamW", "ManifoldAdamW", "BF16 baseline"]  # each label once
    assert ax.get_title() == "E7M0\nAdamW n = 2, ManifoldAdamW n = 2"
    assert ax.get_yscale() == "log"
    assert len(_x_markers(ax)) == 2  # r10 and r13 collapsed
    assert len(ax.lines) == 2 * 2 + 2 + 2 + 3  # 4 thin runs, 2 x, 2 medians, BF16: 2 thin + median
    medians = [ln for ln in ax.lines if ln.get_linewidth() == 2.0]
    assert [(ln.get_color(), ln.get_linestyle()) for ln in medians] == [
        ("#0072B2", "-"), ("#D55E00", "-."), ("0.45", "--")]  # Okabe-Ito, and told apart by style


def test_missing_data_says_so_in_words(data):
    df, tr = data
    ax = F.plot_loss_curves(tr, df, "E0M7")
    assert len(ax.lines) == 0 and _texts(ax) == ["no data: no loss logged for E0M7"]
    assert _texts(S.plot_layer_heatmap(pd.DataFrame(columns=["format", "optimizer", "layer_type", "stall"]))) == [
        "no data: no per-layer metrics (<family>/<param> keys) were logged"]
    assert "no data" in _texts(S.plot_forest(sc.manifold_comparison(df.iloc[0:0])))[0]
    assert "no data" in _texts(F.plot_stall(tr, df, "BF16"))[0]
    assert "no data" in _texts(F.plot_survival({}, df))[0]


def test_stall_plot_is_log_with_threshold(data):
    df, tr = data
    ax = F.plot_stall(tr, df, "E5M2")
    assert ax.get_yscale() == "log"
    assert "alert threshold 0.5" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_title().split("\n")[2:] == ["|w| ≥ 2^-14: |update| < 6.25–12.5% of |w|",
                                               "|w| < 2^-14 (subnormal): |update| < 2^-17"]
    high = F.plot_stall(data[1], data[0], "E7M0")  # stall 0.9 throughout, threshold 0.5 below it
    assert high.get_ylim()[0] < 0.5 < high.get_ylim()[1]  # the threshold line is in view


def test_over_under_flow_and_survival(data):
    df, tr = data
    ax = F.plot_over_under_flow(tr, df, "E7M0")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [  # the fixture logs no underflow history
        "overflow, AdamW", "overflow, ManifoldAdamW"]
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 0  # a rate axis with no negative tick
    assert min(min(ln.get_ydata()) for ln in ax.lines) == F.FLOW_FLOOR  # a zero rate sits on the floor
    ax = F.plot_survival(tr, df, ["E5M2", "E7M0"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["E5M2 (n = 7)", "E7M0 (n = 4)"]
    e7 = ax.lines[1]
    assert list(e7.get_ydata()) == pytest.approx([1.0, 0.75, 0.5, 0.5])  # collapses at 40, 60 of 4


def test_survival_counts_a_run_the_trainer_stopped_as_failed_at_its_last_step():
    from altgrad_docs.analysis.curves import make_trace

    h = pd.DataFrame({"_step": [0, 5, 10], "loss": [2.5, 3.0, 3.1]})  # finite loss throughout
    df = pd.DataFrame({"run_id": ["a", "b"], "format": ["E4M3", "E4M3"], "status": ["failed", "finished"]})
    tr = {"a": make_trace("a", h), "b": make_trace("b", h.assign(_step=[0, 10, 20]))}
    line = F.plot_survival(tr, df).lines[0]
    assert list(line.get_xdata()) == [0, 10, 20] and list(line.get_ydata()) == pytest.approx([1.0, 0.5, 0.5])
    assert line.axes.get_ylabel() == "fraction of runs not failed"


def test_crash_forensics_three_panels(data):
    df, tr = data
    # r10 and r13 collapsed (NaN); r01 stands for a run the trainer stopped with a finite loss:
    # every run passed is drawn, aligned on its last step
    axes = F.plot_crash_forensics([tr["r10"], tr["r13"], tr["r01"]], labels=["a $x$", "b", "c"])
    assert len(axes) == 3
    assert all(a.get_legend() is None for a in axes) and len(axes[0].figure.legends) == 1  # one per figure
    assert [t.get_text() for t in axes[0].figure.legends[0].get_texts()] == [r"a \$x\$", "b", "c"]
    assert len(axes[2].lines) == 4  # overflow of the three runs + the failure line
    assert axes[0].get_xlabel() == "steps before failure"


def test_crash_forensics_of_many_runs_is_coloured_and_named_by_format(data):
    df, tr = data
    runs = [tr["r10"], tr["r13"]] * 6  # 12 runs: more than a legend can name one by one
    axes = F.plot_crash_forensics(runs, groups=["E7M0", "E5M2"] * 6)
    texts = [t.get_text() for t in axes[0].figure.legends[0].get_texts()]
    assert texts == ["E7M0", "E5M2"] and axes[0].get_title() == "12 failed runs"
    colours = {ln.get_color() for ln in axes[0].lines if ln.get_linestyle() == "-"}
    assert len(colours) == 2


def test_forest_plot(data):
    df, _ = data
    ax = S.plot_forest(sc.manifold_comparison(df))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["E5M2", "E4M3"]
    assert sorted(_texts(ax)) == ["n = 1", "n = 3"]


def test_loss_vs_mantissa(data):
    df, _ = data
    ax = S.plot_loss_vs_mantissa(sc.scorecard(df))
    assert sorted(_texts(ax)) == ["1/2 failed", "1/2 failed"]
    assert "BF16 (median)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_linestyle() == "None"]  # no runs: no dots
    with_seeds = S.plot_loss_vs_mantissa(sc.scorecard(df), runs=df)
    dots = [ln for ln in with_seeds.lines if ln.get_marker() == "o" and ln.get_linestyle() == "None"]
    seeds = sorted(float(y) for ln in dots for y in ln.get_ydata())
    assert seeds == pytest.approx([2.9, 3.0, 3.0, 3.05, 3.1, 3.2, 3.3, 3.35, 5.0, 5.5])  # finished 8-bit runs


def test_heatmaps(data):
    df, tr = data
    frame = layer_stall_frame(tr, df)
    ax = S.plot_layer_heatmap(frame)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["attention", "classifier"]
    assert len(ax.get_yticklabels()) == 6 and len(ax.images) == 1
    diff = S.plot_layer_heatmap(frame, difference=True)
    assert [t.get_text() for t in diff.get_yticklabels()] == ["E4M3", "E5M2", "E7M0"]
    assert "\u22120.10" in _texts(diff) and "0.00" in _texts(diff)  # a real minus; float noise is not "-0.00"


def test_number_lines():
    ax = S.plot_number_lines(["E4M3", "E5M2"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["E5M2", "E4M3"]
    assert len(ax.collections) == 2 and sorted(_texts(ax)) == ["max 448", "max 5.734e+04"]


def _draw(data):
    df, tr = data
    return F.panel_grid(["E5M2", "E7M0"], lambda f, ax: F.plot_loss_curves(tr, df, f, ax=ax))


def test_same_data_same_bytes(data, tmp_path):
    a = export.save_figure(_draw(data), tmp_path / "a" / "fig")
    b = export.save_figure(_draw(data), tmp_path / "b" / "fig")
    for ext in ("svg", "pdf", "png"):
        assert a[ext].read_bytes() == b[ext].read_bytes(), ext
    svg = a["svg"].read_text()
    assert "<dc:date>" not in svg and "altgrad-docs" in svg
    assert b"CreationDate" not in a["pdf"].read_bytes()


def test_render_cached_draws_once(data, tmp_path):
    calls = []

    def draw():
        calls.append(1)
        return _draw(data)

    df, _ = data
    first = export.render_cached(draw, [df], tmp_path / "out" / "one", tmp_path / "cache", ("svg",))
    second = export.render_cached(draw, [df], tmp_path / "out" / "two", tmp_path / "cache", ("svg",))
    assert len(calls) == 1 and first["svg"].read_bytes() == second["svg"].read_bytes()
    export.render_cached(draw, [df.iloc[:3]], tmp_path / "out" / "three", tmp_path / "cache", ("svg",))
    assert len(calls) == 2


def test_tables_as_csv_and_booktabs(tmp_path):
    df = pd.DataFrame({"format": ["E5M2", "a_b&c"], "median": [3.125, float("nan")]})
    paths = export.export_table(df, tmp_path / "tab-x")
    assert paths["csv"].read_text() == "format,median\nE5M2,3.125\na_b&c,\n"
    tex = paths["tex"].read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and r"a\_b\&c" in tex and "--" in tex


def test_hostile_format_names_are_drawn_as_text(data, tmp_path):
    df, tr = data
    df = df.assign(format=df["format"].replace("E7M0", "E7M0 $\\frac{a}{$ <b>"))
    ax = F.plot_loss_curves(tr, df, "E7M0 $\\frac{a}{$ <b>")
    assert ax.get_title().split("\n")[0] == r"E7M0 \$\frac{a}{\$ <b>"
    export.save_figure(ax.figure, tmp_path / "hostile", ("svg",))  # mathtext would raise here
    S.plot_forest(sc.manifold_comparison(df)).figure.savefig(tmp_path / "f.svg")


def test_many_runs_are_rasterised_and_still_reproducible(tmp_path):
    import numpy as np

    from altgrad_docs.analysis.curves import make_trace

    n = F.RASTER_ABOVE + 5
    steps = np.arange(50)
    df = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "format": "E5M2", "optimizer": "AdamW"})
    tr = {f"r{i}": make_trace(f"r{i}", pd.DataFrame({"_step": steps, "loss": 5 - steps / (10 + i)})) for i in range(n)}
    ax = F.plot_loss_curves(tr, df, "E5M2", baseline=None)
    (runs_drawn,) = ax.collections  # every run's line, in one rasterised collection
    assert len(runs_drawn.get_segments()) == n and runs_drawn.get_rasterized()
    a = export.save_figure(ax.figure, tmp_path / "a", ("svg", "pdf"))
    b = export.save_figure(F.plot_loss_curves(tr, df, "E5M2", baseline=None).figure, tmp_path / "b", ("svg", "pdf"))
    assert a["svg"].read_bytes() == b["svg"].read_bytes() and a["pdf"].read_bytes() == b["pdf"].read_bytes()
    assert b"<image" in a["svg"].read_bytes()


def test_forest_shows_unpaired_formats_hollow():
    mc = pd.DataFrame([
        {"format": "E5M2", "design": "paired", "n_pairs": 3, "n_manifold": 3, "n_adamw": 3, "mean_delta": -0.1,
         "ci_low": -0.3, "ci_high": 0.1, "deltas": [-0.1, -0.2, 0.0], "metric": "final_loss"},
        {"format": "E3M4", "design": "unpaired", "n_pairs": 0, "n_manifold": 2, "n_adamw": 3, "mean_delta": -0.2,
         "ci_low": -0.5, "ci_high": 0.1, "deltas": [], "metric": "final_loss"}])
    ax = S.plot_forest(mc)
    assert sorted(_texts(ax)) == ["2 vs 3 (Welch)", "n = 3"]
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D"]
    assert [d.get_markerfacecolor() for d in diamonds] == ["white", "#D55E00"]  # bottom-up: E3M4 first


def test_cache_key_follows_the_drawing_code(monkeypatch):
    key = export.content_key("same data")
    monkeypatch.setattr(export, "code_version", lambda: "other code")
    assert export.content_key("same data") != key


def test_many_runs_draw_as_one_raster_collection_that_looks_like_their_lines():
    import io

    import numpy as np
    import matplotlib.image as mpimg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    from altgrad_docs.analysis.curves import Trace
    from altgrad_docs.report import figures as F

    rng = np.random.default_rng(3)
    steps = np.arange(0, 400)
    traces = []
    for i in range(F.RASTER_ABOVE + 10):
        t = Trace(f"r{i}", 399, None)
        t.curves["loss"] = (steps, 4.0 * np.exp(-steps / (80 + 5 * i)) + 1 + rng.normal(0, 0.03, len(steps)))
        traces.append(t)

    def pixels(draw_many: bool) -> np.ndarray:
        fig = Figure(figsize=(4, 3), dpi=100)
        ax = fig.add_subplot()
        if draw_many:
            F._draw_condition(ax, traces, "loss", "k", "all", mark_collapse=False)
        else:  # the same runs one Line2D each, as fewer runs are drawn
            for t in traces:
                ax.plot(*t.curve("loss"), color="k", lw=0.6, alpha=0.35, zorder=1.5, rasterized=True)
            ax.plot(*F.median_curve([t.curve("loss") for t in traces]), color="k", lw=2.0, zorder=2.5)
        ax.set_xlim(0, 400)
        ax.set_ylim(0.8, 5.2)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return mpimg.imread(io.BytesIO(buf.getvalue()))[..., :3], ax

    bundled, ax = pixels(True)
    (collection,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(collection.get_segments()) == len(traces) and collection.get_rasterized()
    assert len(ax.lines) == 1  # only the median is a line of its own
    lines, _ = pixels(False)
    assert np.abs(bundled - lines).mean() * 255 < 0.5  # the same picture
