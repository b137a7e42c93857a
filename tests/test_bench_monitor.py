"""The trainer's failure monitor: NaN/Inf patience, divergence, stagnation (bench/monitor.py)."""

from altgrad_docs.bench.monitor import FailureMonitor, MonitorConfig


def feed(monitor: FailureMonitor, losses, flips=0, updates=10) -> list[str]:
    return [monitor.update(x, flips, updates) for x in losses]


def test_nan_patience_counts_consecutive_bad_steps():
    m = FailureMonitor(MonitorConfig(nan_patience=3))
    assert m.non_finite("loss") == "" and m.non_finite("loss") == ""
    m.update(2.0, 5, 10)  # a good step resets the count
    assert m.non_finite("loss") == "" and m.non_finite("gradient norm") == ""
    assert m.non_finite("gradient norm") == "NaN/Inf gradient norm"


def test_nan_patience_one_fails_at_once():
    assert FailureMonitor(MonitorConfig(nan_patience=1)).non_finite("loss") == "NaN/Inf loss"


def test_divergence_needs_the_whole_window_above_the_starting_loss():
    m = FailureMonitor(MonitorConfig(divergence_window=3, stagnation_window=1000))
    out = feed(m, [2.0, 2.5, 2.6, 1.9, 2.1, 2.2, 2.3], flips=10)
    assert out[:6] == [""] * 6  # 1.9 broke the first run of steps above 2.0
    assert out[6] == "Divergence: loss above its starting value 2.0000 for 3 steps"


def test_stagnation_fires_only_while_the_stall_is_high():
    cfg = MonitorConfig(divergence_window=1000, stagnation_window=4, stagnation_min_delta=0.02,
                        bit_stall_threshold=0.5)
    flat = [1.0] * 6
    assert feed(FailureMonitor(cfg), flat, flips=6, updates=10) == [""] * 6  # stall 0.4
    out = feed(FailureMonitor(cfg), flat, flips=1, updates=10)  # stall 0.9
    assert out[:4] == [""] * 4
    assert out[4] == ("Stagnation: no improvement for 4 steps (smoothed loss 1.0000, best 1.0000) "
                      "at bit-stall rate 0.900 > 0.5")


def test_steady_improvement_is_not_stagnation():
    cfg = MonitorConfig(divergence_window=1000, stagnation_window=3, bit_stall_threshold=0.5)
    losses = [2.0 * 0.9**i for i in range(40)]
    assert feed(FailureMonitor(cfg), losses, flips=0, updates=10) == [""] * 40


def test_stall_over_the_window_is_flips_over_attempted_updates():
    cfg = MonitorConfig(divergence_window=1000, stagnation_window=2, bit_stall_threshold=0.5)
    m = FailureMonitor(cfg)
    assert feed(m, [1.0, 1.0], flips=0, updates=0) == ["", ""]
    # window (0/0, 9/10): 1 - 9/10 = 0.1 stall -> no stagnation although nothing improved
    assert m.update(1.0, 9, 10) == ""
    assert m.update(1.0, 0, 10).startswith("Stagnation")  # window (9/10, 0/10): 1 - 9/20 = 0.55
