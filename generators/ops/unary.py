"""Elementwise unary math operators: exponentials, logs, roots, trigonometry, rounding,
sign and bitwise/logical negation. One block per operator.

Activation functions live in `activation.py`. No framework import: lowerings receive the
framework module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from generators.dtypes import FLOATS, INTS, SIGNED_INTS, DType
from generators.ops._common import (
    all_abs_greater,
    all_abs_less,
    all_greater,
    far_from_integers,
    unary,
)
from generators.spec import Attrs, Call, Values

OFF_INTEGERS = Values(-4.0, 4.0, fraction=(0.2, 0.8))
OFF_HALVES = Values(-4.0, 4.0, fraction=(0.1, 0.4))

SIGNED = FLOATS | SIGNED_INTS

ABS = unary(
    "abs", SIGNED,
    reference=Call("np.abs"), torch=Call("torch.abs"), tf=Call("tf.math.abs"),
)

NEG = unary(
    "neg", SIGNED,
    reference=Call("np.negative"), torch=Call("torch.neg"), tf=Call("tf.math.negative"),
)

EXP = unary(
    "exp", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.exp"), torch=Call("torch.exp"), tf=Call("tf.math.exp"),
)

EXPM1 = unary(
    "expm1", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.expm1"), torch=Call("torch.expm1"), tf=Call("tf.math.expm1"),
)


def _positive(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_greater(inputs[0], 1e-2)


LOG = unary(
    "log", FLOATS, values=(0.1, 4.0), stable=_positive,
    reference=Call("np.log"), torch=Call("torch.log"), tf=Call("tf.math.log"),
)


def _above_minus_one(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_greater(inputs[0], -0.99)


LOG1P = unary(
    "log1p", FLOATS, values=(-0.5, 4.0), stable=_above_minus_one,
    reference=Call("np.log1p"), torch=Call("torch.log1p"), tf=Call("tf.math.log1p"),
)

SQRT = unary(
    "sqrt", FLOATS, values=(0.1, 4.0), stable=_positive,
    reference=Call("np.sqrt"), torch=Call("torch.sqrt"), tf=Call("tf.math.sqrt"),
)


def reference_rsqrt(np: object, inputs: list[Any], attrs: Attrs) -> object:
    return 1.0 / np.sqrt(inputs[0])  # type: ignore[attr-defined]


RSQRT = unary(
    "rsqrt", FLOATS, values=(0.1, 4.0), stable=_positive,
    reference=reference_rsqrt, torch=Call("torch.rsqrt"), tf=Call("tf.math.rsqrt"),
)


def _nonzero(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_abs_greater(inputs[0], 1e-1)


RECIPROCAL = unary(
    "reciprocal", FLOATS, values=(0.5, 4.0), stable=_nonzero,
    reference=Call("np.reciprocal"), torch=Call("torch.reciprocal"), tf=Call("tf.math.reciprocal"),
)

SQUARE = unary(
    "square", FLOATS | SIGNED_INTS,
    reference=Call("np.square"), torch=Call("torch.square"), tf=Call("tf.math.square"),
)

SIN = unary(
    "sin", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.sin"), torch=Call("torch.sin"), tf=Call("tf.math.sin"),
)

COS = unary(
    "cos", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.cos"), torch=Call("torch.cos"), tf=Call("tf.math.cos"),
)


def _away_from_tan_poles(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return bool(np.all(np.abs(np.cos(inputs[0].astype(np.float64))) > 0.1))


TAN = unary(
    "tan", FLOATS, values=(-1.2, 1.2), stable=_away_from_tan_poles,
    reference=Call("np.tan"), torch=Call("torch.tan"), tf=Call("tf.math.tan"),
)


def _inside_unit(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_abs_less(inputs[0], 0.95)


ASIN = unary(
    "asin", FLOATS, values=(-0.9, 0.9), stable=_inside_unit,
    reference=Call("np.arcsin"), torch=Call("torch.asin"), tf=Call("tf.math.asin"),
)

ACOS = unary(
    "acos", FLOATS, values=(-0.9, 0.9), stable=_inside_unit,
    reference=Call("np.arccos"), torch=Call("torch.acos"), tf=Call("tf.math.acos"),
)

ATAN = unary(
    "atan", FLOATS,
    reference=Call("np.arctan"), torch=Call("torch.atan"), tf=Call("tf.math.atan"),
)

SINH = unary(
    "sinh", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.sinh"), torch=Call("torch.sinh"), tf=Call("tf.math.sinh"),
)

COSH = unary(
    "cosh", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.cosh"), torch=Call("torch.cosh"), tf=Call("tf.math.cosh"),
)

TANH = unary(
    "tanh", FLOATS,
    reference=Call("np.tanh"), torch=Call("torch.tanh"), tf=Call("tf.math.tanh"),
)

ASINH = unary(
    "asinh", FLOATS,
    reference=Call("np.arcsinh"), torch=Call("torch.asinh"), tf=Call("tf.math.asinh"),
)


def _above_one(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_greater(inputs[0], 1.05)


ACOSH = unary(
    "acosh", FLOATS, values=(1.1, 4.0), stable=_above_one,
    reference=Call("np.arccosh"), torch=Call("torch.acosh"), tf=Call("tf.math.acosh"),
)

ATANH = unary(
    "atanh", FLOATS, values=(-0.9, 0.9), stable=_inside_unit,
    reference=Call("np.arctanh"), torch=Call("torch.atanh"), tf=Call("tf.math.atanh"),
)


def reference_erf(np: object, inputs: list[Any], attrs: Attrs) -> object:
    import math

    x = inputs[0]
    return np.vectorize(math.erf, otypes=[x.dtype])(x)  # type: ignore[attr-defined]


ERF = unary(
    "erf", FLOATS,
    reference=reference_erf, torch=Call("torch.erf"), tf=Call("tf.math.erf"),
)


def _not_near_integer(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return far_from_integers(inputs[0])


def _not_near_half(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return far_from_integers(inputs[0], offset=0.5)


FLOOR = unary(
    "floor", FLOATS, values=OFF_INTEGERS, stable=_not_near_integer,
    reference=Call("np.floor"), torch=Call("torch.floor"), tf=Call("tf.math.floor"),
)

CEIL = unary(
    "ceil", FLOATS, values=OFF_INTEGERS, stable=_not_near_integer,
    reference=Call("np.ceil"), torch=Call("torch.ceil"), tf=Call("tf.math.ceil"),
)

def tf_trunc(tf: object, inputs: list[Any], attrs: Attrs) -> object:
    x = inputs[0]
    return tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x))  # type: ignore[attr-defined]


TRUNC = unary(
    "trunc", FLOATS, values=OFF_INTEGERS, stable=_not_near_integer,
    reference=Call("np.trunc"), torch=Call("torch.trunc"), tf=tf_trunc,
)

ROUND = unary(
    "round", FLOATS, values=OFF_HALVES, stable=_not_near_half,
    doc="Rounds half to even in every framework (NumPy, torch.round and tf.math.round agree).",
    reference=Call("np.round"), torch=Call("torch.round"), tf=Call("tf.math.round"),
)


def _away_from_zero(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    x = inputs[0]
    if x.dtype.kind in "iub":
        return True
    return all_abs_greater(x, 1e-3)


SIGN = unary(
    "sign", FLOATS | SIGNED_INTS, stable=_away_from_zero,
    reference=Call("np.sign"), torch=Call("torch.sign"), tf=Call("tf.math.sign"),
)

LOGICAL_NOT = unary(
    "logical_not", {DType.bool},
    reference=Call("np.logical_not"), torch=Call("torch.logical_not"), tf=Call("tf.math.logical_not"),
)

BITWISE_NOT = unary(
    "bitwise_not", INTS, modular_ints=True,
    reference=Call("np.invert"), torch=Call("torch.bitwise_not"), tf=Call("tf.bitwise.invert"),
)

IS_FINITE = unary(
    "isfinite", FLOATS, out_dtype=DType.bool,
    reference=Call("np.isfinite"), torch=Call("torch.isfinite"), tf=Call("tf.math.is_finite"),
)

OPS = (
    ABS, NEG, EXP, EXPM1, LOG, LOG1P, SQRT, RSQRT, RECIPROCAL, SQUARE, SIN, COS, TAN, ASIN,
    ACOS, ATAN, SINH, COSH, TANH, ASINH, ACOSH, ATANH, ERF, FLOOR, CEIL, TRUNC, ROUND, SIGN,
    LOGICAL_NOT, BITWISE_NOT, IS_FINITE,
)
