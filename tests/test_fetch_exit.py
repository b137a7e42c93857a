"""A W&B fetch that finished ends without wandb's exit teardown (os._exit after flushing):
its output is complete, its snapshot written, and no wandb-core of it is left running."""

import subprocess
import sys

import numpy as np

from altgrad_docs.snapshot import open_snapshot
from benchmarks.synthetic import synthetic_records
from tests.conftest import wandb_env
from tests.fake_wandb import ENTITY
from tests.test_fault_matrix import _none_left

PROJECT = f"{ENTITY}/altgrad"


def test_a_finished_fetch_exits_with_its_output_and_leaves_no_wandb_core(fake_wandb, tmp_path):
    records = list(synthetic_records(3, 20, 8, np.random.default_rng(3), entity=ENTITY))
    server = fake_wandb(records, exports=False)
    env = wandb_env(tmp_path / "w", server.url)
    out = tmp_path / "snap"
    cmd = [sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", PROJECT, "--out", str(out)]
    for expected in ("wrote ", "nothing changed: 3 runs reused"):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = proc.communicate(timeout=90)
        assert proc.returncode == 0, stderr
        assert stdout.startswith(expected) and stdout.endswith("\n") and stderr == "", (stdout, stderr)
        assert _none_left(proc.pid), f"wandb-core of fetch {proc.pid} still runs"
    assert sorted(open_snapshot(out).run_ids) == sorted(r.run_id for r in records)


def test_before_downloads_is_called_once_before_the_first_download_and_not_when_unchanged(live_wandb, tmp_path):
    import sys

    from altgrad_docs.fetch import fetch_project

    live_wandb.set_runs(list(synthetic_records(2, 10, 8, np.random.default_rng(4), entity=ENTITY)))
    seen = []
    live_wandb.requests.clear()

    def note():
        seen.append((sorted({op for op, _ in live_wandb.requests}), "pyarrow.parquet" in sys.modules))

    result = fetch_project(PROJECT, tmp_path / "snap", progress=False, before_downloads=note)
    assert seen == [(["Runs", "Viewer"], True)] and result.fetched == 2  # listed, nothing downloaded yet
    again = fetch_project(PROJECT, tmp_path / "snap", progress=False, before_downloads=note)
    assert again.changed is False and len(seen) == 1
