"""The ONNX loader's per-op-type converters: each maps one ONNX node (inputs already graph values
or folded constants) exactly onto catalog operators through the loader's Builder, or raises
Unsupported. Imports onnx and generators; generators.load.onnx only for type checking.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from onnx import helper

from generators.ir import ValueRef
from generators.ops.conv import MAX_GROUPS, MAX_STRIDE
from generators.ops.pool import MAX_POOL_STRIDE

if TYPE_CHECKING:
    from generators.load.onnx import Builder


Arg = Union[ValueRef, np.ndarray, None]  # a node input: a graph value, a folded constant, or absent


class Unsupported(Exception):
    """Raised by a converter; the loader adds the node's name and type and re-raises a ModelError."""


# --- one ONNX node, as the converters see it ------------------------------------------------------


@dataclass
class OnnxNode:
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
            raise Unsupported(f"{what} (input {i}) is computed from the model input; it must be a constant")
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
        raise Unsupported(f"axis {axis} out of range for rank {rank}")
    return axis % rank


# --- converters: elementwise, matrix products, shapes ------------------------------------------------


def _identity(b: Builder, n: OnnxNode) -> ValueRef:
    return b.ref(n.arg(0))


def _dropout(b: Builder, n: OnnxNode) -> ValueRef:
    training = n.const(2, "training_mode")
    if training is not None and _scalar(training):
        raise Unsupported("training_mode=True (random dropout)")
    return b.ref(n.arg(0))


def _cast(b: Builder, n: OnnxNode) -> ValueRef:
    to = helper.tensor_dtype_to_np_dtype(n.attr("to"))
    if to != b.dtype.numpy():
        raise Unsupported(f"a cast to {to} (only casts to the model's own {b.dtype.value} are no-ops)")
    return b.ref(n.arg(0))


def _same(name: str, arity: int = 1, **attrs: tuple[str, Any]) -> Callable[[Builder, OnnxNode], ValueRef]:
    """An operator the catalog has as is: its first `arity` inputs, and each catalog attribute
    from (ONNX attribute, ONNX default). ONNX float attributes are float32: their exact values."""

    def convert(b: Builder, n: OnnxNode) -> ValueRef:
        return b.op(name, n.args[:arity], **{k: n.attr(key, default) for k, (key, default) in attrs.items()})

    return convert


def _prelu(b: Builder, n: OnnxNode) -> ValueRef:
    x, slope = b.ref(n.arg(0)), n.const(1, "the slope")
    rank = len(b.shape(x))
    dims = (1,) * (rank - (0 if slope is None else slope.ndim)) + (() if slope is None else slope.shape)
    # The catalog's prelu has one slope, or one per channel (axis 1).
    if slope is None or rank < 2 or len(dims) > rank or any(d != 1 for i, d in enumerate(dims) if i != 1):
        raise Unsupported(f"a slope of shape {None if slope is None else list(slope.shape)} for rank {rank}")
    return b.op("prelu", [x, slope.reshape(-1)])


def _matmul(b: Builder, n: OnnxNode) -> ValueRef:
    a, w = n.arg(0), n.arg(1)
    if isinstance(w, np.ndarray) and w.ndim == 2 and not isinstance(a, np.ndarray):
        return b.op("linear", [a, np.ascontiguousarray(w.T)])  # x @ W is linear with weight W^T
    return b.op("matmul", [a, w])


def _transposed(b: Builder, arg: Arg) -> Arg:
    if isinstance(arg, np.ndarray):
        return np.ascontiguousarray(arg.T)
    return b.op("transpose", [arg], perm=(1, 0))


def _gemm(b: Builder, n: OnnxNode) -> ValueRef:
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


def _flatten(b: Builder, n: OnnxNode) -> ValueRef:
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


def _reshape(b: Builder, n: OnnxNode) -> ValueRef:
    shape = b.shape(n.arg(0))
    target = n.ints("shape", 1, since=5)
    if target is None:
        raise Unsupported("no target shape")
    out = []
    for i, d in enumerate(target):
        if d == 0 and not n.attr("allowzero", 0):
            if i >= len(shape):
                raise Unsupported(f"a 0 (copy) at position {i} beyond the input's rank")
            d = shape[i]
        out.append(d)
    known = math.prod(d for d in out if d != -1)
    if out.count(-1) == 1 and known > 0:
        out[out.index(-1)] = math.prod(shape) // known
    if math.prod(out) != math.prod(shape) or any(d <= 0 for d in out):
        raise Unsupported(f"target shape {target} does not fit an input of shape {list(shape)}")
    return b.reshape(n.arg(0), out)


def _transpose(b: Builder, n: OnnxNode) -> ValueRef:
    x = b.ref(n.arg(0))
    r = len(b.shape(x))
    perm = tuple(int(p) for p in n.attr("perm", range(r - 1, -1, -1)))
    return x if perm == tuple(range(r)) else b.op("transpose", [x], perm=perm)


def _squeeze(b: Builder, n: OnnxNode) -> ValueRef:
    x = b.ref(n.arg(0))
    shape = b.shape(x)
    axes = n.ints("axes", 1, since=13)
    chosen = [i for i, d in enumerate(shape) if d == 1] if axes is None else [_axis(a, len(shape)) for a in axes]
    for a in sorted(set(chosen), reverse=True):  # from the back, so earlier axes keep their numbers
        x = b.op("squeeze", [x], axis=a)
    return x


def _unsqueeze(b: Builder, n: OnnxNode) -> ValueRef:
    x = b.ref(n.arg(0))
    axes = n.ints("axes", 1, since=13)
    if not axes:
        raise Unsupported("no axes")
    out_rank = len(b.shape(x)) + len(axes)
    for a in sorted({_axis(a, out_rank) for a in axes}):  # ascending: each is an output position
        x = b.op("unsqueeze", [x], axis=a)
    return x


def _concat(b: Builder, n: OnnxNode) -> ValueRef:
    parts = [b.ref(a) for a in n.args if a is not None]
    axis = _axis(int(n.attr("axis")), len(b.shape(parts[0])))
    out = parts[0]
    rest = parts[1:]
    while rest:  # the catalog's concat takes 2..4 inputs
        out, rest = b.op("concat", [out, *rest[:3]], axis=axis), rest[3:]
    return out


def _softmax(name: str) -> Callable[[Builder, OnnxNode], ValueRef]:
    def convert(b: Builder, n: OnnxNode) -> ValueRef:
        x = b.ref(n.arg(0))
        shape = b.shape(x)
        axis = _axis(int(n.attr("axis", -1 if n.opset >= 13 else 1)), len(shape))
        if n.opset >= 13 or axis == len(shape) - 1:
            return b.op(name, [x], axis=axis)
        # Before opset 13 the input is seen as 2-D: all dims from `axis` on form one softmax row.
        rows = b.reshape(x, [math.prod(shape[:axis]), math.prod(shape[axis:])])
        return b.reshape(b.op(name, [rows], axis=1), shape)

    return convert


def _clip(b: Builder, n: OnnxNode) -> ValueRef:
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


def _pad(b: Builder, n: OnnxNode) -> ValueRef:
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
        raise Unsupported(f"negative pads {pads} (cropping)")
    if mode == "constant":
        fill = 0.0 if value is None or np.size(value) == 0 else _scalar(value)
        if fill != 0.0:
            raise Unsupported(f"constant padding with {fill} (the catalog pads zeros)")
    elif mode not in ("reflect", "edge"):
        raise Unsupported(f"mode {mode!r}")
    return b.pad(x, widths, {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode])


def _batch_norm(b: Builder, n: OnnxNode) -> ValueRef:
    if n.attr("training_mode", 0):
        raise Unsupported("training_mode=1 (batch statistics)")
    scale, bias, mean, var = (n.const(i, w) for i, w in enumerate(("scale", "B", "mean", "var"), 1))
    return b.op("batch_norm", [n.arg(0), mean, var, scale, bias], eps=float(n.attr("epsilon", np.float32(1e-5))))


# --- converters: convolution and pooling ----------------------------------------------------------


def _pads(n: OnnxNode, sizes: Sequence[int], spans: Sequence[int], strides: Sequence[int]) -> tuple[list[int], ...]:
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
        raise Unsupported(f"auto_pad={auto!r}")
    pads = [int(p) for p in n.attr("pads", [0] * (2 * k))]
    if any(p < 0 for p in pads):
        raise Unsupported(f"negative pads {pads}")
    return pads[:k], pads[k:]


def _conv(b: Builder, n: OnnxNode) -> ValueRef:
    x = b.ref(n.arg(0))
    shape = b.shape(x)
    w = n.const(1, "the weight")
    k = len(shape) - 2
    if w is None or k not in (1, 2, 3):
        raise Unsupported(f"a {k}-D convolution" if w is not None else "no weight")
    kernel = [int(d) for d in w.shape[2:]]
    if n.attr("kernel_shape") is not None and list(n.attr("kernel_shape")) != kernel:
        raise Unsupported(f"kernel_shape {n.attr('kernel_shape')} differs from the weight's {kernel}")
    strides = [int(s) for s in n.attr("strides", [1] * k)]
    group = int(n.attr("group", 1))
    if group > MAX_GROUPS or max(strides) > MAX_STRIDE:
        raise Unsupported(f"group={group}, strides={strides}: the catalog's convolutions have at most "
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
        raise Unsupported("a pooling window larger than the padded input")
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


def _pool(kind: str) -> Callable[[Builder, OnnxNode], ValueRef]:
    def convert(b: Builder, n: OnnxNode) -> ValueRef:
        x = b.ref(n.arg(0))
        shape = b.shape(x)
        k, sizes = len(shape) - 2, shape[2:]
        kernel = [int(v) for v in n.attr("kernel_shape", [])]
        strides = [int(s) for s in n.attr("strides", [1] * k)]
        if k not in (1, 2, 3) or len(kernel) != k:
            raise Unsupported(f"{k}-D pooling with kernel {kernel}")
        if any(int(d) != 1 for d in n.attr("dilations", [1] * k)) or max(strides) > MAX_POOL_STRIDE:
            raise Unsupported(f"dilations {n.attr('dilations')} or strides {strides}: the catalog's pooling "
                               f"has no dilation and strides up to {MAX_POOL_STRIDE}")
        begins, ends = _pads(n, sizes, kernel, strides)
        ceil = bool(n.attr("ceil_mode", 0))
        outs = [_pool_size(*g, ceil) for g in zip(sizes, kernel, strides, begins, ends)]
        if any((o - 1) * s - lo >= size for o, s, lo, size in zip(outs, strides, begins, sizes)):
            raise Unsupported("a pooling window lies wholly in the padding")
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


CONVERTERS: Mapping[str, Callable[[Builder, OnnxNode], ValueRef]] = MappingProxyType({
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
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted({*CONVERTERS, "Constant", "Shape", "Size"}))

