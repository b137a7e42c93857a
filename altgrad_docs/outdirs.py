"""Where a command may write: an output folder never replaces what is not ours.

``fetch --out`` and ``render --out`` replace the whole folder they are given. So before
anything is written (no temp folder, no clean-up of leftovers) the folder is checked, and a
refusal is one line with the fix (:class:`OutputRefused`, exit 2 from the CLI):

* a regular file (or a path under one) is never an output folder;
* an input (``--offline-dir``, ``--checkpoints``; for ``render`` the config, its docs,
  templates, overrides and snapshot) is never the output, inside it, or inside the output:
  for unsynced offline runs the input folder is the only copy;
* an existing folder that is not empty must be one this tool wrote; for a snapshot that is
  told by :func:`foreign_to_snapshot`: a snapshot manifest, and nothing in the folder that a
  snapshot does not hold (a user's ``thesis.tex`` put into an old snapshot folder is not
  deleted by the next fetch either).

Paths are taken as typed, relative to the working folder; links are resolved before two
paths are compared, so a symlink to the input is the input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .snapshot import HISTORY_DIR, MANIFEST, REPORTS_DIR, RUNS_FILE, SnapshotError
from .snapshot_read import LOGS_DIR

#: What a snapshot folder holds at its top (snapshot.py's layout); ``.manifest.json.tmp-*``
#: is a re-stamp in progress or killed (removed by the next one).
SNAPSHOT_ENTRIES = frozenset({MANIFEST, RUNS_FILE, HISTORY_DIR, REPORTS_DIR, LOGS_DIR})
_RESTAMP_PREFIX = f".{MANIFEST}.tmp-"
#: Keys every snapshot manifest has had, whatever its schema version.
MANIFEST_KEYS = frozenset({"schema_version", "source", "runs", "sha256"})


class OutputRefused(SnapshotError):
    """An output folder that must not be written (the message says why and what to do)."""


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output(out: str | os.PathLike, inputs: Iterable[tuple[str, str | os.PathLike | None]],
                 option: str = "--out", name: str = "snapshot") -> Path:
    """``out`` as a Path if it is neither a file nor an input, nor inside or around one;
    else :class:`OutputRefused`. ``inputs`` are ``(what, path)`` pairs (``path`` None: not
    given; ``what`` as in "the --offline-dir folder"); ``name`` is the folder name a fix
    suggests. Whether a non-empty folder is ours is the caller's check (it knows its layout)."""
    out = Path(out)
    for ancestor in (out, *out.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                where = "is a file" if ancestor == out else f"is under {ancestor}, which is a file"
                raise OutputRefused(
                    f"{option} {out} {where}, not a folder; it is left alone and nothing was written. --> Do: pass "
                    f"{option} a folder that does not exist yet, is empty, or holds an earlier "
                    "output of altgrad-docs.")
            break
    real_out = _real(out)
    for what, given in inputs:
        if given is None:
            continue
        real_in = _real(given)
        if real_out == real_in:
            how = f"is {what} itself"
        elif _within(real_out, real_in):
            how = f"is inside {what} {given}"
        elif _within(real_in, real_out):
            how = f"contains {what} {given}"
        else:
            continue
        raise OutputRefused(
            f"{option} {out} {how}: writing there would replace what was read, so nothing "
            f"was written. --> Do: pass {option} a folder outside it, e.g. "
            f"{_beside(real_in, real_out, name)}.")
    return out


def _beside(real_in: Path, real_out: Path, name: str) -> str:
    """A suggestion: a new folder next to the input (or, for a root input, in the working
    folder), named after the output when it was inside the input, else ``name``."""
    base = real_in.parent if real_in.parent != real_in else Path.cwd()
    inside = real_out != real_in and _within(real_out, real_in)
    candidate = base / (real_out.name if inside else name)
    if _within(candidate, real_in) or _within(real_in, candidate):
        candidate = base / f"altgrad-{name}"
    try:
        return os.path.relpath(candidate)
    except ValueError:  # another drive (Windows)
        return str(candidate)


def foreign_to_snapshot(folder: Path) -> str | None:
    """Why ``folder`` (an existing, non-empty folder) is not a snapshot this tool wrote, or
    None when it is one. Only its listing and manifest are read, never a link followed."""
    manifest = folder / MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        return f"it holds no {MANIFEST}"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"its {MANIFEST} is not a snapshot manifest"
    if not isinstance(data, dict) or not MANIFEST_KEYS <= set(data):
        return f"its {MANIFEST} is not a snapshot manifest"
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name not in SNAPSHOT_ENTRIES and not entry.name.startswith(_RESTAMP_PREFIX):
            return f"it holds {entry.name}, which no snapshot holds"
        if entry.is_symlink():
            return f"{entry.name} is a symbolic link"
        if entry.name in (HISTORY_DIR, REPORTS_DIR, LOGS_DIR) and not entry.is_dir():
            return f"{entry.name} is not a folder"
    history, reports = folder / HISTORY_DIR, folder / REPORTS_DIR
    for path in _entries(history):
        if path.is_symlink() or not path.is_file() or path.suffix != ".parquet":
            return f"{HISTORY_DIR}/ holds {path.name}, which is not a history file"
    for path in _entries(folder / LOGS_DIR):
        if path.is_symlink() or not path.is_file() or path.suffix != ".json":
            return f"{LOGS_DIR}/ holds {path.name}, which is not a run's log file"
    for run in _entries(reports):
        if run.is_symlink() or not run.is_dir():
            return f"{REPORTS_DIR}/ holds {run.name}, which is not a run's report folder"
        for path in _entries(run):
            if path.is_symlink() or not path.is_file():
                return f"{REPORTS_DIR}/{run.name}/ holds {path.name}, which is not a report file"
    return None


def _entries(folder: Path) -> list[Path]:
    if folder.is_symlink() or not folder.is_dir():
        return []
    return sorted(Path(e.path) for e in os.scandir(folder))


def check_snapshot_output(out: str | os.PathLike,
                          inputs: Iterable[tuple[str, str | os.PathLike | None]] = ()) -> Path:
    """``fetch --out``: missing, empty, or a snapshot of this tool; never an input, inside
    one or around one; never a file. Else :class:`OutputRefused`, before anything is written."""
    out = check_output(out, inputs)
    if out.is_dir() and any(out.iterdir()):
        why = foreign_to_snapshot(out)
        if why is not None:
            raise OutputRefused(
                f"--out {out} is not empty and is not a snapshot of altgrad-docs ({why}); it "
                "is left alone and nothing was written. --> Do: pass --out a new or empty "
                "folder, or the folder of an earlier snapshot.")
    return out


def check_render_output(config_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """``render --out``: the config exists, and ``out`` is no file and none of what the
    render reads (:func:`render_inputs`), inside or around one. Whether a non-empty ``out``
    is an earlier tree is ``site.tree.check_folder``'s check (its marker file)."""
    config = Path(config_file)
    if not config.is_file():
        where = "" if config.is_absolute() else f" in {Path.cwd()}"
        raise OutputRefused(f"-f/--config-file {config}: no such file{where}; nothing was "
                            "written. --> Do: run in the site's folder (where its mkdocs.yml "
                            "is), or pass -f path/to/mkdocs.yml.")
    return check_output(out, render_inputs(config), name="docs-tree")


def render_inputs(config_file: str | os.PathLike) -> list[tuple[str, str | None]]:
    """What a render reads: the config, its docs_dir, theme.custom_dir, templates/ and the
    snapshots (the ``altgrad`` plugin's options, or ``extra.altgrad``; ``!ENV`` resolved as
    MkDocs does)."""
    from mkdocs.utils import yaml_load

    config = Path(config_file)
    inputs: list[tuple[str, str | None]] = [("the config file", str(config))]
    try:
        with open(config, encoding="utf-8") as fh:
            raw = yaml_load(fh)
    except Exception:  # noqa: BLE001 -- a broken config: the render itself names what is wrong
        return inputs

    def table(value: object) -> dict:
        return value if isinstance(value, dict) else {}

    raw = table(raw)
    plugins = raw.get("plugins") if isinstance(raw.get("plugins"), list) else []
    options = [table(p.get("altgrad")) for p in plugins if isinstance(p, dict) and "altgrad" in p]
    theme = table(raw.get("theme"))  # the plugin's options over the deprecated extra.altgrad
    altgrad = {**table(table(raw.get("extra")).get("altgrad")), **(options[0] if options else {})}
    for what, value in (("the docs folder", raw.get("docs_dir", "docs")),
                        ("the theme's custom_dir", theme.get("custom_dir")),
                        ("the templates folder", "templates"),
                        ("the snapshot", altgrad.get("snapshot") or "data/bundled"),
                        ("the W&B snapshot", altgrad.get("wandb_snapshot") or "data/wandb")):
        if isinstance(value, str) and value:
            inputs.append((what, str(config.parent / value)))
    return inputs


#: The fix for an OS error while a snapshot is written, by errno name.
_OS_FIXES = {
    "ENOSPC": "free space on the disk that holds {folder} (or pass --out a folder on another "
              "disk), then fetch again",
    "EDQUOT": "free space in your disk quota for {folder}, then fetch again",
    "EACCES": "make {folder} writable for you (or pass --out a folder you can write), then "
              "fetch again",
    "EROFS": "pass --out a folder on a disk that is not mounted read-only",
}
_OS_FIXES["EPERM"] = _OS_FIXES["EACCES"]


def os_error_line(exc: OSError, out: str | os.PathLike, doing: str, kept: str = "") -> str:
    """One line for an OS error of a command that writes ``out``: the path, the cause,
    ``kept`` (what was left as it was), and the fix."""
    import errno

    path = os.path.abspath(exc.filename or out)
    cause = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno or 0, "")
    if not code and "No space left" in str(exc):  # pyarrow's OSError carries no errno
        code = "ENOSPC"
    folder = os.path.dirname(os.path.abspath(out))
    if code in ("EACCES", "EPERM", "EROFS"):
        folder = path if os.path.isdir(path) else os.path.dirname(path)
    fix = _OS_FIXES.get(code, "fix the cause above, then run the command again").format(
        folder=folder)
    kept = f"; {kept}" if kept else ""
    return f"{doing} {out} failed at {path}: {cause}{kept}. --> Do: {fix}."
