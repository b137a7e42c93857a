"""ExperimentDataLoader: the original plan's seed API, over any source.

    loader = ExperimentDataLoader("my-team/altgrad")            # live W&B (wandb.Api())
    loader = ExperimentDataLoader(snapshot="data/snapshot")    # a frozen snapshot
    loader = ExperimentDataLoader(offline_dir="wandb")         # unsynced offline runs

Whatever the source, the tables have the same columns (runs.RUN_COLUMNS), missing metrics are
NaN (never an exception), and by default only finished and failed (``crashed``/``failed``)
runs are returned; for the live API the state filter is applied by the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .runs import DEFAULT_STATES, METRIC_ALIASES, normalize_format, run_row, runs_frame, tidy_history

FORMAT_COLUMNS = ["format", "run_id", "run_url", "state", "steps", "final_loss", "best_loss",
                  "bit_stall_final", "overflow_final", "optimizer", "seed", "learning_rate",
                  "manifold_aware", "status", "name"]
MANIFOLD_COLUMNS = ["optimizer", "manifold_aware", "run_id", "final_loss", "best_loss",
                    "bit_stall_final", "format", "seed", "state", "run_url"]


class _SnapshotBackend:
    def __init__(self, path: str | Path) -> None:
        from .snapshot import open_snapshot

        self.snapshot = open_snapshot(path)

    def table(self, states: tuple[str, ...]) -> pd.DataFrame:
        return self.snapshot.runs()

    def history(self, run_id: str, keys: list[str] | None) -> pd.DataFrame:
        return self.snapshot.history(run_id, keys)


class _OfflineBackend:
    """Offline runs read once into memory (offline folders are a researcher's own runs)."""

    def __init__(self, path: str | Path) -> None:
        from .sources.offline import read_offline_runs

        records = list(read_offline_runs(path))
        self._table = runs_frame([run_row(r) for r in records])
        self._histories = {r.run_id: tidy_history(r.history) for r in records}

    def table(self, states: tuple[str, ...]) -> pd.DataFrame:
        return self._table

    def history(self, run_id: str, keys: list[str] | None) -> pd.DataFrame:
        if run_id not in self._histories:
            raise KeyError(f"run {run_id!r} is not among the offline runs")
        return _select(self._histories[run_id], keys)


class _ApiBackend:
    """The live project, listed once per set of states; histories fetched on demand."""

    def __init__(self, project: str, timeout: int | None) -> None:
        from .sources import wandb_api

        self._wa = wandb_api
        self.project = project
        self.api = wandb_api.connect(timeout or wandb_api.DEFAULT_TIMEOUT)  # wandb.Api()
        self._listed: dict[tuple[str, ...], list[Any]] = {}
        self._by_id: dict[str, Any] = {}

    def table(self, states: tuple[str, ...]) -> pd.DataFrame:
        if states not in self._listed:
            listed = self._wa.list_runs(self.api, self.project, states)
            self._listed[states] = listed
            self._by_id.update({r.record.run_id: r for r in listed})
        return runs_frame([run_row(r.record) for r in self._listed[states]])

    def history(self, run_id: str, keys: list[str] | None) -> pd.DataFrame:
        if run_id not in self._by_id:
            self.table(tuple(DEFAULT_STATES) + ("killed", "running"))
        if run_id not in self._by_id:
            raise KeyError(f"run {run_id!r} is not in W&B project {self.project}")
        listed = self._by_id[run_id]
        if keys is not None:
            listed.history_keys = sorted(set(keys) | _aliases(keys))
        else:
            listed.history_keys = list(listed.logged_keys)
        return _select(tidy_history(self._wa.fetch_history(listed)), keys)


def _aliases(keys: Iterable[str]) -> set[str]:
    return {alias for k in keys for alias in METRIC_ALIASES.get(k, ())}


def _select(history: pd.DataFrame, keys: list[str] | None) -> pd.DataFrame:
    if keys is None:
        return history.reset_index(drop=True)
    out = pd.DataFrame({"_step": history["_step"].to_numpy()})
    for key in keys:
        out[key] = history[key].to_numpy() if key in history else np.nan
    return out


class ExperimentDataLoader:
    """Runs of one AltGrad project as tidy DataFrames, from W&B, a snapshot or offline runs.

    ``project`` is ``PROJECT`` (under your default W&B entity) or ``ENTITY/PROJECT``; it is
    used only when neither ``snapshot`` nor ``offline_dir`` is given. ``states`` is the
    default state filter of every method.
    """

    def __init__(self, project: str = "altgrad", *, snapshot: str | Path | None = None,
                 offline_dir: str | Path | None = None,
                 states: Iterable[str] = DEFAULT_STATES, timeout: int | None = None) -> None:
        if snapshot is not None and offline_dir is not None:
            raise ValueError("give snapshot or offline_dir, not both")
        self.project = project
        self.states = tuple(states)
        if snapshot is not None:
            self._backend: Any = _SnapshotBackend(snapshot)
        elif offline_dir is not None:
            self._backend = _OfflineBackend(offline_dir)
        else:
            self._backend = _ApiBackend(project, timeout)

    def runs(self, states: Iterable[str] | None = None) -> pd.DataFrame:
        """The full run table (runs.RUN_COLUMNS) of the runs in ``states``."""
        wanted = tuple(states) if states is not None else self.states
        table = self._backend.table(wanted)
        return table[table["state"].isin(wanted)].reset_index(drop=True)

    def get_format_comparison_runs(self, formats: Iterable[str] | None = None) -> pd.DataFrame:
        """format, run_id, run_url, state, steps, final_loss, best_loss, bit_stall_final,
        overflow_final (then optimizer, seed, learning_rate, manifold_aware, status, name, and,
        when the runs' design has factors beyond format x optimizer, each factor not listed yet
        and ``setting``: see analysis/design.py)."""
        from .analysis.design import design_columns

        table = self.runs()
        if formats is not None:
            wanted = {normalize_format({"fp8_format": f}) for f in formats}
            table = table[table["format"].isin(wanted)]
        study, factors = design_columns(table.reset_index(drop=True))
        extra = [k for k in factors if k not in FORMAT_COLUMNS] + (["setting"] if factors else [])
        return study[FORMAT_COLUMNS + extra].reset_index(drop=True)

    def get_manifold_comparison_runs(self, fmt: str = "E5M2") -> pd.DataFrame:
        """optimizer, manifold_aware, run_id, final_loss, best_loss, bit_stall_final (then
        format, seed, state, run_url) of the runs of one format, both optimizers."""
        table = self.runs()
        table = table[table["format"] == normalize_format({"fp8_format": fmt})]
        return table.sort_values(["optimizer", "seed", "run_id"], kind="stable")[
            MANIFOLD_COLUMNS].reset_index(drop=True)

    def get_run_history(self, run_id: str, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of one run: ``_step`` plus ``keys`` (all logged keys if None).

        A key the run never logged is a NaN column; the old unprefixed names
        (``bit_stall_rate``...) fill in for the ``quantization/`` ones when those are absent.
        """
        keys = list(keys) if keys is not None else None
        extra = sorted(_aliases(keys) - set(keys)) if keys is not None else []
        history = self._backend.history(run_id, None if keys is None else keys + extra)
        if keys is None:
            return history
        for key in keys:
            for alias in METRIC_ALIASES.get(key, ())[1:]:
                if alias in history and history[key].isna().all():
                    history[key] = history[alias]
        return history[["_step"] + keys]
