"""Every operator's ONNX lowering against the NumPy reference on onnxruntime, for every
dtype onnxruntime's CPU provider implements for it (the rest is reported, not failed)."""

from __future__ import annotations

import pytest

from generators.dtypes import DType
from generators.ops import catalog
from generators.spec import Missing
from tests.generators.op_cases import assert_matches, cases

OPS = sorted(catalog())
pytest.importorskip("onnxruntime")

# Wrong results of onnxruntime itself, found by Gauntlet; the lowering is right (it matches
# in every other dtype and in the ONNX reference evaluator). Strict: once fixed, drop them.
KNOWN_ONNXRUNTIME_BUGS = {
    ("hardshrink", DType.float64): "Shrink on float64 computes in float32 (onnxruntime 1.32)",
}


def run_onnx(case):  # type: ignore[no-untyped-def]
    import onnx
    import onnxruntime as ort

    from generators.materialize.onnx import feed_dict, fetched, to_onnx

    model = to_onnx(case.graph, case.feed.weights(case.graph), bfloat16_io_as_float32=True)
    onnx.checker.check_model(model, full_check=True)
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        if "NOT_IMPLEMENTED" in str(exc):
            return None
        raise
    return fetched(case.graph, session.run(None, feed_dict(case.graph, case.feed.inputs(case.graph))))


@pytest.mark.parametrize("name", OPS)
def test_onnx_matches_reference(name: str) -> None:
    spec = catalog()[name]
    if isinstance(spec.onnx, Missing):
        pytest.skip(spec.onnx.reason)
    ran = 0
    for case in cases(spec, seed=4):
        if (name, case.graph.placeholders[0].type.dtype) in KNOWN_ONNXRUNTIME_BUGS:
            continue
        actual = run_onnx(case)
        if actual is None:
            continue
        ran += 1
        assert_matches(case, actual, "onnxruntime")
    assert ran > 0, f"onnxruntime implements {name} for none of its dtypes"


@pytest.mark.parametrize(("name", "dtype"), sorted(KNOWN_ONNXRUNTIME_BUGS, key=str))
def test_known_onnxruntime_bugs_still_reproduce(name: str, dtype: DType) -> None:
    """Fails once onnxruntime fixes the bug, so the entry gets removed."""
    spec = catalog()[name]
    failures = 0
    for case in cases(spec, seed=4):
        if case.graph.placeholders[0].type.dtype is not dtype:
            continue
        try:
            assert_matches(case, run_onnx(case), "onnxruntime")
        except AssertionError:
            failures += 1
    assert failures > 0, f"{name}/{dtype.value} now matches: {KNOWN_ONNXRUNTIME_BUGS[(name, dtype)]} seems fixed"
