"""How much retraining the bench on another CPU moves its numbers (results in docs/bench.md).

    altgrad-docs bench --lrs 0.1 --storage fp32_master --seeds 0,1,2,3,4,5 --workers 1 \\
        --out /tmp/retrain --snapshot /tmp/retrain/snap          # the main cell, on this CPU
    python benchmarks/cpu_retrain.py /tmp/retrain/snap [data/bundled]

Compares every run of the first snapshot with the run of the same id in the second (the
committed data, made on another CPU): how many logged values are bit-identical, the first
step at which a run differs, the drift of the loss by step 100 (the bound of
tests/test_bench_grid.py), the change of the final validation loss, failures gained or lost,
and whether the main comparison's conclusions hold: per format, the sign of ManifoldAdamW -
AdamW's mean paired delta of the final validation loss and on how many seeds it is lower.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from altgrad_docs.snapshot import open_snapshot  # noqa: E402


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare(new_path: Path, old_path: Path) -> dict:
    new, old = open_snapshot(new_path), open_snapshot(old_path)
    new_runs, old_runs = new.runs().set_index("run_id"), old.runs().set_index("run_id")
    ids = [r for r in new.run_ids if r in old_runs.index]
    values = same_values = 0
    first_diff, drift25, drift100, final_delta, status_changed = [], [], [], {}, []
    for run_id in ids:
        a, b = new.history(run_id).set_index("_step"), old.history(run_id).set_index("_step")
        steps = [s for s in a.index if s in b.index]
        first = None
        for step in steps:
            for key in a.columns.intersection(b.columns):
                values += 1
                if _same(a.at[step, key], b.at[step, key]):
                    same_values += 1
                elif first is None:
                    first = step
        first_diff.append(first)
        early = [s for s in steps if s <= 100 and math.isfinite(a.at[s, "loss"]) and math.isfinite(b.at[s, "loss"])]
        drift100.append(max((abs(a.at[s, "loss"] - b.at[s, "loss"]) for s in early), default=0.0))
        drift25.append(max((abs(a.at[s, "loss"] - b.at[s, "loss"]) for s in early if s <= 25), default=0.0))
        va, vb = new_runs.at[run_id, "final_val_loss"], old_runs.at[run_id, "final_val_loss"]
        if math.isfinite(va) and math.isfinite(vb):
            final_delta[run_id] = va - vb
        if new_runs.at[run_id, "status"] != old_runs.at[run_id, "status"]:
            status_changed.append(run_id)
    abs_final = sorted(abs(d) for d in final_delta.values())
    return {
        "runs": len(ids), "values": values, "identical_values": same_values,
        "identical_runs": sum(f is None for f in first_diff),
        "first_difference_step_median": statistics.median([f for f in first_diff if f is not None] or [0]),
        "first_difference_step_min": min([f for f in first_diff if f is not None] or [0]),
        "loss_drift_by_step_25_max": max(drift25),
        "loss_drift_by_step_100_max": max(drift100),
        "loss_drift_by_step_100_median": statistics.median(drift100),
        "final_val_loss_abs_delta_median": statistics.median(abs_final),
        "final_val_loss_abs_delta_p90": abs_final[int(0.9 * (len(abs_final) - 1))],
        "final_val_loss_abs_delta_max": abs_final[-1],
        "status_changed": status_changed,
        "conclusions": {"new": paired(new_runs.loc[ids]), "old": paired(old_runs.loc[ids])},
    }


def paired(runs) -> dict[str, tuple[float, int, int]]:
    """format -> (mean ManifoldAdamW - AdamW delta of final val loss, seeds lower, pairs)."""
    out = {}
    for fmt, group in runs.groupby("format"):
        by = {(r.optimizer, r.seed): r.final_val_loss for r in group.itertuples()}
        deltas = [by[("ManifoldAdamW", s)] - by[("AdamW", s)] for (o, s) in by
                  if o == "AdamW" and ("ManifoldAdamW", s) in by
                  and math.isfinite(by[("ManifoldAdamW", s)]) and math.isfinite(by[("AdamW", s)])]
        if deltas:
            out[fmt] = (statistics.mean(deltas), sum(d < 0 for d in deltas), len(deltas))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("old", type=Path, nargs="?", default=REPO / "data" / "bundled")
    args = parser.parse_args()
    result = compare(args.new, args.old)
    conclusions = result.pop("conclusions")
    print(json.dumps(result, indent=2, default=float))
    print("format  new: mean delta, lower/pairs   committed: mean delta, lower/pairs   same sign")
    for fmt in sorted(conclusions["old"]):
        n, o = conclusions["new"].get(fmt), conclusions["old"][fmt]
        if n:
            print(f"{fmt:6}  {n[0]:+.3f} {n[1]}/{n[2]}          {o[0]:+.3f} {o[1]}/{o[2]}"
                  f"              {'yes' if (n[0] < 0) == (o[0] < 0) else 'NO'}")


if __name__ == "__main__":
    main()
