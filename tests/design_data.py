"""Hand-built studies with a design beyond format x optimizer, for the design tests.

SWEEP: formats E4M3, E5M2 and BF16 x AdamW / ManifoldAdamW x learning_rate {0.001, 0.01} x
seeds 1-4, one run each (48 runs). Final val_loss of AdamW is

    base[format] + LR_OFFSET[lr] + SEED_OFFSET[seed]

and ManifoldAdamW adds DELTA[lr][seed]: worse at lr 0.001 (+0.10 on average), better at lr 0.01
(-0.20 on average). Pooling the two learning rates per seed would give a delta of about -0.05
that exists at neither. The final *train* loss ranks the formats the other way round
(TRAIN_OFFSET), so a table that used the wrong metric shows it.

Every config also holds bookkeeping that must not become a factor: run_name and checkpoint_dir
(unique per run), log_interval (differs by seed), launch_time (unique per run), and
manifold_mantissa_bits, which follows the format.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from altgrad_docs.formats import FORMATS
from altgrad_docs.runs import RunRecord, run_row, runs_frame

FORMATS_USED = ("E4M3", "E5M2", "BF16")
BASE = {"E4M3": 2.00, "E5M2": 2.10, "BF16": 1.90}
TRAIN_OFFSET = {"E4M3": -0.20, "E5M2": -0.50, "BF16": 0.0}  # train = val + offset: E5M2 < E4M3
LR_OFFSET = {0.001: 0.30, 0.01: 0.0}
SEED_OFFSET = {1: 0.00, 2: 0.02, 3: -0.01, 4: 0.01}
DELTA = {0.001: {1: 0.10, 2: 0.12, 3: 0.08, 4: 0.10}, 0.01: {1: -0.20, 2: -0.22, 3: -0.18, 4: -0.20}}
STEPS = 100
EVAL = 25


def man_bits(fmt: str) -> int:
    return FORMATS[fmt].man_bits if fmt in FORMATS else 7


def spec(fmt: str, manifold: bool, lr: float, seed: int, **extra: Any) -> dict[str, Any]:
    val = BASE[fmt] + LR_OFFSET[lr] + SEED_OFFSET[seed] + (DELTA[lr][seed] if manifold else 0.0)
    run_id = f"{fmt.lower()}{'m' if manifold else 'a'}{'hi' if lr == 0.01 else 'lo'}s{seed}"
    return {"run_id": run_id, "format": fmt, "manifold": manifold, "lr": lr, "seed": seed, "val": round(val, 10),
            "train": round(val + TRAIN_OFFSET[fmt], 10), "state": "finished", "steps": STEPS, "config": {},
            "tags": [], **extra}


def sweep_specs(formats: Iterable[str] = FORMATS_USED, seeds: Iterable[int] = (1, 2, 3, 4)) -> list[dict[str, Any]]:
    return [spec(f, m, lr, s) for f in formats for m in (False, True) for lr in (0.001, 0.01) for s in seeds]


def config(s: dict[str, Any]) -> dict[str, Any]:
    fmt = s["format"]
    cfg = {
        "fp8_format": fmt, "use_fp8": fmt in FORMATS, "use_manifold_aware": s["manifold"], "seed": s["seed"],
        "learning_rate": s["lr"], "batch_size": 32, "max_steps": STEPS, "eval_interval": EVAL,
        "manifold_mantissa_bits": man_bits(fmt), "run_name": f"run-{s['run_id']}",
        "checkpoint_dir": f"checkpoints/{s['run_id']}", "log_interval": 5 * s["seed"], "project": "altgrad",
        "launch_time": f"2026-01-01T00:00:{len(s['run_id']) + s['seed']:02d}-{s['run_id']}",
    }
    return cfg | s["config"]


def history(s: dict[str, Any]) -> pd.DataFrame:
    """A loss curve ending at the spec's train loss, val_loss every EVAL steps ending at val."""
    n = int(s["steps"])
    steps = np.arange(n)
    final, val = s["train"], s["val"]
    loss = final + 3.0 * np.exp(-steps / 10.0) - 3.0 * np.exp(-(n - 1) / 10.0)
    val_loss = np.full(n, np.nan)
    evals = steps[(steps > 0) & (steps % EVAL == 0)]
    val_loss[evals] = val + 2.0 * np.exp(-evals / 10.0) - 2.0 * np.exp(-evals[-1] / 10.0) if len(evals) else []
    if s["state"] == "failed":
        loss[-1] = np.nan
    return pd.DataFrame({"_step": steps, "loss": loss, "val_loss": val_loss,
                         "quantization/bit_stall_rate": np.full(n, 0.1 if s["manifold"] else 0.2)})


def record(s: dict[str, Any]) -> RunRecord:
    h = history(s)
    summary: dict[str, Any] = {"_step": int(s["steps"]) - 1, "loss": float(h["loss"].iloc[-1])}
    vals = h["val_loss"].dropna()
    if len(vals):
        summary["val_loss"] = float(vals.iloc[-1])
    name = f"{s['format']} {'manifold' if s['manifold'] else 'adamw'} lr={s['lr']} s{s['seed']}"
    meta = {"run_id": s["run_id"], "name": name, "state": s["state"], "project": "altgrad", "entity": "team",
            "tags": s["tags"], "url": f"https://wandb.ai/team/altgrad/runs/{s['run_id']}",
            "created_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T01:00:00"}
    return RunRecord(meta=meta, config=config(s), summary=summary, history=h)


def records(specs: list[dict[str, Any]]) -> list[RunRecord]:
    return [record(s) for s in specs]


def table(specs: list[dict[str, Any]]) -> pd.DataFrame:
    return runs_frame([run_row(r) for r in records(specs)])
