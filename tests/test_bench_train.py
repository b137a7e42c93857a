"""Stiffness, ManifoldAdamW, the stall/overflow/underflow measurements, collapse, the report."""

import math
from datetime import datetime
from pathlib import Path

import pytest
import torch

from altgrad_docs.bench.failure_report import render, write_failure_report
from altgrad_docs.bench.measure import FlatLayout, StallCounter, range_rates
from altgrad_docs.bench.model import SortTask
from altgrad_docs.bench.optim import ManifoldAdamW, stiffness
from altgrad_docs.bench.quant import make_quantizer
from altgrad_docs.bench.train import RunConfig, train


@pytest.mark.parametrize(
    "fmt,m,w,expect",
    [
        ("E4M3", 3, 0.3, 2.0**-5),  # normal: 2^(floor(log2 0.3) - 3) = 2^(-2-3)
        ("E4M3", 3, -0.3, 2.0**-5),
        ("E4M3", 2, 0.3, 2.0**-4),  # M is the config's, not the format's
        ("E4M3", 3, 2.0**-6, 2.0**-9),  # smallest normal
        ("E4M3", 3, 2.0**-9, 2.0**-9),  # subnormal: the real step, 8x the formula's 2^-12
        ("E4M3", 3, 3 * 2.0**-9, 2.0**-9),
        ("E4M3", 3, 0.0, 2.0**-9),  # zero: the smallest positive value
        ("E1M6", 6, 0.02, 2.0**-5),  # E1M6's min normal is 2: every small weight is subnormal
        ("E0M7", 7, 0.5, 2.0**-7),  # fixed point: constant step
        ("E0M7", 7, 0.0, 2.0**-7),
        ("E7M0", 0, 0.3, 2.0**-2),
        ("E7M0", 0, 0.0, 2.0**-62),
        ("BF16", 7, 1.0, 2.0**-7),
    ],
)
def test_stiffness_on_known_weights(fmt, m, w, expect):
    assert stiffness(torch.tensor([w]), make_quantizer(fmt), m).item() == expect


def test_manifold_adamw_scales_the_gradient_before_the_moments():
    q = make_quantizer("E4M3")
    w = torch.tensor([0.3, 2.0**-9, 0.0, -4.0])
    p = w.clone().requires_grad_(True)
    p.grad = torch.tensor([0.5, 0.5, -0.5, 1.0])
    opt = ManifoldAdamW([p], q, lr=0.1, betas=(0.9, 0.99), manifold_aware=True, mantissa_bits=3)
    opt.step()
    s = torch.tensor([2.0**-5, 2.0**-9, 2.0**-9, 2.0**-1])
    assert torch.equal(opt.exp_avg[0], 0.1 * (p.grad * s))
    assert torch.equal(opt.exp_avg_sq[0], 0.01 * (p.grad * s) ** 2)


def test_adamw_and_manifold_differ_only_by_the_scaling():
    q = make_quantizer("E5M2")
    a, b = (torch.tensor([0.3, -0.02]).requires_grad_(True) for _ in range(2))
    for p in (a, b):
        p.grad = torch.tensor([0.5, -0.25])
    plain = ManifoldAdamW([a], q, lr=0.1, manifold_aware=False)
    plain.step()
    manifold = ManifoldAdamW([b], q, lr=0.1, manifold_aware=True, mantissa_bits=2)
    manifold.step()
    assert torch.equal(plain.exp_avg[0], 0.1 * torch.tensor([0.5, -0.25]))
    assert not torch.equal(plain.exp_avg[0], manifold.exp_avg[0])


def test_stall_counter_known_answer():
    layout = FlatLayout(("a", "b"), ((2,), (1, 2)))
    counter = StallCounter(layout)
    old_w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    new_w = torch.tensor([1.0, 2.1, 3.5, 4.2])  # 3 elements updated
    old_q = torch.tensor([1.0, 2.0, 3.0, 4.0])
    new_q = torch.tensor([1.0, 2.0, 4.0, 4.0])  # 1 of them flipped
    counter.add(old_w, new_w, old_q, new_q)
    row = counter.rates()
    assert row["quantization/bit_stall_rate"] == pytest.approx(2 / 3)
    assert row["stall/a"] == 1.0 and row["flips/a"] == 0.0
    assert row["stall/b"] == 0.5 and row["flips/b"] == 1.0
    assert math.isnan(counter.rates()["quantization/bit_stall_rate"])  # reset: no updates


def test_stall_with_the_e7m0_quantiser():
    q = make_quantizer("E7M0")
    old = torch.tensor([1.0, 1.0, 1.0])
    new = torch.tensor([1.4, 1.6, 1.0])  # 1.4 stays 1, 1.6 becomes 2, the third is not updated
    counter = StallCounter(FlatLayout(("w",), ((3,),)))
    counter.add(old, new, q(old), q(new))
    assert counter.rates()["stall/w"] == 0.5


def test_overflow_and_underflow_rates():
    q = make_quantizer("E4M3")
    w = torch.tensor([500.0, -449.0, 0.0, 2.0**-11, 0.5])
    rates = range_rates(w, q(w), q.max_value)
    assert rates == {"quantization/overflow_rate": 0.4, "quantization/underflow_rate": 0.2}


def test_sort_task_scores_only_the_sorted_half():
    import numpy as np

    x, y = SortTask().batch(np.random.default_rng(0), 4)
    assert x.shape == y.shape == (4, 16)
    assert (y[:, :8] == -1).all()
    assert torch.equal(y[:, 8:], torch.sort(x[:, :8], dim=1).values)


def test_same_seed_same_history_and_paired_init():
    cfg = RunConfig(fp8_format="E3M4", max_steps=6, log_interval=2, eval_interval=2, diagnostic_interval=2)
    runs = []
    for c in (cfg, cfg, RunConfig(**{**cfg.__dict__, "fp8_format": "E5M2"})):
        rows = []
        train(c, lambda row, step: rows.append((step, row)))
        runs.append(rows)
    assert runs[0] == runs[1]
    assert [s for s, _ in runs[0]] == [0, 2, 4, 5]
    assert runs[0] != runs[2]


def test_a_nan_loss_stops_the_run_and_is_reported(tmp_path):
    # An infinite learning rate turns the master weights into +/-Inf at the first update;
    # E5M2 keeps Inf (a saturating format would clip it to its max for one more step), so
    # the next forward pass gives a NaN loss: the trainer must stop there and describe it.
    cfg = RunConfig(fp8_format="E5M2", learning_rate=math.inf, max_steps=50, warmup_steps=1)
    rows = []
    result = train(cfg, lambda row, step: rows.append((step, row)))
    assert result.collapsed and result.collapse_step == 1 and result.steps_done == 1
    assert result.collapse_reason == "NaN/Inf loss"
    assert rows[-1][0] == 1 and math.isnan(rows[-1][1]["loss"])
    config = cfg.wandb_config(SortTask())
    path = write_failure_report(tmp_path, cfg, result, config, datetime(2026, 1, 2, 3, 4, 5))
    assert path == tmp_path / cfg.run_id / "failure_reports" / "E5M2_20260102_030405_failure_report.md"
    text = path.read_text()
    assert text.startswith("# Failure Report: E5M2 Experiment\n")
    assert "| Collapse Step | 1 |" in text and "| Total Steps | 1 / 50 |" in text
    assert "| Final Loss | nan |" in text and "fp8_format: E5M2" in text
    assert "| 0 | 2.5" in text and "| 1 | nan |" in text  # loss trend: step 0, then the NaN


#: The original trainer's report, verbatim (shared/reference/sample_failure_report.md).
SAMPLE = Path(__file__).parent / "fixtures" / "failure_reports" / "E7M0_20260203_142251_failure_report.md"


def test_template_has_the_shape_of_the_original_report():
    ctx = dict(
        format="E7M0", collapse_step=412, collapse_reason="NaN/Inf loss", final_loss="nan",
        best_loss="6.913204", steps_done=412, max_steps=2000, duration="381.7s",
        grad_sparsity="63.41%", sparsity_verdict="This indicates severe gradient vanishing.",
        zero_update_layers=["transformer.h.3.attn.c_attn.weight", "transformer.h.4.mlp.c_fc.weight",
                            "lm_head.weight"],
        bit_stall_rate="97.80%", overflow_rate="0.00%", underflow_rate="41.25%",
        diagnostics=[
            dict(step=s, stiffness=a, grid_error=b, ulp=c, below=d)
            for s, a, b, c, d in [
                (200, "0.015625", "0.171201", "0.02", "98.10%"),
                (250, "0.015625", "0.169930", "0.02", "98.40%"),
                (300, "0.007813", "0.172518", "0.01", "98.90%"),
                (350, "0.007813", "0.175002", "0.01", "99.20%"),
                (400, "0.003906", "0.180113", "0.00", "99.60%"),
            ]
        ],
        config=[("fp8_format", "E7M0"), ("max_steps", 2000), ("batch_size", 64), ("learning_rate", 0.0003),
                ("grad_clip", 1.0), ("enable_partition_clipping", False), ("enable_emergency_shift", False),
                ("seed", 3)],
        loss_trend=[(0, "10.824913"), (20, "8.112370"), (40, "7.402119"), (400, "7.250003"), (411, "nan")],
        recommendations=[
            ("NaN collapse", "Likely numerical overflow. Enable partition-relative clipping."),
            ("Consider emergency shift", "Enable automatic fallback to higher-precision format."),
        ],
        generator="FormatExperimentRunner", generated_at="2026-02-03T14:22:51.018233",
    )
    assert render(ctx) == SAMPLE.read_text()


def test_perplexity_and_learning_rate_schedule():
    from altgrad_docs.bench.train import lr_at, perplexity

    assert perplexity(1.0) == math.e and perplexity(20.0) == math.inf and math.isnan(perplexity(math.nan))
    cfg = RunConfig(learning_rate=0.01, warmup_steps=20, max_steps=420)
    assert lr_at(0, cfg) == 0.01 / 20 and lr_at(19, cfg) == 0.01
    assert lr_at(20, cfg) == pytest.approx(0.01) and lr_at(420, cfg) == pytest.approx(0.001)


def _trainer(**kw):
    from altgrad_docs.bench.train import _Trainer

    rows = []
    t = _Trainer(RunConfig(**kw), lambda row, step: rows.append((step, row)))
    return t, t.run(), rows


def test_quantized_storage_keeps_every_weight_on_the_grid():
    kw = dict(fp8_format="E4M3", max_steps=8, log_interval=2, eval_interval=4, diagnostic_interval=4)
    q = make_quantizer("E4M3")
    stored, _, _ = _trainer(weight_storage="quantized", **kw)
    master, _, _ = _trainer(weight_storage="fp32_master", **kw)
    w = stored.w.detach()
    assert torch.equal(q(w), w)  # no master copy: the stored weights are the format's values
    assert not torch.equal(q(master.w.detach()), master.w.detach())


def test_seeds_pair_across_storage_and_learning_rate():
    """Same seed = same init and data order: step 0 sees the same quantised weights and batch."""
    kw = dict(fp8_format="E5M2", max_steps=1)
    losses = {_trainer(weight_storage=s, learning_rate=lr, **kw)[2][0][1]["loss"]
              for s in ("fp32_master", "quantized") for lr in (0.003, 0.03)}
    assert len(losses) == 1


def test_unknown_weight_storage_is_refused():
    with pytest.raises(ValueError, match="fp32_master"):
        train(RunConfig(weight_storage="fp16"), lambda row, step: None)


def test_run_ids_and_config_carry_storage_and_learning_rate():
    cfg = RunConfig(fp8_format="E5M2", use_manifold_aware=True, weight_storage="quantized",
                    learning_rate=0.03, seed=4)
    assert cfg.run_id == "e5m2manifold-q8-lr0.03-s4"
    assert cfg.run_name == "E5M2 | ManifoldAdamW | quantized | lr 0.03 | seed 4"
    config = cfg.wandb_config(SortTask())
    assert config["weight_storage"] == "quantized" and config["use_fp32_master"] is False
    assert config["learning_rate"] == 0.03 and config["divergence_window"] == 50


def test_ulp_mean_is_the_attempted_update_in_local_spacings():
    from altgrad_docs.bench.measure import diagnostics

    q = make_quantizer("E4M3")
    old = torch.tensor([1.0, 0.25, 0.0])  # spacings 2^-3, 2^-5, 2^-9
    new = torch.tensor([1.0625, 0.25, 2.0**-10])  # moves of 0.5, 0 and 0.5 ULP
    grad = torch.tensor([1.0, 1e-9, 0.0])
    diag = diagnostics(new, q(new), grad, q, 3, old, new)
    assert diag["diagnostics/ulp_mean"] == pytest.approx(1 / 3)
    assert diag["diagnostics/grad_below_stiffness_frac"] == pytest.approx(2 / 3)


def test_a_diverging_run_stops_and_reports_divergence(tmp_path):
    # Learning rate 3 with Adam moves every weight by about 3 per step: the loss jumps far
    # above its start and stays there (dynamics of the real loop, nothing injected).
    cfg = RunConfig(fp8_format="E4M3", learning_rate=3.0, warmup_steps=1, max_steps=200,
                    divergence_window=20)
    _, result, rows = _trainer(**cfg.__dict__)
    assert result.collapsed and result.collapse_reason.startswith("Divergence: loss above its starting value")
    assert result.steps_done == result.collapse_step + 1 and rows[-1][0] == result.collapse_step
    assert "val_loss" in rows[-1][1] and "diagnostics/ulp_mean" in rows[-1][1]  # logged as the last step
    text = write_failure_report(tmp_path, cfg, result, cfg.wandb_config(SortTask()),
                                datetime(2026, 1, 2, 3, 4, 5)).read_text()
    assert f"| Collapse Step | {result.collapse_step} |" in text
    assert "**Divergence**" in text and "Collapse Reason | Divergence" in text


def test_a_frozen_run_stops_as_stagnation():
    # E7M0 with stored weights and a tiny learning rate: no update ever flips a value.
    _, result, _ = _trainer(fp8_format="E7M0", weight_storage="quantized", learning_rate=1e-5,
                            max_steps=200, stagnation_window=30)
    assert result.collapsed and result.collapse_step == 30
    assert result.collapse_reason.startswith("Stagnation: no improvement for 30 steps")
    assert result.collapse_reason.endswith("at bit-stall rate 1.000 > 0.5")
