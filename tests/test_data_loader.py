"""ExperimentDataLoader: the plan's methods and columns, whatever the source."""

import math

import numpy as np
import pandas as pd
import pytest

from altgrad_docs import ExperimentDataLoader
from altgrad_docs.runs import RUN_COLUMNS, RunRecord
from altgrad_docs.snapshot import write_snapshot
from tests.conftest import run_cli, wandb_env
from tests.fake_wandb import ENTITY

PLAN_FORMAT = ["format", "run_id", "run_url", "state", "steps", "final_loss", "best_loss",
               "bit_stall_final", "overflow_final"]
PLAN_MANIFOLD = ["optimizer", "manifold_aware", "run_id", "final_loss", "best_loss", "bit_stall_final"]


def _rec(run_id, fmt, manifold, state="finished", seed=0, old_names=False):
    stall = "bit_stall_rate" if old_names else "quantization/bit_stall_rate"
    return RunRecord(
        meta={"run_id": run_id, "name": run_id, "state": state, "url": f"https://wandb.ai/e/p/runs/{run_id}",
              "created_at": f"2026-01-01T00:00:0{len(run_id) % 10}Z", "updated_at": "2026-01-01T01:00:00Z"},
        config={"fp8_format": fmt, "use_fp8": True, "use_manifold_aware": manifold, "seed": seed},
        summary={"loss": 2.0, stall: 0.3, "_step": 2},
        history=pd.DataFrame({"_step": [0, 1, 2], "loss": [4.0, 3.0, 2.0], stall: [0.1, 0.2, 0.3]}),
    )


RECORDS = [_rec("a1", "E5M2", False), _rec("a2", "E5M2", True, seed=1), _rec("b1", "E4M3", False, "crashed"),
           _rec("c1", "E5M2", True, "killed"), _rec("d1", "FP8_E3M4", False, old_names=True),
           _rec("e1", "E5M2", False, "running")]


@pytest.fixture(params=["snapshot", "api"])
def loader(request, tmp_path):
    if request.param == "snapshot":
        return ExperimentDataLoader(snapshot=write_snapshot(RECORDS, tmp_path / "s", source={"kind": "test"}))
    live = request.getfixturevalue("live_wandb")
    live.set_runs(RECORDS)
    return ExperimentDataLoader(f"{ENTITY}/altgrad")


def test_format_comparison_columns_and_default_states(loader):
    df = loader.get_format_comparison_runs()
    assert list(df.columns)[:9] == PLAN_FORMAT
    assert sorted(df["run_id"]) == ["a1", "a2", "b1", "d1"]  # no killed, no running
    assert df.set_index("run_id").loc["d1", "format"] == "E3M4"
    assert df.set_index("run_id").loc["d1", "bit_stall_final"] == 0.3  # old unprefixed name
    assert sorted(loader.get_format_comparison_runs(["fp8_e5m2"])["run_id"]) == ["a1", "a2"]
    assert loader.get_format_comparison_runs(["E7M0"]).empty


def test_manifold_comparison(loader):
    df = loader.get_manifold_comparison_runs()
    assert list(df.columns)[:6] == PLAN_MANIFOLD
    assert df[["optimizer", "run_id"]].values.tolist() == [["AdamW", "a1"], ["ManifoldAdamW", "a2"]]
    assert loader.get_manifold_comparison_runs("E4M3")["run_id"].tolist() == ["b1"]


def test_run_table_and_states(loader):
    table = loader.runs(states=["killed", "running", "finished"])
    assert list(table.columns) == list(RUN_COLUMNS)
    assert sorted(table["run_id"]) == ["a1", "a2", "c1", "d1", "e1"]


def test_history_missing_metrics_are_nan_and_old_names_fill_in(loader):
    h = loader.get_run_history("d1", ["loss", "quantization/bit_stall_rate", "val_loss"])
    assert list(h.columns) == ["_step", "loss", "quantization/bit_stall_rate", "val_loss"]
    assert h["quantization/bit_stall_rate"].tolist() == [0.1, 0.2, 0.3]
    assert h["val_loss"].isna().all() and h["loss"].tolist() == [4.0, 3.0, 2.0]
    assert set(loader.get_run_history("a1").columns) >= {"_step", "loss", "quantization/bit_stall_rate"}


def test_offline_source_has_the_same_interface(offline_runs):
    loader = ExperimentDataLoader(offline_dir=offline_runs["finished"])
    df = loader.get_format_comparison_runs()
    assert df["format"].tolist() == ["E5M2"] and df["final_loss"].tolist() == [0.0]
    h = loader.get_run_history(df["run_id"][0], ["loss", "missing"])
    assert h["loss"].tolist() == [4.0, 3.0, 2.0, 1.0, 0.0] and h["missing"].isna().all()


def test_wandb_api_is_what_the_loader_uses():
    from pathlib import Path
    import altgrad_docs.sources.wandb_api as wa

    assert "wandb.Api(" in Path(wa.__file__).read_text()


def test_cli_snapshot_info_and_offline_fetch(offline_runs, tmp_path):
    env = wandb_env(tmp_path / "w")
    done = run_cli(["fetch", "--offline-dir", str(offline_runs["raised"]), "--out", str(tmp_path / "s")], env)
    assert done.returncode == 0 and "1 runs (1 fetched, 0 reused unchanged)" in done.stdout, done.stderr
    info = run_cli(["snapshot", "info", str(tmp_path / "s")], env)
    assert info.returncode == 0 and "runs       1 (failed 1)" in info.stdout
    assert '"kind": "offline"' in info.stdout
    missing = run_cli(["snapshot", "info", str(tmp_path / "nope")], env)
    assert missing.returncode == 2 and "altgrad-docs fetch" in missing.stderr


def test_unknown_run_is_a_key_error_naming_it(loader):
    with pytest.raises(KeyError, match="nosuchrun"):
        loader.get_run_history("nosuchrun")
