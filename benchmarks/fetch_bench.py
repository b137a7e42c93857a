"""Fetch benchmark: `altgrad-docs fetch` against W&B's canonical loop, on the fake server.

    .venv/bin/python benchmarks/fetch_bench.py [--runs 200 --steps 2000 --metrics 10 --latency 0.05]

The fake W&B server (tests/fake_wandb.py) serves synthetic runs (benchmarks/synthetic.py)
with ``--latency`` seconds added to every request. Three commands run as fresh processes,
with the real wandb client talking to the server, one after another in this one script run:

1. the canonical loop of W&B's docs: ``for run in api.runs(path): run.config, run.summary,
   run.history()`` (note: ``history()`` returns 500 sampled rows per run, not all of them);
   and the same loop with ``run.scan_history()``, which returns every row;
2. ``altgrad-docs fetch --project ENTITY/altgrad --out DIR`` into an empty folder (full);
3. the same command again with nothing changed on the server (incremental re-fetch).

It prints wall times, request counts (``GET parquet`` = a history export download) and the
two ratios the issue sets targets for (full fetch >= 5x faster than the loop; unchanged
re-fetch >= 20x faster than a full fetch), then the fixed costs that bound a re-fetch: the
same fetches inside one warm process, ``import wandb`` alone, and a fresh process that only
imports wandb, calls ``wandb.Api()`` and lists the runs once (what any re-fetch must do to
learn that nothing changed).
"""

from __future__ import annotations

import argparse
import json
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
    args = ap.parse_args(argv)

    records = list(synthetic_records(args.runs, args.steps, args.metrics,
                                     np.random.default_rng(0), entity=ENTITY, fail_scale=0.0))
    server = FakeWandb(records, latency=args.latency).prepare().start()
    project = f"{ENTITY}/altgrad"
    with tempfile.TemporaryDirectory(prefix="fetch-bench-") as tmp:
        env = wandb_env(Path(tmp) / "w", server.url)
        out = str(Path(tmp) / "snapshot")
        fetch = [sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", project,
                 "--out", out, "--workers", str(args.workers)]
        results = []
        for label, cmd in [
            ("canonical loop (api.runs + run.history())",
             [sys.executable, "-c", CANONICAL.format(project=project)]),
            ("same loop, every row (run.scan_history())",
             [sys.executable, "-c", CANONICAL_ALL_ROWS.format(project=project)]),
            ("altgrad-docs fetch, full", fetch),
            ("altgrad-docs fetch, nothing changed", fetch),
        ]:
            server.requests.clear()
            took, said = _timed(cmd, env)
            results.append((label, took, dict(Counter(server.ops())), said))
        _, said = _timed([sys.executable, "-c", WARM.format(project=project, workers=args.workers),
                          out], env)
        warm = json.loads(said.splitlines()[-1])
        _, import_s = _timed([sys.executable, "-c", IMPORT_WANDB], env)
        list_s, _ = _timed([sys.executable, "-c", LIST_ONLY.format(entity=ENTITY, project=project)], env)
    server.stop()

    print(f"{args.runs} runs x {args.steps} steps x {args.metrics} metrics, "
          f"{args.latency * 1000:.0f} ms added per request, --workers {args.workers}\n")
    print("| command | wall s | requests | output |\n|---|---:|---|---|")
    for label, took, ops, said in results:
        ops_text = ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
        print(f"| {label} | {took:.1f} | {ops_text} | {said.splitlines()[-1] if said else ''} |")
    loop, all_rows, full, again = (r[1] for r in results)
    print(f"\nfull fetch vs canonical loop: {loop / full:.1f}x faster (target >= 5x)")
    print(f"full fetch vs the loop that also gets every row: {all_rows / full:.1f}x faster")
    print(f"unchanged re-fetch vs full fetch: {full / again:.1f}x faster (target >= 20x)")
    (wfull, f1, r1), (wagain, f2, r2) = warm
    print(f"\nin one process, after `import wandb` and wandb.Api() (not timed):\n"
          f"full fetch {wfull:.2f} s ({f1} fetched); unchanged re-fetch {wagain:.2f} s "
          f"({r2} reused): {wfull / wagain:.1f}x faster")
    print(f"`import wandb` alone in a fresh process: {float(import_s):.2f} s")
    print(f"a fresh process that only imports wandb, calls wandb.Api() and lists the runs: "
          f"{list_s:.2f} s (a 20x re-fetch would need {full / 20:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
