"""What a snapshot's manifest must hold to be read, and how an older one is read.

The schema version is :data:`runs.SCHEMA_VERSION` (one constant, with what each version
changed). A manifest of this version is checked for its shape (every value the reader relies
on, one line naming the key on failure); one of an older version is read where the meaning of
its values can be recovered (:data:`READABLE_FROM`, what :mod:`snapshot` migrates) and refused
otherwise with the command that makes the snapshot again.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from .runs import SCHEMA_VERSION
from .snapshot_files import SnapshotError, files_digest

#: The oldest schema version read (and migrated in memory, see snapshot.Snapshot).
READABLE_FROM = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A history file's name in a snapshot: no folder, no dot file (what runs.path_slug makes).
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def remake_hint(path: Path, manifest: Mapping[str, Any] | None) -> str:
    """The command that makes the snapshot at ``path`` again, from where it came from."""
    source = manifest.get("source") if isinstance(manifest, Mapping) else None
    source = source if isinstance(source, Mapping) else {}
    out = shlex.quote(str(path))
    if source.get("producer") == "altgrad-docs bench":
        return (f"restore it from version control (git checkout -- {out}) or make it again: "
                f"altgrad-docs bench --snapshot {out}")
    if source.get("kind") == "wandb_api" and source.get("project"):
        return f"re-fetch it: altgrad-docs fetch --project {shlex.quote(str(source['project']))} --out {out}"
    if source.get("kind") == "offline":
        cmd = f"altgrad-docs fetch --offline-dir {shlex.quote(str(source.get('path') or 'wandb'))} --out {out}"
        if source.get("checkpoints"):
            cmd += f" --checkpoints {shlex.quote(str(source['checkpoints']))}"
        return "re-fetch it: " + cmd
    return (f"make it again from its runs: altgrad-docs fetch --offline-dir wandb --out {out} "
            "(or --project ENTITY/PROJECT)")


def check_manifest(path: Path, manifest: Any) -> int:
    """The manifest's schema version, if this altgrad-docs reads it and every value it
    relies on has its shape; else a :class:`SnapshotError` naming the key and the fix."""
    where = path / "manifest.json"
    if not isinstance(manifest, dict):
        raise SnapshotError(f"snapshot manifest {where} is not a JSON object --> Do: {remake_hint(path, None)}")
    fix = remake_hint(path, manifest)
    version = manifest.get("schema_version")
    if type(version) is not int or version < READABLE_FROM:
        raise SnapshotError(f"snapshot at {path} has schema version {version!r}, which this altgrad-docs "
                            f"cannot read (it reads {READABLE_FROM} to {SCHEMA_VERSION}) --> Do: {fix}")
    if version > SCHEMA_VERSION:
        raise SnapshotError(f"snapshot at {path} has schema version {version}, newer than this altgrad-docs "
                            f"reads ({SCHEMA_VERSION}) --> Do: upgrade altgrad-docs, or {fix}")

    def bad(key: str, why: str) -> SnapshotError:
        return SnapshotError(f"snapshot manifest {where}: {key} {why} --> Do: {fix}")

    if not isinstance(manifest.get("sha256"), str) or not _SHA256.fullmatch(manifest["sha256"]):
        raise bad("sha256", "is not a sha256 (64 hex digits)")
    fetched = manifest.get("fetched_at")
    if fetched is not None and not _is_date(fetched):
        raise bad("fetched_at", f"{str(fetched)[:40]!r} is not a date and time (ISO 8601, e.g. "
                  "2026-01-15T12:00:00+00:00)")
    runs = manifest.get("runs")
    if not isinstance(runs, dict) or not all(isinstance(e, dict) for e in runs.values()):
        raise bad("runs", "is not a mapping of run ids to their entries")
    if version >= 2:
        _check_files(manifest, bad)
        if files_digest(manifest["files"]) != manifest["sha256"]:
            raise bad("sha256", "is not the digest of the files it lists: the manifest was edited")
    return version


def _check_files(manifest: dict[str, Any], bad: Any) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in files.values()):
        raise bad("files", "is not a mapping of file names to sha256 digests")
    for rel in files:
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise bad("files", f"names {rel[:80]!r}, a path outside the snapshot folder")
    for run_id, entry in manifest["runs"].items():
        slug = entry.get("slug")
        if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
            raise bad(f"runs.{run_id}.slug", f"{str(slug)[:80]!r} is not a plain file name")
        if f"history/{slug}.parquet" not in files:
            raise bad(f"runs.{run_id}", f"names history/{slug}.parquet, which files does not list")


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
