"""Indexing operators: index_select, gather (torch.gather / take_along_axis), take on the
flattened tensor, and masked_fill. One block per operator.

Index operands are int64 placeholders drawn from [0, INDEX_HI]; the indexed extent must be
larger than INDEX_HI so every index is valid. No framework import: lowerings receive the
framework module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from generators.dtypes import ALL, DType
from generators.spec import (
    Attrs,
    Axis,
    Call,
    FloatAttr,
    Operand,
    OpSpec,
    same_shape,
)
from generators.symbolic import Shape, SymBool, any_of, prod

# Index values are a static range (not shape-dependent), so ops require the indexed extent
# to exceed it; 0..2 exercises several positions while most dims still qualify.
INDEX_HI = 2
INDEX = (0, INDEX_HI)


def _index(ranks: tuple[int, ...]) -> Operand:
    return Operand("index", ranks=ranks, dtype=DType.int64, values=INDEX)


# --- index_select ----------------------------------------------------------------------------


def _index_select_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [shapes[0][attrs["axis"]] > INDEX_HI]


def _index_select_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a = tuple(shapes[0]), attrs["axis"]
    return (s[:a] + (shapes[1][0],) + s[a + 1:],)


def torch_index_select(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.index_select(inputs[0], attrs["axis"], inputs[1])


INDEX_SELECT = OpSpec(
    name="index_select",
    operands=(Operand("x", ranks=(1, 2, 3, 4)), _index((1,))),
    dtypes=ALL,
    attrs={"axis": Axis(0)},
    requires=_index_select_requires,
    infer=_index_select_infer,
    reference=Call("np.take", kwargs=(("axis", "axis"),)),
    torch=torch_index_select,
    tf=Call("tf.gather", kwargs=(("axis", "axis"),)),
    onnx=Call("onnx.Gather", kwargs=(("axis", "axis"),)),
    doc="Picks the slices index[i] of `axis` (indices in [0, 2], so that dim must be >= 3).",
)

# --- gather (torch.gather / take_along_axis) -------------------------------------------------


def _gather_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    x, idx, a = shapes[0], shapes[1], attrs["axis"]
    same = [idx[i] == x[i] for i in range(len(x)) if i != a]
    return [x[a] > INDEX_HI, *same]


def _gather_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(shapes[1]),)


def torch_gather(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.gather(inputs[0], attrs["axis"], inputs[1])


def tf_gather(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # Move `axis` last, gather the last axis with every leading axis as a batch dim.
    x, idx, a = inputs[0], inputs[1], attrs["axis"]
    rank = len(x.shape)
    perm = [i for i in range(rank) if i != a] + [a]
    inverse = [perm.index(i) for i in range(rank)]
    out = tf.gather(tf.transpose(x, perm), tf.transpose(idx, perm), axis=rank - 1, batch_dims=rank - 1)
    return tf.transpose(out, inverse)


def reference_gather(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.take_along_axis(inputs[0], inputs[1], axis=attrs["axis"])


GATHER = OpSpec(
    name="gather",
    operands=(Operand("x", ranks=(1, 2, 3, 4)), _index((1, 2, 3, 4))),
    same_rank=True,
    dtypes=ALL,
    attrs={"axis": Axis(0)},
    requires=_gather_requires,
    infer=_gather_infer,
    reference=reference_gather,
    torch=torch_gather,
    tf=tf_gather,
    onnx=Call("onnx.GatherElements", kwargs=(("axis", "axis"),)),
    doc="torch.gather / take_along_axis: out[..i..] = x[..index[..i..]..] along `axis`; "
        "index has x's dims except along `axis` (no broadcasting).",
)

# --- take (flattened) ------------------------------------------------------------------------


def _take_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [prod(shapes[0]) > INDEX_HI]


def _take_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(shapes[1]),)


def tf_take(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.gather(tf.reshape(inputs[0], [-1]), inputs[1])


def onnx_take(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Gather(g.Reshape(inputs[0], g.ints([-1])), inputs[1], axis=0)


TAKE = OpSpec(
    name="take",
    operands=(Operand("x", ranks=(1, 2, 3, 4)), _index((1, 2, 3))),
    dtypes=ALL,
    requires=_take_requires,
    infer=_take_infer,
    reference=Call("np.take"),
    torch=Call("torch.take"),
    tf=tf_take,
    onnx=onnx_take,
    doc="Indexes the row-major flattened x; the output has the index's shape.",
)

# --- masked_fill -----------------------------------------------------------------------------


def _masked_fill_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    x, m = shapes[0], shapes[1]
    if len(m) > len(x):
        return [False]
    tail = x[len(x) - len(m):]
    return [any_of([d == e, e == 1]) for d, e in zip(tail, m)]


def index_fill_value(kind: str, value: float) -> Any:
    """The fill value in T: floats round it, integers truncate it toward 0, bool is value > 0
    (so both fill values occur)."""
    if kind == "f":
        return float(value)
    if kind == "b":
        return value > 0
    return int(value)


def torch_masked_fill(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    kind = "f" if x.is_floating_point() else "b" if x.dtype == torch.bool else "i"
    return torch.masked_fill(x, inputs[1], index_fill_value(kind, attrs["value"]))


def tf_masked_fill(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    kind = "f" if x.dtype.is_floating else "b" if x.dtype == tf.bool else "i"
    fill = tf.constant(index_fill_value(kind, attrs["value"]), dtype=x.dtype)
    return tf.where(inputs[1], fill, x)


def reference_masked_fill(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    kind = "f" if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else "b" if x.dtype.kind == "b" else "i"
    fill = np.asarray(index_fill_value(kind, attrs["value"])).astype(x.dtype)
    return np.where(inputs[1], fill, x)


ONNX_BFLOAT16 = 16  # TensorProto.BFLOAT16


def onnx_index_scalar(g: Any, value: Any, like: Any) -> Any:
    """g.scalar(value, like=like), except that a bfloat16 constant is made as float64 and
    cast (the exporter's tensor_proto cannot write bfloat16 initializers yet)."""
    if g.dtype(like).value == "bfloat16":
        return g.Cast(g.const(float(value)), to=ONNX_BFLOAT16)
    return g.scalar(value, like=like)


def onnx_masked_fill(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    t = g.dtype(x)
    kind = "f" if t.is_float else "b" if t.is_bool else "i"
    return g.Where(inputs[1], onnx_index_scalar(g, index_fill_value(kind, attrs["value"]), x), x)


MASKED_FILL = OpSpec(
    name="masked_fill",
    operands=(Operand("x", ranks=(0, 1, 2, 3, 4)), Operand("mask", ranks=(0, 1, 2, 3, 4), dtype=DType.bool)),
    dtypes=ALL - {DType.uint8},
    attrs={"value": FloatAttr(-4.0, 4.0, digits=2)},
    requires=_masked_fill_requires,
    infer=same_shape,
    reference=reference_masked_fill,
    torch=torch_masked_fill,
    tf=tf_masked_fill,
    onnx=onnx_masked_fill,
    excluded_dtypes={DType.uint8: "the fill value may be negative, which uint8 cannot hold"},
    doc="x where mask (broadcast to x's shape) is false, else `value` converted to T "
        "(integers truncate toward 0, bool is value > 0).",
)

OPS = (INDEX_SELECT, GATHER, TAKE, MASKED_FILL)
