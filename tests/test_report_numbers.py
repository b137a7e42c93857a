"""Numbers in page text: three significant digits, a real minus sign (page text only), no
"-0.00", k/n where n < 10, and a zero-width interval read as "no spread"."""

import math
from pathlib import Path

import pytest

from altgrad_docs.report.generator import make_environment
from altgrad_docs.report.markdown import MINUS, fmt_fixed, fmt_fraction, fmt_sig, interval_kind
from altgrad_docs.site.render import make_environment as site_environment

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@pytest.mark.parametrize("value, text", [
    (0.04412, "0.0441"),          # three significant digits
    (0.05, "0.0500"),             # trailing zeros kept: still three digits
    (-0.001234, "\u22120.00123"),  # the real minus sign, U+2212
    (123.4, "123"), (2.5, "2.50"),
    (12345.6, "12346"),           # no exponent for large values: the integer part in full
    (57344.0, "57344"), (-3.0, "\u22123"),  # integers in full
    (-0.0, "0"), (-1e-300 * 1e-300, "0"),  # never "-0": (the product underflows to -0.0)
    (-3.5e-7, "\u22123.50e\u22127"),
    (math.nan, "NaN"), (math.inf, "inf"), (-math.inf, "\u2212inf"),
    (None, "—"), ("text", "—"),
])
def test_fmt_sig(value, text):
    assert fmt_sig(value) == text


def test_downloads_keep_the_ascii_minus():
    assert fmt_sig(-0.001234, minus="-") == "-0.00123" and fmt_sig(-3.5e-7, minus="-") == "-3.50e-7"
    assert MINUS == "\u2212"


@pytest.mark.parametrize("p, n, text", [
    (5 / 9, 9, "5/9"),       # P(improve) with 9 pairs: the fraction it is
    (0.0, 3, "0/3"), (1.0, 2, "2/2"),
    (0.5, 12, "0.500"),      # n >= 10: a number
    (4.5 / 9, 9, "0.500"),   # a tie counts a half: not a whole k, so a number
    (math.nan, 3, "NaN"), (0.5, None, "0.500"),
])
def test_fmt_fraction(p, n, text):
    assert fmt_fraction(p, n) == text


@pytest.mark.parametrize("low, high, kind", [
    (-0.5, -0.5, "zero"), (-0.3, 0.1, "range"), (math.nan, math.nan, "none"), (None, 0.1, "none"),
    (-math.inf, 0.0, "none"),
])
def test_interval_kind(low, high, kind):
    assert interval_kind(low, high) == kind


SNIPPET = ('{% import "reports/_numbers.md.j2" as numbers %}'
           '{{ numbers.interval(lo, hi, n) }} | {{ p | frac(n) }} | {{ x | sig }}')


@pytest.mark.parametrize("lo, hi, n, text", [
    (-0.5, -0.5, 2, "no spread among 2 pairs (each gave \u22120.500)"),
    (math.nan, math.nan, 1, "no interval (1 pair)"),
    (-0.1234, 0.05, 3, "[\u22120.123, 0.0500]"),
])
@pytest.mark.parametrize("env", ["report", "site"])
def test_interval_macro_in_both_environments(env, lo, hi, n, text):
    e = make_environment(TEMPLATES) if env == "report" else site_environment(TEMPLATES)
    out = e.from_string(SNIPPET).render(lo=lo, hi=hi, n=n, p=1 / 3 if n == 3 else 0.5, x=-0.0)
    assert out.split(" | ")[0] == text
    assert out.split(" | ")[2] == "0"
    assert out.split(" | ")[1] == ("1/3" if n == 3 else "1/2" if n == 2 else "0.500")


@pytest.mark.parametrize("value, text", [
    (-0.1, "\u22120.10"), (0.15, "0.15"), (-1.1e-17, "0.00"), (-0.004, "0.00"), (0.0, "0.00"),
    (math.nan, "NaN"), (None, "—"),
])
def test_fmt_fixed(value, text):
    assert fmt_fixed(value) == text


def test_fmt_measured_keeps_significant_zeros_and_a_real_minus():
    from altgrad_docs.report.markdown import fmt_measured

    assert [fmt_measured(v) for v in (3.0, -3.0, 2.5, -0.05, 0.0, 1234.0, float("nan"), None, float("inf"))] == [
        "3.00", "−3.00", "2.50", "−0.0500", "0", "1234", "—", "—", "inf"]
