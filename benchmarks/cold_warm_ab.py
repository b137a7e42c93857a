"""Cold and warm builds of two checkouts, alternated (run by hand; results in benchmarks/site.md).

    .venv/bin/python benchmarks/cold_warm_ab.py SNAPSHOT BEFORE_DIR AFTER_DIR [--rounds 4]

Each round builds, for BEFORE then AFTER (the order flips every round), a cold build (empty
cache: ``ALTGRAD_CACHE_DIR`` removed first) and a warm build right after it, each a whole
``mkdocs build -q --strict`` process run from that checkout (its ``mkdocs.yml``, its code on
``PYTHONPATH``). Prints every build's wall time and the load average, then per checkout the
median cold, warm and cold / warm with their ranges. The two sites are compared byte for
byte at the end (they must be identical). Everything is written under --work.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE_ENV = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true", "MPLBACKEND": "Agg"}


def build(tree: Path, snapshot: Path, cache: Path, site: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALTGRAD_", "SOURCE_DATE"))}
    env.update(BASE_ENV, PYTHONPATH=str(tree), ALTGRAD_SNAPSHOT=str(snapshot), ALTGRAD_CACHE_DIR=str(cache))
    cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "--strict", "-f", str(tree / "mkdocs.yml"), "-d", str(site)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"build failed ({tree}):\n{proc.stderr[-3000:]}")
    return took


def differing(a: Path, b: Path) -> list[str]:
    """Files that differ or exist on one side only (relative paths)."""
    out, cmp = [], filecmp.dircmp(a, b)
    stack = [(cmp, "")]
    while stack:
        c, rel = stack.pop()
        out += [rel + n for n in c.left_only + c.right_only + c.funny_files]
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        out += [rel + n for n in mismatch + errors]
        stack += [(sub, f"{rel}{name}/") for name, sub in c.subdirs.items()]
    return sorted(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshot", type=Path)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("/tmp/altgrad-cold-ab"))
    args = ap.parse_args()
    times: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for name in order:
            tree = getattr(args, name).resolve()
            cache, site = args.work / f"cache-{name}", args.work / f"site-{name}"
            shutil.rmtree(cache, ignore_errors=True)
            load = os.getloadavg()[0]
            cold = build(tree, args.snapshot.resolve(), cache, site)
            warm = build(tree, args.snapshot.resolve(), cache, site)
            times[name].append((cold, warm))
            print(f"round {r + 1} {name}: cold {cold:.2f} s, warm {warm:.2f} s, cold/warm {cold / warm:.2f}, "
                  f"load {load:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
    for name, pairs in times.items():
        colds, warms = [c for c, _ in pairs], [w for _, w in pairs]
        ratios = [c / w for c, w in pairs]
        print(f"{name}: cold {statistics.median(colds):.2f} s ({min(colds):.2f}-{max(colds):.2f}), warm "
              f"{statistics.median(warms):.2f} s ({min(warms):.2f}-{max(warms):.2f}), cold/warm median "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}); ratio of medians "
              f"{statistics.median(colds) / statistics.median(warms):.2f}")
    diff = differing(args.work / "site-before", args.work / "site-after")
    print("sites byte-identical" if not diff else f"sites differ in {len(diff)} files: {diff[:10]}")
    if diff:  # the A/B is only a timing of the same output
        raise SystemExit(1)


if __name__ == "__main__":
    main()
