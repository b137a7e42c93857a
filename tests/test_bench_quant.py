"""The bench's torch quantiser and spacing against the registry's numpy ones, and the STE."""

import math

import numpy as np
import pytest
import torch

from altgrad_docs.bench.quant import BF16Rounder, make_quantizer, straight_through
from altgrad_docs.formats import FORMATS, get_format

NAMES = list(FORMATS)


def _probe_values(name: str) -> np.ndarray:
    """Every finite pattern value, every midpoint, float32 neighbours of the midpoints,
    values past the max, +/-Inf and random values over the whole range (all float32)."""
    f = FORMATS[name]
    grid, mids, _ = f.rounding_table
    finite = f.all_values[np.isfinite(f.all_values)]
    m32 = mids[np.isfinite(mids)].astype(np.float32)
    near = np.concatenate([np.nextafter(m32, np.float32(np.inf)), np.nextafter(m32, np.float32(0))])
    big = np.array([f.max_value * 1.01, f.max_value * 4, 1e30, np.inf], dtype=np.float32)
    rng = np.random.default_rng(0)
    rand = (rng.standard_normal(2000) * np.exp2(rng.uniform(-70, 70, 2000))).astype(np.float32)
    pos = np.concatenate([finite.astype(np.float32), m32, near, big, np.abs(rand)])
    return np.concatenate([pos, -pos, rand]).astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_every_pattern_value_is_returned_unchanged(name):
    f = FORMATS[name]
    values = f.all_values[np.isfinite(f.all_values)]
    got = make_quantizer(name)(torch.tensor(values, dtype=torch.float32))
    assert np.array_equal(got.double().numpy(), values)
    assert np.array_equal(np.signbit(got.numpy()), np.signbit(values))  # -0 stays -0


@pytest.mark.parametrize("name", NAMES)
def test_torch_and_numpy_quantisers_agree(name):
    x = _probe_values(name)
    got = make_quantizer(name)(torch.from_numpy(x)).double().numpy()
    expect = FORMATS[name].quantize(x.astype(np.float64))
    assert np.array_equal(got, expect, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_ties_go_to_the_even_code(name):
    f = FORMATS[name]
    grid, mids, tie_up = f.rounding_table
    ok = np.isfinite(grid[1:])
    expect = np.where(tie_up[ok], grid[1:][ok], grid[:-1][ok])
    q = make_quantizer(name)
    assert np.array_equal(q(torch.tensor(mids[ok], dtype=torch.float32)).double().numpy(), expect)
    assert np.array_equal(q(torch.tensor(-mids[ok], dtype=torch.float32)).double().numpy(), -expect)


def test_tie_examples_by_hand():
    q = make_quantizer("E4M3")  # 1.0625 lies between 1.0 (code 56, even) and 1.125 (57)
    assert q(torch.tensor([1.0625, 1.1875, 2.0**-10])).tolist() == [1.0, 1.25, 0.0]
    q = make_quantizer("E7M0")  # powers of two; codes: 1 -> 63, 2 -> 64, 4 -> 65, 8 -> 66
    assert q(torch.tensor([1.5, 3.0, 6.0, 1.4999999])).tolist() == [2.0, 2.0, 8.0, 1.0]


@pytest.mark.parametrize("name", NAMES)
def test_overflow_saturates_or_becomes_inf_by_convention(name):
    f = FORMATS[name]
    out = make_quantizer(name)(torch.tensor([f.max_value * 2, -f.max_value * 2, math.inf], dtype=torch.float32))
    if f.saturates:
        assert out.tolist() == [f.max_value, -f.max_value, f.max_value]
    else:
        assert out.tolist() == [math.inf, -math.inf, math.inf]


def test_e5m2_overflow_boundary_is_max_plus_half_ulp():
    q = make_quantizer("E5M2")  # max 57344, ulp there 8192: 61440 is the tie, Inf's code is even
    assert q(torch.tensor([61439.0, 61440.0])).tolist() == [57344.0, math.inf]


@pytest.mark.parametrize("name", NAMES + ["BF16"])
def test_nan_passes_through(name):
    out = make_quantizer(name)(torch.tensor([math.nan, 0.25]))
    assert math.isnan(out[0]) and not math.isnan(out[1])


@pytest.mark.parametrize("name", NAMES)
def test_spacing_matches_the_registry(name):
    x = _probe_values(name)
    x = x[np.isfinite(x)]
    got = make_quantizer(name).spacing(torch.from_numpy(x)).double().numpy()
    assert np.array_equal(got, FORMATS[name].spacing(x.astype(np.float64)))


def test_bf16_baseline_rounds_to_nearest_even_and_has_bf16_spacing():
    r = BF16Rounder()
    one = 1.0
    x = torch.tensor([one + 2**-8, one + 3 * 2**-8, one + 2**-8 + 2**-20])
    assert r(x).tolist() == [1.0, 1 + 2**-6, 1 + 2**-7]
    assert r.spacing(torch.tensor([1.0, 0.02, 0.0])).tolist() == [2**-7, 2.0**-13, 2.0**-133]


def test_straight_through_gives_quantised_forward_and_identity_gradient():
    w = torch.tensor([0.3, -0.07, 0.001], requires_grad=True)
    q = make_quantizer("E4M3")(w.detach())
    out = straight_through(w, q)
    assert out.tolist() == q.tolist() and out.tolist() != w.tolist()
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert w.grad.tolist() == [1.0, 2.0, 3.0]


def test_quantiser_uses_the_registry_table():
    q = make_quantizer("fp8_e4m3")
    assert q.fmt is get_format("E4M3")
    assert q.grid.tolist() == FORMATS["E4M3"].rounding_table[0].tolist()
