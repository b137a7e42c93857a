"""Runs from ``wandb/offline-run-*/run-*.wandb`` files: no server, no network.

wandb 0.30+ ships no Python reader for its run log, so this is one. The file is a
LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of
chunks, each ``crc32(4) length(2) type(1) data``; a record is one FULL chunk or a
FIRST, MIDDLE..., LAST sequence. The checksum is zlib's CRC-32 over the type byte and the
data. Each record is a ``wandb.proto.wandb_internal_pb2.Record``.

A SIGKILLed run leaves a file cut at a block boundary or mid-chunk: reading stops at the
first torn chunk with a warning naming the file, and keeps what came before. A run's state
comes from its exit record: exit code 0 = finished, non-zero = failed, none = crashed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import struct
import zlib
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..runs import RunRecord, to_float
from ..userfiles import RefusedFile, check_user_file, read_user_bytes
from .steps import exact_step, int64_steps

LOG = logging.getLogger("mkdocs.plugins.altgrad")

FILE_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
#: Newest producer major.minor this reader was checked against.
CHECKED_PRODUCER = (0, 31)


class OfflineRunError(ValueError):
    """A file is not a readable wandb run log."""


def iter_record_bytes(path: Path) -> Iterator[bytes]:
    """The raw record payloads of a run log, stopping cleanly at a torn chunk."""
    try:
        data = read_user_bytes(path, Path(path).parent)
    except RefusedFile as exc:
        raise OfflineRunError(f"{exc} --> Do: put the run's file itself there, readable, "
                              "not a link.") from None
    if data[: len(FILE_HEADER)] != FILE_HEADER:
        raise OfflineRunError(
            f"{path} is not a wandb run log (bad header). --> Do: copy the run's folder again "
            "from where it was logged, or move the file out of the offline run folder."
        )
    pos, pending = len(FILE_HEADER), None
    while pos < len(data):
        room = BLOCK_SIZE - pos % BLOCK_SIZE
        if room < CHUNK_HEADER:  # block trailer padding
            pos += room
            continue
        if pos + CHUNK_HEADER > len(data):
            _torn(path, pos, "file ends inside a chunk header")
            return
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0 and length == 0 and crc == 0:  # zero fill: nothing more was written
            break
        body = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        if CHUNK_HEADER + length > room or len(body) < length:
            _torn(path, pos, "chunk runs past its block or the file end")
            return
        if zlib.crc32(bytes([kind]) + body) != crc:
            _torn(path, pos, "checksum mismatch")
            return
        pos += CHUNK_HEADER + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = [body]
        elif kind in (MIDDLE, LAST) and pending is not None:
            pending.append(body)
            if kind == LAST:
                yield b"".join(pending)
                pending = None
        else:
            _torn(path, pos, f"unexpected chunk type {kind}")
            return
    if pending is not None:
        _torn(path, pos, "last record was cut off")


def _torn(path: Path, pos: int, why: str) -> None:
    LOG.warning(
        "%s is torn at byte %d (%s): keeping the records before it. The run was probably "
        "killed while writing; its data after that point is lost.", path, pos, why
    )


def _records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2  # lazy: protobuf import costs ~0.3 s

    for raw in iter_record_bytes(path):
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(raw)
        except Exception:  # protobuf's DecodeError; a torn record that passed the CRC
            _torn(path, -1, "a record does not parse")
            return
        yield record


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def _check_producer(path: Path, producer: str) -> None:
    version = _version_tuple(producer)
    if not version:
        LOG.warning("%s names no wandb producer version; reading it anyway.", path)
    elif version[:2] > CHECKED_PRODUCER:
        LOG.warning(
            "%s was written by wandb %s, newer than the %d.%d this reader was checked "
            "against: fields may be missing. --> Do: check the run table, and report it "
            "if values are lost.", path, producer, *CHECKED_PRODUCER
        )


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _history_number(item: Any) -> float | None:
    """A history value as float (NaN for non-numbers); None for media and dicts."""
    text = item.value_json
    if text:
        try:
            return float(text)
        except ValueError:
            value = _json_value(text)
    else:
        kind = item.WhichOneof("value")
        value = getattr(item, kind) if kind and kind != "none" else None
    if isinstance(value, (dict, list)):
        return None
    return to_float(value)


class _RunBuilder:
    """Collects one run's records; history is built as columns, not a dict per row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta: dict[str, Any] = {"run_id": path.stem.removeprefix("run-")}
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.exit_code: int | None = None
        self.alerts: dict[str, dict[str, Any]] = {}  # by title, in first-seen order
        self.runtime = math.nan  # the summary's _runtime is reset to 0 by bookkeeping records
        self.steps: list[int] = []
        self.columns: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))

    def add(self, record: Any) -> None:
        kind = record.WhichOneof("record_type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(getattr(record, kind))

    def _on_header(self, header: Any) -> None:
        _check_producer(self.path, header.version_info.producer)

    def _on_run(self, run: Any) -> None:
        self.meta.update(
            run_id=run.run_id or self.meta["run_id"], entity=run.entity, project=run.project,
            name=run.display_name, group=run.run_group, tags=list(run.tags), notes=run.notes,
        )
        if run.HasField("start_time"):
            self.meta["created_at"] = _iso(run.start_time.seconds + run.start_time.nanos / 1e9)
        self._on_config(run.config)
        self._on_summary(run.summary)

    def _on_config(self, config: Any) -> None:
        for item in config.update:
            self.config[_key(item)] = _json_value(item.value_json)
        for item in config.remove:
            self.config.pop(_key(item), None)
        self.config.pop("_wandb", None)

    def _on_summary(self, summary: Any) -> None:
        for item in summary.update:
            key = _key(item)
            if not key.startswith("_wandb"):
                self.summary[key] = _json_value(item.value_json)
        for item in summary.remove:
            self.summary.pop(_key(item), None)

    def _on_history(self, history: Any) -> None:
        row, step = len(self.steps), None
        for item in history.item:
            key = _key(item)
            if key == "_step":
                step = exact_step(_json_value(item.value_json) if item.value_json else item.integer)
            elif key == "_runtime":
                self.runtime = np.fmax(self.runtime, to_float(_json_value(item.value_json)))
            elif not key.startswith("_"):
                value = _history_number(item)
                if value is not None:
                    rows, values = self.columns[key]
                    rows.append(row)
                    values.append(value)
        self.steps.append(step if step is not None else history.step.num or row)

    def _on_alert(self, alert: Any) -> None:
        """``wandb.alert`` records, one entry per title with its count and last text (the
        trainer repeats "High bit stall rate" on every step)."""
        title = str(alert.title)
        entry = self.alerts.setdefault(title, {"title": title, "count": 0})
        entry.update(text=str(alert.text), level=str(alert.level or ""), count=entry["count"] + 1)

    def _on_exit(self, exit_record: Any) -> None:
        self.exit_code = exit_record.exit_code
        self.runtime = np.fmax(self.runtime, float(exit_record.runtime or math.nan))

    def build(self) -> RunRecord:
        n = len(self.steps)
        data: dict[str, np.ndarray] = {"_step": int64_steps(self.steps, self.meta["run_id"],
                                                            str(self.path))}
        for key in sorted(self.columns):
            rows, values = self.columns[key]
            column = np.full(n, np.nan)
            column[np.asarray(rows, dtype=np.int64)] = values
            data[key] = column
        self.meta["state"] = (
            "crashed" if self.exit_code is None else "finished" if self.exit_code == 0 else "failed"
        )
        self.meta["exit_code"] = self.exit_code
        self.meta["alerts"] = list(self.alerts.values())
        if math.isfinite(self.runtime):
            self.summary["_runtime"] = float(self.runtime)
        stamp = to_float(self.summary.get("_timestamp"))
        created = self.meta.get("created_at", "")
        self.meta["updated_at"] = _iso(stamp) if math.isfinite(stamp) else created
        import pandas as pd

        return RunRecord(meta=self.meta, config=self.config, summary=self.summary,
                         history=pd.DataFrame(data))


def _iso(seconds: float) -> str:
    """UTC ISO 8601 to the second, Z suffix (how W&B spells timestamps)."""
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_offline_run(path: str | Path) -> RunRecord:
    """One run from one ``run-<id>.wandb`` file."""
    builder = _RunBuilder(Path(path))
    for record in _records(Path(path)):
        builder.add(record)
    return builder.build()


class _InfoBuilder(_RunBuilder):
    """A run without its history (config, last summary, times, exit): what matching failure
    reports needs, at the cost of parsing the records (a tenth of a full read) but not
    building the history or decoding every summary (the trainer writes one per row)."""

    last_summary: Any = None

    def _on_history(self, history: Any) -> None:
        pass

    def _on_summary(self, summary: Any) -> None:
        self.last_summary = summary

    def build(self) -> RunRecord:
        if self.last_summary is not None:
            _RunBuilder._on_summary(self, self.last_summary)
        return super().build()


class _Silent(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def read_offline_run_info(path: str | Path) -> RunRecord:
    """One run from one ``run-<id>.wandb`` file, with an empty history. Silent: a torn file
    or a newer producer is warned about by the full read that follows (read_offline_run)."""
    builder = _InfoBuilder(Path(path))
    silent = _Silent()
    LOG.addFilter(silent)
    try:
        for record in _records(Path(path)):
            builder.add(record)
    finally:
        LOG.removeFilter(silent)
    return builder.build()


def offline_run_files(wandb_dir: str | Path) -> list[Path]:
    """Every readable ``run-*.wandb`` file under ``wandb_dir`` (or ``wandb_dir/wandb``), by
    run id, a resumed run's folders oldest first (``offline_folders.find_offline_runs``)."""
    from .offline_folders import find_offline_runs

    return [path for run in find_offline_runs(wandb_dir) for path in run.files]


def _readable(path: Path, root: Path, what: str) -> bool:
    """Whether a user file found under ``root`` may be read (userfiles.check_user_file);
    a refused one is skipped with a warning (a symlink's target would be published)."""
    try:
        check_user_file(path, root)
    except RefusedFile as exc:
        LOG.warning("skipped %s %s --> Do: put the file itself there, not a link to it.",
                    what, exc)
        return False
    return True


def read_offline_runs(wandb_dir: str | Path) -> Iterator[RunRecord]:
    """Every offline run under ``wandb_dir``, one at a time, sorted by run id; a resumed
    run's folders merged (``offline_folders.read_runs``)."""
    from .offline_folders import read_runs

    yield from read_runs(wandb_dir)


def find_failure_reports(checkpoints_dir: str | Path, run_ids: Iterable[str]) -> dict[str, list[Path]]:
    """``checkpoints/<run dir>/failure_reports/*.md`` per run, where <run dir> is the run id
    or ends with ``-<run id>``. Runs without reports are left out."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return {}
    wanted = set(run_ids)
    found: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        run_id = folder.name if folder.name in wanted else folder.name.rsplit("-", 1)[-1]
        if run_id not in wanted:
            continue
        reports = [p for p in sorted((folder / "failure_reports").glob("*.md"))
                   if _readable(p, root, "failure report")]
        if reports:
            found.setdefault(run_id, []).extend(reports)
    return found
