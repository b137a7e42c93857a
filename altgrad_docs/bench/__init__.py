"""The demo experiment behind the bundled data: a tiny nanoGPT trained under every format.

``quant`` (torch quantiser from the registry), ``model`` (TinyGPT + sorting task), ``optim``
(AdamW / ManifoldAdamW), ``measure`` (stall, overflow, underflow, diagnostics), ``train``
(one run), ``failure_report``, ``grid`` (worker processes + wandb offline), ``cli``
(``altgrad-docs bench``). Needs torch (the ``[bench]`` extra). See docs/bench.md.
"""
