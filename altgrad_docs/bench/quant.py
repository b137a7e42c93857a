"""Simulated weight quantisation in torch, built from the registry's rounding table.

The numbers come from :mod:`altgrad_docs.formats` only: ``FP8Format.rounding_table`` gives
the non-negative grid, the midpoints between neighbours and which way a tie goes, and this
module does with ``torch.searchsorted`` exactly what ``FP8Format.quantize`` does with
``numpy.searchsorted`` (saturate or Inf as the convention says, NaN passes through). Every
grid value and midpoint of the eight formats is exact in float32 (at most 8 significant bits,
exponents within float32's range), so quantising float32 weights in float32 gives the same
values as the float64 numpy path; :class:`TorchQuantizer` checks that when it is built.

The ``BF16`` baseline is not an 8-bit format: it rounds the FP32 master weights to bfloat16
(torch's round-to-nearest-even cast) and back, with the same straight-through gradient.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from altgrad_docs.formats import FP8Format, get_format

BASELINE = "BF16"
#: bfloat16 facts used by the baseline (7 explicit mantissa bits, 8 exponent bits).
BF16_MAN_BITS = 7
BF16_MAX = float(torch.finfo(torch.bfloat16).max)
BF16_MIN_NORMAL = float(torch.finfo(torch.bfloat16).tiny)


def _exact_f32(values: np.ndarray, what: str, name: str) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(values, dtype=np.float64)).to(torch.float32)
    if not np.array_equal(t.double().numpy(), values):
        raise ValueError(f"{name}: {what} are not exact in float32; the torch quantiser needs them to be")
    return t


class TorchQuantizer:
    """Round-to-nearest-even onto one format of the registry, for float32 tensors."""

    def __init__(self, fmt: FP8Format):
        self.fmt = fmt
        self.name = fmt.name
        self.man_bits = fmt.man_bits
        grid, mids, tie_up = fmt.rounding_table
        self.grid = _exact_f32(grid, "grid values", fmt.name)
        self.mids = _exact_f32(mids, "midpoints", fmt.name)
        self.tie_up = torch.from_numpy(np.asarray(tie_up, dtype=bool))
        self.saturates = fmt.saturates
        self.max_value = fmt.max_value
        self._finite = self.grid[torch.isfinite(self.grid)]  # E5M2's grid ends with +Inf
        self.min_normal = fmt.min_normal

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = x.abs()
        if self.saturates:
            a = torch.clamp(a, max=float(self.grid[-1]))
        last = len(self.mids) - 1
        j = torch.searchsorted(self.mids, a.contiguous(), side="left")
        jc = j.clamp(max=last)
        on_tie = (j <= last) & (self.mids[jc] == a)
        j = j + (on_tie & self.tie_up[jc]).long()
        out = torch.copysign(self.grid[j.clamp(max=len(self.grid) - 1)], x)
        return torch.where(torch.isnan(x), x, out)

    def spacing(self, w: torch.Tensor) -> torch.Tensor:
        """Distance to the next value up at |w|, as ``FP8Format.spacing`` computes it."""
        grid = self._finite
        j = torch.searchsorted(grid, w.abs().contiguous(), side="right")
        j = j.clamp(1, len(grid) - 1)
        return grid[j] - grid[j - 1]


class BF16Rounder:
    """The baseline: FP32 master weights rounded to bfloat16 (RNE) and back to float32."""

    name = BASELINE
    man_bits = BF16_MAN_BITS
    max_value = BF16_MAX
    min_normal = BF16_MIN_NORMAL
    saturates = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.bfloat16).to(torch.float32)

    def spacing(self, w: torch.Tensor) -> torch.Tensor:
        """bfloat16's ULP at |w| (constant 2^-133 below the smallest normal)."""
        a = w.abs().to(torch.bfloat16)
        up = torch.nextafter(a, torch.full_like(a, math.inf))
        return (up.float() - a.float()).clamp(min=2.0**-133)


Quantizer = TorchQuantizer | BF16Rounder


def make_quantizer(name: str) -> Quantizer:
    """The quantiser of a registry format, or the BF16 baseline for ``"BF16"``."""
    if name.upper() == BASELINE:
        return BF16Rounder()
    return TorchQuantizer(get_format(name))


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantised weight. Backward: the gradient passes unchanged (STE)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, q: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return q

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad, None


def straight_through(w: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` in the forward pass, identity gradient to the master weight ``w``."""
    return _StraightThrough.apply(w, q.detach())
