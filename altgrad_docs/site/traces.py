"""Every run's trace (``analysis.curves.make_trace``) read on every core.

The analysis reads each history once to make its trace: at 1,000 runs x 10,000 steps that is
most of a cold build's analysis, on one core while the other waits. The traces are pure
functions of one history each, so chunks of runs go to worker processes (``forkserver``, as
:mod:`report.drawing`; never ``fork``) that open the snapshot themselves and send the traces
back; the result is the same dict, in the same order, as reading them one after another.
Small snapshots are read in this process: starting workers costs more than it saves.
``also(run_id, history)`` (picklable: it may run in a worker) is handed every history read,
so that a run page's chart is made from the same read (``site.pages.make_chart``).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from ..analysis.curves import Trace, collect_traces
from ..analysis.metrics import MetricMap
from ..report.drawing import process_context, workers_wanted
from ..snapshot import Snapshot, open_snapshot
from .progress import SlowProgress

PerHistory = Callable[[str, pd.DataFrame], None]
#: Fewer runs than this are read in this process.
PARALLEL_FROM = 100


def read_traces(snapshot: Snapshot, budgets: dict[str, int], max_points: int = 300,
                workers: int | None = None, also: PerHistory | None = None,
                metric_map: MetricMap | None = None) -> dict[str, Trace]:
    """run_id -> its Trace for every run of the snapshot, in the snapshot's run order
    (``metric_map``: which key is the train loss, the primary metric, each rate)."""
    run_ids = [str(r) for r in snapshot.run_ids]
    workers = min(workers or workers_wanted(), max(1, len(run_ids) // 25))
    progress = SlowProgress("histories read", len(run_ids))
    if workers <= 1 or len(run_ids) < PARALLEL_FROM:
        return _traces_of(snapshot, run_ids, budgets, max_points, also, metric_map, progress)
    chunks = [run_ids[i::workers * 4] for i in range(workers * 4)]  # interleaved: even work per chunk
    found: dict[str, Trace] = {}
    with ProcessPoolExecutor(workers, mp_context=process_context()) as pool:
        parts = pool.map(_traces_in_worker, [snapshot] * len(chunks), chunks,
                         [{r: budgets[r] for r in c if r in budgets} for c in chunks],
                         [max_points] * len(chunks), [also] * len(chunks), [metric_map] * len(chunks))
        for part in parts:
            found.update(part)
            progress.step(len(part))
    return {run_id: found[run_id] for run_id in run_ids}


def _traces_of(snapshot: Snapshot, run_ids: Sequence[str], budgets: dict[str, int],
               max_points: int, also: PerHistory | None = None,
               metric_map: MetricMap | None = None, progress: SlowProgress | None = None) -> dict[str, Trace]:
    return collect_traces(_handed(snapshot.iter_histories(run_ids=run_ids), also, progress), max_points,
                          budgets=budgets, metric_map=metric_map)


def _handed(histories, also: PerHistory | None, progress: SlowProgress | None = None):
    for run_id, frame in histories:
        if also is not None:
            also(run_id, frame)
        yield run_id, frame
        if progress is not None:
            progress.step()


def _traces_in_worker(snapshot: Snapshot | Path, run_ids: Sequence[str], budgets: dict[str, int],
                      max_points: int, also: PerHistory | None,
                      metric_map: MetricMap | None = None) -> dict[str, Trace]:
    """In a worker: the snapshot as the parent opened it (its manifest, which the parent's
    caches are keyed on, and its files' digests), so every file is checked against it."""
    if not isinstance(snapshot, Snapshot):
        snapshot = open_snapshot(snapshot)
    return _traces_of(snapshot, run_ids, budgets, max_points, also, metric_map)
