"""Elementwise binary operators with NumPy broadcasting: arithmetic, division and remainder
variants, powers, extrema, comparisons, logical and bitwise operators. One block per operator.

Both operands always share the dtype T (no type promotion). No framework import: lowerings
receive the framework module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from generators.dtypes import FLOATS, INTS, NUMERIC, SIGNED_INTS, DType
from generators.ops._common import binary, finfo_eps
from generators.spec import Attrs, Call, Values


def _is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" or array.dtype.name == "bfloat16"


def _wide_pair(inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.broadcast_arrays(inputs[0].astype(np.float64), inputs[1].astype(np.float64))
    return a, b


def _ulp_margin(like: np.ndarray, magnitude: np.ndarray, ulps: float = 4.0) -> np.ndarray:
    """`ulps` units in the last place of `like`'s dtype at `magnitude` (at least 1e-3)."""
    out: np.ndarray = np.maximum(1e-3, ulps * finfo_eps(like) * np.maximum(np.abs(magnitude), 1.0))
    return out


# --- guards ---------------------------------------------------------------------------------


def _nonzero_divisor(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    b = inputs[1]
    if not _is_float(b):
        return bool(np.all(b != 0))
    return bool(np.all(np.abs(b.astype(np.float64)) > 0.05))


def _quotient_off_integers(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Divisor nonzero and, for floats, a / b away from integers, where rounding toward any
    direction (floor, trunc) and the remainder jump."""
    if not _nonzero_divisor(inputs, attrs):
        return False
    if not _is_float(inputs[0]):
        return True
    a, b = _wide_pair(inputs)
    q = a / b
    return bool(np.all(np.abs(q - np.round(q)) > _ulp_margin(inputs[0], q)))


def _separated(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Float operands either equal or apart by more than rounding noise (comparisons and
    extrema then have one right answer)."""
    if not _is_float(inputs[0]):
        return True
    a, b = _wide_pair(inputs)
    gap = np.abs(a - b)
    return bool(np.all((gap == 0) | (gap > _ulp_margin(inputs[0], np.maximum(np.abs(a), np.abs(b))))))


def _pow_domain(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Floats: positive base (a negative base needs an exactly integral exponent). Integers:
    non-negative exponent (negative ones are an error in torch and NumPy)."""
    a, b = inputs
    if _is_float(a):
        return bool(np.all(a.astype(np.float64) > 1e-2))
    return bool(np.all(b >= 0))


def _off_atan2_cut(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Away from the branch cut (y = 0, x < 0) and from the origin."""
    y, x = _wide_pair(inputs)
    m = _ulp_margin(inputs[0], np.zeros_like(y))
    return bool(np.all((np.abs(y) > m) | (x > m)))


def _shift_in_range(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Shift counts in [0, bits): anything else is implementation-defined in tf and C++."""
    b = inputs[1].astype(np.int64)
    return bool(np.all((b >= 0) & (b < inputs[0].dtype.itemsize * 8)))


def _positive_log_argument(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return bool(np.all(inputs[1].astype(np.float64) > 1e-2))


# Float quotients a / b stay >= 0.067 from integers (a has fractional part in [0.2, 0.8],
# b is 1, 2 or 3); integer operands are a in [-4, 4], b in [1, 4].
DIVIDEND = Values(-4.0, 4.0, fraction=(0.2, 0.8))
DIVISOR = Values(1.0, 4.0, fraction=(0.0, 0.0))
# Half-integers (floats) and small ints (ints): ties are frequent, and exact in every dtype.
TIE_PRONE = Values(-4.0, 4.0, fraction=(0.5, 0.5))

NO_BOOL_ARITH = {DType.bool: "tf has no bool kernel for it (torch treats bool as logical)"}
TRUE_DIVISION_OF_INTS = {d: "true division of integers promotes to float in torch and tf" for d in INTS}

# --- arithmetic -------------------------------------------------------------------------------

ADD = binary(
    "add", NUMERIC,
    reference=Call("np.add"), torch=Call("torch.add"), tf=Call("tf.math.add"), onnx=Call("onnx.Add"),
    excluded_dtypes=NO_BOOL_ARITH,
)

SUB = binary(
    "sub", FLOATS | SIGNED_INTS,
    reference=Call("np.subtract"), torch=Call("torch.sub"), tf=Call("tf.math.subtract"),
    onnx=Call("onnx.Sub"),
    excluded_dtypes={
        DType.uint8: "random non-negative operands underflow almost always (a < b somewhere)",
        DType.bool: "torch rejects bool subtraction; tf has no bool Sub kernel",
    },
)

MUL = binary(
    "mul", NUMERIC,
    reference=Call("np.multiply"), torch=Call("torch.mul"), tf=Call("tf.math.multiply"),
    onnx=Call("onnx.Mul"),
    excluded_dtypes=NO_BOOL_ARITH,
)

DIV = binary(
    "div", FLOATS, rhs_values=(0.5, 2.0), stable=_nonzero_divisor,
    doc="True division; the divisor keeps away from 0.",
    reference=Call("np.true_divide"), torch=Call("torch.div"), tf=Call("tf.math.truediv"),
    onnx=Call("onnx.Div"),
    excluded_dtypes=TRUE_DIVISION_OF_INTS,
)


def onnx_binary_toward_floor(g: Any, q: str, a: str, b: str) -> str:
    """ONNX integer Div truncates; step the quotient down where a / b was inexact and
    negative (C remainder nonzero with a sign other than b's)."""
    if g.dtype(a).value == "uint8":
        return q
    r = g.Mod(a, b, fmod=1)
    zero = g.scalar(0, like=a)
    fix = g.And(g.Not(g.Equal(r, zero)), g.Xor(g.Less(r, zero), g.Less(b, zero)))
    return g.Sub(q, g.cast(fix, g.dtype(a)))  # type: ignore[no-any-return]


def onnx_floor_divide(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = inputs
    if g.dtype(a).is_float:
        return g.Floor(g.Div(a, b))
    return onnx_binary_toward_floor(g, g.Div(a, b), a, b)


FLOOR_DIVIDE = binary(
    "floor_divide", FLOATS | INTS, values=DIVIDEND, rhs_values=DIVISOR, stable=_quotient_off_integers,
    doc="Rounds toward -inf everywhere (torch 2.x floor_divide, tf floordiv, np.floor_divide).",
    reference=Call("np.floor_divide"), torch=Call("torch.floor_divide"), tf=Call("tf.math.floordiv"),
    onnx=onnx_floor_divide,
    excluded_dtypes=NO_BOOL_ARITH,
)


def reference_trunc_divide(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = inputs
    if a.dtype.kind in "iu":
        q = np.floor_divide(a, b)
        inexact = np.not_equal(q * b, a)
        return np.where(inexact & ((a < 0) != (b < 0)), q + np.ones((), a.dtype), q)
    return np.trunc(np.true_divide(a, b))


def onnx_trunc_divide(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX integer Div already truncates; ONNX has no Trunc for floats.
    q = g.Div(*inputs)
    if not g.dtype(inputs[0]).is_float:
        return q
    return g.Where(g.Less(q, g.scalar(0, like=inputs[0])), g.Ceil(q), g.Floor(q))


TRUNC_DIVIDE = binary(
    "trunc_divide", FLOATS | INTS, values=DIVIDEND, rhs_values=DIVISOR, stable=_quotient_off_integers,
    doc="Rounds toward zero (C-style integer division).",
    reference=reference_trunc_divide,
    torch=Call("torch.div", fixed=(("rounding_mode", "trunc"),)),
    tf=Call("tf.truncatediv"),
    onnx=onnx_trunc_divide,
    excluded_dtypes=NO_BOOL_ARITH,
)


def onnx_remainder(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX Mod with fmod=0 (divisor's sign) is defined for integers only; for floats, fix up
    # the C remainder as NumPy does: add b where it is nonzero and its sign differs from b's.
    a, b = inputs
    if not g.dtype(a).is_float:
        return g.Mod(a, b, fmod=0)
    r = g.Mod(a, b, fmod=1)
    zero = g.scalar(0, like=a)
    fix = g.And(g.Not(g.Equal(r, zero)), g.Xor(g.Less(r, zero), g.Less(b, zero)))
    return g.Where(fix, g.Add(r, b), r)


REMAINDER = binary(
    "remainder", FLOATS | INTS, values=DIVIDEND, rhs_values=DIVISOR, stable=_quotient_off_integers,
    doc="Python-style: the result has the divisor's sign (torch.remainder, tf floormod, np.mod).",
    reference=Call("np.mod"), torch=Call("torch.remainder"), tf=Call("tf.math.floormod"),
    onnx=onnx_remainder,
    excluded_dtypes=NO_BOOL_ARITH,
)

FMOD = binary(
    "fmod", {DType.float32, DType.float64, DType.int32, DType.int64},
    values=DIVIDEND, rhs_values=DIVISOR, stable=_quotient_off_integers,
    doc="C-style: the result has the dividend's sign (torch.fmod, tf.truncatemod, np.fmod).",
    reference=Call("np.fmod"), torch=Call("torch.fmod"), tf=Call("tf.truncatemod"),
    onnx=Call("onnx.Mod", fixed=(("fmod", 1),)),
    excluded_dtypes={
        DType.float16: "tf has no float16 TruncateMod kernel",
        DType.bfloat16: "tf has no bfloat16 TruncateMod kernel",
        DType.int8: "tf has no int8 TruncateMod kernel",
        DType.int16: "tf has no int16 TruncateMod kernel",
        DType.uint8: "tf has no uint8 TruncateMod kernel",
    },
)


def reference_pow(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = inputs
    if a.dtype.kind in "iu":
        # NumPy raises on negative integer exponents; the guard rejects them anyway.
        b = np.maximum(b, np.zeros((), b.dtype))
    return np.power(a, b)


def onnx_pow(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX Pow has no int8/int16 base; int32 holds every power that fits them: exact.
    a, b = inputs
    t = g.dtype(a)
    if t.value in ("int8", "int16"):
        return g.cast(g.Pow(g.cast(a, DType.int32), g.cast(b, DType.int32)), t)
    return g.Pow(a, b)


POW = binary(
    "pow", FLOATS | SIGNED_INTS, values=(0.5, 3.0), rhs_values=(0.0, 3.0), stable=_pow_domain,
    doc="Floats: positive base. Integers: non-negative exponent (bases 1..3, exponents 0..3).",
    reference=reference_pow, torch=Call("torch.pow"), tf=Call("tf.math.pow"), onnx=onnx_pow,
    excluded_dtypes={DType.uint8: "tf has no uint8 Pow kernel"},
)


def onnx_atan2(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX has no Atan2: atan(y / x), shifted by +-pi where x < 0 and +-pi/2 where x == 0
    # (either zero: y / -0.0 would flip the sign). ONNX Atan has no bfloat16 at all.
    y, x = inputs
    t = g.dtype(y)
    ratio = g.Div(y, x)
    if t.value == "bfloat16":
        base = g.cast(g.Atan(g.cast(ratio, DType.float32)), t)
    else:
        base = g.Atan(ratio)
    zero = g.scalar(0, like=y)
    below = g.Less(y, zero)
    turn = g.Where(below, g.scalar(-math.pi, like=y), g.scalar(math.pi, like=y))
    out = g.Where(g.Less(x, zero), g.Add(base, turn), base)
    quarter = g.Where(below, g.scalar(-math.pi / 2, like=y), g.scalar(math.pi / 2, like=y))
    return g.Where(g.Equal(x, zero), quarter, out)


ATAN2 = binary(
    "atan2", FLOATS, values=Values(-2.0, 2.0, fraction=(0.1, 0.9)), rhs_values=(-2.0, 2.0),
    stable=_off_atan2_cut,
    doc="atan2(a, b) = angle of the point (x=b, y=a); |a| >= 0.1 keeps off the cut y = 0, x < 0.",
    reference=Call("np.arctan2"), torch=Call("torch.atan2"), tf=Call("tf.math.atan2"), onnx=onnx_atan2,
    excluded_dtypes={d: "tf has no integer Atan2 kernel; torch promotes to float" for d in INTS},
)


def reference_squared_difference(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    d = np.subtract(inputs[0], inputs[1])
    return d * d


def torch_squared_difference(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    d = inputs[0] - inputs[1]
    return d * d


def onnx_squared_difference(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    d = g.Sub(inputs[0], inputs[1])
    return g.Mul(d, d)


SQUARED_DIFFERENCE = binary(
    "squared_difference", FLOATS | {DType.int32, DType.int64},
    reference=reference_squared_difference, torch=torch_squared_difference,
    tf=Call("tf.math.squared_difference"), onnx=onnx_squared_difference,
    excluded_dtypes={
        DType.int8: "tf has no int8 SquaredDifference kernel",
        DType.int16: "tf has no int16 SquaredDifference kernel",
        DType.uint8: "tf has no uint8 SquaredDifference kernel",
    },
)


def reference_xlogy(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, y = inputs
    return np.where(x == 0, np.zeros((), x.dtype), x * np.log(y))


def onnx_xlogy(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, y = inputs
    zero = g.scalar(0, like=x)
    return g.Where(g.Equal(x, zero), zero, g.Mul(x, g.Log(y)))


XLOGY = binary(
    "xlogy", FLOATS, rhs_values=(0.1, 4.0), stable=_positive_log_argument,
    doc="x * log(y), 0 where x == 0; y stays positive.",
    reference=reference_xlogy, torch=Call("torch.xlogy"), tf=Call("tf.math.xlogy"), onnx=onnx_xlogy,
    excluded_dtypes={d: "tf has no integer Xlogy kernel; torch promotes to float" for d in INTS},
)

# --- extrema --------------------------------------------------------------------------------

MAXIMUM = binary(
    "maximum", NUMERIC, values=TIE_PRONE,
    reference=Call("np.maximum"), torch=Call("torch.maximum"), tf=Call("tf.math.maximum"),
    onnx=Call("onnx.Max"),
    excluded_dtypes=NO_BOOL_ARITH,
)

MINIMUM = binary(
    "minimum", NUMERIC, values=TIE_PRONE,
    reference=Call("np.minimum"), torch=Call("torch.minimum"), tf=Call("tf.math.minimum"),
    onnx=Call("onnx.Min"),
    excluded_dtypes=NO_BOOL_ARITH,
)

# --- comparisons (bool results) -------------------------------------------------------------

EQUAL = binary(
    "equal", NUMERIC | {DType.bool}, values=TIE_PRONE, stable=_separated, out_dtype=DType.bool,
    reference=Call("np.equal"), torch=Call("torch.eq"), tf=Call("tf.math.equal"), onnx=Call("onnx.Equal"),
)


def onnx_not_equal(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Not(g.Equal(inputs[0], inputs[1]))


NOT_EQUAL = binary(
    "not_equal", NUMERIC | {DType.bool}, values=TIE_PRONE, stable=_separated, out_dtype=DType.bool,
    reference=Call("np.not_equal"), torch=Call("torch.ne"), tf=Call("tf.math.not_equal"), onnx=onnx_not_equal,
)

NO_BOOL_ORDER = {DType.bool: "tf has no bool kernel for ordered comparisons"}

LESS = binary(
    "less", NUMERIC, values=TIE_PRONE, stable=_separated, out_dtype=DType.bool,
    reference=Call("np.less"), torch=Call("torch.lt"), tf=Call("tf.math.less"), onnx=Call("onnx.Less"),
    excluded_dtypes=NO_BOOL_ORDER,
)

LESS_EQUAL = binary(
    "less_equal", NUMERIC, values=TIE_PRONE, stable=_separated, out_dtype=DType.bool,
    reference=Call("np.less_equal"), torch=Call("torch.le"), tf=Call("tf.math.less_equal"),
    onnx=Call("onnx.LessOrEqual"),
    excluded_dtypes=NO_BOOL_ORDER,
)

GREATER = binary(
    "greater", NUMERIC, values=TIE_PRONE, stable=_separated, out_dtype=DType.bool,
    reference=Call("np.greater"), torch=Call("torch.gt"), tf=Call("tf.math.greater"),
    onnx=Call("onnx.Greater"),
    excluded_dtypes=NO_BOOL_ORDER,
)

GREATER_EQUAL = binary(
    "greater_equal", NUMERIC, values=TIE_PRONE, stable=_separated, out_dtype=DType.bool,
    reference=Call("np.greater_equal"), torch=Call("torch.ge"), tf=Call("tf.math.greater_equal"),
    onnx=Call("onnx.GreaterOrEqual"),
    excluded_dtypes=NO_BOOL_ORDER,
)

# --- logical (bool) ---------------------------------------------------------------------------

LOGICAL_AND = binary(
    "logical_and", {DType.bool},
    reference=Call("np.logical_and"), torch=Call("torch.logical_and"), tf=Call("tf.math.logical_and"),
    onnx=Call("onnx.And"),
)

LOGICAL_OR = binary(
    "logical_or", {DType.bool},
    reference=Call("np.logical_or"), torch=Call("torch.logical_or"), tf=Call("tf.math.logical_or"),
    onnx=Call("onnx.Or"),
)

LOGICAL_XOR = binary(
    "logical_xor", {DType.bool},
    reference=Call("np.logical_xor"), torch=Call("torch.logical_xor"), tf=Call("tf.math.logical_xor"),
    onnx=Call("onnx.Xor"),
)

# --- bitwise (integers) -----------------------------------------------------------------------

NO_BOOL_BITWISE = {DType.bool: "tf.bitwise has no bool kernel (use the logical operators)"}

BITWISE_AND = binary(
    "bitwise_and", INTS,
    reference=Call("np.bitwise_and"), torch=Call("torch.bitwise_and"), tf=Call("tf.bitwise.bitwise_and"),
    onnx=Call("onnx.BitwiseAnd"),
    excluded_dtypes=NO_BOOL_BITWISE,
)

BITWISE_OR = binary(
    "bitwise_or", INTS,
    reference=Call("np.bitwise_or"), torch=Call("torch.bitwise_or"), tf=Call("tf.bitwise.bitwise_or"),
    onnx=Call("onnx.BitwiseOr"),
    excluded_dtypes=NO_BOOL_BITWISE,
)

BITWISE_XOR = binary(
    "bitwise_xor", INTS,
    reference=Call("np.bitwise_xor"), torch=Call("torch.bitwise_xor"), tf=Call("tf.bitwise.bitwise_xor"),
    onnx=Call("onnx.BitwiseXor"),
    excluded_dtypes=NO_BOOL_BITWISE,
)


def onnx_binary_unsigned(g: Any, x: str, bits: int) -> str:
    """x (a `bits`-wide integer) reinterpreted as the unsigned ONNX type of that width, the
    only types ONNX BitShift takes; the Cast wraps modulo 2**bits, so nothing is lost."""
    unsigned = {8: 2, 16: 4, 32: 12, 64: 13}  # TensorProto UINT8, UINT16, UINT32, UINT64
    return g.Cast(x, to=unsigned[bits])  # type: ignore[no-any-return]


def onnx_left_shift(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = inputs
    t = g.dtype(a)
    if t.value == "uint8":
        return g.BitShift(a, b, direction="LEFT")
    ua, ub = onnx_binary_unsigned(g, a, t.bits), onnx_binary_unsigned(g, b, t.bits)
    return g.cast(g.BitShift(ua, ub, direction="LEFT"), t)


LEFT_SHIFT = binary(
    "left_shift", INTS, rhs_values=(0.0, 3.0), stable=_shift_in_range,
    doc="Shift counts in [0, bits); results that overflow are rejected by the value search.",
    reference=Call("np.left_shift"), torch=Call("torch.bitwise_left_shift"), tf=Call("tf.bitwise.left_shift"),
    onnx=onnx_left_shift,
    excluded_dtypes=NO_BOOL_BITWISE,
)


def onnx_right_shift(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX BitShift is logical (unsigned only). For signed a, a >> b == ~(~a >> b) when
    # a < 0: xor with the sign mask makes the operand non-negative, shifts, and restores.
    a, b = inputs
    t = g.dtype(a)
    if t.value == "uint8":
        return g.BitShift(a, b, direction="RIGHT")
    mask = g.Neg(g.cast(g.Less(a, g.scalar(0, like=a)), t))  # -1 where a < 0, else 0
    ua = onnx_binary_unsigned(g, g.BitwiseXor(a, mask), t.bits)
    shifted = g.BitShift(ua, onnx_binary_unsigned(g, b, t.bits), direction="RIGHT")
    return g.BitwiseXor(g.cast(shifted, t), mask)


RIGHT_SHIFT = binary(
    "right_shift", INTS, rhs_values=(0.0, 3.0), stable=_shift_in_range,
    doc="Arithmetic (sign-extending) for signed integers in all three.",
    reference=Call("np.right_shift"), torch=Call("torch.bitwise_right_shift"), tf=Call("tf.bitwise.right_shift"),
    onnx=onnx_right_shift,
    excluded_dtypes=NO_BOOL_BITWISE,
)

OPS = (
    ADD, SUB, MUL, DIV, FLOOR_DIVIDE, TRUNC_DIVIDE, REMAINDER, FMOD, POW, ATAN2, SQUARED_DIFFERENCE,
    XLOGY, MAXIMUM, MINIMUM, EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL,
    LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR, BITWISE_AND, BITWISE_OR, BITWISE_XOR, LEFT_SHIFT,
    RIGHT_SHIFT,
)
