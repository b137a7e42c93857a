"""The run page's overview data (altgrad_docs/site/run_overview.py) and its history CSV."""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from altgrad_docs.site import run_overview as ro
from altgrad_docs.site.runchart import chart_csv, chart_data


def _design_runs():
    rows = [("a1", "E4M3", "AdamW", "lr=0.1", 1), ("a2", "E4M3", "AdamW", "lr=0.1", 2),
            ("m1", "E4M3", "ManifoldAdamW", "lr=0.1", 1), ("b1", "E4M3", "AdamW", "lr=0.01", 1),
            ("e1", "E5M2", "ManifoldAdamW", "lr=0.1", 1)]
    return pd.DataFrame([{"run_id": r, "name": f"run {r}", "format": f, "optimizer": o, "setting": s, "seed": k,
                          "state": "finished", "included": True, "reason": ""} for r, f, o, s, k in rows])


def test_relations_pair_siblings_and_section():
    rel = ro.relations(_design_runs(), ["lr=0.1", "lr=0.01"])
    assert [r["run_id"] for r in rel["a1"].pair] == ["m1"]
    assert [r["run_id"] for r in rel["a1"].siblings] == ["a2"]
    assert rel["m1"].siblings == [] and [r["run_id"] for r in rel["m1"].pair] == ["a1"]
    assert rel["b1"].pair == [] and rel["b1"].siblings == []  # another setting: no neighbour
    assert rel["e1"].pair == []  # another format
    assert rel["a1"].anchor == "setting-lr-0-1" and rel["b1"].anchor == "setting-lr-0-01"
    assert ro.relations(_design_runs(), ["lr=0.1"])["a1"].anchor == "results"  # one setting: no sections
    assert ro.relations(None) == {}


def test_split_config_and_clean_summary():
    keys = ro.ConfigKeys(frozenset({"learning_rate", "fp8_format", "seed"}), frozenset({"run_name"}))
    config = {"learning_rate": 0.1, "fp8_format": "E4M3", "seed": 1, "batch_size": 8, "run_name": "x",
              "_wandb": {"v": 1}}
    assert ro.split_config(config, keys) == (
        {"fp8_format": "E4M3", "learning_rate": 0.1, "seed": 1}, {"batch_size": 8}, {"_wandb": {"v": 1}, "run_name": "x"})
    assert ro.split_config({"a": 1}, ro.ConfigKeys()) == ({}, {"a": 1}, {})
    assert ro.clean_summary({"_timestamp": 1.8e9, "_runtime": 3, "_wandb": {}, "loss": 2.0}) == {"loss": 2.0}
    assert ro.unit("quantization/overflow_rate") == "fraction" and ro.unit("val_loss") == "nats"
    assert ro.unit("something_else") == ""


def test_key_metrics_final_and_best_with_steps():
    chart = {"panels": [{"id": "loss", "x": [0, 1, 2, 3], "series": [
        {"name": "loss", "y": [3.0, 1.5, 2.0, None]}, {"name": "val_loss", "y": [None, 2.5, None, 2.2]}]},
        {"id": "grad", "x": [0, 1], "series": [{"name": "grad_norm", "y": [1.0, 0.5]}]}]}
    got = {m["key"]: m for m in ro.key_metrics(chart)}
    assert [m["key"] for m in ro.key_metrics(chart)] == ["loss", "val_loss", "grad_norm"]
    assert (got["loss"]["final"], got["loss"]["final_step"], got["loss"]["best"], got["loss"]["best_step"]) == (2.0, 2, 1.5, 1)
    assert (got["val_loss"]["final"], got["val_loss"]["best"], got["val_loss"]["best_step"]) == (2.2, 2.2, 3)
    assert got["grad_norm"]["best"] is None and got["grad_norm"]["unit"] == "L2 norm"


def test_history_csv_joins_the_panels_by_step():
    h = pd.DataFrame({"_step": [0, 1, 2], "loss": [3.0, float("nan"), 2.0], "val_loss": [float("nan"), 2.5, float("nan")],
                      "grad_norm": [1.0, 0.5, 0.25]})
    assert chart_csv(chart_data(h)).decode() == (
        "step,loss,val_loss,grad_norm\n0,3.0,,1.0\n1,,2.5,0.5\n2,2.0,,0.25\n")


def _relations_by_dataframe_filters(runs: pd.DataFrame) -> dict[str, tuple[list[str], list[str]]]:
    """The rule as DataFrame filters (the implementation before the plain-Python pass)."""
    out = {}
    for _, group in runs.groupby(["format", "setting"], sort=False, dropna=False):
        for r in group.itertuples():
            same_seed = group[(group["seed"] == r.seed).fillna(False) & (group["optimizer"] != r.optimizer)]
            same_cond = group[(group["optimizer"] == r.optimizer) & (group["run_id"] != r.run_id)]
            out[r.run_id] = (list(same_seed["run_id"]), list(same_cond.sort_values("seed", kind="stable")["run_id"]))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["E4M3", "E5M2"]), st.sampled_from(["AdamW", "ManifoldAdamW", "SGD"]),
                          st.sampled_from(["lr=0.1", "lr=0.01"]), st.sampled_from([1, 2, 3, None])),
                min_size=1, max_size=14),
       st.sampled_from(["float64", "Int64"]))
def test_relations_match_the_rule_with_missing_seeds(rows, seed_dtype):
    runs = pd.DataFrame([{"run_id": f"r{i}", "name": "", "format": f, "optimizer": o, "setting": s, "seed": k,
                          "state": "finished"} for i, (f, o, s, k) in enumerate(rows)])
    runs["seed"] = runs["seed"].astype(seed_dtype)
    got = {k: ([p["run_id"] for p in v.pair], [p["run_id"] for p in v.siblings])
           for k, v in ro.relations(runs, ["lr=0.1", "lr=0.01"]).items()}
    assert got == _relations_by_dataframe_filters(runs)


@pytest.mark.parametrize("plan, history, branch", [
    ("overflow", "overflow", "agree"), ("overflow", "divergence", "differ"), ("unknown", "divergence", "history"),
    ("", "divergence", "history"), ("overflow", None, "plan"), ("unknown", "", "none"), (None, float("nan"), "none")])
def test_a_run_page_states_the_two_classifications_by_whether_they_agree(plan, history, branch):
    assert ro.mode_agreement({"failure_mode": plan, "history_mode": history}) == branch


def test_the_condition_table_holds_the_keys_that_name_format_optimizer_and_seed():
    """The trainer's run pages put fp8_format, use_manifold_aware and seed under 'the rest of
    the config', though they define the condition as much as learning_rate does."""
    from altgrad_docs.analysis.design import infer_design

    design = infer_design(_design_runs().assign(config_json=[
        '{"fp8_format": "E4M3", "use_manifold_aware": false, "seed": 1, "learning_rate": 0.1, "batch_size": 8, '
        '"log_bit_position": false}',
        '{"fp8_format": "E4M3", "use_manifold_aware": false, "seed": 2, "learning_rate": 0.1, "batch_size": 8, '
        '"log_bit_position": false}',
        '{"fp8_format": "E4M3", "use_manifold_aware": true, "seed": 1, "learning_rate": 0.1, "batch_size": 8, '
        '"log_bit_position": true}',
        '{"fp8_format": "E4M3", "use_manifold_aware": false, "seed": 1, "learning_rate": 0.01, "batch_size": 8, '
        '"log_bit_position": false}',
        '{"fp8_format": "E5M2", "use_manifold_aware": true, "seed": 1, "learning_rate": 0.1, "batch_size": 8, '
        '"log_bit_position": true}']))
    keys = ro.ConfigKeys.of(design)
    condition, rest, _ = ro.split_config({"fp8_format": "E4M3", "use_manifold_aware": False, "seed": 1,
                                          "learning_rate": 0.1, "batch_size": 8, "log_bit_position": False}, keys)
    assert sorted(condition) == ["fp8_format", "learning_rate", "log_bit_position", "seed", "use_manifold_aware"]
    assert rest == {"batch_size": 8}


def test_the_modules_that_shape_run_page_tables_key_their_cache():
    """A run page's CSV/LaTeX downloads are written once per cache key: a change to the config
    split (run_overview), the console (run_log) or the table formats (artifacts) must make
    new files, else the downloads disagree with the page."""
    from altgrad_docs.site import artifacts, pages, run_log

    keyed = set(pages.code_files())
    assert {Path(ro.__file__), Path(run_log.__file__), Path(artifacts.__file__)} <= keyed


def test_an_alert_without_level_or_count_still_renders():
    """A hand-made snapshot's alert {"title": "x"} stopped the build (StrictUndefined)."""
    from altgrad_docs.site.pages import _alert_list

    assert _alert_list('[{"title": "x"}, 3]') == [{"title": "x", "level": None, "count": None}]
