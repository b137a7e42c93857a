"""The formats page computes what it says: 16-bit references by the same enumeration as the
registry (checked against numpy's own float16 / bfloat16 bit patterns), min normal read off
the patterns, and each sentence a template branch chosen by the registry."""

import numpy as np
from altgrad_docs.formats import FORMATS, REFERENCE_FORMATS, FP8Format
from altgrad_docs.report import context
from altgrad_docs.report.formats_page import registry_facts, reserved_top_max, stiffness_example
from altgrad_docs.report.generator import REPORT_TEMPLATES, ReportGenerator


def test_fp16_patterns_match_numpys_float16():
    with np.errstate(invalid="ignore"):  # NaN payloads
        numpy_fp16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
    assert np.array_equal(REFERENCE_FORMATS["FP16"].all_values, numpy_fp16, equal_nan=True)
    f = REFERENCE_FORMATS["FP16"]
    assert (f.max_value, f.min_normal, f.min_positive) == (65504.0, 2.0**-14, 2.0**-24)  # fp8-formats.md


def test_bf16_patterns_match_the_top_half_of_float32():
    with np.errstate(invalid="ignore"):  # NaN payloads
        numpy_bf16 = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)
    assert np.array_equal(REFERENCE_FORMATS["BF16"].all_values, numpy_bf16, equal_nan=True)
    f = REFERENCE_FORMATS["BF16"]
    assert (f.max_value, f.min_normal, f.min_positive) == ((2 - 2.0**-7) * 2.0**127, 2.0**-126, 2.0**-133)


def test_vectorised_enumeration_is_the_scalar_decode():
    for f in FORMATS.values():
        assert np.array_equal(f.all_values, [f.decode(p) for p in range(256)], equal_nan=True), f.name


def test_min_normal_from_the_patterns_agrees_with_the_formula():
    for f in [*FORMATS.values(), *REFERENCE_FORMATS.values()]:
        assert f.min_normal == (None if f.convention == "fixed" else 2.0 ** (1 - f.bias)), f.name


def test_registry_facts_of_the_project():
    reg = registry_facts()
    assert reg["fn"] == [{"name": "E4M3", "max": 448.0, "reserved_max": 240.0}]
    assert reg["overflow_inf"] == ["E5M2"] and "E5M2" not in reg["saturate"] and len(reg["saturate"]) == 7
    assert reg["fixed"] == [{"name": "E0M7", "step": 2.0**-7, "threshold": 2.0**-8}]
    assert reg["powers_of_two"] == ["E7M0"]
    assert reg["stiffness"] == {"format": "E4M3", "w": 2.0**-9, "formula": 2.0**-12, "spacing": 2.0**-9, "ratio": 8.0}
    assert reserved_top_max(FORMATS["E5M2"]) == 57344.0  # already ieee: unchanged
    assert stiffness_example(FORMATS["E5M2"])["ratio"] == 4.0  # 2^-16 spacing vs 2^(-16-2)


def _render(formats: dict[str, FP8Format], out) -> str:
    ctx = {**context.formats_page(), "format_registry": lambda: registry_facts(formats)}
    return ReportGenerator(out, generated_at="t").render_template(REPORT_TEMPLATES["formats"], ctx)


def test_page_of_the_project_registry(tmp_path):
    text = _render(FORMATS, tmp_path)
    assert "E4M3 follows this: max 448, not 240" in text
    assert "E5M2 (max 57344) follows this" in text
    assert "E5M2 rounds to Inf past the max" in text and "In this registry only E5M2 overflows to Inf" in text
    assert "**E0M7 is fixed point**" in text and "(|update| &lt; 2^-8)" not in text and "(|update| < 2^-8)" in text
    assert "**E7M0 is powers of two only**" in text
    assert "for E4M3 at w = 2^-9 the spacing is 2^-9, 8x the formula's 2^-12" in text
    assert "256 bit patterns" in text and "65,536 patterns" in text


def test_page_branches_on_a_registry_without_ieee_fn_fixed_or_power_of_two_formats(tmp_path):
    text = _render({"E3M4": FORMATS["E3M4"]}, tmp_path)
    assert text.count("No format of this registry follows it.") == 2  # ieee and fn
    assert "no format of this registry overflows to Inf; E3M4 saturates at the max" in text
    assert "No format of this registry overflows to Inf; every format saturates" in text
    assert "**fixed point**" not in text and "powers of two only" not in text
    assert "for E3M4 at w = 2^-6 the spacing is 2^-6, 16x the formula's 2^-10" in text


def test_page_branches_plural(tmp_path):
    two_ieee = {"E5M2": FORMATS["E5M2"], "X5M2": FP8Format("X5M2", 5, 2, 14, "ieee")}
    text = _render(two_ieee, tmp_path)
    assert "E5M2 (max 57344), X5M2 (max 114688) follow this" in text
    assert "E5M2 and X5M2 round to Inf past the max" in text and "only E5M2 and X5M2 overflow to Inf" in text
