"""Decoding W&B's history answers: orjson through the client's ``execute_graphql(parse=...)``,
json where orjson refuses a text (bare NaN/Infinity) or is not installed, and the same
snapshot, byte for byte, whichever decoder read it."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from altgrad_docs.fetch import fetch_project
from altgrad_docs.sources import wandb_api as wa
from benchmarks.synthetic import synthetic_records
from tests.conftest import ROOT
from tests.fake_wandb import ENTITY

PROJECT = f"{ENTITY}/altgrad"
orjson = pytest.importorskip("orjson")  # a dependency (pyproject.toml); json covers its refusals


# ---- loads and live_rows, pure -------------------------------------------------------------
def test_loads_reads_what_orjson_refuses_as_json_does():
    text = '{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400, "e": 0.1}'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)  # so the next line goes through the json fallback
    got = wa.loads(text)
    assert math.isnan(got["a"]) and got["b"] == got["d"] == math.inf and got["c"] == -math.inf
    assert got["e"] == 0.1
    assert wa.loads('{"_step": 3, "loss": "NaN"}') == {"_step": 3, "loss": "NaN"}
    with pytest.raises(ValueError):
        wa.loads('{"loss": ')


def test_loads_without_orjson_is_json(monkeypatch):
    monkeypatch.setattr(wa, "_orjson", None)
    called = []
    monkeypatch.setattr(orjson, "loads", lambda text: called.append(text))
    assert wa.loads('[1, 2.5, "x"]') == [1, 2.5, "x"] and called == []


def test_live_rows_decode_texts_in_one_call_and_keep_objects_and_order(monkeypatch):
    calls = []
    real = wa.loads
    monkeypatch.setattr(wa, "loads", lambda text: calls.append(text) or real(text))
    rows = ['{"_step": 0, "loss": 1.5}', {"_step": 1, "loss": "NaN"}, b'{"_step": 2, "loss": "Infinity"}',
            None, '{"_step": 3}']
    assert wa.live_rows(rows) == [{"_step": 0, "loss": 1.5}, {"_step": 1, "loss": "NaN"},
                                  {"_step": 2, "loss": "Infinity"}, {"_step": 3}]
    assert len(calls) == 1  # the three texts as one array
    assert wa.live_rows(None) == [] and wa.live_rows([]) == [] and wa.live_rows("x") == []


def test_live_rows_with_bare_non_finite_tokens_read_as_json_reads_them():
    rows = ['{"_step": 0, "loss": NaN}', '{"_step": 1, "loss": -Infinity}', '{"_step": 2, "loss": 2.0}']
    got = wa.live_rows(rows)
    assert [r["_step"] for r in got] == [0, 1, 2]
    assert math.isnan(got[0]["loss"]) and got[1]["loss"] == -math.inf and got[2]["loss"] == 2.0


def test_live_rows_fall_back_to_one_text_per_row_and_fail_on_a_malformed_row():
    # two values in one text: the joined array has 3 items for 2 texts, so each text is read alone
    with pytest.raises(ValueError):
        wa.live_rows(['{"_step": 0},{"_step": 1}', '{"_step": 2}'])
    with pytest.raises(ValueError):
        wa.live_rows(['{"_step": 0}', '{"_step": '])


# ---- how the query is sent -----------------------------------------------------------------
class _NewService:
    def __init__(self):
        self.calls = []

    def execute_graphql(self, query, variables=None, timeout=None, *, parse=json.loads):
        self.calls.append((query, variables, parse))
        return parse('{"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": '
                     '["{\\"_step\\": 0, \\"loss\\": NaN}", {"_step": 1, "loss": 0.5}]}}}}')


class _OldService:
    def execute_graphql(self, query, variables=None, timeout=None):
        raise AssertionError("an old client's call is only reached through Run._exec")


class _Run:
    entity, project, id = "ent", "proj", "abc123"

    def __init__(self, service):
        self._service_api = service
        self.exec_calls = []

    def _exec(self, query, **kwargs):
        self.exec_calls.append(kwargs)
        return {"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": [
            {"_step": 0, "loss": 2.0}]}}}}


def test_the_query_goes_through_execute_graphql_with_our_decoder():
    run = _Run(_NewService())
    columns = wa._one_request_columns(run, ["loss"])
    (query, variables, parse), = run._service_api.calls
    assert query == wa.PARQUET_HISTORY and parse is wa.loads and run.exec_calls == []
    assert variables == {"entity": "ent", "project": "proj", "name": "abc123", "liveKeys": ["_step", "loss"]}
    assert columns["_step"].tolist() == [0.0, 1.0]
    assert math.isnan(columns["loss"][0]) and columns["loss"][1] == 0.5


def test_a_client_without_parse_or_without_a_service_sends_it_through_run_exec():
    for service in (_OldService(), None):
        run = _Run(service)
        columns = wa._one_request_columns(run, ["loss"])
        assert run.exec_calls == [{"liveKeys": ["_step", "loss"]}]
        assert columns["loss"].tolist() == [2.0]

    class Bare:
        pass

    assert wa._one_request_columns(Bare(), ["loss"]) is None  # then the client's own paths


def test_without_orjson_installed_the_module_imports_and_decodes_with_json():
    script = ("import sys; sys.modules['orjson'] = None\n"
              "from altgrad_docs.sources import wandb_api as wa\n"
              "assert wa._orjson is None\n"
              "print(wa.live_rows(['{\"_step\": 0, \"loss\": NaN}', '{\"_step\": 1, \"loss\": 1.5}']))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[{'_step': 0, 'loss': nan}, {'_step': 1, 'loss': 1.5}]"


# ---- the real client against the fake server -----------------------------------------------
def _snapshot_files(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _records():
    recs = list(synthetic_records(4, 60, 12, np.random.default_rng(7), entity=ENTITY))
    history = recs[0].history
    history.loc[history.index[2], "loss"] = np.nan
    history.loc[history.index[3], "loss"] = np.inf
    history.loc[history.index[4], "grad_norm"] = -np.inf
    return recs


def test_the_snapshot_is_byte_identical_whichever_decoder_and_row_encoding(live_wandb, tmp_path, monkeypatch):
    """orjson through execute_graphql, json without orjson, and the old client's Run._exec
    (json inside wandb), on live rows sent as objects, as texts, and as texts with bare
    NaN/Infinity tokens that orjson refuses: the same files."""
    live_wandb.set_runs(_records())
    live_wandb.exports = False
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    decoded = []
    real = wa.loads
    monkeypatch.setattr(wa, "loads", lambda text: decoded.append(len(text)) or real(text))
    snapshots = {}
    try:
        for rows in ("objects", "texts", "bare-texts"):
            live_wandb.live_rows = rows
            for decoder in ("orjson", "json", "run._exec"):
                with monkeypatch.context() as patch:
                    if decoder == "json":
                        patch.setattr(wa, "_orjson", None)
                    if decoder == "run._exec":
                        patch.setattr(wa, "_takes_parse", lambda service_type: False)
                    decoded.clear()
                    out = tmp_path / f"{rows}-{decoder}"
                    result = fetch_project(PROJECT, out, progress=False)
                    assert result.fetched == 4
                    # each answer through our decoder (Run._exec: json inside wandb), the
                    # run-log answer too (one per run, wandb_logs.py), and the live rows sent
                    # as texts in one more call per run
                    assert len(decoded) == (decoder != "run._exec") * 8 + (rows != "objects") * 4
                    snapshots[rows, decoder] = _snapshot_files(result.snapshot.path)
    finally:
        live_wandb.exports, live_wandb.live_rows = True, "objects"
    first = snapshots["objects", "orjson"]
    assert all(files == first for files in snapshots.values())
    loss = open_history(tmp_path / "bare-texts-orjson", _records()[0].run_id)
    assert np.isnan(loss[2]) and loss[3] == np.inf


def open_history(path: Path, run_id: str) -> np.ndarray:
    from altgrad_docs.snapshot import open_snapshot

    return open_snapshot(path).history(run_id, ["loss"])["loss"].to_numpy()


# ---- steps, exactly (issue #20) --------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from altgrad_docs.sources.steps import StepOutOfRange, arrow_step_column, step_column  # noqa: E402

INT64 = st.integers(-2**63, 2**63 - 1)
NO_STEP = st.sampled_from([None, float("nan"), float("inf"), "NaN", "x", True, {}])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(INT64, INT64.map(str), NO_STEP), max_size=30))
def test_steps_decode_exactly_or_not_at_all(values):
    """Every integer step survives exactly (as int, or as JSON text of one), anything else
    is no step; as a list of live rows and as a Parquet column alike."""
    import pyarrow as pa

    expected = [(int(v), True) if isinstance(v, (int, str)) and not isinstance(v, bool)
                and str(v).lstrip("-").isdigit() else (0, False) for v in values]
    steps, ok = step_column(values)
    assert steps.dtype == np.int64 and ok.tolist() == [e[1] for e in expected]
    assert steps[ok].tolist() == [e[0] for e in expected if e[1]]
    ints = [int(v) if e[1] else None for v, e in zip(values, expected)]
    for column in (pa.chunked_array([pa.array(ints, pa.int64())]),):
        got, has = arrow_step_column(column)
        assert has.tolist() == [e[1] for e in expected] and got[has].tolist() == steps[ok].tolist()


@pytest.mark.parametrize("values", [[0, 2**63], ["9223372036854775808"], [-2**63 - 1], [1e19]])
def test_a_step_no_int64_holds_is_named(values):
    import pyarrow as pa

    with pytest.raises(StepOutOfRange, match="beyond what a 64-bit integer holds"):
        step_column(values)
    if all(isinstance(v, int) and v >= 0 for v in values):
        with pytest.raises(StepOutOfRange):
            arrow_step_column(pa.chunked_array([pa.array(values, pa.uint64())]))
