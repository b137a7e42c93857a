"""The frozen on-disk form of a set of runs: written atomically, read lazily, hashed.

Layout of a snapshot folder::

    manifest.json                  source, filters, fetched_at, versions, per-run entries, sha256;
                                   from W&B also listing_sha256 (what the run table was made of)
    runs.parquet                   the run table (columns = runs.RUN_COLUMNS)
    history/<run_id>.parquet       one wide history table per run (_step + float64 metrics)
    failure_reports/<run_id>/*.md  local failure reports of that run, copied verbatim

Same records in -> byte-identical folder out: Parquet is written with fixed settings, JSON
with sorted keys, and no wall-clock time is stored unless the caller passes one
(``fetched_at``; ``SOURCE_DATE_EPOCH`` overrides it). Reads are lazy: the run table is small,
histories are read one run and only the asked columns at a time, so a snapshot of 1,000 runs
x 10,000 steps never has to fit in memory.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from .run_facts import complete_table
from .runs import RUN_COLUMNS, RunRecord, path_slug, run_row, runs_frame, tidy_history
from .tempdirs import alive, make_owned_dir, owner_pid, remove_stale
from .userfiles import RefusedFile, copy_user_file

if TYPE_CHECKING:  # imported where used: an unchanged re-fetch never needs them (fetch.py)
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
RUNS_FILE = "runs.parquet"
HISTORY_DIR = "history"
REPORTS_DIR = "failure_reports"
#: Key of ``write_snapshot(failure_reports=...)`` and folder under REPORTS_DIR of the reports
#: that match no run (sources/report_files.py). No run's folder can have this name:
#: ``runs.path_slug`` never starts with ``_``.
UNMATCHED_REPORTS = "_unmatched"


#: Manifest key of :func:`listing_sha256` (snapshots fetched from the W&B API only).
LISTING_KEY = "listing_sha256"
RESERVED_MANIFEST_KEYS = frozenset(
    {"schema_version", "source", "fetched_at", "versions", "n_runs", "runs", "sha256", LISTING_KEY}
)


class SnapshotError(RuntimeError):
    """A snapshot folder is missing, incomplete or of an unknown version."""


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def _is_tidy(history: pd.DataFrame) -> bool:
    """Already in tidy_history's form (int64 _step rising, sorted float64 metrics)?"""
    names = [str(c) for c in history.columns]
    if names[:1] != ["_step"] or history["_step"].dtype != "int64":
        return False
    metrics = names[1:]
    if metrics != sorted(metrics) or any(n.startswith("_") for n in metrics):
        return False
    if any(history[c].dtype != "float64" for c in metrics):
        return False
    steps = history["_step"].to_numpy()
    return bool((steps[1:] > steps[:-1]).all())


def _write_history(history: pd.DataFrame, path: Path) -> int:
    """One run's history as Parquet, straight from its numpy columns (no pandas metadata:
    it reads back as the same int64/float64 frame). Returns the number of rows.

    No dictionary encoding: float metrics seldom repeat, and the 288 bundled histories
    are written 30 % faster and 11 % smaller without it (7.30 -> 6.50 MB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tidy = history if _is_tidy(history) else tidy_history(history)
    table = pa.table({str(c): tidy[c].to_numpy() for c in tidy.columns})
    pq.write_table(table, path, compression="zstd", write_statistics=True, use_dictionary=False)
    return len(tidy)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_hash(folder: Path) -> str:
    """sha256 over every file but the manifest: relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(folder).as_posix()
        h.update(rel.encode() + b"\0" + _sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def _fetched_at(explicit: str | Callable[[], str | None] | None) -> str | None:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc).isoformat()
    return explicit() if callable(explicit) else explicit


def safe_run_id(run_id: str) -> str:
    """A run id as it is used in the snapshot's file names (``runs.path_slug``: the id itself
    when it is plain, else a slug with a hash of the id)."""
    return path_slug(run_id)


def write_snapshot(
    records: Iterable[RunRecord],
    out: str | os.PathLike,
    source: dict[str, Any],
    fetched_at: str | Callable[[], str | None] | None = None,
    failure_reports: dict[str, list[Path]] | None = None,
    extra: dict[str, Any] | None = None,
    reuse_history: dict[str, Path] | None = None,
    listing: str | None = None,
) -> Path:
    """Write records as a snapshot at ``out``, replacing any previous one only at the end.

    Everything is written to a temporary sibling folder first and swapped in by rename, so a
    write that dies midway leaves the previous snapshot untouched. ``source`` describes where
    the runs came from (kind, project, filters, ...) and goes into the manifest as given.
    ``fetched_at`` may be a callable, asked after every record was written (so it can be
    the newest run time). ``reuse_history`` maps run ids to history files of an earlier
    snapshot that are copied verbatim instead of re-written; such a record's ``history``
    then needs only the columns the run table reads (``_step`` and ``loss``). ``listing``
    (:func:`listing_sha256` of the records as listed) is kept in the manifest.
    """
    out = Path(out)
    clash = sorted(set(extra or {}) & RESERVED_MANIFEST_KEYS)
    if clash:
        raise SnapshotError(
            f"extra manifest entries {clash} would overwrite the snapshot's own; "
            "--> Nest them under one key of your own, e.g. extra={'bench': {...}}."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = make_owned_dir(out.parent, f".{out.name}.tmp-")
    try:
        manifest_runs = _write_contents(tmp, records, failure_reports or {}, reuse_history or {})
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "source": source,
            "fetched_at": _fetched_at(fetched_at),
            "versions": _versions(),
            "n_runs": len(manifest_runs),
            "runs": manifest_runs,
            **(extra or {}),
            **({LISTING_KEY: listing} if listing else {}),
            "sha256": content_hash(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def run_table_bytes(records: Iterable[RunRecord]) -> bytes:
    """The ``runs.parquet`` that :func:`write_snapshot` would write for these records."""
    buffer = io.BytesIO()  # pyarrow writes to a file object as to a path
    _write_parquet(runs_frame([run_row(r) for r in records]), buffer)  # type: ignore[arg-type]
    return buffer.getvalue()


def listing_sha256(records: Iterable[RunRecord]) -> str | None:
    """A digest of all that the run table is made of but the histories: every record's
    ``meta``, ``config`` and ``summary`` in listing order, exactly as listed (key order, 1
    against 1.0, NaN against "NaN" all count), and the code and libraries that turn them into
    ``runs.parquet`` (``runs.py``, this file, numpy, pandas, pyarrow).

    Same digest and the same histories (same heartbeats, history files present) means a full
    write gives the same run table: an unchanged re-fetch compares this instead of building
    the table, which needs pandas and pyarrow (0.5 to 0.7 s of a 2.5 s re-fetch,
    benchmarks/fetch.md). A digest that differs only sends the re-fetch down the full check.
    None when a value cannot be encoded (then the full check decides).
    """
    digest = hashlib.sha256(_table_code())
    for record in records:
        try:
            text = json.dumps([record.meta, record.config, record.summary], ensure_ascii=False,
                              separators=(",", ":"), default=_exact_text)
        except (TypeError, ValueError, RecursionError):
            return None
        digest.update(text.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def _exact_text(value: Any) -> str:
    """A value JSON has no form for, spelled with its type (never equal to a plain string)."""
    return f"\0{type(value).__module__}.{type(value).__qualname__}\0{value!r}"


@functools.lru_cache(maxsize=1)
def _table_code() -> bytes:
    """The code that writes the run table: this file, ``runs.py``, ``run_facts.py`` and the
    status rules (``analysis/status.py``) as bytes, and the versions of the libraries in between."""
    from . import run_facts, runs
    from .analysis import status

    parts = [Path(m.__file__).read_bytes() for m in (runs, run_facts, status)]
    parts.insert(0, Path(__file__).read_bytes())
    parts += [f"{dist} {v}".encode() for dist, v in _versions(("numpy", "pandas", "pyarrow")).items()]
    return b"\0".join(parts)


def restamp_snapshot(snapshot: Snapshot, fetched_at: str, listing: str | None = None) -> None:
    """Rewrite only the manifest of ``snapshot`` (same runs and sha256, a new ``fetched_at``,
    ``versions`` and ``listing``), as write_snapshot would, swapped in by rename.

    For a re-fetch that found nothing changed: copying and re-hashing every history file
    would give the same files."""
    manifest = dict(snapshot.manifest, fetched_at=_fetched_at(fetched_at), versions=_versions())
    manifest.pop(LISTING_KEY, None)
    if listing:
        manifest[LISTING_KEY] = listing
    target = snapshot.path / MANIFEST
    remove_stale(snapshot.path, f".{target.name}.tmp-")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_contents(
    folder: Path, records: Iterable[RunRecord], reports: dict[str, list[Path]],
    reuse: dict[str, Path],
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    (folder / HISTORY_DIR).mkdir()
    rows, entries, slugs = [], {}, set()
    for record in records:
        run_id, slug = record.run_id, safe_run_id(record.run_id)
        if run_id in entries or slug in slugs:
            raise SnapshotError(f"run {run_id!r} appears twice in the source (file name {slug})")
        slugs.add(slug)
        hist_path = folder / HISTORY_DIR / f"{slug}.parquet"
        if run_id in reuse:
            shutil.copyfile(reuse[run_id], hist_path)
            n_rows = pq.read_metadata(hist_path).num_rows
        else:
            n_rows = _write_history(record.history, hist_path)
        rows.append(run_row(record))
        entries[run_id] = {
            "updated_at": record.meta.get("updated_at") or "",
            "history_rows": n_rows,
            "history_sha256": _sha256_file(hist_path),
        }
        _copy_reports(folder, run_id, reports.get(run_id, []))
    _copy_reports(folder, UNMATCHED_REPORTS, reports.get(UNMATCHED_REPORTS, []))
    _write_parquet(runs_frame(rows), folder / RUNS_FILE)
    return dict(sorted(entries.items()))


def stored_report_name(run_id: str, report: Path) -> tuple[str, str]:
    """(folder, file name) of a failure report in the snapshot: the run's folder and the
    report's name; an unmatched report is named by its checkpoint folder too (two runs'
    reports may share a name)."""
    if run_id == UNMATCHED_REPORTS:
        return UNMATCHED_REPORTS, f"{report.parent.parent.name}--{report.name}"
    return safe_run_id(run_id), report.name


def _copy_reports(folder: Path, run_id: str, reports: Iterable[Path]) -> None:
    for report in sorted(reports):
        sub, name = stored_report_name(run_id, Path(report))
        dest = folder / REPORTS_DIR / sub / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        _copy_report(Path(report), dest)


def _copy_report(report: Path, dest: Path) -> None:
    """A failure report copied verbatim, never a link's target (it would be published)."""
    try:
        copy_user_file(report, report.parent, dest)
    except RefusedFile as exc:
        raise SnapshotError(f"failure report {exc} --> Do: put the report file itself there, "
                            "or leave it out.") from None


def _versions(dists: Iterable[str] = ("altgrad-docs", "wandb")) -> dict[str, str]:
    """Installed versions of ``dists`` (the manifest's ``versions``: ours and wandb's)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in dists:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


def clean_leftovers(out: str | os.PathLike) -> None:
    """Remove what killed writers of the snapshot at ``out`` left beside it (their
    ``.<name>.tmp-<pid>-*`` folders), and put back a snapshot a killed swap left aside."""
    out = Path(out)
    if out.parent.is_dir():
        _recover_swap(out)
        remove_stale(out.parent, f".{out.name}.tmp-")


def _recover_swap(out: Path) -> None:
    """A writer killed between the two renames of :func:`_swap_in` left the previous
    snapshot as ``.<name>.old-<pid>`` and none at ``out``: put it back (else remove it)."""
    prefix = f".{out.name}.old-"
    for entry in sorted(out.parent.glob(prefix + "*")):
        pid = owner_pid(entry.name, prefix)
        if pid is not None and pid != os.getpid() and alive(pid):
            continue
        if not out.exists() and (entry / MANIFEST).is_file():
            os.replace(entry, out)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _swap_in(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Snapshot:
    """A snapshot folder opened for reading. Nothing but the manifest is read up front."""

    path: Path
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def run_ids(self) -> list[str]:
        return list(self.manifest["runs"])

    def runs(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The run table (all RUN_COLUMNS, or the ones asked for). A table written before
        some columns existed gets them (``run_facts.complete_table``: status decided again)."""
        import pyarrow.parquet as pq

        path = self.path / RUNS_FILE
        names = set(pq.read_schema(path).names)
        if all(c in names for c in (columns or RUN_COLUMNS)):
            return pq.read_table(path, columns=columns).to_pandas()
        table = complete_table(pq.read_table(path).to_pandas())
        return table if columns is None else table[columns]

    def history_keys(self, run_id: str) -> list[str]:
        import pyarrow.parquet as pq

        schema = pq.read_schema(self.history_path(run_id))
        return [n for n in schema.names if n != "_step"]

    def history(self, run_id: str, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of one run: ``_step`` plus the asked keys (NaN where absent)."""
        import pandas as pd
        import pyarrow.parquet as pq

        path = self.history_path(run_id)
        if keys is None:
            return pq.read_table(path).to_pandas()
        keys = list(keys)
        parquet = pq.ParquetFile(path)  # one open for the schema and the columns
        present = set(parquet.schema_arrow.names)
        table = parquet.read(columns=["_step"] + [k for k in keys if k in present])
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
        folder = self.path / REPORTS_DIR / safe_run_id(run_id)
        return sorted(folder.glob("*.md")) if folder.is_dir() else []

    def unmatched_reports(self) -> list[Path]:
        """Failure reports that match no run of the snapshot (sources/report_files.py)."""
        folder = self.path / REPORTS_DIR / UNMATCHED_REPORTS
        return sorted(folder.glob("*.md")) if folder.is_dir() else []

    def history_path(self, run_id: str) -> Path:
        """The history file of a run (named by ``runs.path_slug``)."""
        if run_id not in self.manifest["runs"]:
            raise KeyError(f"run {run_id!r} is not in the snapshot at {self.path}")
        return self.path / HISTORY_DIR / f"{safe_run_id(run_id)}.parquet"



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
        raise SnapshotError(
            f"no snapshot at {path}: {MANIFEST} is missing. "
            "--> Make one with: altgrad-docs fetch --offline-dir wandb --out " + str(path)
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"snapshot manifest {manifest_path} is unreadable: {exc}") from exc
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SnapshotError(
            f"snapshot at {path} has schema version {version}, this altgrad-docs reads "
            f"{SCHEMA_VERSION}. --> Re-fetch it with this version of altgrad-docs."
        )
    return Snapshot(path=path, manifest=manifest)
