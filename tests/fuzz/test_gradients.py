"""The gradient oracle, in-process (no sandbox): agreeing frameworks pass, a planted
gradient bug is found on the right backend, and ineligible graphs are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.execute import CaseJob, WorkerConfig, run_test, setup
from fuzz.gradients import eligible, widen_graph
from generators.dtypes import DType
from generators.graph_gen import GenOptions, generate_graph

FAULTY = str(Path(__file__).with_name("faulty_backends.py"))
SMOOTH = GenOptions(max_nodes=4, ops=("add", "mul", "tanh", "exp", "sigmoid", "matmul", "sum"), dtypes=(DType.float32, DType.float64))
pytest.importorskip("torch")
pytest.importorskip("tensorflow")


def test_torch_and_tf_gradients_agree_with_the_float64_reference() -> None:
    state = setup(WorkerConfig(("torch_eager", "tf_eager")))
    for seed in range(8):
        r = run_test(CaseJob(seed, SMOOTH, ("torch_eager", "tf_eager")), lambda stage: None, state)
        assert r.verdict is not None and r.verdict.kind == "pass", r.verdict
        assert "gradients" in r.seconds


def test_a_planted_gradient_bug_is_found_on_its_backend_only() -> None:
    state = setup(WorkerConfig(("tf_eager", f"{FAULTY}:WrongGradient")))
    found = 0
    for seed in range(6):
        r = run_test(CaseJob(seed, SMOOTH, ("tf_eager", "wrong_gradient")), lambda stage: None, state)
        assert r.verdict is not None
        if r.verdict.kind == "bug":
            found += 1
            assert {(f.symptom, f.backends) for f in r.verdict.findings} == {("wrong_gradient", ("wrong_gradient",))}
    assert found >= 4


def test_low_precision_graphs_are_left_to_the_forward_oracle() -> None:
    g16 = generate_graph(1, GenOptions(max_nodes=3, ops=("add", "tanh"), dtypes=(DType.float16,)))
    assert not eligible(g16)
    g32 = generate_graph(1, GenOptions(max_nodes=3, ops=("add", "tanh"), dtypes=(DType.float32,)))
    assert eligible(g32)
    assert all(t.dtype is DType.float64 for n in widen_graph(g32).nodes for t in n.outputs)
