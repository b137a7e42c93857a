"""The failure report a collapsed bench run writes, from templates/failure_report.md.j2.

Same shape as the original trainer's reports (shared/reference/sample_failure_report.md), so
the site's report parser reads both. Numbers are formatted here the way the original's
f-strings did: 6 decimals for losses, percentages with 2, ``nan``/``inf`` spelled by Python.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from altgrad_docs.templates_dir import template_dir as resolve_template_dir

from .train import RunConfig, RunResult

TEMPLATE = "failure_report.md.j2"
#: Config keys shown in the report's YAML block, in the original's order.
REPORT_CONFIG_KEYS = (
    "fp8_format", "max_steps", "batch_size", "learning_rate", "grad_clip",
    "enable_partition_clipping", "enable_emergency_shift", "seed",
    "use_manifold_aware", "manifold_mantissa_bits",
)
LOSS_TREND_ROWS = 10


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _f6(x: float) -> str:
    return f"{x:.6f}"


def _recommendations(result: RunResult) -> list[tuple[str, str]]:
    recs = []
    if "NaN" in result.collapse_reason:
        recs.append(("NaN collapse", "Likely numerical overflow. Lower the learning rate or "
                     "clip updates relative to the format's range."))
    if result.collapse_reason.startswith("Divergence"):
        recs.append(("Divergence", "The loss rose above its starting value and stayed there. "
                     "Lower the learning rate or keep an FP32 master copy of the weights."))
    if result.collapse_reason.startswith("Stagnation"):
        recs.append(("Stagnation", "Updates were lost to rounding and the loss stopped "
                     "improving. Keep an FP32 master copy, or use stochastic rounding."))
    if result.quant_at_end.get("quantization/bit_stall_rate", 0) > 0.5:
        recs.append(("High bit-stall", "Most updates were lost to rounding. Use a format with "
                     "more mantissa bits, or stochastic rounding."))
    if result.quant_at_end.get("quantization/underflow_rate", 0) > 0.1:
        recs.append(("Underflow", "Many weights flush to zero. Apply per-tensor scaling "
                     "(this bench applies none)."))
    recs.append(("Consider a wider format", "Rerun the seed with a format of more exponent "
                 "or mantissa bits to separate format effects from the setup."))
    return recs


def _loss_trend(trend: list[tuple[int, float]]) -> list[tuple[int, str]]:
    """At most LOSS_TREND_ROWS rows: evenly spaced samples plus the last one."""
    if len(trend) > LOSS_TREND_ROWS:
        k = math.ceil(len(trend) / (LOSS_TREND_ROWS - 1))
        trend = trend[:-1][::k] + [trend[-1]]
    return [(step, _f6(loss)) for step, loss in trend]


def report_context(cfg: RunConfig, result: RunResult, wandb_config: dict[str, Any],
                   generated_at: datetime) -> dict[str, Any]:
    """The template's context: every value already a string, as the original wrote them."""
    q = result.quant_at_end
    best = result.best_loss if math.isfinite(result.best_loss) else math.nan
    return {
        "format": cfg.fp8_format,
        "collapse_step": result.collapse_step,
        "collapse_reason": result.collapse_reason,
        "final_loss": _f6(result.final_loss),
        "best_loss": _f6(best),
        "steps_done": result.steps_done,
        "max_steps": cfg.max_steps,
        "duration": f"{result.duration_s:.1f}s",
        "grad_sparsity": _pct(result.grad_sparsity),
        "sparsity_verdict": (
            "This indicates severe gradient vanishing." if result.grad_sparsity > 0.5
            else "Most gradients were still nonzero: not a vanishing-gradient collapse."
        ),
        "zero_update_layers": result.zero_update_layers,
        "bit_stall_rate": _pct(q.get("quantization/bit_stall_rate", math.nan)),
        "overflow_rate": _pct(q.get("quantization/overflow_rate", math.nan)),
        "underflow_rate": _pct(q.get("quantization/underflow_rate", math.nan)),
        "diagnostics": [
            {
                "step": d["step"],
                "stiffness": _f6(d["diagnostics/stiffness_mean"]),
                "grid_error": _f6(d["diagnostics/grid_error_mean"]),
                "ulp": f"{d['diagnostics/ulp_mean']:.2f}",
                "below": _pct(d["diagnostics/grad_below_stiffness_frac"]),
            }
            for d in result.diagnostics[-5:]
        ],
        "config": [(k, wandb_config[k]) for k in REPORT_CONFIG_KEYS if k in wandb_config],
        "loss_trend": _loss_trend(result.loss_trend),
        "recommendations": _recommendations(result),
        "generator": "altgrad_docs.bench",
        "generated_at": generated_at.isoformat(),
    }


def render(context: dict[str, Any], template_dir: Path | None = None) -> str:
    env = Environment(loader=FileSystemLoader(str(resolve_template_dir(template_dir))), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    return env.get_template(TEMPLATE).render(**context)


def write_failure_report(checkpoints: Path, cfg: RunConfig, result: RunResult,
                         wandb_config: dict[str, Any], now: datetime) -> Path:
    """``checkpoints/<run_id>/failure_reports/<FORMAT>_<YYYYmmdd_HHMMSS>_failure_report.md``."""
    folder = checkpoints / cfg.run_id / "failure_reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cfg.fp8_format}_{now:%Y%m%d_%H%M%S}_failure_report.md"
    path.write_text(render(report_context(cfg, result, wandb_config, now)))
    return path
