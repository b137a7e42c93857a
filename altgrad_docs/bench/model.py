"""A tiny nanoGPT-style transformer, and the sorting task it is trained on.

Parameter names follow nanoGPT (``transformer.wte.weight``, ``transformer.h.0.attn.c_attn.weight``,
``transformer.h.0.mlp.c_fc.weight``, ``lm_head.weight``, ...), so every layer type of the data
contract exists. No biases (nanoGPT's ``bias=False``) and an untied ``lm_head``.

The forward pass takes the weights to use as an argument (``forward(idx, weights)``), so the
trainer can hand in quantised copies of the FP32 master weights without touching them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 16
    vocab_size: int = 13


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=False)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.attn.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=False)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.mlp.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)


class TinyGPT(nn.Module):
    """nanoGPT's GPT, cut down; parameters are only containers, see ``forward``."""

    def __init__(self, cfg: ModelConfig, generator: torch.Generator):
        super().__init__()
        self.cfg = cfg
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.transformer.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.transformer.h = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.transformer.ln_f = nn.LayerNorm(cfg.n_embd, bias=False)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self._init_weights(generator)

    @torch.no_grad()
    def _init_weights(self, gen: torch.Generator) -> None:
        """nanoGPT's init: N(0, 0.02^2), c_proj with std 0.02/sqrt(2 n_layer), LN gains 1."""
        for name, p in self.named_parameters():
            if "ln_" in name:
                p.fill_(1.0)
                continue
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if name.endswith("c_proj.weight") else 0.02
            p.normal_(0.0, std, generator=gen)

    def forward(self, idx: torch.Tensor, w: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits for ``idx`` (B, T) computed with the weights ``w`` (name -> tensor)."""
        cfg = self.cfg
        _, t = idx.shape
        x = w["transformer.wte.weight"][idx] + w["transformer.wpe.weight"][:t]
        for i in range(cfg.n_layer):
            p = f"transformer.h.{i}."
            x = x + self._attention(_ln(x, w[p + "ln_1.weight"]), w, p)
            h = F.linear(_ln(x, w[p + "ln_2.weight"]), w[p + "mlp.c_fc.weight"])
            x = x + F.linear(F.gelu(h), w[p + "mlp.c_proj.weight"])
        x = _ln(x, w["transformer.ln_f.weight"])
        return F.linear(x, w["lm_head.weight"])

    def _attention(self, x: torch.Tensor, w: dict[str, torch.Tensor], p: str) -> torch.Tensor:
        b, t, c = x.shape
        nh = self.cfg.n_head
        q, k, v = F.linear(x, w[p + "attn.c_attn.weight"]).split(c, dim=2)
        q, k, v = (z.view(b, t, nh, c // nh).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.linear(y.transpose(1, 2).contiguous().view(b, t, c), w[p + "attn.c_proj.weight"])


def _ln(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, weight.shape, weight, None, 1e-5)


# --- the task: sort a list of small numbers -------------------------------------------------


@dataclass(frozen=True)
class SortTask:
    """Sequences ``a_1 .. a_n SEP s_1 .. s_n`` where s is a sorted; loss on the s part only.

    With n = 8 and 12 symbols the vocabulary is 13 (symbols + SEP) and the block 16 tokens:
    the model reads the list and the separator and predicts the sorted list token by token.
    """

    n_items: int = 8
    n_symbols: int = 12

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 1

    @property
    def block_size(self) -> int:
        return 2 * self.n_items

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), both (size, block_size) int64; target -1 = not scored."""
        n, sep = self.n_items, self.n_symbols
        items = rng.integers(0, self.n_symbols, size=(size, n))
        seq = np.concatenate([items, np.full((size, 1), sep), np.sort(items, axis=1)], axis=1)
        x, y = seq[:, :-1].copy(), seq[:, 1:].copy()
        y[:, :n] = -1  # only the sorted list is scored
        return torch.from_numpy(x), torch.from_numpy(y)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
