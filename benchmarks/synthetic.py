"""Synthetic but realistic runs for scale, memory and fetch benchmarks.

:func:`synthetic_records` yields :class:`~altgrad_docs.runs.RunRecord` objects shaped like the
AltGrad bench's W&B runs (data contract): the eight FP8 formats E0M7..E7M0 plus a BF16
baseline, AdamW and ManifoldAdamW, several seeds per condition, metric names from the
contract (``loss``, ``val_loss``, ``quantization/*``, ``stall/<param>``, ...) and failed runs
whose loss goes NaN and that stop a few steps later. Everything is drawn from the one
``numpy.random.Generator`` passed in, so the same generator state gives the same runs.

Example::

    import numpy as np
    from benchmarks.synthetic import synthetic_records
    for rec in synthetic_records(1000, 10_000, 20, np.random.default_rng(0)):
        ...
"""

from __future__ import annotations

import math
import string
from datetime import datetime, timedelta, timezone
from typing import Iterator

import numpy as np
import pandas as pd

from altgrad_docs.runs import RunRecord

FORMATS = ("E0M7", "E1M6", "E2M5", "E3M4", "E4M3", "E5M2", "E6M1", "E7M0", "BF16")
OPTIMIZERS = (False, True)  # use_manifold_aware
#: How likely a run of each format collapses (NaN loss); the extremes collapse most.
FAIL_PROBABILITY = {"E0M7": 0.6, "E1M6": 0.3, "E2M5": 0.1, "E3M4": 0.05, "E4M3": 0.05,
                    "E5M2": 0.1, "E6M1": 0.4, "E7M0": 0.9, "BF16": 0.0}
#: Final-loss floor per format (nats): the mid formats train best.
LOSS_FLOOR = {"E0M7": 3.2, "E1M6": 2.6, "E2M5": 2.0, "E3M4": 1.7, "E4M3": 1.6,
              "E5M2": 1.65, "E6M1": 2.2, "E7M0": 3.5, "BF16": 1.5}

PARAMS = tuple(
    [f"transformer.h.{i}.attn.c_attn.weight" for i in range(4)]
    + [f"transformer.h.{i}.mlp.c_fc.weight" for i in range(4)]
    + ["transformer.wte.weight", "lm_head.weight"]
)
#: Metric keys in the order they are added as n_metrics grows.
METRIC_ORDER = (
    "loss", "val_loss", "quantization/bit_stall_rate", "quantization/overflow_rate",
    "grad_norm", "learning_rate", "quantization/underflow_rate", "perplexity",
    "stall/" + PARAMS[0], "stall/" + PARAMS[4], "stall/" + PARAMS[8], "flips/" + PARAMS[0],
    "throughput_tokens_sec", "step_time_ms", "bit_position/mean", "bit_position/std",
    "diagnostics/stiffness_mean", "diagnostics/grid_error_mean",
    "stall/" + PARAMS[1], "stall/" + PARAMS[5], "stall/" + PARAMS[9], "flips/" + PARAMS[4],
) + tuple(f"stall/{p}" for p in PARAMS[2:4] + PARAMS[6:8])

BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
_ID_CHARS = np.array(list(string.ascii_lowercase + string.digits))


def synthetic_records(
    n_runs: int,
    n_steps: int,
    n_metrics: int,
    rng: np.random.Generator,
    *,
    entity: str = "bench",
    project: str = "altgrad",
    fail_scale: float = 1.0,
) -> Iterator[RunRecord]:
    """Yield ``n_runs`` runs of up to ``n_steps`` history rows and ``n_metrics`` metrics.

    Conditions (format x optimizer) cycle with the run index; the seed is the cycle number,
    so runs of one seed are paired across conditions. ``fail_scale`` multiplies every
    format's collapse probability (0 = no failed runs). Failed runs end 10 steps after their
    loss turns NaN, so their history is shorter than ``n_steps``.
    """
    if not 1 <= n_metrics <= len(METRIC_ORDER):
        raise ValueError(f"n_metrics must be 1..{len(METRIC_ORDER)}, got {n_metrics}")
    keys = METRIC_ORDER[:n_metrics]
    conditions = [(f, m) for f in FORMATS for m in OPTIMIZERS]
    seen: set[str] = set()
    for index in range(n_runs):
        fmt, manifold = conditions[index % len(conditions)]
        seed = index // len(conditions)
        run_id = _new_id(rng, seen)
        collapse = _collapse_step(fmt, n_steps, rng, fail_scale)
        yield _record(index, run_id, fmt, manifold, seed, keys, n_steps, collapse, rng,
                      entity, project)


def _new_id(rng: np.random.Generator, seen: set[str]) -> str:
    while True:
        run_id = "".join(rng.choice(_ID_CHARS, size=8))
        if run_id not in seen:
            seen.add(run_id)
            return run_id


def _collapse_step(fmt: str, n_steps: int, rng: np.random.Generator, scale: float) -> int | None:
    if rng.random() >= FAIL_PROBABILITY[fmt] * scale or n_steps < 20:
        return None
    return int(rng.integers(n_steps // 10, n_steps - 10))


def _curves(keys: tuple[str, ...], fmt: str, n_steps: int, collapse: int | None,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every metric column of one run as float64 arrays (vectorised, no per-row Python)."""
    length = n_steps if collapse is None else collapse + 10
    step = np.arange(length, dtype=np.float64)
    tau = max(n_steps / 6.0, 1.0)
    floor = LOSS_FLOOR[fmt] + rng.normal(0, 0.03)
    loss = floor + (10.8 - floor) * np.exp(-step / tau) + rng.normal(0, 0.05, length)
    stall_base = {"E0M7": 0.05, "E7M0": 0.9, "E6M1": 0.6, "BF16": 0.0}.get(fmt, 0.2)
    out: dict[str, np.ndarray] = {}
    for key in keys:
        if key == "loss":
            col = loss
        elif key == "val_loss":
            col = loss + 0.05 + rng.normal(0, 0.02, length)
        elif key == "perplexity":
            col = np.where(loss >= 20, np.inf, np.exp(np.minimum(loss, 20)))
        elif key == "learning_rate":
            col = 6e-4 * np.minimum(1.0, (step + 1) / 100) * (0.5 + 0.5 * np.cos(np.pi * step / max(n_steps, 1)))
        elif key == "grad_norm":
            col = np.abs(rng.lognormal(0, 0.3, length)) * (1 + 3 * np.exp(-step / tau))
        elif key.startswith(("quantization/", "stall/")):
            scale = 0.01 if "overflow" in key or "underflow" in key else 1.0
            col = np.clip(scale * (stall_base + rng.normal(0, 0.02, length)), 0, 1)
        elif key.startswith("flips/"):
            col = np.floor(rng.poisson(1000 * (1 - stall_base) + 1, length)).astype(np.float64)
        else:
            col = rng.normal(100.0, 5.0, length)
        out[key] = np.asarray(col, dtype=np.float64)
    if collapse is not None:
        for key in ("loss", "val_loss", "grad_norm"):
            if key in out:
                out[key][collapse:] = np.nan
        if "perplexity" in out:
            out["perplexity"][collapse:] = np.inf
    return out


def _record(index: int, run_id: str, fmt: str, manifold: bool, seed: int, keys: tuple[str, ...],
            n_steps: int, collapse: int | None, rng: np.random.Generator,
            entity: str, project: str) -> RunRecord:
    cols = _curves(keys, fmt, n_steps, collapse, rng)
    length = len(next(iter(cols.values())))
    history = pd.DataFrame({"_step": np.arange(length, dtype=np.int64), **cols})
    summary = {k: float(v[-1]) for k, v in cols.items()}
    summary.update({"_step": length - 1, "_runtime": float(length) * 0.05})
    if "loss" in cols and np.isfinite(cols["loss"]).any():
        summary["best_loss"] = float(np.nanmin(np.where(np.isfinite(cols["loss"]), cols["loss"], np.nan)))
    created = BASE_TIME + timedelta(minutes=7 * index)
    updated = created + timedelta(seconds=math.ceil(length * 0.05))
    state = "finished" if collapse is None else ("failed" if rng.random() < 0.7 else "crashed")
    config = {
        "fp8_format": "E5M2" if fmt == "BF16" else fmt,
        "use_fp8": fmt != "BF16",
        "use_manifold_aware": manifold,
        "manifold_mantissa_bits": int(fmt[-1]) if fmt != "BF16" else 2,
        "seed": seed,
        "learning_rate": 6e-4,
        "batch_size": 64,
        "max_steps": n_steps,
        "warmup_steps": 100,
        "grad_clip": 1.0,
        "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 256, "vocab_size": 65,
    }
    optimizer = "ManifoldAdamW" if manifold else "AdamW"
    meta = {
        "run_id": run_id,
        "name": f"{fmt}-{optimizer}-s{seed}",
        "state": state,
        "url": f"https://wandb.ai/{entity}/{project}/runs/{run_id}",
        "entity": entity,
        "project": project,
        "group": f"{fmt}-{optimizer}",
        "tags": [fmt, optimizer],
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "updated_at": updated.isoformat().replace("+00:00", "Z"),
    }
    return RunRecord(meta=meta, config=config, summary=summary, history=history)
