"""Known framework bugs, replayed through the oracle: each must still be found (with the
right symptom and stage) on the pinned versions; a test that starts failing means the
framework fixed the bug (drop it from docs/bugs-found.md too). Slow: torch.compile."""

from __future__ import annotations

import numpy as np
import pytest

from fuzz.backends.base import Model
from fuzz.execute import WorkerConfig, _fails_alone, _run_backend, setup
from fuzz.oracle import Outcome, expectations, judge
from fuzz.stability import reference
from generators.dtypes import DType
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType
from generators.ops import catalog

pytestmark = pytest.mark.slow
pytest.importorskip("torch")


def verdict_for(graph: Graph, arrays: tuple[np.ndarray, ...]):  # type: ignore[no-untyped-def]
    state = setup(WorkerConfig(("torch_eager", "torch_compile")))
    model = Model(graph, {}, arrays, catalog())
    outcomes: list[Outcome] = []
    for name in ("torch_eager", "torch_compile"):
        outcome = _run_backend(state.backends[name], model, lambda stage: None)
        if outcome.status == "error":
            assert _fails_alone(state.backends[name], graph, arrays, catalog(), lambda stage: None) is None
        outcomes.append(outcome)
    ref = reference(graph, arrays, catalog(), seed=0)
    return judge(outcomes, ref.outputs, ref.spread, expectations(graph, catalog()))


def test_torch_compile_rejects_max_of_abs_on_int16() -> None:
    """NNSmith's anchor bug: a C++ compile error, while each operator compiles alone."""
    t = TensorType((2, 3), DType.int16)
    graph = Graph(
        (Placeholder(t), Placeholder(t)),
        (Node("abs", (InputRef(0),), (), (t,)), Node("maximum", (InputRef(1), NodeRef(0)), (), (t,))),
        (NodeRef(1),),
    )
    a = np.array([[1, -2, 3], [-4, 5, -6]], np.int16)
    b = np.array([[0, 1, -1], [2, -3, 4]], np.int16)
    v = verdict_for(graph, (a, b))
    assert [(f.symptom, f.stage, f.backends) for f in v.findings] == [("rejection", "compile", ("torch_compile",))]


def test_torch_compile_int32_bmm_with_m_1_returns_int64() -> None:
    a_t, b_t, o_t = TensorType((6, 1, 5), DType.int32), TensorType((6, 5, 4), DType.int32), TensorType((6, 1, 4), DType.int32)
    graph = Graph((Placeholder(a_t), Placeholder(b_t)), (Node("bmm", (InputRef(0), InputRef(1)), (), (o_t,)),), (NodeRef(0),))
    rng = np.random.default_rng(0)
    a = rng.integers(-3, 3, size=a_t.shape).astype(np.int32)
    b = rng.integers(-3, 3, size=b_t.shape).astype(np.int32)
    v = verdict_for(graph, (a, b))
    assert [(f.symptom, f.backends) for f in v.findings] == [("wrong_dtype", ("torch_compile",))]
