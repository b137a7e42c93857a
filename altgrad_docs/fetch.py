"""Fetch runs into a snapshot: from offline run files or the W&B API, full or incremental.

``fetch_offline`` reads ``wandb/offline-run-*`` folders; ``fetch_project`` lists a W&B
project once, reuses from the previous snapshot at ``out`` every run whose heartbeat is
unchanged (its history file is copied, not downloaded), and downloads the other histories
with a bounded thread pool. Both end in :func:`altgrad_docs.snapshot.write_snapshot`, which
swaps the new snapshot in only when it is complete. When nothing changed at all (same runs,
same heartbeats, a byte-identical run table, the same failure reports) only the manifest's
``fetched_at`` and ``versions`` are re-stamped: the result is the snapshot a full write
would give (``snapshot.restamp_snapshot``), without copying and re-hashing every history
file. Nothing changed is first told without pandas or pyarrow (their import is a quarter of
a re-fetch): the manifest keeps a digest of the listing (``snapshot.listing_sha256``), and a
listing with the same digest, heartbeats and reports is unchanged; any other builds the run
table from the listing and compares its bytes, as before. ``load_or_refresh`` is what the
site calls: refresh if the snapshot came from the API, fall back to the snapshot with a
reason when W&B cannot be reached.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

from .runs import DEFAULT_STATES, RunRecord, path_slug
from .snapshot import (
    LISTING_KEY, REPORTS_DIR, UNMATCHED_REPORTS, stored_report_name, RUNS_FILE, Snapshot, SnapshotError,
    clean_leftovers, listing_sha256, open_snapshot, restamp_snapshot, run_table_bytes, source_date, write_snapshot,
)
from .outdirs import check_snapshot_output
from .sources.report_files import RunInfo, match_failure_reports, run_info
from .userfiles import read_user_bytes

LOG = logging.getLogger("mkdocs.plugins.altgrad")
DEFAULT_WORKERS = 16  # each history export is two round trips (query, download): 8 left it latency-bound


@dataclass
class FetchResult:
    snapshot: Snapshot
    fetched: int
    reused: int
    seconds: float
    changed: bool = True  # False: nothing changed, only fetched_at was re-stamped
    skipped: int = 0  # runs found but left out (each named in a warning)

    @property
    def n_runs(self) -> int:
        return self.fetched + self.reused


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal (quiet otherwise)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label, self.total, self.done = label, total, 0
        self.start = self._last = time.monotonic()
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} "
                          f"{now - self.start:5.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ---- offline ------------------------------------------------------------------------------
def fetch_offline(offline_dir: str | Path, out: str | Path, checkpoints: str | Path | None = None,
                  progress: bool | None = None) -> FetchResult:
    """Snapshot every offline run under ``offline_dir`` (plus failure reports if given).

    ``out`` is checked before anything is written (``outdirs.check_snapshot_output``). A
    resumed run's folders are merged (``sources.offline_folders``); a run that cannot be
    read is left out with a warning, and when none can be read the fetch fails with the
    first cause (the previous snapshot stays). fetched_at is SOURCE_DATE_EPOCH or the
    newest run time, so the same input folder gives a byte-identical snapshot.
    """
    from .sources.offline import OfflineRunError
    from .sources.offline_folders import find_offline_runs, offline_root, read_run
    from .sources.steps import StepOutOfRange

    started = time.monotonic()
    _check_source_date_epoch()
    root = offline_root(offline_dir)  # the folder of the runs (``wandb/`` when given its parent)
    check_snapshot_output(out, [("the --offline-dir folder", root),
                                 ("the --checkpoints folder", checkpoints)])
    _check_checkpoints(checkpoints)
    runs = find_offline_runs(root, required=True)
    clean_leftovers(out)
    reports, about = (_matched_reports(checkpoints, [_offline_info(r) for r in runs])
                      if checkpoints else ({}, {}))
    newest: list[str] = []
    skipped: list[str] = []
    folders: dict[str, str] = {}
    bar = Progress("reading offline runs", len(runs), enabled=progress)

    def records() -> Iterator[RunRecord]:
        for run in runs:
            try:
                record = read_run(run)
            except (OfflineRunError, StepOutOfRange) as exc:
                skipped.append(f"skipped run {run.run_id}: {exc}")
                if newest:  # told at once; before the first readable run, only if one comes
                    LOG.warning("%s", skipped[-1])
                continue
            finally:
                bar.update()
            if not newest:
                for line in skipped:
                    LOG.warning("%s", line)
            if record.run_id in folders:
                raise SnapshotError(
                    f"run {record.run_id} is logged in {folders[record.run_id]} and in "
                    f"{run.files[0].parent.name}, whose files name different ids, so they are "
                    "not one run resumed. --> Do: move the copy you do not want out of "
                    f"{offline_dir}, then fetch again.")
            folders[record.run_id] = run.files[0].parent.name
            _attach(record, about)
            newest.append(record.meta.get("updated_at") or "")
            yield record
        if not newest:
            raise OfflineRunError(f"none of the {len(runs)} offline runs in {offline_dir} could "
                                  f"be read, so no snapshot was written; the first: "
                                  f"{skipped[0].split(': ', 1)[1]}")

    source = {"kind": "offline", "path": Path(os.path.abspath(root)).name,
              "checkpoints": Path(os.path.abspath(checkpoints)).name if checkpoints else None}
    try:
        path = _write(records(), out, source=source, failure_reports=reports,
                      fetched_at=lambda: _iso_or_none(max(newest, default="")))
    finally:
        bar.close()
    return FetchResult(open_snapshot(path), len(newest), 0, time.monotonic() - started,
                       skipped=len(skipped))


def _check_checkpoints(checkpoints: str | Path | None) -> None:
    """A ``--checkpoints`` that is not a folder is a typo, not "no failure reports"."""
    if checkpoints is not None and not Path(checkpoints).is_dir():
        what = "is not a folder" if Path(checkpoints).exists() else "does not exist"
        if not Path(checkpoints).is_absolute():
            what += f" (in {Path.cwd()})"
        raise SnapshotError(f"--checkpoints {checkpoints} {what}, so no "
                            "failure report could be read; nothing was written. --> Do: pass the "
                            "checkpoints/ folder that holds <run>/failure_reports/, or leave "
                            "--checkpoints out.")


def _check_source_date_epoch() -> None:
    """``SOURCE_DATE_EPOCH`` (the snapshot's fetched_at when set) must be a date, told before
    anything is fetched or written."""
    source_date()  # the one line naming it, as the build says it (snapshot.source_date)


def _write(records: Iterable[RunRecord], out: str | Path, **options: Any) -> Path:
    """``write_snapshot``; after an OS error (disk full, a read-only folder) the previous
    snapshot is put back if the error came between the two renames of the swap."""
    try:
        return write_snapshot(records, out, **options)
    except OSError:
        try:
            clean_leftovers(out)
        except OSError:  # the next fetch puts it back (snapshot._recover_swap)
            pass
        raise


def _check_unique(run_ids: list[str], project: str) -> None:
    """W&B listed each run once (a run listed twice would stop the write without a fix)."""
    seen: set[str] = set()
    for run_id in run_ids:
        if run_id in seen:
            raise SnapshotError(f"W&B listed run {run_id} of {project} twice, so the listing "
                                "is not one consistent view of the project (did runs change "
                                "while it was read?). --> Do: fetch again.")
        seen.add(run_id)


def _iso_or_none(stamp: str) -> str | None:
    if not stamp:
        return None
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when.astimezone(timezone.utc).isoformat()


# ---- failure reports ----------------------------------------------------------------------
def _matched_reports(checkpoints: str | Path, runs: list[RunInfo]
                     ) -> tuple[dict[str, list[Path]], dict[str, list[dict[str, Any]]]]:
    """Reports under ``checkpoints`` matched to ``runs`` (sources.report_files): run id ->
    paths, unmatched ones under ``snapshot.UNMATCHED_REPORTS``; and per run the summary of
    each report that parses (file, reason, collapse step), which the run's status reads.
    When no report fits any run (a folder of another study, reports kept elsewhere, or none
    at all) that is said once, naming the folder; else each report that fits no run, or
    several, is named with its candidates."""
    from .analysis.failure_reports import BrokenReport, parse_failure_report

    match = match_failure_reports(checkpoints, runs, log=False)
    if runs and not match.by_run:
        stray = f"; {len(match.unmatched)} report(s) there fit no run" if match.unmatched else ""
        LOG.warning("--checkpoints %s holds no failure report of any of the %d runs (looked for "
                    "<checkpoint_dir>/failure_reports/*.md, by each run's checkpoint_dir, format and "
                    "time, or <run id> folders%s). --> Do: pass the checkpoints folder of these runs "
                    "(or the trainer's working folder), or leave --checkpoints out if no run wrote a "
                    "report.", checkpoints, len(runs), stray)
    else:
        for problem in match.problems:
            LOG.warning("%s", problem)
    reports: dict[str, list[Path]] = dict(match.by_run)
    if match.unmatched:
        reports[UNMATCHED_REPORTS] = list(match.unmatched)
    about: dict[str, list[dict[str, Any]]] = {}
    for run_id, paths in match.by_run.items():
        for path in sorted(paths):
            try:
                parsed = parse_failure_report(path, run_id)
            except (BrokenReport, OSError):
                continue  # the site warns about it when it reads the report
            about.setdefault(run_id, []).append({"file": path.name, "reason": parsed["reason"],
                                                 "collapse_step": parsed["collapse_step"]})
    return reports, about


def _offline_info(run: Any) -> RunInfo:
    """RunInfo of an offline run (``offline_folders.OfflineRun``) from its records without
    the history; a resumed run's lifetime runs from its first part's start to its last
    part's end."""
    from .sources.offline import read_offline_run_info

    parts = [run_info(read_offline_run_info(path)) for path in run.files]
    starts = [p.start for p in parts if p.start is not None]
    ends = [p.end for p in parts if p.end is not None]
    last = parts[-1]
    return RunInfo(run_id=run.run_id, name=last.name, checkpoint_dir=last.checkpoint_dir,
                   format=last.format, start=min(starts, default=None), end=max(ends, default=None))


def _attach(record: RunRecord, about: dict[str, list[dict[str, Any]]]) -> None:
    """A run's matched, readable failure reports into its meta (the status reads them)."""
    if record.run_id in about:
        record.meta["failure_reports"] = about[record.run_id]


# ---- W&B API ------------------------------------------------------------------------------
def fetch_project(project: str, out: str | Path, *, states: Iterable[str] = DEFAULT_STATES,
                  per_page: int = 200, workers: int = DEFAULT_WORKERS, timeout: int | None = None,
                  checkpoints: str | Path | None = None, progress: bool | None = None,
                  filters: dict[str, Any] | None = None,
                  before_downloads: Callable[[], Any] | None = None) -> FetchResult:
    """Fetch ``ENTITY/PROJECT`` into a snapshot at ``out``, reusing unchanged runs; ``filters``
    (the study's W&B filter, ``extra.altgrad.filters``) is passed to the server.
    ``before_downloads`` is called once wandb, pandas and pyarrow are imported and wandb is
    logged in, before the first history download; not when nothing changed (the CLI freezes
    the garbage collector's view of the start-up objects there)."""
    from .sources import wandb_api as wa

    started = time.monotonic()
    check_snapshot_output(out, [("the --checkpoints folder", checkpoints)])
    _check_checkpoints(checkpoints)
    _check_source_date_epoch()
    clean_leftovers(out)  # of a fetch killed before, even if this one fails too
    states = list(states)
    entity = project.split("/")[0] if "/" in project else None
    api = wa.connect(timeout or wa.DEFAULT_TIMEOUT, entity)
    listed = wa.list_runs(api, project, states, per_page, filters)
    source = {"kind": "wandb_api", "project": project, "base_url": wa.base_url(),
              "filters": wa.run_filters(states, filters)}
    previous = _previous(out, source)
    records = [r.record for r in listed]
    _check_unique([r.run_id for r in records], project)
    reuse = {r.run_id: p for r in records if (p := _reusable(previous, r))}
    fresh = [r for r in listed if r.record.run_id not in reuse]
    reports, about = (_matched_reports(checkpoints, [run_info(r) for r in records])
                      if checkpoints else ({}, {}))
    for record in records:
        _attach(record, about)
    fetched_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    listing = listing_sha256(records)
    if previous is not None and not fresh and _same_listing(previous, listing, reports):
        return _nothing_changed(previous, fetched_at, listing, len(reuse), started)
    import pandas  # noqa: F401  # the full check and the write need them: imported here,
    import pyarrow.parquet  # noqa: F401  # not first in a download thread

    if reuse:
        _stand_in_histories([r for r in records if r.run_id in reuse], previous)
        _reuse_run_logs([r for r in records if r.run_id in reuse], previous)
    if previous is not None and _unchanged(previous, records, fresh, reports):
        return _nothing_changed(previous, fetched_at, listing, len(reuse), started)
    if before_downloads is not None:
        before_downloads()
    bar = Progress("fetching histories", len(fresh), enabled=progress)
    skipped: list[str] = []
    try:
        path = _write(_with_histories(listed, reuse, _history_and_log, workers, bar, skipped),
                      out, source=source, failure_reports=reports, fetched_at=fetched_at,
                      reuse_history=reuse, listing=listing)
    finally:
        bar.close()
    return FetchResult(open_snapshot(path), len(fresh) - len(skipped), len(reuse),
                       time.monotonic() - started, skipped=len(skipped))


def _history_and_log(listed: Any) -> Any:
    """A listed run's history; its environment, system metrics and console output
    (``sources/wandb_logs.py``, warnings only) into ``meta["run_log"]`` beside it."""
    from .sources import wandb_api as wa
    from .sources.wandb_logs import fetch_run_log

    history = wa.fetch_history(listed)
    log = fetch_run_log(listed.handle, listed.record.run_id)
    if log:
        listed.record.meta["run_log"] = log
    return history


def _reuse_run_logs(records: list[RunRecord], previous: Snapshot) -> None:
    """A reused run keeps the log the previous snapshot holds for it, as it keeps its history."""
    for record in records:
        log = previous.run_log(record.run_id)
        if log:
            record.meta["run_log"] = log


def _nothing_changed(previous: Snapshot, fetched_at: str, listing: str | None, reused: int,
                     started: float) -> FetchResult:
    restamp_snapshot(previous, fetched_at, listing)
    return FetchResult(open_snapshot(previous.path), 0, reused, time.monotonic() - started,
                       changed=False)


def _previous(out: str | Path, source: dict[str, Any]) -> Snapshot | None:
    """The snapshot at ``out`` if it came from the same project, server and filters, and its
    files are what its manifest says: a changed one is never reused (nor restamped as
    unchanged), so a re-fetch is the fix the build's error names."""
    try:
        snap = open_snapshot(out)
        if snap.manifest.get("source") != source:
            return None
        snap.verify()
    except SnapshotError as exc:
        LOG.info("not reusing the snapshot at %s: %s", out, exc)
        return None
    return snap


def _reusable(previous: Snapshot | None, record: RunRecord) -> Path | None:
    if previous is None:
        return None
    entry = previous.manifest["runs"].get(record.run_id)
    stamp = record.meta.get("updated_at") or ""
    path = previous.history_path(record.run_id) if entry else None
    if entry and stamp and entry.get("updated_at") == stamp and path is not None and path.is_file():
        return path
    return None


def _stand_in_histories(records: list[RunRecord], previous: Snapshot) -> None:
    """For reused runs, a two-column history that gives the run table the same ``steps`` and
    ``best_loss`` as the real one: the real history's last ``_step`` (from the file's Parquet
    statistics) and the previous table's ``best_loss``; and the rest of what the run table
    reads from a history (last good value, logging interval...: ``run_facts.history_facts``) from
    the previous table, in ``meta["history_facts"]``. The real history file is copied, not
    read."""
    import numpy as np
    import pandas as pd

    if previous.version < 2:  # its table predates these facts (a migration fills them empty,
        for record in records:  # and an empty last value reads as a NaN loss): the real history
            record.history = previous.history(record.run_id)
        return
    table = previous.runs(columns=["run_id", *FACT_COLUMNS]).set_index("run_id")
    for record in records:
        last = _last_step(previous.history_path(record.run_id))
        record.history = pd.DataFrame({
            "_step": np.array([] if last is None else [last], dtype=np.int64),
            "loss": np.array([] if last is None else [table.at[record.run_id, "best_loss"]],
                             dtype=np.float64)})
        facts = {k: _plain(table.at[record.run_id, k]) for k in FACT_COLUMNS}
        metric = facts["primary_metric"]
        facts.update(steps=_steps_of(record), primary_metric=metric if isinstance(metric, str) and metric else None,
                     last_value=math.nan if math.isfinite(facts["nonfinite_step"]) else facts["last_good_loss"])
        record.meta["history_facts"] = facts


#: Run-table columns made from a history (run_facts.history_facts) that a reused run keeps.
FACT_COLUMNS = ("best_loss", "primary_metric", "last_good_loss", "last_good_step",
                "nonfinite_step", "log_every")


def _plain(value: Any) -> Any:
    """A table cell as a plain value: NA -> NaN, numbers -> float, text as it is."""
    import pandas as pd

    if value is None or value is pd.NA:
        return math.nan
    return value if isinstance(value, str) else float(value)


def _steps_of(record: RunRecord) -> float:
    from .run_facts import steps_trained

    return steps_trained(record.summary, record.history)


def _last_step(path: Path) -> int | None:
    """The largest ``_step`` of a snapshot history file (None if it has no rows)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as file:  # 4x faster than pq.read_metadata here
        meta = file.metadata
    if meta.num_rows == 0:
        return None
    column = meta.schema.names.index("_step")
    stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
    if all(s is not None and s.has_min_max for s in stats):
        return int(max(s.max for s in stats))
    return int(pq.read_table(path, columns=["_step"])["_step"].to_numpy().max())


def _same_listing(previous: Snapshot, listing: str | None, reports: dict[str, list[Path]]) -> bool:
    """Nothing changed, told without pandas: every run reused (the caller checks), the same
    runs listed with the same meta, config and summary as when ``previous`` was written or
    last found unchanged (``listing`` against the manifest's; it covers every run id, in
    order), and the same failure reports."""
    if listing is None or previous.manifest.get(LISTING_KEY) != listing:
        return False
    return _report_files(previous) == _expected_reports(reports)


def _unchanged(previous: Snapshot, records: list[RunRecord], fresh: list[Any],
               reports: dict[str, list[Path]]) -> bool:
    """Would a full write give the previous snapshot's files, byte for byte?

    True when every listed run is reused (same heartbeat, history file present), the runs
    are the previous ones, the run table built from this listing (config, summary, tags...
    may change without a heartbeat) has the same bytes, and so have the failure reports.
    Reused records must already hold their stand-in histories.
    """
    if fresh or set(previous.manifest["runs"]) != {r.run_id for r in records}:
        return False
    if run_table_bytes(records) != (previous.path / RUNS_FILE).read_bytes():
        return False
    return _report_files(previous) == _expected_reports(reports)


def _report_files(previous: Snapshot) -> dict[tuple[str, str], bytes]:
    folder = previous.path / REPORTS_DIR
    return {(p.parent.name, p.name): p.read_bytes() for p in folder.glob("*/*") if p.is_file()}


def _expected_reports(reports: dict[str, list[Path]]) -> dict[tuple[str, str], bytes]:
    """What write_snapshot would copy: per run, by file name, the last of the sorted paths."""
    return {stored_report_name(run_id, Path(p)): read_user_bytes(p, Path(p).parent)
            for run_id, paths in reports.items() for p in sorted(paths)}


def _with_histories(listed: list[Any], reuse: dict[str, Path], fetch: Any, workers: int,
                    bar: Progress, skipped: list[str] | None = None) -> Iterator[RunRecord]:
    """Records in listing order; histories downloaded ahead by at most 2 x workers runs.

    A run whose history has a step no int64 holds is left out with a warning (its id is
    added to ``skipped``). On an error or an interrupt nothing more is started and nothing
    running is waited for (a download stuck on a slow server would hold the exit up to its
    timeout)."""
    from .sources.steps import StepOutOfRange

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="history")
    pending: deque[tuple[Any, Future | None]] = deque()
    queue = iter(listed)
    done = False
    try:
        while True:
            while len(pending) < 2 * max(1, workers):
                item = next(queue, None)
                if item is None:
                    break
                needed = item.record.run_id not in reuse
                pending.append((item, pool.submit(fetch, item) if needed else None))
            if not pending:
                done = True
                return
            item, future = pending.popleft()
            if future is not None:
                try:
                    item.record.history = future.result()
                except StepOutOfRange as exc:
                    LOG.warning("%s", exc)
                    if skipped is not None:
                        skipped.append(item.record.run_id)
                    continue
                finally:
                    bar.update()
            yield item.record
    finally:
        pool.shutdown(wait=done, cancel_futures=True)


# ---- what the site calls ------------------------------------------------------------------
def load_or_refresh(snapshot_dir: str | Path, project: str | None = None, *,
                    refresh: bool = True, **fetch_options: Any) -> tuple[Snapshot, str | None]:
    """The snapshot at ``snapshot_dir``, refreshed from W&B when it came from W&B.

    ``project`` (``ENTITY/PROJECT``) defaults to the project the snapshot was fetched from;
    an offline or bundled snapshot with no project, or any snapshot with ``refresh=False``,
    is returned as it is, without touching the network. Unchanged runs are
    never downloaded again. When W&B cannot be reached (no key, bad key, server down) and a
    snapshot exists, it is returned with the reason as the second value (stale); with no
    snapshot to fall back on, the error is raised.
    """
    from .sources.wandb_api import WandbSourceError

    try:
        current = open_snapshot(snapshot_dir)
    except SnapshotError:
        current = None
    source = current.manifest.get("source", {}) if current else {}
    if project is None and source.get("kind") == "wandb_api":
        project = source.get("project")
    if project is None or not refresh:
        if current is None:
            open_snapshot(snapshot_dir)  # raises the helpful "no snapshot" error
        return current, None
    try:
        return fetch_project(project, snapshot_dir, **fetch_options).snapshot, None
    except WandbSourceError as exc:
        if current is None:
            raise
        LOG.warning("using the existing snapshot %s: %s", snapshot_dir, exc)
        return current, str(exc)
