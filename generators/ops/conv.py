"""Convolutions in PyTorch's channels-first layout: conv1d/2d/3d (torch weight layout
(C_out, C_in/groups, *kernel), no bias: `add` exists) and conv_transpose1d/2d.

The tf lowerings transpose to channels-last, call tf and transpose back; the ONNX ones map
directly (ONNX is channels-first) and spell bfloat16 out, which opset 21's Conv and
ConvTranspose lack. No framework import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from generators.dtypes import FLOATS, DType
from generators.spec import Attrs, Choice, IntAttr, IntsAttr, Operand, OpSpec, RankCtx
from generators.symbolic import Shape, SymBool, all_of, any_of, floordiv, ite, mod

_NO_INT_KERNEL = "torch CPU convolution has no int32 kernel and tf Conv has no int64 kernel"
CONV_EXCLUDED = {
    DType.int8: _NO_INT_KERNEL,
    DType.int16: _NO_INT_KERNEL,
    DType.int32: _NO_INT_KERNEL,
    DType.int64: _NO_INT_KERNEL,
    DType.uint8: _NO_INT_KERNEL,
}
MAX_KERNEL = 8  # kernel extents are weight dims; bounded even if the size limits grow
MAX_STRIDE = 2
MAX_GROUPS = 4


def div_small(a: Any, s: Any, hi: int) -> Any:
    """floor(a / s) for s in 1..hi, as a case split: a z3 division by a variable makes the
    model carry a `div0` function, which the solver wrapper cannot read."""
    out = a
    for c in range(2, hi + 1):
        out = ite(s == c, floordiv(a, c), out)
    return out


def divides_small(s: Any, a: Any, hi: int) -> SymBool:
    """s divides a, for s in 1..hi (a case split, for the same reason as div_small)."""
    return any_of([all_of([s == c, mod(a, c) == 0]) for c in range(1, hi + 1)])


def _spatial(ctx: RankCtx) -> int:
    return ctx.ranks[0] - 2


def _explicit_pads(ctx: RankCtx) -> int:
    return 0 if ctx.attrs.get("same") else ctx.ranks[0] - 2


# --- conv1d / conv2d / conv3d -----------------------------------------------------------


def _conv_pads(shapes: Sequence[Shape], attrs: Attrs) -> list[tuple[Any, Any]]:
    """(before, after) padding per spatial dim; 'same' puts the odd extra at the end, as both
    torch padding='same' and tf 'SAME' (stride 1) do."""
    x, w = shapes
    n = len(x) - 2
    if not attrs["same"]:
        return [(p, p) for p in attrs["pads"]]
    out = []
    for i in range(n):
        total = attrs["dilation"][i] * (w[2 + i] - 1)
        out.append((floordiv(total, 2), total - floordiv(total, 2)))
    return out


def _conv_requires(rank: int) -> Any:
    def requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
        x, w = shapes
        if len(x) != rank or len(w) != rank:
            return [False]
        n = rank - 2
        g = attrs["groups"]
        stride, dilation = attrs["stride"], attrs["dilation"]
        needs: list[SymBool] = [w[1] * g == x[1], divides_small(g, w[0], MAX_GROUPS)]
        for i, (lo, hi) in enumerate(_conv_pads(shapes, attrs)):
            needs.append(w[2 + i] <= MAX_KERNEL)
            needs.append(x[2 + i] + lo + hi >= dilation[i] * (w[2 + i] - 1) + 1)
            # Dilation is meaningless on a kernel extent of 1; pinning it to 1 there avoids a
            # torch 2.13 CPU float16 segfault (kernel 1, dilation 2, stride 2, padding 1, size 1).
            needs.append(any_of([w[2 + i] > 1, dilation[i] == 1]))
        if attrs["same"]:
            needs.extend(s == 1 for s in stride)  # torch rejects padding='same' with stride > 1
        if n == 3:
            # tf.nn.convolution (used for 3-D) rejects strides > 1 together with dilations > 1.
            needs.append(any_of([all_of([s == 1 for s in stride]), all_of([d == 1 for d in dilation])]))
        return needs

    return requires


def _conv_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    x, w = shapes
    out = [x[0], w[0]]
    for i, (lo, hi) in enumerate(_conv_pads(shapes, attrs)):
        span = attrs["dilation"][i] * (w[2 + i] - 1) + 1
        out.append(div_small(x[2 + i] + lo + hi - span, attrs["stride"][i], MAX_STRIDE) + 1)
    return (tuple(out),)


def reference_conv_nd(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    n = x.ndim - 2
    wide = np.float64 if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else np.int64
    xf, wf = x.astype(wide), w.astype(wide)
    stride, dilation, groups = attrs["stride"], attrs["dilation"], attrs["groups"]
    kernel = w.shape[2:]
    if attrs["same"]:
        pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for d, k in zip(dilation, kernel)]
    else:
        pads = [(p, p) for p in attrs["pads"]]
    xp = np.pad(xf, [(0, 0), (0, 0), *pads])
    sizes = [(xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(n)]
    batch, c_out, c_per_group = x.shape[0], w.shape[0], w.shape[1]
    y = np.zeros((batch, groups, c_out // groups, *sizes), dtype=wide)
    wg = wf.reshape(groups, c_out // groups, c_per_group, *kernel)
    for offset in np.ndindex(*kernel):
        window = tuple(
            slice(offset[i] * dilation[i], offset[i] * dilation[i] + (sizes[i] - 1) * stride[i] + 1, stride[i])
            for i in range(n)
        )
        patch = xp[(slice(None), slice(None), *window)].reshape(batch, groups, c_per_group, *sizes)
        tap = wg[(slice(None), slice(None), slice(None), *offset)]  # (groups, c_out/g, c_in/g)
        y = y + np.einsum("ngi...,goi->ngo...", patch, tap)
    return y.reshape(batch, c_out, *sizes).astype(x.dtype)


def torch_conv_nd(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    n = len(w.shape) - 2
    fn = getattr(torch.nn.functional, f"conv{n}d")
    if attrs["same"]:
        padding: Any = "same"
        totals = [d * (k - 1) for d, k in zip(attrs["dilation"], w.shape[2:])]
        if any(t % 2 for t in totals):
            # What torch does itself for asymmetric 'same' (with a UserWarning): pad the odd
            # extra at the end, explicitly, then convolve without padding.
            spec = []
            for t in reversed(totals):
                spec += [t // 2, t - t // 2]
            x = torch.nn.functional.pad(x, spec)
            padding = "valid"
    elif any(attrs["pads"]):
        padding = tuple(attrs["pads"])
    else:
        padding = "valid"
    # Dilation has no effect on a kernel extent of 1; passing 1 there sidesteps a torch 2.13 CPU
    # float16 segfault (kernel 1, dilation 2, stride 2, padding 1, input extent 1).
    dilation = tuple(d if k > 1 else 1 for d, k in zip(attrs["dilation"], w.shape[2:]))
    return fn(x, w, stride=tuple(attrs["stride"]), padding=padding, dilation=dilation, groups=attrs["groups"])


def tf_conv_nd(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    n = len(w.shape) - 2
    stride, dilation, groups = list(attrs["stride"]), list(attrs["dilation"]), attrs["groups"]
    x = tf.transpose(x, [0, *range(2, n + 2), 1])  # N C *S -> N *S C
    w = tf.transpose(w, [*range(2, n + 2), 1, 0])  # O I *K -> *K I O
    padding: Any = "SAME" if attrs["same"] else "VALID"
    if not attrs["same"] and any(attrs["pads"]):
        spec = [[0, 0]] + [[p, p] for p in attrs["pads"]] + [[0, 0]]
        if n == 2:
            padding = spec  # Conv2D takes explicit paddings
        else:
            x = tf.pad(x, spec)
            padding = "VALID"
    if n == 1:
        y = tf.nn.conv1d(x, w, stride, padding, dilations=dilation)
    elif n == 2:
        y = tf.nn.conv2d(x, w, stride, padding, dilations=dilation)
    else:
        # CPU Conv3D has no grouped kernel (and no float64 dilation, which tf.nn.convolution
        # handles by space-to-batch): convolve each channel group and concatenate.
        xs = tf.split(x, groups, axis=n + 1)
        ws = tf.split(w, groups, axis=n + 1)
        ys = [tf.nn.convolution(a, b, strides=stride, padding=padding, dilations=dilation) for a, b in zip(xs, ws)]
        y = ys[0] if groups == 1 else tf.concat(ys, axis=n + 1)
    return tf.transpose(y, [0, n + 1, *range(1, n + 1)])


def onnx_conv_bfloat16(g: Any, x: Any, w: Any, attrs: Attrs, begin: list[int], end: list[int]) -> Any:
    """Conv as im2col and one MatMul, for bfloat16, which the standard's Conv lacks before
    opset 22 (no casts): a strided Slice of the padded input per kernel tap, stacked to
    (N, groups, C_in/groups * taps, positions), times the weight as (groups, C_out/groups, ...)."""
    (batch, _, *spatial), (c_out, c_group, *kernel) = g.shape(x), g.shape(w)
    n, groups = len(kernel), attrs["groups"]
    stride, dilation = list(attrs["stride"]), list(attrs["dilation"])
    sizes = [(spatial[i] + begin[i] + end[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(n)]
    if any(begin) or any(end):
        x = g.Pad(x, g.ints([0, 0, *begin, 0, 0, *end]))
    axes, steps = g.ints(list(range(2, n + 2))), g.ints(stride)
    taps = []
    for flat in range(math.prod(kernel)):
        offset: list[int] = []
        for k in reversed(kernel):  # row-major, like the weight's kernel dims
            offset.insert(0, flat % k)
            flat //= k
        starts = [o * d for o, d in zip(offset, dilation)]
        ends = [a + (size - 1) * s + 1 for a, size, s in zip(starts, sizes, stride)]
        taps.append(g.Unsqueeze(g.Slice(x, g.ints(starts), g.ints(ends), axes, steps), g.ints([2])))
    cols = g.Concat(*taps, axis=2) if len(taps) > 1 else taps[0]
    cols = g.Reshape(cols, g.ints([batch, groups, c_group * len(taps), math.prod(sizes)]))
    weights = g.Reshape(w, g.ints([groups, c_out // groups, c_group * len(taps)]))
    return g.Reshape(g.MatMul(weights, cols), g.ints([batch, c_out, *sizes]))


def onnx_conv_nd(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    kernel = g.shape(w)[2:]
    if attrs["same"]:
        # Explicit pads rather than auto_pad SAME_UPPER: the same split (odd extra at the end).
        totals = [d * (k - 1) for d, k in zip(attrs["dilation"], kernel)]
        begin, end = [t // 2 for t in totals], [t - t // 2 for t in totals]
    else:
        begin, end = list(attrs["pads"]), list(attrs["pads"])
    if g.dtype(x).value == "bfloat16":
        return onnx_conv_bfloat16(g, x, w, attrs, begin, end)
    return g.Conv(
        x, w, kernel_shape=list(kernel), strides=list(attrs["stride"]), dilations=list(attrs["dilation"]),
        pads=begin + end, group=attrs["groups"],
    )


def _conv(rank: int, dtypes: frozenset[DType], excluded: dict[DType, str]) -> OpSpec:
    n = rank - 2
    return OpSpec(
        name=f"conv{n}d",
        operands=(Operand("x", ranks=(rank,)), Operand("weight", ranks=(rank,), weight=True)),
        dtypes=dtypes,
        attrs={
            "stride": IntsAttr(_spatial, 1, MAX_STRIDE),
            "dilation": IntsAttr(_spatial, 1, 2),
            "groups": IntAttr(1, MAX_GROUPS),
            "same": Choice((False, True)),
            "pads": IntsAttr(_explicit_pads, 0, 2),
        },
        requires=_conv_requires(rank),
        infer=_conv_infer,
        reference=reference_conv_nd,
        torch=torch_conv_nd,
        tf=tf_conv_nd,
        onnx=onnx_conv_nd,
        excluded_dtypes=excluded,
        doc=f"torch F.conv{n}d without bias; weight (C_out, C_in/groups, *kernel); same=True is "
            "padding='same' (stride 1 only; odd extra padding at the end), else symmetric `pads`.",
    )


CONV1D = _conv(3, FLOATS, CONV_EXCLUDED)
CONV2D = _conv(4, FLOATS, CONV_EXCLUDED)
CONV3D = _conv(5, FLOATS - {DType.bfloat16}, {
    **CONV_EXCLUDED,
    DType.bfloat16: "tf 2.21 CPU (oneDNN) Conv3D bfloat16 with SAME padding returns wrong values when "
                    "the padding covers a whole input extent (e.g. depth 1, kernel depth 3: output 0)",
})


# --- conv_transpose1d / conv_transpose2d --------------------------------------------------


def _convt_requires(rank: int) -> Any:
    def requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
        x, w = shapes
        if len(x) != rank or len(w) != rank:
            return [False]
        needs: list[SymBool] = [w[0] == x[1]]
        for i in range(rank - 2):
            s, p, op = attrs["stride"][i], attrs["pads"][i], attrs["output_padding"][i]
            needs.append(w[2 + i] <= MAX_KERNEL)
            needs.append(op < s)  # torch: output_padding must be smaller than stride
            needs.append((x[2 + i] - 1) * s + w[2 + i] + op - 2 * p >= 1)
        return needs

    return requires


def _convt_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    x, w = shapes
    out = [x[0], w[1]]
    for i in range(len(x) - 2):
        s, p, op = attrs["stride"][i], attrs["pads"][i], attrs["output_padding"][i]
        out.append((x[2 + i] - 1) * s + w[2 + i] + op - 2 * p)
    return (tuple(out),)


def reference_conv_transpose_nd(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    n = x.ndim - 2
    wide = np.float64 if x.dtype.kind == "f" or x.dtype.name == "bfloat16" else np.int64
    xf, wf = x.astype(wide), w.astype(wide)
    stride, pads, extra = attrs["stride"], attrs["pads"], attrs["output_padding"]
    kernel = w.shape[2:]
    full = [(x.shape[2 + i] - 1) * stride[i] + kernel[i] + extra[i] for i in range(n)]
    y = np.zeros((x.shape[0], w.shape[1], *full), dtype=wide)
    for offset in np.ndindex(*kernel):
        # input position j feeds output position j * stride + offset
        window = tuple(slice(offset[i], offset[i] + (x.shape[2 + i] - 1) * stride[i] + 1, stride[i]) for i in range(n))
        tap = wf[(slice(None), slice(None), *offset)]  # (C_in, C_out)
        y[(slice(None), slice(None), *window)] += np.einsum("ni...,io->no...", xf, tap)
    crop = tuple(slice(pads[i], full[i] - pads[i]) for i in range(n))
    return y[(slice(None), slice(None), *crop)].astype(x.dtype)


def torch_conv_transpose_nd(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    n = len(w.shape) - 2
    fn = getattr(torch.nn.functional, f"conv_transpose{n}d")
    return fn(x, w, stride=tuple(attrs["stride"]), padding=tuple(attrs["pads"]),
              output_padding=tuple(attrs["output_padding"]))


def tf_conv_transpose_nd(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    n = len(w.shape) - 2
    stride, pads, extra = list(attrs["stride"]), attrs["pads"], attrs["output_padding"]
    kernel = list(w.shape[2:])
    full = [(x.shape[2 + i] - 1) * stride[i] + kernel[i] + extra[i] for i in range(n)]
    x = tf.transpose(x, [0, *range(2, n + 2), 1])  # N C *S -> N *S C
    w = tf.transpose(w, [*range(2, n + 2), 1, 0])  # I O *K -> *K O I
    shape = [x.shape[0], *full, w.shape[n]]
    # The uncropped (VALID) transposed convolution, then torch's `padding` cropped off both ends.
    if n == 1:
        y = tf.nn.conv1d_transpose(x, w, shape, stride, "VALID")
    else:
        y = tf.nn.conv2d_transpose(x, w, shape, stride, "VALID")
    y = y[(slice(None), *[slice(pads[i], full[i] - pads[i]) for i in range(n)], slice(None))]
    return tf.transpose(y, [0, n + 1, *range(1, n + 1)])


def onnx_conv_transpose_bfloat16(g: Any, x: Any, w: Any, attrs: Attrs) -> Any:
    """ConvTranspose as one MatMul and Col2Im, for bfloat16, which the standard's
    ConvTranspose lacks before opset 22 (no casts): every input position times the weight
    gives a (C_out, *kernel) block, and Col2Im sums the blocks placed `stride` apart, crops
    `pads` and keeps the output_padding extra at the end. Col2Im wants two spatial dims or
    more: 1-d runs as 2-d with height 1."""
    (batch, c_in, *spatial), (_, c_out, *kernel) = g.shape(x), g.shape(w)
    n, taps = len(kernel), math.prod(kernel)
    stride, pads, extra = list(attrs["stride"]), list(attrs["pads"]), list(attrs["output_padding"])
    sizes = [(spatial[i] - 1) * stride[i] + kernel[i] + extra[i] - 2 * pads[i] for i in range(n)]
    weights = g.Transpose(g.Reshape(w, g.ints([c_in, c_out * taps])), perm=[1, 0])
    cols = g.MatMul(weights, g.Reshape(x, g.ints([batch, c_in, math.prod(spatial)])))
    if n > 1:
        return g.Col2Im(cols, g.ints(sizes), g.ints(kernel), strides=stride, pads=pads + pads)
    image = g.Col2Im(cols, g.ints([1, *sizes]), g.ints([1, *kernel]), strides=[1, *stride], pads=[0, *pads] * 2)
    return g.Reshape(image, g.ints([batch, c_out, *sizes]))


def onnx_conv_transpose_nd(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    if g.dtype(x).value == "bfloat16":
        return onnx_conv_transpose_bfloat16(g, x, w, attrs)
    pads = list(attrs["pads"])
    return g.ConvTranspose(
        x, w, kernel_shape=list(g.shape(w)[2:]), strides=list(attrs["stride"]), pads=pads + pads,
        output_padding=list(attrs["output_padding"]),
    )


def _conv_transpose(rank: int, dtypes: frozenset[DType], excluded: dict[DType, str]) -> OpSpec:
    n = rank - 2
    return OpSpec(
        name=f"conv_transpose{n}d",
        operands=(Operand("x", ranks=(rank,)), Operand("weight", ranks=(rank,), weight=True)),
        dtypes=dtypes,
        attrs={
            "stride": IntsAttr(_spatial, 1, 2),
            "pads": IntsAttr(_spatial, 0, 1),
            "output_padding": IntsAttr(_spatial, 0, 1),
        },
        requires=_convt_requires(rank),
        infer=_convt_infer,
        reference=reference_conv_transpose_nd,
        torch=torch_conv_transpose_nd,
        tf=tf_conv_transpose_nd,
        onnx=onnx_conv_transpose_nd,
        excluded_dtypes=excluded,
        doc=f"torch F.conv_transpose{n}d without bias; weight (C_in, C_out, *kernel); groups=1 and "
            "dilation=1 only (tf.nn.conv_transpose has no groups; its CPU kernel rejects dilation).",
    )


CONV_TRANSPOSE1D = _conv_transpose(3, FLOATS, CONV_EXCLUDED)
CONV_TRANSPOSE2D = _conv_transpose(4, FLOATS, CONV_EXCLUDED)

OPS = (CONV1D, CONV2D, CONV3D, CONV_TRANSPOSE1D, CONV_TRANSPOSE2D)
