"""Matrix products: matmul (torch.matmul semantics, batch broadcasting, 1-D operands), bmm,
linear (x @ W^T + b with weight operands) and baddbmm. No framework import: lowerings
receive the framework module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generators.dtypes import FLOATS, DType
from generators.spec import Attrs, Call, FloatAttr, Operand, OpSpec
from generators.symbolic import Shape, SymBool, broadcast

# tf's MatMul/BatchMatMulV2 CPU kernels: floats, int32 and int64 (BatchMatMulV2 also has
# int16, but the 2-D MatMul has not). torch has every integer matmul on CPU.
MATMUL_DTYPES = FLOATS | {DType.int32, DType.int64}
NO_SMALL_INT_MATMUL = {
    DType.int8: "tf has no int8 MatMul kernel",
    DType.int16: "tf has no int16 MatMul kernel (only a batched one)",
    DType.uint8: "tf has no uint8 MatMul kernel",
    DType.bool: "neither framework multiplies bool matrices",
}

# --- matmul ----------------------------------------------------------------------------------


def _matmul_dims(a: Shape, b: Shape) -> tuple[Shape, list[SymBool]]:
    """The output shape of torch.matmul (1-D operands' added dims dropped) and its needs."""
    if len(a) == 0 or len(b) == 0:
        return (), [False]
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch, needs = broadcast(a2[:-2], b2[:-2])
    needs.append(a2[-1] == b2[-2])
    tail = ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())
    return tuple(batch) + tail, needs


def matmul_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    return _matmul_dims(shapes[0], shapes[1])[1]


def matmul_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    return [_matmul_dims(shapes[0], shapes[1])[0]]


def tf_matmul(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # tf.linalg.matmul wants rank >= 2 operands: 1-D ones become a row (a) or a column (b)
    # and the added dim is dropped again, as torch.matmul does.
    a, b = inputs
    a_vec, b_vec = len(a.shape) == 1, len(b.shape) == 1
    out = tf.linalg.matmul(tf.expand_dims(a, 0) if a_vec else a, tf.expand_dims(b, -1) if b_vec else b)
    if b_vec:
        out = tf.squeeze(out, -1)
    if a_vec:
        out = tf.squeeze(out, -2 if not b_vec else -1)
    return out


MATMUL = OpSpec(
    name="matmul",
    operands=(Operand("a", ranks=(1, 2, 3, 4)), Operand("b", ranks=(1, 2, 3, 4))),
    dtypes=MATMUL_DTYPES,
    infer=matmul_infer,
    requires=matmul_requires,
    reference=Call("np.matmul"),
    torch=Call("torch.matmul"),
    tf=tf_matmul,
    onnx=Call("onnx.MatMul"),
    excluded_dtypes=NO_SMALL_INT_MATMUL,
    doc="torch.matmul semantics: batch dims broadcast; a 1-D a is a row, a 1-D b a column, and "
    "their added dim is dropped (np.matmul agrees).",
)

# --- bmm ------------------------------------------------------------------------------------


def bmm_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    a, b = shapes
    return [a[0] == b[0], a[2] == b[1]]


def bmm_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    a, b = shapes
    return [(a[0], a[1], b[2])]


BMM = OpSpec(
    name="bmm",
    operands=(Operand("a", ranks=(3,)), Operand("b", ranks=(3,))),
    dtypes=MATMUL_DTYPES,
    infer=bmm_infer,
    requires=bmm_requires,
    reference=Call("np.matmul"),
    torch=Call("torch.bmm"),
    tf=Call("tf.linalg.matmul"),
    onnx=Call("onnx.MatMul"),
    excluded_dtypes=NO_SMALL_INT_MATMUL,
    doc="Batched matrix product of rank-3 operands with the same batch size (no broadcasting).",
)

# --- linear ----------------------------------------------------------------------------------


def linear_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    x, w = shapes[0], shapes[1]
    if len(x) < 1 or len(w) != 2:
        return [False]
    needs = [w[1] == x[-1]]
    if len(shapes) > 2:
        if len(shapes[2]) != 1:
            return [False]
        needs.append(shapes[2][0] == w[0])
    return needs


def linear_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    x, w = shapes[0], shapes[1]
    return [tuple(x[:-1]) + (w[0],)]


def reference_linear(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    out = np.matmul(inputs[0], np.swapaxes(inputs[1], 0, 1))
    return out + inputs[2] if len(inputs) > 2 else out


def torch_linear(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    bias = inputs[2] if len(inputs) > 2 else None
    return torch.nn.functional.linear(inputs[0], inputs[1], bias)


def tf_linear(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, w = inputs[0], inputs[1]
    rows = tf.reshape(x, [-1, x.shape[-1]])
    out = tf.linalg.matmul(rows, w, transpose_b=True)
    if len(inputs) > 2:
        out = tf.nn.bias_add(out, inputs[2])
    return tf.reshape(out, list(x.shape[:-1]) + [w.shape[0]])


def onnx_linear(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # MatMul + Add for every rank, as torch.onnx exports it for non-2-D inputs (onnxruntime
    # fuses the 2-D case into Gemm itself); Gemm would only cover 2-D x.
    out = g.MatMul(inputs[0], g.Transpose(inputs[1], perm=(1, 0)))
    return g.Add(out, inputs[2]) if len(inputs) > 2 else out


LINEAR = OpSpec(
    name="linear",
    operands=(
        Operand("x", ranks=(1, 2, 3, 4)),
        Operand("weight", ranks=(2,), weight=True),
        Operand("bias", ranks=(1,), weight=True),
    ),
    variadic=(0, 1),
    dtypes=MATMUL_DTYPES,
    infer=linear_infer,
    requires=linear_requires,
    reference=reference_linear,
    torch=torch_linear,
    tf=tf_linear,
    onnx=onnx_linear,
    excluded_dtypes=NO_SMALL_INT_MATMUL,
    doc="y = x @ weight^T (+ bias); weight is (out_features, in_features); the bias is optional.",
)

# --- baddbmm ---------------------------------------------------------------------------------


def baddbmm_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    c, a, b = shapes
    product = (a[0], a[1], b[2])
    out, needs = broadcast(c, product)
    # input broadcasts to the product's shape, not the other way round
    return needs + [a[0] == b[0], a[2] == b[1]] + [o == d for o, d in zip(out, product)]


def baddbmm_infer(shapes: Sequence[Shape], attrs: Attrs) -> list[Shape]:
    _, a, b = shapes
    return [(a[0], a[1], b[2])]


def reference_baddbmm(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    c, a, b = inputs
    return attrs["beta"] * c + attrs["alpha"] * np.matmul(a, b)


def tf_baddbmm(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    c, a, b = inputs
    return attrs["beta"] * c + attrs["alpha"] * tf.linalg.matmul(a, b)


def onnx_baddbmm(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    c, a, b = inputs
    scaled = g.Mul(g.scalar(attrs["beta"], like=c), c)
    return g.Add(scaled, g.Mul(g.scalar(attrs["alpha"], like=c), g.MatMul(a, b)))


BADDBMM = OpSpec(
    name="baddbmm",
    operands=(Operand("input", ranks=(1, 2, 3)), Operand("a", ranks=(3,)), Operand("b", ranks=(3,))),
    dtypes=frozenset(FLOATS),
    attrs={"beta": FloatAttr(-1.0, 1.0), "alpha": FloatAttr(-1.0, 1.0)},
    infer=baddbmm_infer,
    requires=baddbmm_requires,
    reference=reference_baddbmm,
    torch=Call("torch.baddbmm", kwargs=(("beta", "beta"), ("alpha", "alpha"))),
    tf=tf_baddbmm,
    onnx=onnx_baddbmm,
    excluded_dtypes={
        **{d: "float alpha/beta scale an integer product (torch requires integral scalars)" for d in MATMUL_DTYPES - FLOATS},
        **NO_SMALL_INT_MATMUL,
    },
    doc="beta * input + alpha * (a @ b), input broadcast to the (batch, n, p) product.",
)

OPS = (MATMUL, BMM, LINEAR, BADDBMM)
