"""Write the small demo snapshot that `altgrad-docs new` ships (altgrad_docs/demo/snapshot).

    python scripts/make_demo.py [--src data/bundled] [--out altgrad_docs/demo/snapshot]

A subset of the bundled bench snapshot, kept small so the wheel stays small: FP32 master
weights at the main learning rate (0.1) and at 1.5 (where runs diverge), formats E4M3, E7M0
and the BF16 baseline, both optimizers, seeds 0 and 1: 24 runs with their failure reports.
Each run is read back as a record and written through snapshot.write_snapshot; the script
checks that the facts of every run (format, optimizer, seed, state, status, steps, losses,
config, summary) are the bundled table's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from altgrad_docs.runs import RunRecord
from altgrad_docs.snapshot import open_snapshot, write_snapshot

FORMATS = ("E4M3", "E7M0", "BF16")
LEARNING_RATES = (0.1, 1.5)
SEEDS = (0, 1)
FACTS = ("name", "format", "optimizer", "seed", "state", "status", "steps", "final_loss", "final_val_loss",
         "best_loss", "learning_rate", "config_json", "summary_json")
META = ("run_id", "name", "state", "entity", "project", "group", "created_at", "updated_at")


def chosen(runs) -> list[str]:
    config = runs["config_json"].map(json.loads)
    keep = (runs["format"].isin(FORMATS) & runs["seed"].isin(SEEDS)
            & config.map(lambda c: c.get("weight_storage") == "fp32_master")
            & config.map(lambda c: c.get("learning_rate") in LEARNING_RATES))
    return sorted(runs.loc[keep, "run_id"])


def _missing(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default="data/bundled")
    parser.add_argument("--out", default="altgrad_docs/demo/snapshot")
    args = parser.parse_args()
    src = open_snapshot(Path(args.src).resolve())
    runs = src.runs().set_index("run_id", drop=False)
    ids = chosen(runs)
    records, reports = [], {}
    for run_id in ids:
        row = runs.loc[run_id]
        meta = {k: row[k] for k in META} | {"url": row["run_url"], "tags": json.loads(row["tags"] or "[]")}
        records.append(RunRecord(meta=meta, config=json.loads(row["config_json"]),
                                 summary=json.loads(row["summary_json"]), history=src.history(run_id)))
        reports[run_id] = src.failure_reports(run_id)
    bench = dict(src.manifest.get("bench") or {})
    bench["demo"] = (f"{len(ids)} of the {src.manifest['n_runs']} bundled runs (snapshot {src.short_hash}): "
                     f"FP32 master weights, learning rates {', '.join(map(str, LEARNING_RATES))}, formats "
                     f"{', '.join(FORMATS)}, seeds {', '.join(map(str, SEEDS))} (scripts/make_demo.py)")
    out = write_snapshot(records, args.out, source={"kind": "demo", "from": src.short_hash},
                         fetched_at=src.manifest["fetched_at"], failure_reports=reports, extra={"bench": bench})
    demo = open_snapshot(out).runs().set_index("run_id")
    original = runs.drop(columns="run_id").loc[ids]
    # the facts every page states; other columns may be newer than the bundled table (this
    # code writes the demo, an older one wrote data/bundled, and reads it with less to go on)
    diff = [(r, c) for r in ids for c in FACTS
            if not _missing(original.at[r, c]) and repr(demo.at[r, c]) != repr(original.at[r, c])]
    assert not diff, f"the demo's run table differs from the bundled one: {diff[:5]}"
    print(f"wrote {out}: {len(ids)} runs, sha256 {open_snapshot(out).short_hash}")


if __name__ == "__main__":
    main()
