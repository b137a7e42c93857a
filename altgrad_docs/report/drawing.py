"""Draw many cached figures at once, on every core.

A cold build draws the report figures (a few, but each with every run in it). Matplotlib
holds the GIL, so threads do not help: each missing figure is drawn in a worker process
(``concurrent.futures.ProcessPoolExecutor`` with a ``forkserver`` context, ``spawn`` where
there is none: never ``fork``, which would copy the parent's threads and locks). Each figure
is drawn alone with fixed metadata by :func:`export.save_figure`, so its bytes do not depend
on which process drew it or in what order: the build stays byte-identical.

A job's ``draw`` runs in the worker, so it must pickle: a module-level function, or a
``functools.partial`` of one. Large shared inputs (the analysis) go to each worker once,
through ``initializer(*initargs)``, not with every job.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import export
from ..pickled_call import call_pickled, pickled_call

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Job:
    """One figure: ``name`` and ``key_parts`` make its cache key; ``stem`` is where it goes."""

    name: str
    key_parts: tuple
    stem: Path
    draw: Callable[[], Figure]


def workers_wanted() -> int:
    """``ALTGRAD_WORKERS`` if set (1 = draw in this process), else the number of usable cores."""
    env = os.environ.get("ALTGRAD_WORKERS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def process_context() -> multiprocessing.context.BaseContext:
    """How worker processes start here: ``forkserver`` (``spawn`` where there is none), never
    ``fork``, which would copy the parent's threads and locks (``mkdocs serve`` has threads)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _release_when_done(pool: ProcessPoolExecutor, futures: list[Any], _done: Any) -> None:
    """Let the workers exit once the last figure is drawn: the caller may wait for the files
    much later (:meth:`Drawing.finish`), and each idle worker still holds its copy of the
    analysis and matplotlib (a few hundred MiB at 1,000 runs)."""
    if all(f.done() for f in futures):
        pool.shutdown(wait=False)


def _draw_into(draw: Callable[[], Figure], cached: Path, formats: tuple[str, ...]) -> None:
    export.save_figure(draw(), cached, formats)
    if multiprocessing.parent_process() is not None:  # a worker: give the figure's memory back
        _return_freed_memory()


def _return_freed_memory() -> None:
    """Free the drawn figure (matplotlib artists hold reference cycles) and hand the freed
    heap back to the system. glibc keeps it otherwise: a worker that drew the 1,000-run loss
    curves stayed 146 MiB larger for the rest of the build (402 MiB; 256 MiB after a trim),
    and two such workers beside the main process took a cold build's peak over 1 GiB."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc (macOS, musl): nothing to trim this way
        pass


class Drawing:
    """Figures being drawn: :meth:`start` hands the missing ones to worker processes and
    returns at once, so the caller can do other work (the run pages) meanwhile; :meth:`finish`
    waits, and copies every figure to its stem."""

    def __init__(self, jobs: Sequence[Job], cache_dir: str | Path, formats: Sequence[str] = export.FORMATS,
                 initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = (),
                 workers: int | None = None) -> None:
        self.jobs, self.formats = list(jobs), tuple(formats)
        self.initializer, self.initargs = initializer, initargs
        self.stems = [export.cached_stem(j.name, j.key_parts, cache_dir, self.formats) for j in self.jobs]
        self.missing = [(j, c) for j, c in zip(self.jobs, self.stems) if not export.is_cached(c, self.formats)]
        self.workers = min(workers or workers_wanted(), len(self.missing))
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Any] = []

    def start(self) -> Drawing:
        if self.workers > 1 and self.pool is None:
            # The initializer and its arguments (the analysis: MBs) go to the workers as one
            # bytes object, pickled once, that a worker reads without importing anything
            # (altgrad_docs/pickled_call.py): this process waited ~1.7 s for the workers'
            # imports otherwise, one worker after the other (benchmarks/site.md, issue 23).
            init = (call_pickled, (pickled_call(self.initializer, self.initargs),)) if self.initializer else (None, ())
            self.pool = ProcessPoolExecutor(self.workers, mp_context=process_context(),
                                            initializer=init[0], initargs=init[1])
            self.futures = [self.pool.submit(_draw_into, j.draw, c, self.formats) for j, c in self.missing]
            for future in self.futures:
                future.add_done_callback(partial(_release_when_done, self.pool, self.futures))
        return self

    def cancel(self) -> None:
        """Stop the workers (the caller failed and will not wait for the figures)."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    @property
    def pending(self) -> bool:
        """Figures are still to be drawn (:meth:`finish` has not run)."""
        return bool(self.missing)

    def paths(self) -> list[dict[str, Path]]:
        """Each job's files at its stem (ext -> path), in job order, without waiting: where
        :meth:`finish` puts them, so pages can name them while the figures are drawn."""
        return [{ext: j.stem.parent / f"{j.stem.name}.{ext}" for ext in self.formats} for j in self.jobs]

    def finish(self) -> list[dict[str, Path]]:
        """Each job's files at its stem (ext -> path), in job order."""
        if self.pool is not None:
            try:
                for future in self.futures:
                    future.result()  # a worker's exception is raised here, with its traceback
            finally:
                self.pool.shutdown(cancel_futures=True)
                self.pool = None
        elif self.missing:
            if self.initializer is not None:
                self.initializer(*self.initargs)
            for job, cached in self.missing:
                _draw_into(job.draw, cached, self.formats)
        self.missing = []
        return [export.copy_cached(c, j.stem, self.formats) for j, c in zip(self.jobs, self.stems)]


def render_many(jobs: Sequence[Job], cache_dir: str | Path, formats: Sequence[str] = export.FORMATS,
                initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = (),
                workers: int | None = None) -> list[dict[str, Path]]:
    """Each job's files at its stem (ext -> path), in job order; figures missing from
    ``cache_dir`` are drawn first, in parallel when more than one is missing."""
    return Drawing(jobs, cache_dir, formats, initializer, initargs, workers).start().finish()
