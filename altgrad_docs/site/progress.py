"""How far a long build is: plain log lines through ``mkdocs.plugins.altgrad`` at INFO.

A cold build of a large snapshot reads every history, makes every run page's chart and draws
the report figures: minutes. It says which stage it is in (:func:`stage`) and, inside a long
stage, how far along (:class:`SlowProgress`, at most every 15 s). Log lines, not a terminal
bar: they go where MkDocs' own output goes (also in CI), between its log lines. A warm build
logs none of this.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger("mkdocs.plugins.altgrad")

#: The stages of a cold build, in order (site/pipeline.py and site/analysis.py name them).
STAGES = ("analysis: every history read once", "run pages and their charts", "report figures")


def stage(number: int, detail: str) -> None:
    """``altgrad: stage 2/3 (run pages and their charts): 288 runs``."""
    log.info("altgrad: stage %d/%d (%s): %s", number, len(STAGES), STAGES[number - 1], detail)


class SlowProgress:
    """Logs how far a loop is, at most every ``every`` seconds: silent when it is quick.

    A first build of 1,000 runs draws 1,000 figures (minutes); a warm one logs nothing.
    """

    def __init__(self, what: str, total: int, every: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.every, self.clock = what, total, every, clock
        self.done, self.start = 0, clock()
        self.last = self.start

    def step(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            log.info("altgrad: %s %d/%d after %.0f s", self.what, self.done, self.total, now - self.start)
