"""The TensorFlow trace collector against real TensorFlow: docstring and signature-built
examples, canonical API names, probe runs, and recording a user's script."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as the collector does, in case TF loads here first
pytest.importorskip("tensorflow")

from generators.errors import GauntletError  # noqa: E402
from generators.rules import collect_tf, tf_docs  # noqa: E402
from generators.rules.trace import Arg, Invocation, Trace  # noqa: E402


def _shapes(traces: list[Trace]) -> list[tuple[list[tuple[int, ...] | None], list[tuple[int, ...] | None]]]:
    return [([a.shape for a in t.invocation.args], [o.shape for o in t.outputs]) for t in traces]


def test_add_doc_examples_are_valid_traces_with_right_shapes() -> None:
    traces = collect_tf.examples("tf.math.add")
    assert traces and all(t.valid and t.source == "doc:tf.math.add" for t in traces)
    assert all(t.invocation.api == "tf.math.add" for t in traces)
    shapes = _shapes(traces)
    assert ([(5,), ()], [(5,)]) in shapes  # tf.add([1, 2, 3, 4, 5], 1): the list and the scalar as tensors
    assert ([(1, 2, 1, 3), (2, 1, 3, 1)], [(2, 2, 3, 3)]) in shapes  # NumPy arrays, broadcast
    broadcast = next(t for t in traces if t.invocation.args[0].shape == (1, 2, 1, 3))
    assert broadcast.invocation.args[0].dtype == "float64" and broadcast.outputs[0].dtype == "float64"


def test_aliases_are_one_api_under_the_canonical_name() -> None:
    import tensorflow as tf

    apis = collect_tf.apis()
    assert "tf.math.add" in apis and "tf.add" not in apis
    assert "tf.math.reduce_sum" in apis and "tf.reduce_sum" not in apis
    assert "tf.linalg.matmul" in apis and "tf.matmul" not in apis
    objects = [collect_tf._resolve(tf, name) for name in apis]
    assert all(o is not None for o in objects)
    assert len({id(o) for o in objects}) == len(apis)  # no object under two names
    assert apis == sorted(apis) and len(apis) >= 250


def test_excluded_apis_are_absent_and_refused() -> None:
    excluded = collect_tf.excluded()
    for name in ("tf.nn.dropout", "tf.cond", "tf.print", "tf.while_loop", "tf.py_function",
                 "tf.image.random_flip_left_right"):
        assert name in excluded and excluded[name]
    assert not set(excluded) & set(collect_tf.apis())
    with pytest.raises(GauntletError, match="not a traced"):
        collect_tf.run(Invocation("tf.nn.dropout", (Arg.tensor((2,), "float32"),)), seed=0)
    with pytest.raises(GauntletError, match="not a traced"):
        collect_tf.run(Invocation("tf.io.write_file", (Arg("str", value="x"), Arg("str", value="y"))), 0)


def test_signature_built_calls_for_an_api_without_doc_examples() -> None:
    assert not tf_docs.doc_blocks(collect_tf._candidates()["tf.bitwise.bitwise_and"])
    traces = collect_tf.examples("tf.bitwise.bitwise_and")
    assert traces and all(t.valid and t.source == "sig:tf.bitwise.bitwise_and" for t in traces)
    for t in traces:  # float32 is refused by bitwise ops: the next dtype, int32, is used
        x, y = t.invocation.args
        assert x.dtype == y.dtype == "int32" and x.shape == y.shape == t.outputs[0].shape
    assert {len(t.invocation.args[0].shape or ()) for t in traces} == {0, 1, 2, 3, 4}


def test_run_reproduces_a_doc_example_and_records_mismatched_matmul() -> None:
    example = next(t for t in collect_tf.examples("tf.linalg.matmul") if t.valid)
    replay = collect_tf.run(example.invocation, seed=3)
    assert replay.valid and replay.source == "probe"
    assert [o.shape for o in replay.outputs] == [o.shape for o in example.outputs]
    bad = Invocation("tf.linalg.matmul", (Arg.tensor((2, 3), "float32"), Arg.tensor((4, 5), "float32")))
    trace = collect_tf.run(bad, seed=0)
    assert not trace.valid and trace.error.startswith("InvalidArgumentError: ")
    assert "Matrix size-incompatible" in trace.error and "{{function_node" not in trace.error


def test_run_keeps_attributes_and_dtypes() -> None:
    inv = Invocation("tf.math.reduce_sum", (Arg.tensor((2, 3, 4), "int64"),),
                     (("axis", Arg("ints", value=(0, 2))), ("keepdims", Arg("bool", value=True))))
    trace = collect_tf.run(inv, seed=1)
    assert trace.valid and trace.outputs == (Arg.tensor((1, 3, 1), "int64"),)
    cast = collect_tf.run(Invocation("tf.cast", (Arg.tensor((3,), "float32"),),
                                     (("dtype", Arg("dtype", value="bfloat16")),)), seed=0)
    assert cast.valid and cast.outputs == (Arg.tensor((3,), "bfloat16"),)
    huge = collect_tf.run(Invocation("tf.math.abs", (Arg.tensor((64,) * 5, "float32"),)), seed=0)
    assert not huge.valid and huge.error.startswith("Refused: a0 has more than")


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(0, 4), max_size=4).map(tuple),
       dtype=st.sampled_from(["float32", "float64", "float16", "bfloat16", "int32", "int64"]),
       seed=st.integers(0, 2**16))
def test_elementwise_run_keeps_shape_and_dtype(shape: tuple[int, ...], dtype: str, seed: int) -> None:
    inv = Invocation("tf.math.add", (Arg.tensor(shape, dtype), Arg.tensor(shape, dtype)))
    trace = collect_tf.run(inv, seed)
    assert trace.valid and trace.outputs == (Arg.tensor(shape, dtype),)


def test_call_normal_form_and_unrepresentable_arguments() -> None:
    import tensorflow as tf

    fn = collect_tf._candidates()["tf.math.reduce_sum"]
    x = tf.ones((2, 3))
    by_position = tf_docs.invocation(tf, "tf.math.reduce_sum", fn, (x, 1), {})
    by_keyword = tf_docs.invocation(tf, "tf.math.reduce_sum", fn, (x,), {"axis": 1, "name": "s"})
    assert isinstance(by_position, Invocation) and by_position == by_keyword
    assert by_position.signature() == "tf.math.reduce_sum(tensor2,axis=int)"
    # a list of tensors (concat's values) is skipped and counted, never recorded as one tensor
    collected = collect_tf.collect_examples("tf.concat")
    assert collected.skips["list of tensors"] > 0 and not collected.traces


def test_instrument_records_a_tiny_script(tmp_path: Path) -> None:
    import tensorflow as tf

    original = tf.add
    script = tmp_path / "tiny.py"
    script.write_text(
        "import sys\nimport tensorflow as tf\n"
        "x = tf.ones((2, 3))\n"
        "y = tf.add(x, x)\n"
        "z = tf.nn.relu(y)\n"
        "s = tf.reduce_sum(z, axis=int(sys.argv[1]))\n"
        "tf.math.multiply(s, 2.0)\n"
    )
    traces = collect_tf.instrument([str(script), "1"])
    by_api = {t.invocation.api: t for t in traces}
    assert {"tf.math.add", "tf.nn.relu", "tf.math.reduce_sum", "tf.math.multiply", "tf.ones"} <= set(by_api)
    assert all(t.valid and t.source == f"user:{script}" for t in traces)
    assert by_api["tf.math.reduce_sum"].outputs == (Arg.tensor((2,), "float32"),)
    assert by_api["tf.math.reduce_sum"].invocation.kwargs == (("axis", Arg("int", value=1)),)
    assert tf.add is original and tf.math.add is original  # restored


def test_instrument_keeps_traces_of_a_failing_script(tmp_path: Path) -> None:
    import tensorflow as tf

    original = tf.linalg.matmul
    script = tmp_path / "failing.py"
    script.write_text("import tensorflow as tf\n"
                      "tf.math.abs(tf.ones((3,)))\n"
                      "tf.linalg.matmul(tf.ones((2, 3)), tf.ones((4, 5)))\n")
    with pytest.raises(collect_tf.InstrumentError, match=r"raised InvalidArgumentError: .*\(5 calls recorded") as info:
        collect_tf.instrument([str(script)])
    kinds = [(t.invocation.api, t.valid) for t in info.value.traces]
    assert ("tf.math.abs", True) in kinds and ("tf.linalg.matmul", False) in kinds
    assert info.value.skips == {}
    assert tf.linalg.matmul is original and sys.argv[0] != str(script)
    exits = tmp_path / "exits.py"
    exits.write_text("import sys, tensorflow as tf\ntf.math.abs(tf.ones((1,)))\nsys.exit(0)\n")
    assert [t.invocation.api for t in collect_tf.instrument([str(exits)]) if t.invocation.api == "tf.math.abs"]
    with pytest.raises(GauntletError, match="no such script"):
        collect_tf.instrument([str(tmp_path / "missing.py")])


def test_instrument_runs_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tinymod.py").write_text(
        "import sys\nimport tensorflow as tf\n"
        "tf.nn.softmax(tf.ones((2, 5)))\n"
        "sys.exit(int(sys.argv[1]))\n")
    monkeypatch.chdir(tmp_path)
    traces = collect_tf.instrument(["-m", "tinymod", "0"])
    softmax = [t for t in traces if t.invocation.api == "tf.nn.softmax"]
    assert softmax and softmax[0].outputs == (Arg.tensor((2, 5), "float32"),)
    assert softmax[0].source == "user:tinymod"
    with pytest.raises(collect_tf.InstrumentError, match="exited with status 3") as info:
        collect_tf.instrument(["-m", "tinymod", "3"])
    assert any(t.invocation.api == "tf.nn.softmax" for t in info.value.traces)


def test_version() -> None:
    import tensorflow as tf

    assert collect_tf.version() == tf.__version__
