"""The registry against the reference table, and the quantiser on every bit pattern."""

import math

import numpy as np
import pytest

from altgrad_docs.formats import FORMATS, VARIANT_FORMATS, classify_format, format_facts, get_format

# (format, max, min_normal, min_positive, binades, distinct) from shared/reference/fp8-formats.md
REFERENCE = [
    ("E0M7", 0.9921875, None, 2**-7, 6.99, 255),
    ("E1M6", 3.96875, 2.0**1, 2**-5, 6.99, 255),
    ("E2M5", 7.875, 2.0**0, 2**-5, 7.98, 255),
    ("E3M4", 31.0, 2.0**-2, 2**-6, 10.95, 255),
    ("E4M3", 448.0, 2.0**-6, 2**-9, 17.81, 253),
    ("E5M2", 57344.0, 2.0**-14, 2**-16, 31.81, 247),
    ("E6M1", 1.5 * 2**32, 2.0**-30, 2**-31, 63.58, 255),
    ("E7M0", 2.0**64, 2.0**-62, 2**-62, 126.00, 255),
]


@pytest.mark.parametrize("name,mx,mn_normal,mn_pos,binades,distinct", REFERENCE)
def test_facts_match_reference(name, mx, mn_normal, mn_pos, binades, distinct):
    row = next(r for r in format_facts() if r["format"] == name)
    assert row["max"] == mx
    assert row["min_normal"] == mn_normal
    assert row["min_positive"] == mn_pos
    assert row["binades"] == binades
    assert row["distinct_values"] == distinct


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_pattern_is_a_fixed_point_of_the_quantiser(name):
    f = FORMATS[name]
    values = f.all_values[np.isfinite(f.all_values)]
    assert np.array_equal(f.quantize(values), values)


@pytest.mark.parametrize("name", list(FORMATS))
def test_ties_round_to_even_code(name):
    f = FORMATS[name]
    grid, mids, tie_up = f.rounding_table
    finite = np.isfinite(grid[1:])
    got = f.quantize(mids[finite])
    expect = np.where(tie_up[finite], grid[1:][finite], grid[:-1][finite])
    assert np.array_equal(got, expect)
    assert np.array_equal(f.quantize(-mids[finite]), -expect)


def test_rne_examples_e4m3():
    f = get_format("FP8_E4M3")
    x = np.array([1.0625, 1.1875, 2**-10, 2**-10 * 1.0001, 460.0, 1e9, -1e9])
    assert f.quantize(x).tolist() == [1.0, 1.25, 0.0, 2**-9, 448.0, 448.0, -448.0]


def test_overflow_ieee_becomes_inf_only_past_the_boundary():
    f = get_format("E5M2")
    got = f.quantize(np.array([61439.0, 61440.0, -1e6]))
    assert got[0] == 57344.0 and got[1] == math.inf and got[2] == -math.inf


def test_nan_stays_nan_even_in_formats_without_nan():
    for f in FORMATS.values():
        assert np.isnan(f.quantize(np.array([np.nan]))[0])


def test_spacing_is_stiffness_in_normal_range_and_constant_below():
    f = get_format("E4M3")
    assert f.spacing(np.array([1.0, 1.5, 2.0]))[0] == 2.0**-3
    assert f.spacing(np.array([2.0**-9]))[0] == 2.0**-9  # subnormal step, 8x S there
    assert get_format("E0M7").spacing(np.array([0.5]))[0] == 2.0**-7
    assert get_format("E7M0").spacing(np.array([4.0]))[0] == 4.0


def test_unknown_format_error_names_choices():
    with pytest.raises(KeyError, match="E0M7, E1M6"):
        get_format("E9M9")


# Names by meaning (issue #20): aliases map to their format, variants keep their own facts,
# other widths are recognised, the rest is named unknown.
NAMES = [
    ("E4M3", "E4M3", "registry"), ("FP8_E5M2", "E5M2", "registry"), ("fp8_e4m3fn", "E4M3", "registry"),
    ("float8_e4m3fn", "E4M3", "registry"), ("float8_e5m2", "E5M2", "registry"),
    ("torch.float8_e5m2", "E5M2", "registry"), ("fp8-e3m4", "E3M4", "registry"),
    ("float8_e4m3fnuz", "E4M3FNUZ", "variant"), ("E5M2FNUZ", "E5M2FNUZ", "variant"),
    ("f8E4M3FN", "E4M3", "registry"), ("e4m3_fn", "E4M3", "registry"), ("float8_e5m2_fnuz", "E5M2FNUZ", "variant"),
    ("none", "", "baseline"), ("BF16", "BF16", "baseline"), ("bfloat16", "BF16", "baseline"),
    ("fp32", "FP32", "baseline"), ("torch.float16", "FP16", "baseline"), ("E5M10", "FP16", "baseline"),
    ("E8M0", "E8M0", "other"), ("float8_e8m0fnu", "E8M0", "other"), ("FP4_E2M1", "FP4_E2M1", "other"),
    ("float4_e2m1fn", "FP4_E2M1", "other"), ("E3M2", "FP6_E3M2", "other"), ("NVFP4", "NVFP4", "other"),
    ("MXFP8", "MXFP8", "other"), ("int8", "INT8", "other"),
    ("E5M2FN", "E5M2FN", "unknown"), ("fp8_e2m1", "FP8_E2M1", "unknown"), ("E9M9", "E9M9", "unknown"),
    ("float8_e4m3b11fnuz", "E4M3B11FNUZ", "unknown"), ("banana", "BANANA", "unknown"),
]


@pytest.mark.parametrize("name,label,kind", NAMES)
def test_format_names_by_meaning(name, label, kind):
    found = classify_format(name)
    assert (found.label, found.kind) == (label, kind)
    assert (found.format is not None) == (kind in ("registry", "variant"))


def test_pytorch_e4m3fn_is_the_registry_e4m3():
    assert get_format("fp8_e4m3fn") is FORMATS["E4M3"] and get_format("float8_e5m2") is FORMATS["E5M2"]


@pytest.mark.parametrize("name,mx,mn_normal,mn_pos", [
    ("E4M3FNUZ", 240.0, 2.0**-7, 2.0**-10), ("E5M2FNUZ", 57344.0, 2.0**-15, 2.0**-17)])
def test_fnuz_variants_have_their_own_range(name, mx, mn_normal, mn_pos):
    f = get_format(f"float8_{name.lower()}")
    assert f is VARIANT_FORMATS[name] and f.convention == "fnuz"
    assert (f.max_value, f.min_normal, f.min_positive, f.distinct_values) == (mx, mn_normal, mn_pos, 255)
    assert math.isnan(f.decode(0x80)) and f.decode(0x00) == 0.0  # no -0: its pattern is the NaN
    assert not np.isinf(f.all_values).any() and int(np.isnan(f.all_values).sum()) == 1
    assert all(f.decode(p) == f.all_values[p] for p in range(256) if p != 0x80)
    values = f.all_values[np.isfinite(f.all_values)]
    assert np.array_equal(f.quantize(values), values)
    assert f.quantize(np.array([1e9]))[0] == mx  # saturates


def test_formats_outside_the_registry_are_no_registry_format():
    for name in ("E8M0", "NVFP4", "FP4_E2M1", "banana"):
        with pytest.raises(KeyError):
            get_format(name)
