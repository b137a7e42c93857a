"""The frozen on-disk form of a set of runs: written atomically, read lazily, hashed.

Layout of a snapshot folder::

    manifest.json                  schema_version, source, filters, fetched_at, versions, per-run
                                   entries (file name slug, history rows, updated_at), files
                                   (every file's sha256), sha256 (the digest of files); from W&B
                                   also listing_sha256 (what the run table was made of)
    runs.parquet                   the run table (columns = runs.RUN_COLUMNS)
    history/<slug>.parquet         one wide history table per run (_step + float64 metrics)
    failure_reports/<slug>/*.md    local failure reports of that run, copied verbatim
    logs/<slug>.json               what else a run logged: environment, system metrics,
                                   console output (Snapshot.run_log)

Same records in -> byte-identical folder out: Parquet is written with fixed settings, JSON
with sorted keys, and no wall-clock time is stored unless the caller passes one
(``fetched_at``; ``SOURCE_DATE_EPOCH`` overrides it). Reads are lazy: the run table is small,
histories are read one run and only the asked columns at a time, so a snapshot of 1,000 runs
x 10,000 steps never has to fit in memory. Every file is checked against the sha256 the
manifest lists when it is read (snapshot_files.py); a manifest of an older schema is checked
and migrated as snapshot_schema.py says.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .runs import SCHEMA_VERSION, RunRecord, path_slug, run_row, runs_frame, tidy_history
from .snapshot_files import SnapshotError, files_digest, sha256_file
from .snapshot_read import (HISTORY_DIR, LOGS_DIR, MANIFEST, REPORTS_DIR, RUNS_FILE, UNMATCHED_REPORTS, Snapshot,
                            folder_files, open_snapshot)
from .tempdirs import alive, make_owned_dir, owner_pid, remove_stale
from .userfiles import RefusedFile, copy_user_file

if TYPE_CHECKING:  # imported where used: an unchanged re-fetch never needs them (fetch.py)
    import pandas as pd
    import pyarrow as pa


#: Manifest key of :func:`listing_sha256` (snapshots fetched from the W&B API only).
LISTING_KEY = "listing_sha256"
RESERVED_MANIFEST_KEYS = frozenset(
    {"schema_version", "source", "fetched_at", "versions", "n_runs", "runs", "files", "sha256", LISTING_KEY}
)
#: Re-exported: the reading side lives in snapshot_read.py, the file checks in snapshot_files.py.
__all__ = ["SCHEMA_VERSION", "Snapshot", "SnapshotError", "content_hash", "listing_sha256", "open_snapshot",
           "restamp_snapshot", "run_table_bytes", "write_snapshot"]


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


def content_hash(folder: Path) -> str:
    """sha256 over every file but the manifest: relative path and bytes, in sorted order
    (the manifest's ``sha256`` of what is in ``folder``)."""
    return files_digest(folder_files(folder))


def source_date() -> str | None:
    """``SOURCE_DATE_EPOCH`` as an ISO date, None when unset; an error naming it when it is not
    a whole number of seconds (numpy, scipy and MkDocs read it too, and fail on it)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    try:
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc).isoformat()
    except (ValueError, OverflowError, OSError):
        raise SnapshotError(f"SOURCE_DATE_EPOCH={epoch[:40]!r} is not a time (whole seconds since "
                            "1970-01-01 UTC) --> Do: unset it, or set it to e.g. $(git log -1 --format=%ct)."
                            ) from None


def _fetched_at(explicit: str | Callable[[], str | None] | None) -> str | None:
    return source_date() or (explicit() if callable(explicit) else explicit)


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
        manifest_runs, files = _write_contents(tmp, records, failure_reports or {}, reuse_history or {})
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "source": source,
            "fetched_at": _fetched_at(fetched_at),
            "versions": _versions(),
            "n_runs": len(manifest_runs),
            "runs": manifest_runs,
            **(extra or {}),
            **({LISTING_KEY: listing} if listing else {}),
            "files": files,
            "sha256": files_digest(files),
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
    """The code that writes the run table: this file, ``runs.py``, ``run_facts.py``, the format
    names (``formats.py``) and the status rules (``analysis/status.py``) as bytes, and the
    versions of the libraries in between."""
    from . import formats, run_facts, runs
    from .analysis import status

    parts = [Path(m.__file__).read_bytes() for m in (runs, run_facts, formats, status)]
    parts.insert(0, Path(__file__).read_bytes())
    parts += [f"{dist} {v}".encode() for dist, v in _versions(("numpy", "pandas", "pyarrow")).items()]
    return b"\0".join(parts)


def restamp_snapshot(snapshot: Snapshot, fetched_at: str, listing: str | None = None) -> None:
    """Rewrite only the manifest of ``snapshot`` (same runs and sha256, a new ``fetched_at``,
    ``versions`` and ``listing``), as write_snapshot would, swapped in by rename; one of an
    older schema is written in this one (its files, checked, and their names).

    For a re-fetch that found nothing changed: copying and re-hashing every history file
    would give the same files."""
    manifest = dict(snapshot.current_manifest(), fetched_at=_fetched_at(fetched_at), versions=_versions())
    manifest.pop(LISTING_KEY, None)
    if listing:
        manifest[LISTING_KEY] = listing
    remove_stale(snapshot.path, f".{MANIFEST}.tmp-")
    _write_manifest(snapshot.path, manifest)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest of the snapshot at ``folder`` (by rename, as write_snapshot writes it)."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _swap_file(folder / MANIFEST, lambda tmp: tmp.write_text(text))


def _swap_file(target: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary sibling of ``target``, then rename it over ``target``."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def upgrade_snapshot(path: str | os.PathLike) -> tuple[int, Snapshot]:
    """Write the snapshot at ``path`` in this schema, in place, if it is of an older one:
    every file checked first; the run table written again only if this version reads other
    values from it (a migrated column), so its hash stays when nothing changed; then the
    manifest. Returns (the schema it had, the snapshot as now)."""
    snap = open_snapshot(path)
    if snap.version == SCHEMA_VERSION:
        return snap.version, snap
    snap.verify()
    manifest = snap.current_manifest()
    runs, stored = snap.runs(), snap._read(RUNS_FILE, "run table {path}").to_pandas()
    if not runs.equals(stored):
        def table(tmp: Path) -> None:
            _write_parquet(runs, tmp)
            manifest["files"][RUNS_FILE] = sha256_file(tmp)
        _swap_file(snap.path / RUNS_FILE, table)
    manifest["sha256"] = files_digest(manifest["files"])
    _write_manifest(snap.path, manifest)
    return snap.version, open_snapshot(snap.path)


def _write_contents(
    folder: Path, records: Iterable[RunRecord], reports: dict[str, list[Path]],
    reuse: dict[str, Path],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Write the run table, histories and reports into ``folder``; the manifest's run
    entries and its ``files`` (relative path -> sha256 of every file written)."""
    import pyarrow.parquet as pq

    (folder / HISTORY_DIR).mkdir()
    rows, entries, slugs, files = [], {}, set(), {}
    for record in records:
        run_id, slug = record.run_id, safe_run_id(record.run_id)
        if run_id in entries or slug.lower() in slugs:
            raise SnapshotError(f"run {run_id!r} appears twice in the source (file name {slug}) --> Do: "
                                "give each run its own id, or leave one of them out of the source folder.")
        slugs.add(slug.lower())
        hist_path = folder / HISTORY_DIR / f"{slug}.parquet"
        if run_id in reuse:
            shutil.copyfile(reuse[run_id], hist_path)
            n_rows = pq.read_metadata(hist_path).num_rows
        else:
            n_rows = _write_history(record.history, hist_path)
        rows.append(run_row(record))
        files[f"{HISTORY_DIR}/{slug}.parquet"] = digest = sha256_file(hist_path)
        entries[run_id] = {
            "updated_at": record.meta.get("updated_at") or "",
            "history_rows": n_rows,
            "history_sha256": digest,
            "slug": slug,
        }
        if record.meta.get("run_log"):  # environment, system metrics, console (sources/offline.py, wandb_logs.py)
            log_path = folder / LOGS_DIR / f"{slug}.json"
            log_path.parent.mkdir(exist_ok=True)
            log_path.write_text(json.dumps(record.meta["run_log"], sort_keys=True, ensure_ascii=False),
                                encoding="utf-8")
            files[f"{LOGS_DIR}/{slug}.json"] = sha256_file(log_path)
        _copy_reports(folder, run_id, reports.get(run_id, []), files)
    _copy_reports(folder, UNMATCHED_REPORTS, reports.get(UNMATCHED_REPORTS, []), files)
    _write_parquet(runs_frame(rows), folder / RUNS_FILE)
    files[RUNS_FILE] = sha256_file(folder / RUNS_FILE)
    return dict(sorted(entries.items())), dict(sorted(files.items()))


def stored_report_name(run_id: str, report: Path) -> tuple[str, str]:
    """(folder, file name) of a failure report in the snapshot: the run's folder and the
    report's name; an unmatched report is named by its checkpoint folder too (two runs'
    reports may share a name)."""
    if run_id == UNMATCHED_REPORTS:
        return UNMATCHED_REPORTS, f"{report.parent.parent.name}--{report.name}"
    return safe_run_id(run_id), report.name


def _copy_reports(folder: Path, run_id: str, reports: Iterable[Path], files: dict[str, str]) -> None:
    """Copy a run's reports into ``folder``, listing each in ``files`` with its sha256."""
    for report in sorted(reports):
        sub, name = stored_report_name(run_id, Path(report))
        dest = folder / REPORTS_DIR / sub / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        _copy_report(Path(report), dest)
        files[dest.relative_to(folder).as_posix()] = sha256_file(dest)


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
