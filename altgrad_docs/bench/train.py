"""One training run of the bench: config, the loop, the quantisation measurements.

Knows nothing of W&B: ``train`` calls ``log(row, step)`` for every history row and returns a
:class:`RunResult`; :mod:`.grid` wires that to ``wandb``. Everything random comes from one
``numpy.random.Generator`` seeded with the run's seed, so the same seed gives the same
initial weights and the same batches in every format and optimizer (the paired design).

A history row is logged every ``log_interval`` steps and at the last step (or the step where
the run failed); stall and flip counts in a row cover every step since the previous row;
overflow/underflow are measured on the attempted weights after the row's step (the FP32
master weights, or with ``weight_storage="quantized"`` the update before it is rounded and
written back). Failure detection is :mod:`.monitor`. See measure.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from .measure import FlatLayout, StallCounter, diagnostics, grad_sparsity, position_stats, range_rates
from .monitor import FailureMonitor, MonitorConfig
from .model import ModelConfig, SortTask, TinyGPT, cross_entropy
from .optim import ManifoldAdamW
from .quant import BASELINE, make_quantizer, straight_through

PPL_INF_LOSS = 20.0  # perplexity is logged as inf from this loss on (data contract)
FP32_MASTER, QUANTIZED = "fp32_master", "quantized"
WEIGHT_STORAGE = (FP32_MASTER, QUANTIZED)


@dataclass(frozen=True)
class RunConfig:
    """The training config; ``wandb_config`` turns it into the contract's config keys."""

    fp8_format: str = "E5M2"
    use_manifold_aware: bool = False
    seed: int = 0
    manifold_mantissa_bits: int | None = None  # None = the format's mantissa bits
    learning_rate: float = 1e-2
    #: "fp32_master": the optimizer updates FP32 weights, the forward pass sees their rounding;
    #: "quantized": no master copy, every update is written back as the format's rounding.
    weight_storage: str = FP32_MASTER
    batch_size: int = 32
    max_steps: int = 200
    warmup_steps: int = 20
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    log_interval: int = 5
    eval_interval: int = 25
    diagnostic_interval: int = 25
    val_size: int = 256
    bit_stall_threshold: float = 0.5
    overflow_threshold: float = 0.01
    nan_patience: int = 1
    divergence_window: int = 50
    stagnation_window: int = 100
    stagnation_min_delta: float = 0.02
    enable_partition_clipping: bool = False
    enable_emergency_shift: bool = False

    @property
    def use_fp8(self) -> bool:
        return self.fp8_format.upper() != BASELINE

    @property
    def mantissa_bits(self) -> int:
        if self.manifold_mantissa_bits is not None:
            return self.manifold_mantissa_bits
        return make_quantizer(self.fp8_format).man_bits

    @property
    def optimizer(self) -> str:
        return "ManifoldAdamW" if self.use_manifold_aware else "AdamW"

    @property
    def run_id(self) -> str:
        """Stable W&B id from format, optimizer, weight storage, learning rate and seed,
        e.g. ``e5m2adamw-fp32-lr0.01-s0`` (``q8`` for quantized storage)."""
        opt = "manifold" if self.use_manifold_aware else "adamw"
        store = "fp32" if self.weight_storage == FP32_MASTER else "q8"
        return f"{self.fp8_format.lower()}{opt}-{store}-lr{self.learning_rate:g}-s{self.seed}"

    @property
    def run_name(self) -> str:
        return (f"{self.fp8_format} | {self.optimizer} | {self.weight_storage} | "
                f"lr {self.learning_rate:g} | seed {self.seed}")

    @property
    def monitor(self) -> MonitorConfig:
        return MonitorConfig(self.nan_patience, self.divergence_window, self.stagnation_window,
                             self.stagnation_min_delta, self.bit_stall_threshold)

    def wandb_config(self, task: SortTask) -> dict:
        cfg = asdict(self)
        cfg.update(
            use_fp8=self.use_fp8,
            manifold_mantissa_bits=self.mantissa_bits,
            optimizer=self.optimizer,
            block_size=task.block_size,
            vocab_size=task.vocab_size,
            task=f"sort {task.n_items} symbols of {task.n_symbols}",
            use_fp32_master=self.weight_storage == FP32_MASTER,
            quantized="all weights (no biases exist), per-tensor scaling: none",
        )
        return cfg


@dataclass
class RunResult:
    """What the grid needs after a run: collapse facts and what the failure report shows."""

    steps_done: int
    collapsed: bool = False
    collapse_step: int | None = None
    collapse_reason: str = ""
    final_loss: float = math.nan
    best_loss: float = math.inf
    duration_s: float = 0.0
    loss_trend: list[tuple[int, float]] = field(default_factory=list)
    quant_at_end: dict[str, float] = field(default_factory=dict)
    diagnostics: list[dict[str, float]] = field(default_factory=list)
    grad_sparsity: float = math.nan
    zero_update_layers: list[str] = field(default_factory=list)


def lr_at(step: int, cfg: RunConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def perplexity(loss: float) -> float:
    """exp(loss); ``inf`` from loss 20 on (data contract); NaN stays NaN."""
    if math.isnan(loss):
        return math.nan
    return math.inf if loss >= PPL_INF_LOSS else math.exp(loss)


def train(cfg: RunConfig, log: Callable[[dict, int], None]) -> RunResult:
    """Train one run, calling ``log(row, step)``; stops early when the monitor says it failed."""
    if cfg.weight_storage not in WEIGHT_STORAGE:
        raise ValueError(f"weight_storage {cfg.weight_storage!r} is not one of {WEIGHT_STORAGE}. "
                         f"--> Do: use {FP32_MASTER!r} or {QUANTIZED!r}")
    return _Trainer(cfg, log).run()


class _Trainer:
    """The loop. Master weights are one flat FP32 vector ``self.w`` (see measure.FlatLayout);
    the model only supplies names, shapes and the initial values."""

    def __init__(self, cfg: RunConfig, log: Callable[[dict, int], None]):
        self.cfg, self.log = cfg, log
        self.task = SortTask()
        self.rng = np.random.default_rng(cfg.seed)
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        mcfg = ModelConfig(cfg.n_layer, cfg.n_head, cfg.n_embd, self.task.block_size, self.task.vocab_size)
        self.model = TinyGPT(mcfg, gen).requires_grad_(False)
        named = list(self.model.named_parameters())
        self.layout = FlatLayout.of(named)
        self.w = torch.cat([p.detach().flatten() for _, p in named]).requires_grad_(True)
        self.quantizer = make_quantizer(cfg.fp8_format)
        self.stored = cfg.weight_storage == QUANTIZED
        if self.stored:  # the initial weights are stored in the format too
            with torch.no_grad():
                self.w.copy_(self.quantizer(self.w.detach()))
        self.monitor = FailureMonitor(cfg.monitor)
        self.opt = ManifoldAdamW([self.w], self.quantizer, lr=cfg.learning_rate,
                                 weight_decay=cfg.weight_decay, manifold_aware=cfg.use_manifold_aware,
                                 mantissa_bits=cfg.mantissa_bits)
        self.val = self.task.batch(np.random.default_rng(10_000), cfg.val_size)
        self.stalls = StallCounter(self.layout)
        self.position = torch.zeros_like(self.w)
        self.result = RunResult(steps_done=0)

    def quantize(self) -> torch.Tensor:
        with torch.no_grad():
            return self.quantizer(self.w.detach())

    def loss_with(self, q: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weights = self.layout.unflatten(straight_through(self.w, q))
        return cross_entropy(self.model(x, weights), y)

    def run(self) -> RunResult:
        cfg, res = self.cfg, self.result
        start = time.perf_counter()
        q = self.quantize()
        for step in range(cfg.max_steps):
            x, y = self.task.batch(self.rng, cfg.batch_size)
            loss = self.loss_with(q, x, y)
            loss_v, gnorm, bad = float(loss.detach()), math.nan, ""
            if not math.isfinite(loss_v):
                bad = "loss"
            else:
                loss.backward()
                gnorm = float(self.w.grad.norm())
                bad = "" if math.isfinite(gnorm) else "gradient norm"
            if bad:  # skip this update; fail once nan_patience steps in a row were bad
                self.opt.zero_grad()
                reason = self.monitor.non_finite(bad)
                if reason:
                    self._collapse(step, reason, loss_v, gnorm)
                    break
                continue
            q, reason = self._step(step, q, loss_v, gnorm)
            res.steps_done = step + 1
            if reason:
                self._fail(step, reason)
                break
        res.duration_s = time.perf_counter() - start
        return res

    def _step(self, step: int, q_old: torch.Tensor, loss_v: float,
              gnorm: float) -> tuple[torch.Tensor, str]:
        """One optimizer step, checked by the monitor; returns the new quantised weights and
        the failure reason ("" if none). With quantized storage the rounding is written back.
        The step where a run fails is logged like the last step."""
        cfg, res = self.cfg, self.result  # measurements use the attempted (unrounded) weights
        grad = self.w.grad.detach().clone()  # raw gradient, before clipping
        if gnorm > cfg.grad_clip:
            self.w.grad.mul_(cfg.grad_clip / (gnorm + 1e-6))
        old = self.w.detach().clone()
        self.opt.lr = lr = lr_at(step, cfg)
        self.opt.step()
        self.opt.zero_grad()
        q_new = self.quantize()
        w = self.w.detach()
        attempted = w.clone()
        counts = self.stalls.add(old, attempted, q_old, q_new)
        if self.stored:
            w.copy_(q_new)
        if cfg.use_manifold_aware:
            self.position += (attempted - old) / self.quantizer.spacing(old)
        res.final_loss, res.best_loss = loss_v, min(res.best_loss, loss_v)
        res.grad_sparsity, res.zero_update_layers = grad_sparsity(grad, self.layout)
        reason = self.monitor.update(loss_v, *counts)
        last = step == cfg.max_steps - 1 or bool(reason)
        self._last_update = (old, attempted)
        if step % cfg.log_interval == 0 or last:
            row = {"loss": loss_v, "perplexity": perplexity(loss_v), "grad_norm": gnorm, "learning_rate": lr}
            row.update(self.stalls.rates())
            row.update(range_rates(attempted, q_new, self.quantizer.max_value))
            res.quant_at_end = {k: v for k, v in row.items() if k.startswith("quantization/")}
            row.update(self._periodic(step, last, attempted, q_new, grad))
            res.loss_trend.append((step, loss_v))
            self.log(row, step)
        return q_new, reason

    def _periodic(self, step: int, last: bool, w, q, grad) -> dict[str, float]:
        """Validation loss and diagnostics, every eval/diagnostic interval and at the end."""
        cfg, row = self.cfg, {}
        if step % cfg.eval_interval == 0 or last:
            with torch.no_grad():
                val = float(self.loss_with(q, *self.val))
            row["val_loss"], row["val_perplexity"] = val, perplexity(val)
        if step % cfg.diagnostic_interval == 0 or last:
            diag = diagnostics(w, q, grad, self.quantizer, cfg.mantissa_bits, *self._last_update)
            self.result.diagnostics.append({"step": step, **diag})
            row.update(diag)
            if cfg.use_manifold_aware:
                row.update(position_stats(self.position))
        return row

    def _collapse(self, step: int, reason: str, loss_v: float, gnorm: float) -> None:
        """A NaN/Inf step ends the run: log that loss, then fail."""
        self.result.final_loss = loss_v
        self.result.loss_trend.append((step, loss_v))
        self.log({"loss": loss_v, "perplexity": perplexity(loss_v), "grad_norm": gnorm}, step)
        self._fail(step, reason)

    def _fail(self, step: int, reason: str) -> None:
        res = self.result
        res.collapsed, res.collapse_step, res.collapse_reason = True, step, reason
