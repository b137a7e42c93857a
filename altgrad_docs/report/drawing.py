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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import export

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


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _draw_into(draw: Callable[[], Figure], cached: Path, formats: tuple[str, ...]) -> None:
    export.save_figure(draw(), cached, formats)


def render_many(jobs: Sequence[Job], cache_dir: str | Path, formats: Sequence[str] = export.FORMATS,
                initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = (),
                workers: int | None = None) -> list[dict[str, Path]]:
    """Each job's files at its stem (ext -> path), in job order; figures missing from
    ``cache_dir`` are drawn first, in parallel when more than one is missing."""
    formats = tuple(formats)
    stems = [export.cached_stem(job.name, job.key_parts, cache_dir, formats) for job in jobs]
    missing = [(job, cached) for job, cached in zip(jobs, stems) if not export.is_cached(cached, formats)]
    n = min(workers or workers_wanted(), len(missing))
    if n > 1:
        with ProcessPoolExecutor(n, mp_context=_context(), initializer=initializer, initargs=initargs) as pool:
            futures = [pool.submit(_draw_into, job.draw, cached, formats) for job, cached in missing]
            for future in futures:
                future.result()  # a worker's exception is raised here, with its traceback
    elif missing:
        if initializer is not None:
            initializer(*initargs)
        for job, cached in missing:
            _draw_into(job.draw, cached, formats)
    return [export.copy_cached(cached, job.stem, formats) for job, cached in zip(jobs, stems)]
