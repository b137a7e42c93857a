"""Reading files the user hands us (failure reports, offline run logs): one gate for all.

A snapshot is published, so anything read into it is published too. A failure report that
is a symlink would copy its target (any file the user can read) onto a public run page; a
FIFO would hang the fetch; a 2 GB or binary "report" would end up in the HTML. Every read of
a user file therefore goes through :func:`open_user_file`, which refuses

* a path outside the folder it was found in (``root``),
* a symlink, the file itself or any folder between ``root`` and it,
* anything that is not a regular file (FIFO, device, socket, folder),

and opens with ``O_NOFOLLOW`` so the check and the read see the same file. Text is decoded
strictly (:func:`read_user_text`): what cannot be shown as it is (binary, not UTF-8, cut
short inside a character, too large, control characters) is named in ``problems`` and the
page says so (a template branch per problem), never shows mojibake or NUL bytes.

The ground floor: imports nothing of the project.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Failure reports are a few KiB; more than this is shown only up to here.
MAX_TEXT_BYTES = 256 * 1024
#: C0 control characters but tab and newline, and DEL: not text a page can show.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
#: The problems a text may have, in the order a page lists them.
PROBLEMS = ("refused", "binary", "not_utf8", "huge", "truncated", "control")


class RefusedFile(OSError):
    """A user file that must not be read: outside its folder, a symlink, not a regular file.

    ``reason`` says why without the path (for a published page, which must not show local
    paths); ``str()`` gives both (for the log)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class UserText:
    """A user file's text as it may be shown, and what had to be left out (``problems``)."""

    name: str
    text: str
    size: int  # bytes on disk (0 when refused)
    problems: tuple[str, ...] = ()
    detail: str = ""  # e.g. where the first byte that is not UTF-8 is


def _outside(path: Path, root: Path) -> bool:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel)


def check_user_file(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """``path`` if it may be read as a user file found under ``root``; else RefusedFile.

    Both are taken as the user typed them: a relative ``path`` is relative to the working
    folder, as for ``open()``, not to ``root`` (``wandb/offline-run-x/run-x.wandb`` under
    ``wandb`` is one folder deep, never ``wandb/wandb/...``). ``root`` itself may be a
    symlink (the user chose it); nothing below it may be."""
    path, root = Path(path), Path(root)
    if _outside(path, root):
        raise RefusedFile(path, f"outside the folder {root.name or root}")
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    current = Path(os.path.abspath(root))
    for part in rel.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise RefusedFile(path, "no such file") from None
        if stat.S_ISLNK(mode):
            raise RefusedFile(path, "a symbolic link (links are never followed)")
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise RefusedFile(path, "not a regular file")
    return path


def open_user_file(path: str | os.PathLike, root: str | os.PathLike) -> BinaryIO:
    """Open a checked user file for reading bytes (``O_NOFOLLOW``, non-blocking open so a
    FIFO swapped in after the check cannot hang us; the opened file is checked again)."""
    path = check_user_file(path, root)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise RefusedFile(path, f"cannot be opened ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RefusedFile(path, "not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_user_bytes(path: str | os.PathLike, root: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a checked user file; at most ``limit + 1`` of them when a limit is given
    (so the caller can tell that there were more)."""
    with open_user_file(path, root) as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


def copy_user_file(path: str | os.PathLike, root: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy a checked user file verbatim to ``dest`` (never a link's target)."""
    with open_user_file(path, root) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)


def decode_text(name: str, data: bytes, size: int, limit: int = MAX_TEXT_BYTES) -> UserText:
    """Bytes as showable text, strictly: see :class:`UserText` and :data:`PROBLEMS`."""
    problems: list[str] = []
    if b"\0" in data:
        return UserText(name, "", size, ("binary",), "NUL bytes")
    if len(data) > limit:
        data, problems = data[:limit], ["huge"]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":
            return UserText(name, "", size, ("not_utf8",), f"{exc.reason} at byte {exc.start}")
        text = data[: exc.start].decode("utf-8")  # cut inside a character: by us or by a crash
        if not problems:
            problems.append("truncated")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL.search(text):
        text = _CONTROL.sub("\ufffd", text)
        problems.append("control")
    return UserText(name, text, size, tuple(problems))


def read_user_text(path: str | os.PathLike, root: str | os.PathLike, limit: int = MAX_TEXT_BYTES) -> UserText:
    """A user file's text for a page; a refused file gives ``problems == ("refused",)``."""
    name = Path(path).name
    try:
        with open_user_file(path, root) as fh:
            size, data = os.fstat(fh.fileno()).st_size, fh.read(limit + 1)
    except RefusedFile as exc:
        return UserText(name, "", 0, ("refused",), exc.reason)
    except OSError as exc:  # unreadable after the check
        return UserText(name, "", 0, ("refused",), exc.strerror or type(exc).__name__)
    return decode_text(name, data, max(size, len(data)), limit)
