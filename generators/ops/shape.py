"""Layout and shape operators: reshape, transpose, (un)squeeze, flatten, broadcast, concat,
stack, split, slice, pad, tile, flip, roll, repeat_interleave. One block per operator.

Pure data movement, so most accept every dtype. No framework import: lowerings receive the
framework module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from generators.dtypes import ALL, DType
from generators.spec import (
    Attrs,
    Axes,
    Axis,
    Call,
    Choice,
    IntAttr,
    IntsAttr,
    Operand,
    OpSpec,
    Permutation,
    RankCtx,
    same_shape,
)
from generators.symbolic import Shape, SymBool, all_of, ceildiv, floordiv, ite, mod, prod

UP_TO_4 = (1, 2, 3, 4)
UP_TO_3 = (0, 1, 2, 3)  # operands of rank-raising ops, so outputs stay within rank 4


def _x(ranks: tuple[int, ...] = UP_TO_4) -> tuple[Operand, ...]:
    return (Operand("x", ranks=ranks),)


# --- reshape ---------------------------------------------------------------------------------


def _reshape_lead_count(ctx: RankCtx) -> int:
    return int(ctx.attrs["out_rank"]) - 1


def _reshape_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [mod(prod(shapes[0]), prod(attrs["lead"])) == 0]


def _reshape_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    lead = tuple(attrs["lead"])
    return (lead + (floordiv(prod(shapes[0]), prod(lead)),),)


def shape_reshape_target(attrs: Attrs) -> tuple[int, ...]:
    return tuple(attrs["lead"]) + (-1,)


def torch_reshape(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.reshape(inputs[0], shape_reshape_target(attrs))


def tf_reshape(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.reshape(inputs[0], shape_reshape_target(attrs))


def reference_reshape(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.reshape(inputs[0], shape_reshape_target(attrs))


def onnx_reshape(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Reshape(inputs[0], g.ints(shape_reshape_target(attrs)))


RESHAPE = OpSpec(
    name="reshape",
    operands=_x((0, 1, 2, 3, 4)),
    dtypes=ALL,
    attrs={"out_rank": Choice((1, 2, 3, 4)), "lead": IntsAttr(_reshape_lead_count, 1, 8)},
    requires=_reshape_requires,
    infer=_reshape_infer,
    reference=reference_reshape,
    torch=torch_reshape,
    tf=tf_reshape,
    onnx=onnx_reshape,
    doc="Row-major reshape to `lead` + one last dim inferred from the element count (like -1).",
)

# --- transpose, squeeze, unsqueeze, flatten --------------------------------------------------


def _transpose_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(shapes[0][p] for p in attrs["perm"]),)


TRANSPOSE = OpSpec(
    name="transpose",
    operands=_x(),
    dtypes=ALL,
    attrs={"perm": Permutation(0)},
    infer=_transpose_infer,
    reference=Call("np.transpose", kwargs=(("axes", "perm"),)),
    torch=Call("torch.permute", kwargs=(("dims", "perm"),)),
    tf=Call("tf.transpose", kwargs=(("perm", "perm"),)),
    onnx=Call("onnx.Transpose", kwargs=(("perm", "perm"),)),
    doc="Output dim i is input dim perm[i] (torch.permute).",
)


def _squeeze_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [shapes[0][attrs["axis"]] == 1]


def _squeeze_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a = tuple(shapes[0]), attrs["axis"]
    return (s[:a] + s[a + 1:],)


def onnx_squeeze(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Squeeze(inputs[0], g.ints([attrs["axis"]]))


SQUEEZE = OpSpec(
    name="squeeze",
    operands=_x(),
    dtypes=ALL,
    attrs={"axis": Axis(0)},
    requires=_squeeze_requires,
    infer=_squeeze_infer,
    reference=Call("np.squeeze", kwargs=(("axis", "axis"),)),
    torch=Call("torch.squeeze", kwargs=(("dim", "axis"),)),
    tf=Call("tf.squeeze", kwargs=(("axis", "axis"),)),
    onnx=onnx_squeeze,
    doc="Removes one axis of size 1.",
)


def _unsqueeze_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a = tuple(shapes[0]), attrs["axis"]
    return (s[:a] + (1,) + s[a:],)


def onnx_unsqueeze(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Unsqueeze(inputs[0], g.ints([attrs["axis"]]))


UNSQUEEZE = OpSpec(
    name="unsqueeze",
    operands=_x(UP_TO_3),
    dtypes=ALL,
    attrs={"axis": Axis(0, extra=1)},
    infer=_unsqueeze_infer,
    reference=Call("np.expand_dims", kwargs=(("axis", "axis"),)),
    torch=Call("torch.unsqueeze", kwargs=(("dim", "axis"),)),
    tf=Call("tf.expand_dims", kwargs=(("axis", "axis"),)),
    onnx=onnx_unsqueeze,
    doc="Inserts an axis of size 1 at position `axis` of the output.",
)


def _flatten_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [attrs["start"] <= attrs["end"]]


def _flatten_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a, b = tuple(shapes[0]), attrs["start"], attrs["end"]
    return (s[:a] + (prod(s[a:b + 1]),) + s[b + 1:],)


def shape_flatten_dims(shape: Sequence[int], start: int, end: int) -> list[int]:
    dims = [int(d) for d in shape]
    return dims[:start] + [shape_prod(dims[start:end + 1])] + dims[end + 1:]


def shape_prod(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def tf_flatten(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return tf.reshape(x, shape_flatten_dims(x.shape, attrs["start"], attrs["end"]))


def reference_flatten(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.reshape(x, shape_flatten_dims(x.shape, attrs["start"], attrs["end"]))


def onnx_flatten(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX Flatten always makes a 2-D result, so reshape to torch's dims instead.
    x = inputs[0]
    return g.Reshape(x, g.ints(shape_flatten_dims(g.shape(x), attrs["start"], attrs["end"])))


FLATTEN = OpSpec(
    name="flatten",
    operands=_x(),
    dtypes=ALL,
    attrs={"start": Axis(0), "end": Axis(0)},
    requires=_flatten_requires,
    infer=_flatten_infer,
    reference=reference_flatten,
    torch=Call("torch.flatten", kwargs=(("start_dim", "start"), ("end_dim", "end"))),
    tf=tf_flatten,
    onnx=onnx_flatten,
    doc="torch.flatten: merges axes start..end (inclusive) into one.",
)

# --- broadcast_to ----------------------------------------------------------------------------


def _out_rank(ctx: RankCtx) -> int:
    return int(ctx.attrs["out_rank"])


def _broadcast_to_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [attrs["out_rank"] >= len(shapes[0])]


def _broadcast_to_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, sizes = tuple(shapes[0]), tuple(attrs["sizes"])
    new = len(sizes) - len(s)
    return (sizes[:new] + tuple(ite(d == 1, n, d) for d, n in zip(s, sizes[new:])),)


def shape_broadcast_target(shape: Sequence[int], sizes: Sequence[int]) -> list[int]:
    dims = [int(d) for d in shape]
    new = len(sizes) - len(dims)
    return list(sizes[:new]) + [n if d == 1 else d for d, n in zip(dims, sizes[new:])]


def torch_broadcast_to(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return torch.broadcast_to(x, shape_broadcast_target(x.shape, attrs["sizes"]))


def tf_broadcast_to(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return tf.broadcast_to(x, shape_broadcast_target(x.shape, attrs["sizes"]))


def reference_broadcast_to(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.broadcast_to(x, shape_broadcast_target(x.shape, attrs["sizes"])).copy()


def onnx_broadcast_to(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return g.Expand(x, g.ints(shape_broadcast_target(g.shape(x), attrs["sizes"])))


BROADCAST_TO = OpSpec(
    name="broadcast_to",
    operands=_x((0, 1, 2, 3, 4)),
    dtypes=ALL,
    attrs={"out_rank": Choice((1, 2, 3, 4)), "sizes": IntsAttr(_out_rank, 1, 6)},
    requires=_broadcast_to_requires,
    infer=_broadcast_to_infer,
    reference=reference_broadcast_to,
    torch=torch_broadcast_to,
    tf=tf_broadcast_to,
    onnx=onnx_broadcast_to,
    doc="Broadcasts to rank out_rank; `sizes` gives the new leading dims and the size of each "
        "size-1 dim (other dims are kept, like torch.expand's -1).",
)

# --- concat, stack, split --------------------------------------------------------------------


def _concat_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    a, first = attrs["axis"], shapes[0]
    return [s[i] == first[i] for s in shapes[1:] for i in range(len(first)) if i != a]


def _concat_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    a, first = attrs["axis"], tuple(shapes[0])
    total = sum((s[a] for s in shapes[1:]), first[a])
    return (first[:a] + (total,) + first[a + 1:],)


def torch_concat(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.cat(list(inputs), dim=attrs["axis"])


def tf_concat(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.concat(list(inputs), axis=attrs["axis"])


def reference_concat(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.concatenate(list(inputs), axis=attrs["axis"])


def onnx_concat(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Concat(*inputs, axis=attrs["axis"])


CONCAT = OpSpec(
    name="concat",
    operands=_x(),
    variadic=(2, 4),
    same_rank=True,
    dtypes=ALL,
    attrs={"axis": Axis(0)},
    requires=_concat_requires,
    infer=_concat_infer,
    reference=reference_concat,
    torch=torch_concat,
    tf=tf_concat,
    onnx=onnx_concat,
)


def _stack_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    first = shapes[0]
    return [s[i] == first[i] for s in shapes[1:] for i in range(len(first))]


def _stack_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    a, first = attrs["axis"], tuple(shapes[0])
    return (first[:a] + (len(shapes),) + first[a:],)


def torch_stack(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.stack(list(inputs), dim=attrs["axis"])


def tf_stack(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.stack(list(inputs), axis=attrs["axis"])


def reference_stack(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.stack(list(inputs), axis=attrs["axis"])


def onnx_stack(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    axis = g.ints([attrs["axis"]])
    return g.Concat(*(g.Unsqueeze(x, axis) for x in inputs), axis=attrs["axis"])


STACK = OpSpec(
    name="stack",
    operands=_x(UP_TO_3),
    variadic=(2, 4),
    same_rank=True,
    dtypes=ALL,
    attrs={"axis": Axis(0, extra=1)},
    requires=_stack_requires,
    infer=_stack_infer,
    reference=reference_stack,
    torch=torch_stack,
    tf=tf_stack,
    onnx=onnx_stack,
)


def _split_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [mod(shapes[0][attrs["axis"]], attrs["sections"]) == 0]


def _split_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a, n = tuple(shapes[0]), attrs["axis"], attrs["sections"]
    part = s[:a] + (floordiv(s[a], n),) + s[a + 1:]
    return tuple(part for _ in range(n))


def torch_split(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, a = inputs[0], attrs["axis"]
    return tuple(torch.split(x, x.shape[a] // attrs["sections"], dim=a))


def tf_split(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tuple(tf.split(inputs[0], attrs["sections"], axis=attrs["axis"]))


def reference_split(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tuple(np.split(inputs[0], attrs["sections"], axis=attrs["axis"]))


def onnx_split(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, a, n = inputs[0], attrs["axis"], attrs["sections"]
    part = g.shape(x)[a] // n
    return tuple(g.Split(x, g.ints([part] * n), axis=a, outputs=n))


SPLIT = OpSpec(
    name="split",
    operands=_x(),
    dtypes=ALL,
    attrs={"axis": Axis(0), "sections": Choice((2, 3, 4))},
    requires=_split_requires,
    infer=_split_infer,
    reference=reference_split,
    torch=torch_split,
    tf=tf_split,
    onnx=onnx_split,
    doc="Splits `axis` into `sections` equal parts, one output each.",
)

# --- slice, pad ------------------------------------------------------------------------------


def _slice_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return [attrs["start"] < attrs["stop"], attrs["stop"] <= shapes[0][attrs["axis"]]]


def _slice_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a = tuple(shapes[0]), attrs["axis"]
    n = ceildiv(attrs["stop"] - attrs["start"], attrs["step"])
    return (s[:a] + (n,) + s[a + 1:],)


def shape_slice_key(rank: int, attrs: Attrs) -> tuple[slice, ...]:
    key = [slice(None)] * rank
    key[attrs["axis"]] = slice(attrs["start"], attrs["stop"], attrs["step"])
    return tuple(key)


def torch_slice(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x[shape_slice_key(x.dim(), attrs)]


def tf_slice(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x[shape_slice_key(len(x.shape), attrs)]


def reference_slice(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x[shape_slice_key(x.ndim, attrs)].copy()


def onnx_slice(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Slice(
        inputs[0], g.ints([attrs["start"]]), g.ints([attrs["stop"]]), g.ints([attrs["axis"]]), g.ints([attrs["step"]])
    )


SLICE = OpSpec(
    name="slice",
    operands=_x(),
    dtypes=ALL,
    attrs={"axis": Axis(0), "start": IntAttr(0, 7), "stop": IntAttr(1, 8), "step": IntAttr(1, 3)},
    requires=_slice_requires,
    infer=_slice_infer,
    reference=reference_slice,
    torch=torch_slice,
    tf=tf_slice,
    onnx=onnx_slice,
    doc="x[start:stop:step] along `axis`, with 0 <= start < stop <= dim.",
)


def shape_pad_dims(rank: int, mode: str) -> int:
    """How many trailing dims are padded: all for constant; for reflect/replicate the last
    one or two, leaving one or two leading dims (what torch's F.pad kernels accept)."""
    if mode == "constant":
        return rank
    return max(0, min(rank - 1, 2))


def _pad_size(ctx: RankCtx) -> int:
    return 2 * shape_pad_dims(ctx.ranks[0], str(ctx.attrs["mode"]))


def _pad_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    s, mode, pads = tuple(shapes[0]), attrs["mode"], tuple(attrs["pads"])
    k = len(pads) // 2
    if mode != "constant" and k == 0:
        return [False]
    if mode != "reflect":
        return [True]
    tail = s[len(s) - k:]
    return [all_of(p < d for p in pads[2 * i:2 * i + 2]) for i, d in enumerate(tail)]


def _pad_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, pads = tuple(shapes[0]), tuple(attrs["pads"])
    k = len(pads) // 2
    head = s[:len(s) - k]
    tail = tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(s[len(s) - k:]))
    return (head + tail,)


def shape_pad_widths(rank: int, pads: Sequence[int]) -> list[list[int]]:
    """Per-dim [before, after] for all dims (leading ones unpadded)."""
    k = len(pads) // 2
    return [[0, 0]] * (rank - k) + [[int(pads[2 * i]), int(pads[2 * i + 1])] for i in range(k)]


def torch_pad(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    pads = attrs["pads"]
    k = len(pads) // 2
    flat: list[int] = []
    for i in reversed(range(k)):  # F.pad lists the last dim first
        flat += [pads[2 * i], pads[2 * i + 1]]
    return torch.nn.functional.pad(inputs[0], flat, mode=attrs["mode"])


def tf_pad(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, mode = inputs[0], attrs["mode"]
    widths = shape_pad_widths(len(x.shape), attrs["pads"])
    if mode == "constant":
        return tf.pad(x, widths, mode="CONSTANT")
    if mode == "reflect":
        return tf.pad(x, widths, mode="REFLECT")
    # replicate: tf has no edge mode; gather with indices clipped to the valid range
    for axis, (before, after) in enumerate(widths):
        if before or after:
            n = int(x.shape[axis])
            idx = tf.clip_by_value(tf.range(-before, n + after), 0, n - 1)
            x = tf.gather(x, idx, axis=axis)
    return x


def reference_pad(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, mode = inputs[0], attrs["mode"]
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    return np.pad(x, shape_pad_widths(x.ndim, attrs["pads"]), mode=np_mode)


def onnx_pad(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    widths = shape_pad_widths(g.rank(x), attrs["pads"])
    pads = [w[0] for w in widths] + [w[1] for w in widths]  # ONNX: all begins, then all ends
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[attrs["mode"]]
    return g.Pad(x, g.ints(pads), mode=mode)


PAD = OpSpec(
    name="pad",
    operands=_x(),
    dtypes=ALL - {DType.bool},
    excluded_dtypes={DType.bool: "torch has no bool kernel for reflect/replicate padding"},
    attrs={"mode": Choice(("constant", "reflect", "replicate")), "pads": IntsAttr(_pad_size, 0, 2)},
    requires=_pad_requires,
    infer=_pad_infer,
    reference=reference_pad,
    torch=torch_pad,
    tf=tf_pad,
    onnx=onnx_pad,
    doc="`pads` = (before, after) per padded trailing dim, in dim order; constant pads every "
        "dim with 0, reflect/replicate (numpy 'edge') the last min(rank-1, 2) dims.",
)

# --- tile, repeat_interleave, flip, roll -----------------------------------------------------


def _rank_of_x(ctx: RankCtx) -> int:
    return ctx.ranks[0]


def _tile_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(d * r for d, r in zip(shapes[0], attrs["repeats"])),)


def torch_tile(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.tile(inputs[0], tuple(attrs["repeats"]))


def onnx_tile(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Tile(inputs[0], g.ints(attrs["repeats"]))


TILE = OpSpec(
    name="tile",
    operands=_x(),
    dtypes=ALL,
    attrs={"repeats": IntsAttr(_rank_of_x, 1, 3)},
    infer=_tile_infer,
    reference=Call("np.tile", kwargs=(("reps", "repeats"),)),
    torch=torch_tile,
    tf=Call("tf.tile", kwargs=(("multiples", "repeats"),)),
    onnx=onnx_tile,
    doc="Repeats the whole tensor repeats[i] times along each axis i.",
)


def _repeat_interleave_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s, a = tuple(shapes[0]), attrs["axis"]
    return (s[:a] + (s[a] * attrs["repeats"],) + s[a + 1:],)


def onnx_repeat_interleave(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # A new axis after `axis`, broadcast to `repeats`, then merged into `axis`.
    x, a, r = inputs[0], attrs["axis"], attrs["repeats"]
    dims = [int(d) for d in g.shape(x)]
    wide = g.Expand(g.Unsqueeze(x, g.ints([a + 1])), g.ints(dims[:a + 1] + [r] + dims[a + 1:]))
    return g.Reshape(wide, g.ints(dims[:a] + [dims[a] * r] + dims[a + 1:]))


REPEAT_INTERLEAVE = OpSpec(
    name="repeat_interleave",
    operands=_x(),
    dtypes=ALL,
    attrs={"axis": Axis(0), "repeats": IntAttr(1, 3)},
    infer=_repeat_interleave_infer,
    reference=Call("np.repeat", kwargs=(("repeats", "repeats"), ("axis", "axis"))),
    torch=Call("torch.repeat_interleave", kwargs=(("repeats", "repeats"), ("dim", "axis"))),
    tf=Call("tf.repeat", kwargs=(("repeats", "repeats"), ("axis", "axis"))),
    onnx=onnx_repeat_interleave,
    doc="Repeats each element `repeats` times along `axis` (np.repeat).",
)

def onnx_flip(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # Step -1 from the last element; an end below -dim clamps to "before the first".
    axes = list(attrs["axes"])
    n = len(axes)
    return g.Slice(inputs[0], g.ints([-1] * n), g.ints([-(2**63)] * n), g.ints(axes), g.ints([-1] * n))


FLIP = OpSpec(
    name="flip",
    operands=_x(),
    dtypes=ALL,
    attrs={"axes": Axes(0)},
    infer=same_shape,
    reference=Call("np.flip", kwargs=(("axis", "axes"),)),
    torch=Call("torch.flip", kwargs=(("dims", "axes"),)),
    tf=Call("tf.reverse", kwargs=(("axis", "axes"),)),
    onnx=onnx_flip,
)

def onnx_roll(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # The last `shift mod dim` elements move to the front.
    x, a = inputs[0], attrs["axis"]
    n = int(g.shape(x)[a])
    cut = n - attrs["shift"] % n
    if cut == n:
        return g.Identity(x)
    axis = g.ints([a])
    tail = g.Slice(x, g.ints([cut]), g.ints([n]), axis)
    head = g.Slice(x, g.ints([0]), g.ints([cut]), axis)
    return g.Concat(tail, head, axis=a)


ROLL = OpSpec(
    name="roll",
    operands=_x(),
    dtypes=ALL,
    attrs={"axis": Axis(0), "shift": IntAttr(-3, 3)},
    infer=same_shape,
    reference=Call("np.roll", kwargs=(("shift", "shift"), ("axis", "axis"))),
    torch=Call("torch.roll", kwargs=(("shifts", "shift"), ("dims", "axis"))),
    tf=Call("tf.roll", kwargs=(("shift", "shift"), ("axis", "axis"))),
    onnx=onnx_roll,
    doc="Circular shift along `axis`; element i moves to (i + shift) mod dim.",
)

OPS = (
    RESHAPE, TRANSPOSE, SQUEEZE, UNSQUEEZE, FLATTEN, BROADCAST_TO, CONCAT, STACK, SPLIT, SLICE,
    PAD, TILE, REPEAT_INTERLEAVE, FLIP, ROLL,
)
