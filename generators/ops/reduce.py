"""Reductions over axes (sum, mean, prod, max, min, all, any, logsumexp) and arg-reductions
(argmax, argmin). Axes are sorted non-negative ints; keepdims is an attribute. No framework
import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from generators.dtypes import FLOATS, INTS, SIGNED_INTS, DType
from generators.ops._common import no_ties
from generators.spec import Attrs, Axes, Axis, Call, Choice, Operand, OpSpec
from generators.symbolic import Shape, SymBool

KEEPDIMS = Choice((False, True))
RANKS = (1, 2, 3, 4)


def reduced_shape(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    axes = attrs["axes"] if "axes" in attrs else (attrs["axis"],)
    shape = shapes[0]
    if attrs["keepdims"]:
        return (tuple(1 if i in axes else d for i, d in enumerate(shape)),)
    return (tuple(d for i, d in enumerate(shape) if i not in axes),)


def _reduction(name: str, dtypes: Iterable[DType], reference: Any, torch: Any, tf: Any, values: tuple[float, float] | None = None, doc: str = "") -> OpSpec:
    return OpSpec(
        name=name,
        operands=(Operand("x", ranks=RANKS, values=values),),
        dtypes=frozenset(dtypes),
        attrs={"axes": Axes(), "keepdims": KEEPDIMS},
        infer=reduced_shape,
        reference=reference,
        torch=torch,
        tf=tf,
        doc=doc,
    )


def reference_sum(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.sum(x, axis=attrs["axes"], keepdims=attrs["keepdims"]).astype(x.dtype)


def reference_prod(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.prod(x, axis=attrs["axes"], keepdims=attrs["keepdims"]).astype(x.dtype)


def torch_sum(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return torch.sum(x, dim=attrs["axes"], keepdim=attrs["keepdims"]).to(x.dtype)


def torch_prod(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    for axis in sorted(attrs["axes"], reverse=True):
        x = torch.prod(x, dim=axis, keepdim=True).to(inputs[0].dtype)
    if not attrs["keepdims"]:
        x = x.reshape([d for i, d in enumerate(x.shape) if i not in attrs["axes"]])
    return x


SUM = _reduction(
    "sum", FLOATS | SIGNED_INTS, reference_sum, torch_sum,
    Call("tf.math.reduce_sum", (("axis", "axes"), ("keepdims", "keepdims"))),
    doc="Integer sums keep the input dtype (torch would promote to int64; the lowering casts back).",
)

MEAN = _reduction(
    "mean", FLOATS,
    Call("np.mean", (("axis", "axes"), ("keepdims", "keepdims"))),
    Call("torch.mean", (("dim", "axes"), ("keepdim", "keepdims"))),
    Call("tf.math.reduce_mean", (("axis", "axes"), ("keepdims", "keepdims"))),
)

PROD = _reduction(
    "prod", FLOATS | SIGNED_INTS, reference_prod, torch_prod,
    Call("tf.math.reduce_prod", (("axis", "axes"), ("keepdims", "keepdims"))),
    values=(-1.5, 1.5),
)

REDUCE_MAX = _reduction(
    "reduce_max", FLOATS | INTS,
    Call("np.max", (("axis", "axes"), ("keepdims", "keepdims"))),
    Call("torch.amax", (("dim", "axes"), ("keepdim", "keepdims"))),
    Call("tf.math.reduce_max", (("axis", "axes"), ("keepdims", "keepdims"))),
)

REDUCE_MIN = _reduction(
    "reduce_min", FLOATS | INTS,
    Call("np.min", (("axis", "axes"), ("keepdims", "keepdims"))),
    Call("torch.amin", (("dim", "axes"), ("keepdim", "keepdims"))),
    Call("tf.math.reduce_min", (("axis", "axes"), ("keepdims", "keepdims"))),
)

ALL = _reduction(
    "all", {DType.bool},
    Call("np.all", (("axis", "axes"), ("keepdims", "keepdims"))),
    Call("torch.all", (("dim", "axes"), ("keepdim", "keepdims"))),
    Call("tf.math.reduce_all", (("axis", "axes"), ("keepdims", "keepdims"))),
)

ANY = _reduction(
    "any", {DType.bool},
    Call("np.any", (("axis", "axes"), ("keepdims", "keepdims"))),
    Call("torch.any", (("dim", "axes"), ("keepdim", "keepdims"))),
    Call("tf.math.reduce_any", (("axis", "axes"), ("keepdims", "keepdims"))),
)


def reference_logsumexp(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    m = np.max(x, axis=attrs["axes"], keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=attrs["axes"], keepdims=True)) + m
    return out if attrs["keepdims"] else np.squeeze(out, axis=attrs["axes"])


LOGSUMEXP = _reduction(
    "logsumexp", FLOATS, reference_logsumexp,
    Call("torch.logsumexp", (("dim", "axes"), ("keepdim", "keepdims"))),
    Call("tf.math.reduce_logsumexp", (("axis", "axes"), ("keepdims", "keepdims"))),
)


def _no_ties_along_axis(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return no_ties(inputs[0], axis=attrs["axis"])


def _arg_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return ()


def _arg_reduction(name: str, reference: Any, torch: Any, tf: Any) -> OpSpec:
    return OpSpec(
        name=name,
        operands=(Operand("x", ranks=RANKS),),
        dtypes=FLOATS | SIGNED_INTS,
        attrs={"axis": Axis(), "keepdims": KEEPDIMS},
        infer=reduced_shape,
        out_dtypes=_int64_output,
        reference=reference,
        torch=torch,
        tf=tf,
        stable=_no_ties_along_axis,
        doc="Inputs are kept free of ties along the axis, where frameworks may pick different indices.",
    )


def _int64_output(t: DType, attrs: Attrs) -> Sequence[DType]:
    return (DType.int64,)


def reference_argmax(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.argmax(inputs[0], axis=attrs["axis"], keepdims=attrs["keepdims"]).astype(np.int64)


def reference_argmin(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.argmin(inputs[0], axis=attrs["axis"], keepdims=attrs["keepdims"]).astype(np.int64)


def tf_argmax(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    out = tf.math.argmax(inputs[0], axis=attrs["axis"], output_type=tf.int64)
    return tf.expand_dims(out, attrs["axis"]) if attrs["keepdims"] else out


def tf_argmin(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    out = tf.math.argmin(inputs[0], axis=attrs["axis"], output_type=tf.int64)
    return tf.expand_dims(out, attrs["axis"]) if attrs["keepdims"] else out


ARGMAX = _arg_reduction("argmax", reference_argmax, Call("torch.argmax", (("dim", "axis"), ("keepdim", "keepdims"))), tf_argmax)
ARGMIN = _arg_reduction("argmin", reference_argmin, Call("torch.argmin", (("dim", "axis"), ("keepdim", "keepdims"))), tf_argmin)

OPS = (SUM, MEAN, PROD, REDUCE_MAX, REDUCE_MIN, ALL, ANY, LOGSUMEXP, ARGMAX, ARGMIN)
