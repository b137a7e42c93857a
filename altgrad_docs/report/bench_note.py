"""What a report page says about data that come from the project's training bench.

Whether they do is the snapshot manifest's to say (:func:`from_bench`: its ``bench`` entry or
its source's ``producer``, both written by ``altgrad-docs bench``), never the snapshot's path:
any other snapshot (a W&B project, a user's offline runs) gets no bench text and no bench
entry in the nav (:func:`bench_nav`).

Bench runs are a simulation (FP32 master weights, weights rounded in the forward pass, no
scaling, a tiny model), and a reader must know that before reading any number. The facts
come from the snapshot manifest's ``bench`` entry (written by ``altgrad-docs bench``) and
from the runs' own config; nothing is typed in. ``templates/partials/bench_note.md`` words it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import pandas as pd


BENCH_PRODUCER = "altgrad-docs bench"
BENCH_PAGE = "bench.md"


def from_bench(manifest: Mapping[str, Any] | None) -> bool:
    """True when the snapshot was made by ``altgrad-docs bench`` (the bundled one is)."""
    manifest = manifest or {}
    source = manifest.get("source") or {}
    return bool(manifest.get("bench")) or (isinstance(source, Mapping) and source.get("producer") == BENCH_PRODUCER)


def bench_nav(nav: Any, keep: bool) -> Any:
    """The nav of mkdocs.yml without its entries for the bench page (``keep`` False), in any
    nesting MkDocs allows (a list of pages, titles -> page or section)."""
    if keep or nav is None:
        return nav
    if isinstance(nav, list):
        out = [bench_nav(item, keep) for item in nav]
        return [item for item in out if item is not None]
    if isinstance(nav, Mapping):
        out = {k: bench_nav(v, keep) for k, v in nav.items()}
        out = {k: v for k, v in out.items() if v is not None and v != []}
        return out or None
    return None if str(nav) == BENCH_PAGE else nav


def gpt_parameters(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> int:
    """Parameters of the bench's nanoGPT without biases and with an untied head
    (``bench.model.TinyGPT``; a test counts the torch model): token and position
    embeddings, per block two LayerNorm gains, attention 4 d^2, MLP 8 d^2, a final gain, the head."""
    d = n_embd
    return vocab_size * d + block_size * d + n_layer * (2 * d + 4 * d * d + 8 * d * d) + d + vocab_size * d


def _common(runs: pd.DataFrame, column: str) -> Any:
    """The one value every run has in ``column``, else None."""
    if column not in runs:
        return None
    values = runs[column].dropna().unique()
    return values[0] if len(values) == 1 else None


def _task(runs: pd.DataFrame) -> str | None:
    if "config_json" not in runs:
        return None
    tasks = {json.loads(c).get("task") for c in runs["config_json"].dropna() if c}
    return tasks.pop() if len(tasks) == 1 and None not in tasks else None


def bench_note(bench: Mapping[str, Any] | None, runs: pd.DataFrame) -> dict[str, Any] | None:
    """The note's facts, or None when the snapshot does not come from the bench."""
    if not bench:
        return None
    shape = {c: _common(runs, c) for c in ("n_layer", "n_embd", "vocab_size", "block_size", "max_steps")}
    size = ("n_layer", "n_embd", "vocab_size", "block_size")
    params = gpt_parameters(*(int(shape[c]) for c in size)) if all(shape[c] is not None for c in size) else None
    return {
        "quantised": bench.get("quantised"), "baseline": bench.get("baseline"), "task": _task(runs),
        "parameters": params, "n_layer": shape["n_layer"], "n_embd": shape["n_embd"],
        "steps": int(shape["max_steps"]) if shape["max_steps"] is not None else None,
    }
