"""AdamW and ManifoldAdamW: one Adam loop, the only difference is the stiffness scaling.

ManifoldAdamW multiplies each gradient element by the stiffness of its weight before the Adam
moments see it::

    S(w) = 2^(floor(log2|w|) - M)          in the normal range of the format

That formula is the format's spacing (ULP) only in the normal range. Below it we use the real
local spacing of the format (``FP8Format.spacing``), which is what the formula was meant to
measure:

* subnormal range (0 < |w| < min normal): the constant subnormal step 2^(1 - bias - M_format)
  (for E4M3 at w = 2^-9 that is 8x what the formula gives);
* w = 0: the formula is undefined (log2 0); the spacing there is the smallest positive value;
* E0M7 (fixed point, no exponent): the constant step 2^-7 everywhere.

So with M equal to the format's mantissa bits (the bench's default) S is exactly the local
spacing for every weight inside the format's range. Both optimizers are this class, so a paired
comparison differs in nothing but the scaling (``manifold_aware``).
"""

from __future__ import annotations

import torch

from .quant import Quantizer


def stiffness(w: torch.Tensor, quantizer: Quantizer, mantissa_bits: int) -> torch.Tensor:
    """Per-element stiffness S of ``w`` with the rules of the module docstring."""
    spacing = quantizer.spacing(w)
    min_normal = quantizer.min_normal
    if min_normal is None:  # E0M7: constant step, no exponent
        return spacing
    a = w.abs()
    formula = torch.exp2(torch.floor(torch.log2(a.clamp(min=min_normal))) - mantissa_bits)
    return torch.where(a >= min_normal, formula, spacing)


class ManifoldAdamW:
    """AdamW (decoupled weight decay); with ``manifold_aware`` the gradient is scaled by S.

    A plain class rather than a ``torch.optim.Optimizer``: that base class imports
    ``torch._dynamo`` (4-5 s per worker process), and the bench needs none of its machinery.
    Set ``lr`` before each ``step`` for a schedule.
    """

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        quantizer: Quantizer,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        manifold_aware: bool = False,
        mantissa_bits: int = 2,
    ):
        self.params = list(params)
        self.quantizer = quantizer
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.manifold_aware = manifold_aware
        self.mantissa_bits = mantissa_bits
        self.t = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW step on every parameter that has a gradient."""
        beta1, beta2 = self.betas
        self.t += 1
        bc1, bc2 = 1 - beta1**self.t, 1 - beta2**self.t
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            grad = p.grad
            if self.manifold_aware:
                grad = grad * stiffness(p, self.quantizer, self.mantissa_bits)
            m.mul_(beta1).add_(grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (v / bc2).sqrt_().add_(self.eps)
            if self.weight_decay:
                p.mul_(1 - self.lr * self.weight_decay)
            p.addcdiv_(m, denom, value=-self.lr / bc1)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
