"""Which offline runs a ``wandb/`` folder holds, and one run from all of its folders.

wandb writes one ``offline-run-<YYYYmmdd_HHMMSS>-<id>/run-<id>.wandb`` per process. A run
resumed offline (``wandb.init(id=..., resume="allow")`` after a crash or a time limit) gets
a second folder with the same id: :func:`find_offline_runs` groups every folder of an id,
oldest first, and :func:`merge_parts` joins them as ``wandb sync`` of those folders gives
one W&B run (see its docstring).

A folder that holds offline-run folders but not one readable run is an error, never an
empty snapshot: that is how a mistyped path or a copied-in-part folder shows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..runs import RunRecord, to_float
from ..userfiles import RefusedFile, check_user_file
from .offline import OfflineRunError, read_offline_run
from .steps import StepOutOfRange

LOG = logging.getLogger("mkdocs.plugins.altgrad")
RUN_FOLDERS = "offline-run-*"
RUN_FILES = "run-*.wandb"
#: The fix for each reason :func:`userfiles.check_user_file` gives.
_FIXES = {
    "symbolic link": "put the file itself there, not a link to it",
    "no such file": "run the fetch again once nothing moves or deletes runs in that folder",
    "not a regular file": "put the run's .wandb file itself there",
    "outside": "put the run folder itself inside the offline run folder",
    "cannot be opened": "make the file readable for you",
}


@dataclass(frozen=True)
class OfflineRun:
    """One run id and its ``run-<id>.wandb`` files, oldest folder first."""

    run_id: str
    files: tuple[Path, ...]


def offline_root(wandb_dir: str | Path) -> Path:
    """The folder that holds the ``offline-run-*`` folders: ``wandb_dir`` or its ``wandb/``
    (the folder a training script ran in). As typed: relative to the working folder."""
    root = Path(wandb_dir)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise OfflineRunError(f"offline run folder {root} {what}. --> Do: pass the wandb/ "
                              "folder that holds the offline-run-* folders.")
    if not any(root.glob(RUN_FOLDERS)) and (root / "wandb").is_dir():
        root = root / "wandb"
    return root


def find_offline_runs(wandb_dir: str | Path, *, required: bool = False) -> list[OfflineRun]:
    """Every run under ``wandb_dir`` (sorted by id) with all of its readable files.

    A file that may not be read (a symlink, gone, not a regular file) is skipped with a
    warning naming it and the fix. With ``required``, finding no run at all is an
    :class:`OfflineRunError` whose message says why (no run folders; folders but no file
    that can be read) and what to do."""
    root = offline_root(wandb_dir)
    folders = sorted(root.glob(RUN_FOLDERS))
    parts: dict[str, list[Path]] = {}
    refused: list[str] = []
    for folder in folders:
        files = sorted(folder.glob(RUN_FILES))
        if not files:
            refused.append(f"{folder}: it holds no {RUN_FILES} file. --> Do: copy the run's folder "
                           "again from where it was logged, with its .wandb file.")
        for path in files:
            why = _refused(path, root)
            if why:
                refused.append(why)
                continue
            parts.setdefault(path.stem.removeprefix("run-"), []).append(path)
    if required and not parts:  # one line: the error names the first cause
        raise OfflineRunError(_none_found(root, folders, refused))
    for why in refused:
        LOG.warning("skipped %s", why)
    runs = []
    for run_id in sorted(parts):
        files = tuple(sorted(parts[run_id], key=_folder_order))
        if len(files) > 1:
            LOG.info("run %s was resumed: merging its %d offline folders %s", run_id,
                     len(files), ", ".join(p.parent.name for p in files))
        runs.append(OfflineRun(run_id, files))
    return runs


def _folder_order(path: Path) -> tuple[str, str]:
    """Oldest first: wandb names a folder by the time its process started."""
    return path.parent.name, path.name


def _refused(path: Path, root: Path) -> str | None:
    try:
        check_user_file(path, root)
    except RefusedFile as exc:
        fix = next((f for k, f in _FIXES.items() if k in exc.reason), "check the file")
        return f"offline run log {exc} --> Do: {fix}."
    return None


def _none_found(root: Path, folders: list[Path], refused: list[str]) -> str:
    if folders:
        return (f"none of the {len(folders)} offline-run folders in {root} could be read, so "
                f"no snapshot was written; the first: {refused[0]}")
    online = sorted(p.name for p in root.glob("run-*") if p.is_dir())
    if online:
        return (f"no offline runs in {root}: it holds {len(online)} run-* folders of runs "
                "logged online, whose data are in W&B. --> Do: fetch them with --project "
                "ENTITY/PROJECT, or pass the folder of your offline runs.")
    return (f"no offline runs in {root}: it holds no offline-run-* folder. --> Do: pass "
            "--offline-dir the wandb/ folder your training wrote (it holds offline-run-* "
            "folders), or the folder above it.")


def read_run(run: OfflineRun) -> RunRecord:
    """The run from all its files, merged (:func:`merge_parts`). A file that is not a run
    log raises :class:`OfflineRunError` for the run (a resumed run with a part missing
    would be published with a gap), a step no int64 holds ``steps.StepOutOfRange``."""
    if len(run.files) == 1:
        return read_offline_run(run.files[0])
    return merge_parts([read_offline_run(p) for p in run.files],
                       [p.parent.name for p in run.files])


def read_runs(wandb_dir: str | Path) -> Iterator[RunRecord]:
    """Every run under ``wandb_dir``, one at a time, sorted by id; an unreadable one is
    skipped with a warning."""
    for run in find_offline_runs(wandb_dir):
        try:
            yield read_run(run)
        except (OfflineRunError, StepOutOfRange) as exc:
            LOG.warning("skipping run %s: %s", run.run_id, exc)


def merge_parts(parts: list[RunRecord], names: list[str]) -> RunRecord:
    """One run from the records of its offline folders, oldest first.

    History: the parts' rows one after the other, where a resumed part that starts at step
    ``s`` takes over from ``s`` on: rows of earlier parts at ``s`` or later are replaced (as
    W&B's rewind of a run does, and as a step logged twice keeps its last row). A resume
    that logs on from the next step (``run.log(..., step=N)``, or a trainer that counts
    its own steps) loses nothing; one that starts again at 0 replaces the earlier rows, and
    a warning names the run, the folder and how many rows. Config and summary are updated
    part by part (the newest value of a key wins); state, exit code, name and tags come from
    the newest part, ``created_at`` from the oldest; ``_runtime`` is the sum of the parts'
    (each offline process counts from 0)."""
    import numpy as np
    import pandas as pd

    frames: list[pd.DataFrame] = []
    config: dict = {}
    summary: dict = {}
    meta: dict = {}
    runtime = math.nan
    for record, name in zip(parts, names):
        history = record.history
        if len(history):
            first = int(history["_step"].min())
            frames = [_before(f, first, record.run_id, name) for f in frames]
            frames.append(history)
        config.update(record.config)
        summary.update(record.summary)
        part_runtime = to_float(record.summary.get("_runtime"))
        if math.isfinite(part_runtime):
            runtime = float(np.nansum([runtime, part_runtime]))
        meta.update(record.meta)
    meta["created_at"] = parts[0].meta.get("created_at", meta.get("created_at"))
    if math.isfinite(runtime):
        summary["_runtime"] = runtime
    frames = [f for f in frames if len(f)]
    if not frames:
        return RunRecord(meta=meta, config=config, summary=summary, history=parts[-1].history)
    history = pd.concat(frames, ignore_index=True, sort=False)
    history["_step"] = history["_step"].astype(np.int64)
    return RunRecord(meta=meta, config=config, summary=summary, history=history)


def _before(frame, step: int, run_id: str, name: str):
    """The rows of an earlier part below ``step`` (where the resumed part ``name`` starts)."""
    keep = frame["_step"].to_numpy() < step
    if not keep.all():
        LOG.warning("run %s: its resumed folder %s starts at step %d, so %d rows that earlier "
                    "folders logged at that step or later are replaced by its rows. --> Do: if the resume went on "
                    "from the last step, log with step= (run.log(..., step=N)) so that its "
                    "rows follow the earlier ones.", run_id, name, step, int((~keep).sum()))
    return frame.loc[keep]
