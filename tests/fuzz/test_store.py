"""The campaign database and bug identity: WAL, exact array round trips, duplicates and
merges, message normalization."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzz.dedup import bug_key, covers, normalize_message, signature
from fuzz.oracle import Finding
from fuzz.store import CampaignStore, pack_arrays, unpack_arrays
from generators.dtypes import DType
from generators.errors import GauntletError

FINDING = {"symptom": "wrong_result", "stage": "compare", "backends": ["onnxruntime"], "output": 0, "detail": "3 of 8 differ"}


def test_database_is_in_wal_mode_and_survives_reopening(tmp_path: Path) -> None:
    with CampaignStore(tmp_path) as store:
        store.record_test(5, "abc", "pass", ["exp", "add"], 0.1, 1.0, store.start_session())
    db = sqlite3.connect(tmp_path / "campaign.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with CampaignStore(tmp_path, create=False) as store:
        assert store.done_seeds() == {5}
        assert store.op_counts() == ({"exp": 1, "add": 1}, {})


def test_opening_something_that_is_not_a_campaign_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GauntletError, match="not a campaign directory"):
        CampaignStore(tmp_path / "missing", create=False)
    (tmp_path / "campaign.db").write_text("not sqlite at all" * 100)
    with pytest.raises(GauntletError, match="not a usable campaign database"):
        CampaignStore(tmp_path)


@settings(max_examples=40, deadline=None)
@given(st.lists(hnp.arrays(st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_]),
                           hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)), max_size=4))
def test_arrays_round_trip_exactly(arrays: list[np.ndarray]) -> None:
    back = unpack_arrays(pack_arrays(arrays))
    assert len(back) == len(arrays)
    for a, b in zip(arrays, back):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_bfloat16_arrays_round_trip() -> None:
    a = np.asarray([1.5, -2.25, 3.0], np.float32).astype(DType.bfloat16.numpy())
    (b,) = unpack_arrays(pack_arrays([a]))
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(a.astype(np.float32), b.astype(np.float32))


def _add(store: CampaignStore, seed: int, ops: list[str]) -> int:
    bug = store.add_bug("k", FINDING, "m", seed, ops, ["float64"], "torch_eager", "{}", [np.zeros(2)])
    return bug.id


def test_a_bug_is_stored_before_reduction_and_duplicates_are_counted(tmp_path: Path) -> None:
    with CampaignStore(tmp_path) as store:
        first = _add(store, 1, ["hardshrink", "exp"])
        assert store.bug(first).state == "reducing" and store.bug(first).dir == f"bugs/B{first:04d}"
        store.finish_bug(first, "sig", ["hardshrink"], ["float64"], "{}", [np.zeros(1)], {"nodes_after": 1})
        store.count_duplicate(first, 7)
        assert store.bug(first).duplicates == 1 and store.bug(first).state == "reported"
        # A second candidate that reduces to the same signature is merged into the first.
        second = _add(store, 9, ["hardshrink", "add"])
        store.count_duplicate(second, 10)
        merged = store.finish_bug(second, "sig", ["hardshrink"], ["float64"], "{}", [np.zeros(1)], {})
        assert merged.id == first and merged.duplicates == 3
        assert [b.id for b in store.bugs()] == [first]
        assert sorted(seed for bug, seed in store.occurrences() if bug == first) == [1, 7, 9, 10]


def test_normalization_strips_numbers_addresses_and_paths() -> None:
    a = normalize_message("RuntimeError at 0x7ffd1234 in /usr/lib/x.so: shape [2, 3] vs 4.5e-3\nTraceback ...")
    b = normalize_message("RuntimeError at 0x1 in /opt/y/z.so: shape [7, 1] vs 12\nother")
    assert a == b
    assert "Traceback" not in a


@given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=5), st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=5))
def test_messages_that_differ_only_in_numbers_normalize_equal(xs: list[int], ys: list[int]) -> None:
    def text(v: list[int]) -> str:
        return f"expected shape {v} but got {len(v)} dims"

    if len(xs) == len(ys):
        assert normalize_message(text(xs)) == normalize_message(text(ys))


def test_signature_depends_on_the_reduced_operator_set_not_its_order() -> None:
    key = bug_key(Finding("wrong_result", "compare", ("onnxruntime",), 0, "1 of 4 element(s) outside tolerance"))
    assert signature(key, ["a", "b", "a"]) == signature(key, ["b", "a"])
    assert signature(key, ["a"]) != signature(key, ["a", "b"])
    other = bug_key(Finding("wrong_result", "compare", ("torch_compile",), 0, "2 of 9 element(s) outside tolerance"))
    assert signature(key, ["a"]) != signature(other, ["a"])


def test_a_known_bug_covers_graphs_containing_its_reduced_graph() -> None:
    assert covers(["hardshrink"], ["float64"], ["exp", "hardshrink"], ["float64", "float32"])
    assert not covers(["hardshrink"], ["float64"], ["exp", "hardshrink"], ["float32"])
    assert not covers(["hardshrink", "sum"], ["float64"], ["hardshrink"], ["float64"])
