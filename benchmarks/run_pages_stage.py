"""The run-page stage of a cold build alone (run by hand; results in benchmarks/site.md).

    .venv/bin/python benchmarks/run_pages_stage.py SNAPSHOT [--profile out.prof]

Makes every run page of ``SNAPSHOT`` with an empty artifact cache, as
``site.pipeline.pages_for`` does on a cold build (chart data + SVG fallback, the summary and
config tables' CSV and LaTeX), in this one process, and prints the wall and CPU time of the parts (CPU time is what
to compare on a shared machine).
No analysis, no report figures, no MkDocs: only what a cold build spends per run page.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from altgrad_docs.site import pages as site_pages  # noqa: E402
from altgrad_docs.snapshot import open_snapshot  # noqa: E402


def run_stage(snapshot_path: Path, cache_dir: Path) -> dict[str, float]:
    snapshot = open_snapshot(snapshot_path)
    runs = snapshot.runs()
    cache = site_pages.ArtifactCache(cache_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    pages = [site_pages.run_page(snapshot, row, cache, None) for _, row in runs.iterrows()]
    t1, c1 = time.perf_counter(), time.process_time()
    for page in pages:
        for tab in page.artifacts.tables:
            tab.files = cache.table(page.folder, tab)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"runs": len(pages), "pages + charts wall": t1 - t0, "cpu": c1 - c0,
            "tables wall": t2 - t1, "cpu ": c2 - c1, "total wall": t2 - t0, "cpu  ": c2 - c0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshot", type=Path)
    ap.add_argument("--profile", type=Path, help="write a cProfile of the stage here")
    ap.add_argument("--keep", type=Path, help="an empty folder to write the files to (kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="run-pages-") as tmp:
        cache = args.keep or Path(tmp)
        if args.profile:
            prof = cProfile.Profile()
            times = prof.runcall(run_stage, args.snapshot, cache)
            prof.dump_stats(args.profile)
        else:
            times = run_stage(args.snapshot, cache)
    print("  ".join(f"{k}: {v:.2f} s" if isinstance(v, float) else f"{k}: {v}" for k, v in times.items()))


if __name__ == "__main__":
    main()
