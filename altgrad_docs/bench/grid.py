"""The grid: formats x optimizers x weight storage x learning rate x seeds, each run logged
with wandb in offline mode.

The main comparison (FP32 master weights at the middle learning rate) has ``MAIN_SEEDS``
paired seeds in every format x optimizer cell; every other (storage, learning rate) cell has
``SIDE_SEEDS``, the first seeds of the same list, so each seed pairs across all conditions.

Runs go to worker processes (spawned, one torch thread each, a fixed share of the runs each). Every worker first
points wandb's folders, ``TMPDIR`` and the host names wandb knows of at the output folder and
loopback, so nothing leaves the output folder and no network address is ever contacted.
A run whose loss or gradient norm turns NaN/Inf stops, writes its failure report and finishes
its W&B run with exit code 1 (state ``failed``).
"""

from __future__ import annotations

import math
import os
import queue
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

from altgrad_docs.formats import FORMAT_NAMES

from .quant import BASELINE
from .train import FP32_MASTER, WEIGHT_STORAGE, RunConfig

PROJECT = "altgrad"
ALL_FORMATS: tuple[str, ...] = (*FORMAT_NAMES, BASELINE)
SEEDS: tuple[int, ...] = (0, 1, 2)
MAIN_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
SIDE_SEEDS: tuple[int, ...] = (0, 1)
#: Peak learning rates. 1.5 is the lowest rate tried at which some formats diverge (trial runs,
#: docs/bench.md); 0.1, the middle, is the main comparison's.
LEARNING_RATES: tuple[float, ...] = (0.01, 0.1, 1.5)
MAIN_LR = 0.1
OFFLINE = "http://127.0.0.1:9"  # loopback discard port: wandb never needs it offline


def grid_configs(formats=ALL_FORMATS, seeds=SEEDS, base: RunConfig | None = None) -> list[RunConfig]:
    """Every (format, optimizer, seed) of one (storage, learning rate) cell, in a fixed order."""
    base = base or RunConfig()
    return [
        replace(base, fp8_format=f, use_manifold_aware=m, seed=s)
        for f in formats
        for m in (False, True)
        for s in seeds
    ]


def full_grid(formats=ALL_FORMATS, main_seeds=MAIN_SEEDS, side_seeds=SIDE_SEEDS,
              learning_rates=LEARNING_RATES, base: RunConfig | None = None) -> list[RunConfig]:
    """The bundled design: every weight storage x learning rate, ``main_seeds`` in the main
    cell (FP32 master, ``MAIN_LR``) and ``side_seeds`` elsewhere; a fixed order."""
    base = base or RunConfig()
    configs = []
    for storage in WEIGHT_STORAGE:
        for lr in learning_rates:
            main = storage == FP32_MASTER and lr == MAIN_LR
            cell = replace(base, weight_storage=storage, learning_rate=lr)
            configs += grid_configs(formats, main_seeds if main else side_seeds, base=cell)
    return configs


def sandbox_env(out: Path) -> dict[str, str]:
    """Environment that keeps wandb quiet, offline and inside ``out``."""
    tmp = out / ".tmp"
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_BASE_URL": OFFLINE,
        "WANDB_DIR": str(out),
        "WANDB_CACHE_DIR": str(tmp / "cache"),
        "WANDB_CONFIG_DIR": str(tmp / "config"),
        "WANDB_DATA_DIR": str(tmp / "data"),
        "WANDB_ARTIFACT_DIR": str(tmp / "artifacts"),
        "TMPDIR": str(tmp),
    }


@contextmanager
def sandboxed(out: Path) -> Iterator[None]:
    """Set :func:`sandbox_env` in this process for the duration, then restore it."""
    import tempfile

    env = sandbox_env(out)
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in env}
    saved_tempdir = tempfile.tempdir
    os.environ.update(env)
    tempfile.tempdir = env["TMPDIR"]
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _worker_init(out: str) -> None:
    import tempfile

    import torch

    env = sandbox_env(Path(out))
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    tempfile.tempdir = os.environ["TMPDIR"]
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def _wandb_settings():
    import wandb

    return wandb.Settings(
        mode="offline", silent=True, console="off", disable_git=True, save_code=False,
        x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True,
        x_stats_coreweave_metadata_base_url=OFFLINE, base_url=OFFLINE,
    )


@dataclass
class RunOutcome:
    run_id: str
    fp8_format: str
    optimizer: str
    weight_storage: str
    learning_rate: float
    seed: int
    steps_done: int
    final_loss: float
    collapsed: bool
    collapse_step: int | None
    seconds: float


def run_one(cfg_dict: dict, out: str) -> RunOutcome:
    """Train one config in this (worker) process and log it to an offline W&B run."""
    import wandb

    from .failure_report import write_failure_report
    from .model import SortTask
    from .train import train

    started = time.perf_counter()
    cfg = RunConfig(**cfg_dict)
    config = cfg.wandb_config(SortTask())
    run = wandb.init(project=PROJECT, id=cfg.run_id, name=cfg.run_name, config=config,
                     dir=out, tags=["bench", cfg.fp8_format, cfg.optimizer, cfg.weight_storage],
                     group=f"{cfg.fp8_format}-{cfg.optimizer}", settings=_wandb_settings())
    try:
        result = train(cfg, lambda row, step: run.log(row, step=step))
        run.summary["best_loss"] = result.best_loss if math.isfinite(result.best_loss) else math.nan
        if result.collapsed:
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            write_failure_report(Path(out) / "checkpoints", cfg, result, config, now)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish(exit_code=1 if result.collapsed else 0)
    return RunOutcome(cfg.run_id, cfg.fp8_format, cfg.optimizer, cfg.weight_storage,
                      cfg.learning_rate, cfg.seed, result.steps_done,
                      result.final_loss, result.collapsed, result.collapse_step,
                      time.perf_counter() - started)


def _worker(out: str, cfg_dicts: list[dict], results) -> None:
    """One worker process: its share of the runs, then a wandb teardown, which waits until
    every record is in the run files (``run.finish`` alone may return before that, and
    multiprocessing children skip atexit handlers)."""
    _worker_init(out)
    import traceback

    import wandb

    try:
        for cfg in cfg_dicts:
            try:
                results.put(("ok", run_one(cfg, out)))
            except Exception:  # reported to the parent, which fails the grid
                results.put(("error", f"{RunConfig(**cfg).run_id}: {traceback.format_exc()}"))
    finally:
        wandb.teardown()
        results.put(("done", None))


def run_grid(configs: list[RunConfig], out: Path, workers: int = 2) -> list[RunOutcome]:
    """Run every config in ``workers`` processes (config i goes to worker i mod workers);
    one progress line per finished run goes to stderr."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = get_context("spawn")
    results = ctx.Queue()
    shares = [[asdict(c) for c in configs[i::workers]] for i in range(workers)]
    procs = [ctx.Process(target=_worker, args=(str(out), share, results)) for share in shares if share]
    for proc in procs:
        proc.start()
    outcomes, errors = _collect(results, procs, len(configs))
    for proc in procs:
        proc.join()
    if errors:
        raise RuntimeError("bench runs failed with an exception (not a NaN collapse):\n" + "\n".join(errors))
    return sorted(outcomes, key=lambda o: o.run_id)


def _collect(results, procs, n_runs: int) -> tuple[list[RunOutcome], list[str]]:
    """Outcomes and errors from the workers until each said "done" (or all are dead)."""
    outcomes, errors, done = [], [], 0
    while done < len(procs):
        try:
            kind, item = results.get(timeout=5)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):  # killed without saying goodbye
                errors.append(f"a worker process died (exit codes {[p.exitcode for p in procs]}); "
                              "its remaining runs are missing")
                break
            continue
        if kind == "done":
            done += 1
        elif kind == "error":
            errors.append(item)
        else:
            outcomes.append(item)
            _progress(len(outcomes), n_runs, item)
    return outcomes, errors


def _progress(i: int, n: int, o: RunOutcome) -> None:
    end = f"failed at step {o.collapse_step}" if o.collapsed else f"final loss {o.final_loss:.4f}"
    print(f"[{i}/{n}] {o.fp8_format:5s} {o.optimizer:13s} {o.weight_storage:11s} "
          f"lr {o.learning_rate:<6g} seed {o.seed}: {end}, "
          f"{o.steps_done} steps, {o.seconds:.1f}s", file=sys.stderr, flush=True)
