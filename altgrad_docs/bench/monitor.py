"""Failure detection of the trainer: NaN/Inf, divergence and stagnation, one step at a time.

The rules, as a researcher's trainer applies them (all thresholds are config keys):

* **NaN/Inf**: ``nan_patience`` consecutive steps whose loss or gradient norm is not finite
  (the update of such a step is skipped);
* **divergence**: the training loss stays above its starting value (the loss of step 0) for
  ``divergence_window`` consecutive steps;
* **stagnation**: the smoothed training loss (an exponential moving average, factor
  ``LOSS_EMA``) has not improved on its best value by more than ``stagnation_min_delta``
  (relative) for ``stagnation_window`` steps, while the bit-stall rate over those steps, as
  1 - flips / attempted updates, is above ``bit_stall_threshold``.

Pure Python on floats: :class:`FailureMonitor` sees one step's loss and stall counts and says
which rule fired, if any. The reason strings are what the failure report and the site show.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

LOSS_EMA = 0.9  # weight of the previous average: about 10 steps of memory
NON_FINITE_REASON = "NaN/Inf loss"


@dataclass(frozen=True)
class MonitorConfig:
    nan_patience: int = 1
    divergence_window: int = 50
    stagnation_window: int = 100
    stagnation_min_delta: float = 0.02
    bit_stall_threshold: float = 0.5


class FailureMonitor:
    """Feed :meth:`non_finite` or :meth:`update` once per step; a non-empty string is the
    reason the run failed at that step."""

    def __init__(self, cfg: MonitorConfig):
        self.cfg = cfg
        self.bad_steps = 0
        self.start_loss: float | None = None
        self.above = 0
        self.ema: float | None = None
        self.best_ema = math.inf
        self.since_best = 0
        self.window: deque[tuple[int, int]] = deque(maxlen=cfg.stagnation_window)

    def non_finite(self, what: str) -> str:
        """A step with a NaN/Inf ``what`` ("loss" or "gradient norm"); fails at the patience."""
        self.bad_steps += 1
        if self.bad_steps >= self.cfg.nan_patience:
            return f"NaN/Inf {what}"
        return ""

    def update(self, loss: float, flips: int, updates: int) -> str:
        """One finished step: its (finite) loss and how many attempted updates flipped."""
        self.bad_steps = 0
        if self.start_loss is None:
            self.start_loss = loss
        return self._divergence(loss) or self._stagnation(loss, flips, updates)

    def _divergence(self, loss: float) -> str:
        self.above = self.above + 1 if loss > self.start_loss else 0
        if self.above >= self.cfg.divergence_window:
            return (f"Divergence: loss above its starting value {self.start_loss:.4f} for "
                    f"{self.above} steps")
        return ""

    def _stagnation(self, loss: float, flips: int, updates: int) -> str:
        self.ema = loss if self.ema is None else LOSS_EMA * self.ema + (1 - LOSS_EMA) * loss
        self.window.append((flips, updates))
        if self.ema < self.best_ema * (1 - self.cfg.stagnation_min_delta):
            self.best_ema, self.since_best = self.ema, 0
            return ""
        self.since_best += 1
        if self.since_best < self.cfg.stagnation_window:
            return ""
        f = sum(w[0] for w in self.window)
        u = sum(w[1] for w in self.window)
        stall = 1 - f / u if u else 1.0
        if stall <= self.cfg.bit_stall_threshold:
            return ""
        return (f"Stagnation: no improvement for {self.since_best} steps "
                f"(smoothed loss {self.ema:.4f}, best {self.best_ema:.4f}) at bit-stall rate "
                f"{stall:.3f} > {self.cfg.bit_stall_threshold:g}")
