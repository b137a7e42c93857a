"""An unchanged re-fetch is told from a digest of the listing, before pandas is imported.

The digest (``snapshot.listing_sha256``) must change whenever the run table a full write
would give changes: otherwise an edit made on W&B (a tag, a config value, a summary) without
a new heartbeat would be missed. Property-tested against ``run_table_bytes``."""

import copy
import json
import math
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from altgrad_docs import fetch as fetch_module
from altgrad_docs.fetch import fetch_project
from altgrad_docs.snapshot import LISTING_KEY, MANIFEST, listing_sha256, run_table_bytes
from benchmarks.synthetic import synthetic_records
from tests.conftest import wandb_env
from tests.fake_wandb import ENTITY

PROJECT = f"{ENTITY}/altgrad"

FETCH_AND_REPORT_IMPORTS = """
import sys
from altgrad_docs.cli import main
code = main(["fetch", "--project", sys.argv[1], "--out", sys.argv[2]])
print(code, [m for m in ("pandas", "pyarrow") if m in sys.modules])
"""


def _records(n=3, seed=0):
    return list(synthetic_records(n, 20, 8, np.random.default_rng(seed), entity=ENTITY))


def _fetch_in_a_process(env, out):
    done = subprocess.run([sys.executable, "-c", FETCH_AND_REPORT_IMPORTS, PROJECT, str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_unchanged_refetch_imports_neither_pandas_nor_pyarrow(fake_wandb, tmp_path):
    records = _records()
    server = fake_wandb(records)
    env = wandb_env(tmp_path / "w", server.url)
    out = tmp_path / "snap"
    assert _fetch_in_a_process(env, out)[-1] == "0 ['pandas', 'pyarrow']"  # a full fetch needs both
    again = _fetch_in_a_process(env, out)
    assert again[0].startswith("nothing changed: 3 runs reused") and again[-1] == "0 []", again
    records[1].config["learning_rate"] = 0.5  # edited on W&B after the run ended: same heartbeat
    server.set_runs(records)
    edited = _fetch_in_a_process(env, out)
    assert edited[0].startswith("wrote ") and edited[-1] == "0 ['pandas', 'pyarrow']", edited


def test_the_digest_decides_without_building_the_run_table(live_wandb, tmp_path, monkeypatch):
    records = _records(seed=1)
    live_wandb.set_runs(records)
    first = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert len(first.snapshot.manifest[LISTING_KEY]) == 64
    built = []
    real = fetch_module.run_table_bytes
    monkeypatch.setattr(fetch_module, "run_table_bytes", lambda recs: built.append(1) or real(recs))
    again = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert (again.changed, again.reused, built) == (False, 3, [])
    # a snapshot from before the digest (none in its manifest): the full check, then the digest kept
    manifest_path = tmp_path / "snap" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    del manifest[LISTING_KEY]
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    old = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert (old.changed, built) == (False, [1]) and old.snapshot.manifest[LISTING_KEY] == first.snapshot.manifest[LISTING_KEY]
    assert fetch_project(PROJECT, tmp_path / "snap", progress=False).changed is False and built == [1]
    # a summary edited without a new heartbeat: the digest differs, the table is rebuilt
    records[0].summary["loss"] = 9.0
    live_wandb.set_runs(records)
    edited = fetch_project(PROJECT, tmp_path / "snap", progress=False)
    assert edited.changed and edited.fetched == 0 and built == [1, 1]
    assert edited.snapshot.runs().set_index("run_id").loc[records[0].run_id, "final_loss"] == 9.0


# ---- the digest against the run table ------------------------------------------------------
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.0, 0.5, math.nan, math.inf]),
    st.sampled_from(["NaN", "nan", "inf", "1", "E5M2", "FP8_E4M3", "true", "false", ""]),
)
KEYS = st.sampled_from(["loss", "best_loss", "_step", "seed", "use_fp8", "fp8_format",
                        "use_manifold_aware", "learning_rate", "quantization/bit_stall_rate", "x"])
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(KEYS, inner, max_size=2),
                      max_leaves=4)
EDITS = st.tuples(st.sampled_from(["meta", "config", "summary"]), KEYS, VALUES, st.booleans())


def _edited(records, edits):
    out = copy.deepcopy(records)
    for index, (part, key, value, reorder) in edits:
        record = out[index % len(out)]
        target = getattr(record, part)
        if part == "meta" and key not in ("tags", "name", "state", "group", "url"):
            key = "name"
        target[key] = value
        if reorder:  # the same content in another key order
            setattr(record, part, dict(reversed(list(target.items()))))
    return out


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), EDITS), min_size=1, max_size=3))
def test_a_different_run_table_always_has_a_different_digest(edits):
    records = _records(n=3, seed=7)
    edited = _edited(records, edits)
    assert listing_sha256(copy.deepcopy(records)) == listing_sha256(records)  # deterministic
    if run_table_bytes(edited) != run_table_bytes(records):
        assert listing_sha256(edited) != listing_sha256(records)


def test_the_digest_counts_order_type_and_spelling():
    records = _records(n=2, seed=3)
    base = listing_sha256(records)
    swapped = listing_sha256(records[::-1])
    as_float = copy.deepcopy(records)
    as_float[0].config["seed"] = float(as_float[0].config.get("seed", 42))
    spelled = copy.deepcopy(records)
    spelled[0].summary["loss"] = "NaN"
    one, one_float = copy.deepcopy(records), copy.deepcopy(records)
    one[0].summary["loss"], one_float[0].summary["loss"] = 1, 1.0
    odd = copy.deepcopy(records)
    odd[0].config["x"] = object()
    assert math.isnan(records[0].summary["loss"])  # spelled: NaN against "NaN"
    digests = {base, swapped, *(listing_sha256(r) for r in (as_float, spelled, one, one_float))}
    assert len(digests) == 6
    assert listing_sha256(odd) != listing_sha256(records) and listing_sha256(odd).startswith(tuple("0123456789abcdef"))
