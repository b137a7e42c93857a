"""The AltGrad trainer's own runs (fixture ``upstream_runs``): metrics by meaning, cumulative
rates, per-layer families, and no bench text (issue 22, the metric side).

classification/: 12 healthy runs that log ``train/loss`` and ``eval/*`` (no ``loss``);
lm/: 22 runs, 4 stopped by the trainer for NaN after their loss exploded, every FP8 run with a
cumulative bit-stall rate of 0.99+."""

from __future__ import annotations

import html
import re

import pytest

from altgrad_docs.fetch import fetch_offline
from altgrad_docs.report import catalog
from altgrad_docs.site.analysis import analyse
from tests.site_fixtures import run_mkdocs_build

LM_FAMILIES = ["grad_norm_l2", "grad_norm_linf", "grad_snr", "grad_snr_diff", "grad_snr_fp32", "grad_snr_fp8",
               "grad_cos_sim", "dead_neuron_frac"]  # a variant at its base family's place
CLS_FAMILIES = ["grad_norm_l2", "grad_norm_linf", "grad_snr", "dead_neuron_frac", "stable_rank", "effective_rank"]


@pytest.fixture(scope="module")
def snapshots(upstream_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("upstream_snapshots")
    return {kind: fetch_offline(upstream_runs / kind / "wandb", out / kind, progress=False).snapshot
            for kind in ("classification", "lm")}


@pytest.fixture(scope="module")
def results(snapshots):
    return {kind: analyse(snap, snap.runs()) for kind, snap in snapshots.items()}


def test_classification_runs_take_eval_f1_micro_higher_is_better_and_none_failed(results):
    r = results["classification"]
    a = r["analysis"]
    assert (a.metric, a.higher_is_better, a.design.metric_map.train_loss) == ("final_eval/f1_micro", True, "train/loss")
    assert a.failures.empty and int(a.card["crashes"].sum()) == 0 and int(a.card["n"].sum()) == 12
    assert a.runs["final_loss"].notna().all()  # train/loss read as the train loss
    paired = a.paired.set_index("format")
    assert sorted(paired.index) == ["BF16", "E5M2", "E7M0"] and paired["mean_delta"].notna().all()
    # the best 8-bit condition is the one with the highest median f1 (BF16 is the baseline)
    fp8 = a.card[a.card["format"] != "BF16"]
    best = fp8.loc[fp8["median"].idxmax()]
    assert a.sweet_condition["median"] == best["median"] == fp8["median"].max()
    assert r["design"]["metrics"]["primary"] == "eval/f1_micro" and r["design"]["higher_is_better"] is True
    assert r["design"]["metrics"]["families"] == CLS_FAMILIES
    assert r["findings"].family.higher_is_better is True


def test_lm_nan_runs_are_divergence_and_the_rates_are_cumulative(results):
    a = results["lm"]["analysis"]
    assert a.cumulative == {"quantization/bit_stall_rate": True, "quantization/overflow_rate": True,
                            "quantization/underflow_rate": True}
    fails = a.failures.set_index("run_id")
    assert sorted(fails.index) == ["atcd12i9", "dog9t1x0", "fab9d5pw", "kylgkja4"]
    assert set(fails["history_mode"]) == {"divergence"}  # never gradient_vanishing on "bit-stall rate 1 > 0.5"
    assert fails["collapse_step"].astype(int).to_dict() == {"atcd12i9": 6, "dog9t1x0": 4, "fab9d5pw": 6,
                                                            "kylgkja4": 19}
    assert fails.at["fab9d5pw", "evidence"] == ("loss rose from 5.342 to 3443 (> 10x) from step 1; gradient norm "
                                                "up to 6.25e+13 before the collapse at step 6")
    assert (a.metric, a.higher_is_better) == ("final_val_loss", False)


def test_lm_per_layer_families_are_drawn(results):
    a = results["lm"]["analysis"]
    assert results["lm"]["design"]["metrics"]["families"] == LM_FAMILIES
    specs = {s.id: s for s in catalog.figure_specs(a)}
    fig = specs["fig-layer-stall"].draw()
    titles = [ax.get_title().split("\n")[-1] for ax in fig.axes if ax.images]
    assert titles == [f for f in LM_FAMILIES for _ in ("learning_rate=0.0006", "learning_rate=10")]
    panels = [ax for ax in fig.axes if ax.images]
    for family in range(len(LM_FAMILIES)):  # the two settings' panels of one family share one colour scale
        left, right = panels[2 * family].images[0].norm, panels[2 * family + 1].images[0].norm
        assert (left.vmin, left.vmax) == (right.vmin, right.vmax)
    for ax in panels:
        assert all(t.get_rotation() == 30 and t.get_fontsize() >= 7 for t in ax.get_xticklabels())
    diff = specs["fig-layer-stall-difference"].draw()
    assert len([ax for ax in diff.axes if ax.images]) == 2 * len(LM_FAMILIES)


@pytest.mark.slow
def test_classification_site_states_the_metric_and_has_no_bench(snapshots, tmp_path):
    result = run_mkdocs_build(snapshots["classification"].path, tmp_path / "site", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-4000:]

    def text(page: str) -> str:
        body = re.sub(r"<[^>]+>", " ", (tmp_path / "site" / page).read_text(encoding="utf-8"))
        return " ".join(html.unescape(body).split())

    methods, manifold = text("methods/index.html"), text("manifold-vs-adamw/index.html")
    assert "Primary metric: eval/f1_micro, final value (higher is better, from its name)" in methods
    assert "Train loss: train/loss" in methods
    assert "Per-layer metrics: " + ", ".join(CLS_FAMILIES) in methods
    assert "positive = ManifoldAdamW higher" in manifold
    assert re.search(r"\d+ runs, unpaired \(Welch t\), ManifoldAdamW's mean (higher|lower)", manifold)  # no seeds
    assert "Every comparison on this page is in final eval/f1_micro (higher is better)" in text(
        "format-comparison/index.html")
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "The bench (bundled data)" not in home and "bundled data in" not in home
