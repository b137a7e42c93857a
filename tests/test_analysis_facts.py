"""The formats-page facts: computed from the registry, checked against the reference and scipy."""

import pytest
from scipy import stats as ss

from altgrad_docs.analysis import facts


def test_facts_table_from_the_registry():
    rows = {r["format"]: r for r in facts.facts_table_rows()}
    assert list(rows) == ["E0M7", "E1M6", "E2M5", "E3M4", "E4M3", "E5M2", "E6M1", "E7M0"]
    assert (rows["E4M3"]["max"], rows["E4M3"]["top exponent"], rows["E4M3"]["min positive"]) == ("448", "fn", "2^-9")
    assert (rows["E5M2"]["max"], rows["E5M2"]["overflow"]) == ("57344", "inf")
    assert rows["E6M1"]["max"] == "1.5 * 2^32" and rows["E7M0"]["max"] == "2^64"
    assert rows["E0M7"]["max"] == "0.9921875" and rows["E0M7"]["bias"] == "-"
    assert rows["E4M3"]["updates lost below"] == "3.12-6.25% of |w|"  # fp8-formats.md: 3.1-6.25%
    assert rows["E7M0"]["updates lost below"] == "25-50% of |w|"
    assert rows["E0M7"]["updates lost below"] == "|u| < 2^-8 (absolute)"  # half of E0M7's step 2^-7
    # below the smallest normal the threshold is absolute: half the subnormal step (the min positive)
    assert [rows[f]["below min normal"] for f in ("E0M7", "E1M6", "E4M3", "E7M0")] == [
        "-", "|u| < 2^-6", "|u| < 2^-10", "-"]


def test_stagnation_band_and_zero_fractions():
    assert facts.stagnation_band(2) == (2.0**-4, 2.0**-3)  # E5M2: 6.25-12.5%
    fr = facts.init_zero_fractions(0.02)
    assert fr["E1M6"] == pytest.approx(2 * ss.norm.cdf(2.0**-6 / 0.02) - 1)
    # fp8-formats.md: about 56% for E1M6 and E2M5, 30% for E3M4, 4% for E4M3
    assert [round(fr[f], 2) for f in ("E1M6", "E2M5", "E3M4", "E4M3")] == [0.57, 0.57, 0.30, 0.04]


def test_power_of_two_spelling():
    assert [facts.power_of_two(x) for x in (2.0**-62, 1.5 * 2**32, 3.0, None, 0.0)] == [
        "2^-62", "1.5 * 2^32", "3", "-", "-"]
