"""Fetch benchmark: `altgrad-docs fetch` against W&B's canonical loop, on the fake server.

    .venv/bin/python benchmarks/fetch_bench.py [--runs 200 --steps 2000 --metrics 10 --latency 0.05]
                                               [--paths export,live] [--skip-every-row] [--rounds 5]

The fake W&B server (tests/fake_wandb.py) serves synthetic runs (benchmarks/synthetic.py)
with ``--latency`` seconds added to every request, once per W&B path of ``--paths``: ``export``
(every run has a Parquet history export) and ``live`` (none has: every row is live data, as
on a server without exports or for runs not exported yet). Three commands run as fresh processes,
with the real wandb client talking to the server, one after another in this one script run:

1. the canonical loop of W&B's docs: ``for run in api.runs(path): run.config, run.summary,
   run.history()`` (note: ``history()`` returns 500 sampled rows per run, not all of them);
   and the same loop with ``run.scan_history()``, which returns every row;
2. ``altgrad-docs fetch --project ENTITY/altgrad --out DIR`` into an empty folder (full);
3. the same command again with nothing changed on the server (incremental re-fetch).

It prints wall times, request counts (``GET parquet`` = a history export download) and the
ratios the issue sets targets for (full fetch >= 5x faster than the loop on each path; an
unchanged re-fetch within 1.3x of the floor below), then the fixed costs that bound a re-fetch: the
same fetches inside one warm process, ``import wandb`` alone, and ``--rounds`` pairs of the
unchanged re-fetch and the floor, one after the other: a fresh process that only imports
wandb, calls ``wandb.Api()`` and lists the runs once (what any re-fetch must do to learn that
nothing changed), and that floor once more ended with ``os._exit`` as the fetch ends (without
wandb's exit teardown, about 0.3 s). The ratios are of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import synthetic_records  # noqa: E402
from tests.conftest import wandb_env  # noqa: E402
from tests.fake_wandb import ENTITY, FakeWandb  # noqa: E402

CANONICAL = """
import wandb
api = wandb.Api()
rows = 0
for run in api.runs("{project}"):
    config = {{k: v for k, v in run.config.items() if not k.startswith("_")}}
    summary = run.summary._json_dict
    rows += len(run.history())
print("history rows", rows)
"""


CANONICAL_ALL_ROWS = CANONICAL.replace("len(run.history())", "sum(1 for _ in run.scan_history())")
IMPORT_WANDB = "import time; t = time.perf_counter(); import wandb; print(time.perf_counter() - t)"

WARM = """
import json, sys, time
from altgrad_docs.fetch import fetch_project
from altgrad_docs.sources.wandb_api import connect
connect()  # import wandb and start wandb-core before the clock starts
out = []
for target in (sys.argv[1] + "-warm", sys.argv[1] + "-warm"):
    started = time.perf_counter()
    result = fetch_project("{project}", target, workers={workers}, progress=False)
    out.append((time.perf_counter() - started, result.fetched, result.reused))
print(json.dumps(out))
"""

LIST_ONLY = """
import wandb
api = wandb.Api(overrides={{"entity": "{entity}"}})
runs = api.runs("{project}", filters={{"state": {{"$in": ["finished", "crashed", "failed"]}}}},
                per_page=200, lazy=False)
print(sum(1 for run in runs if run.config is not None), "runs listed")
"""
#: The floor ended as `altgrad-docs fetch` ends, without wandb's exit teardown (os._exit).
LIST_ONLY_NO_TEARDOWN = LIST_ONLY + "import os, sys; sys.stdout.flush(); os._exit(0)\n"


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    import subprocess

    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{done.stderr[-3000:]}")
    return took, done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--paths", default="export,live",
                    help="W&B paths, side by side: export (Parquet exports) and/or live (no export: live rows only)")
    ap.add_argument("--skip-every-row", action="store_true", help="leave out the scan_history() loop")
    ap.add_argument("--rounds", type=int, default=5,
                    help="unchanged re-fetch and floor, alternated this many times (medians compared)")
    args = ap.parse_args(argv)
    records = list(synthetic_records(args.runs, args.steps, args.metrics,
                                     np.random.default_rng(0), entity=ENTITY, fail_scale=0.0))
    for path in args.paths.split(","):
        _bench_path(args, records, exports=path == "export")
    return 0


def _bench_path(args: argparse.Namespace, records: list, exports: bool) -> None:
    server = FakeWandb(records, latency=args.latency, exports=exports).prepare().start()
    project = f"{ENTITY}/altgrad"
    with tempfile.TemporaryDirectory(prefix="fetch-bench-") as tmp:
        env = wandb_env(Path(tmp) / "w", server.url)
        out = str(Path(tmp) / "snapshot")
        fetch = [sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", project,
                 "--out", out, "--workers", str(args.workers)]
        commands = [("canonical loop (api.runs + run.history())",
                     [sys.executable, "-c", CANONICAL.format(project=project)])]
        if not args.skip_every_row:
            commands.append(("same loop, every row (run.scan_history())",
                             [sys.executable, "-c", CANONICAL_ALL_ROWS.format(project=project)]))
        commands += [("altgrad-docs fetch, full", fetch), ("altgrad-docs fetch, nothing changed", fetch)]
        results = []
        for label, cmd in commands:
            server.requests.clear()
            load = os.getloadavg()[0]
            took, said = _timed(cmd, env)
            results.append((label, took, dict(Counter(server.ops())), said, load))
        _, said = _timed([sys.executable, "-c", WARM.format(project=project, workers=args.workers),
                          out], env)
        warm = json.loads(said.splitlines()[-1])
        _, import_s = _timed([sys.executable, "-c", IMPORT_WANDB], env)
        floor = [sys.executable, "-c", LIST_ONLY.format(entity=ENTITY, project=project)]
        bare = [sys.executable, "-c", LIST_ONLY_NO_TEARDOWN.format(entity=ENTITY, project=project)]
        pairs = [(_timed(fetch, env)[0], _timed(floor, env)[0], _timed(bare, env)[0], os.getloadavg()[0])
                 for _ in range(max(1, args.rounds))]
    server.stop()

    print(f"\n## path: {'Parquet exports' if exports else 'no exports (live rows only)'}\n")
    print(f"{args.runs} runs x {args.steps} steps x {args.metrics} metrics, "
          f"{args.latency * 1000:.0f} ms added per request, --workers {args.workers}\n")
    print("| command | load at start | wall s | requests | output |\n|---|---:|---:|---|---|")
    for label, took, ops, said, load in results:
        ops_text = ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
        print(f"| {label} | {load:.1f} | {took:.1f} | {ops_text} | {said.splitlines()[-1] if said else ''} |")
    times = {label: took for label, took, *_ in results}
    loop, full, again = (times[commands[i][0]] for i in (0, -2, -1))
    print(f"\nfull fetch vs canonical loop: {loop / full:.1f}x faster (target >= 5x)")
    if not args.skip_every_row:
        print(f"full fetch vs the loop that also gets every row: {times[commands[1][0]] / full:.1f}x faster")
    print(f"unchanged re-fetch vs full fetch: {full / again:.1f}x faster")
    (wfull, f1, r1), (wagain, f2, r2) = warm
    print(f"\nin one process, after `import wandb` and wandb.Api() (not timed):\n"
          f"full fetch {wfull:.2f} s ({f1} fetched); unchanged re-fetch {wagain:.2f} s "
          f"({r2} reused): {wfull / wagain:.1f}x faster")
    print(f"`import wandb` alone in a fresh process: {float(import_s):.2f} s")
    refetch_s, list_s, bare_s = (float(np.median([p[i] for p in pairs])) for i in range(3))
    print(f"\nunchanged re-fetch against the floor (a fresh process that only imports wandb, calls "
          f"wandb.Api() and lists the runs; and the same floor ended without wandb's exit teardown, "
          f"as the fetch ends), alternated {len(pairs)} times:\n")
    print("| round | load | re-fetch s | floor s | ratio | floor, no teardown s | ratio |\n"
          "|---:|---:|---:|---:|---:|---:|---:|")
    for i, (r, f, b, load) in enumerate(pairs, 1):
        print(f"| {i} | {load:.1f} | {r:.2f} | {f:.2f} | {r / f:.2f} | {b:.2f} | {r / b:.2f} |")
    print(f"\nmedians: re-fetch {refetch_s:.2f} s, floor {list_s:.2f} s, floor without teardown "
          f"{bare_s:.2f} s: unchanged re-fetch / floor = {refetch_s / list_s:.2f} (target <= 1.3); "
          f"against the floor without teardown {refetch_s / bare_s:.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
