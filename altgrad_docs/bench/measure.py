"""What the bench measures about the quantised weights, on the flat master-weight vector.

All parameters live in one flat FP32 tensor (:class:`FlatLayout` maps names to slices), so
every measurement is a handful of vector operations, with per-parameter sums by slice.

* bit stall: among elements whose master value changed in a step, the fraction whose quantised
  value did not (``stall/<name>``, overall ``quantization/bit_stall_rate``), and the number of
  quantised values that changed (``flips/<name>``); summed over the steps between two rows.
* overflow: fraction of elements with |w| > format max (saturated, or Inf for E5M2).
* underflow: fraction of elements with w != 0 whose quantised value is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .optim import stiffness
from .quant import Quantizer

NEAR_ZERO_GRAD = 1e-10


@dataclass(frozen=True)
class FlatLayout:
    """Names, shapes and sizes of the parameters packed into one flat vector, in order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, named: list[tuple[str, torch.Tensor]]) -> "FlatLayout":
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = flat.split(self.sizes)
        return {n: t.view(s) for n, t, s in zip(self.names, parts, self.shapes)}

    def counts(self, mask: torch.Tensor) -> list[int]:
        """Number of true elements of a flat mask, per parameter."""
        return [int(m.sum()) for m in mask.split(self.sizes)]


class StallCounter:
    """Flips and attempted updates per parameter, summed until :meth:`rates` resets them."""

    def __init__(self, layout: FlatLayout):
        self.layout = layout
        self.flips = [0] * len(layout.names)
        self.updates = [0] * len(layout.names)

    def add(self, old_w: torch.Tensor, new_w: torch.Tensor, old_q: torch.Tensor,
            new_q: torch.Tensor) -> tuple[int, int]:
        """Count one step (``new_w`` is the attempted update); returns its (flips, updates)."""
        updated = new_w != old_w
        flipped = updated & (new_q != old_q)
        step_u, step_f = self.layout.counts(updated), self.layout.counts(flipped)
        for i, (u, f) in enumerate(zip(step_u, step_f)):
            self.updates[i] += u
            self.flips[i] += f
        return sum(step_f), sum(step_u)

    def rates(self) -> dict[str, float]:
        """``stall/<name>``, ``flips/<name>`` and ``quantization/bit_stall_rate``; then reset."""
        row: dict[str, float] = {}
        for name, u, f in zip(self.layout.names, self.updates, self.flips):
            row[f"stall/{name}"] = 1 - f / u if u else math.nan
            row[f"flips/{name}"] = float(f)
        total_u, total_f = sum(self.updates), sum(self.flips)
        row["quantization/bit_stall_rate"] = 1 - total_f / total_u if total_u else math.nan
        self.flips = [0] * len(self.flips)
        self.updates = [0] * len(self.updates)
        return row


def range_rates(w: torch.Tensor, q: torch.Tensor, max_value: float) -> dict[str, float]:
    n = w.numel()
    return {
        "quantization/overflow_rate": int((w.abs() > max_value).sum()) / n,
        "quantization/underflow_rate": int(((w != 0) & (q == 0)).sum()) / n,
    }


def diagnostics(w: torch.Tensor, q: torch.Tensor, grad: torch.Tensor, quantizer: Quantizer,
                mantissa_bits: int, old_w: torch.Tensor, attempted: torch.Tensor) -> dict[str, float]:
    """Means over all weights: stiffness S, the attempted update |delta w| in units of the
    local spacing at the old weight (``ulp_mean``: below 0.5 round-to-nearest loses it),
    rounding error in ULPs, and the fraction of raw gradient elements smaller than S."""
    s = stiffness(w, quantizer, mantissa_bits)
    ulp = quantizer.spacing(w)
    return {
        "diagnostics/stiffness_mean": float(s.mean()),
        "diagnostics/ulp_mean": float(((attempted - old_w).abs() / quantizer.spacing(old_w)).mean()),
        "diagnostics/grid_error_mean": float(((q - w).abs() / ulp).mean()),
        "diagnostics/grad_below_stiffness_frac": float((grad.abs() < s).float().mean()),
    }


def position_stats(position: torch.Tensor) -> dict[str, float]:
    """ManifoldAdamW's latent integer position (cumulative update in ULPs): mean/std/min/max."""
    return {f"bit_position/{k}": float(getattr(position, k)()) for k in ("mean", "std", "min", "max")}


def grad_sparsity(grad: torch.Tensor, layout: FlatLayout) -> tuple[float, list[str]]:
    """Fraction of gradient elements below 1e-10 in size, and the parameters where >90% are."""
    near = grad.abs() < NEAR_ZERO_GRAD
    per_layer = layout.counts(near)
    zero_layers = [n for n, c, size in zip(layout.names, per_layer, layout.sizes) if c > 0.9 * size]
    return sum(per_layer) / grad.numel(), zero_layers
