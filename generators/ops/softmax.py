"""Activations that act along an axis or take a parameter tensor: PReLU (per-channel
slopes), GLU (gating halves of an axis) and the softmax family. One block per operator.

No framework import: lowerings receive the framework module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generators.dtypes import FLOATS, INTS
from generators.ops._common import unary
from generators.spec import Attrs, Axis, Call, Operand, OpSpec, same_shape
from generators.symbolic import Shape, SymBool, any_of, floordiv, mod

# Integer inputs: the result is fractional, and torch either has no integer kernel or
# promotes to float (a dtype change the IR does not model); tf has no integer kernel.
NO_INT = {d: "fractional result: no integer kernel in tf, none or a float promotion in torch" for d in INTS}

# --- PReLU: one learned slope per channel (axis 1) or one shared slope ---------------------------


def prelu_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    x, w = shapes
    if len(x) < 2 or len(w) != 1:
        return [False]
    return [any_of([w[0] == x[1], w[0] == 1])]


def reference_prelu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    slope = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, slope * x)


def torch_prelu(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.nn.functional.prelu(inputs[0], inputs[1])


def tf_prelu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs
    slope = tf.reshape(w, [1, -1] + [1] * (len(x.shape) - 2))
    return tf.where(x > 0, x, slope * x)


def onnx_prelu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    # ONNX PRelu broadcasts the slope from the right: the channel dim needs trailing 1s.
    x, w = inputs
    return g.PRelu(x, g.Reshape(w, g.ints([-1] + [1] * (g.rank(x) - 2))))  # type: ignore[no-any-return]


PRELU = OpSpec(
    name="prelu",
    operands=(
        Operand("x", ranks=(2, 3, 4)),
        Operand("weight", ranks=(1,), weight=True, values=(0.0, 0.5)),
    ),
    dtypes=frozenset(FLOATS),
    infer=same_shape,
    requires=prelu_requires,
    reference=reference_prelu,
    torch=torch_prelu,
    tf=tf_prelu,
    onnx=onnx_prelu,
    excluded_dtypes=NO_INT,
    doc="One slope per channel (dim 1 of a channels-first input), or one shared slope.",
)

# --- GLU: halves along an axis, a * sigmoid(b) ---------------------------------------------------


def glu_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    return [mod(shapes[0][attrs["axis"]], 2) == 0]


def glu_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    x, axis = shapes[0], attrs["axis"]
    half = floordiv(x[axis], 2)
    return [tuple(half if i == axis else d for i, d in enumerate(x))]


def reference_glu(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = np.split(inputs[0], 2, axis=attrs["axis"])
    sigmoid_b = (0.5 * (1.0 + np.tanh(0.5 * b.astype(np.float64)))).astype(b.dtype)
    return a * sigmoid_b


def tf_glu(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    a, b = tf.split(inputs[0], 2, axis=attrs["axis"])
    return a * tf.math.sigmoid(b)


def onnx_glu(g: Any, inputs: list[str], attrs: Attrs) -> str:
    a, b = g.Split(inputs[0], axis=attrs["axis"], num_outputs=2, outputs=2)
    return g.Mul(a, g.Sigmoid(b))  # type: ignore[no-any-return]


GLU = OpSpec(
    name="glu",
    operands=(Operand("x", ranks=(1, 2, 3, 4)),),
    dtypes=frozenset(FLOATS),
    attrs={"axis": Axis(0)},
    infer=glu_infer,
    requires=glu_requires,
    reference=reference_glu,
    torch=Call("torch.nn.functional.glu", kwargs=(("dim", "axis"),)),
    tf=tf_glu,
    onnx=onnx_glu,
    excluded_dtypes=NO_INT,
    doc="Splits the axis (even length) into halves a, b and returns a * sigmoid(b).",
)

# --- the softmax family -------------------------------------------------------------------------


def reference_softmax(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0].astype(np.float64)
    e = np.exp(x - np.max(x, axis=attrs["axis"], keepdims=True))
    return (e / np.sum(e, axis=attrs["axis"], keepdims=True)).astype(inputs[0].dtype)


def reference_log_softmax(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0].astype(np.float64)
    shifted = x - np.max(x, axis=attrs["axis"], keepdims=True)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=attrs["axis"], keepdims=True))
    return out.astype(inputs[0].dtype)


def reference_softmin(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return reference_softmax(np, [-inputs[0]], attrs)


def tf_softmin(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return tf.nn.softmax(-inputs[0], axis=attrs["axis"])


SOFTMAX = unary(
    "softmax", FLOATS, attrs={"axis": Axis(0)}, ranks=(1, 2, 3, 4),
    reference=reference_softmax,
    torch=Call("torch.softmax", kwargs=(("dim", "axis"),)),
    tf=Call("tf.nn.softmax", kwargs=(("axis", "axis"),)),
    onnx=Call("onnx.Softmax", kwargs=(("axis", "axis"),)),
    excluded_dtypes=NO_INT,
)

LOG_SOFTMAX = unary(
    "log_softmax", FLOATS, attrs={"axis": Axis(0)}, ranks=(1, 2, 3, 4),
    reference=reference_log_softmax,
    torch=Call("torch.log_softmax", kwargs=(("dim", "axis"),)),
    tf=Call("tf.nn.log_softmax", kwargs=(("axis", "axis"),)),
    onnx=Call("onnx.LogSoftmax", kwargs=(("axis", "axis"),)),
    excluded_dtypes=NO_INT,
)


def onnx_softmin(g: Any, inputs: list[str], attrs: Attrs) -> str:
    return g.Softmax(g.Neg(inputs[0]), axis=attrs["axis"])  # type: ignore[no-any-return]


SOFTMIN = unary(
    "softmin", FLOATS, attrs={"axis": Axis(0)}, ranks=(1, 2, 3, 4),
    doc="softmax(-x); tf has no softmin.",
    reference=reference_softmin,
    torch=Call("torch.nn.functional.softmin", kwargs=(("dim", "axis"),)),
    tf=tf_softmin,
    onnx=onnx_softmin,
    excluded_dtypes=NO_INT,
)

OPS = (PRELU, GLU, SOFTMAX, LOG_SOFTMAX, SOFTMIN)
