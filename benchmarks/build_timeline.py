"""When each stage of one `mkdocs build` starts and ends (run by hand; see benchmarks/site.md).

    ALTGRAD_SNAPSHOT=SNAP ALTGRAD_CACHE_DIR=EMPTY_DIR .venv/bin/python benchmarks/build_timeline.py SITE_DIR

Runs `mkdocs build -q --strict -d SITE_DIR` in this process with some stages wrapped so that
each prints its wall-clock time from the start: the analysis, the start of the report
figures' drawing, MkDocs' Markdown conversion of the pages, the wait for the figures, the
theme pass. The wrappers only print; the build is the normal one (drawing and trace workers
included: run from the repository root so that they import this checkout).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
START = time.perf_counter()


def mark(what: str) -> None:
    print(f"{time.perf_counter() - START:7.2f} s  {what}", flush=True)


def around(owner: Any, name: str, before: str | Callable[..., str], after: str | None = None) -> None:
    """Wrap ``owner.name`` so that it prints ``before`` (text, or a function of the call's
    arguments) when called and ``after`` when it returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        mark(before(*args, **kwargs) if callable(before) else before)
        result = original(*args, **kwargs)
        if after:
            mark(after)
        return result

    setattr(owner, name, wrapped)


def first_call(owner: Any, name: str, what: str) -> None:
    """Print ``what`` when ``owner.name`` is called the first time."""
    original, seen = getattr(owner, name), []

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        if not seen:
            seen.append(True)
            mark(what)
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


def instrument() -> None:
    import mkdocs.commands.build as mkdocs_build

    from altgrad_docs.report import drawing
    from altgrad_docs.site import analysis, pipeline

    around(analysis, "analyse_cached", "analysis start", "analysis done")
    around(drawing.Drawing, "start", lambda d: f"figures start ({len(d.missing)} missing, {d.workers} workers)",
           "figures handed to the workers (start returned)")
    around(pipeline, "finish_drawing", "waiting for the figures", "figures in place")
    first_call(mkdocs_build, "_populate_page", "Markdown of the pages starts")
    first_call(mkdocs_build, "_build_page", "theme and search pass starts")


if __name__ == "__main__":  # workers start with forkserver: only the main process builds
    from mkdocs.__main__ import cli

    instrument()
    try:
        cli(["build", "-q", "--strict", "-d", sys.argv[1]])
    except SystemExit as stop:
        if stop.code:
            raise
    mark("end")
