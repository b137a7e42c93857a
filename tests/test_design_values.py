"""One value, one level; baselines and formats by meaning; runs without seeds; options held
against the data (issues #20, #22). Hand-built run tables in, exact design out."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.comparisons import FormatComparator
from altgrad_docs.analysis.design import DesignError, DesignOptions, infer_design
from altgrad_docs.runs import RunRecord, normalize_format, run_row, runs_frame


def table(specs: list[dict]) -> pd.DataFrame:
    """Runs from (run_id, config, loss): finished, 10 steps, the final loss in the summary."""
    rows = []
    for s in specs:
        history = pd.DataFrame({"_step": range(10), "loss": np.linspace(3.0, s["loss"], 10)})
        rows.append(run_row(RunRecord(meta={"run_id": s["run_id"], "state": s.get("state", "finished")},
                                      config=s["config"], summary={"loss": s["loss"], "_step": 9},
                                      history=history)))
    return runs_frame(rows)


def grid(formats=("E4M3", "BF16"), seeds=(1, 2), **extra) -> list[dict]:
    """format x optimizer x seed, loss = 2 + format offset + seed/100 (+0.1 for ManifoldAdamW)."""
    out = []
    for i, fmt in enumerate(formats):
        for manifold in (False, True):
            for seed in seeds:
                cfg = {"fp8_format": fmt, "use_manifold_aware": manifold, "learning_rate": 0.001, **extra}
                if seed is not None:
                    cfg["seed"] = seed
                rid = f"{fmt.lower()}-{'m' if manifold else 'a'}-{seed}"
                out.append({"run_id": rid, "config": cfg, "loss": 2 + 0.5 * i + (seed or 0) / 100 + 0.1 * manifold})
    return out


# ---------------------------------------------------------------------------------------------
# One value, one level


def test_a_number_and_its_string_spelling_are_one_level():
    specs = grid(seeds=(1, 2))
    for s in specs:
        if s["config"]["seed"] == 2:
            s["config"]["learning_rate"] = "1e-3"
    design = infer_design(table(specs))
    assert design.factors == {}
    assert design.constants["learning_rate"] == 0.001
    assert design.spellings == {"learning_rate": {"0.001": ['"1e-3"', "0.001"]}}
    assert sorted(design.cells["setting"]) == ["", "", "", ""] and len(design.cells) == 4
    assert design.warnings == []


def test_equal_numbers_are_one_level_of_a_real_factor():
    specs = []
    for lr in (0.001, 0.01):
        for s in grid(formats=("E4M3",), seeds=(1, 2)):
            seed = s["config"]["seed"]
            s["config"]["learning_rate"] = "0.0010" if (lr, seed) == (0.001, 2) else lr
            s["run_id"] += f"-{lr}"
            specs.append(s)
    design = infer_design(table(specs))
    assert design.factors == {"learning_rate": [0.001, 0.01]}
    assert design.settings == ["learning_rate=0.001", "learning_rate=0.01"]
    assert design.cells["n"].tolist() == [2, 2, 2, 2]
    assert design.spellings == {"learning_rate": {"0.001": ['"0.0010"', "0.001"]}}
    mc = sc.manifold_comparison(design.study(table(specs)), "final_loss", design.factor_names)
    assert mc["setting"].tolist() == ["learning_rate=0.001", "learning_rate=0.01"]  # not three
    assert mc["n_pairs"].tolist() == [2, 2]


def test_the_design_note_names_the_spellings():
    from altgrad_docs.report.context import design_context

    specs = grid()
    specs[0]["config"]["learning_rate"] = "1e-3"
    ctx = design_context(infer_design(table(specs)))
    assert ctx["spellings"] == [{"name": "learning_rate", "level": "0.001", "spellings": ['"1e-3"', "0.001"]}]


# ---------------------------------------------------------------------------------------------
# Baselines and formats by meaning


@pytest.mark.parametrize("config,label", [
    ({"fp8_format": "none"}, "BF16"),  # the trainer's classification runs: BF16 autocast
    ({"fp8_format": "NONE", "use_manifold_aware": True}, "BF16"),
    ({"fp8_format": "none", "dtype": "float32"}, "FP32"),
    ({"fp8_format": "none", "precision": "fp16"}, "FP16"),
    ({"fp8_format": "Bf16"}, "BF16"), ({"fp8_format": "fp32"}, "FP32"), ({"fp8_format": "FP16"}, "FP16"),
    ({"use_fp8": False}, "BF16"), ({"use_fp8": "false", "fp8_format": "E5M2"}, "BF16"),
    ({"use_fp8": True, "fp8_format": "none"}, "BF16"),
    ({"fp8_format": "fp8_e4m3fn"}, "E4M3"), ({"fp8_format": "float8_e5m2"}, "E5M2"),
    ({"fp8_format": "FP8_E5M2", "use_fp8": True}, "E5M2"),
    ({"fp8_format": "float8_e4m3fnuz", "use_fp8": True}, "E4M3FNUZ"),
    ({"fp8_format": "fp4_e2m1"}, "FP4_E2M1"), ({"fp8_format": "nvfp4"}, "NVFP4"), ({"fp8_format": "e8m0"}, "E8M0"),
    ({"use_fp8": True}, "unknown"),
])
def test_format_labels_by_meaning(config, label):
    assert normalize_format(config) == label


def test_use_fp8_column_follows_the_format_when_the_config_has_no_flag():
    df = table([{"run_id": "a", "config": {"fp8_format": "none"}, "loss": 1.0},
                {"run_id": "b", "config": {"fp8_format": "E5M2"}, "loss": 1.0},
                {"run_id": "c", "config": {"fp8_format": "E5M2", "use_fp8": False}, "loss": 1.0}])
    assert df.set_index("run_id")["use_fp8"].to_dict() == {"a": False, "b": True, "c": False}
    assert df.set_index("run_id")["format"].to_dict() == {"a": "BF16", "b": "E5M2", "c": "BF16"}


def test_none_is_the_baseline_of_the_design():
    specs = grid(formats=("E5M2", "none"))
    design = infer_design(table(specs))
    assert design.baseline == "BF16"
    assert sorted(set(design.cells["format"])) == ["BF16", "E5M2"]


def test_formats_outside_the_registry_are_named_and_never_ranked():
    specs = grid(formats=("E5M2", "BF16"))
    specs += [{"run_id": f"odd-{i}", "config": {"fp8_format": fmt, "use_fp8": True, "seed": 1}, "loss": 0.1}
              for i, fmt in enumerate(("NVFP4", "float8_e4m3fnuz", "E8M0", "FP4_E2M1", "E9M9"))]
    runs = table(specs)
    design = infer_design(runs)
    assert sorted(set(design.cells["format"])) == ["BF16", "E5M2"]
    left = design.left_out.set_index("run_id")["reason"].to_dict()
    assert left == {"odd-0": "format NVFP4 outside the registry", "odd-1": "format E4M3FNUZ outside the registry",
                    "odd-2": "format E8M0 outside the registry", "odd-3": "format FP4_E2M1 outside the registry",
                    "odd-4": "format E9M9 outside the registry"}
    assert len(design.warnings) == 5
    fnuz = next(w for w in design.warnings if "'E4M3FNUZ'" in w)
    assert fnuz.startswith("1 run (odd-1) name format 'E4M3FNUZ': E4M3 with the fnuz convention (bias 8, max 240")
    assert "--> Do:" in fnuz
    assert "'E9M9': unknown;" in next(w for w in design.warnings if "E9M9" in w)
    study = design.study(runs)
    assert "odd-0" not in set(study["run_id"])  # loss 0.1, the lowest: would be "best"
    assert FormatComparator(study, design.factor_names).identify_sweet_spot() == "E5M2"


# ---------------------------------------------------------------------------------------------
# No seed in the config


def test_replicates_without_seeds_are_not_duplicates_and_the_comparison_is_unpaired():
    specs = grid(formats=("E5M2",), seeds=(None, None, None))
    for i, s in enumerate(specs):
        s["run_id"] += str(i)
        s["loss"] += 0.01 * i * i  # spread within each arm
    runs = table(specs)
    assert runs["seed"].isna().all()
    design = infer_design(runs)
    assert design.seeded is False and design.paired is False
    assert design.duplicates.empty and design.thin.empty
    assert design.cells["n"].tolist() == [3, 3] and design.cells["n_duplicates"].tolist() == [0, 0]
    study = design.study(runs)
    mc = sc.manifold_comparison(study, "final_loss", design.factor_names, paired=design.paired)
    row = mc.iloc[0]
    man = runs.loc[runs["optimizer"] == "ManifoldAdamW", "final_loss"].to_numpy()
    std = runs.loc[runs["optimizer"] == "AdamW", "final_loss"].to_numpy()
    ci = scipy_stats.ttest_ind(man, std, equal_var=False).confidence_interval(0.95)
    assert row["design"] == "unpaired" and row["n_pairs"] == 0 and row["seeds"] == []
    assert row["n_manifold"] == 3 and row["n_adamw"] == 3 and row["duplicated_seeds"] == []
    assert row["mean_delta"] == pytest.approx(man.mean() - std.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    # the same choice when nobody passes the design's flag: read from the runs
    assert sc.manifold_comparison(study, "final_loss")["design"].tolist() == ["unpaired"]


def test_seeded_runs_stay_paired():
    design = infer_design(table(grid(formats=("E5M2",), seeds=(1, 2, 3))))
    assert design.seeded is True
    mc = sc.manifold_comparison(design.study(table(grid(formats=("E5M2",), seeds=(1, 2, 3)))), "final_loss",
                                paired=design.paired)
    assert mc["design"].tolist() == ["paired"] and mc["n_pairs"].tolist() == [3]
    assert mc["mean_delta"].tolist() == pytest.approx([0.1])


# ---------------------------------------------------------------------------------------------
# Options checked against the data


def test_options_naming_nothing_are_warnings():
    runs = table(grid())
    design = infer_design(runs, DesignOptions(factors=("learning_rate", "lr_typo"), ignore=("nope",),
                                              baseline="FP16"))
    assert design.factor_names == ["learning_rate"]
    assert design.baseline == "BF16"
    assert design.warnings == [
        "altgrad option baseline (ALTGRAD_BASELINE) is 'FP16', but no completed run has that format "
        "(formats: BF16, E4M3); the baseline used is BF16 --> Do: set baseline to one of those formats, "
        "or remove it.",
        "altgrad option factors (ALTGRAD_FACTORS) names 'lr_typo', a config key no run has (the runs' keys: "
        "fp8_format, learning_rate, seed, use_manifold_aware) --> Do: correct the key or remove it.",
        "altgrad option ignore (ALTGRAD_IGNORE) names 'nope', a config key no run has (the runs' keys: "
        "fp8_format, learning_rate, seed, use_manifold_aware) --> Do: correct the key or remove it.",
    ]


def test_a_baseline_in_another_spelling_is_found():
    design = infer_design(table(grid(formats=("E4M3", "none"))), DesignOptions(baseline="bfloat16"))
    assert design.baseline == "BF16" and design.warnings == []


@pytest.mark.parametrize("opts,fragment", [
    ({"ignore": '{"tags": true}'}, 'altgrad option ignore (ALTGRAD_IGNORE) is {"tags": true}, not a list'),
    ({"factors": '"learning_rate"'}, 'altgrad option factors (ALTGRAD_FACTORS) is "learning_rate", not a list'),
    ({"factors": [1, 2]}, "altgrad option factors (ALTGRAD_FACTORS) is [1, 2], not a list"),
    ({"baseline": ["BF16"]}, "altgrad option baseline is ['BF16']; it must be one format name"),
])
def test_wrongly_shaped_options_are_refused(opts, fragment):
    with pytest.raises(DesignError) as err:
        DesignOptions.from_config(opts)
    assert fragment in str(err.value) and "--> Do:" in str(err.value)


def test_comma_separated_and_json_lists_still_read():
    assert DesignOptions.from_config({"ignore": "a, b"}).ignore == ("a", "b")
    assert DesignOptions.from_config({"factors": json.dumps(["lr"])}).factors == ("lr",)


# ---------------------------------------------------------------------------------------------
# Through the site: the warnings reach mkdocs.plugins.altgrad, so --strict fails


@pytest.mark.slow
def test_strict_build_fails_on_an_unknown_format_and_an_option_naming_nothing(tmp_path):
    import subprocess
    import sys

    from altgrad_docs.snapshot import write_snapshot
    from tests.site_fixtures import FETCHED_AT, REPO, fixture_records, mkdocs_env

    records = fixture_records()
    records[0].config["fp8_format"] = "NVFP4"  # a1e4m3s1
    records[1].config["learning_rate"] = "3e-4"  # a2e4m3s2: one level with 0.0003
    snap = write_snapshot(records, tmp_path / "snap", source={"kind": "fixture"}, fetched_at=FETCHED_AT)
    env = {**mkdocs_env(snap, tmp_path / "cache"), "ALTGRAD_IGNORE": "lr_typo"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, result.stderr[-3000:]
    assert "1 run (a1e4m3s1) name format 'NVFP4': a block-scaled 4-bit format" in warnings[0]
    assert "altgrad option ignore (ALTGRAD_IGNORE) names 'lr_typo', a config key no run has" in warnings[1]
    assert "Aborted with 2 warnings in strict mode" in result.stdout
    # the pages (written before strict mode aborts) say what was merged and left out
    page = (tmp_path / "site" / "methods" / "index.html").read_text(encoding="utf-8")
    methods = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert ("One value, several spellings (equal as numbers, so one level): learning_rate = 0.0003 written as "
            '"3e-4" and 0.0003.') in methods
    assert "Runs left out (1): 1 format NVFP4 outside the registry." in methods


def test_the_loader_finds_formats_by_any_name(tmp_path):
    from altgrad_docs import ExperimentDataLoader
    from altgrad_docs.snapshot import write_snapshot

    records = [RunRecord(meta={"run_id": rid, "state": "finished"}, config=cfg, summary={"loss": 1.0, "_step": 0})
               for rid, cfg in (("a", {"fp8_format": "fp8_e4m3fn", "seed": 1}), ("b", {"fp8_format": "none", "seed": 1}),
                                ("c", {"fp8_format": "E5M2", "seed": 1}))]
    loader = ExperimentDataLoader(snapshot=write_snapshot(records, tmp_path / "snap", source={"kind": "fixture"},
                                                          fetched_at="2026-01-01T00:00:00+00:00"))
    assert loader.get_format_comparison_runs(["float8_e4m3fn", "bf16"])["run_id"].tolist() == ["a", "b"]
    assert loader.get_manifold_comparison_runs("FP8_E5M2")["run_id"].tolist() == ["c"]


def test_filters_that_keep_no_run_are_a_warning():
    filters = {"config.learning_rate": {"$gt": 1}}
    design = infer_design(table(grid()), DesignOptions(filters=filters))
    assert design.warnings == [
        'altgrad option filters (ALTGRAD_FILTERS) {"config.learning_rate": {"$gt": 1}} matches none of the 8 runs, '
        "so the site shows no study --> Do: correct the filter (keys are config.<key>, summary_metrics.<key>, "
        "state, tags, display_name) or remove it."]
    assert infer_design(table(grid()), DesignOptions(filters={"config.learning_rate": 0.001})).warnings == []


def test_the_design_note_tells_no_seeds_from_some_seeds():
    from altgrad_docs.report.context import design_context
    from altgrad_docs.site.render import make_environment, render
    from tests.site_fixtures import REPO

    env = make_environment(REPO / "templates")
    specs = grid(formats=("E5M2",), seeds=(1, 2))
    for s in specs[:3]:
        del s["config"]["seed"]
    some = render(env, "partials/design.md", results={"design": design_context(infer_design(table(specs)))})
    assert ("**Runs without a seed:** 3 of the 4 runs record no seed in their config; they cannot be paired by "
            "seed, so the ManifoldAdamW vs AdamW comparison is unpaired everywhere") in some
    del specs[3]["config"]["seed"]
    none = render(env, "partials/design.md", results={"design": design_context(infer_design(table(specs)))})
    assert "**No seeds:** the runs' configs record no seed" in none and "Runs without a seed" not in none
    assert "differ by run only (no seed logged)" in none


@pytest.mark.parametrize("config,why", [
    ({"fp8_format": "none"}, 'fp8_format "none"'), ({"fp8_format": "E5M2", "use_fp8": False}, "use_fp8 false"),
    ({}, "no fp8_format"), ({"fp8_format": "bf16"}, None), ({"fp8_format": "none", "dtype": "bfloat16"}, None),
    ({"fp8_format": "none", "dtype": "float32"}, None), ({"fp8_format": "E5M2"}, None),
])
def test_a_baseline_precision_the_config_does_not_name_is_said_to_be_assumed(config, why):
    from altgrad_docs.runs import assumed_precision

    assert assumed_precision(config) == why


def test_the_design_says_which_baseline_runs_were_assumed_bf16():
    design = infer_design(table(grid(formats=("E5M2", "none"))))
    assert design.assumed_baseline == {"label": "BF16", "n": 4, "because": ['fp8_format "none"']}
    assert infer_design(table(grid(formats=("E5M2", "bf16")))).assumed_baseline == {}


def test_an_older_run_table_is_renormalized_from_its_configs():
    from altgrad_docs.runs import renormalize

    new = table([{"run_id": "a", "config": {"fp8_format": "none"}, "loss": 1.0},
                 {"run_id": "b", "config": {"fp8_format": "E5M2", "seed": 7}, "loss": 1.0},
                 {"run_id": "c", "config": {"fp8_format": "fp8_e4m3fn", "use_fp8": True}, "loss": 1.0}])
    old = new.copy()  # what the earlier run_row stored
    old["format"] = pd.array(["NONE", "E5M2", "E4M3FN"], dtype="string")
    old["seed"] = pd.array([42, 7, 42], dtype="Int64")
    old["use_fp8"] = pd.array([False, False, True], dtype="boolean")
    again = renormalize(old)
    pd.testing.assert_frame_equal(again, new)


# ---------------------------------------------------------------------------------------------
# Runs of different scripts are never pooled


def _with_programs(specs: list[dict], program_of) -> pd.DataFrame:
    """``table`` with each run's environment saying which script made it (program_of(spec))."""
    rows = []
    for s in specs:
        history = pd.DataFrame({"_step": range(10), "loss": np.linspace(3.0, s["loss"], 10)})
        env = {} if program_of(s) is None else {"program": program_of(s)}
        rows.append(run_row(RunRecord(meta={"run_id": s["run_id"], "state": "finished",
                                            "run_log": {"environment": env}},
                                      config=s["config"], summary={"loss": s["loss"], "_step": 9}, history=history)))
    return runs_frame(rows)


def test_runs_of_two_scripts_with_one_config_are_two_settings_never_pooled():
    specs = grid(formats=("E7M0",), seeds=(42, 43))
    runner = [{**s, "run_id": "runner-" + s["run_id"]} for s in specs]
    runs = _with_programs(specs + runner, lambda s: ("/srv/x/tools/run_format_runner.py" if s["run_id"].startswith("runner")
                                                     else "C:\\work\\altgrad\\experiments\\run_experiment.py"))
    assert sorted(set(runs["program"])) == ["run_experiment.py", "run_format_runner.py"]
    design = infer_design(runs)
    assert design.factors == {"program": ["run_experiment.py", "run_format_runner.py"]}
    assert sorted(set(design.runs["setting"])) == ["program=run_experiment.py", "program=run_format_runner.py"]
    assert design.cells["n"].tolist() == [2, 2, 2, 2] and design.duplicates.empty  # not 4 runs with seeds twice


def test_one_script_or_none_known_changes_no_design():
    specs = grid(formats=("E4M3", "BF16"), seeds=(1, 2))
    one = infer_design(_with_programs(specs, lambda s: "/a/train.py"))
    unknown = infer_design(_with_programs(specs, lambda s: None))
    plain = infer_design(table(specs))
    for design in (one, unknown):
        assert design.factors == plain.factors == {} and "program" not in design.constants
        assert design.runs["setting"].tolist() == plain.runs["setting"].tolist()
    # a run whose script is unknown is pooled with neither script's runs; a config key
    # named program keeps its own value
    mixed = _with_programs(specs, lambda s: None if s["run_id"] == "e4m3-a-1" else
                           ("a.py" if s["run_id"].startswith("e4m3") else "b.py"))
    settings = dict(zip(infer_design(mixed).runs["run_id"], infer_design(mixed).runs["setting"]))
    assert settings["e4m3-a-1"] != settings["e4m3-a-2"]
    own = [{**s, "config": {**s["config"], "program": "sweep-1"}} for s in specs]
    assert infer_design(_with_programs(own, lambda s: "a.py" if s["run_id"].startswith("e4m3") else "b.py")).factors == {}


def test_keys_are_judged_within_each_script():
    """Script A logs a key that follows the optimizer and a model size; script B's runs lack
    the first and have another size. The key still follows the optimizer (within A), the size
    follows the script, and the script is the one factor: each script's optimizers pair."""
    a = grid(formats=("E5M2",), seeds=(1, 2))
    for s in a:
        s["config"].update(log_bit_position=s["config"]["use_manifold_aware"], n_embd=64)
    b = [{**s, "run_id": "b-" + s["run_id"], "config": {**s["config"], "n_embd": 768}} for s in grid(formats=("E5M2",), seeds=(7, 8))]
    for s in b:
        s["config"].pop("log_bit_position", None)
    runs = _with_programs(a + b, lambda s: "b.py" if s["run_id"].startswith("b-") else "a.py")
    design = infer_design(runs)
    assert design.factors == {"program": ["a.py", "b.py"]}  # not "follows the seed", though the seeds differ
    assert (design.follows["log_bit_position"], design.follows["n_embd"]) == ("optimizer", "program")
    assert design.cells["n"].tolist() == [2, 2, 2, 2] and design.pairs["n_pairs"].tolist() == [2, 2]
