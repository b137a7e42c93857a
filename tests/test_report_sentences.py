"""Every sentence of the report pages that states a result is a template branch chosen by a
computed quantity: one test per branch, on hand-built contexts or tiny hand-built studies,
exact text out. The design study (tests/design_data.py) makes train and val loss rank the
formats differently, so a page that used the wrong metric fails here."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.report import claims, context, run_config, tables
from altgrad_docs.report.generator import REPORT_TEMPLATES, ReportGenerator
from altgrad_docs.report.markdown import wandb_link
from tests import design_data as D

STAMP = "2026-01-01T00:00:00+00:00"
E7M0 = {"max": 2.0 ** 64, "min_positive": 2.0 ** -62, "stall_band": (0.25, 0.5), "rate": None}


@pytest.fixture()
def gen(tmp_path):
    return ReportGenerator(tmp_path / "reports", generated_at=STAMP)


def _lines(text: str) -> list[str]:
    return text.splitlines()


# -- weight storage, from the runs' config ------------------------------------------------------

def _frame(configs, optimizers=None, formats=None):
    n = len(configs)
    return pd.DataFrame({"config_json": [json.dumps(c) for c in configs],
                         "optimizer": optimizers or ["AdamW"] * n, "format": formats or ["E5M2"] * n})


@pytest.mark.parametrize("configs,kind", [
    ([{"weight_storage": "fp32_master"}, {"use_fp32_master": True}], "fp32_master"),
    ([{"weight_storage": "quantized"}, {"use_fp32_master": False}], "quantized"),
    ([{"weight_storage": "fp32_master"}, {"weight_storage": "quantized"}], "mixed"),
    ([{"weight_storage": "fp32_master"}, {"lr": 0.1}], ""),  # one run does not say: unknown
])
def test_weight_storage_is_read_from_config(configs, kind):
    assert run_config.weight_storage(_frame(configs))["kind"] == kind


def test_weight_storage_without_config_is_unknown():
    assert run_config.weight_storage(pd.DataFrame({"format": ["E5M2"]})) == {"kind": "", "n": 0, "counts": {}}
    assert run_config.weight_storage(None)["kind"] == ""


E7M0_LEAD = ("E7M0's values are the powers of two from 2^-62 to 2^64, with no subnormals: a stored weight moves "
             "by at least a factor of 2 or not at all. Round-to-nearest maps every update smaller than 25%-50% of "
             "the weight back to the same 8-bit value (the \"bit stall\").")


@pytest.mark.parametrize("storage,sentence", [
    ({"kind": "fp32_master", "n": 2, "counts": {"fp32_master": 2}},
     "Every run here kept FP32 master weights (its config says so), so such an update is not lost: the master "
     "copy keeps it, and the 8-bit value moves once the accumulated change crosses half a grid step."),
    ({"kind": "quantized", "n": 2, "counts": {"quantized": 2}},
     "Every run here stored its weights in 8 bits with no master copy (its config says so), so such an update "
     "is lost."),
    ({"kind": "mixed", "n": 3, "counts": {"fp32_master": 2, "quantized": 1}},
     "The runs here stored their weights both ways (fp32&#95;master: 2 runs; quantized: 1 runs, from their "
     "config): with an FP32 master copy such an update is deferred until the accumulated change crosses half a "
     "grid step; without one it is lost."),
    ({"kind": "", "n": 0, "counts": {}}, None),  # unknown: nothing said about lost or deferred
])
def test_e7m0_section_says_what_the_storage_allows(gen, storage, sentence):
    ctx = {"has_data": False, "n_failures": 0, "e7m0": E7M0, "storage": storage, "crash_rates_table": ""}
    lines = _lines(gen.render_template(REPORT_TEMPLATES["failure_modes"], ctx))
    lead = lines.index(E7M0_LEAD)
    if sentence is None:
        assert lines[lead + 1] == "" and "lost" not in " ".join(lines) and "deferred" not in " ".join(lines)
    else:
        assert lines[lead + 1] == sentence
    assert "control, not a candidate" not in "\n".join(lines) and "expected" not in "\n".join(lines)


# -- how the optimizers differ, from the runs' config -------------------------------------------

def test_optimizer_differences_within_formats_only():
    frame = _frame([{"use_manifold_aware": False, "lr": 0.1, "fp8_format": "BF16"},
                    {"use_manifold_aware": False, "lr": 0.1, "fp8_format": "E5M2"},
                    {"use_manifold_aware": True, "lr": 0.1, "fp8_format": "E5M2", "run_name": "x"}],
                   ["AdamW", "AdamW", "ManifoldAdamW"], ["BF16", "E5M2", "E5M2"])
    assert run_config.optimizer_differences(frame) == {
        "known": True, "differ": [{"key": "use_manifold_aware", "adamw": ["false"], "manifold": ["true"],
                                   "formats": ["E5M2"], "everywhere": True}]}


def test_optimizer_differences_leave_out_identity_keys_and_keep_shared_values():
    """tags follow a run's identity; E5M2's ManifoldAdamW mantissa bits equal AdamW's (issue 22)."""
    rows = [{"use_manifold_aware": m, "fp8_format": f, "tags": [f.lower()] + (["manifold-aware"] if m else []),
             "manifold_mantissa_bits": ({"E5M2": 2, "E3M4": 4}[f] if m else 2)}
            for f in ("E3M4", "E5M2") for m in (False, True)]
    frame = _frame(rows, ["ManifoldAdamW" if r["use_manifold_aware"] else "AdamW" for r in rows],
                   [r["fp8_format"] for r in rows])
    differ = {d["key"]: d for d in run_config.optimizer_differences(frame)["differ"]}
    assert sorted(differ) == ["manifold_mantissa_bits", "use_manifold_aware"]
    assert differ["manifold_mantissa_bits"] == {"key": "manifold_mantissa_bits", "adamw": ["2"], "manifold": ["2", "4"],
                                                "formats": ["E3M4"], "everywhere": False}


def _compared(gen, optimizer_config):
    ctx = {"has_data": False, "optimizer_config": optimizer_config, "metric_label": "final val loss"}
    lines = _lines(gen.render_template(REPORT_TEMPLATES["manifold_comparison"], ctx))
    return lines[lines.index("## What is compared") + 2]


def test_what_is_compared_names_the_config_keys(gen):
    cfg = {"known": True, "differ": [{"key": "use_manifold_aware", "adamw": ["false"], "manifold": ["true"]}]}
    assert _compared(gen, cfg) == (
        "The two optimizers are told apart by the runs' config: use&#95;manifold&#95;aware is false in the AdamW "
        "runs and true in the ManifoldAdamW runs. Within each format run under both, every other config key has "
        "the same values under both optimizers (keys that identify a run aside).")


def test_what_is_compared_when_no_key_differs(gen):
    assert _compared(gen, {"known": True, "differ": []}) == (
        "The runs' config holds no key whose values differ between the AdamW and the ManifoldAdamW runs; they are "
        "told apart by the optimizer name alone.")


def test_what_is_compared_without_config(gen):
    assert _compared(gen, {"known": False, "differ": []}).startswith("The runs' config cannot say how")


def test_no_page_describes_the_optimizer_by_its_hypothesis(gen):
    df = D.table(D.sweep_specs())
    text = gen.render_template(REPORT_TEMPLATES["manifold_comparison"],
                               context.manifold_comparison(df, None, wandb_link, "final_val_loss"))
    assert "grid step" not in text and "lost to round" not in text and "stiffness" not in text


# -- the compact primary table ------------------------------------------------------------------

def _card(**paired):
    base = {"format": "E5M2", "setting": "", "n": 2, "crashes": 0, "n_finite": 2, "median": 3.0,
            "paired_n": 0, "paired_delta": math.nan, "paired_low": math.nan, "paired_high": math.nan}
    return pd.DataFrame([{**base, "optimizer": "AdamW"},
                         {**base, "optimizer": "ManifoldAdamW", "median": 2.5, "crashes": 1, **paired}])


def test_primary_table_zero_width_interval_says_no_spread():
    text = tables.primary_table(_card(paired_n=2, paired_delta=-0.5, paired_low=-0.5, paired_high=-0.5), "final val loss")
    row = [c.strip() for c in _lines(text)[2].strip("|").split("|")]
    assert _lines(text)[0].split("|")[2].strip() == "AdamW: median final val loss (n)"
    assert row == ["E5M2", "3.00 (2)", "2.50 (2)", "−0.500 (no spread among 2 pairs)", "2",
                   "AdamW 0/2, ManifoldAdamW 1/2"]


def test_primary_table_interval_and_missing_pairs():
    text = tables.primary_table(_card(paired_n=3, paired_delta=-0.117, paired_low=-0.306, paired_high=0.0731), "x")
    assert "| −0.12 [−0.31, 0.07] " in text  # half-width 0.19: two significant digits of it
    text = tables.primary_table(_card(), "x")
    assert [c.strip() for c in _lines(text)[2].strip("|").split("|")][3:5] == ["—", "0"]


# -- format comparison: the failure sentence, sweet spot by the primary metric -------------------

def _failure_line(gen, ctx):
    lines = _lines(gen.render_template(REPORT_TEMPLATES["format_comparison"], ctx))
    return lines[-1]


def _fc_context(**over):
    from types import SimpleNamespace

    f = SimpleNamespace(family=SimpleNamespace(higher_is_better=False), sweet_spot=SimpleNamespace(branch="none"))
    ctx = {"has_data": True, "metric": "final_val_loss", "metric_label": "final val loss", "f": f,
           "counts": {"runs": 4, "completed": 4, "failed": 1, "excluded": 0, "formats": 2, "conditions": 2,
                      "conditions_failed": 1},
           "sweet_spot": None, "sweet_spot_name": "", "spot_is_finding": False, "settings": [], "primary_table": "",
           "scorecard_table": "", "results_table": "", "rank_loss_table": "", "rank_stall_table": "",
           "crash_rates_table": "", "failures_table": ""}
    return ctx | over


def test_failure_sentence_counts_conditions_in_one_unit(gen):
    # a condition is format x optimizer x setting, on both sides of "k of n conditions"
    assert _failure_line(gen, _fc_context()) == (
        "- 1 of the 2 conditions had at least one failed run (1 of 4 runs); counts and intervals are in the "
        "failure table above.")


def test_failure_sentence_when_none_failed(gen):
    none = _fc_context(counts={"runs": 6, "completed": 6, "failed": 0, "excluded": 0, "formats": 2, "conditions": 3,
                               "conditions_failed": 0})
    assert _failure_line(gen, none) == (
        "- No run failed in any of the 3 conditions; the failure table above gives each condition's 95% upper bound.")
    assert "could still be as high as" not in gen.render_template(REPORT_TEMPLATES["format_comparison"],
                                                                  _fc_context())


def test_sweet_spot_is_ranked_by_val_loss_where_train_loss_disagrees(gen):
    df = D.table(D.sweep_specs())
    card = sc.scorecard(df, "final_val_loss")
    best = claims.sweet_spot_claim(card, "final_val_loss").best
    assert best.format == "E4M3" and claims.sweet_spot_claim(sc.scorecard(df, "final_loss"), "final_loss").best.format == "E5M2"
    text = gen.render_template(REPORT_TEMPLATES["format_comparison"],
                               context.format_comparison(df, best.format, wandb_link, metric="final_val_loss"))
    # by hand: E4M3 base 2.00 + lr 0.01 offset 0 + median of seed offset + delta (-0.20, -0.20, -0.19, -0.19)
    median = 2.00 + float(np.median([0.00 - 0.20, 0.02 - 0.22, -0.01 - 0.18, 0.01 - 0.20]))
    # range [1.80, 1.81]: half-width 0.005 -> 4 decimals (two significant digits of the half-width)
    assert f"is **E4M3** with ManifoldAdamW at learning&#95;rate=0.01: {median:.4f} [1.8000, 1.8100] (median [min, max], n = 4)" in text


def test_manifold_conclusions_on_the_sweep_are_fragile_with_4_pairs(gen):
    df = D.table(D.sweep_specs())
    text = gen.render_template(REPORT_TEMPLATES["manifold_comparison"],
                               context.manifold_comparison(df, None, wandb_link, "final_val_loss"))
    deltas = np.array([D.DELTA[0.01][s] for s in (1, 2, 3, 4)])  # -0.20 -0.22 -0.18 -0.20
    half = st.t.ppf(0.975, 3) * deltas.std(ddof=1) / 2  # 0.026: 3 decimals
    lo, hi = (f"{v:.3f}".replace("-", "−") for v in (deltas.mean() - half, deltas.mean() + half))
    conclusions = text[text.index("## Conclusions"):]
    assert "- Of the 4 comparisons in the family: 0 significant after Holm's correction and robust; 4 significant but fragile" in conclusions
    assert (f"- **E5M2 at learning&#95;rate=0.01**: ManifoldAdamW lower on 4/4 seeds, ManifoldAdamW − AdamW = "
            f"−0.200 [{lo}, {hi}]; significant by the t test after Holm's correction for 4 comparisons") in conclusions
    assert "the sign-flip permutation (exact) test of the same 4 pairs gives p = 0.12 (the smallest it can give with 4 pairs)" in conclusions
    assert "- **E4M3 at learning&#95;rate=0.001**: AdamW lower on 4/4 seeds, ManifoldAdamW − AdamW = 0.100" in conclusions


def test_manifold_conclusions_consistent_and_no_data(gen):
    from tests.analysis_data import runs

    text = gen.render_manifold_comparison(runs())
    assert ("- **E5M2**: ManifoldAdamW lower on 3/3 seeds, ManifoldAdamW − AdamW = −0.12 [−0.31, 0.07], a large "
            "paired effect; consistent on every seed, not significant after correcting for 1 comparison") in text
    assert "- E7M0: ManifoldAdamW 1/2 failed, AdamW 1/2 (Boschloo exact test p = 1: too few runs" in text
    only_adamw = runs()
    only_adamw = only_adamw[only_adamw["optimizer"] == "AdamW"]
    assert "No format has finished runs of both optimizers, so no comparison is possible." in \
        gen.render_manifold_comparison(only_adamw)


# -- figures beside the section they support ----------------------------------------------------

def test_report_page_places_figures_at_their_marks_and_the_rest_at_the_end():
    from pathlib import Path
    from types import SimpleNamespace

    from altgrad_docs.report.markdown import figure_mark
    from altgrad_docs.site.render import make_environment

    env = make_environment(Path(__file__).parents[1] / "templates")
    figs = [SimpleNamespace(id=i, number=n, caption=f"cap {i}", alt=i, group="", tab="", table_link="")
            for n, i in enumerate(("fig-a", "fig-b"), 1)]
    page = SimpleNamespace(artifacts=SimpleNamespace(figures=figs, tables=[]))
    body = f"# Title\n\n## One\n\ntext one\n\n{figure_mark('fig-b')}\n\n## Two\n\n{figure_mark('fig-gone')}\n\ntext two\n"
    text = env.get_template("pages/report.md").render(body=body, page=page, bench_note=None, bench_page=False)
    assert "<!-- altgrad-figure" not in text  # every mark replaced (an unknown id leaves nothing)
    assert text.index("text one") < text.index('id="fig-b"') < text.index("## Two") < text.index("text two")
    assert text.index("text two") < text.index("## Figures") < text.index('id="fig-a"')
    assert text.count('id="fig-b"') == 1


def test_every_report_figure_has_a_place_in_its_report():
    """Each figure the catalog draws for a report page is placed by that page's template."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    # FigureSpec(...) or a spec maker (grid, _grid_specs, _summary_specs: one figure per setting)
    specs = re.findall(r'(?:FigureSpec\(|grid\(|_grid_specs\(|_summary_specs\(a, )"(fig-[^"]+)", "(\w+)"',
                       (root / "altgrad_docs/report/catalog.py").read_text())
    placed = [(f, p) for f, p in specs if p in ("format_comparison", "failure_modes", "manifold_comparison")]
    assert len(placed) == 10
    for fig_id, page in placed:
        assert f'figure("{fig_id}")' in (root / "templates" / REPORT_TEMPLATES[page]).read_text(), (page, fig_id)


def test_optimizer_differences_ignore_keys_whose_values_overlap():
    """log_interval differs by seed in both arms (bookkeeping): it does not tell them apart."""
    frame = _frame([{"use_manifold_aware": False, "log_interval": 5}, {"use_manifold_aware": False, "log_interval": 10},
                    {"use_manifold_aware": True, "log_interval": 10}, {"use_manifold_aware": True, "log_interval": 15}],
                   ["AdamW", "AdamW", "ManifoldAdamW", "ManifoldAdamW"])
    assert [d["key"] for d in run_config.optimizer_differences(frame)["differ"]] == ["use_manifold_aware"]


def test_a_baseline_that_improves_most_is_never_the_headline(gen):
    specs = D.sweep_specs()
    for s in specs:
        if s["format"] == "BF16" and s["manifold"] and s["lr"] == 0.01:
            s["val"] = round(s["val"] - 1.0, 10)  # BF16 "improves" by 1.2 nats, far more than any 8-bit format
            s["train"] = round(s["train"] - 1.0, 10)
    text = gen.render_template(REPORT_TEMPLATES["manifold_comparison"],
                               context.manifold_comparison(D.table(specs), None, wandb_link, "final_val_loss"))
    conclusions = text[text.index("## Conclusions"):]
    assert "BF16" not in conclusions  # neither as a winner nor as a harm: a baseline is a reference
    assert "- **E5M2 at learning&#95;rate=0.01**: ManifoldAdamW lower on 4/4 seeds" in conclusions
    assert "| BF16     | 1.90 (4) " in text  # the baseline is still in the table, as a reference


def test_identical_evidence_lines_are_counted_once():
    """Issue 21: one line per distinct piece of evidence, with how many runs gave it."""
    from altgrad_docs.report.context import evidence_lines

    lines = pd.Series(["loss above its start over the last 50 steps"] * 4 + ["grad norm 1e13", None])
    assert evidence_lines(lines) == ["grad norm 1e13", "loss above its start over the last 50 steps (x4)"]
