"""A run's log beyond its metrics and alerts, as a run page shows it: system metrics
summarised per key, the console output's tail. Pure functions of the snapshot's
``logs/<run_id>.json`` (``Snapshot.run_log``; from offline runs by ``sources/offline.py``,
from W&B by ``sources/wandb_logs.py``)."""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

#: Lines of console output shown on the page (the whole log is a download).
TAIL_LINES = 30


def system_unit(key: str) -> str:
    """The unit of a W&B system metric key (``proc.memory.rssMB``, ``cpu``, ``gpu.0.temp``)."""
    if key.endswith("MB"):
        return "MB"
    if key.endswith("GB"):
        return "GB"
    if key.endswith(("percent", "Percent")) or key in ("cpu", "memory") or key.endswith((".gpu", ".memory")):
        return "%"
    if key.startswith("network."):
        return "bytes" if not key.endswith("Retransmits") else "count"
    if key.startswith("disk.") and key.endswith((".in", ".out")):
        return "MB"
    if key.endswith(".temp"):
        return "°C"
    if key.endswith(("powerWatts", ".power")):
        return "W"
    return ""


def system_rows(samples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per system metric: samples, mean, max and last value, its unit; keys sorted."""
    values: dict[str, list[float]] = {}
    for sample in samples:
        for key, value in sample.items():
            if key != "time" and isinstance(value, (int, float)) and math.isfinite(value):
                values.setdefault(key, []).append(float(value))
    return [{"key": k, "samples": len(v), "mean": sum(v) / len(v), "max": max(v), "last": v[-1],
             "unit": system_unit(k)} for k, v in sorted(values.items())]


def console_text(log: dict[str, Any]) -> str:
    """The console output as one text ("" without any)."""
    return "".join(str(line) for line in log.get("console") or [])


def console_tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of the console output as a terminal showed them: colour codes
    dropped, a line redrawn after a carriage return (a progress bar) shown as last drawn,
    other control characters as U+FFFD; its final newline dropped."""
    if not text:
        return ""
    shown = []
    for line in text.rstrip("\n").split("\n")[-lines:]:
        line = _ANSI.sub("", line).rstrip("\r").rsplit("\r", 1)[-1]
        shown.append(_CONTROL.sub("\ufffd", line))
    return "\n".join(shown)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
