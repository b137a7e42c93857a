"""A tiny, hand-checkable run table and histories for the analysis and report tests.

Final val_loss by format / optimizer / seed (crashed = NaN):

    E5M2  AdamW          s1 3.00  s2 3.20  s3 3.10      (s4 killed, not counted)
    E5M2  ManifoldAdamW  s1 2.90  s2 3.00  s3 3.05      paired deltas -0.10 -0.20 -0.05
    E4M3  AdamW          s1 3.30
    E4M3  ManifoldAdamW  s1 3.35                        paired delta +0.05
    E7M0  AdamW          s1 crashed at step 40   s2 5.50
    E7M0  ManifoldAdamW  s1 5.00   s2 failed at step 60
    BF16  AdamW          s1 2.80   s2 2.85

The final train loss is val_loss + 0.1 for finished runs. Run E5M2/AdamW/s1 has a hostile
name (pipe, script tag, backticks, newline).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from altgrad_docs.runs import RunRecord, run_row, runs_frame

HOSTILE = "a|b <script>alert(1)</script> `x`\nnew"
NAN = math.nan
#: (run_id, format, manifold, seed, state, final val_loss, collapse step or None)
SPEC = [
    ("r01", "E5M2", False, 1, "finished", 3.00, None),
    ("r02", "E5M2", False, 2, "finished", 3.20, None),
    ("r03", "E5M2", False, 3, "finished", 3.10, None),
    ("r04", "E5M2", True, 1, "finished", 2.90, None),
    ("r05", "E5M2", True, 2, "finished", 3.00, None),
    ("r06", "E5M2", True, 3, "finished", 3.05, None),
    ("r07", "E5M2", False, 4, "killed", 3.50, None),
    ("r08", "E4M3", False, 1, "finished", 3.30, None),
    ("r09", "E4M3", True, 1, "finished", 3.35, None),
    ("r10", "E7M0", False, 1, "crashed", NAN, 40),
    ("r11", "E7M0", False, 2, "finished", 5.50, None),
    ("r12", "E7M0", True, 1, "finished", 5.00, None),
    ("r13", "E7M0", True, 2, "failed", NAN, 60),
    ("r14", "BF16", False, 1, "finished", 2.80, None),
    ("r15", "BF16", False, 2, "finished", 2.85, None),
]
STEPS = 100


def history(final: float, collapse: int | None, fmt: str, manifold: bool) -> pd.DataFrame:
    steps = np.arange(0, STEPS)
    end = final if np.isfinite(final) else 6.0
    loss = 10.0 - (10.0 - end - 0.1) * (1 - np.exp(-steps / 20.0))
    stall = np.full(len(steps), 0.9 if fmt == "E7M0" else 0.2 if manifold else 0.3)
    overflow = np.zeros(len(steps))
    if collapse is not None:
        loss = loss[: collapse + 1].copy()
        steps, stall, overflow = steps[: collapse + 1], stall[: collapse + 1], overflow[: collapse + 1]
        loss[-1] = math.nan
        if not manifold:  # the AdamW crash overflows first
            overflow[-10:] = 0.05
    h = {"_step": steps, "loss": loss, "quantization/bit_stall_rate": stall,
         "quantization/overflow_rate": overflow, "grad_norm": np.linspace(1, 2, len(steps)),
         "stall/transformer.h.0.attn.c_attn.weight": stall, "stall/lm_head.weight": stall / 2}
    if fmt == "BF16":
        h = {"_step": steps, "loss": loss, "grad_norm": np.ones(len(steps))}
    return pd.DataFrame(h)


def records() -> list[RunRecord]:
    out = []
    for run_id, fmt, manifold, seed, state, val, collapse in SPEC:
        config = {"use_fp8": fmt != "BF16", "fp8_format": fmt if fmt != "BF16" else None,
                  "use_manifold_aware": manifold, "seed": seed}
        last = collapse if collapse is not None else STEPS - 1
        summary = {"loss": val + 0.1, "val_loss": val, "_step": last}
        if fmt != "BF16":
            summary.update({"quantization/bit_stall_rate": 0.9 if fmt == "E7M0" else 0.2 if manifold else 0.3,
                            "quantization/overflow_rate": 0.0, "quantization/underflow_rate": 0.01})
        name = HOSTILE if run_id == "r01" else f"{fmt.lower()}-{'man' if manifold else 'std'}-s{seed}"
        meta = {"run_id": run_id, "name": name, "state": state,
                "url": f"https://wandb.ai/ent/altgrad/runs/{run_id}"}
        out.append(RunRecord(meta, config, summary, history(val, collapse, fmt, manifold)))
    return out


def runs() -> pd.DataFrame:
    return runs_frame([run_row(r) for r in records()])


def histories():
    """(run_id, history) one at a time, as Snapshot.iter_histories yields them."""
    for r in records():
        yield r.run_id, r.history
