"""Assorted operators: clip, where, cast, one_hot, sort, topk, argsort, einsum, triu and tril.
No framework import: lowerings receive the framework module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from generators.dtypes import ALL, FLOATS, NUMERIC, DType, ordered
from generators.ops._common import far_from_integers, margin
from generators.ops.reduce import distinct_extremes
from generators.spec import (
    Attrs,
    Axis,
    Call,
    Choice,
    FloatAttr,
    IntAttr,
    Operand,
    OpSpec,
    RankCtx,
    same_shape,
)
from generators.symbolic import Shape, SymBool, broadcast, broadcast_all

NO_BOOL_ORDER = {DType.bool: "tf has no bool kernel for it"}


def _is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" or array.dtype.name == "bfloat16"


# --- clip ----------------------------------------------------------------------------------


def _int_bounds(dtype_is_unsigned: bool, lo: float, hi: float) -> tuple[int, int]:
    """Integer bounds that clip integers exactly like the real bounds [lo, hi] do."""
    low = math.ceil(lo)
    return (max(low, 0) if dtype_is_unsigned else low), math.floor(hi)


def reference_clip(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if x.dtype.kind in "iu":
        lo, hi = _int_bounds(x.dtype.kind == "u", attrs["min"], attrs["max"])
        return np.clip(x, np.asarray(lo, x.dtype), np.asarray(hi, x.dtype))
    return np.clip(x, np.asarray(attrs["min"], x.dtype), np.asarray(attrs["max"], x.dtype))


def torch_clip(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if x.dtype.is_floating_point:
        return torch.clamp(x, min=attrs["min"], max=attrs["max"])
    lo, hi = _int_bounds(x.dtype == torch.uint8, attrs["min"], attrs["max"])
    return torch.clamp(x, min=lo, max=hi)


def tf_clip(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if x.dtype.is_floating:
        return tf.clip_by_value(x, attrs["min"], attrs["max"])
    lo, hi = _int_bounds(x.dtype == tf.uint8, attrs["min"], attrs["max"])
    return tf.clip_by_value(x, lo, hi)


def onnx_clip(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    dtype = g.dtype(x).value
    if dtype.startswith(("int", "uint")):
        lo, hi = _int_bounds(dtype.startswith("uint"), attrs["min"], attrs["max"])
        return g.Clip(x, g.scalar(lo, like=x), g.scalar(hi, like=x))
    return g.Clip(x, g.scalar(attrs["min"], like=x), g.scalar(attrs["max"], like=x))


CLIP = OpSpec(
    name="clip",
    operands=(Operand("x"),),
    dtypes=NUMERIC,
    attrs={"min": FloatAttr(-2.0, 0.0, digits=2), "max": FloatAttr(0.0, 2.0, digits=2)},
    infer=same_shape,
    reference=reference_clip,
    torch=torch_clip,
    tf=tf_clip,
    onnx=onnx_clip,
    excluded_dtypes=NO_BOOL_ORDER,
    doc="min(max(x, min), max) with min <= 0 <= max; integer inputs use ceil(min) and floor(max) "
    "(the same function on integers, without float promotion).",
)

# --- where ---------------------------------------------------------------------------------


def where_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    out, _ = broadcast_all(shapes)
    return [out]


def where_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    _, needs = broadcast_all(shapes)
    return needs


WHERE = OpSpec(
    name="where",
    operands=(Operand("condition", dtype=DType.bool), Operand("x"), Operand("y")),
    dtypes=ALL,
    infer=where_infer,
    requires=where_requires,
    reference=Call("np.where"),
    torch=Call("torch.where"),
    tf=Call("tf.where"),
    onnx=Call("onnx.Where"),
    doc="x where condition else y; all three broadcast together.",
)

# --- cast ----------------------------------------------------------------------------------

DTYPE_NAMES = tuple(d.value for d in DType)


def _cast_output(t: DType, attrs: Attrs) -> Sequence[DType]:
    return (DType(attrs["to"]),)


def reference_cast(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, to = inputs[0], attrs["to"]
    if to != "bfloat16":
        return x.astype(to)
    # NumPy only knows bfloat16 through ml_dtypes: round to nearest even on the float32 bits
    # and return the (exactly representable) value as float32.
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + (((bits >> 16) & 1) + 0x7FFF)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


def torch_cast(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return inputs[0].to(getattr(torch, attrs["to"]))


def tf_cast(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.cast(inputs[0], getattr(tf, attrs["to"]))


def onnx_cast(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.cast(inputs[0], DType(attrs["to"]))


def _cast_well_defined(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Float -> integer truncates toward zero: values stay away from integers (where noise
    would flip the result) and inside the target's range (out of range is undefined in C++,
    and uint8 only takes values above -1). Float -> bool: values clearly nonzero."""
    x, to = inputs[0], DType(attrs["to"])
    if not _is_float(x) or to.is_float:
        return True
    w = x.astype(np.float64)
    if to is DType.bool:
        return bool(np.all(np.abs(w) > margin(x)))
    info = np.iinfo(to.numpy())
    inside = bool(np.all((w > info.min - 1 + margin(x)) & (w < info.max + 1 - margin(x))))
    return inside and far_from_integers(x)


CAST = OpSpec(
    name="cast",
    operands=(Operand("x"),),
    dtypes=ALL,
    attrs={"to": Choice(DTYPE_NAMES)},
    infer=same_shape,
    out_dtypes=_cast_output,
    reference=reference_cast,
    torch=torch_cast,
    tf=tf_cast,
    onnx=onnx_cast,
    stable=_cast_well_defined,
    doc="Element type conversion: float -> int truncates toward zero, nonzero -> True, integer "
    "narrowing wraps (two's complement) in all three; float -> int inputs stay in range.",
)

# --- one_hot -------------------------------------------------------------------------------


class OutputDTypeName(Choice):
    """A dtype-name attribute always equal to the operator's dtype variable T, for operators
    whose operands all have fixed dtypes: lowerings receive only the attributes, so T must be
    spelled out to them."""

    def sample(self, rng: np.random.Generator, ctx: RankCtx) -> str:
        return ctx.dtype.value

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return value == ctx.dtype.value


def one_hot_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    return [tuple(shapes[0]) + (attrs["depth"],)]


def reference_one_hot(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    hot = inputs[0][..., None] == np.arange(attrs["depth"])
    # NumPy knows bfloat16 only through ml_dtypes; 0 and 1 are exact in float32.
    return hot.astype(np.float32 if attrs["dtype"] == "bfloat16" else attrs["dtype"])


def torch_one_hot(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    out = torch.nn.functional.one_hot(inputs[0], attrs["depth"])
    return out.to(getattr(torch, attrs["dtype"]))


def tf_one_hot(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.one_hot(inputs[0], attrs["depth"], dtype=getattr(tf, attrs["dtype"]))


def onnx_one_hot(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # OneHot needs indices of rank >= 1 (a scalar goes through shape [1]), and the standard
    # has no bfloat16 OneHot: 0 and 1 are exact in float32, cast after.
    indices, out = inputs[0], DType(attrs["dtype"])
    scalar = g.rank(indices) == 0
    if scalar:
        indices = g.Unsqueeze(indices, g.ints([0]))
    values = DType.float32 if out is DType.bfloat16 else out
    hot = g.OneHot(indices, g.const(attrs["depth"], DType.int64), g.const([0, 1], values), axis=-1)
    if scalar:
        hot = g.Squeeze(hot, g.ints([0]))
    return g.cast(hot, out) if values is not out else hot


def _indices_in_range(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    idx = inputs[0]
    return bool(np.all((idx >= 0) & (idx < attrs["depth"])))


ONE_HOT = OpSpec(
    name="one_hot",
    operands=(Operand("indices", ranks=(0, 1, 2, 3), dtype=DType.int64, values=(0.0, 3.0)),),
    dtypes=NUMERIC,
    attrs={"depth": IntAttr(4, 8), "dtype": OutputDTypeName(tuple(d.value for d in ordered(NUMERIC)))},
    infer=one_hot_infer,
    reference=reference_one_hot,
    torch=torch_one_hot,
    tf=tf_one_hot,
    onnx=onnx_one_hot,
    stable=_indices_in_range,
    excluded_dtypes={DType.bool: "tf has no bool OneHot kernel"},
    doc="A new last axis of length depth; indices stay in [0, depth) (torch raises outside, tf "
    "writes a zero row). The `dtype` attribute always equals the output dtype T.",
)

# --- sort, argsort, topk -----------------------------------------------------------------------


def reference_sort(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    out = np.sort(inputs[0], axis=attrs["axis"])
    return np.flip(out, axis=attrs["axis"]) if attrs["descending"] else out


def torch_sort(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.sort(inputs[0], dim=attrs["axis"], descending=attrs["descending"]).values


def tf_sort(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    direction = "DESCENDING" if attrs["descending"] else "ASCENDING"
    return tf.sort(inputs[0], axis=attrs["axis"], direction=direction)


def onnx_sort_along(g: Any, x: Any, axis: int, k: int, largest: bool) -> tuple[Any, Any]:
    """TopK's (values, int64 indices); equal values keep their input order (the lower index
    first, whichever the direction), as the ONNX spec of TopK requires. TopK has no bfloat16
    before opset 24: bfloat16 goes through float32, which holds it exactly (same order)."""
    dtype = g.dtype(x)
    if dtype is DType.bfloat16:
        x = g.cast(x, DType.float32)
    values, indices = g.TopK(x, g.ints([k]), axis=axis, largest=int(largest), sorted=1, outputs=2)
    return (g.cast(values, dtype) if dtype is DType.bfloat16 else values), indices


def onnx_sort(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX has no Sort: a TopK of every element.
    x, axis = inputs[0], attrs["axis"]
    return onnx_sort_along(g, x, axis, g.shape(x)[axis], attrs["descending"])[0]


SORT = OpSpec(
    name="sort",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=NUMERIC,
    attrs={"axis": Axis(), "descending": Choice((False, True))},
    infer=same_shape,
    reference=reference_sort,
    torch=torch_sort,
    tf=tf_sort,
    onnx=onnx_sort,
    excluded_dtypes=NO_BOOL_ORDER,
    doc="Sorted values only: a continuous function of the input, so ties need no guard.",
)


def reference_argsort(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, axis = inputs[0], attrs["axis"]
    if not attrs["descending"]:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int64)
    # Stable descending: sort the reversed input ascending, reverse back, map the indices.
    rev = np.argsort(np.flip(x, axis=axis), axis=axis, kind="stable")
    return (x.shape[axis] - 1 - np.flip(rev, axis=axis)).astype(np.int64)


def torch_argsort(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.argsort(inputs[0], dim=attrs["axis"], descending=attrs["descending"], stable=True)


def tf_argsort(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    direction = "DESCENDING" if attrs["descending"] else "ASCENDING"
    out = tf.argsort(inputs[0], axis=attrs["axis"], direction=direction, stable=True)
    return tf.cast(out, tf.int64)


def _int64_output(t: DType, attrs: Attrs) -> Sequence[DType]:
    return (DType.int64,)


def _float_order_clear(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Floats: no two values along the axis within rounding noise of each other (the order
    would depend on it). Integers compare exactly; stable sorting settles their ties."""
    x = inputs[0]
    if not _is_float(x):
        return True
    return distinct_extremes(x, attrs["axis"], x.shape[attrs["axis"]], True)


def onnx_argsort(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, axis = inputs[0], attrs["axis"]
    return onnx_sort_along(g, x, axis, g.shape(x)[axis], attrs["descending"])[1]


ARGSORT = OpSpec(
    name="argsort",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=NUMERIC,
    attrs={"axis": Axis(), "descending": Choice((False, True))},
    infer=same_shape,
    out_dtypes=_int64_output,
    reference=reference_argsort,
    torch=torch_argsort,
    tf=tf_argsort,
    onnx=onnx_argsort,
    stable=_float_order_clear,
    excluded_dtypes=NO_BOOL_ORDER,
    doc="Stable: equal values keep their input order (also when descending); float values are "
    "kept apart along the axis.",
)


def topk_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    return [attrs["k"] <= shapes[0][attrs["axis"]]]


def topk_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    x, axis = shapes[0], attrs["axis"]
    out = tuple(attrs["k"] if i == axis else d for i, d in enumerate(x))
    return [out, out]


def _values_and_int64(t: DType, attrs: Attrs) -> Sequence[DType]:
    return (t, DType.int64)


def reference_topk(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, axis, k = inputs[0], attrs["axis"], attrs["k"]
    order = reference_argsort(np, [x], {"axis": axis, "descending": True})
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx


def torch_topk(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    out = torch.topk(inputs[0], attrs["k"], dim=attrs["axis"], largest=True, sorted=True)
    return out.values, out.indices


def tf_topk(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # tf.math.top_k works on the last axis: move the axis there and back.
    x, axis = inputs[0], attrs["axis"]
    rank = len(x.shape)
    perm = [i for i in range(rank) if i != axis] + [axis]
    back = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1))
    values, indices = tf.math.top_k(tf.transpose(x, perm), k=attrs["k"], sorted=True)
    return tf.transpose(values, back), tf.transpose(tf.cast(indices, tf.int64), back)


def onnx_topk(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_sort_along(g, inputs[0], attrs["axis"], attrs["k"], True)


def _topk_unique(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return distinct_extremes(inputs[0], attrs["axis"], attrs["k"], True)


TOPK = OpSpec(
    name="topk",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=NUMERIC,
    attrs={"axis": Axis(), "k": IntAttr(1, 4)},
    infer=topk_infer,
    requires=topk_requires,
    out_dtypes=_values_and_int64,
    reference=reference_topk,
    torch=torch_topk,
    tf=tf_topk,
    onnx=onnx_topk,
    stable=_topk_unique,
    excluded_dtypes=NO_BOOL_ORDER,
    doc="The k largest values along the axis, sorted descending, and their int64 indices; the "
    "k + 1 largest values are kept apart, so the indices are unique.",
)

# --- einsum --------------------------------------------------------------------------------

EINSUM_EQUATIONS = (
    "...ij,...jk->...ik",
    "...ij,...kj->...ik",
    "...ji,...jk->...ik",
    "...ij,...j->...i",
    "...ij,...ij->...i",
    "...i,...i->...",
    "...i,...j->...ij",
)


def _einsum_parse(equation: str) -> tuple[list[str], str]:
    lhs, out = equation.split("->")
    return [term.replace("...", "") for term in lhs.split(",")], out.replace("...", "")


def einsum_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    terms, out = _einsum_parse(attrs["equation"])
    if any(len(s) < len(t) for s, t in zip(shapes, terms)):
        return [False]
    batch_ranks = [len(s) - len(t) for s, t in zip(shapes, terms)]
    if max(batch_ranks) + len(out) > 4:
        return [False]
    dims: dict[str, Any] = {}
    needs: list[SymBool] = []
    for s, t in zip(shapes, terms):
        for letter, d in zip(t, s[len(s) - len(t) :]):
            if letter in dims:
                needs.append(dims[letter] == d)
            else:
                dims[letter] = d
    _, more = broadcast(shapes[0][: batch_ranks[0]], shapes[1][: batch_ranks[1]])
    return needs + more


def einsum_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    terms, out = _einsum_parse(attrs["equation"])
    batch_ranks = [len(s) - len(t) for s, t in zip(shapes, terms)]
    dims: dict[str, Any] = {}
    for s, t in zip(shapes, terms):
        for letter, d in zip(t, s[len(s) - len(t) :]):
            dims.setdefault(letter, d)
    batch, _ = broadcast(shapes[0][: batch_ranks[0]], shapes[1][: batch_ranks[1]])
    return [tuple(batch) + tuple(dims[letter] for letter in out)]


def reference_einsum(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = inputs
    if a.dtype.name == "bfloat16":  # np.einsum has no bfloat16 loop; float32 holds it exactly
        return np.einsum(attrs["equation"], a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
    return np.einsum(attrs["equation"], a, b)


def torch_einsum(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.einsum(attrs["equation"], *inputs)


def tf_einsum(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.einsum(attrs["equation"], *inputs)


def onnx_einsum_bfloat16(g: Any, operands: list[Any], terms: list[str], out: str, batch: int) -> Any:
    """Einsum as Mul and ReduceSum, for bfloat16 (which the standard's Einsum lacks): each
    operand is laid out as batch + every letter (output letters first; absent ones size 1),
    multiplied with broadcasting, then summed over the contracted letters."""
    letters = list(out) + sorted({c for t in terms for c in t} - set(out))
    laid = []
    for x, term in zip(operands, terms):
        own = [c for c in letters if c in term]
        perm = list(range(batch)) + [batch + term.index(c) for c in own]
        if perm != list(range(len(perm))):
            x = g.Transpose(x, perm=perm)
        missing = [batch + i for i, c in enumerate(letters) if c not in term]
        laid.append(g.Unsqueeze(x, g.ints(missing)) if missing else x)
    product = g.Mul(laid[0], laid[1])
    if len(letters) == len(out):
        return product
    return g.ReduceSum(product, g.ints(list(range(batch + len(out), batch + len(letters)))), keepdims=0)


def onnx_einsum(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX broadcasts the `...` dims but its shape inference wants every `...` to stand for
    # the same number of dims: leading 1s make them equal (NumPy aligns them at the right).
    terms, out = _einsum_parse(attrs["equation"])
    batch = [g.rank(x) - len(t) for x, t in zip(inputs, terms)]
    operands = [
        g.Unsqueeze(x, g.ints(list(range(max(batch) - b)))) if b < max(batch) else x for x, b in zip(inputs, batch)
    ]
    if g.dtype(inputs[0]).value == "bfloat16":
        return onnx_einsum_bfloat16(g, operands, terms, out, max(batch))
    return g.Einsum(*operands, equation=attrs["equation"])


EINSUM = OpSpec(
    name="einsum",
    operands=(Operand("a", ranks=(1, 2, 3, 4)), Operand("b", ranks=(1, 2, 3, 4))),
    dtypes=FLOATS | {DType.int32, DType.int64},
    attrs={"equation": Choice(EINSUM_EQUATIONS)},
    infer=einsum_infer,
    requires=einsum_requires,
    reference=reference_einsum,
    torch=torch_einsum,
    tf=tf_einsum,
    onnx=onnx_einsum,
    excluded_dtypes={
        DType.int8: "tf has no int8 Einsum kernel",
        DType.int16: "tf has no int16 Einsum kernel",
        DType.uint8: "tf has no uint8 Einsum kernel",
        DType.bool: "neither framework has a bool einsum",
    },
    doc="Two-operand einsum over a fixed set of equations; the leading `...` dims broadcast.",
)

# --- triu / tril ---------------------------------------------------------------------------


def tf_triu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # Keep x[..., i, j] where j - i >= k. band_part keeps a band around the diagonal, which is
    # that set when k <= 0 (num_lower may not exceed the row count).
    x, k = inputs[0], attrs["diagonal"]
    rows, cols = x.shape[-2], x.shape[-1]
    if k <= 0:
        return tf.linalg.band_part(x, min(-k, rows), -1)
    keep = tf.range(cols)[None, :] - tf.range(rows)[:, None] >= k
    return tf.where(keep, x, tf.zeros_like(x))


def tf_tril(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # Keep x[..., i, j] where j - i <= k; band_part does it directly when k >= 0.
    x, k = inputs[0], attrs["diagonal"]
    rows, cols = x.shape[-2], x.shape[-1]
    if k >= 0:
        return tf.linalg.band_part(x, -1, min(k, cols))
    keep = tf.range(cols)[None, :] - tf.range(rows)[:, None] <= k
    return tf.where(keep, x, tf.zeros_like(x))


def onnx_triu(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Trilu(inputs[0], g.const(attrs["diagonal"], DType.int64), upper=1)


def onnx_tril(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Trilu(inputs[0], g.const(attrs["diagonal"], DType.int64), upper=0)


TRIU = OpSpec(
    name="triu",
    operands=(Operand("x", ranks=(2, 3, 4)),),
    dtypes=ALL,
    attrs={"diagonal": IntAttr(-2, 2)},
    infer=same_shape,
    reference=Call("np.triu", kwargs=(("k", "diagonal"),)),
    torch=Call("torch.triu", kwargs=(("diagonal", "diagonal"),)),
    tf=tf_triu,
    onnx=onnx_triu,
    doc="Zeroes x[..., i, j] below the diagonal-th diagonal (keeps j - i >= diagonal).",
)

TRIL = OpSpec(
    name="tril",
    operands=(Operand("x", ranks=(2, 3, 4)),),
    dtypes=ALL,
    attrs={"diagonal": IntAttr(-2, 2)},
    infer=same_shape,
    reference=Call("np.tril", kwargs=(("k", "diagonal"),)),
    torch=Call("torch.tril", kwargs=(("diagonal", "diagonal"),)),
    tf=tf_tril,
    onnx=onnx_tril,
    doc="Zeroes x[..., i, j] above the diagonal-th diagonal (keeps j - i <= diagonal).",
)

OPS = (CLIP, WHERE, CAST, ONE_HOT, SORT, ARGSORT, TOPK, EINSUM, TRIU, TRIL)
