"""A worker-process initializer whose function and arguments arrive as one bytes object.

Why a module of its own, importing nothing but :mod:`pickle`: a ``forkserver`` (or ``spawn``)
worker is started by writing its start-up data (the pickled process object: the initializer,
its arguments) into a pipe, and the parent waits until the worker has read all of it. The
worker unpickles as it reads, importing every module a pickled reference names; with data
larger than the pipe holds, the parent waits for those imports, one worker after the other.
Handed over as ``call_pickled(blob)``, the worker reads the bytes at once (this module is all
it imports for them) and imports and unpickles what they hold in its initializer, while the
parent goes on. Used by :meth:`altgrad_docs.report.drawing.Drawing.start`.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable


def pickled_call(function: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """``function(*args)`` as bytes for :func:`call_pickled` (pickled once, for every worker)."""
    return pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)


def call_pickled(blob: bytes) -> None:
    """Call what :func:`pickled_call` packed (a worker's initializer)."""
    function, args = pickle.loads(blob)
    function(*args)
