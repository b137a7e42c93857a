"""Every stage takes the design: a learning-rate sweep with opposite effects per level is never
pooled (tests/design_data.py describes the study)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import design_data as D
from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.comparisons import FormatComparator
from altgrad_docs.analysis.design import DesignOptions, infer_design
from altgrad_docs.analysis.pipeline import analyse
from altgrad_docs.report import context
from altgrad_docs.report.generator import ReportGenerator

LO, HI = "learning_rate=0.001", "learning_rate=0.01"
# t interval of the mean of (0.10, 0.12, 0.08, 0.10) and (-0.20, -0.22, -0.18, -0.20), 3 df
CI_LO, CI_HI = (0.07401543, 0.12598457), (-0.22598457, -0.17401543)


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return D.table(D.sweep_specs())


def test_paired_comparison_is_per_format_and_setting(sweep):
    mc = sc.manifold_comparison(sweep)
    assert list(mc.columns[:4]) == ["format", "learning_rate", "setting", "metric"]
    assert mc[["format", "setting", "design", "n_pairs", "seeds"]].values.tolist() == [
        [f, s, "paired", 4, [1, 2, 3, 4]] for f in ("E4M3", "E5M2", "BF16") for s in (LO, HI)]
    assert set(mc["metric"]) == {"final_val_loss"}
    for _, r in mc.iterrows():
        lo, hi = CI_LO if r["setting"] == LO else CI_HI
        assert r["mean_delta"] == pytest.approx(0.10 if r["setting"] == LO else -0.20)
        assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
        assert r["deltas"] == pytest.approx([0.10, 0.12, 0.08, 0.10] if r["setting"] == LO
                                            else [-0.20, -0.22, -0.18, -0.20])
    # the pooled delta (about -0.05, each seed's two runs medianed) appears nowhere
    assert not np.isclose(mc["mean_delta"], -0.05, atol=0.02).any()
    assert mc["p_holm"].isna().all()  # 4 pairs: too few for an exact Wilcoxon test to reach p < 0.05
    assert set(mc["status"]) == {"too few seeds to test"}


def test_scorecard_per_condition_with_factor_columns(sweep):
    card = sc.scorecard(sweep)
    assert list(card.columns[:5]) == ["format", "optimizer", "learning_rate", "setting", "metric"]
    assert card[["format", "optimizer", "setting", "n"]].values.tolist() == [
        [f, o, s, 4] for f in ("E4M3", "E5M2", "BF16") for o in ("AdamW", "ManifoldAdamW") for s in (LO, HI)]
    row = card.set_index(["format", "optimizer", "setting"])
    assert row.at[("E4M3", "AdamW", LO), "median"] == pytest.approx(2.305)
    assert row.at[("E4M3", "AdamW", LO), "delta_vs_baseline"] == pytest.approx(2.305 - 2.205)
    assert row.at[("E4M3", "ManifoldAdamW", HI), "median"] == pytest.approx(1.805)
    assert row.at[("E4M3", "ManifoldAdamW", HI), "paired_delta"] == pytest.approx(-0.20)
    assert row.at[("E4M3", "ManifoldAdamW", LO), "paired_delta"] == pytest.approx(0.10)


def test_sweet_spot_is_a_condition_ranked_by_the_metric(sweep):
    fc = FormatComparator(sweep)
    spot = fc.sweet_spot_condition("final_val_loss")
    assert (spot["format"], spot["optimizer"], spot["setting"], spot["n"]) == ("E4M3", "ManifoldAdamW", HI, 4)
    assert spot["median"] == pytest.approx(1.805)
    # the train loss ranks the formats the other way round
    assert fc.identify_sweet_spot() == "E5M2"
    assert fc.identify_sweet_spot(metric="final_val_loss") == "E4M3"
    ranked = fc.rank_by_metric("final_val_loss")
    assert ranked[["format", "setting", "n"]].values.tolist()[:2] == [["BF16", HI, 8], ["E4M3", HI, 8]]
    with pytest.raises(ValueError, match="setting"):
        fc.compute_improvement("BF16", "E4M3")
    # medians over both optimizers (the plan's ranking): BF16 1.80, E4M3 1.90 at lr 0.01
    assert fc.compute_improvement("BF16", "E4M3", "final_val_loss", setting=HI) == pytest.approx(
        100 * (1.80 - 1.90) / 1.80)


def test_paired_values_refuses_to_pool_settings(sweep):
    cond = sc.condition_frame(sweep, "final_val_loss")
    with pytest.raises(ValueError, match="setting"):
        sc.paired_values(cond, "E4M3")
    man, std, seeds = sc.paired_values(cond, "E4M3", HI)
    assert seeds == [1, 2, 3, 4] and (man - std) == pytest.approx([-0.20, -0.22, -0.18, -0.20])


def test_duplicate_seed_is_not_medianed_into_the_pair():
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2, 3))
    specs.append(D.spec("E4M3", False, 0.001, 1, run_id="e4m3alos1bis", val=9.0, train=9.0))
    mc = sc.manifold_comparison(D.table(specs)).set_index("setting")
    assert mc.at[LO, "seeds"] == [2, 3] and mc.at[LO, "duplicated_seeds"] == [1]
    assert mc.at[LO, "deltas"] == pytest.approx([0.12, 0.08])
    assert mc.at[LO, "n_adamw"] == 4  # the duplicate still counts as a run of its arm
    assert mc.at[HI, "seeds"] == [1, 2, 3] and mc.at[HI, "duplicated_seeds"] == []


def test_explicit_factor_list_overrides_inference(sweep):
    card = sc.scorecard(sweep, factors=[])
    assert "learning_rate" not in card.columns[:3] and set(card["setting"]) == {""}
    assert card["n"].tolist() == [8] * 6  # pooled only because the caller said so


def test_plan_frames_without_config_have_no_factors():
    narrow = D.table(D.sweep_specs(formats=("E4M3",), seeds=(1, 2))).drop(columns=["config_json"])
    mc = sc.manifold_comparison(narrow)
    # without configs the two learning rates look like the same seed run twice: duplicates,
    # so no pairs, and Welch's interval over the 4 vs 4 runs
    assert mc[["format", "setting", "design", "n_pairs", "duplicated_seeds", "n_adamw"]].values.tolist() == [
        ["E4M3", "", "unpaired", 0, [1, 2], 4]]


def test_analyse_adds_setting_and_finds_identical_conditions():
    specs = D.sweep_specs(formats=("E4M3", "E5M2"), seeds=(1, 2))
    recs = D.records(specs)
    hist = {r.run_id: r.history for r in recs}
    for r in recs:  # E5M2 logs exactly what E4M3 logged, seed by seed
        if r.config["fp8_format"] == "E5M2":
            hist[r.run_id] = hist[r.run_id.replace("e5m2", "e4m3")]
    a = analyse(D.table(specs), list(hist.items()))
    assert str(a.runs["setting"].dtype) == "string" and set(a.runs["setting"]) == {LO, HI}
    assert a.metric == "final_val_loss"
    assert a.design.identical_formats() == [["E4M3", "E5M2"]]
    assert a.sweet_condition["format"] == "E4M3" and a.sweet_condition["setting"] == HI
    assert a.paired[["format", "setting"]].values.tolist() == [["E4M3", LO], ["E4M3", HI], ["E5M2", LO],
                                                               ["E5M2", HI]]


def test_reports_show_both_deltas_with_their_own_intervals(sweep, tmp_path):
    text = ReportGenerator(tmp_path, generated_at="2026-01-01").render_manifold_comparison(sweep)
    assert "### learning&#95;rate=0.001" in text and "### learning&#95;rate=0.01" in text
    every = text[text.index("## Every comparison"):text.index("## Compared where")].splitlines()
    hurts = [line for line in every if "AdamW lower on 4/4" in line and "ManifoldAdamW lower" not in line]
    helps = [line for line in every if "ManifoldAdamW lower on 4/4" in line]
    assert len(hurts) == 3 and all("0.001" in line and "= 0.100 [0.074, 0.126]" in line for line in hurts)
    assert len(helps) == 3 and all("0.01" in line and "= \u22120.200 [\u22120.226, \u22120.174]" in line for line in helps)
    assert "- Of the 4 comparisons in the family" in text  # the two BF16 comparisons are references
    fc = context.format_comparison(sweep, "E4M3", lambda r: str(r["run_id"]), metric="final_val_loss")
    assert [s["setting"] for s in fc["settings"]] == [LO, HI]
    assert fc["sweet_spot"]["optimizer"] == "ManifoldAdamW" and fc["sweet_spot"]["setting"] == HI
    assert fc["baseline"]["format"] == "BF16" and fc["baseline"]["setting"] == HI
    assert fc["baseline"]["optimizer"] == "ManifoldAdamW"


def test_design_context_for_the_home_page():
    specs = D.sweep_specs(formats=("E4M3", "BF16"), seeds=(1, 2))
    specs = [s for s in specs if not (s["format"] == "BF16" and s["manifold"] and s["lr"] == 0.01)]
    specs += [D.spec("E4M3", False, 0.01, 3, state="killed"), D.spec("E4M3", False, 0.01, 1, run_id="dup1")]
    ctx = context.design_context(infer_design(D.table(specs)))
    assert ctx["factors"] == [{"name": "learning_rate", "levels": ["0.001", "0.01"]}]
    assert ctx["constants"] == [{"name": "batch_size", "value": "32"}, {"name": "max_steps", "value": "100"}]
    assert ctx["follows"] == [{"name": "manifold_mantissa_bits", "what": "format"}]
    assert not ctx["balanced"] and ctx["missing"] == ["BF16 · ManifoldAdamW · learning_rate=0.01"]
    # the duplicated seed 1 leaves E4M3 at lr 0.01 with one pair (seed 2)
    assert ctx["thin"] == [{"label": "E4M3 · learning_rate=0.01", "n_pairs": 1},
                           {"label": "BF16 · learning_rate=0.01", "n_pairs": 0}]
    assert ctx["duplicates"] == [{"label": "E4M3 · AdamW · learning_rate=0.01", "seed": 1, "n": 2}]
    assert ctx["left_out"] == [("killed", 1)] and ctx["n_left_out"] == 1
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in ctx["cells_table"].splitlines()
            if not line.startswith("|:")]
    lo, hi = "learning&#95;rate=0.001", "learning&#95;rate=0.01"
    assert rows == [["format", "setting", "AdamW", "ManifoldAdamW"],
                    ["E4M3", lo, "2", "2"], ["E4M3", hi, "3 (1 duplicate seed)", "2"],
                    ["BF16", lo, "2", "2"], ["BF16", hi, "2", "0 (missing)"]]


def test_runs_of_different_lengths_are_compared_at_the_same_step_budget():
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2))
    specs = [s for s in specs if s["lr"] == 0.01]
    # e4m3ahis1: AdamW seed 1 planned for 80 steps (one stopped at 80 of 100 has failed: issue 22)
    specs[0].update(steps=80, config={"max_steps": 80})
    recs = D.records(specs)
    a = analyse(D.table(specs), [(r.run_id, r.history) for r in recs],
                options=DesignOptions(metric="loss", ignore=("max_steps",)))
    at = {r.run_id: float(r.history.loc[79, "loss"]) for r in recs}
    assert a.runs.set_index("run_id")["metric_step_budget"].tolist() == [80] * 4
    assert a.runs.set_index("run_id").loc[list(at), "final_loss"].tolist() == pytest.approx(list(at.values()))
    man = [at["e4m3mhis1"], at["e4m3mhis2"]]
    std = [at["e4m3ahis1"], at["e4m3ahis2"]]
    assert a.paired.loc[0, "deltas"] == pytest.approx([m - s for m, s in zip(man, std)])
    # at step 79 the 100-step runs are 3 (e^-7.9 - e^-9.9) above their last value
    assert at["e4m3mhis1"] - recs[2].history["loss"].iloc[-1] == pytest.approx(3 * (np.exp(-7.9) - np.exp(-9.9)))


def test_identical_formats_are_counted_once(sweep):
    f = context.manifold_comparison(sweep, identical=[["E4M3", "E5M2"]])["f"]
    assert f.family.size == 2 and all(c.same_as == ("E5M2",) for c in f.members())
    assert context.manifold_comparison(sweep)["f"].family.size == 4


def test_report_generator_takes_a_factor_list(sweep, tmp_path):
    inferred = ReportGenerator(tmp_path, generated_at="x").render_manifold_comparison(sweep)
    pooled = ReportGenerator(tmp_path, generated_at="x", factors=[]).render_manifold_comparison(sweep)
    assert "### learning&#95;rate=0.01" in inferred and "Seeds run more than once" not in inferred
    # told there is no factor, each seed ran twice per optimizer: duplicates, shown, never medianed
    assert "### learning" not in pooled
    assert "Seeds run more than once by one optimizer in one condition are duplicates" in pooled
    assert "E4M3: seeds 1, 2, 3, 4" in pooled
    assert "| 16 runs, unpaired (Welch) |" in pooled


def test_card_figures_have_one_panel_per_setting(sweep):
    from altgrad_docs.report import catalog

    a = analyse(sweep)
    specs = {s.id: s for s in catalog.figure_specs(a)}
    import matplotlib.pyplot as plt

    for fid in ("fig-forest", "fig-loss-vs-mantissa"):
        fig = specs[fid].draw()
        titled = [ax for ax in fig.axes if ax.get_title()]
        titles = " ".join(ax.get_title() for ax in titled)
        assert "learning_rate=0.001" in titles and "learning_rate=0.01" in titles, titles
        assert sum(len(ax.lines) + len(ax.collections) > 0 for ax in titled) == 2  # each panel drawn
        plt.close(fig)


def test_format_comparison_compares_with_the_design_baseline(sweep):
    ctx = context.format_comparison(sweep, "E5M2", lambda r: str(r["run_id"]), metric="final_val_loss",
                                    baseline="E4M3")
    assert (ctx["baseline"]["format"], ctx["baseline"]["optimizer"], ctx["baseline"]["setting"]) == \
        ("E4M3", "ManifoldAdamW", HI)
    # medians of a few seeds support no "-5.5 %": the page states both medians instead
    assert ctx["baseline"]["median"] == pytest.approx(1.805) and ctx["sweet_spot"]["median"] == pytest.approx(1.905)
    assert "Δ vs E4M3 (median)" in ctx["scorecard_table"]
