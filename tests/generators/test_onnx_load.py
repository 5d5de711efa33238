"""load_onnx against onnxruntime: the VNN-COMP networks, hand-built models covering each supported
operator, conv/pool geometry as a property, a torch.onnx export, and the errors."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from generators.load.model import LoadedModel, ModelError
from generators.load.onnx import load_onnx
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs

BENCH = Path("/work/shared/benchmarks/vnncomp")
BENCH_NETS = (
    sorted(BENCH.glob("test/*.onnx")) + sorted(BENCH.glob("mnist_fc/onnx/*.onnx"))
    + sorted(BENCH.glob("acasxu/onnx/*.onnx"))[:3]
)
F32 = TensorProto.FLOAT


def ort_output(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings where ONNX shape inference and onnxruntime disagree
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dtype = np.float64 if inp.type == "tensor(double)" else np.float32
    (y,) = session.run(None, {inp.name: x.astype(dtype)})
    return np.asarray(y, dtype=np.float64)


def ir_output(model: LoadedModel, x: np.ndarray) -> np.ndarray:
    feed = [x if p.kind == "input" else model.weights[i] for i, p in enumerate(model.graph.placeholders)]
    results = evaluate(model.graph, feed, catalog(), wide=True)
    assert results is not None
    return graph_outputs(model.graph, results, feed)[0]


def check_against_ort(path: Path, seed: int = 0, runs: int = 3) -> LoadedModel:
    """The IR (float64 references) agrees with onnxruntime on random inputs, to float32
    accuracy; run_real is onnxruntime."""
    model = load_onnx(path)
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        x = rng.uniform(-1.0, 1.0, model.input_type.shape)
        want = ort_output(path, x).reshape(model.output_type.shape)
        scale = max(1.0, float(np.max(np.abs(want))))
        np.testing.assert_allclose(ir_output(model, x), want, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(model.run_real(x), want, rtol=1e-6, atol=1e-7 * scale)
    return model


def save(tmp_path: Path, nodes: Sequence[onnx.NodeProto], x_shape: Sequence[Any], consts: dict[str, Any],
         opset: int = 13, dtype: int = F32, name: str = "model.onnx") -> Path:
    """A one-input ('x'), one-output ('y') model; float consts become initializers of the input's
    dtype, integer and bool ones keep theirs."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    arrays = {k: np.asarray(v) for k, v in consts.items()}
    inits = [numpy_helper.from_array(a if a.dtype.kind in "ib" else a.astype(np_dtype), k) for k, a in arrays.items()]
    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("x", dtype, list(x_shape))],
                              [helper.make_tensor_value_info("y", dtype, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    model = onnx.shape_inference.infer_shapes(model)  # fills in y's shape, which the checker wants
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def rand(*shape: int, seed: int = 1, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).uniform(lo, hi, shape).astype(np.float32)


# --- the benchmark networks --------------------------------------------------------------------


@pytest.mark.skipif(not BENCH_NETS, reason="VNN-COMP benchmarks not present")
@pytest.mark.parametrize("path", BENCH_NETS, ids=lambda p: p.name)
def test_vnncomp_networks_match_onnxruntime(path: Path) -> None:
    model = check_against_ort(path)
    assert model.graph.weight_indices and model.output_size >= 1


@pytest.mark.skipif(not BENCH_NETS, reason="VNN-COMP benchmarks not present")
def test_acasxu_initializers_listed_as_inputs_become_weights() -> None:
    model = load_onnx(BENCH / "acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx")
    assert model.input_type.shape == (1, 1, 1, 5) and model.output_type.shape == (1, 5)
    assert len(model.graph.input_indices) == 1 and len(model.weights) == 15
    assert all(w.dtype == np.float32 for w in model.weights.values())
    assert set(model.graph.op_names()) == {"sub", "flatten", "linear", "add", "relu"}


# --- hand-built models, one family of operators each ---------------------------------------------------


def test_cnn(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w", "wb"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("GlobalAveragePool", ["a"], ["g"]),
        helper.make_node("Flatten", ["a"], ["fa"]),
        helper.make_node("Flatten", ["g"], ["fg"]),
        helper.make_node("Concat", ["fa", "fg", "fg", "fg", "fg"], ["f"], axis=-1),  # > 4 inputs: chained
        helper.make_node("Gemm", ["f", "fw", "fb"], ["l"], transB=1),
        helper.make_node("Softmax", ["l"], ["y"], axis=1),
    ]
    consts = {"w": rand(3, 2, 3, 3), "wb": rand(3), "s": rand(3), "b": rand(3), "m": rand(3),
              "v": rand(3, lo=0.5, hi=2.0), "fw": rand(5, 27 + 4 * 3), "fb": rand(5)}
    model = check_against_ort(save(tmp_path, nodes, [1, 2, 6, 6], consts))
    ops = set(model.graph.op_names())
    assert {"conv2d", "batch_norm", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "concat", "linear"} <= ops


def test_shape_operators(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"]),  # 0 copies a dim, -1 is inferred
        helper.make_node("Unsqueeze", ["a", "ax1"], ["b"]),
        helper.make_node("Transpose", ["b"], ["c"], perm=[0, 2, 1, 3]),
        helper.make_node("Squeeze", ["c"], ["d"]),  # every size-1 dim
        helper.make_node("Concat", ["d", "k", "d"], ["e"], axis=-1),
        helper.make_node("Reshape", ["e", "s2"], ["f"]),
        helper.make_node("Transpose", ["f"], ["g"]),  # reversed dims
        helper.make_node("Flatten", ["g"], ["h"], axis=2),
        helper.make_node("Identity", ["h"], ["i"]),
        helper.make_node("Unsqueeze", ["i", "ax2"], ["j"]),
        helper.make_node("Squeeze", ["j", "ax2"], ["k2"]),
        helper.make_node("Flatten", ["k2"], ["y"], axis=0),
    ]
    consts = {"s1": np.array([0, -1], np.int64), "ax1": np.array([1, -1], np.int64), "k": rand(2, 3),
              "s2": np.array([2, 3, 9], np.int64), "ax2": np.array([0], np.int64)}
    model = check_against_ort(save(tmp_path, nodes, [2, 3, 4], consts))
    assert model.output_type.shape == (1, 54)


def test_opset_11_attribute_axes_and_2d_softmax(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["a"], axes=[0]),
        helper.make_node("Squeeze", ["a"], ["b"], axes=[0]),
        helper.make_node("Clip", ["b", "zero"], ["c"]),  # min only: relu
        helper.make_node("Softmax", ["c"], ["d"]),  # opset < 13: one row over dims 1.. (axis 1)
        helper.make_node("LogSoftmax", ["d"], ["y"], axis=2),
    ]
    model = check_against_ort(save(tmp_path, nodes, [2, 3, 4], {"zero": np.float32(0.0)}, opset=11))
    assert model.graph.op_names().count("reshape") == 2 and "relu" in model.graph.op_names()


def test_opset_9_attribute_forms(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Pad", ["x"], ["a"], pads=[0, 0, 1, 0, 0, 2], mode="reflect"),
        helper.make_node("Pad", ["a"], ["b"], pads=[0, 1, 0, 0, 0, 1], mode="edge"),
        helper.make_node("Clip", ["b"], ["c"], min=-0.5, max=0.25),
        helper.make_node("Unsqueeze", ["c"], ["d"], axes=[0]),
        helper.make_node("Squeeze", ["d"], ["e"], axes=[0]),
        helper.make_node("Softmax", ["e"], ["y"], axis=2),
    ]
    model = check_against_ort(save(tmp_path, nodes, [1, 2, 5], {}, opset=9))
    assert model.output_type.shape == (1, 3, 9) and "clip" in model.graph.op_names()


def test_elementwise_with_constants_on_either_side(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Sub", ["c1", "x"], ["a"]),
        helper.make_node("Div", ["a", "c2"], ["b"]),
        helper.make_node("LeakyRelu", ["b"], ["c"], alpha=0.1),
        helper.make_node("Sigmoid", ["c"], ["d"]),
        helper.make_node("Add", ["d", "x"], ["e"]),
        helper.make_node("Tanh", ["e"], ["f"]),
        helper.make_node("Neg", ["f"], ["g"]),
        helper.make_node("Mul", ["g", "c3"], ["h"]),
        helper.make_node("Clip", ["h", "lo", "hi"], ["i"]),
        helper.make_node("Sub", ["i", "c1"], ["j"]),
        helper.make_node("Elu", ["j"], ["k"], alpha=0.7),
        helper.make_node("Div", ["k", "c2"], ["y"]),
    ]
    consts = {"c1": rand(4), "c2": rand(1, 4, lo=0.5, hi=2.0), "c3": np.float32(3.0),
              "lo": np.float32(-0.5), "hi": np.float32(0.75)}
    model = check_against_ort(save(tmp_path, nodes, [1, 4], consts))
    assert {"sub", "div", "leaky_relu", "sigmoid", "tanh", "neg", "mul", "clip", "elu"} <= set(model.graph.op_names())


def test_more_activations(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["a"]),  # rank 2 (BatchNorm1d)
        helper.make_node("Abs", ["a"], ["b1"]),
        helper.make_node("Add", ["b1", "one"], ["c"]),
        helper.make_node("Log", ["c"], ["d"]),
        helper.make_node("Sqrt", ["c"], ["e"]),
        helper.make_node("Mul", ["d", "e"], ["f"]),
        helper.make_node("Erf", ["f"], ["g"]),
        helper.make_node("Exp", ["g"], ["h"]),
        helper.make_node("Softplus", ["h"], ["i"]),
        helper.make_node("Softsign", ["i"], ["j"]),
        helper.make_node("Gelu", ["j"], ["k"], approximate="tanh"),
        helper.make_node("Elu", ["k"], ["l"]),
        helper.make_node("PRelu", ["l", "slope"], ["y"]),
    ]
    consts = {"s": rand(4), "b": rand(4), "m": rand(4), "v": rand(4, lo=0.5, hi=2.0), "one": np.float32(1.0),
              "slope": rand(4)}
    model = check_against_ort(save(tmp_path, nodes, [2, 4], consts, opset=20))
    assert {"abs", "log", "sqrt", "erf", "exp", "softplus", "softsign", "gelu", "elu", "prelu"} <= set(
        model.graph.op_names())


def test_three_dimensional_convolution_and_pooling(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 0, 1, 1, 0, 1]),
        helper.make_node("MaxPool", ["a"], ["b"], kernel_shape=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1], ceil_mode=1),
        helper.make_node("AveragePool", ["b"], ["y"], kernel_shape=[2, 1, 2], pads=[0, 0, 1, 0, 0, 1], count_include_pad=1),
    ]
    model = check_against_ort(save(tmp_path, nodes, [1, 2, 4, 5, 5], {"w": rand(3, 2, 2, 2, 2)}))
    assert {"conv3d", "max_pool3d", "avg_pool3d"} <= set(model.graph.op_names())
    # Asymmetric 3-D padding would need a rank-5 pad, which the catalog lacks: refused, not approximated.
    lopsided = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 0, 0, 0, 0])
    with pytest.raises(ModelError, match="pad takes no rank-5"):
        load_onnx(save(tmp_path, [lopsided], [1, 2, 4, 5, 5], {"w": rand(3, 2, 2, 2, 2)}, name="lopsided.onnx"))


def test_matrix_products_and_no_ops(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Gemm", ["x", "b1", "c1"], ["a"], transA=1, alpha=0.5, beta=2.0),
        helper.make_node("Dropout", ["a"], ["b"]),
        helper.make_node("Identity", ["b"], ["c"]),
        helper.make_node("Cast", ["c"], ["d"], to=F32),
        helper.make_node("MatMul", ["d", "w"], ["e"]),
        helper.make_node("MatMul", ["left", "e"], ["f"]),
        helper.make_node("Gemm", ["f", "g2"], ["y"]),
    ]
    consts = {"b1": rand(3, 5), "c1": rand(5), "w": rand(5, 2), "left": rand(3, 4), "g2": rand(2, 6)}
    model = check_against_ort(save(tmp_path, nodes, [3, 4], consts))
    assert "matmul" in model.graph.op_names() and model.output_type.shape == (3, 6)


def test_asymmetric_and_automatic_padding(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[0, 1, 2, 1], strides=[2, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Conv", ["b", "w2"], ["c2"], auto_pad="SAME_LOWER"),
        helper.make_node("Conv", ["c2", "w2"], ["c"], pads=[2, 0, 1, 1], dilations=[2, 1]),
        helper.make_node("MaxPool", ["c"], ["d"], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1], ceil_mode=1),
        helper.make_node("Pad", ["d", "pads"], ["e"]),
        helper.make_node("AveragePool", ["e"], ["y"], kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0],
                         ceil_mode=1, count_include_pad=1),
    ]
    consts = {"w1": rand(2, 2, 3, 2), "w2": rand(2, 2, 2, 2), "pads": np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64)}
    model = check_against_ort(save(tmp_path, nodes, [1, 2, 9, 8], consts))
    assert "pad" in model.graph.op_names()


def test_float64_model_keeps_float64_weights(tmp_path: Path) -> None:
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    path = save(tmp_path, nodes, [1, 3], {"w": rand(3, 2), "b": rand(2)}, dtype=TensorProto.DOUBLE)
    model = check_against_ort(path)
    assert model.input_type.dtype.value == "float64"
    assert all(w.dtype == np.float64 for w in model.weights.values())
    # run_real copies (as for a worker process) without its open session, and checks the input size.
    x = np.array([[0.5, -1.0, 2.0]])
    np.testing.assert_array_equal(copy.deepcopy(model.run_real)(x), model.run_real(x))
    with pytest.raises(ModelError, match="input of 2 values"):
        model.run_real(np.zeros(2))


# --- conv and pool geometry as properties -----------------------------------------------------------


def _ort_accepts(path: Path, x: np.ndarray) -> bool:
    try:
        ort_output(path, x)
    except Exception:  # onnxruntime rejects some geometries the ONNX checker lets through
        return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(3, 8), kernel=st.integers(1, 3), stride=st.integers(1, 2), dilation=st.integers(1, 2),
    pads=st.tuples(st.integers(0, 2), st.integers(0, 2)), group=st.sampled_from([1, 2]),
    auto=st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]),
)
def test_conv1d_geometry_matches_onnxruntime(tmp_path: Path, size: int, kernel: int, stride: int, dilation: int,
                                             pads: tuple[int, int], group: int, auto: str) -> None:
    attrs: dict[str, Any] = {"strides": [stride], "dilations": [dilation], "group": group, "auto_pad": auto}
    if auto == "NOTSET":
        attrs["pads"] = list(pads)
    padded = size + (sum(pads) if auto == "NOTSET" else 0)
    if not auto.startswith("SAME") and padded < dilation * (kernel - 1) + 1:
        reject()  # no window fits
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    path = save(tmp_path, [node], [1, 2, size], {"w": rand(4, 2 // group, kernel), "b": rand(4)})
    if not _ort_accepts(path, np.zeros((1, 2, size))):
        reject()
    check_against_ort(path, runs=1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["MaxPool", "AveragePool"]), size=st.integers(2, 7), kernel=st.integers(1, 4),
    stride=st.integers(1, 3), pads=st.tuples(st.integers(0, 3), st.integers(0, 3)), ceil=st.booleans(),
    include=st.booleans(), auto=st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER"]),
)
def test_pool_geometry_matches_onnxruntime(tmp_path: Path, kind: str, size: int, kernel: int, stride: int,
                                           pads: tuple[int, int], ceil: bool, include: bool, auto: str) -> None:
    if max(pads) >= kernel or size + sum(pads) < kernel:
        reject()  # ONNX wants pads smaller than the kernel and a window that fits
    attrs: dict[str, Any] = {"kernel_shape": [kernel, 2], "strides": [stride, 1], "ceil_mode": int(ceil),
                             "auto_pad": auto}
    if auto == "NOTSET":
        attrs["pads"] = [pads[0], 0, pads[1], 1]
    if kind == "AveragePool":
        attrs["count_include_pad"] = int(include)
    path = save(tmp_path, [helper.make_node(kind, ["x"], ["y"], **attrs)], [1, 2, size, 3], {})
    if not _ort_accepts(path, np.zeros((1, 2, size, 3))):
        reject()
    check_against_ort(path, runs=1)


# --- a torch export with shape arithmetic and a dynamic batch -----------------------------------------


def test_torch_export_with_dynamic_batch(tmp_path: Path) -> None:
    try:
        import torch
        from torch import nn
    except ImportError:
        pytest.skip("torch is not installed")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.pool = nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
            self.fc = nn.Linear(4 * 2 * 2, 3)

        def forward(self, x: Any) -> Any:
            x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2, padding=1)
            x = self.pool(torch.nn.functional.leaky_relu(x, 0.2))
            return torch.softmax(self.fc(x.view(x.size(0), -1)), dim=-1)

    torch.manual_seed(0)
    net = Net()
    mean, var = net.bn.running_mean, net.bn.running_var
    assert mean is not None and var is not None
    mean.uniform_(-1, 1)
    var.uniform_(0.5, 2)  # statistics a fresh BatchNorm2d would not exercise
    net.eval()
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        try:
            torch.onnx.export(net, (torch.zeros(1, 1, 5, 5),), str(path), dynamo=False, do_constant_folding=False,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        except Exception as exc:  # the legacy exporter may be gone in a later torch
            pytest.skip(f"torch.onnx.export(dynamo=False) unavailable: {exc}")
    assert "Shape" in {n.op_type for n in onnx.load(str(path)).graph.node}  # exporter shape arithmetic
    model = check_against_ort(path)
    assert model.input_type.shape == (1, 1, 5, 5) and "batch" in model.description
    assert "reshape" in model.graph.op_names() and "batch_norm" in model.graph.op_names()
    x = np.random.default_rng(2).uniform(-1, 1, (1, 1, 5, 5))
    with torch.no_grad():
        want = net(torch.tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(ir_output(model, x), want, rtol=1e-4, atol=1e-5)


# --- errors ------------------------------------------------------------------------------------


def test_lstm_is_unsupported_by_name(tmp_path: Path) -> None:
    node = helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="my_lstm", hidden_size=2)
    path = save(tmp_path, [node], [3, 1, 2], {"w": rand(1, 8, 2), "r": rand(1, 8, 2)})
    with pytest.raises(ModelError, match=r"my_lstm.*LSTM.*not supported.*Supported: .*Conv"):
        load_onnx(path)


def test_non_max_suppression_is_unsupported(tmp_path: Path) -> None:
    node = helper.make_node("NonMaxSuppression", ["x", "scores"], ["idx"], name="nms")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F32, [1, 3, 4])],
                              [helper.make_tensor_value_info("idx", TensorProto.INT64, [None, 3])],
                              [numpy_helper.from_array(rand(1, 1, 3), "scores")])
    path = tmp_path / "nms.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    with pytest.raises(ModelError, match="NonMaxSuppression"):
        load_onnx(path)


@pytest.mark.parametrize(
    ("node", "consts", "message"),
    [
        (helper.make_node("Pad", ["x", "p", "v"], ["y"]), {"p": np.array([0, 0, 1, 1], np.int64), "v": np.float32(1)},
         "constant padding with 1.0"),
        (helper.make_node("Dropout", ["x", "r", "t"], ["y"]), {"r": np.float32(0.5), "t": np.array(True)},
         "training_mode"),
        (helper.make_node("Conv", ["x", "w"], ["y"], group=8), {"w": rand(8, 1, 1)}, "at most 4 groups"),
        (helper.make_node("MatMul", ["x", "x"], ["y"]), {}, None),
    ],
)
def test_inexpressible_attributes_are_refused(tmp_path: Path, node: onnx.NodeProto, consts: dict[str, Any],
                                              message: str | None) -> None:
    path = save(tmp_path, [node], [1, 8, 4] if node.op_type == "Conv" else [2, 2], consts)
    if message is None:  # x @ x: two computed operands are fine
        check_against_ort(path)
        return
    with pytest.raises(ModelError, match=message):
        load_onnx(path)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\xffthis is not a protobuf model" * 10)
    with pytest.raises(ModelError, match="ONNX model"):
        load_onnx(path)
    with pytest.raises(ModelError, match="no such file"):
        load_onnx(tmp_path / "missing.onnx")


def test_models_the_verifier_cannot_take(tmp_path: Path) -> None:
    two = helper.make_graph([helper.make_node("Add", ["x", "z"], ["y"])], "g",
                           [helper.make_tensor_value_info(n, F32, [2]) for n in ("x", "z")],
                           [helper.make_tensor_value_info("y", F32, [2])])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(two, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    with pytest.raises(ModelError, match="one input and one output"):
        load_onnx(path)
    ints = save(tmp_path, [helper.make_node("Neg", ["x"], ["y"])], [2], {}, dtype=TensorProto.INT32, name="i.onnx")
    with pytest.raises(ModelError, match="float32 or float64"):
        load_onnx(ints)
