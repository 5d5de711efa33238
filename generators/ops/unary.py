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


def onnx_unary_float_op(g: Any, op_type: str, x: str) -> str:
    """One ONNX node of a float operator whose ONNX type list lacks bfloat16 (the
    trigonometric family, Round): bfloat16 goes through float32, which holds every
    bfloat16 value exactly and has the same exponent range, then rounds once."""
    if g.dtype(x) is DType.bfloat16:
        return g.cast(g.op(op_type, g.cast(x, DType.float32)), DType.bfloat16)  # type: ignore[no-any-return]
    return g.op(op_type, x)  # type: ignore[no-any-return]


ABS = unary(
    "abs", SIGNED,
    reference=Call("np.abs"), torch=Call("torch.abs"), tf=Call("tf.math.abs"),
    onnx=Call("onnx.Abs"),
)

NEG = unary(
    "neg", SIGNED,
    reference=Call("np.negative"), torch=Call("torch.neg"), tf=Call("tf.math.negative"),
    onnx=Call("onnx.Neg"),
)

EXP = unary(
    "exp", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.exp"), torch=Call("torch.exp"), tf=Call("tf.math.exp"),
    onnx=Call("onnx.Exp"),
)


def onnx_expm1(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # ONNX has no Expm1; exp(x) - 1 cancels near 0. tanh(x/2) * (exp(x) + 1) is expm1
    # without cancellation, and gives inf at +inf and -1 at -inf.
    x = inputs[0]
    half = g.Tanh(g.Mul(x, g.scalar(0.5, like=x)))
    return g.Mul(half, g.Add(g.Exp(x), g.scalar(1, like=x)))  # type: ignore[no-any-return]


EXPM1 = unary(
    "expm1", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.expm1"), torch=Call("torch.expm1"), tf=Call("tf.math.expm1"),
    onnx=onnx_expm1,
)


def _positive(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_greater(inputs[0], 1e-2)


LOG = unary(
    "log", FLOATS, values=(0.1, 4.0), stable=_positive,
    reference=Call("np.log"), torch=Call("torch.log"), tf=Call("tf.math.log"),
    onnx=Call("onnx.Log"),
)


def _above_minus_one(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_greater(inputs[0], -0.99)


def onnx_log1p(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # ONNX has no Log1p; log(1 + x) loses x's low bits. With u = 1 + x and d = u - 1 (both
    # rounded), log(u) * x / d is log1p to a few ulps (Goldberg); d == 0 means |x| is below
    # half an ulp of 1, where log1p(x) rounds to x; d == x (x exact in u, or infinite) needs
    # no correction.
    x = inputs[0]
    u = g.Add(x, g.scalar(1, like=x))
    d = g.Sub(u, g.scalar(1, like=x))
    ratio = g.Where(g.Equal(d, x), g.scalar(1, like=x), g.Div(x, d))
    return g.Where(g.Equal(d, g.scalar(0, like=x)), x, g.Mul(g.Log(u), ratio))  # type: ignore[no-any-return]


LOG1P = unary(
    "log1p", FLOATS, values=(-0.5, 4.0), stable=_above_minus_one,
    reference=Call("np.log1p"), torch=Call("torch.log1p"), tf=Call("tf.math.log1p"),
    onnx=onnx_log1p,
)

SQRT = unary(
    "sqrt", FLOATS, values=(0.1, 4.0), stable=_positive,
    reference=Call("np.sqrt"), torch=Call("torch.sqrt"), tf=Call("tf.math.sqrt"),
    onnx=Call("onnx.Sqrt"),
)


def reference_rsqrt(np: object, inputs: list[Any], attrs: Attrs) -> object:
    return 1.0 / np.sqrt(inputs[0])  # type: ignore[attr-defined]


def onnx_rsqrt(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return g.Reciprocal(g.Sqrt(inputs[0]))  # type: ignore[no-any-return]


RSQRT = unary(
    "rsqrt", FLOATS, values=(0.1, 4.0), stable=_positive,
    reference=reference_rsqrt, torch=Call("torch.rsqrt"), tf=Call("tf.math.rsqrt"),
    onnx=onnx_rsqrt,
)


def _nonzero(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_abs_greater(inputs[0], 1e-1)


RECIPROCAL = unary(
    "reciprocal", FLOATS, values=(0.5, 4.0), stable=_nonzero,
    reference=Call("np.reciprocal"), torch=Call("torch.reciprocal"), tf=Call("tf.math.reciprocal"),
    onnx=Call("onnx.Reciprocal"),
)


def onnx_square(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return g.Mul(inputs[0], inputs[0])  # type: ignore[no-any-return]


SQUARE = unary(
    "square", FLOATS | SIGNED_INTS,
    reference=Call("np.square"), torch=Call("torch.square"), tf=Call("tf.math.square"),
    onnx=onnx_square,
)


def onnx_sin(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Sin", inputs[0])


SIN = unary(
    "sin", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.sin"), torch=Call("torch.sin"), tf=Call("tf.math.sin"),
    onnx=onnx_sin,
)


def onnx_cos(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Cos", inputs[0])


COS = unary(
    "cos", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.cos"), torch=Call("torch.cos"), tf=Call("tf.math.cos"),
    onnx=onnx_cos,
)


def _away_from_tan_poles(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return bool(np.all(np.abs(np.cos(inputs[0].astype(np.float64))) > 0.1))


def onnx_tan(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Tan", inputs[0])


TAN = unary(
    "tan", FLOATS, values=(-1.2, 1.2), stable=_away_from_tan_poles,
    reference=Call("np.tan"), torch=Call("torch.tan"), tf=Call("tf.math.tan"),
    onnx=onnx_tan,
)


def _inside_unit(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_abs_less(inputs[0], 0.95)


def onnx_asin(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Asin", inputs[0])


ASIN = unary(
    "asin", FLOATS, values=(-0.9, 0.9), stable=_inside_unit,
    reference=Call("np.arcsin"), torch=Call("torch.asin"), tf=Call("tf.math.asin"),
    onnx=onnx_asin,
)


def onnx_acos(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Acos", inputs[0])


ACOS = unary(
    "acos", FLOATS, values=(-0.9, 0.9), stable=_inside_unit,
    reference=Call("np.arccos"), torch=Call("torch.acos"), tf=Call("tf.math.acos"),
    onnx=onnx_acos,
)


def onnx_atan(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Atan", inputs[0])


ATAN = unary(
    "atan", FLOATS,
    reference=Call("np.arctan"), torch=Call("torch.atan"), tf=Call("tf.math.atan"),
    onnx=onnx_atan,
)


def onnx_sinh(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Sinh", inputs[0])


SINH = unary(
    "sinh", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.sinh"), torch=Call("torch.sinh"), tf=Call("tf.math.sinh"),
    onnx=onnx_sinh,
)


def onnx_cosh(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Cosh", inputs[0])


COSH = unary(
    "cosh", FLOATS, values=(-3.0, 3.0),
    reference=Call("np.cosh"), torch=Call("torch.cosh"), tf=Call("tf.math.cosh"),
    onnx=onnx_cosh,
)

TANH = unary(
    "tanh", FLOATS,
    reference=Call("np.tanh"), torch=Call("torch.tanh"), tf=Call("tf.math.tanh"),
    onnx=Call("onnx.Tanh"),
)


def onnx_asinh(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Asinh", inputs[0])


ASINH = unary(
    "asinh", FLOATS,
    reference=Call("np.arcsinh"), torch=Call("torch.asinh"), tf=Call("tf.math.asinh"),
    onnx=onnx_asinh,
)


def _above_one(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return all_greater(inputs[0], 1.05)


def onnx_acosh(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Acosh", inputs[0])


ACOSH = unary(
    "acosh", FLOATS, values=(1.1, 4.0), stable=_above_one,
    reference=Call("np.arccosh"), torch=Call("torch.acosh"), tf=Call("tf.math.acosh"),
    onnx=onnx_acosh,
)


def onnx_atanh(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_unary_float_op(g, "Atanh", inputs[0])


ATANH = unary(
    "atanh", FLOATS, values=(-0.9, 0.9), stable=_inside_unit,
    reference=Call("np.arctanh"), torch=Call("torch.atanh"), tf=Call("tf.math.atanh"),
    onnx=onnx_atanh,
)


def reference_erf(np: object, inputs: list[Any], attrs: Attrs) -> object:
    import math

    x = inputs[0]
    return np.vectorize(math.erf, otypes=[x.dtype])(x)  # type: ignore[attr-defined]


ERF = unary(
    "erf", FLOATS,
    reference=reference_erf, torch=Call("torch.erf"), tf=Call("tf.math.erf"),
    onnx=Call("onnx.Erf"),
)


def _not_near_integer(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return far_from_integers(inputs[0])


def _not_near_half(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return far_from_integers(inputs[0], offset=0.5)


FLOOR = unary(
    "floor", FLOATS, values=OFF_INTEGERS, stable=_not_near_integer,
    reference=Call("np.floor"), torch=Call("torch.floor"), tf=Call("tf.math.floor"),
    onnx=Call("onnx.Floor"),
)

CEIL = unary(
    "ceil", FLOATS, values=OFF_INTEGERS, stable=_not_near_integer,
    reference=Call("np.ceil"), torch=Call("torch.ceil"), tf=Call("tf.math.ceil"),
    onnx=Call("onnx.Ceil"),
)


def tf_trunc(tf: object, inputs: list[Any], attrs: Attrs) -> object:
    x = inputs[0]
    return tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x))  # type: ignore[attr-defined]


def onnx_trunc(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # ONNX has no Trunc.
    x = inputs[0]
    return g.Where(g.Less(x, g.scalar(0, like=x)), g.Ceil(x), g.Floor(x))  # type: ignore[no-any-return]


TRUNC = unary(
    "trunc", FLOATS, values=OFF_INTEGERS, stable=_not_near_integer,
    reference=Call("np.trunc"), torch=Call("torch.trunc"), tf=tf_trunc,
    onnx=onnx_trunc,
)


def onnx_round(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # ONNX Round rounds half to even. Its bfloat16 detour is exact: an integer no larger
    # than a bfloat16 input's magnitude bound is a bfloat16 value.
    return onnx_unary_float_op(g, "Round", inputs[0])


ROUND = unary(
    "round", FLOATS, values=OFF_HALVES, stable=_not_near_half,
    doc="Rounds half to even in every framework (NumPy, torch.round and tf.math.round agree).",
    reference=Call("np.round"), torch=Call("torch.round"), tf=Call("tf.math.round"),
    onnx=onnx_round,
)


def _away_from_zero(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    x = inputs[0]
    if x.dtype.kind in "iub":
        return True
    return all_abs_greater(x, 1e-3)


SIGN = unary(
    "sign", FLOATS | SIGNED_INTS, stable=_away_from_zero,
    reference=Call("np.sign"), torch=Call("torch.sign"), tf=Call("tf.math.sign"),
    onnx=Call("onnx.Sign"),
)

LOGICAL_NOT = unary(
    "logical_not", {DType.bool},
    reference=Call("np.logical_not"), torch=Call("torch.logical_not"), tf=Call("tf.math.logical_not"),
    onnx=Call("onnx.Not"),
)

BITWISE_NOT = unary(
    "bitwise_not", INTS, modular_ints=True,
    reference=Call("np.invert"), torch=Call("torch.bitwise_not"), tf=Call("tf.bitwise.invert"),
    onnx=Call("onnx.BitwiseNot"),
)


def onnx_isfinite(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # ONNX has no IsFinite; IsInf detects both infinities by default.
    x = inputs[0]
    return g.Not(g.Or(g.IsInf(x), g.IsNaN(x)))  # type: ignore[no-any-return]


IS_FINITE = unary(
    "isfinite", FLOATS, out_dtype=DType.bool,
    reference=Call("np.isfinite"), torch=Call("torch.isfinite"), tf=Call("tf.math.is_finite"),
    onnx=onnx_isfinite,
)

OPS = (
    ABS, NEG, EXP, EXPM1, LOG, LOG1P, SQRT, RSQRT, RECIPROCAL, SQUARE, SIN, COS, TAN, ASIN,
    ACOS, ATAN, SINH, COSH, TANH, ASINH, ACOSH, ATANH, ERF, FLOOR, CEIL, TRUNC, ROUND, SIGN,
    LOGICAL_NOT, BITWISE_NOT, IS_FINITE,
)
