"""Metrics by meaning (analysis/metrics.py), cumulative rates in the failure classifier, per-layer
families (analysis/layers.py) and the direction of every ranking: hand-built cases per rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.analysis import metrics as M
from altgrad_docs.analysis import rates as R
from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.comparisons import FormatComparator
from altgrad_docs.analysis.curves import Trace, make_trace
from altgrad_docs.analysis.design import DesignError, DesignOptions, infer_design
from altgrad_docs.analysis.failures import classify_trace
from altgrad_docs.analysis.layers import layer_families, split_layer_key
from altgrad_docs.report.bench_note import bench_nav, from_bench
from altgrad_docs.runs import layer_type


def _runs(summaries: list[dict], formats=None, optimizers=None, states=None, seeds=None) -> pd.DataFrame:
    n = len(summaries)
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)], "name": [f"r{i}" for i in range(n)],
        "format": formats or ["E5M2"] * n, "optimizer": optimizers or ["AdamW"] * n,
        "state": states or ["finished"] * n, "status": states or ["finished"] * n,
        "seed": seeds or list(range(n)), "final_loss": [s.get("loss", math.nan) for s in summaries],
        "final_val_loss": [s.get("val_loss", math.nan) for s in summaries],
        "summary_json": [json.dumps(s) for s in summaries], "config_json": ["{}"] * n,
    })


# -- direction and the primary metric ----------------------------------------------------------

@pytest.mark.parametrize("key, higher", [
    ("loss", False), ("val_loss", False), ("eval/loss", False), ("perplexity", False),
    ("eval/hamming_loss", False), ("eval/ranking_loss", False), ("eval/coverage_error", False),
    ("eval/f1_micro", True), ("eval/subset_accuracy", True), ("eval/roc_auc_macro", True),
    ("eval/precision_micro", True), ("eval/recall_weighted", True), ("eval/label_ranking_ap", True),
    ("throughput", None)])
def test_direction_from_the_name(key, higher):
    assert M.direction_of(key) is higher


def test_lm_runs_keep_val_loss_lower_is_better():
    runs = _runs([{"loss": 2.0, "val_loss": 2.1}, {"loss": 2.2, "val_loss": 2.3}])
    mmap = M.infer_metric_map(runs)
    assert (mmap.train_loss, mmap.primary, mmap.column, mmap.higher_is_better) == ("loss", "val_loss",
                                                                                   "final_val_loss", False)


def test_classification_runs_take_the_task_metric_higher_is_better():
    keys = {"train/loss": 1.4, "eval/hamming_loss": 0.5, "eval/f1_macro": 0.2, "eval/f1_micro": 0.45}
    runs = _runs([keys, {**keys, "eval/f1_micro": 0.46}])
    mmap = M.infer_metric_map(runs)
    assert (mmap.train_loss, mmap.primary, mmap.column, mmap.higher_is_better, mmap.source) == (
        "train/loss", "eval/f1_micro", "final_eval/f1_micro", True, "inferred")
    filled = M.with_metric_columns(runs, mmap)
    assert filled["final_loss"].tolist() == [1.4, 1.4]  # the train loss by meaning: no run counts as crashed
    assert filled["final_eval/f1_micro"].tolist() == [0.45, 0.46]
    assert not sc.crashed_mask(runs).any()  # read from the summaries even without the filled column


def test_eval_loss_comes_before_task_metrics_and_a_missing_value_moves_on():
    both = {"train/loss": 1.0, "eval/loss": 1.1, "eval/accuracy": 0.7}
    assert M.infer_metric_map(_runs([both, both])).primary == "eval/loss"
    gap = {"train/loss": 1.0, "eval/accuracy": 0.7}
    runs = _runs([gap, {"train/loss": 1.0}])  # one finished run never evaluated: the train loss it is
    assert M.infer_metric_map(runs).column == "final_loss"


def test_declared_metric_and_direction_win_and_an_unlogged_key_is_refused():
    runs = _runs([{"train/loss": 1.0, "eval/f1_micro": 0.4, "score": 3.0}] * 2)
    mmap = M.infer_metric_map(runs, metric="score",
                              declared={"direction": "lower"})
    assert (mmap.primary, mmap.higher_is_better, mmap.source, mmap.direction_source) == (
        "score", False, "declared", "declared")
    assert M.infer_metric_map(runs, metric="final_loss").primary == "train/loss"  # metric: loss = the train loss
    with pytest.raises(M.MetricError, match="no run logged"):
        M.infer_metric_map(runs, metric="eval/accuracy")


def test_design_carries_the_direction_and_reads_any_key():
    runs = _runs([{"train/loss": 1.0, "eval/f1_micro": v} for v in (0.40, 0.50, 0.45, 0.55)],
                 formats=["E5M2", "E5M2", "E4M3", "E4M3"], optimizers=["AdamW", "ManifoldAdamW"] * 2,
                 seeds=[1, 1, 1, 1])
    d = infer_design(runs)
    assert (d.metric, d.higher_is_better, d.runs["crashed"].sum()) == ("final_eval/f1_micro", True, 0)
    opts = DesignOptions.from_config({"metrics": json.dumps({"primary": "eval/f1_micro", "direction": "higher"})})
    assert opts.metric == "final_eval/f1_micro" and opts.metrics["direction"] == "higher"
    with pytest.raises(DesignError, match="no run logged"):
        infer_design(runs, DesignOptions(metric="final_eval/accuracy"))


def test_rankings_and_probability_of_improvement_follow_the_direction():
    runs = _runs([{"train/loss": 1.0, "eval/f1_micro": v} for v in (0.40, 0.50, 0.45, 0.55)],
                 formats=["E5M2", "E5M2", "E4M3", "E4M3"], optimizers=["AdamW", "ManifoldAdamW"] * 2,
                 seeds=[1, 1, 1, 1])
    metric = "final_eval/f1_micro"
    up = FormatComparator(runs, [], higher_is_better=True)
    assert up.sweet_spot_condition(metric)["median"] == 0.55  # E4M3 ManifoldAdamW
    assert FormatComparator(runs, []).sweet_spot_condition(metric)["median"] == 0.40
    assert up.compute_improvement("E5M2", "E4M3", metric) == pytest.approx(100 * (0.5 - 0.45) / 0.45)
    mc = sc.manifold_comparison(runs, metric, [], higher_is_better=True)
    assert mc["mean_delta"].tolist() == pytest.approx([0.10, 0.10])  # ManifoldAdamW - AdamW, sign kept
    assert mc["p_improve"].tolist() == [1.0, 1.0]  # ManifoldAdamW higher: better
    assert sc.manifold_comparison(runs, metric, [])["p_improve"].tolist() == [0.0, 0.0]


# -- cumulative rates --------------------------------------------------------------------------

def _running_mean(per_step: np.ndarray) -> np.ndarray:
    return np.cumsum(per_step) / np.arange(1, len(per_step) + 1)


def test_window_values_undo_a_running_mean():
    per_step = np.array([1.0, 0.5, 0.0, 0.25, 1.0])
    steps = np.arange(5, dtype=float)
    assert R.window_values(steps, _running_mean(per_step)) == pytest.approx(per_step[1:])
    # logged every second step: the window is the mean of the steps between
    assert R.window_values(steps[::2], _running_mean(per_step)[::2]) == pytest.approx([0.25, 0.625])


def test_looks_cumulative_rule():
    rng = np.random.default_rng(0)
    per_step = rng.uniform(0.9, 1.0, 200)
    steps = np.arange(200, dtype=float)
    assert R.looks_cumulative(steps, _running_mean(per_step)) is True
    assert R.looks_cumulative(steps, per_step) is False  # a per-window rate jumps late in training
    assert R.looks_cumulative(steps[:5], _running_mean(per_step)[:5]) is None  # no change after step 10
    assert R.looks_cumulative(steps, np.zeros(200)) is None  # constant: no evidence either way
    assert R.decide_cumulative([True, None, True]) is True
    assert R.decide_cumulative([True, False]) is False and R.decide_cumulative([None]) is False


def _collapsed_trace(loss: list[float], stall: list[float], overflow: list[float] | None = None,
                     grad: list[float] | None = None) -> Trace:
    n = len(loss)
    history = pd.DataFrame({"_step": np.arange(n), "loss": loss, "quantization/bit_stall_rate": stall,
                            "quantization/overflow_rate": overflow or [0.0] * n, "grad_norm": grad or [1.0] * n})
    return make_trace("r", history)


def test_nan_collapse_after_an_explosion_is_divergence_not_gradient_vanishing():
    """The trainer's runs: loss 5.3 -> thousands, grad norm -> 1e13, cumulative stall 0.99."""
    nan = math.nan
    trace = _collapsed_trace([5.3, 3269.0, 1824.0, 2956.0, nan, nan], [0.9997, 0.9997, 0.9995, 0.9984, 0.9984, 0.9984],
                             grad=[3.6, 204.0, 2.8e4, 5.8e9, math.inf, nan])
    got = classify_trace(trace, cumulative={"quantization/bit_stall_rate": True})
    assert (got["collapse_step"], got["history_mode"]) == (4, "divergence")
    assert got["evidence"] == ("loss rose from 5.3 to 3269 (> 10x) from step 1; gradient norm up to inf "
                               "before the collapse at step 4")
    assert classify_trace(trace)["history_mode"] == "divergence"  # per-window reading: the same evidence order


def test_a_cumulative_stall_rate_is_read_as_its_window():
    nan = math.nan
    # per-step stall 0.2 for four steps, then 1.0: the cumulative value stays below 0.5 until step 5
    per_step = np.array([0.2, 0.2, 0.2, 0.2, 1.0, 1.0, 1.0])
    cum = _running_mean(per_step).tolist()
    trace = _collapsed_trace([2.0, 1.9, 1.8, 1.8, 1.8, 1.8, nan], cum)
    window = classify_trace(trace, cumulative={"quantization/bit_stall_rate": True})
    assert window["history_mode"] == "gradient_vanishing"
    assert window["evidence"] == "bit-stall rate 1 (window of the cumulative rate) > 0.5 before collapse"
    # per-step stall 0.9 for 100 steps, then 0 for 60: the cumulative value is still 0.5625 at the
    # collapse, but every window of the 50 steps before it is 0
    cum = _running_mean(np.r_[np.full(100, 0.9), np.zeros(60)]).tolist()
    loss = [2.0] * 160 + [nan]
    quiet = _collapsed_trace(loss, cum + [cum[-1]])
    assert classify_trace(quiet, cumulative={"quantization/bit_stall_rate": True})["history_mode"] == "unknown"
    assert classify_trace(quiet)["history_mode"] == "gradient_vanishing"  # the value read as a window: wrong


def test_a_cumulative_rate_whose_counts_cannot_be_recovered_is_left_out_and_said_so():
    nan = math.nan
    trace = _collapsed_trace([2.0, 1.9, 1.8, nan], [0.1, 0.9, 0.1, 0.1])  # not a running mean of [0, 1]
    got = classify_trace(trace, cumulative={"quantization/bit_stall_rate": True})
    assert got["history_mode"] == "unknown"
    assert "bit-stall rate is cumulative, but its counts per step cannot be recovered" in got["evidence"]
    assert "left out" in got["evidence"]


# -- per-layer families ------------------------------------------------------------------------

@pytest.mark.parametrize("key, split", [
    ("grad_norm_l2/transformer.h.0.attn.c_attn.weight", ("grad_norm_l2", "transformer.h.0.attn.c_attn.weight")),
    ("train/stable_rank/encoder.transformer.layer.0.ffn.lin1.weight",
     ("stable_rank", "encoder.transformer.layer.0.ffn.lin1.weight")),
    ("grad_snr/transformer/h/0/attn/c_attn/weight_fp8", ("grad_snr_fp8", "transformer.h.0.attn.c_attn.weight")),
    ("stall/layer3", ("stall", "layer3")),
    ("grad_snr/mean", None), ("train/stall/mean_ratio", None), ("train/flips/total", None),
    ("quantization/bit_stall_rate", None), ("bit_position/mean", None), ("train/throughput/tokens_per_sec", None),
    ("eval/f1_micro", None), ("loss", None)])
def test_per_layer_keys(key, split):
    assert split_layer_key(key) == split


@pytest.mark.parametrize("name, kind", [
    ("transformer.h.0.attn.c_attn.weight", "attention"), ("transformer.h.1.mlp.c_proj.bias", "mlp"),
    ("transformer.wte.weight", "embedding"), ("lm_head.weight", "classifier"), ("transformer.ln_f.weight", "other"),
    ("encoder.transformer.layer.0.attention.q_lin.weight", "attention"),
    ("encoder.transformer.layer.1.ffn.lin2.weight", "mlp"), ("encoder.embeddings.word_embeddings.weight", "embedding"),
    ("classifier.bias", "classifier"), ("encoder.transformer.layer.0.sa_layer_norm.weight", "other"),
    ("model.layers.0.self_attn.o_proj.weight", "attention"), ("model.layers.0.mlp.down_proj.weight", "mlp")])
def test_layer_types_for_nanogpt_and_generic_names(name, kind):
    assert layer_type(name) == kind


def test_layer_families_average_per_type_and_skip_aggregates():
    history = pd.DataFrame({"_step": [0, 1], "grad_norm_l2/transformer.h.0.attn.c_attn.weight": [1.0, 3.0],
                            "grad_norm_l2/transformer.h.1.attn.c_attn.weight": [4.0, 4.0],
                            "grad_norm_l2/lm_head.weight": [0.5, np.nan], "grad_norm_l2/mean": [9.0, 9.0],
                            "train/dead_neuron_frac/classifier.weight": [0.0, 0.5], "loss": [2.0, 1.0]})
    assert layer_families(history) == {"grad_norm_l2": {"attention": 3.0, "classifier": 0.5},
                                       "dead_neuron_frac": {"classifier": 0.25}}


# -- bench text only for bench snapshots -------------------------------------------------------

def test_bench_text_and_nav_follow_the_manifest_not_the_path():
    assert from_bench({"source": {"kind": "offline", "producer": "altgrad-docs bench"}})
    assert from_bench({"bench": {"runs": 288}})
    assert not from_bench({"source": {"kind": "offline", "path": "data/bundled/wandb"}}) and not from_bench(None)
    nav = [{"Home": "index.md"}, {"The bench (bundled data)": "bench.md"}, {"More": [{"Bench": "bench.md"}]}, "cite.md"]
    assert bench_nav(nav, keep=False) == [{"Home": "index.md"}, "cite.md"]
    assert bench_nav(nav, keep=True) is nav


@pytest.mark.parametrize("key, wanted", [
    ("loss", True), ("train/loss", True), ("eval/f1_micro", True), ("val_loss", True),
    ("grad_norm_l2/transformer.h.0.attn.c_attn.weight", True), ("train/stable_rank/classifier.weight", True),
    ("grad_snr/transformer/h/0/attn/c_attn/weight_fp8", True), ("stall/layer3", True),
    ("quantization/bit_stall_rate", True), ("throughput_tokens_sec", False), ("bit_position/mean", False),
    ("param_nan_count", False)])
def test_the_api_fetch_keeps_every_key_the_site_reads_by_meaning(key, wanted):
    from altgrad_docs.runs import wanted_history_key
    assert wanted_history_key(key) is wanted


def test_report_contexts_take_the_direction_from_the_metric_when_no_design_says_it():
    from altgrad_docs.report import context
    runs = _runs([{"train/loss": 1.0, "eval/f1_micro": v} for v in (0.40, 0.50, 0.45, 0.55)],
                 formats=["E5M2", "E5M2", "E4M3", "E4M3"], optimizers=["AdamW", "ManifoldAdamW"] * 2,
                 seeds=[1, 1, 1, 1])
    ctx = context.manifold_comparison(runs)
    assert (ctx["metric"], ctx["higher_is_better"], ctx["direction"]["better"]) == ("final_eval/f1_micro", True, "higher")
    assert ctx["metric_label"] == "final eval/f1_micro" and ctx["metric_unit"] == ""
    from altgrad_docs.runs import runs_frame
    table = runs_frame(runs.assign(steps=40, run_url="").to_dict("records"))
    fc = context.format_comparison(table, "E4M3", lambda r: str(r["run_id"]), metric="final_eval/f1_micro")
    assert fc["sweet_spot"]["median"] == 0.55 and fc["direction"]["better"] == "higher"
    assert context.manifold_comparison(runs, metric="final_loss")["higher_is_better"] is False


def test_a_declared_eval_loss_is_read_as_itself_not_as_val_loss():
    """metric: eval/loss with runs that logged both: the column said eval/loss and held val_loss."""
    runs = _runs([{"loss": 1.0, "val_loss": 2.0, "eval/loss": 5.0}, {"loss": 1.1, "val_loss": 3.0, "eval/loss": 6.0},
                  {"loss": 1.2, "val_loss": 4.0}])
    mmap = M.MetricMap(train_loss="loss", primary="eval/loss")
    assert M.with_metric_columns(runs, mmap)[mmap.column].tolist() == [5.0, 6.0, 4.0]  # val_loss only where none
    plain = M.MetricMap(train_loss="loss", primary="val_loss")
    assert M.with_metric_columns(runs, plain)[plain.column].tolist() == [2.0, 3.0, 4.0]
