"""``altgrad-docs bench``: train the grid, then snapshot it through the offline ingest path.

    altgrad-docs bench [--out build/bench] [--snapshot data/bundled] [--workers 2]
                       [--formats E4M3,E5M2,...] [--seeds 0,1,2] [--storage fp32_master,quantized]
                       [--lrs 0.003,0.01,0.03] [--quick]

``--out`` is a working folder: its ``wandb/`` and ``checkpoints/`` are emptied first, then
hold the offline runs and failure reports. The snapshot is made by the data layer's own
reader (``sources.offline``) and writer (``snapshot.write_snapshot``), exactly as
``altgrad-docs fetch --offline-dir`` would make it, plus a ``bench`` entry in the manifest.
``--quick`` trains one paired E5M2 run per optimizer for 30 steps (FP32 master, the main
learning rate). ``--seeds`` gives every cell the same seeds (default: 6 in the main cell, 2
elsewhere). Only the full grid writes ``data/bundled`` by default: with ``--quick``,
``--formats``, ``--seeds``, ``--storage`` or ``--lrs`` the snapshot goes to ``<out>/snapshot``
unless ``--snapshot`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

try:
    import torch  # noqa: F401 - the bench's one optional dependency
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit("altgrad-docs bench needs torch, which is not installed. --> Do: pip install "
                     "'altgrad-docs[bench]' (CPU-only: pip install torch==2.13.0 first)") from exc

from .grid import (ALL_FORMATS, LEARNING_RATES, MAIN_SEEDS, SIDE_SEEDS, full_grid, grid_configs, run_grid,
                   sandboxed)
from .train import WEIGHT_STORAGE, RunConfig

REGENERATE = "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) altgrad-docs bench --workers 2"
QUICK_BASE = RunConfig(max_steps=30, log_interval=5, eval_interval=10, diagnostic_interval=10)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="altgrad-docs bench", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="build/bench", help="working folder for wandb/ and checkpoints/")
    p.add_argument("--snapshot", default=None, help="snapshot folder (default data/bundled for "
                   "the full grid, <out>/snapshot with --quick, --formats or --seeds)")
    p.add_argument("--quick", action="store_true", help="2 runs x 30 steps, for tests")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--formats", type=_csv, default=None, help=f"subset of {','.join(ALL_FORMATS)}")
    p.add_argument("--seeds", type=lambda t: [int(s) for s in _csv(t)], default=None)
    p.add_argument("--storage", type=_csv, default=None, help=f"subset of {','.join(WEIGHT_STORAGE)}")
    p.add_argument("--lrs", type=lambda t: [float(s) for s in _csv(t)], default=None,
                   help=f"peak learning rates (default {','.join(f'{x:g}' for x in LEARNING_RATES)})")
    return p


def _configs(args: argparse.Namespace) -> list[RunConfig]:
    formats = args.formats or (["E5M2"] if args.quick else list(ALL_FORMATS))
    unknown = [f for f in formats if f.upper() not in ALL_FORMATS]
    if unknown:
        raise SystemExit(f"altgrad-docs bench: unknown format(s) {', '.join(unknown)}. "
                         f"--> Do: choose from {','.join(ALL_FORMATS)}")
    formats = [f.upper() for f in formats]
    if args.quick:
        return grid_configs(formats, args.seeds or [0], base=QUICK_BASE)
    storages = args.storage or list(WEIGHT_STORAGE)
    bad = [s for s in storages if s not in WEIGHT_STORAGE]
    if bad:
        raise SystemExit(f"altgrad-docs bench: unknown weight storage {', '.join(bad)}. "
                         f"--> Do: choose from {','.join(WEIGHT_STORAGE)}")
    configs = full_grid(formats, args.seeds or MAIN_SEEDS, args.seeds or SIDE_SEEDS,
                        args.lrs or LEARNING_RATES)
    return [c for c in configs if c.weight_storage in storages]


def _bench_manifest(configs: list[RunConfig], argv: list[str], seconds: float, workers: int,
                    load: tuple[float, float]) -> dict:
    base = configs[0]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"bench": {
        "command": "altgrad-docs bench " + " ".join(argv),
        "regenerate": REGENERATE,
        "runs": len(configs),
        "workers": workers,
        "grid_wall_time_s": round(seconds, 1),
        "grid_cpu_time_s": round(children.ru_utime + children.ru_stime, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"start": round(load[0], 2), "end": round(load[1], 2)},
        "history": (f"one row every {base.log_interval} steps and at the last step; stall/ and "
                    "flips/ cover all steps since the previous row; val_loss every "
                    f"{base.eval_interval} steps, diagnostics every {base.diagnostic_interval}"),
        "cells": _cells(configs),
        "quantised": "every weight (nanoGPT names, no biases), round-to-nearest-even, "
                     "straight-through gradient, no per-tensor scaling; activations and "
                     "gradients stay FP32. weight_storage fp32_master: the forward pass sees the "
                     "rounding of FP32 master weights; quantized: no master copy, each update "
                     "is written back as the format's rounding",
        "failure_detection": f"NaN/Inf for nan_patience {base.nan_patience} step(s); divergence: "
                             f"loss above its step-0 value for {base.divergence_window} steps; "
                             f"stagnation: smoothed loss not {base.stagnation_min_delta:g} "
                             f"(relative) below its best for {base.stagnation_window} steps while "
                             f"the bit-stall rate over them is above {base.bit_stall_threshold:g}",
        "baseline": "BF16: FP32 master weights rounded to bfloat16 in the forward pass "
                    "(use_fp8 false)",
        "docs": "docs/bench.md",
    }}


def _cells(configs: list[RunConfig]) -> list[dict]:
    """Seeds per (weight storage, learning rate) cell, in grid order."""
    cells: dict[tuple[str, float], set[int]] = {}
    for c in configs:
        cells.setdefault((c.weight_storage, c.learning_rate), set()).add(c.seed)
    return [{"weight_storage": s, "learning_rate": lr, "seeds": sorted(seeds)}
            for (s, lr), seeds in cells.items()]


def make_snapshot(out: Path, snapshot: Path, extra: dict) -> Path:
    """Offline runs + failure reports -> snapshot, through the data layer's reader and writer."""
    from altgrad_docs.snapshot import write_snapshot
    from altgrad_docs.sources.offline import find_failure_reports, read_offline_runs

    records = list(read_offline_runs(out / "wandb"))
    reports = find_failure_reports(out / "checkpoints", [r.run_id for r in records])
    newest = max((r.meta.get("updated_at") or "" for r in records), default="") or None
    source = {"kind": "offline", "path": "wandb", "checkpoints": "checkpoints", "producer": "altgrad-docs bench"}
    return write_snapshot(records, snapshot, source=source, fetched_at=newest,
                          failure_reports=reports, extra=extra)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    out = Path(args.out)
    partial = args.quick or args.formats or args.seeds or args.storage or args.lrs
    snapshot = Path(args.snapshot or (out / "snapshot" if partial else "data/bundled"))
    configs = _configs(args)
    for sub in ("wandb", "checkpoints"):
        shutil.rmtree(out / sub, ignore_errors=True)
    print(f"bench: {len(configs)} runs in {args.workers} worker(s), cpu count {os.cpu_count()}, "
          f"output {out}", file=sys.stderr)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    outcomes = run_grid(configs, out, workers=args.workers)
    seconds, load_end = time.perf_counter() - started, os.getloadavg()[0]
    collapsed = [f"{o.run_id} (step {o.collapse_step})" for o in outcomes if o.collapsed]
    print(f"bench: grid done in {seconds:.1f}s; collapsed: {', '.join(collapsed) or 'none'}",
          file=sys.stderr)
    extra = _bench_manifest(configs, argv, seconds, args.workers, (load_start, load_end))
    with sandboxed(out):
        path = make_snapshot(out, snapshot, extra)
    print(f"bench: snapshot written to {path}", file=sys.stderr)
    return 0
