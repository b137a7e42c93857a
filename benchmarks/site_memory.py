"""Peak memory of the site pipeline on a big snapshot (run by hand; results in benchmarks/site.md).

    .venv/bin/python benchmarks/site_memory.py [--runs 1000] [--steps 10000] [--metrics 20]

Target (issue 2): computing every table and figure the site needs from a snapshot of
1,000 runs x 10,000 steps x 20 metrics within 1 GB peak RSS. The pipeline runs in a fresh
child process with an empty cache (every figure drawn, every page rendered and written to
a scratch folder), and the child reports its own peak RSS (resource.getrusage ru_maxrss).
Histories are read one run and only the needed columns at a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.site_scale import env_for, make_snapshot  # noqa: E402

CHILD = """
import json, resource, sys, threading, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from altgrad_docs import site
from altgrad_docs.site.render import make_environment
from altgrad_docs.site.incremental import SiteMemory, StableWriter
from altgrad_docs.snapshot import open_snapshot
out = Path({out!r})
def open_file(name, mode="r", **kw):
    path = out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode, **({{"encoding": "utf-8"}} if "b" not in mode else {{}}))
def sample(log=Path({trace!r})):  # RSS over time, to see which stage makes the peak
    with open(log, "w") as fh:
        while True:
            rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]
            n = sum(1 for _ in Path({cache!r}).rglob("*.svg")) if Path({cache!r}).is_dir() else 0
            fh.write(f"{{time.perf_counter() - t:.0f}} s  rss {{int(rss) // 1024}} MiB  svg in cache {{n}}\\n")
            fh.flush()
            time.sleep(5)
t = time.perf_counter()
threading.Thread(target=sample, daemon=True).start()
snapshot = open_snapshot({snapshot!r})
context, pages = site.pages_for(snapshot, Path({cache!r}))
env = make_environment(Path({repo!r}) / "templates")
site.write_pages(env, pages, {{**context, "stale": None}}, StableWriter(open_file, SiteMemory()))
n_fig = sum(len(p.artifacts.figures) for p in pages)
n_tab = sum(len(p.artifacts.tables) for p in pages)
print(json.dumps({{"seconds": time.perf_counter() - t, "pages": len(pages), "figures": n_fig,
                  "tables": n_tab, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/altgrad-site-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    snap = make_snapshot(args.work, args.runs, args.steps, args.metrics)
    size = sum(p.stat().st_size for p in snap.rglob("*") if p.is_file()) / 2**20
    cache, out = args.work / "memory-cache", args.work / "memory-out"
    for folder in (cache, out):
        shutil.rmtree(folder, ignore_errors=True)
    code = CHILD.format(repo=str(REPO), out=str(out), snapshot=str(snap), cache=str(cache),
                        trace=str(args.work / "memory-trace.log"))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env_for(snap, cache), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"snapshot {snap.name}: {size:.0f} MiB on disk; RSS over time in {args.work / 'memory-trace.log'}")
    print(f"pipeline (cold cache): {result['pages']} pages, {result['figures']} figures, {result['tables']} tables "
          f"in {result['seconds']:.0f} s (wall {time.perf_counter() - t:.0f} s); "
          f"peak RSS {result['peak_rss_mb']:.0f} MiB (target <= 1024)")


if __name__ == "__main__":
    main()
