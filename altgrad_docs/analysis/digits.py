"""Digits that n supports: one rounding rule for every estimate the pages state.

* An estimate with an interval is rounded to the decimal place of the **second significant
  digit of the interval's half-width** (half-width 0.215 -> 2 decimals: "-0.40 [-0.62, -0.19]");
  the interval's ends get the same decimals. With a min-max range instead of an interval, the
  range's half-width sets the decimals the same way.
* Without any width (one run, or every seed gave the same value): 3 significant digits.
* An estimate the rule would round to 0 keeps its first significant digit (-0.05 [-1.2, 1.1]).
* An exact zero prints as 0, never "-5.55e-17" (values within 1e-12 of 0 relative to the
  width are zero: floating-point noise of a subtraction).
* p-values: 2 significant digits; below 0.001 "< 0.001".
* A real minus sign (U+2212).
"""

from __future__ import annotations

import math

MINUS = "\u2212"


def _ok(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def decimals_for(half_width: float) -> int | None:
    """Decimals that keep two significant digits of ``half_width`` (None: no usable width)."""
    if not _ok(half_width) or half_width <= 0:
        return None
    return max(0, 1 - math.floor(math.log10(half_width)))


def _sig3(x: float) -> str:
    if x == 0:
        return "0"
    text = f"{x:.3g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def number(x: float | None, half_width: float | None = None) -> str:
    """``x`` rounded by the rule (``half_width`` of its interval or range, else 3 digits)."""
    if not _ok(x):
        return "n/a"
    scale = abs(half_width) if _ok(half_width) else 0.0
    if x == 0 or abs(x) < (1e-9 * scale if scale else 1e-12):
        return "0"
    places = decimals_for(scale)
    text = _sig3(x) if places is None else f"{x:.{places}f}"
    if places is not None and float(text) == 0:  # rounds away: keep its first significant digit
        text = f"{x:.1g}" if "e" not in f"{x:.1g}" else _sig3(x)
    return text.replace("-", MINUS)


def estimate(mean: float, low: float, high: float) -> str:
    """'-0.40 [-0.62, -0.19]': a mean and its interval, all at the interval's precision."""
    if not _ok(mean):
        return "n/a"
    if not (_ok(low) and _ok(high)) or high <= low:
        return number(mean)
    hw = (high - low) / 2
    return f"{number(mean, hw)} [{number(low, hw)}, {number(high, hw)}]"


def spread(median: float, low: float, high: float) -> str:
    """'3.21 [3.05, 3.40]': a median and its min-max range at the range's precision."""
    return estimate(median, low, high)


def p_value(p: float | None) -> str:
    """'0.031', '0.91', '< 0.001'; 'n/a' when untested."""
    if not _ok(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    if p >= 0.995:
        return "1"
    text = f"{p:.2g}"
    return text if "e" not in text else f"{p:.3f}"


def p_phrase(p: float | None) -> str:
    """'= 0.031' or '< 0.001', to follow "p" in a sentence; 'n/a' when untested."""
    text = p_value(p)
    return text if text.startswith("<") or text == "n/a" else f"= {text}"

