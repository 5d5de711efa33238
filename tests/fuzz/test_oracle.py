"""The judge: tolerance table, NaN/Inf rules, spread masking, error consistency and the
reference-suspect rule, on hand-made outcomes (the judge is pure) and properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzz.oracle import TOLERANCE, Expected, Outcome, expectations, judge
from generators.dtypes import DType
from generators.ops import catalog

F32 = Expected(DType.float32, (4,), TOLERANCE[DType.float32])
I32 = Expected(DType.int32, (4,), None)
REF = np.array([1.0, -2.0, 0.5, 3.0])
ZERO = np.zeros(4)


def ok(name: str, *arrays: np.ndarray) -> Outcome:
    return Outcome(name, "ok", "", tuple(arrays))


def test_agreeing_backends_pass() -> None:
    out = REF.astype(np.float32)
    v = judge([ok("a", out), ok("b", out)], [REF], [ZERO], [F32])
    assert v.kind == "pass" and v.judged_elements == 8


def test_float32_rounding_passes_but_a_real_error_does_not() -> None:
    rounded = (REF * (1 + 3e-7)).astype(np.float32)
    assert judge([ok("a", rounded)], [REF], [ZERO], [F32]).kind == "pass"
    wrong = REF.astype(np.float32).copy()
    wrong[2] = 0.51
    v = judge([ok("a", wrong), ok("b", REF.astype(np.float32))], [REF], [ZERO], [F32])
    assert v.kind == "bug"
    (f,) = v.findings
    assert (f.symptom, f.backends, f.output, f.stage) == ("wrong_result", ("a",), 0, "compare")
    assert "[2]" in f.detail


def test_float16_is_looser_than_float64() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    off = x * (1 + 2e-3)
    f16 = Expected(DType.float16, (4,), TOLERANCE[DType.float16])
    f64 = Expected(DType.float64, (4,), TOLERANCE[DType.float64])
    assert judge([ok("a", off.astype(np.float16))], [x], [ZERO], [f16]).kind == "pass"
    assert judge([ok("a", off)], [x], [ZERO], [f64]).kind == "bug"


def test_integers_are_exact() -> None:
    ref = np.array([1, 2, 3, 4])
    assert judge([ok("a", ref.astype(np.int32))], [ref], [ZERO], [I32]).kind == "pass"
    v = judge(
        [ok("a", np.array([1, 2, 3, 5], np.int32)), ok("b", ref.astype(np.int32))], [ref], [ZERO], [I32]
    )
    assert v.kind == "bug" and v.findings[0].symptom == "wrong_result"


def test_unstable_elements_are_not_judged() -> None:
    # An argmax-like integer output whose reference flips under rounding noise.
    spread = np.array([0.0, np.inf, 0.0, 0.0])
    got = np.array([1, 9, 3, 4], np.int32)
    v = judge([ok("a", got)], [np.array([1, 2, 3, 4])], [spread], [I32])
    assert v.kind == "pass" and v.unstable_elements == 1
    v = judge([ok("a", got)], [np.array([1, 2, 3, 4])], [np.full(4, np.inf)], [I32])
    assert v.kind == "unstable"


def test_spread_widens_the_tolerance_where_the_reference_is_ill_conditioned() -> None:
    got = (REF + np.array([0, 0, 1e-2, 0])).astype(np.float32)
    assert judge([ok("a", got)], [REF], [ZERO], [F32]).kind == "bug"
    assert judge([ok("a", got)], [REF], [np.array([0, 0, 2e-3, 0])], [F32]).kind == "pass"


def test_nan_where_the_reference_is_finite_is_a_bug_with_its_own_symptom() -> None:
    got = REF.astype(np.float32).copy()
    got[1] = np.nan
    v = judge([ok("a", got), ok("b", REF.astype(np.float32))], [REF], [ZERO], [F32])
    assert v.kind == "bug" and v.findings[0].symptom == "nan_inf"


def test_a_non_finite_reference_is_not_a_numerical_mismatch() -> None:
    ref = np.array([1.0, np.inf, np.nan, 1e300])  # 1e300 overflows float32: inf is right
    got = np.array([1.0, 5.0, 7.0, np.inf], np.float32)
    assert judge([ok("a", got)], [ref], [ZERO], [F32]).kind == "pass"


def test_matching_infinities_agree() -> None:
    ref = np.array([1.0, np.inf, -np.inf, 2.0])
    got = np.array([1.0, np.inf, -np.inf, 2.0], np.float32)
    assert judge([ok("a", got)], [ref], [ZERO], [F32]).kind == "pass"


def test_shape_and_dtype_are_checked() -> None:
    v = judge([ok("a", np.zeros(3, np.float32))], [REF], [ZERO], [F32])
    assert v.findings[0].symptom == "wrong_shape"
    v = judge([ok("a", REF.astype(np.float64))], [REF], [ZERO], [F32])
    assert v.findings[0].symptom == "wrong_dtype"


def test_error_consistency() -> None:
    err = Outcome("b", "error", "compile", symptom="ValueError", message="rejected")
    assert judge([Outcome("a", "error", "run", symptom="E"), err], [REF], [ZERO], [F32]).kind == "rejected"
    v = judge([ok("a", REF.astype(np.float32)), err], [REF], [ZERO], [F32])
    assert v.kind == "bug"
    assert [(f.symptom, f.stage, f.backends) for f in v.findings] == [("rejection", "compile", ("b",))]


def test_unsupported_is_never_a_bug() -> None:
    unsupported = Outcome("b", "unsupported", "", message="conv2d/bfloat16: NOT_IMPLEMENTED")
    assert judge([ok("a", REF.astype(np.float32)), unsupported], [REF], [ZERO], [F32]).kind == "pass"
    assert judge([unsupported], [REF], [ZERO], [F32]).kind == "skipped"


def test_a_crash_is_a_bug_even_when_the_others_reject() -> None:
    crash = Outcome("b", "crash", "run", symptom="segfault", message="SIGSEGV")
    v = judge([Outcome("a", "error", "run", symptom="E"), crash], [REF], [ZERO], [F32])
    assert v.kind == "bug" and [(f.symptom, f.stage, f.backends) for f in v.findings] == [
        ("segfault", "run", ("b",))
    ]


def test_all_backends_agreeing_against_the_reference_blames_the_reference() -> None:
    other = (REF + 1).astype(np.float32)
    v = judge([ok("a", other), ok("b", other)], [REF], [ZERO], [F32])
    assert v.kind == "reference_suspect"
    # With one backend alone there is nobody to agree with: a plain bug.
    assert judge([ok("a", other)], [REF], [ZERO], [F32]).kind == "bug"


def test_per_operator_overrides_widen_the_tolerance_on_the_path() -> None:
    from generators.graph_gen import generate_graph

    graph = generate_graph(3)
    tols = expectations(graph, catalog())
    assert len(tols) == len(graph.outputs)
    for want, ref in zip(tols, graph.outputs):
        base = TOLERANCE.get(graph.type_of(ref).dtype)
        if base is None:
            assert want.tol is None
        else:
            assert want.tol is not None and want.tol.rtol >= base.rtol and want.tol.atol >= base.atol


def test_a_value_computed_in_float32_is_judged_at_float32_tolerance_after_a_cast_up() -> None:
    """Seen in a campaign: elu in float32, cast to float64; inductor and onnxruntime compute
    elu as exp(x) - 1, about 100 float32 ulps off near 0, which is float32-accurate."""
    from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType

    f32, f64 = TensorType((4, 1), DType.float32), TensorType((4, 1), DType.float64)
    graph = Graph(
        (Placeholder(f32),),
        (Node("elu", (InputRef(0),), (("alpha", 1.0),), (f32,)), Node("cast", (NodeRef(0),), (("to", "float64"),), (f64,))),
        (NodeRef(1),),
    )
    (want,) = expectations(graph, catalog())
    assert want.dtype is DType.float64 and want.tol is not None
    assert want.tol.rtol == TOLERANCE[DType.float32].rtol and want.tol.ulps == TOLERANCE[DType.float64].ulps
    ref = np.asarray([[-0.0012975409252590487]] * 4)
    actual = np.asarray([[-0.0012975335121154785]] * 4)
    verdict = judge([Outcome("onnxruntime", "ok", outputs=(actual,))], [ref], [np.zeros_like(ref)], [want])
    assert verdict.kind == "pass"


finite = hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-1e3, 1e3, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(finite, st.sampled_from([DType.float16, DType.float32, DType.float64]))
def test_the_reference_rounded_to_the_dtype_always_passes(ref: np.ndarray, dtype: DType) -> None:
    want = Expected(dtype, ref.shape, TOLERANCE[dtype])
    got = ref.astype(dtype.numpy())
    assert judge([ok("a", got)], [ref], [np.zeros(ref.shape)], [want]).kind == "pass"


@settings(max_examples=60, deadline=None)
@given(finite, st.floats(0.5, 100.0))
def test_a_gross_error_in_one_element_is_always_caught(ref: np.ndarray, delta: float) -> None:
    got = ref.astype(np.float32).copy()
    got.flat[0] += np.float32(delta + abs(ref.flat[0]) * 0.01)
    want = Expected(DType.float32, ref.shape, TOLERANCE[DType.float32])
    v = judge([ok("a", got), ok("b", ref.astype(np.float32))], [ref], [np.zeros(ref.shape)], [want])
    assert v.kind == "bug" and v.findings[0].backends == ("a",)
