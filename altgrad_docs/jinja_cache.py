"""Compiled Jinja2 templates kept between renders and between processes.

Every ``mkdocs build`` is a fresh process that would compile the site's and the reports'
templates again from source: about 0.2 s of a 100-run warm build (benchmarks/site.md).
:class:`KeptBytecode` keeps them in memory (``mkdocs serve`` rebuilds) and, given a folder,
on disk in the build cache. Jinja checks every entry against a checksum of the template's
source and against its own and Python's bytecode version, so an edited template is compiled
anew. What it does not check is the environment the code was compiled by (block syntax,
``trim_blocks``, extensions, filters): :func:`keep_compiled` files each environment's code
under a digest of those settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

#: Environment settings the compiled code depends on.
_SETTINGS = ("block_start_string", "block_end_string", "variable_start_string",
             "variable_end_string", "comment_start_string", "comment_end_string",
             "line_statement_prefix", "line_comment_prefix", "trim_blocks", "lstrip_blocks",
             "newline_sequence", "keep_trailing_newline", "optimized", "is_async")


class KeptBytecode(jinja2.BytecodeCache):
    """Compiled templates in memory for the life of the process and, with ``folder``, in
    files there. A file that cannot be read or decoded is compiled anew, one that cannot be
    written is left out: the cache only ever saves time."""

    def __init__(self, folder: Path | None = None) -> None:
        self._code: dict[str, bytes] = {}
        self.folder = folder

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is None and self.folder is not None:
            try:
                code = (self.folder / f"{bucket.key}.bc").read_bytes()
            except OSError:
                return
        if code is None:
            return
        try:
            bucket.bytecode_from_string(code)  # a stale source or version: bucket.code stays None
        except Exception:  # noqa: BLE001 - a damaged file: compile from source
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        self._code[bucket.key] = code
        if self.folder is None:
            return
        target = self.folder / f"{bucket.key}.bc"
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(code)
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


_KEPT: dict[tuple[Path | None, str], KeptBytecode] = {}


def settings_digest(env: jinja2.Environment) -> str:
    """A digest of what an environment's compiled code depends on besides the source."""
    parts = [jinja2.__version__, sys.version, repr(env.autoescape)]
    parts += [f"{name}={getattr(env, name)!r}" for name in _SETTINGS]
    parts += sorted(f"{type(ext).__module__}.{type(ext).__qualname__}" for ext in env.extensions.values())
    parts += sorted(env.filters) + ["|"] + sorted(env.tests)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def keep_compiled(env: jinja2.Environment, folder: Path | None = None) -> jinja2.Environment:
    """Give ``env`` (its filters and tests set) a cache of compiled templates, in memory and,
    with ``folder``, in ``folder/<settings digest>``; one cache per place and settings,
    shared by the environments of later rebuilds in this process."""
    digest = settings_digest(env)
    key = (None if folder is None else Path(folder), digest)
    if key not in _KEPT:
        _KEPT[key] = KeptBytecode(None if folder is None else Path(folder) / digest)
    env.bytecode_cache = _KEPT[key]
    return env
