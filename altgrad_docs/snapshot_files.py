"""A snapshot's files checked against the sha256 its manifest lists, when they are opened.

A snapshot is what its manifest says, or it is not read: every file is hashed as it is read
(:func:`read_checked`) and compared with the manifest's ``files`` entry, so a changed history
file or run table stops the build with one line naming the file instead of publishing the
changed values under the manifest's hash. The top ``sha256`` is a digest of that file list
(:func:`files_digest`), so it names verified content and can key every cache.

Hashing is cheap but not free (the 288-run bundled snapshot, 7.7 MB: benchmarks/site.md), and
``mkdocs serve`` re-reads the snapshot on every reload: a digest, once computed, is kept for
the life of the process by the file's identity (device, inode, size, mtime and ctime in ns;
ctime cannot be set back by a writer), so an unchanged file is not hashed again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

#: Read and hash in blocks of this many bytes.
BLOCK = 1 << 20
#: abs path -> (identity, sha256) of content hashed in this process.
_KNOWN: dict[str, tuple[tuple[int, ...], str]] = {}


class SnapshotError(RuntimeError):
    """A snapshot folder is missing, incomplete, changed or of an unknown version."""


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(BLOCK), b""):
            h.update(chunk)
    return h.hexdigest()


def files_digest(files: Mapping[str, str]) -> str:
    """The snapshot's ``sha256``: over every listed file (relative POSIX path and sha256) in
    the order of their path parts, as ``Path`` sorts them (so the digest of a folder written
    before files were listed, which hashed the sorted paths, is the same)."""
    h = hashlib.sha256()
    for rel in sorted(files, key=lambda r: r.split("/")):
        h.update(rel.encode("utf-8", "surrogatepass") + b"\0" + files[rel].encode() + b"\n")
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of ``path``, hashed once per process while the file stays the same file."""
    key = os.path.abspath(path)
    known = _KNOWN.get(key)
    if known is not None and known[0] == _identity(os.stat(path)):
        return known[1]  # a stat, no open: what a serve reload pays per file
    with open(path, "rb") as fh:
        before = _identity(os.fstat(fh.fileno()))
        h = hashlib.sha256()
        for chunk in iter(lambda: fh.read(BLOCK), b""):
            h.update(chunk)
        after = _identity(os.fstat(fh.fileno()))
    digest = h.hexdigest()
    if before == after:  # not written to while it was read
        _KNOWN[key] = (after, digest)
    return digest


def read_checked(path: Path, expected: str | None, fix: str) -> bytes:
    """The bytes of ``path`` if their sha256 is ``expected``; else a :class:`SnapshotError`
    naming the file, what is wrong and ``fix`` (the command that makes the snapshot again).

    Read once: the bytes returned are the bytes hashed. ``expected`` None: the manifest lists
    no such file."""
    if expected is None:
        raise SnapshotError(f"snapshot file {path} is not listed in the snapshot's manifest --> Do: {fix}")
    key = os.path.abspath(path)
    try:
        with open(path, "rb") as fh:
            before = _identity(os.fstat(fh.fileno()))
            data = fh.read()
            after = _identity(os.fstat(fh.fileno()))
    except OSError as exc:
        raise unreadable(path, exc, fix) from None
    known = _KNOWN.get(key)
    if before == after and known is not None and known == (after, expected):
        return data
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise changed(path, digest, expected, fix)
    if before == after:
        _KNOWN[key] = (after, digest)
    return data


def check_file(path: Path, expected: str | None, fix: str) -> None:
    """Raise :class:`SnapshotError` unless ``path`` has the sha256 ``expected`` (see
    :func:`read_checked`); a file unchanged since it was last hashed is not read again."""
    if expected is None:
        raise SnapshotError(f"snapshot file {path} is not listed in the snapshot's manifest --> Do: {fix}")
    try:
        digest = file_digest(path)
    except OSError as exc:
        raise unreadable(path, exc, fix) from None
    if digest != expected:
        raise changed(path, digest, expected, fix)


def changed(path: Path, digest: str, expected: str, fix: str) -> SnapshotError:
    return SnapshotError(f"snapshot file {path} is not the file the snapshot was written with "
                         f"(sha256 {digest[:12]}, its manifest lists {expected[:12]}): it was changed, "
                         f"cut short or replaced --> Do: {fix}")


def unreadable(path: Path, exc: OSError, fix: str) -> SnapshotError:
    """One line for an OS error on a snapshot file: missing, a folder, no permission..."""
    if isinstance(exc, FileNotFoundError):
        return SnapshotError(f"snapshot file {path} is missing --> Do: {fix}")
    cause = exc.strerror or type(exc).__name__
    return SnapshotError(f"snapshot file {path} cannot be read ({cause}) --> Do: check that it is a "
                         f"readable file, or {fix}")


def forget(path: Path | None = None) -> None:
    """Drop the kept digests (of one file, or all): for tests and benchmarks."""
    if path is None:
        _KNOWN.clear()
    else:
        _KNOWN.pop(os.path.abspath(path), None)
