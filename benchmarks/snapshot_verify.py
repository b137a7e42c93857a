"""What checking a snapshot's files against its manifest costs (issue #20), on the bundled
288-run snapshot (or any other: ``--snapshot``).

Each measurement runs in a fresh process (no digest kept from an earlier one) and repeats
``--repeat`` times, alternating the code under test with ``--baseline`` (a checkout of the
code before the checks, e.g. ``git worktree add /tmp/before 1bde162``) when one is given:

* ``open``: open_snapshot (the manifest only);
* ``verify cold``: Snapshot.verify() in a new process (every file hashed);
* ``verify warm``: the same call again in that process (what a ``mkdocs serve`` reload pays);
* ``runs``: the run table;
* ``histories cold`` / ``warm``: every history with the site's keys, as the analysis reads
  them, before and after verify() (the baseline reads the same files with no check).

Usage: ``python benchmarks/snapshot_verify.py [--snapshot data/bundled] [--repeat 5]
[--baseline /tmp/before]``; prints a Markdown table of medians (and min-max) in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, time
from altgrad_docs.runs import SITE_HISTORY_KEYS
from altgrad_docs.snapshot import open_snapshot
t = {}
def timed(name, f):
    start = time.perf_counter(); out = f(); t[name] = (time.perf_counter() - start) * 1e3; return out
import pandas, pyarrow.parquet  # imported before the clock starts, as in a build
snap = timed("open", lambda: open_snapshot(sys.argv[1]))
def histories():
    for run_id in snap.run_ids:
        snap.history(run_id, list(SITE_HISTORY_KEYS))
timed("histories cold", histories)
if hasattr(snap, "verify"):
    from altgrad_docs import snapshot_files
    snapshot_files.forget()
    timed("verify cold", snap.verify)
    timed("verify warm", snap.verify)
timed("runs", snap.runs)
timed("histories warm", histories)
print(json.dumps(t))
"""


def measure(code: Path, snapshot: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(snapshot)], env=env, cwd=code, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snapshot", default=None, help="default: each code's own data/bundled (the same "
                        "data files; the baseline's manifest is of the schema it reads)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", default=None, help="a checkout of the code before the checks")
    args = parser.parse_args()
    codes = {"checked": ROOT} | ({"baseline": Path(args.baseline)} if args.baseline else {})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
    for _ in range(args.repeat):
        for name, code in codes.items():  # alternated, so both see the same machine
            snapshot = Path(args.snapshot).resolve() if args.snapshot else code / "data" / "bundled"
            runs[name].append(measure(code, snapshot))
    keys = ["open", "verify cold", "verify warm", "runs", "histories cold", "histories warm"]
    print("| code | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, rows in runs.items():
        cells = []
        for key in keys:
            values = [r[key] for r in rows if key in r]
            cells.append(f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})" if values else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
