"""The study's filter (extra.altgrad.filters) goes to W&B's server when fetching, and the same
filter applied to the snapshot chooses the same runs."""

import json

from altgrad_docs.analysis.design import DesignOptions, infer_design
from altgrad_docs.fetch import fetch_project
from tests import design_data as D
from tests.fake_wandb import ENTITY

PROJECT = f"{ENTITY}/altgrad"
STUDY = {"config.learning_rate.value": {"$in": [0.01]}}


def test_fetch_passes_the_study_filter_to_the_server(live_wandb, tmp_path):
    specs = D.sweep_specs(formats=("E4M3",), seeds=(1, 2))
    live_wandb.set_runs(D.records(specs))
    live_wandb.requests.clear()
    result = fetch_project(PROJECT, tmp_path / "snap", filters=STUDY, progress=False)
    (listing,) = [v for op, v in live_wandb.requests if op == "Runs"]
    sent = {"$and": [{"state": {"$in": ["finished", "crashed", "failed"]}}, STUDY]}
    assert json.loads(listing["filters"]) == sent
    assert result.snapshot.manifest["source"]["filters"] == sent
    assert sorted(result.snapshot.run_ids) == sorted(s["run_id"] for s in specs if s["lr"] == 0.01)
    # the same filter on a snapshot holding every run leaves the others out, named
    runs = D.table(specs)
    design = infer_design(runs, DesignOptions(filters=STUDY))
    assert sorted(design.runs.loc[design.runs["included"], "run_id"]) == sorted(result.snapshot.run_ids)
    assert set(design.left_out["reason"]) == {"filtered out"} and len(design.left_out) == 4


def test_cli_fetch_takes_the_study_filter(live_wandb, _live_server, tmp_path):
    from tests.conftest import run_cli

    specs = D.sweep_specs(formats=("E4M3",), seeds=(1,))
    live_wandb.set_runs(D.records(specs))
    live_wandb.requests.clear()
    done = run_cli(["fetch", "--project", PROJECT, "--out", str(tmp_path / "snap"),
                    "--filters", json.dumps(STUDY)], _live_server[1])
    assert done.returncode == 0 and "2 runs (2 fetched, 0 reused unchanged)" in done.stdout, done.stderr
    (listing,) = [v for op, v in live_wandb.requests if op == "Runs"]
    assert json.loads(listing["filters"])["$and"][1] == STUDY
