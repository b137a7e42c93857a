"""The shared run schema and the snapshot round trip."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.runs import RUN_COLUMNS, RunRecord, layer_type, normalize_format, run_row, tidy_history
from altgrad_docs.snapshot import SnapshotError, open_snapshot, write_snapshot


def _record(run_id="abc12345", **config):
    history = pd.DataFrame({"_step": [0, 1, 2], "loss": [3.0, 2.0, float("nan")], "bit_stall_rate": ["0.5", "x", 0.25]})
    return RunRecord(
        meta={"run_id": run_id, "name": "a | <b>", "state": "crashed", "url": "u", "tags": ["t"]},
        config={"fp8_format": "FP8_E5M2", "use_fp8": True, **config},
        summary={"loss": "NaN", "bit_stall_rate": 0.25, "_step": 2},
        history=history,
    )


def test_run_row_follows_the_contract():
    row = run_row(_record(use_manifold_aware="true"))
    assert set(row) == set(RUN_COLUMNS)
    assert row["format"] == "E5M2" and row["optimizer"] == "ManifoldAdamW"
    assert row["status"] == "failed" and row["state"] == "crashed"
    assert math.isnan(row["final_loss"]) and row["best_loss"] == 2.0
    assert row["bit_stall_final"] == 0.25 and row["steps"] == 3 and math.isnan(row["seed"])  # no seed: unknown
    assert row["manifold_mantissa_bits"] == 2.0


@pytest.mark.parametrize(
    "config,label",
    [({}, "BF16"), ({"use_fp8": False, "fp8_format": "E4M3"}, "BF16"), ({"fp8_format": "E3M4"}, "E3M4"),
     ({"use_fp8": True, "fp8_format": "fp8_e4m3"}, "E4M3"), ({"use_fp8": False, "fp8_format": "FP16"}, "FP16")],
)
def test_normalize_format(config, label):
    assert normalize_format(config) == label


def test_tidy_history_coerces_strings_to_nan():
    h = tidy_history(_record().history)
    assert h.dtypes["_step"] == "int64"
    assert h["bit_stall_rate"].tolist()[0] == 0.5 and math.isnan(h["bit_stall_rate"][1])


def test_layer_types():
    assert [layer_type(n) for n in ("transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_fc.weight",
            "transformer.wte.weight", "lm_head.weight", "transformer.ln_f.weight")] == [
        "attention", "mlp", "embedding", "classifier", "other"]


def test_snapshot_round_trip_is_byte_identical(tmp_path):
    recs = [_record("b2"), _record("a1")]
    first = write_snapshot(recs, tmp_path / "one", source={"kind": "test"}, fetched_at="2026-01-01T00:00:00+00:00")
    second = write_snapshot(recs, tmp_path / "two", source={"kind": "test"}, fetched_at="2026-01-01T00:00:00+00:00")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    snap = open_snapshot(first)
    assert snap.runs()["run_id"].tolist() == ["a1", "b2"]
    h = snap.history("a1", keys=["loss", "val_loss"])
    assert list(h.columns) == ["_step", "loss", "val_loss"] and h["val_loss"].isna().all()
    assert json.loads((first / "manifest.json").read_text())["n_runs"] == 2


def test_failed_write_keeps_previous_snapshot(tmp_path):
    out = write_snapshot([_record("a1")], tmp_path / "snap", source={"kind": "test"})
    before = open_snapshot(out).sha256

    def broken():
        yield _record("a2")
        raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError):
        write_snapshot(broken(), out, source={"kind": "test"})
    assert open_snapshot(out).sha256 == before
    assert not list(tmp_path.glob(".snap.tmp-*"))


def test_missing_snapshot_error_says_how_to_make_one(tmp_path):
    with pytest.raises(SnapshotError, match="altgrad-docs fetch"):
        open_snapshot(tmp_path / "nope")


def test_extra_manifest_entries_cannot_overwrite_the_run_list(tmp_path):
    with pytest.raises(SnapshotError, match="would overwrite"):
        write_snapshot([_record("a1")], tmp_path / "snap", source={"kind": "test"}, extra={"runs": 54})
    assert not (tmp_path / "snap").exists()


def test_whole_numbers_in_the_run_table_stay_exact_beyond_float_precision():
    """Steps, seeds and exit codes are counted as integers: 2**62 + 20 steps is not rounded to
    2**62 (float64 holds whole numbers exactly only up to 2**53)."""
    from altgrad_docs.run_facts import steps_trained
    from altgrad_docs.runs import exact_int, runs_frame

    big = 2**62
    assert steps_trained({"_step": big + 19}, pd.DataFrame({"_step": []})) == big + 20
    history = pd.DataFrame({"_step": np.arange(20, dtype=np.int64) + big})
    assert steps_trained({}, history) == big + 20 and isinstance(steps_trained({}, history), int)
    assert steps_trained({"_step": "399"}, history) == 400 and steps_trained({}, pd.DataFrame({"_step": []})) != 0
    table = runs_frame([{"run_id": "a", "steps": big + 20, "seed": "7", "exit_code": 1.0},
                        {"run_id": "b", "steps": float("nan"), "seed": 2.5, "exit_code": 2**63}])
    assert table["steps"].tolist()[0] == big + 20 and table["steps"].isna().tolist() == [False, True]
    assert table["seed"].tolist()[0] == 7 and table["seed"].isna().tolist() == [False, True]
    assert table["exit_code"].tolist()[0] == 1 and table["exit_code"].isna().tolist() == [False, True]
    from altgrad_docs.runs import RunRecord as Record, renormalize, run_row as row_of

    record = Record(meta={"run_id": "s", "exit_code": big + 1}, config={"seed": big + 19}, summary={},
                    history=pd.DataFrame({"_step": [0, 1], "loss": [2.0, 1.0]}))
    row = row_of(record)
    assert (row["seed"], row["exit_code"]) == (big + 19, big + 1)  # not through float
    assert renormalize(runs_frame([row]))["seed"].tolist() == [big + 19]
    assert [exact_int(v) for v in (True, "1e3", " 12 ", "12.5", "", None, float("inf"), 2**63)] == \
        [1, 1000, 12, None, None, None, None, None]
