"""The torch trace collector against real torch: OpInfo examples, probe runs, exclusions and
recording a user's script."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")

from generators.errors import GauntletError  # noqa: E402
from generators.rules import collect_torch as ct  # noqa: E402
from generators.rules.trace import Arg, Invocation, Trace  # noqa: E402


@pytest.fixture(scope="module")
def example_traces() -> dict[str, list[Trace]]:
    return {api: ct.examples(api) for api in ("torch.add", "torch.matmul", "torch.nn.functional.conv2d")}


def _shape(arg: Arg) -> tuple[int, ...]:
    assert arg.kind == "tensor" and arg.shape is not None
    return arg.shape


def test_apis_names_resolve_and_exclude() -> None:
    apis = ct.apis()
    assert 400 <= len(apis) <= 650 and apis == sorted(apis)
    assert {"torch.add", "torch.matmul", "torch.nn.functional.conv2d", "torch.linalg.det"} <= set(apis)
    assert "torch.conv2d" not in apis  # the same object is named by its nn.functional path
    excluded = ct.excluded()
    assert not set(apis) & set(excluded)
    for api in ("torch.bernoulli", "torch.rand", "torch.randn_like", "torch.nn.functional.dropout",
                "torch.nn.functional.rrelu", "torch.empty", "torch.empty_like", "torch.relu_", "torch.save",
                "torch.nonzero"):
        assert api in excluded, api
    assert "in-place" in excluded["torch.relu_"] and "random" in excluded["torch.bernoulli"]


def test_loading_opinfos_leaves_backend_flags_settable() -> None:
    ct.apis()
    assert not torch.backends.flags_frozen()


def test_public_names() -> None:
    assert ct.public_name(torch.conv2d) == "torch.nn.functional.conv2d"
    assert ct.public_name(torch.nn.functional.relu) == "torch.nn.functional.relu"
    assert ct.public_name(torch.linalg.det) == "torch.linalg.det"
    assert ct.public_name(torch.Tensor.add) is None
    assert ct.resolve("torch.nn.functional.conv2d") is torch.nn.functional.conv2d
    with pytest.raises(GauntletError):
        ct.resolve("torch._C._nn.linear")
    with pytest.raises(GauntletError):
        ct.resolve("torch.no_such_op")


def test_add_examples_broadcast(example_traces: dict[str, list[Trace]]) -> None:
    valid = [t for t in example_traces["torch.add"] if t.valid]
    assert len(valid) > 20 and all(t.source == "opinfo:add" for t in valid)
    assert {t.invocation.args[0].dtype for t in valid} >= {"float32", "int64", "bool", "complex64"}
    for t in valid:
        shapes = [_shape(a) for _, a in t.invocation.tensors()]
        assert _shape(t.outputs[0]) == tuple(torch.broadcast_shapes(*shapes))


def test_matmul_examples(example_traces: dict[str, list[Trace]]) -> None:
    checked = 0
    for t in example_traces["torch.matmul"]:
        a, b = t.invocation.args
        if t.valid and a.rank == 2 and b.rank == 2:
            assert _shape(t.outputs[0]) == (_shape(a)[0], _shape(b)[1])
            checked += 1
    assert checked > 0


def _pair(kwargs: dict[str, Arg], name: str, default: int) -> tuple[int, int]:
    """A conv attribute as (height, width): an int, a 1-tuple or a 2-tuple."""
    arg = kwargs.get(name)
    if arg is None:
        return default, default
    if isinstance(arg.value, int):
        return arg.value, arg.value
    assert isinstance(arg.value, tuple)
    values = arg.value * 2 if len(arg.value) == 1 else arg.value
    return values[0], values[1]


def test_conv2d_examples(example_traces: dict[str, list[Trace]]) -> None:
    checked = 0
    for t in example_traces["torch.nn.functional.conv2d"]:
        kw = dict(t.invocation.kwargs)
        if not t.valid or t.invocation.args[0].rank != 4 or len(t.invocation.args) > 3:
            continue
        if kw.get("padding", Arg("int", value=0)).kind == "str" or set(kw) - {"bias", "stride", "padding",
                                                                               "dilation", "groups"}:
            continue
        (n, _, h, w), (co, _, kh, kw_) = _shape(t.invocation.args[0]), _shape(t.invocation.args[1])
        (sh, sw), (ph, pw), (dh, dw) = _pair(kw, "stride", 1), _pair(kw, "padding", 0), _pair(kw, "dilation", 1)
        expected = (n, co, (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw_ - 1) - 1) // sw + 1)
        assert _shape(t.outputs[0]) == expected, t
        checked += 1
    assert checked > 5
    invalid = [t for t in example_traces["torch.nn.functional.conv2d"] if not t.valid]
    assert invalid and all(": " in t.error and "\n" not in t.error for t in invalid)


def test_run_reproduces_examples(example_traces: dict[str, list[Trace]]) -> None:
    for traces in example_traces.values():
        for t in [t for t in traces if t.valid][:25]:
            again = ct.run(t.invocation, seed=3)
            assert again.valid and again.source == "probe", (t, again.error)
            assert again.outputs == t.outputs
            assert ct.run(t.invocation, seed=3) == again


def test_invalid_call_is_an_invalid_trace() -> None:
    inv = Invocation("torch.matmul", (Arg.tensor((2, 3), "float32"), Arg.tensor((4, 5), "float32")))
    trace = ct.run(inv, seed=0)
    assert not trace.valid and trace.outputs == ()
    assert trace.error.startswith("RuntimeError: ") and "2x3" in trace.error and "\n" not in trace.error


def test_run_builds_values_of_every_kind() -> None:
    inv = Invocation("torch.sum", (Arg.tensor((3, 4), "int32"),), (("dim", Arg("ints", value=(1,))),
                     ("dtype", Arg("dtype", value="float64")), ("keepdim", Arg("bool", value=True))))
    trace = ct.run(inv, seed=1)
    assert trace.valid and trace.outputs == (Arg.tensor((3, 1), "float64"),)
    big = Invocation("torch.neg", (Arg.tensor((1 << 13, 1 << 13, 2), "float32"),))
    assert ct.run(big, seed=0).error.startswith("Refused:")
    with pytest.raises(GauntletError):
        ct.run(Invocation("torch.neg", (Arg.tensor((2,), "float99"),)), seed=0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=4), st.lists(st.integers(0, 3), max_size=4), st.integers(0, 2**31))
def test_run_add_matches_broadcasting(a: list[int], b: list[int], seed: int) -> None:
    trace = ct.run(Invocation("torch.add", (Arg.tensor(a, "float32"), Arg.tensor(b, "int64"))), seed)
    try:
        expected = tuple(torch.broadcast_shapes(a, b))
    except RuntimeError:
        assert not trace.valid and trace.error.startswith("RuntimeError")
    else:
        assert trace.valid and trace.outputs == (Arg.tensor(expected, "float32"),)


def test_unrepresentable_samples_are_skipped() -> None:
    collected = ct.collect_examples("torch.cat")  # every sample passes a list of tensors
    assert collected.skips["list of tensor"] > 0
    for value in (torch.device("cpu"), torch.channels_last, torch.Generator(), torch.strided, len, 1j,
                  math.inf, [torch.zeros(1)], [1.5]):
        with pytest.raises(ct.Unrepresentable):
            ct.to_arg(value)
    assert ct.to_arg(torch.Size([2, 3])) == Arg("ints", value=(2, 3))
    assert ct.to_arg(torch.bfloat16) == Arg("dtype", value="bfloat16")
    with pytest.raises(ct.Unrepresentable, match="out="):
        ct.invocation_of("torch.add", [torch.zeros(1), 1], {"out": torch.zeros(1)})
    with pytest.raises(GauntletError):
        ct.examples("torch.nn.functional.dropout")


SCRIPT = """
import sys
import torch
import torch.nn.functional as F
x = torch.ones(2, 3)
y = torch.add(x, x)
F.conv2d(torch.ones(1, 1, 5, 5), torch.ones(2, 1, 3, 3), stride=2)
y.sum()                     # a Tensor method: not recorded
torch.cat([x, x])           # a list of tensors: skipped
try:
    torch.matmul(x, x)
except RuntimeError:
    pass
print(sys.argv[1:])
sys.exit(0)
"""


def test_instrument_records_a_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    collected = ct.record([str(script), "--flag"])
    assert "['--flag']" in capsys.readouterr().out
    by_api = {t.invocation.api: t for t in collected.traces}
    assert set(by_api) == {"torch.ones", "torch.add", "torch.nn.functional.conv2d", "torch.matmul"}
    assert by_api["torch.add"].outputs == (Arg.tensor((2, 3), "float32"),)
    conv = by_api["torch.nn.functional.conv2d"]
    assert conv.valid and conv.outputs == (Arg.tensor((1, 2, 2, 2), "float32"),)
    assert dict(conv.invocation.kwargs)["stride"] == Arg("int", value=2)
    assert not by_api["torch.matmul"].valid and by_api["torch.matmul"].error.startswith("RuntimeError")
    assert all(t.source == f"user:{script}" for t in collected.traces)
    assert collected.skips["list of tensor"] == 1
    assert len(ct.instrument([str(script)])) == len(collected.traces)


def test_instrument_failure_keeps_traces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "failing_mod.py").write_text("import torch\ntorch.neg(torch.ones(3))\nraise ValueError('boom')\n",
                                             encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ct.InstrumentError, match="ValueError: boom") as info:
        ct.record(["-m", "failing_mod"])
    assert isinstance(info.value, GauntletError)
    assert [t.invocation.api for t in info.value.traces] == ["torch.ones", "torch.neg"]
    with pytest.raises(GauntletError, match="no such script"):
        ct.record([str(tmp_path / "missing.py")])
    with pytest.raises(GauntletError):
        ct.record(["-m"])


def test_version() -> None:
    assert "+" not in ct.version() and ct.version().count(".") >= 2
