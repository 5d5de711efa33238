"""Elementwise activation functions: the ReLU family, smooth and hard sigmoid-likes and
shrinkage. One block per operator. (PReLU, GLU and the softmax family: `softmax.py`.)

No framework import: lowerings receive the framework module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from generators.dtypes import FLOATS, INTS, DType
from generators.ops._common import margin, unary
from generators.spec import (
    Attrs,
    Call,
    Choice,
    FloatAttr,
    Values,
)

# Integer inputs: the result is fractional, and torch either has no integer kernel or
# promotes to float (a dtype change the IR does not model); tf has no integer kernel.
NO_INT = {d: "fractional result: no integer kernel in tf, none or a float promotion in torch" for d in INTS}


# --- ONNX helpers: ONNX float attributes are float32, so float64 lowerings of operators with
# float parameters spell the formula out; operators whose ONNX type list lacks bfloat16 take
# bfloat16 through float32 (exact widening, one rounding back).


def onnx_activation_float_op(
    g: Any, op_type: str, x: str, widen: tuple[DType, ...] = (DType.bfloat16,), **attrs: Any
) -> str:
    """One node of an ONNX operator whose type list lacks the dtypes in `widen`: those go
    through float32, which holds their values exactly, and round once at the end."""
    dtype = g.dtype(x)
    if dtype in widen:
        return g.cast(g.op(op_type, g.cast(x, DType.float32), **attrs), dtype)  # type: ignore[no-any-return]
    return g.op(op_type, x, **attrs)  # type: ignore[no-any-return]


def onnx_activation_expm1(g: Any, x: str, like: str) -> str:
    """expm1(x) without cancellation near 0 (ONNX has no Expm1): tanh(x/2) * (exp(x) + 1).
    `like` is a value of x's dtype whose type the builder knows."""
    half = g.Tanh(g.Mul(x, g.scalar(0.5, like=like)))
    return g.Mul(half, g.Add(g.Exp(x), g.scalar(1, like=like)))  # type: ignore[no-any-return]


def onnx_activation_positive(g: Any, x: str) -> str:
    """The mask x > 0."""
    return g.Greater(x, g.scalar(0, like=x))  # type: ignore[no-any-return]

# --- the ReLU family ---------------------------------------------------------------------


def reference_relu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.maximum(x, np.zeros((), x.dtype))


def onnx_relu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x = inputs[0]
    if g.dtype(x) is DType.uint8:  # ONNX Relu has no unsigned types
        return g.Max(x, g.scalar(0, like=x))  # type: ignore[no-any-return]
    return g.Relu(x)  # type: ignore[no-any-return]


RELU = unary(
    "relu", FLOATS | INTS,
    reference=reference_relu, torch=Call("torch.relu"), tf=Call("tf.nn.relu"),
    onnx=onnx_relu,
    excluded_dtypes={DType.bool: "neither framework has a bool ReLU kernel"},
)


def reference_relu6(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.minimum(np.maximum(x, np.zeros((), x.dtype)), np.full((), 6, x.dtype))


def onnx_relu6(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x = inputs[0]
    return g.Clip(x, g.scalar(0, like=x), g.scalar(6, like=x))  # type: ignore[no-any-return]


RELU6 = unary(
    "relu6", FLOATS | INTS,
    reference=reference_relu6, torch=Call("torch.nn.functional.relu6"), tf=Call("tf.nn.relu6"),
    onnx=onnx_relu6,
    excluded_dtypes={DType.bool: "neither framework has a bool ReLU6 kernel"},
)


def reference_leaky_relu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.where(x > 0, x, x * attrs["negative_slope"])


def tf_leaky_relu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if x.dtype != tf.float64:
        return tf.nn.leaky_relu(x, alpha=attrs["negative_slope"])
    # The LeakyRelu kernel's alpha attribute is a float32 (~1e-8 relative error in float64).
    return tf.where(x > 0, x, x * attrs["negative_slope"])


def onnx_leaky_relu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x, slope = inputs[0], attrs["negative_slope"]
    if g.dtype(x) is not DType.float64:
        return g.LeakyRelu(x, alpha=slope)  # type: ignore[no-any-return]
    return g.Where(onnx_activation_positive(g, x), x, g.Mul(x, g.scalar(slope, like=x)))  # type: ignore[no-any-return]


LEAKY_RELU = unary(
    "leaky_relu", FLOATS, attrs={"negative_slope": FloatAttr(0.01, 0.5)},
    doc="Slope kept below 1 (tf.nn.leaky_relu documents max(x, slope*x)); tf float64 spells it "
    "out because the kernel's alpha is a float32.",
    reference=reference_leaky_relu,
    torch=Call("torch.nn.functional.leaky_relu", kwargs=(("negative_slope", "negative_slope"),)),
    tf=tf_leaky_relu,
    onnx=onnx_leaky_relu,
    excluded_dtypes={d: "torch has no integer leaky_relu kernel; the slope is fractional" for d in INTS},
)


def reference_elu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.where(x > 0, x, attrs["alpha"] * np.expm1(np.minimum(x, np.zeros((), x.dtype))))


def tf_elu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return tf.where(x > 0, x, attrs["alpha"] * tf.math.expm1(tf.minimum(x, tf.zeros_like(x))))


def onnx_elu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x, alpha = inputs[0], attrs["alpha"]
    if g.dtype(x) is not DType.float64:
        return onnx_activation_float_op(g, "Elu", x, alpha=alpha)
    negative = onnx_activation_expm1(g, g.Min(x, g.scalar(0, like=x)), x)
    return g.Where(onnx_activation_positive(g, x), x, g.Mul(g.scalar(alpha, like=x), negative))  # type: ignore[no-any-return]


ELU = unary(
    "elu", FLOATS, attrs={"alpha": FloatAttr(0.1, 2.0)},
    doc="tf.nn.elu has no alpha, so tf scales expm1 itself.",
    reference=reference_elu, torch=Call("torch.nn.functional.elu", kwargs=(("alpha", "alpha"),)), tf=tf_elu,
    onnx=onnx_elu,
    excluded_dtypes=NO_INT,
)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def reference_selu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    negative = SELU_ALPHA * np.expm1(np.minimum(x, np.zeros((), x.dtype)))
    return SELU_SCALE * np.where(x > 0, x, negative)


def onnx_selu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x = inputs[0]
    if g.dtype(x) is not DType.float64:
        return onnx_activation_float_op(g, "Selu", x, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    negative = g.Mul(g.scalar(SELU_ALPHA, like=x), onnx_activation_expm1(g, g.Min(x, g.scalar(0, like=x)), x))
    return g.Mul(g.scalar(SELU_SCALE, like=x), g.Where(onnx_activation_positive(g, x), x, negative))  # type: ignore[no-any-return]


SELU = unary(
    "selu", FLOATS,
    reference=reference_selu, torch=Call("torch.selu"), tf=Call("tf.nn.selu"),
    onnx=onnx_selu,
    excluded_dtypes=NO_INT,
)


def reference_celu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    alpha = attrs["alpha"]
    zero = np.zeros((), x.dtype)
    return np.maximum(x, zero) + np.minimum(alpha * np.expm1(np.minimum(x, zero) / alpha), zero)


def tf_celu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    alpha = attrs["alpha"]
    zero = tf.zeros_like(x)
    return tf.maximum(x, zero) + tf.minimum(alpha * tf.math.expm1(tf.minimum(x, zero) / alpha), zero)


def onnx_celu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x, alpha = inputs[0], attrs["alpha"]
    if g.dtype(x) is not DType.float64:  # ONNX Celu is float32 only
        return onnx_activation_float_op(g, "Celu", x, (DType.float16, DType.bfloat16), alpha=alpha)
    zero, a = g.scalar(0, like=x), g.scalar(alpha, like=x)
    negative = g.Mul(a, onnx_activation_expm1(g, g.Div(g.Min(x, zero), a), x))
    return g.Add(g.Max(x, zero), g.Min(negative, zero))  # type: ignore[no-any-return]


CELU = unary(
    "celu", FLOATS, attrs={"alpha": FloatAttr(0.2, 2.0)},
    reference=reference_celu, torch=Call("torch.nn.functional.celu", kwargs=(("alpha", "alpha"),)), tf=tf_celu,
    onnx=onnx_celu,
    excluded_dtypes=NO_INT,
)

# --- smooth gates ----------------------------------------------------------------------------


def reference_gelu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    import math

    x = inputs[0]
    w = x.astype(np.float64)
    if attrs["approximate"] == "tanh":
        gate = np.tanh(math.sqrt(2.0 / math.pi) * (w + 0.044715 * w * w * w))
    else:
        gate = np.vectorize(math.erf, otypes=[np.float64])(w / math.sqrt(2.0))
    return (0.5 * w * (1.0 + gate)).astype(x.dtype)


def tf_gelu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if x.dtype != tf.float64:
        return tf.nn.gelu(x, approximate=attrs["approximate"] == "tanh")
    # tf.nn.gelu casts its constants through float32 (1e-7 relative error in float64).
    if attrs["approximate"] == "tanh":
        return 0.5 * x * (1.0 + tf.math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return 0.5 * x * tf.math.erfc(-x * 0.7071067811865476)


GELU = unary(
    "gelu", FLOATS, attrs={"approximate": Choice(("none", "tanh"))},
    doc="approximate='tanh' is tf.nn.gelu(approximate=True); tf float64 spells the formula out "
    "because tf.nn.gelu rounds its constants to float32.",
    reference=reference_gelu,
    torch=Call("torch.nn.functional.gelu", kwargs=(("approximate", "approximate"),)),
    tf=tf_gelu,
    onnx=Call("onnx.Gelu", kwargs=(("approximate", "approximate"),)),
    excluded_dtypes=NO_INT,
)


def reference_sigmoid(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return (0.5 * (1.0 + np.tanh(0.5 * x.astype(np.float64)))).astype(x.dtype)


SIGMOID = unary(
    "sigmoid", FLOATS,
    reference=reference_sigmoid, torch=Call("torch.sigmoid"), tf=Call("tf.math.sigmoid"),
    onnx=Call("onnx.Sigmoid"),
    excluded_dtypes=NO_INT,
)


def reference_silu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x * reference_sigmoid(np, [x], attrs)


def onnx_silu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # No Swish before opset 24.
    return g.Mul(inputs[0], g.Sigmoid(inputs[0]))  # type: ignore[no-any-return]


SILU = unary(
    "silu", FLOATS,
    reference=reference_silu, torch=Call("torch.nn.functional.silu"), tf=Call("tf.nn.silu"),
    onnx=onnx_silu,
    excluded_dtypes=NO_INT,
)


def reference_softplus(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0].astype(np.float64)
    out = np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))
    return out.astype(inputs[0].dtype)


def onnx_softplus(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_activation_float_op(g, "Softplus", inputs[0])


SOFTPLUS = unary(
    "softplus", FLOATS,
    doc="beta=1. tf switches to x / exp(x) past |x| > -log(eps)-2: in bfloat16 up to 2.5% off "
    "near |x| = 3 (inside the bfloat16 tolerance); torch switches at x > 20.",
    reference=reference_softplus, torch=Call("torch.nn.functional.softplus"), tf=Call("tf.math.softplus"),
    onnx=onnx_softplus,
    excluded_dtypes=NO_INT,
)


def reference_mish(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0].astype(np.float64)
    return (x * np.tanh(reference_softplus(np, [x], attrs))).astype(inputs[0].dtype)


def tf_mish(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x * tf.math.tanh(tf.math.softplus(x))


def onnx_mish(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_activation_float_op(g, "Mish", inputs[0])


MISH = unary(
    "mish", FLOATS,
    reference=reference_mish, torch=Call("torch.nn.functional.mish"), tf=tf_mish,
    onnx=onnx_mish,
    excluded_dtypes=NO_INT,
)


def reference_log_sigmoid(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return -reference_softplus(np, [-inputs[0]], attrs)


def onnx_log_sigmoid(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # -softplus(-x): log(sigmoid(x)) would underflow to -inf for very negative x.
    minus = g.Neg(inputs[0])
    return g.Neg(onnx_activation_float_op(g, "Softplus", g.declare(minus, g.type_of(inputs[0]))))  # type: ignore[no-any-return]


LOG_SIGMOID = unary(
    "log_sigmoid", FLOATS,
    reference=reference_log_sigmoid, torch=Call("torch.nn.functional.logsigmoid"), tf=Call("tf.math.log_sigmoid"),
    onnx=onnx_log_sigmoid,
    excluded_dtypes=NO_INT,
)


def reference_softsign(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x / (1.0 + np.abs(x))


def onnx_softsign(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_activation_float_op(g, "Softsign", inputs[0])


SOFTSIGN = unary(
    "softsign", FLOATS,
    reference=reference_softsign, torch=Call("torch.nn.functional.softsign"), tf=Call("tf.nn.softsign"),
    onnx=onnx_softsign,
    excluded_dtypes=NO_INT,
)


def reference_tanhshrink(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x - np.tanh(x)


def tf_tanhshrink(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x - tf.math.tanh(x)


def onnx_tanhshrink(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return g.Sub(inputs[0], g.Tanh(inputs[0]))  # type: ignore[no-any-return]


TANHSHRINK = unary(
    "tanhshrink", FLOATS,
    reference=reference_tanhshrink, torch=Call("torch.nn.functional.tanhshrink"), tf=tf_tanhshrink,
    onnx=onnx_tanhshrink,
    excluded_dtypes=NO_INT,
)

# --- hard (piecewise linear) activations -------------------------------------------------------


def reference_hardsigmoid(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


def tf_hardsigmoid(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.nn.relu6(inputs[0] + 3.0) / 6.0


def onnx_hardsigmoid(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x = inputs[0]
    if g.dtype(x) is not DType.float64:
        return onnx_activation_float_op(g, "HardSigmoid", x, alpha=1.0 / 6.0, beta=0.5)
    # alpha = 1/6 as a float32 attribute is 1e-8 off in float64.
    clipped = g.Clip(g.Add(x, g.scalar(3, like=x)), g.scalar(0, like=x), g.scalar(6, like=x))
    return g.Div(clipped, g.scalar(6, like=x))  # type: ignore[no-any-return]


HARDSIGMOID = unary(
    "hardsigmoid", FLOATS, values=(-4.0, 4.0),
    doc="torch's relu6(x + 3) / 6 (Keras hard_sigmoid used 0.2x + 0.5, so tf spells it out).",
    reference=reference_hardsigmoid, torch=Call("torch.nn.functional.hardsigmoid"), tf=tf_hardsigmoid,
    onnx=onnx_hardsigmoid,
    excluded_dtypes=NO_INT,
)


def reference_hardswish(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x * (np.clip(x + 3.0, 0.0, 6.0) / 6.0)


def tf_hardswish(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return x * (tf.nn.relu6(x + 3.0) / 6.0)


def onnx_hardswish(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return onnx_activation_float_op(g, "HardSwish", inputs[0])


HARDSWISH = unary(
    "hardswish", FLOATS, values=(-4.0, 4.0),
    reference=reference_hardswish, torch=Call("torch.nn.functional.hardswish"), tf=tf_hardswish,
    onnx=onnx_hardswish,
    excluded_dtypes=NO_INT,
)


def reference_hardtanh(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.clip(inputs[0], attrs["min_val"], attrs["max_val"])


def tf_hardtanh(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.clip_by_value(inputs[0], attrs["min_val"], attrs["max_val"])


def onnx_hardtanh(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x = inputs[0]
    low, high = g.scalar(attrs["min_val"], like=x), g.scalar(attrs["max_val"], like=x)
    return g.Clip(x, low, high)  # type: ignore[no-any-return]


HARDTANH = unary(
    "hardtanh", FLOATS, attrs={"min_val": FloatAttr(-1.5, -0.25), "max_val": FloatAttr(0.25, 1.5)},
    reference=reference_hardtanh,
    torch=Call("torch.nn.functional.hardtanh", kwargs=(("min_val", "min_val"), ("max_val", "max_val"))),
    tf=tf_hardtanh,
    onnx=onnx_hardtanh,
    excluded_dtypes=NO_INT,
)


def reference_hardshrink(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.where(np.abs(x) > attrs["lambd"], x, np.zeros((), x.dtype))


def tf_hardshrink(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return tf.where(tf.math.abs(x) > attrs["lambd"], x, tf.zeros_like(x))


def _off_shrink_threshold(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    x = inputs[0]
    gap = np.abs(np.abs(x.astype(np.float64)) - attrs["lambd"])
    return bool(np.all(gap > margin(x)))


def onnx_hardshrink(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # lambd (0.5, 1 or 1.5) is exact as Shrink's float32 attribute.
    return onnx_activation_float_op(g, "Shrink", inputs[0], lambd=attrs["lambd"], bias=0.0)


HARDSHRINK = unary(
    "hardshrink", FLOATS, attrs={"lambd": Choice((0.5, 1.0, 1.5))},
    values=Values(-2.0, 2.0, fraction=(0.1, 0.4)), stable=_off_shrink_threshold,
    doc="Jumps at |x| = lambd; lambd is exact in every dtype and inputs keep away from it.",
    reference=reference_hardshrink,
    torch=Call("torch.nn.functional.hardshrink", kwargs=(("lambd", "lambd"),)),
    tf=tf_hardshrink,
    onnx=onnx_hardshrink,
    excluded_dtypes=NO_INT,
)


def reference_softshrink(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    lambd = attrs["lambd"]
    return np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, np.zeros((), x.dtype)))


def tf_softshrink(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    lambd = attrs["lambd"]
    return tf.where(x > lambd, x - lambd, tf.where(x < -lambd, x + lambd, tf.zeros_like(x)))


def onnx_softshrink(g: Any, inputs: list[str], attrs: Attrs) -> str:
    x, lambd = inputs[0], attrs["lambd"]
    if g.dtype(x) is not DType.float64:
        return onnx_activation_float_op(g, "Shrink", x, lambd=lambd, bias=lambd)
    # Shrink's float32 lambd would move both the threshold and the shift in float64.
    high, low = g.scalar(lambd, like=x), g.scalar(-lambd, like=x)
    inner = g.Where(g.Less(x, low), g.Add(x, high), g.scalar(0, like=x))
    return g.Where(g.Greater(x, high), g.Sub(x, high), inner)  # type: ignore[no-any-return]


SOFTSHRINK = unary(
    "softshrink", FLOATS, attrs={"lambd": FloatAttr(0.1, 1.0)},
    reference=reference_softshrink,
    torch=Call("torch.nn.functional.softshrink", kwargs=(("lambd", "lambd"),)),
    tf=tf_softshrink,
    onnx=onnx_softshrink,
    excluded_dtypes=NO_INT,
)

OPS = (
    RELU, RELU6, LEAKY_RELU, ELU, SELU, CELU, GELU, SIGMOID, SILU, SOFTPLUS, MISH, LOG_SIGMOID,
    SOFTSIGN, TANHSHRINK, HARDSIGMOID, HARDSWISH, HARDTANH, HARDSHRINK, SOFTSHRINK,
)
