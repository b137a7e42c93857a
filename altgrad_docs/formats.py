"""The FP8 format registry: every fact and the quantiser come from the 256 bit patterns.

A format ExMy has 1 sign bit, E exponent bits and M = 7 - E mantissa bits. Its values are
decoded from each bit pattern (`decode`), and everything else -- the facts table on the site,
the rounding table the training bench quantises with -- is computed from those values, so the
two can never disagree. Conventions for the top exponent (see shared reference fp8-formats.md):

* ``ieee``: top exponent reserved; mantissa 0 is +/-Inf, anything else NaN (OCP E5M2).
* ``fn``: only S.1111.111 is NaN, no Inf (OCP E4M3).
* ``finite``: every pattern is a number.
* ``fixed``: E0M7, sign-magnitude fixed point with constant step 2^-7.
* ``fnuz``: no Inf and no negative zero; the pattern 1.0000.000 is the only NaN (the
  E4M3FNUZ / E5M2FNUZ variants of Graphcore and AMD; not in the AltGrad registry).

A run names its format in free text (``FP8_E5M2``, ``fp8_e4m3fn``, ``float8_e5m2``, ``none``);
:func:`classify_format` reads any such name as one :class:`FormatName`: a registry format, a
16/32-bit baseline, a known format outside the registry (its facts when it has them), or
unknown. Everything that names formats goes through it, so one format has one label.

Overflow policy of the simulated quantiser: ``ieee`` formats round to +/-Inf past the
rounding boundary above the max (as IEEE round-to-nearest-even does); every other format
saturates at +/-max, since it cannot encode Inf. NaN input stays NaN in every format: the
simulation keeps values in FP32 containers, so NaN can appear even where the format has none.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["FP8Format", "FORMATS", "FORMAT_NAMES", "BASELINES", "REFERENCE_FORMATS", "VARIANT_FORMATS",
           "FormatName", "classify_format", "get_format", "format_facts"]


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
        if self.convention == "fnuz" and sign < 0 and e == 0 and m == 0:
            return math.nan  # the "negative zero" pattern
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
        values = sign * values
        if self.convention == "fnuz":
            values = np.where((sign < 0) & (e == 0) & (m == 0), np.nan, values)
        return values

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


#: 8-bit formats outside the registry whose facts are known (decoded like the registry).
VARIANT_FORMATS: dict[str, FP8Format] = {
    f.name: f for f in (FP8Format("E4M3FNUZ", 4, 3, 8, "fnuz"), FP8Format("E5M2FNUZ", 5, 2, 16, "fnuz"))
}

#: Spellings of "no 8-bit format": the run trained at its baseline precision.
NO_FORMAT = frozenset({"", "NONE", "NULL", "OFF", "FALSE", "NO", "BASELINE", "DISABLED"})
#: Spellings of the 16/32-bit baselines (PyTorch, NumPy and JAX dtype names included).
BASELINE_SPELLINGS: dict[str, str] = {
    "BF16": "BF16", "BFLOAT16": "BF16", "FP16": "FP16", "FLOAT16": "FP16", "HALF": "FP16", "F16": "FP16",
    "FP32": "FP32", "FLOAT32": "FP32", "F32": "FP32", "SINGLE": "FP32", "TF32": "FP32",
}
#: Block-scaled formats by family name (elements of this many bits, shared scales).
_BLOCK_FORMATS = {"NVFP4": 4, "MXFP4": 4, "MXFP6": 6, "MXFP8": 8, "MXINT8": 8}
_PREFIX = re.compile(r"^(?:TORCH\.|JNP\.|NP\.|ML_DTYPES\.)?(?:(?:FLOAT|FP|F)(\d+)[_-]?)?")
_EXMY = re.compile(r"^E(\d+)M(\d+)(FNUZ|FNU|FN|B\d+FNUZ)?$")


@dataclass(frozen=True)
class FormatName:
    """What a run's format name means (:func:`classify_format`).

    ``kind``: ``registry`` (an 8-bit format of the AltGrad registry), ``baseline`` (BF16,
    FP16, FP32; ``none`` and friends also, with ``label`` ``""``: the run's own precision
    decides), ``variant`` (an 8-bit format outside the registry with known facts:
    E4M3FNUZ, E5M2FNUZ), ``other`` (recognised, but not an 8-bit element format: FP4/FP6,
    E8M0 scales, block-scaled and integer formats), ``unknown``. ``what`` says it in words."""

    label: str
    kind: str
    bits: int | None = None
    what: str = ""
    format: FP8Format | None = None

    @property
    def in_registry(self) -> bool:
        return self.kind == "registry"


def classify_format(name: object) -> FormatName:
    """One format name, any spelling: ``E4M3``, ``FP8_E5M2``, ``fp8_e4m3fn`` (PyTorch's name
    for OCP E4M3, = the registry's E4M3), ``float8_e5m2``, ``float8_e4m3fnuz``, ``bf16``,
    ``none``, ``FP4_E2M1``, ``E8M0``, ``NVFP4``..."""
    raw = "" if name is None else str(name).strip()
    text = raw.upper().replace("-", "_").replace(" ", "")
    if text in NO_FORMAT:
        return FormatName("", "baseline", None, "no 8-bit format: the run's baseline precision")
    if text in BASELINE_SPELLINGS or text.removeprefix("TORCH.") in BASELINE_SPELLINGS:
        label = BASELINE_SPELLINGS[text.removeprefix("TORCH.")]
        return FormatName(label, "baseline", 32 if label == "FP32" else 16, f"{label} baseline")
    if text in _BLOCK_FORMATS:
        bits = _BLOCK_FORMATS[text]
        return FormatName(text, "other", bits, f"a block-scaled {bits}-bit format (shared scales), not an "
                          "8-bit element format of the registry")
    if re.fullmatch(r"U?INT\d+", text):
        return FormatName(text, "other", int(re.sub(r"\D", "", text)), "an integer format, not a floating-point one")
    prefix = _PREFIX.match(text)
    stated = int(prefix.group(1)) if prefix and prefix.group(1) else None
    m = _EXMY.match((text[prefix.end():] if prefix else text).replace("_", ""))
    if m is None:
        return FormatName(raw.upper() or "unknown", "unknown", stated, "not a format this site knows")
    e, mant, suffix = int(m.group(1)), int(m.group(2)), (m.group(3) or "")
    if e == 8 and mant == 0:
        return FormatName("E8M0", "other", 8, "an exponent-only scale format (powers of two, the MX block "
                          "scale), not an element format")
    bits = 1 + e + mant
    if stated is not None and stated != bits:
        return FormatName(raw.upper(), "unknown", None, f"{stated} bits cannot hold E{e}M{mant} with a sign")
    wide = {(5, 10): "FP16", (8, 7): "BF16", (8, 23): "FP32"}.get((e, mant))
    if wide and not suffix:
        return FormatName(wide, "baseline", bits, f"{wide} baseline")
    if bits in (4, 6) and suffix in ("", "FN"):  # OCP MX element formats: FP4 E2M1, FP6 E2M3/E3M2
        return FormatName(f"FP{bits}_E{e}M{mant}", "other", bits, f"a {bits}-bit format, not an 8-bit one")
    if bits != 8:
        return FormatName(raw.upper(), "unknown", bits, f"E{e}M{mant} is no {bits}-bit format this site knows")
    base = f"E{e}M{mant}"
    if suffix == "FNUZ" and base + "FNUZ" in VARIANT_FORMATS:
        f = VARIANT_FORMATS[base + "FNUZ"]
        return FormatName(f.name, "variant", 8, f"{base} with the fnuz convention (bias {f.bias}, max "
                          f"{f.max_value:g}, no Inf, no -0), not the registry's {base}", f)
    if base in FORMATS and (not suffix or (suffix == "FN" and FORMATS[base].convention == "fn")):
        f = FORMATS[base]
        return FormatName(base, "registry", 8, f"the registry's {base} ({f.convention}, max {f.max_value:g})", f)
    return FormatName(base + suffix, "unknown", 8, f"{base} with a convention ({suffix or 'none'}) "
                      "the registry does not have")


def get_format(name: str) -> FP8Format:
    """Look a format up by any of its names (``FP8_E5M2``, ``fp8_e4m3fn``, ``float8_e5m2`` =
    ``E5M2``...; see :func:`classify_format`): registry formats and the known variants."""
    found = classify_format(name)
    if found.format is None:
        raise KeyError(
            f"unknown FP8 format {name!r}: expected one of {', '.join(FORMAT_NAMES)} "
            "(prefixes 'FP8_' and 'float8_' are accepted; E4M3FN is E4M3)"
        )
    return found.format


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
