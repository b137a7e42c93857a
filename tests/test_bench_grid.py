"""The bench end to end: worker processes -> wandb offline runs -> snapshot -> DataFrames."""

import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from altgrad_docs import ExperimentDataLoader
from altgrad_docs.bench.cli import QUICK_BASE, main
from altgrad_docs.bench.grid import grid_configs, run_one, sandboxed
from altgrad_docs.bench.train import train
from altgrad_docs.snapshot import open_snapshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["--quick", "--out", str(out), "--workers", "2"]) == 0
    return out


def test_quick_grid_gives_a_snapshot_the_loader_reads(quick):
    snap = open_snapshot(quick / "snapshot")
    assert snap.run_ids == ["e5m2adamw-fp32-lr0.01-s0", "e5m2manifold-fp32-lr0.01-s0"]
    assert snap.manifest["source"]["kind"] == "offline"
    assert "one row every 5 steps" in snap.manifest["bench"]["history"]
    loader = ExperimentDataLoader(snapshot=quick / "snapshot")
    runs = loader.get_format_comparison_runs()
    assert runs["format"].tolist() == ["E5M2", "E5M2"]
    assert runs["state"].tolist() == ["finished", "finished"]
    assert runs["steps"].tolist() == [30, 30]
    pair = loader.get_manifold_comparison_runs("E5M2")
    assert sorted(pair["optimizer"]) == ["AdamW", "ManifoldAdamW"]
    hist = loader.get_run_history("e5m2adamw-fp32-lr0.01-s0", ["loss", "stall/lm_head.weight", "flips/transformer.wte.weight"])
    assert hist["_step"].tolist() == [0, 5, 10, 15, 20, 25, 29]
    assert hist["loss"].notna().all() and hist["stall/lm_head.weight"].between(0, 1).all()
    config = loader.runs()["config_json"].iloc[1]
    assert '"manifold_mantissa_bits":2' in config and '"use_fp8":true' in config
    assert '"weight_storage":"fp32_master"' in config and '"learning_rate":0.01' in config


def test_logged_metrics_are_bit_for_bit_what_a_fresh_process_computes(quick):
    """Same config, same machine -> the same numbers, through wandb and the snapshot."""
    snap = open_snapshot(quick / "snapshot")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for cfg in grid_configs(["E5M2"], [0], base=QUICK_BASE):
            rows = {}
            train(cfg, lambda row, step: rows.setdefault(step, row))
            hist = snap.history(cfg.run_id).set_index("_step")
            assert sorted(rows) == hist.index.tolist()
            for step, row in rows.items():
                for key, value in row.items():
                    got = hist.at[step, key]
                    assert got == value or (math.isnan(got) and math.isnan(value)), (cfg.run_id, step, key)
    finally:
        torch.set_num_threads(threads)


def test_a_collapsed_run_is_failed_in_wandb_with_its_report(tmp_path):
    from altgrad_docs.bench.cli import make_snapshot

    cfg = replace(QUICK_BASE, fp8_format="E5M2", learning_rate=math.inf, warmup_steps=1)
    with sandboxed(tmp_path):
        import wandb

        outcome = run_one(asdict(cfg), str(tmp_path))
        wandb.teardown()  # run.finish may return before the exit record is on disk
        assert outcome.collapsed and outcome.collapse_step == 1
        snap = open_snapshot(make_snapshot(tmp_path, tmp_path / "snap", extra={}))
    runs = snap.runs()
    assert runs["state"].tolist() == ["failed"] and runs["status"].tolist() == ["failed"]
    reports = snap.failure_reports(cfg.run_id)
    assert len(reports) == 1 and reports[0].name.startswith("E5M2_")
    assert "| Collapse Step | 1 |" in reports[0].read_text()
    assert np.isnan(snap.history(cfg.run_id, ["loss"])["loss"].iloc[-1])


class _Enough(Exception):
    pass


@pytest.mark.parametrize("cell", ["main", "quantized, top learning rate"])
def test_bundled_snapshot_is_what_this_code_trains(cell):
    """One bundled run per cell, retrained here for its first 100 steps (or until it failed),
    matches the committed history bit for bit. If this fails after a change to the bench,
    regenerate data/bundled (the command is in docs/bench.md)."""
    from pathlib import Path

    from altgrad_docs.bench.grid import LEARNING_RATES, MAIN_LR
    from altgrad_docs.bench.train import RunConfig

    snap = open_snapshot(Path(__file__).parents[1] / "data" / "bundled")
    if cell == "main":
        cfg = RunConfig(fp8_format="E4M3", use_manifold_aware=True, seed=1, learning_rate=MAIN_LR)
    else:
        cfg = RunConfig(fp8_format="E5M2", weight_storage="quantized", seed=1,
                        learning_rate=LEARNING_RATES[-1])
    rows = {}

    def log(row, step):
        rows[step] = row
        if step >= 100:
            raise _Enough  # the rest of the run costs time and adds nothing to the check

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, log)
    except _Enough:
        pass
    finally:
        torch.set_num_threads(threads)
    hist = snap.history(cfg.run_id).set_index("_step")
    assert sorted(rows) == [s for s in hist.index.tolist() if s <= 100]
    for step, row in rows.items():
        for key, value in row.items():
            got = hist.at[step, key]
            assert got == value or (math.isnan(got) and math.isnan(value)), (step, key)
