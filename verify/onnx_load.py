"""Loads an ONNX model into the Gauntlet IR (`load_onnx` -> `verify.model.LoadedModel`): constants
folded first, then every remaining node mapped exactly onto catalog operators, or a ModelError.
Imports onnx (onnxruntime lazily, for `run_real`); never imports fuzz.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from generators.dtypes import DType
from generators.errors import GauntletError
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, ValueRef, validate
from generators.ops import catalog
from generators.ops.conv import MAX_GROUPS, MAX_STRIDE
from generators.ops.pool import MAX_POOL_STRIDE
from generators.spec import AttrDomain, FloatAttr, IntAttr, IntsAttr, OpSpec, RankCtx
from generators.symbolic import all_of
from verify.model import LoadedModel, ModelError

Arg = Union[ValueRef, np.ndarray, None]  # a node input: a graph value, a folded constant, or absent
_FLOATS = {np.dtype(np.float32): DType.float32, np.dtype(np.float64): DType.float64}
# Random nodes are never folded (nor nodes with subgraphs, which may read computed outer values).
_RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


class _Unsupported(Exception):
    """Raised by a converter; the loader adds the node's name and type and re-raises a ModelError."""


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


class _Builder:
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
            raise _Unsupported(f"a constant operand of dtype {array.dtype} where the model computes in "
                               f"{self.dtype.value}")
        if 0 in array.shape:
            raise _Unsupported(f"a constant operand of shape {list(array.shape)}")
        self.placeholders.append(Placeholder(TensorType(tuple(int(d) for d in array.shape), self.dtype), "weight"))
        ref = InputRef(len(self.placeholders) - 1)
        self.weights[ref.index] = array
        self._weight_of[id(array)] = (array, ref)
        return ref

    def scalar(self, value: float) -> InputRef:
        return self.weight(np.asarray(value, dtype=self.dtype.numpy()))

    def ref(self, arg: Arg) -> ValueRef:
        if arg is None:
            raise _Unsupported("a required input is absent")
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
            raise _Unsupported(f"the catalog's {name} takes {lo}..{hi} inputs, not {len(refs)}")
        for j, t in enumerate(types):
            if t.rank not in spec.operand_at(j).ranks:
                raise _Unsupported(f"the catalog's {name} takes no rank-{t.rank} {spec.operand_at(j).name}")
        ranks = tuple(len(s) for s in shapes)
        for key, domain in spec.attrs.items():
            ctx = RankCtx(ranks, self.dtype, {k: v for k, v in attrs.items() if k != key})
            if not domain.contains(attrs[key], ctx):
                raise _Unsupported(f"the catalog's {name} cannot express {key}={attrs[key]!r}")
        if not all_of(spec.requires(shapes, attrs)):
            raise _Unsupported(f"the catalog's {name} does not accept inputs {[list(s) for s in shapes]} "
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
            raise _Unsupported("a reshape to a scalar")
        return self.op("reshape", [ref], out_rank=len(target), lead=tuple(int(d) for d in target[:-1]))

    def pad(self, x: ValueRef, widths: Sequence[tuple[int, int]], mode: str = "constant") -> ValueRef:
        """Padding with zeros, or by reflection or replication, (before, after) per dim."""
        if not any(b or e for b, e in widths):
            return x
        # The catalog's reflect/replicate pad only the last one or two dims (what torch can).
        k = len(widths) if mode == "constant" else max(0, min(len(widths) - 1, 2))
        if any(b or e for b, e in widths[: len(widths) - k]):
            raise _Unsupported(f"{mode} padding {list(widths)} of a leading dim")
        return self.op("pad", [x], mode=mode, pads=tuple(int(v) for w in widths[len(widths) - k:] for v in w))

    def slice(self, x: ValueRef, axis: int, start: int, stop: int) -> ValueRef:
        if start == 0 and stop == self.shape(x)[axis]:
            return x
        return self.op("slice", [x], axis=axis, start=start, stop=stop, step=1)


# --- one ONNX node, as the converters see it ------------------------------------------------------


@dataclass
class _Node:
    op_type: str
    args: list[Arg]
    attrs: dict[str, Any]
    opset: int

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def arg(self, i: int) -> Arg:
        return self.args[i] if i < len(self.args) else None

    def const(self, i: int, what: str) -> np.ndarray | None:
        """Input i as a constant (None when absent); a computed value is unsupported."""
        a = self.arg(i)
        if a is not None and not isinstance(a, np.ndarray):
            raise _Unsupported(f"{what} (input {i}) is computed from the model input; it must be a constant")
        return a

    def ints(self, name: str, index: int, since: int) -> list[int] | None:
        """An integer list given as attribute `name` before opset `since`, as input `index` after."""
        if self.opset >= since:
            c = self.const(index, name)
            return None if c is None else [int(v) for v in c.reshape(-1)]
        value = self.attr(name)
        return None if value is None else [int(v) for v in value]


def _scalar(value: Any) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise _Unsupported(f"axis {axis} out of range for rank {rank}")
    return axis % rank


# --- converters: elementwise, matrix products, shapes ------------------------------------------------


def _identity(b: _Builder, n: _Node) -> ValueRef:
    return b.ref(n.arg(0))


def _dropout(b: _Builder, n: _Node) -> ValueRef:
    training = n.const(2, "training_mode")
    if training is not None and _scalar(training):
        raise _Unsupported("training_mode=True (random dropout)")
    return b.ref(n.arg(0))


def _cast(b: _Builder, n: _Node) -> ValueRef:
    to = helper.tensor_dtype_to_np_dtype(n.attr("to"))
    if to != b.dtype.numpy():
        raise _Unsupported(f"a cast to {to} (only casts to the model's own {b.dtype.value} are no-ops)")
    return b.ref(n.arg(0))


def _same(name: str, arity: int = 1, **attrs: tuple[str, Any]) -> Callable[[_Builder, _Node], ValueRef]:
    """An operator the catalog has as is: its first `arity` inputs, and each catalog attribute
    from (ONNX attribute, ONNX default). ONNX float attributes are float32: their exact values."""

    def convert(b: _Builder, n: _Node) -> ValueRef:
        return b.op(name, n.args[:arity], **{k: n.attr(key, default) for k, (key, default) in attrs.items()})

    return convert


def _prelu(b: _Builder, n: _Node) -> ValueRef:
    x, slope = b.ref(n.arg(0)), n.const(1, "the slope")
    rank = len(b.shape(x))
    dims = (1,) * (rank - (0 if slope is None else slope.ndim)) + (() if slope is None else slope.shape)
    # The catalog's prelu has one slope, or one per channel (axis 1).
    if slope is None or rank < 2 or len(dims) > rank or any(d != 1 for i, d in enumerate(dims) if i != 1):
        raise _Unsupported(f"a slope of shape {None if slope is None else list(slope.shape)} for rank {rank}")
    return b.op("prelu", [x, slope.reshape(-1)])


def _matmul(b: _Builder, n: _Node) -> ValueRef:
    a, w = n.arg(0), n.arg(1)
    if isinstance(w, np.ndarray) and w.ndim == 2 and not isinstance(a, np.ndarray):
        return b.op("linear", [a, np.ascontiguousarray(w.T)])  # x @ W is linear with weight W^T
    return b.op("matmul", [a, w])


def _transposed(b: _Builder, arg: Arg) -> Arg:
    if isinstance(arg, np.ndarray):
        return np.ascontiguousarray(arg.T)
    return b.op("transpose", [arg], perm=(1, 0))


def _gemm(b: _Builder, n: _Node) -> ValueRef:
    a, w, c = n.arg(0), n.arg(1), n.arg(2)
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    if n.attr("transA", 0):
        a = _transposed(b, a)
    if isinstance(w, np.ndarray):
        weight = w if n.attr("transB", 0) else np.ascontiguousarray(w.T)  # linear wants (N, K)
        bias = isinstance(c, np.ndarray) and c.shape[-1:] == weight.shape[:1] and c.size == weight.shape[0]
        if alpha == 1.0 and beta == 1.0 and bias and isinstance(c, np.ndarray):
            return b.op("linear", [a, weight, c.reshape(-1)])
        y: ValueRef = b.op("linear", [a, weight])
    else:
        y = b.op("matmul", [a, _transposed(b, w) if n.attr("transB", 0) else w])
    if alpha != 1.0:
        y = b.op("mul", [y, b.scalar(alpha)])
    if c is not None:
        if beta != 1.0:
            c = b.op("mul", [c, b.scalar(beta)])
        y = b.op("add", [y, c])
    return y


def _flatten(b: _Builder, n: _Node) -> ValueRef:
    x = b.ref(n.arg(0))
    shape = b.shape(x)
    r = len(shape)
    a = int(n.attr("axis", 1))
    a = a + r if a < 0 else a
    if not 0 < a < r:  # the whole tensor in one of the two dims
        return b.reshape(x, [math.prod(shape[:a]), math.prod(shape[a:])])
    if a < r - 1:
        x = b.op("flatten", [x], start=a, end=r - 1)
    if a > 1:
        x = b.op("flatten", [x], start=0, end=a - 1)
    return x


def _reshape(b: _Builder, n: _Node) -> ValueRef:
    shape = b.shape(n.arg(0))
    target = n.ints("shape", 1, since=5)
    if target is None:
        raise _Unsupported("no target shape")
    out = []
    for i, d in enumerate(target):
        if d == 0 and not n.attr("allowzero", 0):
            if i >= len(shape):
                raise _Unsupported(f"a 0 (copy) at position {i} beyond the input's rank")
            d = shape[i]
        out.append(d)
    known = math.prod(d for d in out if d != -1)
    if out.count(-1) == 1 and known > 0:
        out[out.index(-1)] = math.prod(shape) // known
    if math.prod(out) != math.prod(shape) or any(d <= 0 for d in out):
        raise _Unsupported(f"target shape {target} does not fit an input of shape {list(shape)}")
    return b.reshape(n.arg(0), out)


def _transpose(b: _Builder, n: _Node) -> ValueRef:
    x = b.ref(n.arg(0))
    r = len(b.shape(x))
    perm = tuple(int(p) for p in n.attr("perm", range(r - 1, -1, -1)))
    return x if perm == tuple(range(r)) else b.op("transpose", [x], perm=perm)


def _squeeze(b: _Builder, n: _Node) -> ValueRef:
    x = b.ref(n.arg(0))
    shape = b.shape(x)
    axes = n.ints("axes", 1, since=13)
    chosen = [i for i, d in enumerate(shape) if d == 1] if axes is None else [_axis(a, len(shape)) for a in axes]
    for a in sorted(set(chosen), reverse=True):  # from the back, so earlier axes keep their numbers
        x = b.op("squeeze", [x], axis=a)
    return x


def _unsqueeze(b: _Builder, n: _Node) -> ValueRef:
    x = b.ref(n.arg(0))
    axes = n.ints("axes", 1, since=13)
    if not axes:
        raise _Unsupported("no axes")
    out_rank = len(b.shape(x)) + len(axes)
    for a in sorted({_axis(a, out_rank) for a in axes}):  # ascending: each is an output position
        x = b.op("unsqueeze", [x], axis=a)
    return x


def _concat(b: _Builder, n: _Node) -> ValueRef:
    parts = [b.ref(a) for a in n.args if a is not None]
    axis = _axis(int(n.attr("axis")), len(b.shape(parts[0])))
    out = parts[0]
    rest = parts[1:]
    while rest:  # the catalog's concat takes 2..4 inputs
        out, rest = b.op("concat", [out, *rest[:3]], axis=axis), rest[3:]
    return out


def _softmax(name: str) -> Callable[[_Builder, _Node], ValueRef]:
    def convert(b: _Builder, n: _Node) -> ValueRef:
        x = b.ref(n.arg(0))
        shape = b.shape(x)
        axis = _axis(int(n.attr("axis", -1 if n.opset >= 13 else 1)), len(shape))
        if n.opset >= 13 or axis == len(shape) - 1:
            return b.op(name, [x], axis=axis)
        # Before opset 13 the input is seen as 2-D: all dims from `axis` on form one softmax row.
        rows = b.reshape(x, [math.prod(shape[:axis]), math.prod(shape[axis:])])
        return b.reshape(b.op(name, [rows], axis=1), shape)

    return convert


def _clip(b: _Builder, n: _Node) -> ValueRef:
    if n.opset >= 11:
        lo_c, hi_c = n.const(1, "min"), n.const(2, "max")
        lo, hi = (None if c is None else _scalar(c) for c in (lo_c, hi_c))
    else:
        lo, hi = n.attr("min"), n.attr("max")
    if lo is None and hi is None:
        return b.ref(n.arg(0))
    if lo == 0.0 and hi is None:
        return b.op("relu", [n.arg(0)])
    big = float(np.finfo(b.dtype.numpy()).max)  # an absent bound: no finite value is clipped
    return b.op("clip", [n.arg(0)], min=-big if lo is None else float(lo), max=big if hi is None else float(hi))


def _pad(b: _Builder, n: _Node) -> ValueRef:
    x = b.ref(n.arg(0))
    rank = len(b.shape(x))
    mode = n.attr("mode", "constant")
    if n.opset >= 11:
        pads, value = n.ints("pads", 1, since=11), n.const(2, "constant_value")
        axes = n.ints("axes", 3, since=11)
    else:
        pads, value, axes = n.attr("pads" if n.opset >= 2 else "paddings"), n.attr("value", 0.0), None
    axes = list(range(rank)) if axes is None else [_axis(a, rank) for a in axes]
    pads = [int(p) for p in pads or [0] * (2 * len(axes))]
    widths = [(0, 0)] * rank
    for i, a in enumerate(axes):
        widths[a] = (pads[i], pads[i + len(axes)])
    if any(p < 0 for w in widths for p in w):
        raise _Unsupported(f"negative pads {pads} (cropping)")
    if mode == "constant":
        fill = 0.0 if value is None or np.size(value) == 0 else _scalar(value)
        if fill != 0.0:
            raise _Unsupported(f"constant padding with {fill} (the catalog pads zeros)")
    elif mode not in ("reflect", "edge"):
        raise _Unsupported(f"mode {mode!r}")
    return b.pad(x, widths, {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode])


def _batch_norm(b: _Builder, n: _Node) -> ValueRef:
    if n.attr("training_mode", 0):
        raise _Unsupported("training_mode=1 (batch statistics)")
    scale, bias, mean, var = (n.const(i, w) for i, w in enumerate(("scale", "B", "mean", "var"), 1))
    return b.op("batch_norm", [n.arg(0), mean, var, scale, bias], eps=float(n.attr("epsilon", np.float32(1e-5))))


# --- converters: convolution and pooling ----------------------------------------------------------


def _pads(n: _Node, sizes: Sequence[int], spans: Sequence[int], strides: Sequence[int]) -> tuple[list[int], ...]:
    """(begins, ends) per spatial dim, from `pads` or computed for auto_pad."""
    k = len(sizes)
    auto = n.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        return [0] * k, [0] * k
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, span, s in zip(sizes, spans, strides):
            total = max(0, (-(-size // s) - 1) * s + span - size)
            begin = total // 2 if auto == "SAME_UPPER" else total - total // 2
            begins.append(begin)
            ends.append(total - begin)
        return begins, ends
    if auto != "NOTSET":
        raise _Unsupported(f"auto_pad={auto!r}")
    pads = [int(p) for p in n.attr("pads", [0] * (2 * k))]
    if any(p < 0 for p in pads):
        raise _Unsupported(f"negative pads {pads}")
    return pads[:k], pads[k:]


def _conv(b: _Builder, n: _Node) -> ValueRef:
    x = b.ref(n.arg(0))
    shape = b.shape(x)
    w = n.const(1, "the weight")
    k = len(shape) - 2
    if w is None or k not in (1, 2, 3):
        raise _Unsupported(f"a {k}-D convolution" if w is not None else "no weight")
    kernel = [int(d) for d in w.shape[2:]]
    if n.attr("kernel_shape") is not None and list(n.attr("kernel_shape")) != kernel:
        raise _Unsupported(f"kernel_shape {n.attr('kernel_shape')} differs from the weight's {kernel}")
    strides = [int(s) for s in n.attr("strides", [1] * k)]
    group = int(n.attr("group", 1))
    if group > MAX_GROUPS or max(strides) > MAX_STRIDE:
        raise _Unsupported(f"group={group}, strides={strides}: the catalog's convolutions have at most "
                           f"{MAX_GROUPS} groups and strides up to {MAX_STRIDE}")
    # A dilation on a kernel extent of 1 changes nothing; the catalog wants 1 there.
    dilations = [int(d) if kk > 1 else 1 for d, kk in zip(n.attr("dilations", [1] * k), kernel)]
    begins, ends = _pads(n, shape[2:], [d * (kk - 1) + 1 for d, kk in zip(dilations, kernel)], strides)
    # The catalog pads symmetrically: the asymmetric rest is an explicit zero padding first.
    sym = [min(lo, hi) for lo, hi in zip(begins, ends)]
    x = b.pad(x, [(0, 0), (0, 0)] + [(lo - s, hi - s) for lo, hi, s in zip(begins, ends, sym)])
    y: ValueRef = b.op(f"conv{k}d", [x, w], stride=tuple(strides), dilation=tuple(dilations), groups=group,
                       same=False, pads=tuple(sym))
    bias = n.const(2, "the bias")
    if bias is not None:
        y = b.op("add", [y, bias.reshape((-1,) + (1,) * k)])
    return y


def _pool_size(size: int, kernel: int, stride: int, begin: int, end: int, ceil: bool) -> int:
    span = size + begin + end - kernel
    if span < 0:
        raise _Unsupported("a pooling window larger than the padded input")
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    # ceil_mode: a window that would start in the end padding is dropped (onnxruntime, torch).
    return out - 1 if (out - 1) * stride >= size + begin else out


def _pool_padding(size: int, kernel: int, stride: int, begin: int, out: int) -> tuple[int, int] | None:
    """A symmetric catalog padding p and the first output j0 such that the catalog's windows
    j0 .. j0+out-1 (starting at j*stride - p) are ONNX's (starting at j*stride - begin)."""
    for p in range(begin, kernel // 2 + 1):  # the catalog (torch) pads at most half a kernel
        j0, rest = divmod(p - begin, stride)
        if rest == 0 and size + 2 * p >= kernel and j0 + out <= (size + 2 * p - kernel) // stride + 1:
            return p, j0
    return None


def _avg_divisor(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int], begins: Sequence[int],
                 ends: Sequence[int], outs: Sequence[int], include_pad: bool) -> np.ndarray:
    """How many elements onnxruntime divides each window's sum by: those inside the padded input
    (count_include_pad) or inside the input; a product of one count per spatial dim."""
    counts = []
    for size, k, s, lo, hi, out in zip(sizes, kernel, strides, begins, ends, outs):
        start = np.arange(out) * s - lo
        stop = np.minimum(start + k, size + hi)
        if not include_pad:
            start, stop = np.maximum(start, 0), np.minimum(stop, size)
        counts.append(stop - start)
    return functools.reduce(np.multiply.outer, counts)


def _pool(kind: str) -> Callable[[_Builder, _Node], ValueRef]:
    def convert(b: _Builder, n: _Node) -> ValueRef:
        x = b.ref(n.arg(0))
        shape = b.shape(x)
        k, sizes = len(shape) - 2, shape[2:]
        kernel = [int(v) for v in n.attr("kernel_shape", [])]
        strides = [int(s) for s in n.attr("strides", [1] * k)]
        if k not in (1, 2, 3) or len(kernel) != k:
            raise _Unsupported(f"{k}-D pooling with kernel {kernel}")
        if any(int(d) != 1 for d in n.attr("dilations", [1] * k)) or max(strides) > MAX_POOL_STRIDE:
            raise _Unsupported(f"dilations {n.attr('dilations')} or strides {strides}: the catalog's pooling "
                               f"has no dilation and strides up to {MAX_POOL_STRIDE}")
        begins, ends = _pads(n, sizes, kernel, strides)
        ceil = bool(n.attr("ceil_mode", 0))
        outs = [_pool_size(*g, ceil) for g in zip(sizes, kernel, strides, begins, ends)]
        if any((o - 1) * s - lo >= size for o, s, lo, size in zip(outs, strides, begins, sizes)):
            raise _Unsupported("a pooling window lies wholly in the padding")
        found = [_pool_padding(*g) for g in zip(sizes, kernel, strides, begins, outs)]
        plan = [p for p in found if p is not None]
        if len(plan) < k:
            # Pad explicitly (enough for every window), pool unpadded. Zeros are exact for a sum;
            # for a maximum the edge's copies are, as every window holds the edge element it copies.
            room = [max(hi, (o - 1) * s + kk - size - lo)
                    for size, kk, s, lo, hi, o in zip(sizes, kernel, strides, begins, ends, outs)]
            x = b.pad(x, [(0, 0), (0, 0)] + list(zip(begins, room)), "replicate" if kind == "max" else "constant")
            plan = [(0, 0)] * k
        y: ValueRef = b.op(f"{kind}_pool{k}d", [x], kernel=tuple(kernel), stride=tuple(strides),
                           padding=tuple(p for p, _ in plan))
        for i, ((_, first), out) in enumerate(zip(plan, outs)):
            y = b.slice(y, 2 + i, first, first + out)
        if kind == "avg":
            divisor = _avg_divisor(sizes, kernel, strides, begins, ends, outs, bool(n.attr("count_include_pad", 0)))
            taps = math.prod(kernel)
            if np.any(divisor != taps):  # the catalog divides by the kernel size: rescale, exactly
                y = b.op("div", [b.op("mul", [y, b.scalar(taps)]), divisor.astype(b.dtype.numpy())])
        return y

    return convert


_CONVERTERS: Mapping[str, Callable[[_Builder, _Node], ValueRef]] = MappingProxyType({
    "Identity": _identity, "Dropout": _dropout, "Cast": _cast,
    "Relu": _same("relu"), "Sigmoid": _same("sigmoid"), "Tanh": _same("tanh"), "Neg": _same("neg"),
    "Abs": _same("abs"), "Exp": _same("exp"), "Log": _same("log"), "Sqrt": _same("sqrt"), "Erf": _same("erf"),
    "Softplus": _same("softplus"), "Softsign": _same("softsign"), "GlobalAveragePool": _same("global_avg_pool2d"),
    "PRelu": _prelu, "LeakyRelu": _same("leaky_relu", negative_slope=("alpha", float(np.float32(0.01)))),
    "Elu": _same("elu", alpha=("alpha", 1.0)), "Gelu": _same("gelu", approximate=("approximate", "none")),
    "Add": _same("add", 2), "Sub": _same("sub", 2), "Mul": _same("mul", 2), "Div": _same("div", 2),
    "MatMul": _matmul, "Gemm": _gemm,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Concat": _concat, "Pad": _pad,
    "Softmax": _softmax("softmax"), "LogSoftmax": _softmax("log_softmax"), "Clip": _clip,
    "BatchNormalization": _batch_norm, "Conv": _conv, "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
})
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted({*_CONVERTERS, "Constant", "Shape", "Size"}))


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
    b = _Builder(in_type.dtype)
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
        convert = _CONVERTERS.get(node.op_type)
        if convert is None:
            raise ModelError(f"{where}: operator {node.op_type} is not supported. Supported: "
                             f"{', '.join(SUPPORTED_OPS)}, and any node whose inputs are all constant")
        extra = [o for o in node.output[1:] if o in used]
        if extra:
            raise ModelError(f"{where}: only the first output is supported, but {extra} are used")
        try:
            ref = convert(b, _Node(node.op_type, args, attrs, opset))
        except _Unsupported as exc:
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
