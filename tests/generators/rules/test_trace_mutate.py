"""Traces round-trip through JSON Lines, and probing mutations are small, distinct edits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.errors import GauntletError
from generators.rules.mutate import mutations
from generators.rules.trace import Arg, Invocation, Trace, output_symbols, read_traces, symbols, write_traces

DTYPES = st.sampled_from(["float32", "float64", "int64", "bool", "complex64"])
TENSORS = st.builds(Arg.tensor, st.lists(st.integers(0, 9), max_size=4), DTYPES)
SCALARS = st.one_of(
    st.builds(lambda v: Arg("int", value=v), st.integers(-5, 20)),
    st.builds(lambda v: Arg("float", value=v), st.floats(-3, 3, allow_nan=False)),
    st.builds(lambda v: Arg("bool", value=v), st.booleans()),
    st.builds(lambda v: Arg("ints", value=tuple(v)), st.lists(st.integers(-2, 9), max_size=3)),
    st.builds(lambda v: Arg("str", value=v), st.sampled_from(["mean", "sum", "reflect"])),
    st.just(Arg("none")),
)
INVOCATIONS = st.builds(
    Invocation, st.sampled_from(["torch.add", "tf.math.reduce_sum"]),
    st.lists(st.one_of(TENSORS, SCALARS), min_size=1, max_size=4).map(tuple),
    st.dictionaries(st.sampled_from(["dim", "alpha", "stride", "keepdim"]), SCALARS, max_size=2).map(
        lambda d: tuple(d.items())),
)


@settings(max_examples=60, deadline=None)
@given(INVOCATIONS, st.booleans(), st.lists(TENSORS, max_size=2))
def test_traces_round_trip_through_json_lines(tmp_path_factory: pytest.TempPathFactory, inv: Invocation,
                                              valid: bool, outputs: list[Arg]) -> None:
    trace = Trace(inv, valid, tuple(outputs) if valid else (), "" if valid else "RuntimeError: no", "probe")
    path = tmp_path_factory.mktemp("t") / "traces.jsonl"
    write_traces(path, [trace, trace])
    assert list(read_traces(path)) == [trace, trace]


def test_symbols_name_dims_ints_and_outputs() -> None:
    inv = Invocation("torch.nn.functional.conv1d", (Arg.tensor((1, 2, 8), "float32"), Arg.tensor((3, 2, 3), "float32")),
                     (("stride", Arg("ints", value=(2,))), ("groups", Arg("int", value=1))))
    assert symbols(inv) == {"a0_s0": 1, "a0_s1": 2, "a0_s2": 8, "a1_s0": 3, "a1_s1": 2, "a1_s2": 3,
                            "groups": 1, "stride_0": 2}
    assert inv.signature() == "torch.nn.functional.conv1d(tensor3,tensor3,groups=int,stride=ints1)"
    trace = Trace(inv, True, (Arg.tensor((1, 3, 3), "float32"),))
    assert output_symbols(trace) == {"o0_s0": 1, "o0_s1": 3, "o0_s2": 3}


def test_a_malformed_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"api": "torch.add", "args": [], "kwargs": {}, "valid": true}\n{"api": 3}\n')
    with pytest.raises(GauntletError, match=r"t.jsonl:2: not a trace"):
        list(read_traces(path))


def _differences(a: Invocation, b: Invocation) -> int:
    """How many argument slots differ (a rank or dtype edit counts once per tensor it touched)."""
    return sum(x != y for (_, x), (_, y) in zip(a.named(), b.named()))


@settings(max_examples=80, deadline=None)
@given(INVOCATIONS, st.integers(0, 2**32 - 1))
def test_mutations_are_distinct_small_edits(inv: Invocation, seed: int) -> None:
    out = mutations(inv, np.random.default_rng(seed), 10)
    assert len(set(out)) == len(out) and inv not in out
    for m in out:
        assert m.api == inv.api and len(m.args) == len(inv.args) and [k for k, _ in m.kwargs] == [k for k, _ in inv.kwargs]
        changed = _differences(inv, m)
        dtype_edit = {a.dtype for _, a in m.tensors()} != {a.dtype for _, a in inv.tensors()}
        assert changed == 1 or (dtype_edit and changed >= 1)
        assert all(d <= 64 for _, a in m.tensors() for d in a.shape or ())


def test_mutations_reach_dims_ints_and_dtypes() -> None:
    inv = Invocation("torch.nn.functional.conv1d", (Arg.tensor((1, 2, 8), "float32"), Arg.tensor((3, 2, 3), "float32")),
                     (("padding", Arg("int", value=0)),))
    out = mutations(inv, np.random.default_rng(0), 40)
    kinds = set()
    for m in out:
        if m.kwargs != inv.kwargs:
            kinds.add("int")
        elif {a.dtype for _, a in m.tensors()} != {"float32"}:
            kinds.add("dtype")
        elif [a.rank for _, a in m.tensors()] != [3, 3]:
            kinds.add("rank")
        else:
            kinds.add("dim")
    assert kinds == {"int", "dtype", "rank", "dim"}
