"""Layout operators: reshape, transpose, squeeze, unsqueeze, flip, concat, tile. Pure data
movement, so every dtype both frameworks store is allowed. No framework import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from generators.dtypes import ALL
from generators.spec import Attrs, Axes, Axis, Call, Choice, IntsAttr, Operand, OpSpec, Permutation, RankCtx
from generators.symbolic import Shape, SymBool, all_of, prod

RANKS = (0, 1, 2, 3, 4)


def _out_rank(ctx: RankCtx) -> int:
    return int(ctx.attrs["out_rank"])


def reshape_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(attrs["shape"]),)


def reshape_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return (prod(shapes[0]) == prod(attrs["shape"]),)


def tf_reshape(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.reshape(inputs[0], attrs["shape"])


def reference_reshape(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.reshape(inputs[0], attrs["shape"])


def torch_reshape(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.reshape(inputs[0], attrs["shape"])


RESHAPE = OpSpec(
    name="reshape",
    operands=(Operand("x", ranks=RANKS),),
    dtypes=ALL,
    attrs={"out_rank": Choice((1, 2, 3, 4)), "shape": IntsAttr(_out_rank, 1, 16)},
    infer=reshape_infer,
    requires=reshape_requires,
    reference=reference_reshape,
    torch=torch_reshape,
    tf=tf_reshape,
)


def transpose_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(shapes[0][p] for p in attrs["perm"]),)


TRANSPOSE = OpSpec(
    name="transpose",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=ALL,
    attrs={"perm": Permutation()},
    infer=transpose_infer,
    reference=Call("np.transpose", (("axes", "perm"),)),
    torch=Call("torch.permute", (("dims", "perm"),)),
    tf=Call("tf.transpose", (("perm", "perm"),)),
)


def squeeze_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(d for i, d in enumerate(shapes[0]) if i != attrs["axis"]),)


def squeeze_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return (shapes[0][attrs["axis"]] == 1,)


SQUEEZE = OpSpec(
    name="squeeze",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=ALL,
    attrs={"axis": Axis()},
    infer=squeeze_infer,
    requires=squeeze_requires,
    reference=Call("np.squeeze", (("axis", "axis"),)),
    torch=Call("torch.squeeze", (("dim", "axis"),)),
    tf=Call("tf.squeeze", (("axis", "axis"),)),
)


def unsqueeze_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    s = tuple(shapes[0])
    return (s[: attrs["axis"]] + (1,) + s[attrs["axis"]:],)


UNSQUEEZE = OpSpec(
    name="unsqueeze",
    operands=(Operand("x", ranks=(0, 1, 2, 3)),),
    dtypes=ALL,
    attrs={"axis": Axis(extra=1)},
    infer=unsqueeze_infer,
    reference=Call("np.expand_dims", (("axis", "axis"),)),
    torch=Call("torch.unsqueeze", (("dim", "axis"),)),
    tf=Call("tf.expand_dims", (("axis", "axis"),)),
)


def flip_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(shapes[0]),)


FLIP = OpSpec(
    name="flip",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=ALL,
    attrs={"axes": Axes()},
    infer=flip_infer,
    reference=Call("np.flip", (("axis", "axes"),)),
    torch=Call("torch.flip", (("dims", "axes"),)),
    tf=Call("tf.reverse", (("axis", "axes"),)),
)


def concat_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    axis = attrs["axis"]
    total = shapes[0][axis]
    for s in shapes[1:]:
        total = total + s[axis]
    return (tuple(total if i == axis else d for i, d in enumerate(shapes[0])),)


def concat_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    axis = attrs["axis"]
    return [all_of(a == b for i, (a, b) in enumerate(zip(shapes[0], s)) if i != axis) for s in shapes[1:]]


def reference_concat(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.concatenate(inputs, axis=attrs["axis"])


def torch_concat(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.cat(inputs, dim=attrs["axis"])


def tf_concat(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.concat(inputs, axis=attrs["axis"])


CONCAT = OpSpec(
    name="concat",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    variadic=(2, 4),
    same_rank=True,
    dtypes=ALL,
    attrs={"axis": Axis()},
    infer=concat_infer,
    requires=concat_requires,
    reference=reference_concat,
    torch=torch_concat,
    tf=tf_concat,
)


def _rank(ctx: RankCtx) -> int:
    return ctx.ranks[0]


def tile_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    return (tuple(d * r for d, r in zip(shapes[0], attrs["repeats"])),)


TILE = OpSpec(
    name="tile",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=ALL,
    attrs={"repeats": IntsAttr(_rank, 1, 3)},
    infer=tile_infer,
    reference=Call("np.tile", (("reps", "repeats"),)),
    torch=Call("torch.tile", (("dims", "repeats"),)),
    tf=Call("tf.tile", (("multiples", "repeats"),)),
)

OPS = (RESHAPE, TRANSPOSE, SQUEEZE, UNSQUEEZE, FLIP, CONCAT, TILE)
