"""The AltGrad trainer's own runs end to end: its LM runs and FormatExperimentRunner runs
fetched together with the runner's failure reports (``--checkpoints``), then
``mkdocs build --strict``: the runs it stopped itself are failed everywhere, with their stop
reason and last good loss, each report is on its run's page, and the run that crashed before
writing one says it has none (issue 22)."""

import html
import re
import shutil

import pytest

from altgrad_docs.analysis.design import infer_design
from altgrad_docs.fetch import fetch_offline
from altgrad_docs.snapshot import open_snapshot
from tests.site_fixtures import run_mkdocs_build

pytestmark = pytest.mark.slow

#: The 4 LM runs the trainer stopped for NaN (exit 0, W&B state finished): run id ->
#: (first NaN step, last finite loss as the failure table / the run page print it, its step).
STOPPED = {"atcd12i9": (6, "2448.646", "2449", 5), "fab9d5pw": (6, "1115.654", "1116", 5),
           "dog9t1x0": (4, "2995.823", "2996", 3), "kylgkja4": (19, "995.714", "995.7", 18)}
#: The runner's runs with a report: run id -> (report file, collapse step in it).
REPORTED = {"gy9dapiz": ("E7M0_20261206_045516_failure_report.md", 4),
            "kag70y9k": ("E7M0_20261206_045546_failure_report.md", 4),
            "zce8j3nj": ("E7M0_20261206_045546_failure_report.md", 5)}
CRASHED = "lrbxztvi"  # exit 1 in the runner's own collapse code, before writing its report


@pytest.fixture(scope="module")
def site(upstream_runs, tmp_path_factory):
    base = tmp_path_factory.mktemp("trainer_site")
    runs = base / "wandb"
    for part in ("lm", "runner"):
        for folder in (upstream_runs / part / "wandb").iterdir():
            shutil.copytree(folder, runs / folder.name)
    snapshot = base / "snapshot"
    fetch_offline(runs, snapshot, upstream_runs / "runner" / "checkpoints-runner", progress=False)
    result = run_mkdocs_build(snapshot, base / "site", base / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr
    return base / "site"


def _text(path) -> str:
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", path.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _rows(path) -> list[list[str]]:
    """Every table row of a page as its cells' text."""
    page = path.read_text(encoding="utf-8")
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def test_the_runners_runs_are_a_setting_of_their_own(site):
    """The runner's 4 runs (FormatExperimentRunner) share their config with 4 LM runs (E7M0,
    lr 10): the design keeps them apart by the script that made them, never pools them."""
    snapshot = open_snapshot(site.parent / "snapshot")
    design = infer_design(snapshot.runs())
    assert design.factors["program"] == ["run_experiment.py", "run_format_runner.py"]
    settings = dict(zip(design.runs["name"], design.runs["setting"]))
    assert settings["runner-e7m0-adamw-lr10-s42"] == "learning_rate=10, program=run_format_runner.py"
    assert settings["e7m0-adamw-lr10-s42"] == "learning_rate=10, program=run_experiment.py"
    assert design.duplicates.empty  # seeds 42 and 43 once per condition, not twice
    page = _text(site / "format-comparison" / "index.html")
    assert "program=run_format_runner.py" in page and "program=run_experiment.py" in page


def test_home_counts_the_runs_the_trainer_stopped_as_failed(site):
    text = _text(site / "index.html")
    assert "8 of the 26 failed, in " in text and "0 of the 26 failed" not in text  # the findings' counts
    assert "26; 8 of 26 completed runs failed" in text  # the data table, the same count


def test_runs_table_status_and_its_failed_filter(site):
    rows = [r for r in _rows(site / "runs" / "index.html") if len(r) > 8]
    header, body = rows[0], rows[1:]
    status, why, state = header.index("status"), header.index("why"), header.index("W&B state")
    by_id = {r[header.index("run id")]: r for r in body}
    assert len(body) == 26
    for run_id, (nan_step, *_rest) in STOPPED.items():
        assert by_id[run_id][status] == "failed" and by_id[run_id][state] == "finished"
        assert by_id[run_id][why] == f"stopped by trainer: NaN loss at step {nan_step}"
    for run_id, (_, step) in REPORTED.items():
        assert by_id[run_id][why] == f"failure report: NaN/Inf loss at step {step}"
    assert by_id[CRASHED][why] == "W&B state failed: exited with an error, exit code 1"
    # the table's filter matches words in a row's text: "failed" finds exactly the 8 failed runs
    assert sorted(r for r, cells in by_id.items() if "failed" in " ".join(cells).split()) == \
        sorted([*STOPPED, *REPORTED, CRASHED])


def test_failure_page_rows(site):
    rows = _rows(site / "failure-modes" / "index.html")
    header = next(r for r in rows if "last good loss" in r)
    table = {r[header.index("run")]: dict(zip(header, r)) for r in rows if len(r) == len(header) and r != header}
    names = {"atcd12i9": "e7m0-adamw-lr10-s43", "fab9d5pw": "e7m0-adamw-lr10-s42",
             "dog9t1x0": "e7m0-manifold-lr10-s42", "kylgkja4": "e7m0-manifold-lr10-s43"}
    assert len(table) == 8
    for run_id, (nan_step, good, _, good_step) in STOPPED.items():
        row = table[names[run_id]]
        assert row["reason"] == f"stopped by trainer: NaN loss at step {nan_step}"
        assert row["detection step"] == str(nan_step)
        assert row["last good loss"] == f"{good} (step {good_step})" and row["failure report"] == "none"
    assert table["runner-e7m0-adamw-lr10-s43"]["failure report"] == "report"
    assert table["runner-e7m0-adamw-lr10-s43"]["last good loss"] == "2288.027 (step 3)"  # the report's loss table
    assert table["runner-e7m0-adamw-lr10-s42"]["failure report"] == "none"
    assert table["runner-e7m0-adamw-lr10-s42"]["reason"] == "W&B state failed: exited with an error, exit code 1"
    assert "nan" not in {c.lower() for row in table.values() for c in row.values()}


def test_run_pages_show_status_last_good_loss_and_reports(site):
    for run_id, (nan_step, _, good, good_step) in STOPPED.items():
        fields = {r[0]: r[1] for r in _rows(site / "runs" / run_id / "index.html") if len(r) == 2}
        assert fields["status"] == f"failed: stopped by trainer: NaN loss at step {nan_step}"
        assert fields["W&B state"] == "finished (exit code 0)"
        assert fields["last good loss (last finite value)"] == f"{good} (step {good_step})"
        assert fields["failure report"] == "none: no failure report of this run was found"
        assert "Training stopped: NaN loss (ERROR, 1x)" in fields["W&B alerts"]
        assert (fields["failure mode, from the history"], fields["failure mode, the plan's heuristic (from the reason)"]) \
            == ("divergence", "overflow")
        assert ("Failure mode from the history: divergence; the original plan's heuristic, which reads only the "
                "failure reason, says overflow") in _text(site / "runs" / run_id / "index.html")
    for run_id, (name, step) in REPORTED.items():
        page = site / "runs" / run_id / "index.html"
        text = _text(page)
        assert "The trainer wrote 1 failure report(s) for this run" in text
        assert f"| Collapse Step | {step} |" in text and 'id="failure-report"' in page.read_text()
        assert {r[0]: r[1] for r in _rows(page) if len(r) == 2}["failure report"] == "1 below"
    fields = {r[0]: r[1] for r in _rows(site / "runs" / CRASHED / "index.html") if len(r) == 2}
    assert fields["failure report"] == "none: no failure report of this run was found"
    assert fields["W&B state"] == "failed (exit code 1)"


def test_the_wandb_api_path_keeps_per_layer_keys_and_judges_without_alerts(upstream_runs, live_wandb, tmp_path):
    """The same trainer's runs served by the fake W&B: the Public API gives no alerts and no
    exit code, so a stopped run is failed by its NaN last loss; every per-layer family
    (bare or under train/) reaches the snapshot."""
    from altgrad_docs.fetch import fetch_project
    from altgrad_docs.sources.offline import read_offline_run
    from tests.fake_wandb import ENTITY

    lm = upstream_runs / "lm" / "wandb"
    stopped, healthy = (read_offline_run(next(lm.glob(f"offline-run-*-{i}")) / f"run-{i}.wandb")
                        for i in ("atcd12i9", "z1xwvlos"))
    under_train = read_offline_run(next(lm.glob("offline-run-*-z1xwvlos")) / "run-z1xwvlos.wandb")
    under_train.meta["run_id"] = "trainprefix"
    under_train.history = under_train.history.rename(
        columns=lambda c: f"train/{c}" if c.split("/")[0] in ("grad_snr", "dead_neuron_frac") or c == "loss" else c)
    under_train.summary = {(f"train/{k}" if k == "loss" else k): v for k, v in under_train.summary.items()}
    live_wandb.set_runs([stopped, healthy, under_train])
    snap = fetch_project(f"{ENTITY}/altgrad", tmp_path / "snap", progress=False).snapshot
    runs = snap.runs().set_index("run_id")
    assert runs.loc["atcd12i9", ["state", "status", "status_reason"]].tolist() == [
        "finished", "failed", "NaN loss at step 6"]
    assert runs.loc["atcd12i9", "alerts"] == "[]" and runs["exit_code"].isna().all()
    assert runs.loc["atcd12i9", "last_good_loss"] == pytest.approx(2448.645751953125)
    assert runs.loc["atcd12i9", "last_good_step"] == 5
    assert runs.loc["trainprefix", ["status", "primary_metric"]].tolist() == ["finished", "train/loss"]
    assert runs.loc["atcd12i9", "program"] == "run_experiment.py"  # from W&B's run metadata
    offline = {k.split("/")[0] for k in healthy.history.columns if "/" in k}
    assert {"grad_norm_l2", "grad_norm_linf", "dead_neuron_frac", "grad_snr", "grad_cos_sim"} <= offline
    layer = [k for k in healthy.history.columns if k.split("/")[0] in offline - {"quantization"}]
    assert sorted(k for k in snap.history_keys("z1xwvlos") if k in layer) == sorted(layer)
    prefixed = snap.history_keys("trainprefix")
    assert "train/grad_snr/transformer.h.0.attn.c_attn.weight" in prefixed
    assert "train/dead_neuron_frac/transformer.h.0.mlp.c_fc.weight" in prefixed


@pytest.mark.slow
def test_the_trainers_three_scripts_in_one_snapshot_build_and_stay_apart(upstream_runs, tmp_path):
    """LM, runner and classification runs fetched together (a W&B project of one trainer may
    hold all three): the build is strict-clean, each script's optimizers still pair (a key
    one script lacks does not split another's optimizers), and no best condition is ranked
    across scripts. The pages agree with each other (tests/test_findings_site.py's check)."""
    from tests.test_findings_site import consistency, read_site

    runs = tmp_path / "wandb"
    for part in ("lm", "runner", "classification"):
        for folder in (upstream_runs / part / "wandb").iterdir():
            shutil.copytree(folder, runs / folder.name)
    fetch_offline(runs, tmp_path / "snapshot", upstream_runs / "runner" / "checkpoints-runner", progress=False)
    design = infer_design(open_snapshot(tmp_path / "snapshot").runs())
    assert design.factors["program"] == ["run_classification.py", "run_experiment.py", "run_format_runner.py"]
    assert design.cells["n"].tolist() == [2] * 19 and design.follows["log_bit_position"] == "optimizer"
    result = run_mkdocs_build(tmp_path / "snapshot", tmp_path / "site", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    stated = consistency(read_site(tmp_path / "site"))
    assert (stated["completed runs"], stated["failed runs"], stated["family size"], stated["sweet spot"]) == \
        ("38", "8", "6", "")
    assert "No best condition across scripts" in _text(tmp_path / "site" / "index.html")
