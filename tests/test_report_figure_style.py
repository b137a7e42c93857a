"""Figure style: colour-blind-safe colours, one legend per figure, stall rules per range of
|w|, the last-quarter loss panel, and facets when the run table has several settings."""

import pandas as pd
import pytest

from altgrad_docs.analysis.curves import collect_traces
from altgrad_docs.analysis.pipeline import analyse
from altgrad_docs.analysis.design import DesignOptions
from altgrad_docs.report import catalog
from altgrad_docs.report import figure_style as st
from altgrad_docs.report import figures as F
from tests.analysis_data import histories, runs


@pytest.fixture(scope="module")
def data():
    return runs(), collect_traces(histories())


def _legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def test_stall_rule_per_range_of_w():
    assert st.stall_rule("E0M7") == ["all |w|: |update| < 2^-8 (absolute)"]
    assert st.stall_rule("E4M3") == ["|w| ≥ 2^-6: |update| < 3.12–6.25% of |w|",
                                     "|w| < 2^-6 (subnormal): |update| < 2^-10"]
    assert st.stall_rule("E1M6") == ["|w| ≥ 2^1: |update| < 0.391–0.781% of |w|",  # all |w| < 2 are subnormal
                                     "|w| < 2^1 (subnormal): |update| < 2^-6"]
    assert st.stall_rule("E7M0") == ["|w| ≥ 2^-62: |update| < 25–50% of |w|"]  # no subnormals
    assert st.stall_rule("BF16") == []


def test_palette_is_okabe_ito_with_grey_baselines():
    colors = st.format_colors(["E0M7", "E1M6", "BF16", "E2M5"])
    assert colors == {"E0M7": "#0072B2", "E1M6": "#D55E00", "BF16": st.BASELINE_COLOR, "E2M5": "#009E73"}
    assert set(st.FORMAT_PALETTE) == set(st.OKABE_ITO)
    assert st.optimizer_style("AdamW") == ("#0072B2", "-") and st.optimizer_style("ManifoldAdamW") == ("#D55E00", "-.")


def test_panel_grid_has_one_legend_outside_the_panels(data):
    df, tr = data
    fig = F.panel_grid(["E5M2", "E7M0"], lambda f, ax: F.plot_loss_curves(tr, df, f, ax=ax))
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1
    assert _legend_texts(fig.legends[0]) == ["AdamW", "ManifoldAdamW", "BF16 baseline", "x = loss became NaN/Inf"]


def test_single_axes_legend_sits_right_of_the_data(data):
    df, tr = data
    ax = F.plot_survival(tr, df, ["E5M2", "E7M0"])
    anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 > 1.0  # outside the axes box


def test_loss_end_shows_the_last_quarter_per_format(data):
    df, tr = data
    ax = F.plot_loss_end(tr, df, "AdamW", ["E5M2", "E7M0", "BF16"])
    assert [ln.get_label() for ln in ax.lines] == ["E5M2", "E7M0", "BF16"]
    assert all(min(ln.get_xdata()) >= 0.75 * 99 for ln in ax.lines)  # steps 0..99: from step 74.25 on
    bf16 = ax.lines[-1]
    assert bf16.get_color() == st.BASELINE_COLOR and bf16.get_linestyle() == "--"
    assert ax.get_yscale() == "linear"
    assert "no data" in F.plot_loss_end({}, df, "AdamW", ["E5M2"]).texts[0].get_text()


def _two_settings(df: pd.DataFrame) -> pd.DataFrame:
    """The fixture split into two learning rates: seeds 1 at lr=0.01, the rest at lr=0.001."""
    import json

    lrs = [0.01 if s == 1 else 0.001 for s in df["seed"]]
    configs = [json.dumps({**json.loads(c), "learning_rate": lr}) for c, lr in zip(df["config_json"], lrs)]
    return df.assign(setting=[f"learning_rate={lr}" for lr in lrs], config_json=configs)


def test_settings_and_facets():
    df = runs()
    assert st.settings_of(df) is None and [s for s, _ in st.facets(df)] == [None]
    assert st.settings_of(df.assign(setting="learning_rate=0.01")) is None  # one value: nothing to separate
    two = _two_settings(df)
    assert st.settings_of(two) == ["learning_rate=0.01", "learning_rate=0.001"]
    sizes = {s: len(sub) for s, sub in st.facets(two)}
    assert sizes == {"learning_rate=0.01": 7, "learning_rate=0.001": 8}


def test_figures_facet_by_setting_instead_of_pooling():
    from altgrad_docs.analysis.design import DesignOptions

    df = _two_settings(runs())  # the learning rate follows the seed here: name it as the factor
    a = analyse(df, histories(), options=DesignOptions(factors=("learning_rate",)))
    specs = {s.id: s for s in catalog.figure_specs(a)}
    loss = specs["fig-loss-curves"].draw()
    titles = [ax.get_title() for ax in loss.axes if ax.get_title()]
    # lr=0.01 holds seed 1 of E5M2, E4M3, E7M0; lr=0.001 seeds 2-4 of E5M2 and E7M0 (E4M3 has only seed 1)
    assert [t.split("\n")[:2] for t in titles] == [
        ["learning_rate=0.01", "E4M3"], ["learning_rate=0.01", "E5M2"], ["learning_rate=0.01", "E7M0"],
        ["learning_rate=0.001", "E5M2"], ["learning_rate=0.001", "E7M0"]]
    assert titles[1].split("\n")[2] == "AdamW n = 1, ManifoldAdamW n = 1"  # not pooled over both settings
    assert titles[3].split("\n")[2] == "AdamW n = 3, ManifoldAdamW n = 2"  # seeds 2, 3 and the killed s4
    mantissa = specs["fig-loss-vs-mantissa"].draw()
    assert [ax.get_title() for ax in mantissa.axes if ax.get_title()] == [
        "learning_rate=0.01\n", "learning_rate=0.001\n"]
    assert "per setting" in specs["fig-loss-curves"].caption
    pooled = {s.id: s for s in catalog.figure_specs(analyse(runs(), histories()))}
    assert "per setting" not in pooled["fig-loss-curves"].caption


def test_log_axes_label_plain_numbers(data):
    df, tr = data
    ax = F.plot_loss_curves(tr, df, "E5M2")
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels() if t.get_text()]
    assert labels and not [x for x in labels if "e" in x or "^" in x or "\\times" in x]
    minor = ax.yaxis.get_minor_formatter()
    assert [minor(v, 0) for v in (0.02, 0.03, 0.5, 7.0)] == ["0.02", "", "0.5", ""]
    assert ax.yaxis.get_major_formatter()(0.1, 0) == "0.1"


def test_figure_legend_columns_fit_the_width(data):
    df, tr = data
    fig = F.panel_grid(["E5M2"], lambda f, ax: F.plot_loss_curves(tr, df, f, ax=ax))  # 3.4 in wide
    assert fig.legends[0]._ncols == 1  # int(3.4 // 2.3)


def test_layer_heatmaps_facet_by_setting():
    df = _two_settings(runs())
    specs = {s.id: s for s in catalog.figure_specs(analyse(df, histories(), options=DesignOptions(factors=("learning_rate",))))}
    fig = specs["fig-layer-stall"].draw()
    heat = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title().split("\n")[0] for ax in heat] == ["learning_rate=0.01", "learning_rate=0.001"]
    # lr=0.01: seed 1 of E4M3, E5M2 and E7M0, both optimizers (the crashed r10 logged stall before it crashed)
    assert len(heat[0].get_yticklabels()) == 6 and len(heat[1].get_yticklabels()) == 4  # lr=0.001: E5M2, E7M0
