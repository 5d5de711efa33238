"""Every operator's ONNX lowering against the NumPy reference on onnxruntime, for every
dtype onnxruntime's CPU provider implements for it (the rest is reported, not failed)."""

from __future__ import annotations

import pytest

from generators.ops import catalog
from generators.spec import Missing
from tests.generators.op_cases import assert_matches, cases

OPS = sorted(catalog())
pytest.importorskip("onnxruntime")


def run_onnx(case):  # type: ignore[no-untyped-def]
    import onnx
    import onnxruntime as ort

    from generators.materialize.onnx import feed_dict, to_onnx

    model = to_onnx(case.graph, case.feed.weights(case.graph))
    onnx.checker.check_model(model, full_check=True)
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        if "NOT_IMPLEMENTED" in str(exc):
            return None
        raise
    return session.run(None, feed_dict(case.graph, case.feed.inputs(case.graph)))


@pytest.mark.parametrize("name", OPS)
def test_onnx_matches_reference(name: str) -> None:
    spec = catalog()[name]
    if isinstance(spec.onnx, Missing):
        pytest.skip(spec.onnx.reason)
    ran = 0
    for case in cases(spec, seed=4):
        actual = run_onnx(case)
        if actual is None:
            continue
        ran += 1
        assert_matches(case, actual, "onnxruntime")
    assert ran > 0, f"onnxruntime implements {name} for none of its dtypes"
