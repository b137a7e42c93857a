"""What the formats page states, computed from the registry: no sentence of that page types
a number or a format name in; ``templates/reports/formats.md.j2`` picks its branches from
the quantities here (which conventions occur, which formats overflow to Inf, ...).

Available to every report template as the global ``format_registry()`` (see
``generator.make_environment``); a test passes its own ``format_registry`` to render a
hand-built registry through the same template.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Iterable

import numpy as np
import pandas as pd

from altgrad_docs.analysis.facts import power_of_two, stagnation_band
from altgrad_docs.formats import FORMATS, REFERENCE_FORMATS, FP8Format

from .markdown import escape_md, table

#: The format whose subnormal spacing the stiffness trap is shown on (any format with
#: subnormals would do; E4M3 is the one most readers know).
STIFFNESS_EXAMPLE = "E4M3"
CONVENTIONS = ("ieee", "fn", "finite", "fixed")


def reserved_top_max(f: FP8Format) -> float:
    """The max the same E, M and bias would give if the top exponent were reserved (ieee):
    what a reader who assumes IEEE rules expects (240 for E4M3, whose real max is 448)."""
    return FP8Format(f.name, f.exp_bits, f.man_bits, f.bias, "ieee", f.bits).max_value


def overflows_to_inf(f: FP8Format) -> bool:
    """Whether the quantiser sends a value far above the max to Inf (else it saturates)."""
    return bool(np.isinf(f.quantize(np.array([4 * f.max_value])))[0])


def stiffness_example(f: FP8Format) -> dict[str, Any]:
    """At the smallest positive value w: the formula S = 2^(floor(log2|w|) - M) against the
    format's real spacing there (the subnormal step), and their ratio."""
    w = f.min_positive
    formula = 2.0 ** (math.floor(math.log2(w)) - f.man_bits)
    spacing = float(f.spacing(np.array([w]))[0])
    return {"format": f.name, "w": w, "formula": formula, "spacing": spacing, "ratio": spacing / formula}


def reference_table(formats: Iterable[FP8Format]) -> str:
    """The 16-bit references as a Markdown table, decoded from their 65,536 patterns."""
    rows = []
    for f in formats:
        lo, hi = stagnation_band(f.man_bits)
        rows.append({"format": f.name, "E": str(f.exp_bits), "M": str(f.man_bits), "bias": str(f.bias),
                     "max": power_of_two(f.max_value) if f.max_value > 1e6 else f"{f.max_value:.10g}",
                     "min normal": power_of_two(f.min_normal), "min positive": power_of_two(f.min_positive),
                     "distinct values": str(f.distinct_values),
                     "updates lost below": f"{100 * lo:.3g}-{100 * hi:.3g}% of |w|"})
    return table(pd.DataFrame([{escape_md(k): escape_md(v) for k, v in r.items()} for r in rows]))


def registry_facts(formats: dict[str, FP8Format] | None = None,
                   references: dict[str, FP8Format] | None = None) -> dict[str, Any]:
    """Every quantity the formats page's sentences rest on, for the given registry."""
    formats = FORMATS if formats is None else formats
    references = REFERENCE_FORMATS if references is None else references
    fs = list(formats.values())
    example = formats.get(STIFFNESS_EXAMPLE) or next((f for f in fs if f.has_subnormals), None)
    return {
        "n_patterns": sorted({1 << f.bits for f in fs}),
        "n_reference_patterns": sorted({1 << f.bits for f in references.values()}),
        "by_convention": {c: [f.name for f in fs if f.convention == c] for c in CONVENTIONS},
        "ieee": [{"name": f.name, "max": f.max_value} for f in fs if f.convention == "ieee"],
        "fn": [{"name": f.name, "max": f.max_value, "reserved_max": reserved_top_max(f)}
               for f in fs if f.convention == "fn"],
        "fixed": [{"name": f.name, "step": f.min_positive, "threshold": f.min_positive / 2}
                  for f in fs if f.convention == "fixed"],
        "powers_of_two": [f.name for f in fs if f.man_bits == 0 and f.convention != "fixed"],
        "overflow_inf": [f.name for f in fs if overflows_to_inf(f)],
        "saturate": [f.name for f in fs if not overflows_to_inf(f)],
        "stiffness": stiffness_example(example) if example is not None else None,
        "references_table": reference_table(references.values()),
    }


@lru_cache(maxsize=1)
def format_registry() -> dict[str, Any]:
    """``registry_facts()`` of the project's registry, computed once per process."""
    return registry_facts()
