"""Snapshot.history with keys: numpy columns straight into a frame, as pandas' conversion gives it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from altgrad_docs.runs import RunRecord
from altgrad_docs.snapshot import Snapshot, open_snapshot, write_snapshot
from altgrad_docs.snapshot_files import sha256_file


def reference_history(path, keys: list[str]) -> pd.DataFrame:
    """What Snapshot.history returned before: to_pandas, NaN columns added, reordered."""
    present = set(pq.read_schema(path).names)
    df = pq.read_table(path, columns=["_step"] + [k for k in keys if k in present]).to_pandas()
    for key in keys:
        if key not in df:
            df[key] = float("nan")
    return df[["_step"] + keys]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    history = pd.DataFrame({"_step": [0, 1, 5], "loss": [3.0, np.nan, 1.5], "grad_norm": [0.5, 0.25, np.inf]})
    empty = pd.DataFrame({"_step": pd.Series([], dtype="int64")})
    records = [RunRecord(meta={"run_id": "run00001"}, history=history),
               RunRecord(meta={"run_id": "run00002"}, history=empty)]
    return open_snapshot(write_snapshot(records, tmp_path_factory.mktemp("snap") / "s", source={"kind": "t"},
                                        fetched_at="2026-01-01T00:00:00+00:00"))


@pytest.mark.parametrize("run_id", ["run00001", "run00002"])
@pytest.mark.parametrize("keys", [["loss"], ["grad_norm", "missing", "loss"], ["missing"], []])
def test_history_with_keys_is_what_pandas_gave(snapshot, run_id, keys):
    got = snapshot.history(run_id, keys)
    pd.testing.assert_frame_equal(got, reference_history(snapshot.history_path(run_id), keys))
    assert list(got.columns) == ["_step"] + keys and got["_step"].dtype == "int64"
    assert all(got[k].dtype == "float64" for k in keys)


def test_history_columns_are_writable_copies(snapshot):
    """Each call hands out its own arrays (the missing keys' NaN column is not shared)."""
    got = snapshot.history("run00001", ["a", "b"])
    got.loc[0, "a"] = 1.0
    assert np.isnan(got.loc[0, "b"]) and np.isnan(snapshot.history("run00001", ["a"]).loc[0, "a"])


def _listing(snapshot: Snapshot, path) -> Snapshot:
    """``snapshot`` with one more run, ``x``, whose history file is a copy of ``path``, listed
    in the manifest with its sha256 (as a writer of such files would list it)."""
    manifest = {**snapshot.manifest, "runs": {**snapshot.manifest["runs"], "x": {"slug": "x"}}}
    (snapshot.path / "history" / "x.parquet").write_bytes(path.read_bytes())
    manifest["files"] = {**manifest["files"], "history/x.parquet": sha256_file(path)}
    return Snapshot(snapshot.path, manifest)


def test_history_outside_the_contract_goes_through_pandas(snapshot, tmp_path):
    """A file written by pandas (its metadata keeps an index) or with an int64 metric:
    pandas converts it, as before."""
    path = tmp_path / "h.parquet"
    frame = pd.DataFrame({"_step": [0, 1], "loss": [1.0, None]}, index=pd.RangeIndex(7, 9))
    pq.write_table(pa.Table.from_pandas(frame), path)
    got = _listing(snapshot, path).history("x", ["loss", "missing"])
    pd.testing.assert_frame_equal(got, reference_history(path, ["loss", "missing"]))
    assert got.index.tolist() == [7, 8]
    pq.write_table(pa.table({"_step": [0, 1], "count": pa.array([3, None], pa.int64())}), path)
    got = _listing(snapshot, path).history("x", ["count"])
    pd.testing.assert_frame_equal(got, reference_history(path, ["count"]))
    assert got["count"].dtype == "float64" and np.isnan(got["count"].iloc[1])
