"""Figures drawn in worker processes (report.drawing) and downsampled lines (site.runchart)."""

import io
import time
from functools import partial

import numpy as np
import pytest

from altgrad_docs.report import drawing
from altgrad_docs.report.figures import new_figure
from altgrad_docs.site.runchart import downsample


def _line_figure(n: int, seed: int):
    fig = new_figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot(np.arange(n), np.random.default_rng(seed).normal(size=n).cumsum(), lw=0.8)
    return fig


def _refuse():
    raise AssertionError("a cached figure was drawn again")


def _jobs(tmp_path, draw_for):
    return [drawing.Job(f"fig-{i}", (i,), tmp_path / "out" / f"fig-{i}", draw_for(i)) for i in range(3)]


@pytest.mark.parametrize("formats", [("svg", "pdf")])
def test_parallel_drawing_gives_the_bytes_of_serial_drawing_and_caches(tmp_path, formats):
    serial = drawing.render_many(_jobs(tmp_path / "a", lambda i: partial(_line_figure, 200, i)),
                                 tmp_path / "cache-a", formats, workers=1)
    parallel = drawing.render_many(_jobs(tmp_path / "b", lambda i: partial(_line_figure, 200, i)),
                                   tmp_path / "cache-b", formats, workers=2)
    assert [sorted(f) for f in parallel] == [sorted(formats)] * 3
    for one, two in zip(serial, parallel):
        for ext in formats:
            assert one[ext].read_bytes() == two[ext].read_bytes(), (one[ext], two[ext])
    assert serial[0]["svg"].read_bytes() != serial[1]["svg"].read_bytes()  # the jobs really differ
    again = drawing.render_many(_jobs(tmp_path / "c", lambda i: _refuse), tmp_path / "cache-b", formats, workers=2)
    assert [f["svg"].read_bytes() for f in again] == [f["svg"].read_bytes() for f in parallel]


def test_pages_can_name_the_files_before_the_workers_have_drawn_them(tmp_path):
    pending = drawing.Drawing(_jobs(tmp_path, lambda i: partial(_line_figure, 200, i)), tmp_path / "cache",
                              ("svg", "pdf"), workers=2)
    named = pending.paths()  # before start: nothing is drawn yet
    assert pending.pending and not any(p.exists() for files in named for p in files.values())
    assert named[1] == {"svg": tmp_path / "out" / "fig-1.svg", "pdf": tmp_path / "out" / "fig-1.pdf"}
    workers = list(pending.start().pool._processes.values())  # started with the jobs
    for future in pending.futures:
        future.result()
    deadline = time.monotonic() + 30
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(w.is_alive() for w in workers)  # done: no idle worker holds memory
    done = pending.finish()
    assert done == named and not pending.pending
    assert all(p.is_file() for files in done for p in files.values())
    cached = drawing.Drawing(_jobs(tmp_path, lambda i: _refuse), tmp_path / "cache", ("svg", "pdf"), workers=2)
    assert not cached.pending and cached.start().finish() == named


def test_a_worker_error_reaches_the_caller(tmp_path):
    jobs = [drawing.Job(f"fig-{i}", (i,), tmp_path / f"fig-{i}", _refuse) for i in range(2)]
    with pytest.raises(AssertionError, match="drawn again"):
        drawing.render_many(jobs, tmp_path / "cache", ("svg",), workers=2)


_STATE: dict = {}  # what a worker's initializer set (a test of the initializer's arguments)


class _SlowToUnpickle:
    """An initializer argument that takes ``seconds`` to unpickle (as the analysis does, with
    the imports it needs)."""

    def __init__(self, seconds: float, n: int) -> None:
        self.seconds, self.n = seconds, n

    def __reduce__(self):
        return (_restore_slowly, (self.seconds, self.n))


def _restore_slowly(seconds: float, n: int) -> "_SlowToUnpickle":
    time.sleep(seconds)
    return _SlowToUnpickle(seconds, n)


def _use_state(arg: _SlowToUnpickle, seeds: dict, payload: bytes) -> None:
    _STATE.update(n=arg.n, seeds=seeds, payload=len(payload))


def _figure_from_state(i: int):
    return _line_figure(_STATE["n"], _STATE["seeds"][i])


@pytest.mark.slow  # about 3 s: two workers that take 2 s each to unpickle their arguments
def test_workers_get_the_initializer_arguments_without_the_parent_waiting_for_them(tmp_path):
    """The parent hands the initializer's arguments over as bytes: it goes on while each worker
    unpickles them (it used to wait for every worker in turn), and the figures are drawn from them."""
    seeds = {0: 7, 1: 8, 2: 9}
    pending = drawing.Drawing(_jobs(tmp_path / "b", lambda i: partial(_figure_from_state, i)), tmp_path / "cache-b",
                              ("svg",), initializer=_use_state, initargs=(_SlowToUnpickle(2.0, 150), seeds, b"x" * 2**20),  # more than a pipe holds
                              workers=2)
    started = time.perf_counter()
    pending.start()
    took = time.perf_counter() - started
    parallel = pending.finish()
    assert took < 2.0, f"start() waited {took:.1f} s for the workers to unpickle their arguments"
    serial = drawing.render_many(_jobs(tmp_path / "a", lambda i: partial(_line_figure, 150, seeds[i])),
                                 tmp_path / "cache-a", ("svg",), workers=1)
    assert [f["svg"].read_bytes() for f in parallel] == [f["svg"].read_bytes() for f in serial]


def _png(x, y) -> np.ndarray:
    import matplotlib.image

    fig = new_figure(figsize=(6, 3), dpi=100)
    ax = fig.add_subplot()
    ax.plot(x, y, lw=0.8, color="k")
    ax.set_xlim(0, 10_000)
    ax.set_ylim(-4, 60)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return matplotlib.image.imread(io.BytesIO(buf.getvalue()))[..., :3]


def test_downsampled_line_looks_like_the_full_line():
    """10,000 noisy steps with a spike, drawn whole and as 2,000 MinMaxLTTB points: the PNGs
    differ in < 0.5 % of their pixels. Every 50th point (200 points) misses the spike and
    the noise band, and differs in far more: the threshold can fail."""
    rng = np.random.default_rng(0)
    x = np.arange(10_000)
    y = 10 * np.exp(-x / 3000) + rng.normal(scale=0.6, size=len(x))
    y[7_777] = 55.0
    full = _png(x, y)

    def changed(image: np.ndarray) -> float:
        return float((np.abs(image - full).max(axis=-1) > 0.25).mean())

    lttb = changed(_png(*downsample(x, y, 2000)))
    stride = changed(_png(x[::50], y[::50]))
    assert lttb < 0.005, lttb
    assert stride > 2 * 0.005, stride
