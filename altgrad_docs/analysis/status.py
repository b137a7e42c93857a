"""A run's status and its reason, decided once from every signal the run gives.

W&B's ``state`` alone is not enough: the AltGrad trainer stops a NaN run itself, sends the
alert "Training stopped: NaN loss" and exits 0, so W&B calls the run ``finished``
(shared/upstream/README.md). A run has failed when any of these says so, checked in this
order (the first one found is the reason shown; the others are listed in ``signals``):

1. W&B state ``crashed`` (heartbeat lost) or ``failed`` (non-zero exit), or a non-zero exit
   code the run log recorded;
2. an alert that stops training: its title says the run stopped, halted or aborted
   ("Training stopped: NaN loss"), or its level is ERROR; warnings such as "High bit stall
   rate" do not count;
3. a failure report attached to the run;
4. a non-finite last value of the primary metric (the first of :data:`PRIMARY_METRICS` the
   run logged);
5. a stop before ``max_steps``: the last logged step is more than one logging interval short
   of ``max_steps`` (the interval is the median gap between logged steps; with a single
   logged row, the largest of the config's ``log_interval``, ``eval_interval`` and
   ``diagnostic_interval``; with neither, this signal is not used).

``killed`` and ``running`` runs keep their state as status (they are neither finished nor
failed). Pure functions on plain values: nothing here reads files or imports the project,
so the ground floor (``runs.py``) can call it when it writes the run table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..runs import STATUS_OF_STATE  # W&B state -> status before any other signal

#: Keys taken as the primary (loss-like) metric, first present wins.
PRIMARY_METRICS: tuple[str, ...] = ("loss", "train/loss", "val_loss", "eval/loss")
#: Config keys that give how often a run logs, for a run with a single logged row.
INTERVAL_KEYS: tuple[str, ...] = ("log_interval", "eval_interval", "diagnostic_interval")
#: An alert title that means the trainer stopped the run.
STOP_TITLE = re.compile(r"\b(stopp?(ed|ing)?|halt(ed|ing)?|abort(ed|ing)?)\b", re.I)
#: The cause after "Training stopped:" in such a title.
STOP_CAUSE = re.compile(r"^[^:]*\b(?:stopp?ed|halted|aborted)\b\s*[:\-–]\s*(?P<cause>.+)$", re.I)

#: status values
FINISHED, FAILED = "finished", "failed"


@dataclass(frozen=True)
class Signals:
    """What a run tells about how it ended (plain values; NaN / None where unknown)."""

    state: str
    exit_code: int | None = None
    alerts: tuple[Mapping[str, Any], ...] = ()  # {"title", "text", "level", "count"}
    metric: str | None = None  # the primary metric's key, None when the run logged none
    last_value: float = math.nan  # its last logged value
    collapse_step: int | None = None  # first step of the non-finite stretch that ends the run
    last_step: float = math.nan  # last logged _step
    log_every: float = math.nan  # logging interval in steps
    max_steps: float = math.nan
    reports: tuple[Mapping[str, Any], ...] = ()  # attached failure reports {"file", "reason", "collapse_step"}


@dataclass(frozen=True)
class Status:
    status: str  # finished | failed | killed | running (or the state as given)
    reason: str  # "" for a run that finished cleanly
    signals: tuple[str, ...] = field(default=())  # every failure signal found, in order


def stop_alerts(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The alerts that say training was stopped (title) or are of level ERROR."""
    return [a for a in alerts if STOP_TITLE.search(str(a.get("title") or ""))
            or str(a.get("level") or "").upper() == "ERROR"]


def _at(step: int | None) -> str:
    return f" at step {step}" if step is not None else ""


def _non_finite_word(value: float) -> str:
    return "NaN" if math.isnan(value) else "Inf"


def _alert_reason(alert: Mapping[str, Any], s: Signals) -> str:
    title = str(alert.get("title") or "").strip()
    cause = STOP_CAUSE.match(title)
    what = cause.group("cause").strip() if cause else (title or str(alert.get("text") or "").strip())
    return f"stopped by trainer: {what}{_at(s.collapse_step)}" if what else f"stopped by trainer{_at(s.collapse_step)}"


def stopped_early(s: Signals) -> bool:
    """The last logged step is more than one logging interval short of max_steps."""
    if not (math.isfinite(s.last_step) and math.isfinite(s.max_steps) and math.isfinite(s.log_every)):
        return False
    return s.last_step + max(s.log_every, 1.0) < s.max_steps


def decide(s: Signals) -> Status:
    """The run's status, the reason shown for it, and every failure signal found."""
    base = STATUS_OF_STATE.get(s.state, s.state or "running")
    if base not in (FINISHED, FAILED):
        return Status(base, f"W&B state {s.state}")
    found: list[tuple[str, str]] = []
    if s.state in ("crashed", "failed"):
        why = "no heartbeat (process lost)" if s.state == "crashed" else "exited with an error"
        code = f", exit code {s.exit_code}" if s.exit_code not in (None, 0) else ""
        found.append(("state", f"W&B state {s.state}: {why}{code}"))
    elif s.exit_code not in (None, 0):
        found.append(("exit_code", f"exit code {s.exit_code}"))
    stops = stop_alerts(s.alerts)
    if stops:
        found.append(("alert", _alert_reason(stops[0], s)))
    if s.reports:
        first = s.reports[0]
        cause = str(first.get("reason") or "").strip()
        step = first.get("collapse_step")
        found.append(("report", f"failure report: {cause or 'collapse'}{_at(step if isinstance(step, int) else None)}"))
    if s.metric is not None and not math.isfinite(s.last_value):
        found.append(("non_finite", f"{_non_finite_word(s.last_value)} {s.metric}{_at(s.collapse_step)}"))
    if stopped_early(s):
        found.append(("early_stop", f"stopped at step {int(s.last_step)} of max_steps {int(s.max_steps)}"))
    if not found:
        return Status(FINISHED, "")
    return Status(FAILED, found[0][1], tuple(k for k, _ in found))


def primary_metric(keys: Iterable[str]) -> str | None:
    """The first of PRIMARY_METRICS among ``keys`` (None: none of them)."""
    present = set(keys)
    return next((k for k in PRIMARY_METRICS if k in present), None)


def log_interval(steps: Iterable[float], config: Mapping[str, Any]) -> float:
    """How often a run logged: the median gap between its logged steps; for one row, the
    largest interval its config names (NaN when neither is known)."""
    xs = sorted({float(x) for x in steps if isinstance(x, (int, float)) and math.isfinite(x)})
    gaps = sorted(b - a for a, b in zip(xs, xs[1:]))
    if gaps:
        mid = len(gaps) // 2
        return gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    named = [_number(config.get(k)) for k in INTERVAL_KEYS]
    named = [x for x in named if math.isfinite(x) and x > 0]
    return max(named) if named else math.nan


def _number(value: Any) -> float:
    if isinstance(value, Mapping) and "value" in value:  # W&B's {"value": v, "desc": ...}
        value = value["value"]
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
