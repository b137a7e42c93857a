"""The FP8 format registry: every fact and the quantiser come from the 256 bit patterns.

A format ExMy has 1 sign bit, E exponent bits and M = 7 - E mantissa bits. Its values are
decoded from each bit pattern (`decode`), and everything else -- the facts table on the site,
the rounding table the training bench quantises with -- is computed from those values, so the
two can never disagree. Conventions for the top exponent (see shared reference fp8-formats.md):

* ``ieee``: top exponent reserved; mantissa 0 is +/-Inf, anything else NaN (OCP E5M2).
* ``fn``: only S.1111.111 is NaN, no Inf (OCP E4M3).
* ``finite``: every pattern is a number.
* ``fixed``: E0M7, sign-magnitude fixed point with constant step 2^-7.

Overflow policy of the simulated quantiser: ``ieee`` formats round to +/-Inf past the
rounding boundary above the max (as IEEE round-to-nearest-even does); every other format
saturates at +/-max, since it cannot encode Inf. NaN input stays NaN in every format: the
simulation keeps values in FP32 containers, so NaN can appear even where the format has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["FP8Format", "FORMATS", "FORMAT_NAMES", "BASELINES", "REFERENCE_FORMATS", "get_format", "format_facts"]


@dataclass(frozen=True)
class FP8Format:
    """One 8-bit format of the AltGrad registry (``bits=16`` describes the 16-bit reference
    formats FP16 and BF16 the same way: 1 sign bit, E exponent bits, M mantissa bits)."""

    name: str
    exp_bits: int
    man_bits: int
    bias: int | None
    convention: str  # "fixed" | "finite" | "fn" | "ieee"
    bits: int = 8

    def decode(self, pattern: int) -> float:
        """Value of one bit pattern (sign in the top bit)."""
        sign = -1.0 if pattern >> (self.bits - 1) & 1 else 1.0
        body = pattern & ((1 << (self.bits - 1)) - 1)
        e = body >> self.man_bits
        m = body & ((1 << self.man_bits) - 1)
        if self.convention == "fixed":
            return sign * m / 2.0**self.man_bits
        top = (1 << self.exp_bits) - 1
        if self.convention == "ieee" and e == top:
            return sign * math.inf if m == 0 else math.nan
        if self.convention == "fn" and e == top and m == (1 << self.man_bits) - 1:
            return math.nan
        scale = 2.0**self.man_bits
        if e == 0:
            return sign * (m / scale) * 2.0 ** (1 - self.bias)
        return sign * (1 + m / scale) * 2.0 ** (e - self.bias)

    @cached_property
    def all_values(self) -> np.ndarray:
        """Every decoded pattern (256, or 65,536 at 16 bits), index = bit pattern (NaN/Inf included).

        The same arithmetic as :meth:`decode`, on all patterns at once (tests check the two agree)."""
        p = np.arange(1 << self.bits, dtype=np.int64)
        sign = np.where(p >> (self.bits - 1) & 1, -1.0, 1.0)
        body = p & ((1 << (self.bits - 1)) - 1)
        e, m = body >> self.man_bits, (body & ((1 << self.man_bits) - 1)).astype(np.float64)
        scale = 2.0**self.man_bits
        if self.convention == "fixed":
            return sign * m / scale
        top = (1 << self.exp_bits) - 1
        values = np.where(e == 0, (m / scale) * 2.0 ** (1 - self.bias),
                          (1 + m / scale) * np.exp2((e - self.bias).astype(np.float64)))
        if self.convention == "ieee":
            values = np.where(e == top, np.where(m == 0, np.inf, np.nan), values)
        if self.convention == "fn":
            values = np.where((e == top) & (m == scale - 1), np.nan, values)
        return sign * values

    @property
    def n_positive_patterns(self) -> int:
        """Patterns with the sign bit clear (the first half of ``all_values``)."""
        return 1 << (self.bits - 1)

    @cached_property
    def _positive_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Finite non-negative values ascending, with their (sign-less) codes."""
        codes = np.arange(self.n_positive_patterns)
        vals = self.all_values[: self.n_positive_patterns]
        keep = np.isfinite(vals)
        order = np.argsort(vals[keep], kind="stable")
        return vals[keep][order], codes[keep][order]

    @property
    def max_value(self) -> float:
        return float(self._positive_grid[0][-1])

    @property
    def min_positive(self) -> float:
        return float(self._positive_grid[0][1])

    @cached_property
    def min_normal(self) -> float | None:
        """Smallest normal value, read off the patterns: the least finite positive value whose
        exponent field is not zero. None for E0M7, which has no exponent."""
        if self.convention == "fixed":
            return None
        codes = np.arange(self.n_positive_patterns)
        vals = self.all_values[: self.n_positive_patterns]
        normal = (codes >> self.man_bits > 0) & np.isfinite(vals) & (vals > 0)
        return float(vals[normal].min())

    @property
    def has_subnormals(self) -> bool:
        return self.convention != "fixed" and self.man_bits > 0

    @property
    def distinct_values(self) -> int:
        """Distinct finite values, +0 and -0 counted once."""
        finite = self.all_values[np.isfinite(self.all_values)]
        return len(np.unique(np.abs(finite) * np.sign(finite)))

    @property
    def binades(self) -> float:
        return math.log2(self.max_value / self.min_positive)

    @property
    def saturates(self) -> bool:
        return self.convention != "ieee"

    @cached_property
    def rounding_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(grid, midpoints, tie_up) for round-to-nearest-even on |x|.

        ``grid`` holds the finite non-negative values ascending; for ``ieee`` formats one
        extra entry, +Inf, stands for the overflow target. ``midpoints[i]`` lies between
        grid[i] and grid[i+1]; ``tie_up[i]`` says a value exactly on it goes up (the upper
        neighbour's code is even). Any array library with searchsorted can quantise with it.
        """
        grid, codes = self._positive_grid
        if self.convention == "ieee":
            # The pattern after max is Inf; RNE rounds to it from max + ulp(max)/2 on.
            ulp_top = grid[-1] - grid[-2]
            mids = (grid[:-1] + grid[1:]) / 2
            mids = np.append(mids, grid[-1] + ulp_top / 2)
            tie_up = np.append(codes[1:] % 2 == 0, True)  # Inf's code (…00) is even
            return np.append(grid, np.inf), mids, tie_up
        return grid, (grid[:-1] + grid[1:]) / 2, codes[1:] % 2 == 0

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Round-to-nearest-even onto the format; overflow as the convention says."""
        x = np.asarray(x, dtype=np.float64)
        grid, mids, tie_up = self.rounding_table
        a = np.abs(x)
        if self.saturates:
            a = np.minimum(a, grid[-1])
        j = np.searchsorted(mids, a, side="left")
        on_tie = (j < len(mids)) & (mids[np.minimum(j, len(mids) - 1)] == a)
        j = j + (on_tie & tie_up[np.minimum(j, len(mids) - 1)])
        out = np.copysign(grid[np.minimum(j, len(grid) - 1)], x)
        out[np.isnan(x)] = np.nan
        return out

    def spacing(self, w: np.ndarray) -> np.ndarray:
        """Local spacing (ULP) of the format at |w|: distance to the next value up.

        Equal to the stiffness 2^(floor(log2|w|) - M) in the normal range; the constant
        subnormal step below it; 2^-7 everywhere for E0M7.
        """
        a = np.abs(np.asarray(w, dtype=np.float64))
        grid = self._positive_grid[0]
        j = np.clip(np.searchsorted(grid, a, side="right"), 1, len(grid) - 1)
        return grid[j] - grid[j - 1]


FORMATS: dict[str, FP8Format] = {
    f.name: f
    for f in (
        FP8Format("E0M7", 0, 7, None, "fixed"),
        FP8Format("E1M6", 1, 6, 0, "finite"),
        FP8Format("E2M5", 2, 5, 1, "finite"),
        FP8Format("E3M4", 3, 4, 3, "finite"),
        FP8Format("E4M3", 4, 3, 7, "fn"),
        FP8Format("E5M2", 5, 2, 15, "ieee"),
        FP8Format("E6M1", 6, 1, 31, "finite"),
        FP8Format("E7M0", 7, 0, 63, "finite"),
    )
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
BASELINES: tuple[str, ...] = ("BF16", "FP16", "FP32")
#: The 16-bit references, decoded from their 65,536 patterns like the 8-bit registry:
#: IEEE 754 binary16 and bfloat16 (both reserve the top exponent for Inf/NaN).
REFERENCE_FORMATS: dict[str, FP8Format] = {
    f.name: f for f in (FP8Format("FP16", 5, 10, 15, "ieee", bits=16), FP8Format("BF16", 8, 7, 127, "ieee", bits=16))
}


def get_format(name: str) -> FP8Format:
    """Look a format up by name, accepting the ``FP8_`` prefix (``FP8_E5M2`` = ``E5M2``)."""
    key = name.upper().removeprefix("FP8_")
    try:
        return FORMATS[key]
    except KeyError:
        raise KeyError(
            f"unknown FP8 format {name!r}: expected one of {', '.join(FORMAT_NAMES)} "
            "(an optional 'FP8_' prefix is accepted)"
        ) from None


def format_facts() -> list[dict]:
    """The facts table of every format, computed from its bit patterns."""
    rows = []
    for f in FORMATS.values():
        rows.append(
            {
                "format": f.name,
                "exp_bits": f.exp_bits,
                "man_bits": f.man_bits,
                "bias": f.bias,
                "convention": f.convention,
                "max": f.max_value,
                "min_normal": f.min_normal,
                "min_positive": f.min_positive,
                "binades": round(f.binades, 2),
                "distinct_values": f.distinct_values,
                "overflow": "saturate" if f.saturates else "inf",
                "subnormals": f.has_subnormals,
            }
        )
    return rows
