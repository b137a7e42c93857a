"""A tiny, deterministic snapshot for the site tests: a handful of runs, 40 steps each.

It holds both optimizers, two FP8 formats plus a BF16 baseline, a failed run whose loss
turns NaN (with a local failure report), and a run whose *name* is an HTML injection
attempt, so the escaping of user text can be checked end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from altgrad_docs.runs import RunRecord
from altgrad_docs.snapshot import write_snapshot

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_RUN_ID = "x55x55x5"
FAILED_RUN_ID = "f4i1ed00"
N_STEPS = 40
FETCHED_AT = "2026-01-15T12:00:00+00:00"

#: (run_id, name, format, manifold_aware, seed, state)
RUNS = [
    ("a1e4m3s1", "e4m3-adamw-s1", "E4M3", False, 1, "finished"),
    ("a2e4m3s2", "e4m3-adamw-s2", "E4M3", False, 2, "finished"),
    ("m1e4m3s1", "e4m3-manifold-s1", "E4M3", True, 1, "finished"),
    ("m2e4m3s2", "e4m3-manifold-s2", "E4M3", True, 2, "finished"),
    ("a1e5m2s1", "e5m2-adamw-s1", "E5M2", False, 1, "finished"),
    ("m1e5m2s1", "e5m2-manifold | s1", "E5M2", True, 1, "finished"),
    (FAILED_RUN_ID, "e7m0-adamw-s1", "E7M0", False, 1, "failed"),
    ("b1bf16s1", "bf16-adamw-s1", "BF16", False, 1, "finished"),
    (XSS_RUN_ID, XSS_NAME, "E5M2", False, 2, "finished"),
]

FAILURE_REPORT = """# Failure Report: E7M0 Experiment

## Summary

| Metric | Value |
|--------|-------|
| Format | E7M0 |
| Collapse Step | 30 |
| Collapse Reason | NaN/Inf loss |
| Final Loss | nan |
| Best Loss | 6.913204 |
| Total Steps | 30 / 40 |
| Duration | 3.7s |

## Collapse Analysis

### Gradient Sparsity

Fraction of near-zero gradients at collapse: **63.41%**
"""


#: What the failed run's offline log held beyond its metrics (sources/offline.py reads it):
#: its console output ends with the trainer's last words and an HTML injection attempt.
CONSOLE_LAST_WORDS = "Training stopped at step 30 due to alerts"
RUN_LOG = {
    "environment": {"host": "fixture-host", "python": "CPython 3.11.7", "os": "Linux"},
    "system": [{"time": 1.0, "cpu": 50.0, "proc.memory.rssMB": 400.0},
               {"time": 2.0, "cpu": 70.0, "proc.memory.rssMB": 420.0}],
    "console": ["Starting training...\n", "Step 29: loss=4.4\n", "<script>alert('console')</script>\n",
                f"\x1b[31m{CONSOLE_LAST_WORDS}\x1b[0m\n"],
}


def _history(rng: np.random.Generator, manifold: bool, fmt: str, failed: bool) -> pd.DataFrame:
    steps = np.arange(N_STEPS)
    floor = {"BF16": 2.0, "E4M3": 2.3, "E5M2": 2.6, "E7M0": 4.0}[fmt] - (0.1 if manifold else 0.0)
    loss = floor + 8.0 * np.exp(-steps / 10.0) + rng.normal(0, 0.02, N_STEPS)
    stall = np.clip(0.3 - 0.002 * steps + rng.normal(0, 0.01, N_STEPS), 0, 1)
    if fmt == "BF16":
        stall[:] = 0.0
    if failed:
        loss[30:] = np.nan
    return pd.DataFrame(
        {
            "_step": steps,
            "loss": loss,
            "val_loss": loss + 0.05,
            "grad_norm": 1.0 + rng.random(N_STEPS),
            "learning_rate": np.full(N_STEPS, 3e-4),
            "quantization/bit_stall_rate": stall,
            "quantization/overflow_rate": np.full(N_STEPS, 1e-4),
            "quantization/underflow_rate": np.full(N_STEPS, 1e-3),
        }
    )


def fixture_records(seed: int = 0) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for run_id, name, fmt, manifold, run_seed, state in RUNS:
        failed = state == "failed"
        history = _history(rng, manifold, fmt, failed)
        last = history.iloc[-1]
        config = {
            "use_fp8": fmt != "BF16",
            "fp8_format": fmt,
            "use_manifold_aware": manifold,
            "seed": run_seed,
            "learning_rate": 3e-4,
            "max_steps": N_STEPS,
            "batch_size": 8,
            "note": "<script>alert('config')</script> | *x*",
        }
        summary = {k: float(last[k]) for k in history.columns if k != "_step"}
        summary["_step"] = N_STEPS - 1
        run_log = RUN_LOG if failed else {}
        records.append(
            RunRecord(
                meta={**({"run_log": run_log} if run_log else {}),
                    "run_id": run_id,
                    "name": name,
                    "state": state,
                    "url": f"https://wandb.ai/altgrad-lab/altgrad/runs/{run_id}",
                    "entity": "altgrad-lab",
                    "project": "altgrad",
                    "created_at": "2026-01-10T00:00:00+00:00",
                    "updated_at": "2026-01-10T01:00:00+00:00",
                },
                config=config,
                summary=summary,
                history=history,
            )
        )
    return records


def build_fixture_snapshot(out: Path) -> Path:
    """Write the fixture snapshot to ``out`` (with the failed run's failure report)."""
    out = Path(out)
    report_dir = out.parent / "fixture_reports"
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / "E7M0_20260110_010000_failure_report.md"
    report.write_text(FAILURE_REPORT)
    return write_snapshot(
        fixture_records(),
        out,
        source={"kind": "fixture"},
        fetched_at=FETCHED_AT,
        failure_reports={FAILED_RUN_ID: [report]},
    )


# ---- a built fixture site, shared by the site and browser tests -------------------------
REPO = Path(__file__).resolve().parents[1]
_BUILT: dict[str, Path] = {}


def mkdocs_env(snapshot: Path, cache: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALTGRAD_", "SOURCE_DATE"))}
    env.update(ALTGRAD_SNAPSHOT=str(snapshot), ALTGRAD_CACHE_DIR=str(cache), MPLBACKEND="Agg",
               NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true")
    return env


def run_mkdocs_build(snapshot: Path, site_dir: Path, cache: Path):
    """``mkdocs build --strict`` at the repo root in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    return subprocess.run(cmd, cwd=REPO, env=mkdocs_env(snapshot, cache), capture_output=True,
                          text=True, timeout=600)


def site_files(root: Path) -> dict[str, bytes]:
    """Every file of a built site: relative path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def built_fixture_site(base: Path) -> Path:
    """Build the fixture site once per test session (under ``base``) and return site/."""
    if "site" not in _BUILT:
        snapshot = build_fixture_snapshot(base / "snapshot")
        result = run_mkdocs_build(snapshot, base / "site", base / "cache")
        if result.returncode != 0:
            raise AssertionError(f"mkdocs build --strict failed:\n{result.stderr[-4000:]}")
        _BUILT["site"], _BUILT["log"] = base / "site", Path(base / "build.log")
        _BUILT["log"].write_text(result.stderr)
    return _BUILT["site"]
