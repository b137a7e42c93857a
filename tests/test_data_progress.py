"""The fetch progress bar: drawn on a terminal, silent otherwise."""

import io

from altgrad_docs.fetch import Progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_on_a_terminal():
    out = _Tty()
    bar = Progress("fetching histories", 2, stream=out)
    bar.update()
    bar._last = 0.0  # force a redraw regardless of the 0.1 s throttle
    bar.update()
    bar.close()
    text = out.getvalue()
    assert "fetching histories [########################] 2/2" in text and text.endswith("\n")


def test_progress_is_silent_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress("fetching histories", 3, stream=out)
    for _ in range(3):
        bar.update()
    bar.close()
    assert out.getvalue() == "" and bar.done == 3
