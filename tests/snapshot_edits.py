"""Edits to a written snapshot for the tests: what a user, a sync tool or a second writer may
do to the folder after altgrad-docs wrote it."""

from __future__ import annotations

import json
from pathlib import Path

from altgrad_docs.snapshot import folder_files
from altgrad_docs.snapshot_files import files_digest


def manifest_of(snapshot: Path) -> dict:
    return json.loads((Path(snapshot) / "manifest.json").read_text())


def write_manifest(snapshot: Path, manifest: dict) -> None:
    (Path(snapshot) / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def relist(snapshot: Path) -> dict:
    """Make the manifest list the folder's files as they are now (a producer that adds files
    and lists them, as write_snapshot would have): returns the new manifest."""
    manifest = manifest_of(snapshot)
    manifest["files"] = folder_files(Path(snapshot))
    manifest["sha256"] = files_digest(manifest["files"])
    write_manifest(snapshot, manifest)
    return manifest
