"""Failure reports on disk matched to the runs that wrote them.

The trainer writes ``<checkpoint_dir>/failure_reports/<FMT>_<YYYYmmdd_HHMMSS>_failure_report.md``
where ``checkpoint_dir`` is the run's config value, written as given: relative to the
trainer's working folder (``checkpoints-runner/runner-e7m0-adamw-lr10-s43``) or absolute, and
never naming the W&B run id. ``--checkpoints`` names a folder somewhere above the reports:
the folder of checkpoint folders, the working folder, or a checkpoint folder itself. A report
belongs to a run when

1. its checkpoint folder is named by the run id (``<run id>/`` or ``<name>-<run id>/``: the
   older layout, matched first, nothing else checked); else
2. the run's ``checkpoint_dir`` ends in the report's folder path below ``--checkpoints``
   (its trailing components; at least one), the longest such match winning; then
3. the format in the file name is the run's format; then
4. when more than one run is left (runs sharing a folder), the report's time lies within
   the run's lifetime (start .. start + runtime, both in UTC, :data:`SLACK_S` seconds either
   side; the report names its time without a zone and is read as UTC); with one run left,
   a time outside its lifetime rejects it.

A report that matches no run, or several, stays unmatched with a warning naming it and the
candidates; unmatched reports are kept (the snapshot's ``failure_reports/_unmatched/``) and
listed on the Failure modes page. A ``--checkpoints`` folder that does not exist, or holds no
report, is warned about by name.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from ..formats import classify_format
from ..runs import RunRecord, config_value, normalize_format, to_float
from ..userfiles import RefusedFile, check_user_file

LOG = logging.getLogger("mkdocs.plugins.altgrad")

REPORT_NAME = re.compile(r"^(?P<fmt>.+)_(?P<ts>\d{8}_\d{6})_failure_report\.md$")
REPORTS_FOLDER = "failure_reports"
#: Seconds of slack around a run's lifetime (start times are kept to the second).
SLACK_S = 120.0


@dataclass(frozen=True)
class RunInfo:
    """What matching needs of a run."""

    run_id: str
    name: str = ""
    checkpoint_dir: tuple[str, ...] = ()  # its components, as the config gives them
    format: str = ""
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class ReportMatch:
    by_run: dict[str, list[Path]] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per unmatched report or bad folder


def path_parts(text: Any) -> tuple[str, ...]:
    """A path as written in a config, split into components (``/`` or ``\\``; no ``.``)."""
    if not isinstance(text, str) or not text.strip():
        return ()
    raw = text.strip()
    parts = PureWindowsPath(raw).parts if "\\" in raw else PurePosixPath(raw).parts
    return tuple(p for p in parts if p not in (".", "/", "\\") and not p.endswith(":\\"))


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def run_info(record: RunRecord) -> RunInfo:
    """RunInfo of a record: checkpoint_dir and format from its config, lifetime from its
    start time and runtime (else its last update)."""
    start = _when(record.meta.get("created_at"))
    runtime = to_float(record.summary.get("_runtime"))
    end = start + timedelta(seconds=runtime) if start and math.isfinite(runtime) else \
        _when(record.meta.get("updated_at"))
    return RunInfo(run_id=record.run_id, name=str(record.meta.get("name") or ""),
                   checkpoint_dir=path_parts(config_value(record.config, "checkpoint_dir")),
                   format=normalize_format(record.config), start=start, end=end)


def report_time(path: Path) -> datetime | None:
    found = REPORT_NAME.match(path.name)
    if not found:
        return None
    try:
        return datetime.strptime(found.group("ts"), "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def report_format(path: Path) -> str | None:
    """The format a report's file name names, by meaning as the run table names it
    (formats.classify_format: ``fp8_e4m3fn`` -> E4M3); the name's own text for a format the
    registry does not know."""
    found = REPORT_NAME.match(path.name)
    if not found:
        return None
    text = found.group("fmt").strip()
    return classify_format(text).label or text.upper().removeprefix("FP8_")


def report_files(root: Path) -> list[Path]:
    """Every readable ``failure_reports/*.md`` below ``root`` (or in it, when it is one)."""
    found = sorted(root.glob("*.md")) if root.name == REPORTS_FOLDER else \
        sorted(root.rglob(f"{REPORTS_FOLDER}/*.md"))
    out = []
    for path in found:
        try:
            check_user_file(path, root)
        except RefusedFile as exc:
            LOG.warning("skipped failure report %s --> Do: put the file itself there, not a link "
                        "to it.", exc)
            continue
        out.append(path)
    return out


def _suffix_len(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _by_id(folder: str, runs: dict[str, RunInfo]) -> str | None:
    if folder in runs:
        return folder
    tail = folder.rsplit("-", 1)[-1]
    return tail if "-" in folder and tail in runs else None


def _in_lifetime(run: RunInfo, when: datetime | None) -> bool:
    if when is None or run.start is None:
        return True  # nothing to compare: time does not decide
    slack = timedelta(seconds=SLACK_S)
    end = run.end or run.start
    return run.start - slack <= when <= end + slack


def _names(runs: Iterable[RunInfo]) -> str:
    return ", ".join(f"{r.run_id} ({r.name})" if r.name else r.run_id for r in runs) or "none"


def match_report(report: Path, root: Path, runs: dict[str, RunInfo]) -> tuple[str | None, str | None]:
    """The run id a report belongs to (module docstring), or None and why (naming the
    report and the candidate runs, with the fix)."""
    folder = report.parent.parent
    legacy = _by_id(folder.name, runs)
    if legacy is not None:
        return legacy, None
    rel = folder.relative_to(root).parts if folder != root.parent else ()
    where = folder.absolute().parts
    scored = [(_suffix_len(r.checkpoint_dir, where), r) for r in runs.values()]
    scored = [(n, r) for n, r in scored if n >= max(1, len(rel))]
    best = max((n for n, _ in scored), default=0)
    by_path = [r for n, r in scored if n == best]
    fmt, when = report_format(report), report_time(report)
    by_format = [r for r in by_path if fmt is None or r.format == fmt]
    by_time = [r for r in by_format if _in_lifetime(r, when)]
    if len(by_time) == 1:
        return by_time[0].run_id, None
    shown = "/".join(rel) or folder.name
    if not by_path:
        return None, (f"failure report {report} matches no run: no run's checkpoint_dir ends in "
                      f"{shown!r}. --> Do: fetch the run that wrote it too, or point --checkpoints at "
                      "the folder its checkpoint_dir is relative to.")
    if not by_format:
        return None, (f"failure report {report} matches no run: it names format {fmt}, the runs "
                      f"whose checkpoint_dir ends in {shown!r} are {_names(by_path)}. --> Do: check "
                      "the report belongs to these runs.")
    if not by_time:
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") if when else "?"
        return None, (f"failure report {report} matches no run: its time {stamp} (read as UTC) is "
                      f"outside the lifetime of every candidate run: {_names(by_format)}. --> Do: "
                      "check the report belongs to these runs.")
    return None, (f"failure report {report} matches several runs, left unattached: "
                  f"{_names(by_time)} (same checkpoint_dir {shown!r}, format and time). --> Do: give "
                  "each run its own checkpoint_dir.")


def match_failure_reports(checkpoints: str | Path, runs: Iterable[RunInfo], log: bool = True) -> ReportMatch:
    """Every report under ``checkpoints`` matched to one of ``runs`` or left unmatched; the
    problems (a missing or empty folder, each unmatched report) are logged as warnings, or
    with ``log=False`` only kept in ``problems`` for the caller to word."""
    root = Path(checkpoints)
    result = ReportMatch()
    if not root.is_dir():
        result.problems.append(f"--checkpoints folder {root} does not exist: no failure report is "
                               "attached. --> Do: pass the folder that holds the runs' checkpoint "
                               "folders (or the trainer's working folder).")
    else:
        files = report_files(root)
        if not files:
            result.problems.append(f"--checkpoints folder {root} holds no failure report (no "
                                   f"{REPORTS_FOLDER}/*.md below it). --> Do: pass the folder that "
                                   "holds the runs' checkpoint folders (or the trainer's working folder).")
        by_id = {r.run_id: r for r in runs}
        for report in files:
            owner, problem = match_report(report, root, by_id)
            if owner is None:
                result.unmatched.append(report)
                result.problems.append(problem or f"failure report {report} matches no run")
            else:
                result.by_run.setdefault(owner, []).append(report)
    if log:
        for problem in result.problems:
            LOG.warning("%s", problem)
    return result
