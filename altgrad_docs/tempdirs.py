"""Temporary folders that outlive no fetch: named by the pid that made them, removed on the
way out (also on SIGINT/SIGTERM) and, when that process was killed (SIGKILL, a lost
machine), by the next run that finds them with their process gone.

Two kinds: the snapshot writer's ``.<name>.tmp-<pid>-*`` beside the snapshot (see
``snapshot.write_snapshot``), and the private TMPDIR a fetch gives wandb
(:func:`private_tmpdir`): wandb makes ``tmp*wandb-media`` / ``tmp*wandb-artifacts`` folders
that only its exit hook removes, and a failed fetch ends without it (``cli``).

The ground floor: imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

FETCH_TMP_PREFIX = "altgrad-fetch-"
_PID = re.compile(r"(\d+)(?:-|$)")


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may be another one, if pids wrapped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid(name: str, prefix: str) -> int | None:
    """The pid in ``<prefix><pid>-...``; None when the name has none (an older version's)."""
    found = _PID.match(name[len(prefix):]) if name.startswith(prefix) else None
    return int(found.group(1)) if found else None


def remove_stale(folder: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove the entries ``<prefix>*`` of ``folder`` whose process is gone; returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = owner_pid(entry.name, prefix)
        if pid is not None and (pid == os.getpid() or alive(pid)):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def make_owned_dir(folder: str | os.PathLike, prefix: str) -> Path:
    """A new folder ``<prefix><pid>-<random>`` in ``folder``, after removing stale ones."""
    remove_stale(folder, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=folder))


@contextlib.contextmanager
def private_tmpdir() -> Iterator[Path]:
    """TMPDIR (and ``tempfile``'s cached temp dir) set to a folder of this process for the
    block, removed after it however the block ends. Set it before wandb starts: wandb-core
    inherits the environment, so its temp files land there too."""
    base = tempfile.gettempdir()
    saved_env, saved_cached = os.environ.get("TMPDIR"), tempfile.tempdir
    path = make_owned_dir(base, FETCH_TMP_PREFIX)
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        tempfile.tempdir = saved_cached
        shutil.rmtree(path, ignore_errors=True)
