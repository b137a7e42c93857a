"""The one-call analysis and the figure/table catalogue the site publishes."""

import pandas as pd

from altgrad_docs.analysis.pipeline import analyse
from altgrad_docs.report import catalog
from altgrad_docs.runs import RUN_COLUMNS
from tests.analysis_data import histories, runs


def test_analyse_on_the_fixture():
    a = analyse(runs(), histories())
    assert a.sweet_spot == "E5M2" and a.metric == "final_val_loss"
    assert a.formats == ["E4M3", "E5M2", "E7M0", "BF16"] and len(a.traces) == 15
    assert a.failures["run_id"].tolist() == ["r10", "r13"] and not a.layers.empty


def test_every_spec_draws_and_ids_are_unique(tmp_path):
    a = analyse(runs(), histories())
    specs = catalog.figure_specs(a)
    assert len({s.id for s in specs}) == len(specs) and all(s.id.startswith("fig-") for s in specs)
    assert {s.page for s in specs} == {"format_comparison", "failure_modes", "manifold_comparison", "formats"}
    paths = catalog.render_all(specs, tmp_path / "figs", formats=("svg",))
    assert sorted(paths) == sorted(s.id for s in specs)
    assert all(p["svg"].stat().st_size > 1000 for p in paths.values())
    tables = catalog.table_specs(a)
    assert [t.id for t in tables] == ["tab-scorecard", "tab-failures", "tab-paired", "tab-layer-values",
                                      "tab-format-facts"]
    layer_figures = [s for s in specs if s.id.startswith("fig-layer-stall")]
    assert len(layer_figures) == 2 and {s.table for s in layer_figures} == {("manifold_comparison", "tab-layer-values")}
    assert catalog.by_page(tables, "failure_modes")[0].data["run_id"].tolist() == ["r10", "r13"]
    assert tables[0].data["run_ids"].iloc[0] == "r08"  # lists flattened for CSV


def test_cache_reuses_unchanged_figures(tmp_path):
    a = analyse(runs(), histories())
    specs = catalog.by_page(catalog.figure_specs(a), "manifold_comparison")
    first = catalog.render_all(specs, tmp_path / "one", tmp_path / "cache", ("svg",))
    n_cached = len(list((tmp_path / "cache").rglob("*.svg")))
    second = catalog.render_all(specs, tmp_path / "two", tmp_path / "cache", ("svg",))
    assert len(list((tmp_path / "cache").rglob("*.svg"))) == n_cached == len(specs)
    for spec in specs:
        assert first[spec.id]["svg"].read_bytes() == second[spec.id]["svg"].read_bytes()


def test_empty_data_draws_no_data_figures(tmp_path):
    a = analyse(pd.DataFrame(columns=list(RUN_COLUMNS)), [])
    assert a.sweet_spot == "" and a.failures.empty
    for spec in catalog.figure_specs(a):
        texts = [t.get_text() for ax in spec.draw().axes for t in ax.texts]
        if spec.id != "fig-number-lines":  # the formats need no runs
            assert any(t.startswith("no data: ") for t in texts), spec.id


def test_analyse_reads_a_snapshot_the_same_way(tmp_path):
    from altgrad_docs.snapshot import open_snapshot, write_snapshot
    from tests.analysis_data import records

    snap = open_snapshot(write_snapshot(records(), tmp_path / "snap", source={"kind": "test"}))
    a, b = analyse(snap.runs(), snap.iter_histories()), analyse(runs(), histories())
    pd.testing.assert_frame_equal(a.card, b.card)
    pd.testing.assert_frame_equal(a.failures, b.failures)
    assert {k: t.collapse_step for k, t in a.traces.items()} == {k: t.collapse_step for k, t in b.traces.items()}


def test_captions_mention_the_baseline_only_when_there_is_one():
    df = runs()
    no_base = df[df["format"] != "BF16"]
    caption = {s.id: s.caption for s in catalog.figure_specs(analyse(no_base, histories()))}
    assert "BF16" not in caption["fig-loss-curves"] and "baseline" not in caption["fig-loss-vs-mantissa"]
    caption = {s.id: s.caption for s in catalog.figure_specs(analyse(df, histories()))}
    assert "BF16 baseline grey dashed" in caption["fig-loss-curves"]


def test_layer_values_are_the_heatmaps_numbers():
    from altgrad_docs.report.tables import layer_values

    rows = [("E5M2", "AdamW", "r1", "stall", "mlp", 0.2), ("E5M2", "AdamW", "r2", "stall", "mlp", 0.4),
            ("E5M2", "AdamW", "r1", "stall", "attention", 0.1), ("E4M3", "ManifoldAdamW", "r3", "stall", "mlp", 0.5),
            ("E5M2", "AdamW", "r1", "grad_norm_l2", "other", 3.0)]
    layers = pd.DataFrame(rows, columns=["format", "optimizer", "run_id", "family", "layer_type", "value"])
    got = layer_values(layers)
    assert got.columns.tolist() == ["family", "layer_type", "format", "optimizer", "value", "runs"]
    assert got.drop(columns="family").values.tolist() == [  # stall first (family order), types, formats
        ["attention", "E5M2", "AdamW", 0.1, 1], ["mlp", "E4M3", "ManifoldAdamW", 0.5, 1],
        ["mlp", "E5M2", "AdamW", 0.30000000000000004, 2], ["other", "E5M2", "AdamW", 3.0, 1]]
    assert got["family"].tolist() == ["stall"] * 3 + ["grad_norm_l2"]
    with_setting = layer_values(layers.assign(setting=["a", "b", "a", "a", "a"]))
    assert with_setting.columns.tolist()[:5] == ["family", "layer_type", "format", "optimizer", "setting"]
    assert with_setting[with_setting["layer_type"] == "mlp"][["format", "setting", "value"]].values.tolist() == [
        ["E4M3", "a", 0.5], ["E5M2", "a", 0.2], ["E5M2", "b", 0.4]]
    assert layer_values(layers.iloc[:0]).empty
