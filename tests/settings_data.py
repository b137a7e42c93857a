"""A small study with six settings (learning_rate x weight_storage), for the figure tests:
formats E4M3, E5M2, E3M4 and BF16 x AdamW / ManifoldAdamW x learning_rate {0.001, 0.01} x
weight_storage {fp32_master, quantized, bf16_master}, seed 1 (48 runs of 100 steps, built
from design_data's histories). Its per-format figures have 3 x 6 = 18 panels: more than one
figure should hold."""

from __future__ import annotations

from pathlib import Path

from altgrad_docs.snapshot import write_snapshot
from tests import design_data as D

FORMATS = ("E4M3", "E5M2", "E3M4", "BF16")
LRS = (0.001, 0.01)
STORAGE = ("fp32_master", "quantized", "bf16_master")
SEEDS = (1,)
BASE = {"E4M3": 2.0, "E5M2": 2.1, "E3M4": 2.05, "BF16": 1.9}


def specs() -> list[dict]:
    out = []
    for fmt in FORMATS:
        for manifold in (False, True):
            for lr in LRS:
                for k, storage in enumerate(STORAGE):
                    for seed in SEEDS:
                        val = BASE[fmt] + D.LR_OFFSET[lr] + 0.05 * k + D.SEED_OFFSET[seed] + (
                            D.DELTA[lr][seed] if manifold else 0.0)
                        run_id = f"{fmt.lower()}{'m' if manifold else 'a'}{'hi' if lr == 0.01 else 'lo'}{storage[:2]}s{seed}"
                        out.append({"run_id": run_id, "format": fmt, "manifold": manifold, "lr": lr, "seed": seed,
                                    "val": round(val, 10), "train": round(val - 0.1, 10), "steps": D.STEPS,
                                    "state": "finished", "tags": [], "config": {"weight_storage": storage}})
    return out


def build_six_setting_snapshot(out: Path) -> Path:
    return write_snapshot(D.records(specs()), Path(out), source={"kind": "fixture"},
                          fetched_at="2026-01-15T12:00:00+00:00")
