"""Site build times at scale (run by hand; results in benchmarks/site.md).

    .venv/bin/python benchmarks/site_scale.py [--runs 100 1000] [--steps 1000] [--serve-runs 200]

For each size: a synthetic snapshot (benchmarks/synthetic.py), then

* cold   -- ``mkdocs build`` with an empty figure cache (every figure drawn);
* warm   -- the same build again (figures and analysis from the cache);
* plain  -- ``mkdocs build`` of the very same generated pages written out as plain docs
            (same theme, nav, extensions; no gen-files, no pipeline): the floor.

After the rounds, ``--pairs`` more warm and plain builds alternate (the warm build of a
round follows a cold one, whose files the disk may still be writing). Targets (issue 5): warm <= 1.5 x plain; warm(1000) <= 12 x warm(100); and, during
``mkdocs serve`` at ``--serve-runs`` runs, a template edit rebuilds in <= 2 s: measured
with ``--dirty`` (what scripts/site.sh serve runs) and without, for an edit to a report
template and to the run-page template, on a copy of the project (``--runs`` with no
number skips the build measurements).
``--fetched``: the snapshot is the same synthetic runs fetched with ``altgrad-docs fetch`` from
the fake W&B on loopback (tests/fake_wandb.py) instead of written directly.
Everything is written under --work (default /tmp/altgrad-site-bench); nothing is fetched
from the network.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from altgrad_docs.snapshot import open_snapshot, write_snapshot  # noqa: E402
from benchmarks.synthetic import synthetic_records  # noqa: E402

BASE_ENV = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true", "MPLBACKEND": "Agg"}


def make_snapshot(work: Path, n_runs: int, n_steps: int, n_metrics: int) -> Path:
    out = work / f"snap-{n_runs}x{n_steps}x{n_metrics}"
    if not (out / "manifest.json").is_file():
        t = time.perf_counter()
        records = synthetic_records(n_runs, n_steps, n_metrics, np.random.default_rng(0))
        write_snapshot(records, out, source={"kind": "synthetic", "n_runs": n_runs},
                       fetched_at="2026-01-01T00:00:00+00:00")
        print(f"  snapshot {out.name}: {time.perf_counter() - t:.1f} s", flush=True)
    return out


def make_fetched_snapshot(work: Path, n_runs: int, n_steps: int, n_metrics: int) -> Path:
    """The same synthetic runs, but as a W&B fetch stores them: served by the fake W&B on
    loopback (tests/fake_wandb.py, Parquet exports, no added latency) and read with
    ``altgrad-docs fetch`` (the fetch is not timed)."""
    out = work / f"snap-fetched-{n_runs}x{n_steps}x{n_metrics}"
    if not (out / "manifest.json").is_file():
        from tests.conftest import wandb_env
        from tests.fake_wandb import ENTITY, FakeWandb

        t = time.perf_counter()
        records = synthetic_records(n_runs, n_steps, n_metrics, np.random.default_rng(0), entity=ENTITY)
        server = FakeWandb(records).prepare().start()
        try:
            cmd = [sys.executable, "-m", "altgrad_docs.cli", "fetch", "--project", f"{ENTITY}/altgrad",
                   "--out", str(out)]
            proc = subprocess.run(cmd, cwd=REPO, env=wandb_env(work / "wandb", server.url),
                                  capture_output=True, text=True)
        finally:
            server.stop()
        if proc.returncode:
            raise SystemExit(f"fetch failed:\n{proc.stderr[-3000:]}")
        print(f"  snapshot {out.name} (fetched from the fake W&B): {time.perf_counter() - t:.1f} s", flush=True)
    return out


def env_for(snapshot: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALTGRAD_", "SOURCE_DATE"))}
    return {**env, **BASE_ENV, "ALTGRAD_SNAPSHOT": str(snapshot), "ALTGRAD_CACHE_DIR": str(cache)}


def _tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (drawing workers too), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    total = 0
    for pid in tree:
        try:
            total += int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
    return total


class Build(NamedTuple):
    seconds: float
    peak_tree_mib: float  # sampled every 0.2 s: mkdocs plus its worker processes together
    maxrss_mib: float  # the kernel's peak of the largest single process (wait4)


def timed_build(config: Path, site: Path, env: dict[str, str]) -> Build:
    cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "--strict", "-f", str(config), "-d", str(site)]
    err = tempfile.TemporaryFile()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # usage: this child's own peak RSS
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - t
    if proc.returncode:
        err.seek(0)
        raise SystemExit(f"build failed ({config}):\n{err.read().decode()[-3000:]}")
    return Build(elapsed, peak / 1024, usage.ru_maxrss / 1024)


def export_plain_docs(snapshot: Path, cache: Path, out: Path) -> Path:
    """Write the generated pages as a plain docs folder plus a mkdocs.yml without gen-files."""
    code = f"""
import os, sys
from pathlib import Path
from mkdocs.config import load_config
sys.path.insert(0, {str(REPO)!r})
from altgrad_docs import site
out = Path({str(out / 'docs')!r})
def open_file(name, mode="r", **kw):
    path = out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode, **({{"encoding": "utf-8"}} if "b" not in mode else {{}}))
config = load_config({str(REPO / 'mkdocs.yml')!r})
site.build(config, open_file)
print(repr(config.extra["altgrad_stamp"]))
"""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(REPO / "docs", out / "docs")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env_for(snapshot, cache),
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    stamp = proc.stdout.strip().splitlines()[-1]
    text = (REPO / "mkdocs.yml").read_text()
    # no altgrad plugin: its theme additions and assets as a plain custom_dir instead
    text, n = re.subn(r"  - altgrad:\n(      .*\n)*", "", text)
    assert n == 1, "mkdocs.yml lists the altgrad plugin once"
    text = text.replace("  name: material\n", f"  name: material\n  custom_dir: {REPO / 'altgrad_docs' / 'theme'}\n", 1)
    text = text.replace("extra:\n", f"extra:\n  altgrad_stamp: {stamp}\n", 1)
    text = f"docs_dir: {out / 'docs'}\n" + text
    config = out / "mkdocs.yml"
    config.write_text(text)
    return config


#: (what is edited, template, page that must show the edit: None = the first run's page)
SERVE_EDITS = (
    ("report template", "templates/reports/format_comparison.md.j2", "format-comparison/"),
    ("run-page template (every run page changes)", "templates/pages/run.md", None),
)


def copy_project(out: Path) -> Path:
    """The site's sources (config, docs, templates) in a folder the edits may touch."""
    if out.exists():
        shutil.rmtree(out)
    for name in ("docs", "templates"):
        shutil.copytree(REPO / name, out / name)
    shutil.copy(REPO / "mkdocs.yml", out / "mkdocs.yml")
    return out


def serve_template_edits(snapshot: Path, cache: Path, work: Path, dirty: bool) -> list[tuple[str, float, float]]:
    """Start ``mkdocs serve``; per edit: (what, wall s until rebuilt, MkDocs' reported s).

    Each edit appends a unique sentence to a template of a copy of the project; the served
    page and the search index must then contain it, and the index must still cover every
    page exactly once (else the benchmark stops with an error).
    """
    import socket

    project = copy_project(work / ("project-dirty" if dirty else "project"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "mkdocs", "serve", "-f", str(project / "mkdocs.yml"),
           "-a", f"127.0.0.1:{port}", *(["--dirty"] if dirty else [])]
    log_path = work / f"serve{'-dirty' if dirty else ''}.log"
    first_run = quote(open_snapshot(snapshot).run_ids[0], safe="")
    results = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=project, env=env_for(snapshot, cache), stdout=log, stderr=log)
        try:
            _wait_for(log_path, "Serving on", 1, timeout=900)
            locations = _index_locations(port)
            for n, (what, template, url) in enumerate(SERVE_EDITS, start=2):
                marker = f"benchedit{n}{os.getpid()}"
                t = time.perf_counter()
                with open(project / template, "a", encoding="utf-8") as fh:
                    fh.write(f"\n\nBenchmark edit {marker}.\n")
                reported = _wait_for(log_path, "Documentation built in", n, timeout=300)
                wall = time.perf_counter() - t
                _check_served(port, url or f"runs/{first_run}/", marker, locations)
                results.append((what, wall, reported))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return results


def _get(port: int, path: str) -> str:
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/{path}", timeout=30) as resp:
        return resp.read().decode("utf-8")


def _index_locations(port: int) -> list[str]:
    return sorted(d["location"] for d in json.loads(_get(port, "search/search_index.json"))["docs"])


def _check_served(port: int, url: str, marker: str, locations: list[str]) -> None:
    if marker not in _get(port, url):
        raise SystemExit(f"the edit {marker} is not on the served page {url}")
    index = _get(port, "search/search_index.json")
    if marker not in index:
        raise SystemExit(f"the edit {marker} is not in the search index")
    if _index_locations(port) != locations:
        raise SystemExit("the search index no longer lists every section exactly once")


def _wait_for(log_path: Path, marker: str, count: int, timeout: float) -> float:
    end = time.time() + timeout
    while time.time() < end:
        text = log_path.read_text()
        hits = [line for line in text.splitlines() if marker in line]
        if len(hits) >= count:
            found = re.search(r"([0-9.]+) seconds", hits[count - 1])
            return float(found.group(1)) if found else 0.0
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {marker!r}; log:\n{log_path.read_text()[-3000:]}")


def _alternate(n: int, pairs: int, env: dict[str, str], site: Path, plain_cfg: Path, plain_site: Path) -> None:
    """Warm and plain builds one after the other, ``pairs`` times: a warm build that follows a
    cold one also pays for the cold build's files still being written back to disk."""
    ratios = []
    for _ in range(pairs):
        w = timed_build(REPO / "mkdocs.yml", site, env).seconds
        p = timed_build(plain_cfg, plain_site, env).seconds
        ratios.append(w / p)
        print(f"  {n} runs, pair {len(ratios)}: warm {w:.1f} s, plain {p:.1f} s, {w / p:.2f}, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{n} runs, warm and plain alternated {pairs} times: warm/plain median "
          f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}; target <= 1.5)",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--fetched", action="store_true",
                        help="build from the synthetic runs as fetched from the fake W&B on loopback")
    parser.add_argument("--serve-runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="cold/warm/plain rounds per size (median)")
    parser.add_argument("--pairs", type=int, default=3,
                        help="then warm and plain alternated this many times (ratio pair by pair)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/altgrad-site-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    warm = {}
    for n in args.runs:
        snap = (make_fetched_snapshot if args.fetched else make_snapshot)(args.work, n, args.steps, args.metrics)
        cache = args.work / f"cache-{snap.name}"
        env = env_for(snap, cache)
        plain_cfg = None
        colds, warms, plains = [], [], []
        for _ in range(args.repeat):  # cold, warm, plain side by side, whole process each
            shutil.rmtree(cache, ignore_errors=True)
            colds.append(timed_build(REPO / "mkdocs.yml", args.work / f"site-{snap.name}", env))
            warms.append(timed_build(REPO / "mkdocs.yml", args.work / f"site-{snap.name}", env))
            plain_cfg = plain_cfg or export_plain_docs(snap, cache, args.work / f"plain-{snap.name}")
            plains.append(timed_build(plain_cfg, args.work / f"plain-site-{snap.name}", env))
            print(f"  {n} runs: cold {colds[-1].seconds:.1f} s, warm {warms[-1].seconds:.1f} s, "
                  f"plain {plains[-1].seconds:.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)
        cold, warm[n], plain = (statistics.median(b.seconds for b in bs) for bs in (colds, warms, plains))
        pages = len(open_snapshot(snap).run_ids)
        print(f"{n} runs ({pages} run pages, median of {args.repeat}): cold {cold:.1f} s, warm {warm[n]:.1f} s, "
              f"plain {plain:.1f} s; cold/warm {cold / warm[n]:.2f} (target <= 3), warm/plain "
              f"{warm[n] / plain:.2f} (target <= 1.5); peak RSS cold {max(b.peak_tree_mib for b in colds):.0f} MiB "
              f"(process tree; largest process {max(b.maxrss_mib for b in colds):.0f} MiB)", flush=True)
        if args.pairs:
            _alternate(n, args.pairs, env, args.work / f"site-{snap.name}", plain_cfg, args.work / f"plain-site-{snap.name}")
    if len(warm) >= 2:
        lo, hi = min(warm), max(warm)
        print(f"warm {hi} / warm {lo}: {warm[hi] / warm[lo]:.2f} (target <= {hi / lo * 1.2:.0f})")
    if args.serve_runs:
        snap = make_snapshot(args.work, args.serve_runs, args.steps, args.metrics)
        cache = args.work / f"cache-{snap.name}"
        for dirty in (True, False):
            for what, wall, reported in serve_template_edits(snap, cache, args.work, dirty):
                print(f"mkdocs serve{' --dirty' if dirty else ''} at {args.serve_runs} runs, {what}: "
                      f"rebuilt in {wall:.2f} s wall (mkdocs reports {reported:.2f} s; target <= 2 s)",
                      flush=True)


if __name__ == "__main__":
    main()
