"""A snapshot folder opened for reading (:func:`open_snapshot`, :class:`Snapshot`).

Nothing but the manifest is read up front; its shape is checked (snapshot_schema.py). Each
file is checked against the sha256 the manifest lists as it is read (snapshot_files.py), and
:meth:`Snapshot.verify` checks them all (what a build does first, so that every cache keyed
on :attr:`Snapshot.sha256` is keyed on verified content). Errors are one line naming the
file, the cause and the command that makes the snapshot again.

A manifest of schema 1 lists no files but the histories: its files are hashed and checked
against its ``sha256`` on first use, and ``steps`` (the last logged step in the oldest
writers, one more since) is computed again from each run's summary or history.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from . import runs as run_schema
from .run_facts import complete_table, steps_trained
from .runs import RUN_COLUMNS, SCHEMA_VERSION, int_column, path_slug, program_name, to_float
from .snapshot_files import SnapshotError, check_file, file_digest, files_digest, read_checked
from .snapshot_schema import check_manifest, remake_hint

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

MANIFEST = "manifest.json"
RUNS_FILE = "runs.parquet"
HISTORY_DIR = "history"
REPORTS_DIR = "failure_reports"
LOGS_DIR = "logs"
#: Key of ``write_snapshot(failure_reports=...)`` and folder under REPORTS_DIR of the reports
#: that match no run (sources/report_files.py). No run's folder can have this name:
#: ``runs.path_slug`` never starts with ``_``.
UNMATCHED_REPORTS = "_unmatched"
LOG = logging.getLogger("mkdocs.plugins.altgrad")
#: What a killed restamp or upgrade leaves at the top of a snapshot (snapshot._swap_file).
_LEFTOVER = re.compile(r"\.[^/]+\.tmp-\d+")


@dataclass
class Snapshot:
    """A snapshot folder opened for reading; ``version``: the schema it was written in.
    Picklable (worker processes get the same manifest and the digests known so far)."""

    path: Path
    manifest: dict[str, Any]
    version: int = SCHEMA_VERSION

    @functools.cached_property
    def files(self) -> dict[str, str]:
        """Every file's relative path -> sha256: the manifest's list, or (schema 1) the
        folder's files hashed, if their digest is the manifest's ``sha256``."""
        if self.version >= 2:
            return self.manifest["files"]
        files = folder_files(self.path)
        if files_digest(files) != self.manifest["sha256"]:
            raise SnapshotError(f"snapshot at {self.path} (schema 1) is not what its manifest says: its files "
                                f"do not hash to its sha256 {self.manifest['sha256'][:12]} (a file was changed, "
                                f"added or removed) --> Do: {self.fix}")
        return files

    @functools.cached_property
    def slugs(self) -> dict[str, str]:
        """run id -> the name of its files (``history/<slug>.parquet``)."""
        if self.version >= 2:
            return {run_id: entry["slug"] for run_id, entry in self.manifest["runs"].items()}
        by_hash: dict[str, list[str]] = {}
        for rel, digest in self.files.items():
            if rel.startswith(f"{HISTORY_DIR}/") and rel.endswith(".parquet") and rel.count("/") == 1:
                by_hash.setdefault(digest, []).append(rel[len(HISTORY_DIR) + 1:-len(".parquet")])
        slugs = {}
        for run_id, entry in self.manifest["runs"].items():
            found = by_hash.get(str(entry.get("history_sha256")), [])
            named = [s for s in found if s in (path_slug(run_id), run_id)]
            if not (named or found):
                raise SnapshotError(f"snapshot at {self.path} (schema 1) holds no history file of run "
                                    f"{run_id!r} --> Do: {self.fix}")
            slugs[run_id] = (named or found)[0]
        return slugs

    @functools.cached_property
    def sha256(self) -> str:
        """The digest of every file (checked against the manifest's list when opened)."""
        return files_digest(self.files)

    @property
    def fix(self) -> str:
        return remake_hint(self.path, self.manifest)

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def run_ids(self) -> list[str]:
        return list(self.manifest["runs"])

    def current_manifest(self) -> dict[str, Any]:
        """The manifest in this version's schema (schema 1: files and names added)."""
        runs = {run_id: dict(entry, slug=self.slugs[run_id]) for run_id, entry in self.manifest["runs"].items()}
        return dict(self.manifest, schema_version=SCHEMA_VERSION, runs=runs, files=dict(self.files),
                    sha256=self.sha256)

    def verify(self) -> None:
        """Check every file against the manifest (a file unchanged since this process last
        hashed it is not read again: a ``mkdocs serve`` reload costs a stat per file)."""
        for rel, digest in self.files.items():
            check_file(self.path / rel, digest, self.fix)

    def _parquet(self, rel: str, what: str) -> pq.ParquetFile:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = read_checked(self.path / rel, self.files.get(rel), self.fix)
        try:
            return pq.ParquetFile(pa.BufferReader(data))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._broken(rel, what, exc) from None

    def _broken(self, rel: str, what: str, exc: Exception) -> SnapshotError:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        label = what.replace("{path}", str(self.path / rel), 1)
        return SnapshotError(f"{label} is not a readable Parquet file ({cause}) "
                             f"--> Do: {self.fix}")

    def _read(self, rel: str, what: str, columns: list[str] | None = None,
              parquet: pq.ParquetFile | None = None) -> pa.Table:
        import pyarrow as pa

        parquet = parquet or self._parquet(rel, what)
        try:
            return parquet.read(columns=columns)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._broken(rel, what, exc) from None

    def runs(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The run table (all RUN_COLUMNS, or the ones asked for); of an older schema, as this
        version reads it (:meth:`_migrate`)."""
        parquet = self._parquet(RUNS_FILE, "run table {path}")
        wanted = list(RUN_COLUMNS) if columns is None else list(columns)
        if self.version == SCHEMA_VERSION:
            self._check_columns(parquet.schema_arrow.names, wanted)
            return self._read(RUNS_FILE, "run table {path}", columns, parquet).to_pandas()
        frame = self._migrate(self._read(RUNS_FILE, "run table {path}", None, parquet).to_pandas())
        self._check_columns(list(frame.columns), wanted)
        return frame if columns is None else frame[wanted]

    def _check_columns(self, names: list[str], wanted: list[str]) -> None:
        missing = [c for c in wanted if c not in names]
        if missing:
            raise SnapshotError(f"run table {self.path / RUNS_FILE} lacks the column(s) {', '.join(missing)} "
                                f"that this altgrad-docs reads --> Do: {self.fix}")

    def _migrate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """An older schema's run table as this version reads it, one version step at a time.
        A column added or a meaning changed with a new SCHEMA_VERSION gets its step here (or
        snapshot_schema.READABLE_FROM moves past the versions it cannot recover)."""
        LOG.info("altgrad: snapshot %s has schema version %d; its run table is read as this version "
                 "reads it (--> Do: to skip this, write it in schema %d: altgrad-docs snapshot upgrade %s)",
                 self.path, self.version, SCHEMA_VERSION, shlex.quote(str(self.path)))
        if self.version < 2 and {"steps", "summary_json", "run_id"} <= set(frame.columns):
            frame["steps"] = self._v1_steps(frame)
        if self.version < 2 and {"format", "seed", "use_fp8", "config_json"} <= set(frame.columns):
            frame = run_schema.renormalize(frame)  # formats and seeds by meaning
        if self.version < 2:  # status_reason and the other facts: the status decided again
            frame = complete_table(frame)
        if self.version < 3 and "run_id" in frame:  # the script that made each run, from its log
            import pandas as pd

            frame["program"] = pd.array([program_name(self.run_log(str(r)).get("environment"))
                                         for r in frame["run_id"]], dtype="string")
        return frame[[c for c in RUN_COLUMNS if c in frame] + [c for c in frame if c not in RUN_COLUMNS]]

    def _v1_steps(self, frame: pd.DataFrame) -> pd.Series:
        """Steps trained (last logged ``_step`` + 1) as this version computes them, from each
        run's summary (else its history): schema 1 stored either that or one less."""
        import pandas as pd

        steps = []
        for run_id, text in zip(frame["run_id"].astype(str), frame["summary_json"]):
            try:
                summary = json.loads(text) if isinstance(text, str) else {}
            except ValueError:
                summary = {}
            summary = summary if isinstance(summary, dict) else {}
            need_history = np.isnan(to_float(summary.get("_step")))
            history = self.history(run_id, []) if need_history else pd.DataFrame({"_step": []})
            steps.append(steps_trained(summary, history))
        return pd.Series(int_column(steps), index=frame.index)

    def history_keys(self, run_id: str) -> list[str]:
        schema = self._parquet(self._history_rel(run_id), f"history file {{path}} of run {run_id!r}").schema_arrow
        return [n for n in schema.names if n != "_step"]

    def history(self, run_id: str, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of one run: ``_step`` plus the asked keys (NaN where absent)."""
        import pandas as pd

        rel, what = self._history_rel(run_id), f"history file {{path}} of run {run_id!r}"
        if keys is None:
            return self._read(rel, what).to_pandas()
        keys = list(keys)
        parquet = self._parquet(rel, what)  # one read for the schema and the columns
        present = set(parquet.schema_arrow.names)
        table = self._read(rel, what, ["_step"] + [k for k in keys if k in present], parquet)
        if not _contract_columns(table) or len(set(keys)) < len(keys) or "_step" in keys:
            df = table.to_pandas()  # not the contract's columns: pandas' conversion as before
            for key in keys:
                if key not in df:
                    df[key] = float("nan")
            return df[["_step"] + keys]
        # the contract's int64 _step + float64 metrics: numpy columns straight into one
        # frame (to_pandas, then adding and reordering columns, cost 3x the read)
        columns = {name: table.column(name).to_numpy() for name in table.column_names}
        missing = np.full(table.num_rows, np.nan)
        return pd.DataFrame({name: columns.get(name, missing) for name in ["_step"] + keys}, copy=True)

    def iter_histories(
        self, keys: Iterable[str] | None = None, run_ids: Iterable[str] | None = None
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """(run_id, history) one run at a time, so memory holds one run's columns."""
        keys = list(keys) if keys is not None else None
        for run_id in run_ids if run_ids is not None else self.run_ids:
            yield run_id, self.history(run_id, keys)

    def failure_reports(self, run_id: str) -> list[Path]:
        """The run's failure reports the manifest lists, each checked against it."""
        return self._reports_in(self.slugs[run_id])

    def run_log(self, run_id: str) -> dict[str, Any]:
        """The run's environment, system metrics and console output, checked against the
        manifest ({} when the source gave none)."""
        rel = f"{LOGS_DIR}/{self.slugs[run_id]}.json"
        if rel not in self.files:
            return {}
        data = read_checked(self.path / rel, self.files[rel], self.fix)  # the bytes hashed are parsed
        try:
            value = json.loads(data.decode("utf-8"))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def unmatched_reports(self) -> list[Path]:
        """Failure reports that match no run of the snapshot (sources/report_files.py)."""
        return self._reports_in(UNMATCHED_REPORTS)

    def _reports_in(self, folder: str) -> list[Path]:
        prefix = f"{REPORTS_DIR}/{folder}/"
        found = sorted(rel for rel in self.files if rel.startswith(prefix) and rel.endswith(".md")
                       and "/" not in rel[len(prefix):])
        for rel in found:
            check_file(self.path / rel, self.files[rel], self.fix)
        return [self.path / rel for rel in found]

    def history_path(self, run_id: str) -> Path:
        """The history file of a run (``history/<slug>.parquet``; not checked: see :meth:`history`)."""
        return self.path / self._history_rel(run_id)

    def _history_rel(self, run_id: str) -> str:
        if run_id not in self.manifest["runs"]:
            raise KeyError(f"run {run_id!r} is not in the snapshot at {self.path}")
        return f"{HISTORY_DIR}/{self.slugs[run_id]}.parquet"


def folder_files(folder: Path) -> dict[str, str]:
    """Every file of a folder but the manifest and a killed writer's ``.<name>.tmp-<pid>``
    beside it: relative POSIX path -> sha256 (hashed once per process while a file stays the
    same, snapshot_files.file_digest)."""
    return {p.relative_to(folder).as_posix(): file_digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST and not _LEFTOVER.fullmatch(p.relative_to(folder).as_posix())}


def _contract_columns(table: pa.Table) -> bool:
    """int64 ``_step`` without nulls and float64 metrics, no pandas metadata: what
    ``_write_history`` writes, and what converts to numpy as to_pandas would convert it."""
    import pyarrow as pa

    metrics = table.schema.types[1:]
    return (table.schema.names[:1] == ["_step"] and pa.types.is_int64(table.schema.types[0])
            and not table.column("_step").null_count and all(pa.types.is_float64(t) for t in metrics)
            and b"pandas" not in (table.schema.metadata or {}))


def open_snapshot(path: str | os.PathLike) -> Snapshot:
    """Open a snapshot folder; errors name the folder, the cause and the fix."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise SnapshotError(f"no snapshot at {path}: {MANIFEST} is missing --> Do: make one: "
                            f"altgrad-docs fetch --offline-dir wandb --out {path}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SnapshotError(f"snapshot manifest {manifest_path} cannot be read ({exc.strerror or exc}) "
                            f"--> Do: check that it is a readable file, or {remake_hint(path, None)}") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise SnapshotError(f"snapshot manifest {manifest_path} is not valid JSON ({exc}) "
                            f"--> Do: {remake_hint(path, None)}") from None
    return Snapshot(path=path, manifest=manifest, version=check_manifest(path, manifest))
