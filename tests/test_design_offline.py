"""Real offline W&B runs of a small learning-rate sweep: the design read from them, and the
paired comparison per setting, never pooled."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.design import infer_design
from altgrad_docs.data_loader import ExperimentDataLoader
from tests.conftest import wandb_env

# E5M2 x both optimizers x lr {0.001, 0.01} x seeds {1, 2}; ManifoldAdamW is worse by 0.1 + 0.02*seed
# at lr 0.001 and better by the same at lr 0.01; per-run bookkeeping in every config.
SCRIPT = textwrap.dedent("""
    import wandb
    for lr in (0.001, 0.01):
        for manifold in (False, True):
            for seed in (1, 2):
                base = 2.0 + (0.3 if lr == 0.001 else 0.0) + 0.01 * seed
                delta = (0.1 + 0.02 * seed) * (1 if lr == 0.001 else -1) if manifold else 0.0
                name = f"e5m2-{'m' if manifold else 'a'}-{lr}-s{seed}"
                run = wandb.init(mode="offline", project="altgrad", name=name, reinit="create_new",
                                 config={"fp8_format": "E5M2", "use_fp8": True, "use_manifold_aware": manifold,
                                         "seed": seed, "learning_rate": lr, "max_steps": 4,
                                         "manifold_mantissa_bits": 2, "run_name": name,
                                         "checkpoint_dir": f"checkpoints/{name}", "eval_interval": 2})
                for step in range(4):
                    row = {"loss": base + delta + 0.5 + (3 - step)}
                    if step and step % 2 == 0 or step == 3:
                        row["val_loss"] = base + delta + (3 - step) * 0.1
                    run.log(row, step=step)
                run.finish()
""")


@pytest.fixture(scope="module")
def offline_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("offline_sweep")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=folder, env=wandb_env(folder),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ExperimentDataLoader(offline_dir=folder / "wandb")


def test_design_of_real_offline_runs(offline_sweep):
    runs = offline_sweep.runs()
    assert len(runs) == 8
    d = infer_design(runs)
    assert d.factors == {"learning_rate": [0.001, 0.01]}
    assert d.follows == {} and d.constants["manifold_mantissa_bits"] == 2
    assert d.bookkeeping == ["checkpoint_dir", "eval_interval", "run_name"]
    assert d.metric == "final_val_loss" and d.balanced


def test_paired_deltas_of_real_offline_runs_per_setting(offline_sweep):
    mc = sc.manifold_comparison(offline_sweep.runs())
    assert mc[["format", "setting", "n_pairs", "seeds"]].values.tolist() == [
        ["E5M2", "learning_rate=0.001", 2, [1, 2]], ["E5M2", "learning_rate=0.01", 2, [1, 2]]]
    assert mc["deltas"].tolist() == [pytest.approx([0.12, 0.14]), pytest.approx([-0.12, -0.14])]
    # t interval with 1 df: mean +/- 12.706 * 0.01
    assert mc[["ci_low", "ci_high"]].values.tolist() == [
        [pytest.approx(0.13 - 0.127062, abs=1e-5), pytest.approx(0.13 + 0.127062, abs=1e-5)],
        [pytest.approx(-0.13 - 0.127062, abs=1e-5), pytest.approx(-0.13 + 0.127062, abs=1e-5)]]
    table = offline_sweep.get_format_comparison_runs()
    assert list(table.columns[:9]) == ["format", "run_id", "run_url", "state", "steps", "final_loss", "best_loss",
                                       "bit_stall_final", "overflow_final"]
    assert table.columns[-1] == "setting" and "learning_rate" in table.columns
    assert sorted(set(table["setting"])) == ["learning_rate=0.001", "learning_rate=0.01"]
