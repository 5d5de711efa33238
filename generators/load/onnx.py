"""Loads an ONNX model into the Gauntlet IR (`load_onnx` -> `generators.load.model.LoadedModel`): constants
folded first, then every remaining node mapped exactly onto catalog operators by the converters in
generators.load.onnx_ops, or a ModelError. Imports onnx (onnxruntime lazily, for `run_real`); never fuzz.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from generators.dtypes import DType
from generators.errors import GauntletError
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, ValueRef, validate
from generators.load.model import LoadedModel, ModelError
from generators.load.onnx_ops import CONVERTERS, SUPPORTED_OPS, Arg, OnnxNode, Unsupported
from generators.ops import catalog
from generators.spec import AttrDomain, FloatAttr, IntAttr, IntsAttr, OpSpec, RankCtx
from generators.symbolic import all_of

__all__ = ["SUPPORTED_OPS", "Arg", "load_onnx", "loader_catalog"]

_FLOATS = {np.dtype(np.float32): DType.float32, np.dtype(np.float64): DType.float64}
# Random nodes are never folded (nor nodes with subgraphs, which may read computed outer values).
_RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


# --- the catalog as the loader checks it ------------------------------------------------------


def _widen(name: str, domain: AttrDomain) -> AttrDomain:
    # conv/pool shape rules enumerate strides up to their bound (a z3-friendly case split), so a
    # larger stride would get a wrong output shape: that bound is semantic and stays.
    if name == "stride":
        return domain
    if isinstance(domain, IntAttr):
        return IntAttr(domain.lo, 2**31 - 1)
    if isinstance(domain, IntsAttr):
        return IntsAttr(domain.size, domain.lo, 2**31 - 1)
    if isinstance(domain, FloatAttr):
        return FloatAttr(-float(np.finfo(np.float64).max), float(np.finfo(np.float64).max), domain.digits)
    return domain


@functools.cache
def loader_catalog() -> Mapping[str, OpSpec]:
    """The catalog with its integer and float attribute bounds opened up. Those bounds keep
    generated graphs small; a real model's 7x7 kernel, 64 groups of a reshape or 1e-3 slope are
    still inside what the shape rules and NumPy references compute exactly."""
    return MappingProxyType(
        {name: dataclasses.replace(spec, attrs={k: _widen(k, d) for k, d in spec.attrs.items()})
         for name, spec in catalog().items()}
    )


# --- the graph under construction ---------------------------------------------------------------


class Builder:
    """Placeholders, nodes and weights of the graph being built; every node's output types come
    from its operator's shape rule, after its arity, attribute domains and constraints pass."""

    def __init__(self, dtype: DType) -> None:
        self.dtype = dtype
        self.catalog = loader_catalog()
        self.placeholders: list[Placeholder] = []
        self.nodes: list[Node] = []
        self.weights: dict[int, np.ndarray] = {}
        self._weight_of: dict[int, tuple[np.ndarray, InputRef]] = {}  # id(array) -> (array, ref)

    def input(self, t: TensorType) -> InputRef:
        self.placeholders.append(Placeholder(t, "input"))
        return InputRef(len(self.placeholders) - 1)

    def weight(self, array: np.ndarray) -> InputRef:
        """A weight placeholder for a constant; the same array object gets the same placeholder."""
        known = self._weight_of.get(id(array))
        if known is not None:
            return known[1]
        if array.dtype != self.dtype.numpy():
            raise Unsupported(f"a constant operand of dtype {array.dtype} where the model computes in "
                               f"{self.dtype.value}")
        if 0 in array.shape:
            raise Unsupported(f"a constant operand of shape {list(array.shape)}")
        self.placeholders.append(Placeholder(TensorType(tuple(int(d) for d in array.shape), self.dtype), "weight"))
        ref = InputRef(len(self.placeholders) - 1)
        self.weights[ref.index] = array
        self._weight_of[id(array)] = (array, ref)
        return ref

    def scalar(self, value: float) -> InputRef:
        return self.weight(np.asarray(value, dtype=self.dtype.numpy()))

    def ref(self, arg: Arg) -> ValueRef:
        if arg is None:
            raise Unsupported("a required input is absent")
        return self.weight(arg) if isinstance(arg, np.ndarray) else arg

    def shape(self, arg: Arg) -> tuple[int, ...]:
        if isinstance(arg, np.ndarray):
            return tuple(int(d) for d in arg.shape)
        return self.type_of(self.ref(arg)).shape

    def type_of(self, ref: ValueRef) -> TensorType:
        if isinstance(ref, InputRef):
            return self.placeholders[ref.index].type
        return self.nodes[ref.node].outputs[ref.output]

    def op(self, name: str, inputs: Sequence[Arg], **attrs: Any) -> NodeRef:
        spec = self.catalog[name]
        refs = [self.ref(a) for a in inputs]
        types = [self.type_of(r) for r in refs]
        shapes = [t.shape for t in types]
        lo, hi = spec.arity_range()
        if not lo <= len(refs) <= hi:
            raise Unsupported(f"the catalog's {name} takes {lo}..{hi} inputs, not {len(refs)}")
        for j, t in enumerate(types):
            if t.rank not in spec.operand_at(j).ranks:
                raise Unsupported(f"the catalog's {name} takes no rank-{t.rank} {spec.operand_at(j).name}")
        ranks = tuple(len(s) for s in shapes)
        for key, domain in spec.attrs.items():
            ctx = RankCtx(ranks, self.dtype, {k: v for k, v in attrs.items() if k != key})
            if not domain.contains(attrs[key], ctx):
                raise Unsupported(f"the catalog's {name} cannot express {key}={attrs[key]!r}")
        if not all_of(spec.requires(shapes, attrs)):
            raise Unsupported(f"the catalog's {name} does not accept inputs {[list(s) for s in shapes]} "
                               f"with {attrs}")
        out = [tuple(int(d) for d in s) for s in spec.infer(shapes, attrs)]
        dtypes = spec.output_dtypes(self.dtype, attrs, len(out))
        self.nodes.append(Node(name, tuple(refs), tuple(sorted(attrs.items())),
                               tuple(TensorType(s, d) for s, d in zip(out, dtypes))))
        return NodeRef(len(self.nodes) - 1)

    def reshape(self, x: Arg, target: Sequence[int]) -> ValueRef:
        ref = self.ref(x)
        if tuple(target) == self.shape(ref):
            return ref
        if not target:
            raise Unsupported("a reshape to a scalar")
        return self.op("reshape", [ref], out_rank=len(target), lead=tuple(int(d) for d in target[:-1]))

    def pad(self, x: ValueRef, widths: Sequence[tuple[int, int]], mode: str = "constant") -> ValueRef:
        """Padding with zeros, or by reflection or replication, (before, after) per dim."""
        if not any(b or e for b, e in widths):
            return x
        # The catalog's reflect/replicate pad only the last one or two dims (what torch can).
        k = len(widths) if mode == "constant" else max(0, min(len(widths) - 1, 2))
        if any(b or e for b, e in widths[: len(widths) - k]):
            raise Unsupported(f"{mode} padding {list(widths)} of a leading dim")
        return self.op("pad", [x], mode=mode, pads=tuple(int(v) for w in widths[len(widths) - k:] for v in w))

    def slice(self, x: ValueRef, axis: int, start: int, stop: int) -> ValueRef:
        if start == 0 and stop == self.shape(x)[axis]:
            return x
        return self.op("slice", [x], axis=axis, start=start, stop=stop, step=1)


# --- loading ------------------------------------------------------------------------------------


def _read(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        raise ModelError(f"{path}: not a valid ONNX model: {str(exc).strip().splitlines()[0]}") from None
    except DecodeError as exc:
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    return model


def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def _fold(node: onnx.NodeProto, inputs: Mapping[str, np.ndarray], model: onnx.ModelProto) -> list[np.ndarray]:
    """Evaluates one node whose inputs are all constant with onnx's reference runtime."""
    from onnx.reference import ReferenceEvaluator

    typed = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for k, v in inputs.items()]
    graph = helper.make_graph([node], "fold", typed, [helper.make_empty_tensor_value_info(o) for o in node.output if o])
    folded = helper.make_model(graph, opset_imports=model.opset_import)
    return [np.asarray(v) for v in ReferenceEvaluator(folded).run(None, dict(inputs))]


def _input_type(value: onnx.ValueInfoProto, where: str) -> tuple[TensorType, tuple[int, ...], list[str]]:
    """The IR input type, the model's own input shape and notes on dims that were not fixed."""
    t = value.type.tensor_type
    dtype = _FLOATS.get(np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type))) if t.elem_type else None
    if dtype is None or not t.HasField("shape"):
        raise ModelError(f"{where}: input {value.name!r} must be a float32 or float64 tensor of known rank")
    dims, notes = [], []
    for i, d in enumerate(t.shape.dim):
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1)
        if dims[-1] != d.dim_value:
            notes.append(f"input dim {i} ({d.dim_param or 'unknown'}) fixed to 1")
    return TensorType(tuple(dims), dtype), tuple(dims), notes


class _OnnxRunner:
    """Runs the original model with onnxruntime (CPU); the session is created on first use."""

    def __init__(self, path: Path, input_name: str, output_name: str, dtype: np.dtype[Any],
                 input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> None:
        self.path, self.input_name, self.output_name, self.dtype = path, input_name, output_name, dtype
        self.input_shape, self.output_shape = input_shape, output_shape
        self._session: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # A session does not pickle (e.g. to a Ray worker); the copy opens its own on first use.
        return {**self.__dict__, "_session": None}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.size != math.prod(self.input_shape):
            raise ModelError(f"{self.path.name}: input of {x.size} values, the model takes {list(self.input_shape)}")
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # results that do not depend on the machine's core count
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        feed = {self.input_name: x.astype(self.dtype).reshape(self.input_shape)}
        (y,) = self._session.run([self.output_name], feed)
        if np.size(y) != math.prod(self.output_shape):
            raise ModelError(f"{self.path.name}: onnxruntime returned shape {list(np.shape(y))}, the loaded graph "
                             f"computes {list(self.output_shape)}; please report this model")
        return np.asarray(y, dtype=np.float64).reshape(self.output_shape)


def load_onnx(path: str | Path) -> LoadedModel:
    """Loads a one-input, one-output float ONNX model into the IR; raises ModelError for anything
    it cannot map exactly (naming the operator and node)."""
    path = Path(path)
    model = _read(path)
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    # Old exporters list initializers among the inputs too (ACAS Xu): those are weights.
    inputs = [v for v in g.input if v.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1 or g.sparse_initializer:
        raise ModelError(f"{path}: the verifier takes models with one input and one output (and dense weights); "
                         f"this one has inputs {[v.name for v in inputs]} and outputs {[v.name for v in g.output]}")
    in_type, in_shape, notes = _input_type(inputs[0], str(path))
    b = Builder(in_type.dtype)
    values: dict[str, ValueRef] = {inputs[0].name: b.input(in_type)}
    used = {name for node in g.node for name in node.input} | {g.output[0].name}
    for node in g.node:
        where = f"{path.name}: node {node.name or '(unnamed)'!r} ({node.op_type})"
        args: list[Arg] = []
        for name in node.input:
            if name and name not in consts and name not in values:
                raise ModelError(f"{where}: input {name!r} comes from no earlier node")
            args.append(None if not name else consts[name] if name in consts else values[name])
        if node.domain not in ("", "ai.onnx"):
            raise ModelError(f"{where}: operators of domain {node.domain!r} are not supported")
        subgraphs = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        constant = all(not isinstance(a, (InputRef, NodeRef)) for a in args)
        if constant and node.op_type not in _RANDOM and not subgraphs:
            feed = {name: a for name, a in zip(node.input, args) if isinstance(a, np.ndarray)}
            try:
                folded = _fold(node, feed, model)
            except Exception as exc:  # whatever the reference runtime raises: report it with the node
                raise ModelError(f"{where}: cannot evaluate this constant node: {exc}") from None
            consts.update(zip([o for o in node.output if o], folded))
            continue
        attrs = {a.name: _attr_value(a) for a in node.attribute}
        if node.op_type in ("Shape", "Size"):  # of a computed value: its shape is static here
            shape = b.shape(args[0])
            dims = shape[attrs.get("start", 0):attrs.get("end", len(shape))]
            consts[node.output[0]] = np.asarray(dims if node.op_type == "Shape" else math.prod(shape), np.int64)
            continue
        convert = CONVERTERS.get(node.op_type)
        if convert is None:
            raise ModelError(f"{where}: operator {node.op_type} is not supported. Supported: "
                             f"{', '.join(SUPPORTED_OPS)}, and any node whose inputs are all constant")
        extra = [o for o in node.output[1:] if o in used]
        if extra:
            raise ModelError(f"{where}: only the first output is supported, but {extra} are used")
        try:
            ref = convert(b, OnnxNode(node.op_type, args, attrs, opset))
        except Unsupported as exc:
            raise ModelError(f"{where}: not supported: {exc}") from None
        values[node.output[0]] = ref
    out_name = g.output[0].name
    if out_name not in values:
        raise ModelError(f"{path}: the output {out_name!r} does not depend on the input")
    graph = Graph(tuple(b.placeholders), tuple(b.nodes), (values[out_name],))
    out_type = graph.type_of(graph.outputs[0])
    try:
        validate(graph, loader_catalog())
    except GauntletError as exc:
        raise ModelError(f"{path}: internal error: the loaded graph is invalid: {exc}") from None
    description = (f"{path.name} (ONNX opset {opset}): input {inputs[0].name!r} {in_type}, output {out_name!r} "
                   f"{out_type}, {len(graph.nodes)} nodes" + "".join(f"; {note}" for note in notes))
    runner = _OnnxRunner(path, inputs[0].name, out_name, in_type.dtype.numpy(), in_shape, out_type.shape)
    return LoadedModel(graph=graph, weights=dict(b.weights), run_real=runner, description=description)
