"""Graph -> ONNX model, with an exporter of Gauntlet's own: each operator's `onnx` lowering
emits nodes through an OnnxBuilder. Imports onnx (and only here).

The exported model takes the graph's `input` placeholders as inputs (named `in{i}`),
holds weights as initializers and returns the graph outputs as `out{k}`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from generators.dtypes import DType
from generators.ir import Graph, InputRef, NodeRef, TensorType, ValueRef
from generators.reference import as_tuple
from generators.spec import Missing, OpSpec

# Opset 21 is the newest that every onnxruntime >= 1.20 implements in full.
OPSET = 21

ELEM_TYPE: Mapping[DType, int] = {
    DType.float16: TensorProto.FLOAT16,
    DType.bfloat16: TensorProto.BFLOAT16,
    DType.float32: TensorProto.FLOAT,
    DType.float64: TensorProto.DOUBLE,
    DType.int8: TensorProto.INT8,
    DType.int16: TensorProto.INT16,
    DType.int32: TensorProto.INT32,
    DType.int64: TensorProto.INT64,
    DType.uint8: TensorProto.UINT8,
    DType.bool: TensorProto.BOOL,
}


def tensor_proto(array: np.ndarray, name: str) -> TensorProto:
    """A TensorProto for any Gauntlet dtype (bfloat16 stored as its raw 16-bit pattern)."""
    if array.dtype.name == "bfloat16":
        raw = np.array(array, order="C").view(np.uint16).tobytes()
        return helper.make_tensor(name, TensorProto.BFLOAT16, list(array.shape), raw, raw=True)
    return numpy_helper.from_array(np.asarray(array), name)


class OnnxBuilder:
    """What an operator's ONNX lowering receives as `fw`.

    `g.op("Add", a, b)` (or `g.Add(a, b)`, any capitalized name) appends a node and returns
    its output name (a tuple with `outputs=n`); `None` inputs become omitted optional
    inputs. `g.const(array)` / `g.ints([..])` / `g.scalar(v, like=x)` add initializers.
    `g.shape(x)` / `g.dtype(x)` give the static type of any graph value and of values the
    lowering declared with `g.declare`.
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.types: dict[str, TensorType] = {}
        self._counter = 0

    def fresh(self, hint: str = "t") -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def op(self, op_type: str, *inputs: str | None, outputs: int = 1, **attrs: Any) -> Any:
        names = tuple(self.fresh(op_type.lower()) for _ in range(outputs))
        clean = {k: v for k, v in attrs.items() if v is not None}
        for key, value in clean.items():
            if isinstance(value, tuple):
                clean[key] = list(value)
            elif isinstance(value, np.ndarray):
                clean[key] = tensor_proto(value, self.fresh("attr"))
        node = helper.make_node(op_type, ["" if x is None else x for x in inputs], list(names), **clean)
        self.nodes.append(node)
        return names[0] if outputs == 1 else names

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name[:1].isupper():
            return functools.partial(self.op, name)
        raise AttributeError(name)

    def const(self, value: Any, dtype: DType | None = None) -> str:
        array = np.asarray(value) if dtype is None else np.asarray(value).astype(dtype.numpy())
        name = self.fresh("const")
        self.initializers.append(tensor_proto(array, name))
        self.types[name] = TensorType(tuple(int(d) for d in array.shape), DType.from_numpy(array.dtype))
        return name

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (shapes, axes, pads, starts/ends inputs)."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(len(values)))

    def scalar(self, value: float | int | bool, like: str) -> str:
        """A 0-d constant of the dtype of value `like` (for elementwise arithmetic)."""
        return self.const(np.asarray(value), self.dtype(like))

    def cast(self, x: str, dtype: DType) -> str:
        return self.op("Cast", x, to=ELEM_TYPE[dtype])  # type: ignore[no-any-return]

    def declare(self, name: str, ttype: TensorType) -> str:
        self.types[name] = ttype
        return name

    def type_of(self, name: str) -> TensorType:
        try:
            return self.types[name]
        except KeyError:
            raise KeyError(f"the type of ONNX value {name!r} is unknown; declare it first") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return self.type_of(name).shape

    def rank(self, name: str) -> int:
        return len(self.type_of(name).shape)

    def dtype(self, name: str) -> DType:
        return self.type_of(name).dtype


def _value_info(name: str, ttype: TensorType) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, ELEM_TYPE[ttype.dtype], list(ttype.shape))


def to_onnx(
    graph: Graph,
    weights: Mapping[int, np.ndarray],
    catalog: Mapping[str, OpSpec] | None = None,
    bfloat16_io_as_float32: bool = False,
) -> onnx.ModelProto:
    """The ONNX model of `graph`; raises NotImplementedError for an operator without an
    ONNX lowering (the reason included). With `bfloat16_io_as_float32`, bfloat16 inputs
    and outputs cross the model boundary as float32 with exact Casts inside (onnxruntime's
    Python API cannot feed or fetch bfloat16 arrays)."""
    if catalog is None:
        from generators.ops import catalog as full_catalog

        catalog = full_catalog()
    g = OnnxBuilder()
    names: dict[ValueRef, str] = {}
    inputs = []
    for i, p in enumerate(graph.placeholders):
        ref: ValueRef = InputRef(i)
        if i in weights and p.kind == "weight":
            names[ref] = g.const(weights[i], p.type.dtype)
        elif bfloat16_io_as_float32 and p.type.dtype is DType.bfloat16:
            inputs.append(_value_info(f"in{i}", TensorType(p.type.shape, DType.float32)))
            names[ref] = g.cast(f"in{i}", DType.bfloat16)
        else:
            names[ref] = f"in{i}"
            inputs.append(_value_info(names[ref], p.type))
        g.types[names[ref]] = p.type
    for n, node in enumerate(graph.nodes):
        lowering = catalog[node.op].onnx
        if isinstance(lowering, Missing):
            raise NotImplementedError(f"{node.op} has no ONNX lowering: {lowering.reason}")
        results = as_tuple(lowering(g, [names[r] for r in node.inputs], node.attr_map))
        if len(results) != len(node.outputs):
            raise RuntimeError(f"{node.op}'s ONNX lowering returned {len(results)} outputs, expected {len(node.outputs)}")
        for k, (name, ttype) in enumerate(zip(results, node.outputs)):
            names[NodeRef(n, k)] = name
            g.types[name] = ttype
    outputs = []
    for k, ref in enumerate(graph.outputs):
        name, ttype = f"out{k}", graph.type_of(ref)
        if bfloat16_io_as_float32 and ttype.dtype is DType.bfloat16:
            g.nodes.append(helper.make_node("Cast", [names[ref]], [name], to=TensorProto.FLOAT))
            ttype = TensorType(ttype.shape, DType.float32)
        else:
            g.nodes.append(helper.make_node("Identity", [names[ref]], [name]))
        outputs.append(_value_info(name, ttype))
    model = helper.make_model(
        helper.make_graph(g.nodes, "gauntlet", inputs, outputs, initializer=g.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="gauntlet",
    )
    model.ir_version = 10
    return model


def input_names(graph: Graph) -> list[str]:
    return [f"in{i}" for i in graph.input_indices]


def feed_dict(graph: Graph, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime's input feed for a model exported with `bfloat16_io_as_float32`."""
    # np.ascontiguousarray would turn a 0-d array into a 1-d one.
    return {
        name: np.array(x, dtype=np.float32 if x.dtype.name == "bfloat16" else x.dtype, order="C")
        for name, x in zip(input_names(graph), inputs)
    }


def fetched(graph: Graph, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's outputs with the graph's dtypes (float32 back to bfloat16, exact)."""
    return [np.asarray(o).astype(graph.type_of(ref).dtype.numpy(), copy=False) for o, ref in zip(outputs, graph.outputs)]
