"""Bug directories: every generated repro.py is run for real, in a subprocess started
elsewhere, against a true reference (exit 0, "not reproduced") and a planted or real bug
(exit 1, or the crash itself). Planted bugs are test-local lowerings copied into the script."""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.gradients import cotangents_for
from fuzz.oracle import TOLERANCE, Finding
from fuzz.repro import _MISMATCH, BugCase, standalone_backends, write_bug_dir
from generators.dtypes import DType
from generators.errors import GauntletError
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, validate
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs
from generators.spec import Call, OpSpec

ALLOWED_IMPORTS = {"__future__", "math", "os", "sys", "traceback", "numpy", "torch", "torch._inductor.config",
                   "tensorflow", "onnxruntime"}


# --- planted bugs: lowerings a framework could have gotten wrong ---------------------------------


def planted_softmax_bad_dim(torch: Any, inputs: list[Any], attrs: Any) -> Any:
    return torch.softmax(inputs[0], dim=attrs["axis"] + 5)  # torch raises IndexError


def planted_sum_keeps_dims(torch: Any, inputs: list[Any], attrs: Any) -> Any:
    return torch.sum(inputs[0], dim=tuple(attrs["axes"]), keepdim=True)


def planted_sum_in_float64(torch: Any, inputs: list[Any], attrs: Any) -> Any:
    return torch.sum(inputs[0].double(), dim=tuple(attrs["axes"]), keepdim=attrs["keepdims"])


def planted_exp_detached_below_float64(torch: Any, inputs: list[Any], attrs: Any) -> Any:
    x = inputs[0]
    if x.dtype == torch.float64:
        return torch.exp(x)
    return torch.exp(x).detach() + x - x.detach()  # right value, gradient 1 instead of exp(x)


def with_torch(name: str, lowering: Any) -> dict[str, OpSpec]:
    return {**catalog(), name: dataclasses.replace(catalog()[name], torch=lowering)}


# --- helpers ---------------------------------------------------------------------------------------


def version(backend: str) -> dict[str, str]:
    """What the backend's version() says, read from package metadata (no framework import)."""
    package = "torch" if backend.startswith("torch") else "tensorflow" if backend.startswith("tf") else "onnxruntime"
    for distribution in (package, f"{package}-cpu"):
        try:
            return {backend: f"{package}-{metadata.version(distribution)}"}
        except metadata.PackageNotFoundError:
            continue
    return {backend: f"{package}-unknown"}


def case_for(graph: Graph, arrays: Sequence[np.ndarray], finding: Finding, **kw: Any) -> BugCase:
    fields: dict[str, Any] = {"reference": None, "allowed": None, "versions": version(finding.backends[0]), "seed": 42}
    fields.update(kw)
    return BugCase(graph, tuple(arrays), finding, **fields)


def run_repro(directory: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, str(directory / "repro.py")], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def reference_of(graph: Graph, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return graph_outputs(graph, evaluate(graph, arrays, catalog(), wide=True) or [], [np.asarray(a) for a in arrays])


def tolerance(expected: np.ndarray, dtype: DType) -> np.ndarray:
    tol = TOLERANCE[dtype]
    return np.asarray(2 * (tol.atol + tol.rtol * np.abs(expected)))


def add_softmax(dtype: DType) -> tuple[Graph, tuple[np.ndarray, ...]]:
    """softmax(x + w, axis=1) and x + w: two outputs, a weight, three elements a row."""
    t = TensorType((2, 3), dtype)
    graph = Graph(
        (Placeholder(t), Placeholder(t, "weight")),
        (Node("add", (InputRef(0), InputRef(1)), (), (t,)), Node("softmax", (NodeRef(0),), (("axis", 1),), (t,))),
        (NodeRef(1), NodeRef(0)),
    )
    validate(graph, catalog())
    rng = np.random.default_rng(1)
    return graph, tuple(rng.uniform(-2, 2, t.shape).astype(dtype.numpy()) for _ in range(2))


def assert_standalone(directory: Path) -> None:
    tree = ast.parse((directory / "repro.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    for path in directory.glob("*.npy"):
        np.load(path, allow_pickle=False)


# --- forward comparisons on every CPU backend ------------------------------------------------------

COMPARE = [
    ("torch_eager", DType.bfloat16),
    ("tf_eager", DType.float16),
    ("onnxruntime", DType.float32),
    pytest.param("torch_compile", DType.float32, marks=pytest.mark.slow),
    pytest.param("tf_xla", DType.float32, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("backend", "dtype"), COMPARE)
def test_wrong_result_reproducer_judges_against_the_reference(backend: str, dtype: DType, tmp_path: Path) -> None:
    graph, arrays = add_softmax(dtype)
    ref = reference_of(graph, arrays)
    # onnxruntime gets no explicit tolerance: the oracle's dtype table is the default.
    allowed = None if backend == "onnxruntime" else tuple(tolerance(e, dtype) for e in ref)
    finding = Finding("wrong_result", "compare", (backend,), 0, "6 of 6 element(s) outside tolerance; worst at [0, 2]")
    good, planted = tmp_path / "good", tmp_path / "planted"
    write_bug_dir(good, case_for(graph, arrays, finding, reference=tuple(ref), allowed=allowed), catalog())
    wrong = (ref[0] + 1.0, ref[1])
    write_bug_dir(planted, case_for(graph, arrays, finding, reference=wrong, allowed=allowed), catalog())

    ok = run_repro(good, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "not reproduced" in ok.stdout
    bad = run_repro(planted, tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "output 0: 6 of 6 judged element(s) outside tolerance; worst at" in bad.stdout
    assert "reproduced: wrong_result" in bad.stdout

    assert_standalone(planted)
    names = {p.name for p in planted.iterdir()}
    assert {"graph.json", "p0.npy", "p1.npy", "expected_0.npy", "allowed_0.npy", "repro.py", "issue.md"} <= names
    assert "expected_1.npy" not in names  # only the finding's output is judged
    assert ("model.onnx" in names) == (backend == "onnxruntime")
    assert np.load(planted / "p0.npy", allow_pickle=False).dtype == (np.float32 if dtype is DType.bfloat16 else dtype.numpy())
    issue = (planted / "issue.md").read_text()
    assert version(backend)[backend] in issue
    assert (planted / "repro.py").read_text().strip() in issue
    assert "6 of 6 element(s) outside tolerance" in issue and "Expected output 0 (float64 reference, in expected_0.npy): `[[" in issue
    assert "`softmax`" in issue.splitlines()[0] and "seed 42" in issue
    assert f"`p0.npy`: {dtype.value}[2, 3] (input) = `np.array(" in issue  # six elements: inlined


def test_nan_in_a_judged_element_reproduces(tmp_path: Path) -> None:
    """nan_inf: a NaN is never within tolerance where the element is judged (and is ignored
    where it is not)."""
    t = TensorType((3,), DType.float32)
    graph = Graph((Placeholder(t),), (Node("log", (InputRef(0),), (), (t,)),), (NodeRef(0),))
    x = np.array([-1.0, 1.0, 2.0], np.float32)  # log(-1) is NaN on every framework
    finding = Finding("nan_inf", "compare", ("onnxruntime",), 0, "1 non-finite element(s)")
    judged = np.array([0.0, 0.0, np.log(2.0)])
    write_bug_dir(tmp_path / "a", case_for(graph, [x], finding, reference=(judged,), allowed=(np.full(3, 1e-3),)), catalog())
    result = run_repro(tmp_path / "a", tmp_path)
    assert result.returncode == 1 and "1 of 3 judged element(s) outside tolerance; worst at [0]: actual nan" in result.stdout
    unjudged = (np.array([np.inf, 1e-3, 1e-3]),)
    write_bug_dir(tmp_path / "b", case_for(graph, [x], finding, reference=(judged,), allowed=unjudged), catalog())
    assert run_repro(tmp_path / "b", tmp_path).returncode == 0


# --- crashes, rejections, wrong shapes and dtypes ---------------------------------------------------


def conv_graph() -> tuple[Graph, tuple[np.ndarray, ...]]:
    """The torch 2.13 CPU float16 conv2d segfault: kernel extent 1, dilation 2, stride 2, padding."""
    x_t, w_t = TensorType((1, 6, 1, 1), DType.float16), TensorType((1, 6, 1, 1), DType.float16)
    attrs = (("dilation", (1, 2)), ("groups", 1), ("pads", (2, 1)), ("same", False), ("stride", (2, 2)))
    node = Node("conv2d", (InputRef(0), InputRef(1)), attrs, (TensorType((1, 1, 3, 2), DType.float16),))
    return Graph((Placeholder(x_t), Placeholder(w_t, "weight")), (node,), (NodeRef(0),)), (np.ones(x_t.shape, np.float16),) * 2


def test_a_real_segfault_kills_the_reproducer(tmp_path: Path) -> None:
    graph, arrays = conv_graph()
    finding = Finding("segfault", "run", ("torch_eager",), None, "Fatal Python error: Segmentation fault")
    # Gauntlet's own conv lowering pins the dilation of extent-1 kernels to 1 (the workaround);
    # the bare torch call is what crashes.
    bare = Call("torch.nn.functional.conv2d", (("stride", "stride"), ("padding", "pads"), ("dilation", "dilation"), ("groups", "groups")))
    write_bug_dir(tmp_path / "bare", case_for(graph, arrays, finding), with_torch("conv2d", bare))
    crashed = run_repro(tmp_path / "bare", tmp_path)
    assert crashed.returncode == -signal.SIGSEGV, crashed.stdout + crashed.stderr
    assert "conv2d(p0, p1, stride=(2, 2), padding=(2, 1), dilation=(1, 2), groups=1)" in (tmp_path / "bare" / "repro.py").read_text()
    assert "segmentation fault" in (tmp_path / "bare" / "issue.md").read_text().splitlines()[0]

    write_bug_dir(tmp_path / "workaround", case_for(graph, arrays, finding), catalog())
    survived = run_repro(tmp_path / "workaround", tmp_path)
    assert survived.returncode == 0 and "not reproduced: ran to completion" in survived.stdout


def test_rejection_reproducer_exits_1_with_the_exception(tmp_path: Path) -> None:
    graph, arrays = add_softmax(DType.float32)
    finding = Finding("rejection", "run", ("torch_eager",), None, "IndexError: Dimension out of range")
    write_bug_dir(tmp_path / "bug", case_for(graph, arrays, finding), with_torch("softmax", planted_softmax_bad_dim))
    bad = run_repro(tmp_path / "bug", tmp_path)
    assert bad.returncode == 1 and "IndexError" in bad.stderr and "reproduced: rejection on torch_eager" in bad.stdout
    assert "def planted_softmax_bad_dim(torch" in (tmp_path / "bug" / "repro.py").read_text()
    write_bug_dir(tmp_path / "fine", case_for(graph, arrays, finding), catalog())
    ok = run_repro(tmp_path / "fine", tmp_path)
    assert ok.returncode == 0 and "not reproduced: ran without an exception" in ok.stdout


def sum_graph() -> tuple[Graph, tuple[np.ndarray, ...]]:
    t = TensorType((2, 3), DType.float32)
    node = Node("sum", (InputRef(0),), (("axes", (1,)), ("keepdims", False)), (TensorType((2,), DType.float32),))
    graph = Graph((Placeholder(t),), (node,), (NodeRef(0),))
    validate(graph, catalog())
    return graph, (np.arange(6, dtype=np.float32).reshape(2, 3),)


@pytest.mark.parametrize(
    ("symptom", "planted", "message"),
    [
        ("wrong_shape", planted_sum_keeps_dims, "output 0: shape [2, 1], expected [2]"),
        ("wrong_dtype", planted_sum_in_float64, "output 0: dtype float64, expected float32"),
    ],
)
def test_shape_and_dtype_reproducers(symptom: str, planted: Any, message: str, tmp_path: Path) -> None:
    graph, arrays = sum_graph()
    finding = Finding(symptom, "compare", ("torch_eager",), 0, message)
    write_bug_dir(tmp_path / "bug", case_for(graph, arrays, finding), with_torch("sum", planted))
    bad = run_repro(tmp_path / "bug", tmp_path)
    assert bad.returncode == 1 and message in bad.stdout, bad.stdout + bad.stderr
    assert "Expected: output 0 is float32[2] (as the graph declares)" in (tmp_path / "bug" / "issue.md").read_text()
    write_bug_dir(tmp_path / "fine", case_for(graph, arrays, finding), catalog())
    ok = run_repro(tmp_path / "fine", tmp_path)
    assert ok.returncode == 0 and "not reproduced" in ok.stdout, ok.stdout + ok.stderr


# --- gradients ---------------------------------------------------------------------------------------


def exp_case(backend: str) -> BugCase:
    t = TensorType((2, 3), DType.float32)
    graph = Graph((Placeholder(t),), (Node("exp", (InputRef(0),), (), (t,)),), (NodeRef(0),))
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, t.shape).astype(np.float32)
    cotangent = rng.uniform(-1, 1, t.shape).astype(np.float32)
    finding = Finding("wrong_gradient", "compare", (backend,), None, "gradient w.r.t. input placeholder 0: 6 of 6 element(s) outside tolerance")
    return case_for(graph, [x], finding, cotangents=(cotangent,))


def test_gradient_reproducer_torch(tmp_path: Path) -> None:
    case = exp_case("torch_eager")
    write_bug_dir(tmp_path / "bug", case, with_torch("exp", planted_exp_detached_below_float64))
    bad = run_repro(tmp_path / "bug", tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "gradient w.r.t. p0: 6 of 6 judged element(s) outside tolerance" in bad.stdout
    assert np.array_equal(np.load(tmp_path / "bug" / "cotangent_0.npy", allow_pickle=False), case.cotangents[0])  # type: ignore[index]
    write_bug_dir(tmp_path / "fine", case, catalog())
    ok = run_repro(tmp_path / "fine", tmp_path)
    assert ok.returncode == 0 and "not reproduced: every gradient agrees" in ok.stdout, ok.stdout + ok.stderr


def test_gradient_reproducer_tf_agrees_on_a_correct_gradient(tmp_path: Path) -> None:
    """Without cotangents, the bug directory gets the gradient oracle's own for the seed."""
    case = dataclasses.replace(exp_case("tf_eager"), cotangents=None)
    write_bug_dir(tmp_path, case, catalog())
    assert np.array_equal(np.load(tmp_path / "cotangent_0.npy", allow_pickle=False), cotangents_for(case.graph, 42)[0])
    ok = run_repro(tmp_path, tmp_path)
    assert ok.returncode == 0 and "gradient w.r.t. p0: all 6 judged element(s) within tolerance" in ok.stdout, ok.stdout + ok.stderr


# --- real torch.compile bugs (tests/fuzz/test_known_bugs.py) -------------------------------------------


@pytest.mark.slow
def test_real_torch_compile_bugs_reproduce(tmp_path: Path) -> None:
    o_t = TensorType((6, 1, 4), DType.int32)
    bmm = Graph(
        (Placeholder(TensorType((6, 1, 5), DType.int32)), Placeholder(TensorType((6, 5, 4), DType.int32))),
        (Node("bmm", (InputRef(0), InputRef(1)), (), (o_t,)),), (NodeRef(0),),
    )
    rng = np.random.default_rng(0)
    arrays = (rng.integers(-3, 3, (6, 1, 5)).astype(np.int32), rng.integers(-3, 3, (6, 5, 4)).astype(np.int32))
    finding = Finding("wrong_dtype", "compare", ("torch_compile",), 0, "dtype int64, expected int32")
    write_bug_dir(tmp_path / "bmm", case_for(bmm, arrays, finding), catalog())
    result = run_repro(tmp_path / "bmm", tmp_path)
    assert result.returncode == 1 and "output 0: dtype int64, expected int32" in result.stdout, result.stdout + result.stderr

    t = TensorType((2, 3), DType.int16)
    absmax = Graph(
        (Placeholder(t), Placeholder(t)),
        (Node("abs", (InputRef(0),), (), (t,)), Node("maximum", (InputRef(1), NodeRef(0)), (), (t,))), (NodeRef(1),),
    )
    arrays = (np.array([[1, -2, 3], [-4, 5, -6]], np.int16), np.array([[0, 1, -1], [2, -3, 4]], np.int16))
    finding = Finding("rejection", "compile", ("torch_compile",), None, "CppCompileError")
    write_bug_dir(tmp_path / "absmax", case_for(absmax, arrays, finding), catalog())
    result = run_repro(tmp_path / "absmax", tmp_path)
    assert result.returncode == 1 and "reproduced: rejection on torch_compile" in result.stdout, result.stdout + result.stderr


# --- what cannot be written, and the script's judging rule -------------------------------------------


def test_unwritable_cases_raise_before_writing(tmp_path: Path) -> None:
    graph, arrays = add_softmax(DType.float32)
    assert "torch_compile" in standalone_backends() and "torch_export" not in standalone_backends()
    cases = [
        case_for(graph, arrays, Finding("wrong_result", "compare", ("torch_export",), 0), versions={}),
        case_for(graph, arrays, Finding("wrong_result", "compare", ("torch_eager",), 0)),  # no reference
        case_for(graph, arrays, Finding("wrong_gradient", "compare", ("tf_eager",), None), cotangents=arrays[:1]),
        case_for(graph, arrays, Finding("wrong_gradient", "compare", ("tf_xla",), None), cotangents=arrays[:1]),
        case_for(graph, arrays, Finding("wrong_shape", "compare", ("tf_eager",), 2)),
    ]
    messages = ["no standalone reproducer for backend torch_export", "needs the reference", "one cotangent per graph output",
                "does not take part in the gradient oracle", "names output 2; the graph has 2"]
    for case, message in zip(cases, messages):
        with pytest.raises(GauntletError, match=message):
            write_bug_dir(tmp_path / "never", case, catalog())
        assert not (tmp_path / "never").exists()


@functools.cache
def _mismatch() -> Any:
    """The scripts' `mismatch` function, imported from its text as written into repro.py."""
    path = Path(tempfile.mkdtemp()) / "repro_mismatch.py"
    path.write_text("import numpy as np\n" + _MISMATCH)
    spec = importlib.util.spec_from_file_location("repro_mismatch", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.mismatch


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(finite, st.just(float("nan"))), finite, st.one_of(st.floats(0, 10), st.just(float("inf")))), min_size=1, max_size=8))
def test_script_judging_rule(rows: list[tuple[float, float, float]]) -> None:
    """bad = isfinite(allowed) & ~(|a - e| <= allowed): NaN is bad where judged, ignored where not."""
    a, e, allowed = (np.array(col) for col in zip(*rows))
    want = any(np.isfinite(al) and not abs(x - y) <= al for x, y, al in rows)
    assert _mismatch()("output 0", a, e, allowed) is want


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([DType.float16, DType.bfloat16, DType.float32, DType.int8, DType.bool]), st.lists(st.integers(1, 3), max_size=3), st.integers(0, 2**31))
def test_inputs_round_trip_exactly(dtype: DType, shape: list[int], seed: int) -> None:
    """p{i}.npy holds each placeholder exactly (bfloat16 as float32), loadable without pickle."""
    t = TensorType(tuple(shape), dtype)
    graph = Graph((Placeholder(t),), (Node("abs", (InputRef(0),), (), (t,)),), (NodeRef(0),)) if dtype is not DType.bool else \
        Graph((Placeholder(t),), (Node("logical_not", (InputRef(0),), (), (t,)),), (NodeRef(0),))
    x = np.random.default_rng(seed).uniform(-100, 100, t.shape).astype(dtype.numpy())
    with tempfile.TemporaryDirectory() as d:
        write_bug_dir(Path(d), case_for(graph, [x], Finding("abort", "run", ("tf_eager",))), catalog())
        back = np.load(Path(d) / "p0.npy", allow_pickle=False)
        assert back.dtype == (np.float32 if dtype is DType.bfloat16 else x.dtype)
        assert np.array_equal(back.astype(x.dtype), x)
        assert_standalone(Path(d))
