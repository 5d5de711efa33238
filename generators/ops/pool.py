"""Pooling in PyTorch's channels-first layout: max_pool1d/2d/3d, avg_pool1d/2d/3d (floor
mode, symmetric zero padding counted in the average) and global_avg_pool2d.

The tf lowerings transpose to channels-last, pad explicitly, pool VALID and transpose back.
The ONNX lowerings map directly (ONNX is channels-first) and spell the dtypes out that opset
21's pooling operators lack. No framework import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from generators.dtypes import FLOATS, INTS, DType
from generators.spec import Attrs, Call, IntsAttr, Operand, OpSpec, RankCtx
from generators.symbolic import Shape, SymBool, floordiv, ite

MAX_POOL_KERNEL = 3
MAX_POOL_STRIDE = 3


def pool_div_small(a: Any, s: Any, hi: int) -> Any:
    """floor(a / s) for s in 1..hi as a case split: a z3 division by a variable makes the
    model carry a `div0` function, which the solver wrapper cannot read."""
    out = a
    for c in range(2, hi + 1):
        out = ite(s == c, floordiv(a, c), out)
    return out


def _spatial(ctx: RankCtx) -> int:
    return ctx.ranks[0] - 2


def _pool_requires(rank: int, unpadded_fits: bool) -> Any:
    def requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
        x = shapes[0]
        if len(x) != rank:
            return [False]
        needs: list[SymBool] = []
        for i in range(rank - 2):
            k, p = attrs["kernel"][i], attrs["padding"][i]
            needs.append(2 * p <= k)  # torch: padding at most half the kernel
            needs.append(x[2 + i] + 2 * p >= k)
            if unpadded_fits:
                needs.append(x[2 + i] >= k)  # torch avg_pool3d: input smaller than kernel
        return needs

    return requires


def _pool_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    x = shapes[0]
    out = [x[0], x[1]]
    for i in range(len(x) - 2):
        k, s, p = attrs["kernel"][i], attrs["stride"][i], attrs["padding"][i]
        out.append(pool_div_small(x[2 + i] + 2 * p - k, s, MAX_POOL_STRIDE) + 1)
    return (tuple(out),)


def pool_windows(np: Any, x: Any, attrs: Attrs, fill: Any) -> Any:
    """All pooling windows of x (already widened), padded with `fill`: (N, C, *out, taps)."""
    n = x.ndim - 2
    kernel, stride, pads = attrs["kernel"], attrs["stride"], attrs["padding"]
    xp = np.pad(x, [(0, 0), (0, 0), *[(p, p) for p in pads]], constant_values=fill)
    sizes = [(xp.shape[2 + i] - kernel[i]) // stride[i] + 1 for i in range(n)]
    taps = []
    for offset in np.ndindex(*kernel):
        window = tuple(slice(offset[i], offset[i] + (sizes[i] - 1) * stride[i] + 1, stride[i]) for i in range(n))
        taps.append(xp[(slice(None), slice(None), *window)])
    return np.stack(taps, axis=-1)


def reference_max_pool(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        wide, fill = x.astype(np.float64), -np.inf
    else:
        wide, fill = x.astype(np.int64), np.iinfo(x.dtype).min
    return pool_windows(np, wide, attrs, fill).max(axis=-1).astype(x.dtype)


def reference_avg_pool(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    windows = pool_windows(np, x.astype(np.float64), attrs, 0.0)
    return windows.mean(axis=-1).astype(x.dtype)  # zero padding counts (count_include_pad)


def torch_max_pool(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    fn = getattr(torch.nn.functional, f"max_pool{len(x.shape) - 2}d")
    return fn(x, tuple(attrs["kernel"]), tuple(attrs["stride"]), tuple(attrs["padding"]))


def torch_avg_pool(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    fn = getattr(torch.nn.functional, f"avg_pool{len(x.shape) - 2}d")
    return fn(x, tuple(attrs["kernel"]), tuple(attrs["stride"]), tuple(attrs["padding"]))


def tf_pool_nd(tf: Any, x: Any, attrs: Attrs, kind: str) -> Any:
    """Channels-last VALID pooling after explicit padding: with the dtype's lowest value for
    max (never selected: every window holds a real element), with zeros for avg (torch's
    count_include_pad=True averages them in)."""
    n = len(x.shape) - 2
    for i in range(n):
        if x.shape[2 + i] + 2 * attrs["padding"][i] < attrs["kernel"][i]:
            # tf 2.21 CPU MaxPool/AvgPool (float32/16, bfloat16) dies of SIGFPE on an empty
            # output instead of raising; raise as it should.
            raise ValueError("pooling window larger than the padded input")
    x = tf.transpose(x, [0, *range(2, n + 2), 1])  # N C *S -> N *S C
    if any(attrs["padding"]):
        spec = [[0, 0]] + [[p, p] for p in attrs["padding"]] + [[0, 0]]
        x = tf.pad(x, spec, constant_values=x.dtype.min if kind == "MAX" else 0)
    fn = tf.nn.max_pool if kind == "MAX" else tf.nn.avg_pool
    y = fn(x, list(attrs["kernel"]), list(attrs["stride"]), "VALID")
    return tf.transpose(y, [0, n + 1, *range(1, n + 1)])


def tf_max_pool(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf_pool_nd(tf, inputs[0], attrs, "MAX")


def tf_avg_pool(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf_pool_nd(tf, inputs[0], attrs, "AVG")


def onnx_pool_taps(g: Any, x: Any, attrs: Attrs, fill: float) -> list[Any]:
    """Pooling spelled out, for dtypes the standard's MaxPool/AveragePool lack (no casts):
    one strided Slice of x, padded with `fill`, per kernel tap, each of the output's shape."""
    n = g.rank(x) - 2
    kernel, stride, pads = list(attrs["kernel"]), list(attrs["stride"]), list(attrs["padding"])
    sizes = [(g.shape(x)[2 + i] + 2 * pads[i] - kernel[i]) // stride[i] + 1 for i in range(n)]
    if any(pads):
        x = g.Pad(x, g.ints([0, 0, *pads, 0, 0, *pads]), g.scalar(fill, like=x))
    axes, steps = g.ints(list(range(2, n + 2))), g.ints(stride)
    taps = []
    for flat in range(math.prod(kernel)):
        offset: list[int] = []
        for k in reversed(kernel):
            offset.insert(0, flat % k)
            flat //= k
        ends = [o + (size - 1) * s + 1 for o, size, s in zip(offset, sizes, stride)]
        taps.append(g.Slice(x, g.ints(offset), g.ints(ends), axes, steps))
    return taps


def onnx_max_pool(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, pads = inputs[0], list(attrs["padding"])
    dtype = g.dtype(x)
    if dtype.value in ("float16", "float32", "float64", "int8", "uint8"):
        return g.MaxPool(
            x, kernel_shape=list(attrs["kernel"]), strides=list(attrs["stride"]), pads=pads + pads, ceil_mode=0
        )
    # MaxPool has no bfloat16, int16, int32 or int64 in opset 21: the max over the taps.
    # The padding never wins: every window holds a real element.
    fill = float("-inf") if dtype.value == "bfloat16" else -(2 ** (dtype.bits - 1))
    return g.Max(*onnx_pool_taps(g, x, attrs, fill))


def onnx_avg_pool(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, pads = inputs[0], list(attrs["padding"])
    if g.dtype(x).value == "bfloat16":
        # AveragePool has no bfloat16 in opset 21: sum the taps (zero padding included),
        # divide by the window size.
        taps = onnx_pool_taps(g, x, attrs, 0.0)
        return g.Div(g.Sum(*taps), g.scalar(len(taps), like=x))
    return g.AveragePool(
        x, kernel_shape=list(attrs["kernel"]), strides=list(attrs["stride"]), pads=pads + pads,
        ceil_mode=0, count_include_pad=1,
    )


def onnx_global_avg_pool2d(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if g.dtype(x).value == "bfloat16":  # GlobalAveragePool has no bfloat16; ReduceMean has
        return g.ReduceMean(x, g.ints([2, 3]), keepdims=1)
    return g.GlobalAveragePool(x)


def _pool(kind: str, rank: int, dtypes: frozenset[DType], excluded: dict[DType, str]) -> OpSpec:
    n = rank - 2
    is_max = kind == "max"
    doc = f"torch F.{kind}_pool{n}d with ceil_mode=False (tf pooling has no ceil mode)"
    if not is_max:
        doc += " and count_include_pad=True (the zero padding is averaged in)"
    if not is_max and n == 3:
        doc += "; torch avg_pool3d also needs the unpadded input to hold a window"
    return OpSpec(
        name=f"{kind}_pool{n}d",
        operands=(Operand("x", ranks=(rank,)),),
        dtypes=dtypes,
        attrs={
            "kernel": IntsAttr(_spatial, 1, MAX_POOL_KERNEL),
            "stride": IntsAttr(_spatial, 1, MAX_POOL_STRIDE),
            "padding": IntsAttr(_spatial, 0, 1),
        },
        requires=_pool_requires(rank, unpadded_fits=kind == "avg" and n == 3),
        infer=_pool_infer,
        reference=reference_max_pool if is_max else reference_avg_pool,
        torch=torch_max_pool if is_max else torch_avg_pool,
        tf=tf_max_pool if is_max else tf_avg_pool,
        onnx=onnx_max_pool if is_max else onnx_avg_pool,
        excluded_dtypes=excluded,
        doc=doc,
    )


_TORCH_NO_INT_MAX_POOL1D = "torch max_pool1d has no integer kernel"
_NO_INT_AVG = "tf AvgPool has no integer kernel (and torch avg_pool truncates integer means)"
_INT_EXCLUDED = {d: _NO_INT_AVG for d in INTS}

MAX_POOL1D = _pool("max", 3, FLOATS, {d: _TORCH_NO_INT_MAX_POOL1D for d in INTS})
MAX_POOL2D = _pool("max", 4, FLOATS | INTS, {})
MAX_POOL3D = _pool("max", 5, frozenset({DType.bfloat16, DType.float32}), {
    DType.float16: "tf MaxPool3D has no float16 CPU kernel",
    DType.float64: "tf MaxPool3D has no float64 kernel",
    **{d: "tf MaxPool3D has no integer kernel" for d in INTS},
})
AVG_POOL1D = _pool("avg", 3, FLOATS, _INT_EXCLUDED)
AVG_POOL2D = _pool("avg", 4, FLOATS, _INT_EXCLUDED)
AVG_POOL3D = _pool("avg", 5, frozenset({DType.float32}), {
    **_INT_EXCLUDED,
    DType.float16: "torch avg_pool3d has no float16 CPU kernel (nor has tf AvgPool3D)",
    DType.bfloat16: "torch avg_pool3d has no bfloat16 CPU kernel",
    DType.float64: "tf AvgPool3D has no float64 CPU kernel",
})


def _global_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [len(shapes[0]) == 4]


def _global_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    x = shapes[0]
    return ((x[0], x[1], 1, 1),)


def reference_global_avg_pool2d(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(x.dtype)


GLOBAL_AVG_POOL2D = OpSpec(
    name="global_avg_pool2d",
    operands=(Operand("x", ranks=(4,)),),
    dtypes=FLOATS,
    requires=_global_requires,
    infer=_global_infer,
    reference=reference_global_avg_pool2d,
    torch=Call("torch.nn.functional.adaptive_avg_pool2d", fixed=(("output_size", 1),)),
    tf=Call("tf.math.reduce_mean", fixed=(("axis", (2, 3)), ("keepdims", True))),
    onnx=onnx_global_avg_pool2d,
    excluded_dtypes={d: "torch adaptive_avg_pool2d (a mean) has no integer kernel" for d in INTS},
    doc="torch F.adaptive_avg_pool2d(x, 1): the mean over H and W, kept as 1x1.",
)

OPS = (MAX_POOL1D, MAX_POOL2D, MAX_POOL3D, AVG_POOL1D, AVG_POOL2D, AVG_POOL3D, GLOBAL_AVG_POOL2D)
