"""The format facts table for the formats page, computed from the registry's bit patterns."""

from __future__ import annotations

import math
from functools import lru_cache

import pandas as pd

from altgrad_docs.analysis.stats import scipy_stats
from altgrad_docs.formats import FORMATS, REFERENCE_FORMATS, format_facts



@lru_cache(maxsize=1)
def reference_rows() -> tuple[dict, ...]:
    """The 16-bit reference formats (not part of the 8-bit registry), each number decoded
    from the 65,536 bit patterns by the same code as the registry (about 0.5 s, so on first
    use rather than at import; ``REFERENCES`` is the same tuple)."""
    return tuple(
        {"format": f.name, "exp_bits": f.exp_bits, "man_bits": f.man_bits, "bias": f.bias, "max": f.max_value,
         "min_normal": f.min_normal, "min_positive": f.min_positive}
        for f in REFERENCE_FORMATS.values()
    )


def __getattr__(name: str):
    if name == "REFERENCES":  # computed on first use (PEP 562)
        return reference_rows()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def power_of_two(x: float | None) -> str:
    """'2^-9' for exact powers of two, else the number ('-' for None)."""
    if x is None or not math.isfinite(x) or x <= 0:
        return "-"
    e = math.log2(x)
    if e == int(e):
        return f"2^{int(e)}"
    m, ex = math.frexp(x)
    if (m * 2) * 2**7 == int(m * 2 * 2**7) and abs(ex) > 10:
        return f"{m * 2:.10g} * 2^{ex - 1}"
    return f"{x:g}"


def stagnation_band(man_bits: int) -> tuple[float, float]:
    """Relative update size below which round-to-nearest loses it: 2^-(M+2) .. 2^-(M+1) of |w|
    (the lower end at the top of a binade, the upper at its bottom)."""
    return 2.0 ** -(man_bits + 2), 2.0 ** -(man_bits + 1)


def facts_frame() -> pd.DataFrame:
    """One row per 8-bit format: bits, bias, convention, range, stagnation band."""
    rows = []
    for r in format_facts():
        lo, hi = stagnation_band(r["man_bits"])
        rows.append({**r, "stall_low": lo, "stall_high": hi})
    return pd.DataFrame(rows)


def facts_table_rows() -> list[dict[str, str]]:
    """The facts as display strings (powers of two where exact)."""
    out = []
    for _, r in facts_frame().iterrows():
        fixed = r["convention"] == "fixed"
        lo, hi = r["stall_low"], r["stall_high"]
        out.append({
            "format": r["format"], "E": str(r["exp_bits"]), "M": str(r["man_bits"]),
            "bias": "-" if fixed else str(int(r["bias"])),
            "top exponent": f"fixed point m/{2 ** r['man_bits']}" if fixed else r["convention"],
            "max": power_of_two(r["max"]) if r["max"] > 1e6 else f"{r['max']:.10g}",
            "min normal": power_of_two(r["min_normal"]) if not fixed else "-",
            "min positive": power_of_two(r["min_positive"]),
            "binades": f"{r['binades']:.2f}", "distinct values": str(r["distinct_values"]),
            "overflow": r["overflow"],
            "updates lost below": (f"|u| < {power_of_two(r['min_positive'] / 2)} (absolute)" if fixed
                                   else f"{100 * lo:.3g}-{100 * hi:.3g}% of |w|"),
            "below min normal": (f"|u| < {power_of_two(r['min_positive'] / 2)}" if r["subnormals"] else "-"),
        })
    return out


def zero_fraction(min_positive: float, sd: float = 0.02) -> float:
    """Fraction of N(0, sd^2) values that round to zero: |w| below half the smallest
    positive value (round-to-nearest-even sends the midpoint itself to zero as well)."""
    return float(2 * scipy_stats().norm.cdf(min_positive / 2 / sd) - 1)


def init_zero_fractions(sd: float = 0.02) -> dict[str, float]:
    """Per format, the share of unscaled N(0, sd^2) initial weights that quantise to zero."""
    return {name: zero_fraction(f.min_positive, sd) for name, f in FORMATS.items()}
