"""Failure reports, the plan's classification heuristic, history classification, merging."""

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.analysis.curves import collect_traces, collapse_step, make_trace
from altgrad_docs.analysis.failure_reports import parse_failure_report, read_failure_reports
from altgrad_docs.analysis.failures import FailureAnalyzer, failure_table
from tests.analysis_data import histories, runs

SAMPLE = Path(__file__).parent / "fixtures" / "failure_reports" / "E7M0_20260203_142251_failure_report.md"


def test_sample_report_parses_to_the_right_fields():
    r = parse_failure_report(SAMPLE, run_id="abc")
    assert (r["run_id"], r["format"], r["collapse_step"], r["reason"]) == ("abc", "E7M0", 412, "NaN/Inf loss")
    assert math.isnan(r["final_loss"]) and r["best_loss"] == 6.913204
    assert (r["total_steps"], r["max_steps"], r["duration_s"]) == (412, 2000, 381.7)
    assert r["grad_sparsity"] == pytest.approx(0.6341)
    assert r["zero_update_layers"] == ["transformer.h.3.attn.c_attn.weight", "transformer.h.4.mlp.c_fc.weight",
                                       "lm_head.weight"]
    assert r["bit_stall_rate"] == pytest.approx(0.978) and r["overflow_rate"] == 0.0
    assert r["underflow_rate"] == pytest.approx(0.4125)
    assert r["diagnostic_trend"][0] == pytest.approx([200, 0.015625, 0.171201, 0.02, 0.981])
    assert r["config"] == {"fp8_format": "E7M0", "max_steps": 2000, "batch_size": 64, "learning_rate": 0.0003,
                           "grad_clip": 1.0, "enable_partition_clipping": False, "enable_emergency_shift": False,
                           "seed": 3}
    assert r["loss_trend"][0] == (0, 10.824913) and r["loss_trend"][-1][0] == 411
    assert math.isnan(r["loss_trend"][-1][1])
    assert len(r["recommendations"]) == 2 and r["recommendations"][0].startswith("**NaN collapse**")
    assert r["generated_at"] == "2026-02-03T14:22:51.018233" and r["missing_sections"] == []


def _broken(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_broken_reports_are_skipped_with_a_warning_naming_the_file(tmp_path, caplog):
    text = SAMPLE.read_bytes()
    bad = [
        _broken(tmp_path, "truncated.md", text[: text.index(b"| Collapse Step")]),
        _broken(tmp_path, "binary.md", b"\x89PNG\r\n\x1a\n\0\0\0"),
        _broken(tmp_path, "latin1.md", text.replace(b"E7M0 Experiment", "E7M0 Expérience".encode("latin-1"))),
        _broken(tmp_path, "none_step.md", text.replace(b"| Collapse Step | 412 |", b"| Collapse Step | None |")),
        _broken(tmp_path, "nan_step.md", text.replace(b"| Collapse Step | 412 |", b"| Collapse Step | nan |")),
        _broken(tmp_path, "no_title.md", text.replace(b"# Failure Report", b"# Report")),
        _broken(tmp_path, "no_summary.md", text[text.index(b"## Collapse Analysis"):]),
    ]
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.altgrad"):
        assert read_failure_reports(bad + [SAMPLE])[0]["path"] == str(SAMPLE)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert len(caplog.records) == len(bad)
    for path in bad:
        assert str(path) in warned


def test_missing_late_sections_and_nan_values_still_parse(tmp_path):
    text = SAMPLE.read_text()
    cut = text[: text.index("## Configuration")].replace("| Best Loss | 6.913204 |", "| Best Loss | None |")
    r = parse_failure_report(_broken(tmp_path, "late_cut.md", cut.encode()))
    assert r["collapse_step"] == 412 and math.isnan(r["best_loss"]) and r["config"] == {}
    assert "Configuration" in r["missing_sections"] and "footer" in r["missing_sections"]


def test_parse_local_failure_reports_globs_checkpoints(tmp_path):
    folder = tmp_path / "checkpoints" / "e7m0_run" / "failure_reports"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    (tmp_path / "checkpoints" / "other.md").write_text("not a report")
    reports = FailureAnalyzer().parse_local_failure_reports(str(tmp_path / "checkpoints"))
    assert [r["collapse_step"] for r in reports] == [412]
    assert FailureAnalyzer().parse_local_failure_reports(str(tmp_path / "nothing")) == []


@pytest.mark.parametrize("reason,sparsity,mode", [
    ("NaN/Inf loss", None, "overflow"), ("loss is inf", 0.9, "overflow"), ("stalled", 0.63, "gradient_vanishing"),
    ("underflow to zero", 0.2, "underflow"), ("Underflow", None, "underflow"), ("timeout", 0.5, "unknown"),
    (None, None, "unknown"), ("information lost", None, "unknown"),
])
def test_classify_failure_mode_is_the_plans_heuristic(reason, sparsity, mode):
    assert FailureAnalyzer().classify_failure_mode(reason, sparsity) == mode


def test_extract_failures_counts_failed_and_non_finite_finished_runs():
    df = runs()
    df.loc[df["run_id"] == "r02", "final_loss"] = float("inf")
    assert FailureAnalyzer().extract_failures(df)["run_id"].tolist() == ["r02", "r10", "r13"]
    assert FailureAnalyzer().extract_failures(df.iloc[0:0]).empty


def test_collapse_step_reads_only_the_non_finite_tail():
    steps = np.arange(6)
    nan = math.nan
    assert collapse_step(steps, np.array([3, nan, 2, 1, nan, nan])) == 4  # NaN at 1 = not logged
    assert collapse_step(steps, np.array([3, 2, np.inf, 1, 1, 1])) == 2
    assert collapse_step(steps, np.array([3, 2, 1, 1, 1, nan]), np.array([nan] * 5 + [2.0])) is None  # eval row
    assert collapse_step(steps, np.array([3.0] * 6)) is None and collapse_step(steps, None) is None


def test_history_classification_keeps_the_collapse_step():
    a = FailureAnalyzer()
    hist = dict(histories())
    assert a.classify_history(hist["r10"]) | {"overflow_peak": 0, "stall_peak": 0, "underflow_peak": 0} == {
        "collapse_step": 40, "history_mode": "overflow", "evidence": "overflow rate 0.05 > 0.01 before collapse",
        "overflow_peak": 0, "stall_peak": 0, "underflow_peak": 0}
    assert a.classify_history(hist["r13"])["history_mode"] == "gradient_vanishing"
    assert a.classify_history(hist["r01"])["collapse_step"] is None
    h = pd.DataFrame({"_step": [0, 1, 2], "loss": [3.0, 2.0, math.nan], "underflow_rate": [0.1, 0.7, 0.8]})
    assert a.classify_history(h)["history_mode"] == "underflow"  # old unprefixed name read too
    assert a.classify_history(pd.DataFrame({"_step": [0, 1], "loss": [1.0, math.nan]}))["history_mode"] == "unknown"


def test_merge_failure_data_joins_reports_by_format_and_seed():
    df = runs()
    df.loc[df["run_id"] == "r10", "seed"] = 3  # the sample report is E7M0 seed 3
    a = FailureAnalyzer()
    merged = a.merge_failure_data(a.extract_failures(df), [parse_failure_report(SAMPLE)],
                                  collect_traces(histories()))
    row = merged.set_index("run_id").loc["r10"]
    assert row["source"] == "both" and row["collapse_step"] == 40  # the history's step wins
    assert row["reason"] == "NaN/Inf loss" and row["failure_mode"] == "overflow"
    assert row["grad_sparsity"] == pytest.approx(0.6341) and row["history_mode"] == "overflow"
    other = merged.set_index("run_id").loc["r13"]
    assert other["source"] == "wandb" and other["reason"] == "NaN loss at step 60 (history)"


def test_unmatched_report_becomes_its_own_row():
    merged = FailureAnalyzer().merge_failure_data(runs().iloc[0:0], [parse_failure_report(SAMPLE)])
    assert merged[["format", "collapse_step", "source", "failure_mode"]].values.tolist() == [
        ["E7M0", 412, "local", "overflow"]]


def test_failure_table_on_the_fixture():
    table = failure_table(runs(), collect_traces(histories()))
    assert table[["run_id", "collapse_step", "history_mode"]].values.tolist() == [
        ["r10", 40, "overflow"], ["r13", 60, "gradient_vanishing"]]


def test_trace_downsamples_long_histories():
    n = 10_000
    h = pd.DataFrame({"_step": np.arange(n), "loss": np.linspace(5, 1, n)})
    t = make_trace("x", h, max_points=300)
    s, v = t.curve("loss")
    assert len(s) <= 300 and s[0] == 0 and s[-1] == n - 1 and t.collapse_step is None


def test_crlf_report_parses_like_the_original(tmp_path):
    crlf = _broken(tmp_path, "crlf.md", SAMPLE.read_bytes().replace(b"\n", b"\r\n"))
    a, b = parse_failure_report(crlf), parse_failure_report(SAMPLE)
    for key in ("format", "collapse_step", "reason", "total_steps", "max_steps", "zero_update_layers", "config",
                "recommendations", "generated_at", "missing_sections"):
        assert a[key] == b[key], key


def _finite_history(loss, stall):
    steps = np.arange(0, 5 * len(loss), 5)
    return pd.DataFrame({"_step": steps, "loss": loss, "quantization/bit_stall_rate": stall})


def test_history_names_divergence_when_the_loss_stays_above_its_start():
    loss = [2.5, 1.5, 1.0] + [3.0] * 11  # the last 50 steps (11 rows, 5 apart) above 2.5
    got = FailureAnalyzer().classify_history(_finite_history(loss, [0.2] * 14))
    assert got["collapse_step"] is None and got["history_mode"] == "divergence"
    assert got["evidence"] == "loss above its starting value 2.5 over the last 50 steps"
    loss[-3] = 2.4  # one logged loss below the start in the window: not divergence
    assert FailureAnalyzer().classify_history(_finite_history(loss, [0.2] * 14))["history_mode"] is None


def test_history_names_stagnation_only_at_a_high_bit_stall():
    loss = [2.5, 1.2, 1.0] + [1.0, 1.01] * 20  # 43 rows: steps 0..210, flat after step 10
    a = FailureAnalyzer()
    got = a.classify_history(_finite_history(loss, [0.9] * 43))
    assert got["history_mode"] == "stagnation"
    # the monitor's moving average replayed on rows 5 steps apart last improved by 2% at step 45
    assert got["evidence"] == "smoothed loss not 2% below its best since step 45 (165 steps) at bit-stall rate 0.9 > 0.5"
    assert a.classify_history(_finite_history(loss, [0.3] * 43))["history_mode"] is None
    short = a.classify_history(_finite_history(loss[:20], [0.9] * 20))  # best at 45, ends at 95
    assert short["history_mode"] is None
    improving = list(np.linspace(2.5, 0.1, 43))
    assert a.classify_history(_finite_history(improving, [0.9] * 43))["history_mode"] is None


def test_a_failed_run_stopped_by_the_trainer_gets_its_stop_step_and_mode():
    loss = [2.5, 1.2, 1.0] + [1.0, 1.01] * 20
    df = pd.DataFrame({"run_id": ["s1"], "format": ["E7M0"], "optimizer": ["AdamW"], "seed": [0],
                       "name": ["x"], "run_url": [None], "state": ["failed"], "status": ["failed"],
                       "steps": [211], "final_loss": [1.01], "best_loss": [1.0]})
    traces = collect_traces([("s1", _finite_history(loss, [0.9] * 43))])
    row = FailureAnalyzer().merge_failure_data(df, [], traces).iloc[0]
    assert row["history_mode"] == "stagnation" and row["collapse_step"] == 210
    assert row["reason"].startswith("smoothed loss not 2% below its best since step 45")


def test_a_history_without_a_loss_says_so_not_that_the_loss_stayed_finite():
    """The AltGrad runner logs no loss (only diagnostics): its history cannot say whether the
    loss stayed finite, and the evidence must not claim it did."""
    a = FailureAnalyzer()
    runner = pd.DataFrame({"_step": [0, 50, 100], "diagnostics/grad_below_stiffness_frac": [0.1, 0.2, 0.3]})
    got = a.classify_history(runner)
    assert (got["history_mode"], got["evidence"]) == (None, "fewer than 2 finite loss values in the history")
    steady = pd.DataFrame({"_step": range(10), "loss": np.linspace(3.0, 2.0, 10)})
    assert a.classify_history(steady)["evidence"] == "loss stayed finite"


def test_variant_families_sort_at_their_base_familys_place():
    """grad_snr_fp8 (the trainer's grad_snr/<name>_fp8 keys) sorted after every known family."""
    from altgrad_docs.analysis.layers import family_sort_key

    families = ["effective_rank", "grad_snr_fp8", "stable_rank", "grad_snr", "stall", "zzz"]
    assert sorted(families, key=family_sort_key) == ["stall", "grad_snr", "grad_snr_fp8", "stable_rank",
                                                       "effective_rank", "zzz"]
