"""FormatComparator, the scorecard and the paired comparison on hand-checked data."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.comparisons import FormatComparator, layer_stall_frame
from altgrad_docs.analysis.curves import collect_traces, median_curve, survival
from tests.analysis_data import histories, runs


def test_rank_by_metric_uses_the_median_of_finished_runs_and_carries_n():
    ranked = FormatComparator(runs()).rank_by_metric("final_loss")
    # train loss = val + 0.1; E5M2 finished: 3.1 3.3 3.2 3.0 3.1 3.15 (killed r07 left out)
    assert ranked[["rank", "format", "n"]].values.tolist() == [
        [1, "BF16", 2], [2, "E5M2", 6], [3, "E4M3", 2], [4, "E7M0", 2]]
    assert ranked["median"].tolist() == pytest.approx([2.925, 3.125, 3.425, 5.35])
    assert ranked.loc[1, ["min", "max"]].tolist() == pytest.approx([3.0, 3.3])
    desc = FormatComparator(runs()).rank_by_metric("final_loss", ascending=False)
    assert desc["format"].tolist() == ["E7M0", "E4M3", "E5M2", "BF16"]


def test_identify_sweet_spot_skips_baselines_and_crashes():
    fc = FormatComparator(runs())
    assert fc.identify_sweet_spot() == "E5M2"
    assert fc.identify_sweet_spot(include_baselines=True) == "BF16"
    assert fc.identify_sweet_spot(exclude_crashed=False) == "E5M2"
    assert FormatComparator(runs().iloc[0:0]).identify_sweet_spot() == ""


def test_compute_improvement_in_percent():
    fc = FormatComparator(runs())
    assert fc.compute_improvement("E7M0", "E5M2") == pytest.approx(100 * (5.35 - 3.125) / 5.35)
    assert fc.compute_improvement("BF16", "E5M2") == pytest.approx(100 * (2.925 - 3.125) / 2.925)
    assert math.isnan(fc.compute_improvement("E3M4", "E5M2"))


def test_compare_by_layer_type():
    layers = pd.DataFrame({
        "format": ["E5M2"] * 5,
        "layer": ["transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_proj.weight",
                  "transformer.h.0.mlp.c_fc.weight", "transformer.wte.weight", "lm_head.weight"],
        "stall": [0.2, 0.4, 0.5, 0.1, 0.9], "flips": [10, 20, 30, 40, 50]})
    out = FormatComparator(runs()).compare_by_layer_type(layers)
    assert out[["layer_type", "n_layers"]].values.tolist() == [
        ["attention", 2], ["mlp", 1], ["embedding", 1], ["classifier", 1]]
    assert out["stall"].tolist() == pytest.approx([0.3, 0.5, 0.1, 0.9])
    assert out["flips"].tolist() == pytest.approx([15, 30, 40, 50])
    with pytest.raises(ValueError, match="layer"):
        FormatComparator(runs()).compare_by_layer_type(pd.DataFrame({"stall": [1.0]}))


def test_layer_stall_frame_from_traces():
    frame = layer_stall_frame(collect_traces(histories()), runs())
    e5 = frame[(frame["format"] == "E5M2") & (frame["optimizer"] == "AdamW") & (frame["run_id"] == "r01")]
    assert dict(zip(e5["layer_type"], e5["stall"])) == pytest.approx({"attention": 0.3, "classifier": 0.15})
    assert frame[frame["format"] == "BF16"].empty  # BF16 runs logged no per-layer stall


def test_scorecard_counts_crashes_and_pairs():
    card = sc.scorecard(runs()).set_index(["format", "optimizer"])
    e7 = card.loc[("E7M0", "AdamW")]
    assert (e7["n"], e7["crashes"], e7["n_finite"], e7["median"]) == (2, 1, 1, 5.5)
    ci = ss.binomtest(1, 2).proportion_ci(method="exact")
    assert (e7["crash_low"], e7["crash_high"]) == (ci.low, ci.high)
    e5 = card.loc[("E5M2", "ManifoldAdamW")]
    assert e5["metric"] == "final_val_loss" and e5["n"] == 3
    assert e5["paired_n"] == 3 and e5["paired_delta"] == pytest.approx(np.mean([-0.1, -0.2, -0.05]))
    res = ss.ttest_rel([2.9, 3.0, 3.05], [3.0, 3.2, 3.1]).confidence_interval()
    assert (e5["paired_low"], e5["paired_high"]) == (pytest.approx(res.low), pytest.approx(res.high))
    assert e5["delta_vs_baseline"] == pytest.approx(3.0 - 2.825)
    assert e5["stall_mean"] == pytest.approx(0.2) and e5["run_ids"] == ["r04", "r05", "r06"]
    assert math.isnan(card.loc[("E5M2", "AdamW")]["paired_delta"])
    assert list(card.index.get_level_values(0).unique()) == ["E4M3", "E5M2", "E7M0", "BF16"]
    assert sc.scorecard(runs().iloc[0:0]).empty


def test_manifold_comparison_pairs_by_seed():
    mc = sc.manifold_comparison(runs()).set_index("format")
    assert mc.loc["E5M2", "seeds"] == [1, 2, 3]
    assert mc.loc["E5M2", "deltas"] == pytest.approx([-0.1, -0.2, -0.05])
    assert mc.loc["E5M2", "status"] == "too few seeds to test" and math.isnan(mc.loc["E5M2", "p_holm"])
    assert mc.loc["E5M2", "p_improve"] == pytest.approx(ss.mannwhitneyu([3.0, 3.2, 3.1], [2.9, 3.0, 3.05]).statistic / 9)
    assert mc.loc["E7M0", "n_pairs"] == 0  # each seed lost one side to a crash
    assert "BF16" not in mc.index  # no ManifoldAdamW baseline runs


def test_holm_is_applied_across_formats_with_enough_pairs():
    rows = []
    for fmt, shift in (("E4M3", -0.3), ("E5M2", -0.05)):
        for seed in range(1, 8):
            for man in (False, True):
                rows.append({"format": fmt, "optimizer": "ManifoldAdamW" if man else "AdamW", "seed": seed,
                             "status": "finished", "run_id": f"{fmt}{seed}{man}",
                             "final_loss": 3.0 + 0.01 * seed ** 2 + (shift * (1 + seed / 10) if man else 0)})
    mc = sc.manifold_comparison(pd.DataFrame(rows), "final_loss").set_index("format")
    p = [ss.wilcoxon(*_pair(rows, f), method="exact").pvalue for f in ("E4M3", "E5M2")]
    assert (mc["status"] == "tested").all()
    assert mc.loc["E4M3", "p"] == pytest.approx(p[0]) and mc.loc["E5M2", "p"] == pytest.approx(p[1])
    low, high = sorted(p)
    assert sorted(mc["p_holm"]) == pytest.approx([2 * low, max(2 * low, high)])


def _pair(rows, fmt):
    man = [r["final_loss"] for r in rows if r["format"] == fmt and r["optimizer"] == "ManifoldAdamW"]
    std = [r["final_loss"] for r in rows if r["format"] == fmt and r["optimizer"] == "AdamW"]
    return man, std


def test_median_curve_and_survival():
    a = (np.array([0.0, 10.0]), np.array([1.0, 3.0]))
    b = (np.array([0.0, 5.0]), np.array([3.0, 3.0]))
    grid, med = median_curve([a, b], n_grid=3)
    assert grid.tolist() == [0.0, 5.0, 10.0] and med.tolist() == [2.0, 2.5, 3.0]  # b ends at 5
    x, y = survival([40, None, 60, None], [40, 99, 60, 50])
    assert x.tolist() == [0, 40, 60, 99] and y.tolist() == pytest.approx([1.0, 0.75, 0.375, 0.375])
    # a failure at the last step of 3 finished runs: 1 of 4 at risk failed, not 1 of 1
    x, y = survival([None, None, 199, None], [199, 199, 199, 199])
    assert x.tolist() == [0, 199, 199] and y.tolist() == pytest.approx([1.0, 0.75, 0.75])


def test_unpaired_seeds_fall_back_to_welch():
    rows = [{"format": "E3M4", "optimizer": opt, "seed": seed, "status": "finished", "run_id": f"{opt}{seed}",
             "final_loss": loss}
            for opt, seeds, losses in (("AdamW", (1, 2, 3), (3.0, 3.2, 3.1)), ("ManifoldAdamW", (7, 8), (2.9, 2.95)))
            for seed, loss in zip(seeds, losses)]
    mc = sc.manifold_comparison(pd.DataFrame(rows), "final_loss").set_index("format")
    r = mc.loc["E3M4"]
    ref = ss.ttest_ind([2.9, 2.95], [3.0, 3.2, 3.1], equal_var=False).confidence_interval()
    assert (r["design"], r["n_pairs"], r["n_manifold"], r["n_adamw"]) == ("unpaired", 0, 2, 3)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert r["test"] == "Mann-Whitney U (exact)" and r["status"] == "too few seeds to test"  # 2 vs 3
    assert r["deltas"] == [] and r["p_improve"] == 1.0
    card = sc.scorecard(pd.DataFrame(rows), "final_loss").set_index(["format", "optimizer"])
    assert card.loc[("E3M4", "ManifoldAdamW"), "paired_n"] == 0  # no paired delta shown


def test_one_optimizer_only_is_not_compared():
    df = runs()
    assert "BF16" not in set(sc.manifold_comparison(df)["format"])
