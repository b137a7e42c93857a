"""The experimental design read from the runs (analysis/design.py, analysis/filters.py)."""

from __future__ import annotations

import pandas as pd
import pytest

import design_data as D
from altgrad_docs.analysis.design import DesignError, DesignOptions, infer_design, setting_label
from altgrad_docs.analysis.filters import FilterError, matches

LO, HI = "learning_rate=0.001", "learning_rate=0.01"


def cells(design) -> list[tuple]:
    return [tuple(r) for r in design.cells[["format", "optimizer", "setting", "n", "seeds"]]
            .itertuples(index=False)]


def test_sweep_learning_rate_is_the_one_factor():
    d = infer_design(D.table(D.sweep_specs()))
    assert d.factors == {"learning_rate": [0.001, 0.01]}
    assert d.constants == {"batch_size": 32, "max_steps": 100}
    assert d.follows == {"manifold_mantissa_bits": "format"}
    assert d.identity == ["launch_time"]  # unique per run
    assert d.bookkeeping == ["checkpoint_dir", "eval_interval", "log_interval", "project", "run_name"]
    assert d.metric == "final_val_loss" and d.baseline == "BF16"
    assert d.settings == [LO, HI]
    assert cells(d) == [(f, o, s, 4, [1, 2, 3, 4]) for f in ("E4M3", "E5M2", "BF16")
                        for o in ("AdamW", "ManifoldAdamW") for s in (LO, HI)]
    assert d.balanced and d.missing.empty and d.duplicates.empty and d.lengths.empty and d.left_out.empty
    assert d.pairs[["format", "setting", "n_pairs"]].values.tolist() == [
        [f, s, 4] for f in ("E4M3", "E5M2", "BF16") for s in (LO, HI)]
    assert d.thin.empty


def test_study_table_gets_a_string_setting_column():
    runs = D.table(D.sweep_specs())
    study = infer_design(runs).study(runs)
    assert str(study["setting"].dtype) == "string"
    by_id = dict(zip(study["run_id"], study["setting"]))
    assert by_id["e4m3alos1"] == LO and by_id["e4m3mhis3"] == HI
    assert list(study.columns[:len(runs.columns)]) == list(runs.columns)


def test_no_factor_gives_empty_setting():
    runs = D.table(D.sweep_specs(seeds=(1, 2)))
    runs = runs[runs["learning_rate"] == 0.01]
    d = infer_design(runs)
    assert d.factors == {} and d.constants["learning_rate"] == 0.01
    assert set(d.study(runs)["setting"]) == {""} and d.settings == [""]


def test_intervention_flag_is_a_second_factor():
    specs = [D.spec("E4M3", m, lr, s, config={"enable_partition_clipping": clip},
                    run_id=f"e4m3{int(m)}{int(lr * 1000)}{int(clip)}s{s}")
             for m in (False, True) for lr in (0.001, 0.01) for clip in (False, True) for s in (1, 2)]
    d = infer_design(D.table(specs))
    assert d.factors == {"enable_partition_clipping": [False, True], "learning_rate": [0.001, 0.01]}
    assert d.settings == [f"enable_partition_clipping={c}, learning_rate={lr}"
                          for c in ("false", "true") for lr in ("0.001", "0.01")]
    assert d.cells["n"].tolist() == [2] * 8 and d.pairs["n_pairs"].tolist() == [2] * 4
    # an older run without the flag takes the contract's default (false): same condition
    specs[0]["config"] = {}
    assert infer_design(D.table(specs)).cells["n"].tolist() == [2] * 8


def test_a_key_set_by_another_factor_is_not_a_second_factor():
    """use_fp32_master is written from weight_storage (the bench does): one factor, not two;
    a flag crossed with it stays a factor of its own."""
    specs = [D.spec("E4M3", m, 0.01, s, config={"weight_storage": w, "use_fp32_master": w == "fp32_master",
                                                  "enable_emergency_shift": e},
                    run_id=f"e4m3{int(m)}{w[:2]}{int(e)}s{s}")
             for m in (False, True) for w in ("fp32_master", "quantized") for e in (False, True) for s in (1, 2)]
    d = infer_design(D.table(specs))
    assert d.factors == {"enable_emergency_shift": [False, True], "weight_storage": ["fp32_master", "quantized"]}
    assert d.follows["use_fp32_master"] == "factor weight_storage"
    assert d.settings == [f"enable_emergency_shift={e}, weight_storage={w}"
                          for e in ("false", "true") for w in ("fp32_master", "quantized")]


def test_explicit_factors_and_ignore():
    runs = D.table(D.sweep_specs(formats=("E4M3",), seeds=(1, 2)))
    d = infer_design(runs, DesignOptions(factors=("batch_size",)))
    assert d.factors == {"batch_size": [32]} and d.explicit
    assert "batch_size" not in d.constants and d.settings == ["batch_size=32"]
    assert d.cells["n"].tolist() == [4, 4]  # the learning rates are pooled because the user said so
    d = infer_design(runs, DesignOptions(ignore=("learning_rate",)))
    assert d.factors == {} and d.ignored == ["learning_rate"]


def test_unbalanced_and_missing_cells():
    specs = [s for s in D.sweep_specs(formats=("E4M3", "E5M2"), seeds=(1, 2))
             if not (s["format"] == "E5M2" and s["lr"] == 0.01 and s["manifold"] and s["seed"] == 2)
             and not (s["format"] == "E4M3" and s["lr"] == 0.01 and s["manifold"])]
    d = infer_design(D.table(specs))
    assert not d.balanced
    assert d.missing[["format", "optimizer", "setting"]].values.tolist() == [["E4M3", "ManifoldAdamW", HI]]
    assert d.thin[["format", "setting", "n_pairs", "seeds"]].values.tolist() == [
        ["E4M3", HI, 0, []], ["E5M2", HI, 1, [1]]]
    assert d.cells.set_index(["format", "optimizer", "setting"]).at[("E5M2", "ManifoldAdamW", HI), "n"] == 1


def test_duplicate_seed_is_counted_and_kept_out_of_the_pairs():
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2, 3))
    specs.append(D.spec("E4M3", False, 0.001, 1, run_id="e4m3alos1bis"))
    d = infer_design(D.table(specs))
    assert d.duplicates[["format", "optimizer", "setting", "seed", "n", "run_ids"]].values.tolist() == [
        ["E4M3", "AdamW", LO, 1, 2, ["e4m3alos1", "e4m3alos1bis"]]]
    pairs = d.pairs.set_index("setting")
    assert pairs.at[LO, "seeds"] == [2, 3] and pairs.at[LO, "duplicated_seeds"] == [1]
    assert pairs.at[HI, "seeds"] == [1, 2, 3]
    assert d.cells.set_index(["optimizer", "setting"]).at[("AdamW", LO), "n_duplicates"] == 1


def test_runs_of_different_lengths_are_flagged():
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2))
    specs[0].update(steps=80, config={"max_steps": 80})  # e4m3alos1 planned shorter and finished
    specs.append(D.spec("E4M3", True, 0.01, 3, state="failed", steps=40))  # failures stop early: not flagged
    specs.append(D.spec("E4M3", True, 0.01, 4, steps=60))  # stopped at 60 of 100: failed (issue 22), not flagged
    table = D.table(specs)
    assert table.set_index("run_id").at["e4m3mhis4", "status_reason"] == "stopped at step 59 of max_steps 100"
    d = infer_design(table, DesignOptions(ignore=("max_steps",)))  # one study, planned at two lengths
    assert d.lengths[["format", "setting", "steps", "max_steps", "budget"]].values.tolist() == [
        ["E4M3", LO, [80, 100], [80, 100], 80]]
    assert d.budgets() == {s["run_id"]: 80 for s in specs if s["lr"] == 0.001}


def test_formats_of_different_lengths_are_flagged_across_formats():
    specs = D.sweep_specs(formats=("E4M3", "E5M2"), seeds=(1, 2))
    for s in specs:
        if s["format"] == "E5M2":  # max_steps follows the format: never a factor, still flagged
            s["steps"], s["config"] = 50, {"max_steps": 50}
    d = infer_design(D.table(specs))
    assert d.follows == {"manifold_mantissa_bits": "format", "max_steps": "format"}
    assert d.lengths[["scope", "format", "setting", "steps", "max_steps", "budget"]].values.tolist() == [
        ["setting", "", s, [50, 100], [50, 100], None] for s in (LO, HI)]
    assert d.budgets() == {}


def test_left_out_runs_and_filters():
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2))
    specs += [D.spec("E4M3", False, 0.01, 3, state="killed"), D.spec("E4M3", True, 0.01, 3, state="running"),
              D.spec("E4M3", True, 0.001, 3, tags=["pilot"])]
    runs = D.table(specs)
    d = infer_design(runs, DesignOptions(filters={"tags": {"$nin": ["pilot"]}}))
    assert d.left_out[["run_id", "state", "reason"]].values.tolist() == [
        ["e4m3ahis3", "killed", "killed"], ["e4m3mhis3", "running", "running"],
        ["e4m3mlos3", "finished", "filtered out"]]
    study = d.study(runs)
    assert "e4m3mlos3" not in set(study["run_id"]) and "e4m3ahis3" in set(study["run_id"])
    assert d.cells["n"].tolist() == [2, 2, 2, 2]
    with pytest.raises(DesignError, match="filters"):
        infer_design(runs, DesignOptions(filters={"tags": {"$nope": 1}}))


def test_metric_is_val_loss_unless_a_finished_run_lacks_it():
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2))
    early = D.spec("E4M3", True, 0.01, 3, state="failed", steps=10)  # failed before its first eval
    assert infer_design(D.table(specs + [early])).metric == "final_val_loss"
    late = D.spec("E4M3", False, 0.01, 3, steps=20, config={"max_steps": 20})  # finished, never evaluated
    assert infer_design(D.table(specs + [late])).metric == "final_loss"
    assert infer_design(D.table(specs), DesignOptions(metric="final_loss")).metric == "final_loss"


def test_baseline_defaults_to_bf16_then_fp16():
    assert infer_design(D.table(D.sweep_specs(formats=("E4M3",), seeds=(1,)))).baseline == "BF16"
    runs = D.table(D.sweep_specs(formats=("E4M3",), seeds=(1,)))
    runs.loc[0, "format"] = "FP16"
    assert infer_design(runs).baseline == "FP16"
    assert infer_design(runs, DesignOptions(baseline="E4M3")).baseline == "E4M3"


def test_identical_conditions_from_history_hashes():
    specs = D.sweep_specs(formats=("E4M3", "E5M2", "BF16"), seeds=(1, 2))
    runs = D.table(specs)
    hashes = {s["run_id"]: f"{s['manifold']}-{s['lr']}-{s['seed']}-{'x' if s['format'] == 'BF16' else 'y'}"
              for s in specs}
    d = infer_design(runs, history_hashes=hashes)
    assert d.identical == [[("E4M3", o, s), ("E5M2", o, s)] for o in ("AdamW", "ManifoldAdamW") for s in (LO, HI)]
    assert d.identical_formats() == [["E4M3", "E5M2"]]
    assert d.distinct_formats(["E4M3", "E5M2", "BF16"]) == ["E4M3", "BF16"]
    hashes["e5m2ahis1"] = "other"
    d = infer_design(runs, history_hashes=hashes)
    assert d.identical_formats() == []  # identical at three settings of four: not the same format


def test_setting_label():
    assert setting_label({}) == ""
    assert setting_label({"learning_rate": 0.0003, "enable_emergency_shift": True, "model": "gpt"}) == \
        "learning_rate=0.0003, enable_emergency_shift=true, model=gpt"


def test_options_from_mkdocs_config_and_env_strings():
    o = DesignOptions.from_config({"factors": "learning_rate, n_layer", "ignore": '["dropout"]',
                                   "filters": '{"config.learning_rate": {"$lt": 0.01}}', "baseline": "FP16",
                                   "metric": "loss", "snapshot": "data/bundled"})
    assert o == DesignOptions(factors=("learning_rate", "n_layer"), ignore=("dropout",),
                              filters={"config.learning_rate": {"$lt": 0.01}}, baseline="FP16", metric="final_loss")
    assert DesignOptions.from_config({"factors": None, "filters": ""}) == DesignOptions()
    # any logged key may be the primary metric (issue 22); a bad metric map is refused
    assert DesignOptions.from_config({"metric": "eval/accuracy"}).metric == "final_eval/accuracy"
    with pytest.raises(DesignError, match="direction"):
        DesignOptions.from_config({"metrics": {"direction": "up"}})
    with pytest.raises(DesignError, match="JSON"):
        DesignOptions.from_config({"filters": "{nope"})


RUN = {"config": {"learning_rate": 0.001, "fp8_format": "E5M2", "use_fp8": True, "n": None},
       "state": "finished", "tags": ["sweep", "v2"], "display_name": "E5M2 lr sweep"}


@pytest.mark.parametrize("flt, expected", [
    ({"state": "finished"}, True),
    ({"state": {"$eq": "crashed"}}, False),
    ({"state": {"$ne": "crashed"}}, True),
    ({"state": {"$in": ["finished", "crashed"]}}, True),
    ({"state": {"$nin": ["finished"]}}, False),
    ({"config.learning_rate": {"$gt": 0.0001, "$lte": 0.001}}, True),
    ({"config.learning_rate": {"$gte": 0.01}}, False),
    ({"config.learning_rate": {"$lt": 0.01}}, True),
    ({"config.learning_rate": 0.001}, True),
    ({"config.use_fp8": 1}, False),  # a bool is not the number 1
    ({"tags": "sweep"}, True),
    ({"tags": {"$in": ["pilot"]}}, False),
    ({"tags": {"$nin": ["pilot"]}}, True),
    ({"config.dropout": {"$exists": False}}, True),
    ({"config.n": {"$exists": True}}, False),
    ({"config.fp8_format": {"$exists": True}}, True),
    ({"display_name": {"$gt": "E4"}}, True),
    ({"$or": [{"state": "crashed"}, {"config.fp8_format": "E5M2"}]}, True),
    ({"$and": [{"state": "finished"}, {"config.fp8_format": "E4M3"}]}, False),
    ({"config.missing": {"$ne": 1}}, True),
    ({"config.missing": {"$gt": 1}}, False),
])
def test_filter_operators(flt, expected):
    assert matches(flt, RUN) is expected


def test_filter_errors_name_the_operator():
    with pytest.raises(FilterError, match=r"\$regex"):
        matches({"state": {"$regex": "fin"}}, RUN)
    with pytest.raises(FilterError, match="list"):
        matches({"state": {"$in": "finished"}}, RUN)
