"""Rule inference recovers known rules from traces made by running the rule forward on
random shapes; calls generated from the inferred rules are accepted by the ground truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from generators.rules.expr import parse, parse_compare
from generators.rules.infer import analyze_api, infer_all, infer_api
from generators.rules.store import SignatureRule
from generators.rules.trace import Arg, Invocation, Trace, symbols

# Ground truths: an invocation -> its output shapes, or None when the call is invalid.
Truth = Callable[[Invocation], "list[tuple[int, ...]] | None"]


def matmul_truth(inv: Invocation) -> list[tuple[int, ...]] | None:
    (n, k1), (k2, m) = inv.args[0].shape, inv.args[1].shape  # type: ignore[misc]
    return [(n, m)] if k1 == k2 else None


def conv1d_truth(inv: Invocation) -> list[tuple[int, ...]] | None:
    (n, c, length), (o, c2, k) = inv.args[0].shape, inv.args[1].shape  # type: ignore[misc]
    kw = dict(inv.kwargs)
    stride, padding = kw["stride"].value, kw["padding"].value
    if c != c2 or stride < 1 or padding < 0 or length + 2 * padding < k:  # type: ignore[operator]
        return None
    return [(n, o, (length + 2 * padding - k) // stride + 1)]  # type: ignore[operator]


def add_truth(inv: Invocation) -> list[tuple[int, ...]] | None:
    a, b = inv.args[0].shape, inv.args[1].shape
    return [a] if a == b else None  # type: ignore[list-item]


def run(api: str, inv: Invocation, truth: Truth, dtype: str = "float32", source: str = "probe") -> Trace:
    shapes = truth(inv)
    if shapes is None:
        return Trace(inv, False, error="RuntimeError: shape mismatch", source=source)
    return Trace(inv, True, tuple(Arg.tensor(s, dtype) for s in shapes), source=source)


def matmul_call(rng: np.random.Generator, valid: bool) -> Invocation:
    n, k, m = (int(v) for v in rng.integers(1, 12, 3))
    k2 = k if valid else k + int(rng.integers(1, 4))
    return Invocation("torch.matmul", (Arg.tensor((n, k), "float32"), Arg.tensor((k2, m), "float32")))


def conv_call(rng: np.random.Generator, valid: bool) -> Invocation:
    n, c, o = (int(v) for v in rng.integers(1, 6, 3))
    k, stride, padding = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
    length = int(rng.integers(k, 40))
    c2 = c if valid else c + int(rng.integers(1, 3))
    return Invocation("torch.nn.functional.conv1d", (Arg.tensor((n, c, length), "float32"),
                                                     Arg.tensor((o, c2, k), "float32")),
                      (("padding", Arg("int", value=padding)), ("stride", Arg("int", value=stride))))


def traces_of(api: str, make: Callable[[np.random.Generator, bool], Invocation], truth: Truth, count: int,
              seed: int = 0) -> list[Trace]:
    rng = np.random.default_rng(seed)
    return [run(api, make(rng, i % 2 == 0), truth) for i in range(count)]


def generated_calls(rule: SignatureRule, template: Invocation, rng: np.random.Generator,
                    count: int) -> list[tuple[Invocation, list[tuple[int, ...]]]]:
    """Calls sampled from a rule the way a generator would (symbols in their ranges, the
    requires holding), each with the output shapes the rule predicts."""
    requires = [parse_compare(r) for r in rule.requires]
    outputs = [[parse(e) for e in shape] for shape, _ in rule.outputs]
    out: list[tuple[Invocation, list[tuple[int, ...]]]] = []
    while len(out) < count:
        env = {n: int(rng.integers(lo, hi + 1)) for n, (lo, hi) in rule.ranges.items()}
        if not all(r.evaluate(env) for r in requires):
            continue
        predicted = [tuple(int(e.evaluate(env)) for e in shape) for shape in outputs]  # type: ignore[call-overload]
        if any(d < 1 for s in predicted for d in s):
            continue
        args = tuple(Arg.tensor([env[f"a{i}_s{j}"] for j in range(a.rank)], "float32")
                     for i, a in enumerate(template.args))
        kwargs = tuple((k, Arg("int", value=env[k])) for k, _ in template.kwargs)
        out.append((Invocation(template.api, args, kwargs), predicted))
    return out


def precision(rule: SignatureRule, template: Invocation, truth: Truth, count: int = 200) -> float:
    calls = generated_calls(rule, template, np.random.default_rng(7), count)
    return sum(1 for inv, predicted in calls if truth(inv) == predicted) / count


def test_matmul_rule_and_its_requires_from_invalid_traces() -> None:
    traces = traces_of("torch.matmul", matmul_call, matmul_truth, 60)
    rules = infer_api("torch.matmul", traces, budget_s=10)
    assert rules is not None and rules.framework == "torch" and rules.api == "torch.matmul"
    (rule,) = rules.rules
    assert rule.signature == "torch.matmul(tensor2,tensor2)"
    assert rule.outputs == ((("a0_s0", "a1_s1"), "a0"),)
    assert "a0_s1 == a1_s0" in rule.requires
    assert rule.traces == {"valid": 30, "invalid": 30}
    assert rule.dtypes == (("float32", "float32"),)
    assert rules.provenance == {"probe": 60}
    assert precision(rule, traces[0].invocation, matmul_truth) >= 0.95


def test_conv1d_window_rule() -> None:
    traces = traces_of("torch.nn.functional.conv1d", conv_call, conv1d_truth, 120)
    inference = analyze_api("torch.nn.functional.conv1d", traces, budget_s=20)
    assert inference.rules is not None, inference.skipped
    (rule,) = inference.rules.rules
    (shape, dtype), = rule.outputs
    assert shape[:2] == ("a0_s0", "a1_s0") and dtype == "a0"
    # Equivalent to the true rule on calls never traced (the text may differ in form).
    truth = parse("(a0_s2 + 2 * padding - a1_s2) // stride + 1")
    found = parse(shape[2])
    rng = np.random.default_rng(3)
    for _ in range(300):
        env = {"a0_s2": int(rng.integers(6, 40)), "a1_s2": int(rng.integers(1, 6)),
               "padding": int(rng.integers(0, 3)), "stride": int(rng.integers(1, 4))}
        assert found.evaluate(env) == truth.evaluate(env), shape[2]
    assert "a0_s1 == a1_s1" in rule.requires
    assert "0 < stride" in rule.requires or rule.ranges["stride"][0] >= 1
    assert precision(rule, traces[0].invocation, conv1d_truth) >= 0.95


def test_add_with_equal_shapes_learns_the_equalities() -> None:
    def call(rng: np.random.Generator, valid: bool) -> Invocation:
        shape = tuple(int(v) for v in rng.integers(2, 9, 2))
        other = shape if valid else (shape[0], shape[1] + 1)
        return Invocation("torch.add", (Arg.tensor(shape, "float32"), Arg.tensor(other, "float32")))

    traces = traces_of("torch.add", call, add_truth, 40)
    rules = infer_api("torch.add", traces)
    assert rules is not None
    (rule,) = rules.rules
    assert rule.outputs == ((("a0_s0", "a0_s1"), "a0"),)
    assert {"a0_s0 == a1_s0", "a0_s1 == a1_s1"} <= set(rule.requires)
    assert precision(rule, traces[0].invocation, add_truth) >= 0.95


def test_fixed_output_dtype_and_signatures_apart() -> None:
    traces = []
    rng = np.random.default_rng(1)
    for rank in (1, 2):
        for _ in range(6):
            shape = tuple(int(v) for v in rng.integers(1, 6, rank))
            inv = Invocation("torch.isnan", (Arg.tensor(shape, "float32"),))
            traces.append(Trace(inv, True, (Arg.tensor(shape, "bool"),), source="opinfo:isnan"))
    rules = infer_api("torch.isnan", traces)
    assert rules is not None
    assert [r.signature for r in rules.rules] == ["torch.isnan(tensor1)", "torch.isnan(tensor2)"]
    assert [r.outputs for r in rules.rules] == [((("a0_s0",), "bool"),), ((("a0_s0", "a0_s1"), "bool"),)]


def test_inconsistent_output_gives_no_rule_with_a_reason() -> None:
    rng = np.random.default_rng(2)
    traces = []
    for _ in range(20):
        shape = (int(rng.integers(1, 5)),)
        inv = Invocation("torch.nonzero", (Arg.tensor(shape, "float32"),))
        traces.append(Trace(inv, True, (Arg.tensor((int(rng.integers(0, 30)), 1), "int64"),), source="doc:x"))
    inference = analyze_api("torch.nonzero", traces, budget_s=2)
    assert inference.rules is None
    (reason,) = inference.skipped.values()
    assert "o0_s0" in reason


def test_minority_output_ranks_are_excluded_by_the_requires() -> None:
    # squeeze(x, 0): rank drops when dim 0 is 1; the majority (dim 0 > 1) gets the rule.
    traces = []
    rng = np.random.default_rng(4)
    for i in range(40):
        shape = (1 if i % 4 == 0 else int(rng.integers(2, 7)), int(rng.integers(1, 7)))
        out = shape[1:] if shape[0] == 1 else shape
        inv = Invocation("torch.squeeze", (Arg.tensor(shape, "float32"), Arg("int", value=0)))
        traces.append(Trace(inv, True, (Arg.tensor(out, "float32"),), source="probe"))
    inference = analyze_api("torch.squeeze", traces)
    assert inference.rules is not None
    (rule,) = inference.rules.rules
    assert rule.outputs == ((("a0_s0", "a0_s1"), "a0"),)
    # The ranges (which the generator enforces) or the requires keep dim 0 off 1.
    for minority in (t for t in traces if t.invocation.args[0].shape[0] == 1):  # type: ignore[index]
        assert not accepts(rule, minority.invocation)
    assert "other tensor-output ranks" in inference.notes[rule.signature][0]


def accepts(rule: SignatureRule, inv: Invocation) -> bool:
    env = symbols(inv)
    in_range = all(lo <= env[n] <= hi for n, (lo, hi) in rule.ranges.items())
    return in_range and all(parse_compare(r).evaluate(env) for r in rule.requires)


def test_infer_all_in_worker_processes() -> None:
    traces = traces_of("torch.matmul", matmul_call, matmul_truth, 20) + \
        traces_of("torch.nn.functional.conv1d", conv_call, conv1d_truth, 30)
    traces.append(Trace(Invocation("tf.math.abs", (Arg.tensor((2,), "float32"),)), False, error="E: x"))
    lines: list[str] = []
    diagnostics: dict[str, object] = {}
    results = infer_all(traces, workers=2, budget_s=5, progress=lines.append, versions={"torch": "2.13.0"},
                        diagnostics=diagnostics)  # type: ignore[arg-type]
    assert [r.api for r in results] == ["torch.matmul", "torch.nn.functional.conv1d"]
    assert {r.version for r in results} == {"2.13.0"}
    assert len(lines) == 3 and set(diagnostics) == {"torch.matmul", "torch.nn.functional.conv1d", "tf.math.abs"}
    inline = infer_all(traces, workers=1, budget_s=5, versions={"torch": "2.13.0"})
    assert [r.to_json() for r in inline] == [r.to_json() for r in results]


@pytest.mark.slow
def test_benchmark_sized_input() -> None:
    traces = []
    for a in range(40):
        traces += [Trace(t.invocation.__class__(f"torch.op{a}", t.invocation.args, t.invocation.kwargs), t.valid,
                         t.outputs, t.error, t.source) for t in traces_of("x", matmul_call, matmul_truth, 50, seed=a)]
    assert len(infer_all(traces, workers=2, budget_s=10)) == 40
