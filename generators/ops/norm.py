"""Normalization in inference mode: batch_norm (running statistics), layer_norm, rms_norm,
instance_norm and group_norm. Channels are at axis 1 (NCHW); statistics and affine
parameters are weight operands. No framework import: lowerings receive the framework module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from generators.dtypes import FLOATS, INTS, DType
from generators.spec import Attrs, FloatAttr, IntAttr, Operand, OpSpec, same_shape
from generators.symbolic import Shape, SymBool, mod, prod

EPS = FloatAttr(1e-5, 1e-3, digits=6)
NO_INT = {
    **{d: "normalization has fractional results; neither framework has an integer kernel" for d in INTS},
    DType.bool: "normalization has fractional results; no bool kernel",
}


def _channel_param_shape(x_rank: int) -> list[int]:
    return [1, -1] + [1] * (x_rank - 2)


def _groups_spread(x: np.ndarray, axes: tuple[int, ...]) -> bool:
    """Every normalized group of two or more values has a variance that is a clear fraction of
    its mean square: x - mean then carries little rounding noise relative to the spread (in a
    near-constant group, noise / sqrt(eps) would be the output)."""
    if int(np.prod([x.shape[a] for a in axes])) <= 1:
        return True
    w = x.astype(np.float64)
    var = np.var(w, axis=axes)
    scale = np.mean(w * w, axis=axes)
    return bool(np.all(var > 0.05 * scale + 1e-9))


# --- ONNX helpers: ONNX float attributes are float32, and a float32 epsilon is ~6e-8
# relative off, which shows in float64 results when the variance is small. Float64 inputs
# therefore get eps as a float64 constant: batch_norm folds it into the variance operand,
# the other operators spell the normalization out.


def onnx_is_float64(g: Any, x: Any) -> bool:
    return g.dtype(x).value == "float64"  # type: ignore[no-any-return]


def onnx_normalize(g: Any, x: Any, axes: list[int], eps: float, like: Any) -> Any:
    """(x - mean) / sqrt(var + eps) over `axes` (biased variance), in the dtype of x and of
    the typed value `like`."""
    axes_in = g.ints(axes)
    centered = g.Sub(x, g.ReduceMean(x, axes_in, keepdims=1))
    var = g.ReduceMean(g.Mul(centered, centered), axes_in, keepdims=1)
    return g.Div(centered, g.Sqrt(g.Add(var, g.scalar(eps, like=like))))


def onnx_channel_affine_spelled(g: Any, out: Any, inputs: list[Any]) -> Any:
    """out * weight + bias with the optional (C,) operands broadcast along axis 1."""
    if len(inputs) == 1:
        return out
    shape = g.ints([-1] + [1] * (g.rank(inputs[0]) - 2))
    out = g.Mul(out, g.Reshape(inputs[1], shape))
    return g.Add(out, g.Reshape(inputs[2], shape)) if len(inputs) > 2 else out


# --- batch_norm ----------------------------------------------------------------------------


def batch_norm_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    x = shapes[0]
    if len(x) < 2 or any(len(p) != 1 for p in shapes[1:]):
        return [False]
    return [p[0] == x[1] for p in shapes[1:]]


def reference_batch_norm(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, mean, var, weight, bias = inputs
    shape = _channel_param_shape(x.ndim)
    inv = weight.reshape(shape) / np.sqrt(var.reshape(shape) + attrs["eps"])
    return (x - mean.reshape(shape)) * inv + bias.reshape(shape)


def torch_batch_norm(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, mean, var, weight, bias = inputs
    return torch.nn.functional.batch_norm(x, mean, var, weight, bias, training=False, eps=attrs["eps"])


def tf_batch_norm(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, mean, var, weight, bias = inputs
    shape = _channel_param_shape(len(x.shape))
    return tf.nn.batch_normalization(
        x,
        tf.reshape(mean, shape),
        tf.reshape(var, shape),
        tf.reshape(bias, shape),
        tf.reshape(weight, shape),
        attrs["eps"],
    )


def onnx_batch_norm(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, mean, var, weight, bias = inputs
    if onnx_is_float64(g, x):
        # var + eps in float64, as the reference adds them; the kernel then adds 0.
        return g.BatchNormalization(x, weight, bias, mean, g.Add(var, g.scalar(attrs["eps"], like=var)), epsilon=0.0)
    return g.BatchNormalization(x, weight, bias, mean, var, epsilon=attrs["eps"])


BATCH_NORM = OpSpec(
    name="batch_norm",
    operands=(
        Operand("x", ranks=(2, 3, 4, 5)),
        Operand("running_mean", ranks=(1,), weight=True),
        Operand("running_var", ranks=(1,), weight=True, values=(0.5, 2.0)),
        Operand("weight", ranks=(1,), weight=True),
        Operand("bias", ranks=(1,), weight=True),
    ),
    dtypes=FLOATS,
    attrs={"eps": EPS},
    infer=same_shape,
    requires=batch_norm_requires,
    reference=reference_batch_norm,
    torch=torch_batch_norm,
    tf=tf_batch_norm,
    onnx=onnx_batch_norm,
    excluded_dtypes=NO_INT,
    doc="Inference mode: (x - running_mean) / sqrt(running_var + eps) * weight + bias per channel "
    "(axis 1).",
)

# --- layer_norm and rms_norm: over the trailing dims the weight's shape names ------------------


def trailing_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    """The weight (and bias) shapes equal the trailing dims of x."""
    x, w = shapes[0], shapes[1]
    k = len(w)
    if k < 1 or k > len(x) or any(len(p) != k for p in shapes[2:]):
        return [False]
    return [d == xd for p in shapes[1:] for d, xd in zip(p, x[len(x) - k :])]


def _trailing_axes(x_rank: int, k: int) -> tuple[int, ...]:
    return tuple(range(x_rank - k, x_rank))


def reference_layer_norm(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, weight = inputs[0], inputs[1]
    axes = tuple(range(x.ndim - weight.ndim, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + attrs["eps"]) * weight
    return out + inputs[2] if len(inputs) > 2 else out


def torch_layer_norm(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    bias = inputs[2] if len(inputs) > 2 else None
    return torch.nn.functional.layer_norm(inputs[0], tuple(inputs[1].shape), inputs[1], bias, eps=attrs["eps"])


def tf_layer_norm(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, weight = inputs[0], inputs[1]
    rank = len(x.shape)
    axes = list(range(rank - len(weight.shape), rank))
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
    out = (x - mean) * tf.math.rsqrt(var + attrs["eps"]) * weight
    return out + inputs[2] if len(inputs) > 2 else out


def _layer_groups_spread(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    x = inputs[0]
    return _groups_spread(x, _trailing_axes(x.ndim, inputs[1].ndim))


def onnx_layer_norm(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, weight = inputs[0], inputs[1]
    axis = g.rank(x) - g.rank(weight)
    if onnx_is_float64(g, x):
        out = g.Mul(onnx_normalize(g, x, list(range(axis, g.rank(x))), attrs["eps"], x), weight)
        return g.Add(out, inputs[2]) if len(inputs) > 2 else out
    # Without a bias the optional input is left off, not passed as "": onnxruntime 1.32's
    # float/float16 LayerNormalization kernel segfaults on an explicitly empty bias.
    return g.LayerNormalization(*inputs, axis=axis, epsilon=attrs["eps"])


LAYER_NORM = OpSpec(
    name="layer_norm",
    operands=(
        Operand("x", ranks=(1, 2, 3, 4)),
        Operand("weight", ranks=(1, 2), weight=True),
        Operand("bias", ranks=(1, 2), weight=True),
    ),
    variadic=(0, 1),
    dtypes=FLOATS,
    attrs={"eps": EPS},
    infer=same_shape,
    requires=trailing_requires,
    reference=reference_layer_norm,
    torch=torch_layer_norm,
    tf=tf_layer_norm,
    onnx=onnx_layer_norm,
    stable=_layer_groups_spread,
    excluded_dtypes=NO_INT,
    doc="Normalizes over the trailing dims named by the weight's shape (biased variance); the bias "
    "is optional; tf spells it out with tf.nn.moments.",
)


def reference_rms_norm(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, weight = inputs
    axes = tuple(range(x.ndim - weight.ndim, x.ndim))
    return x / np.sqrt(np.mean(np.square(x), axis=axes, keepdims=True) + attrs["eps"]) * weight


def torch_rms_norm(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, weight = inputs
    return torch.nn.functional.rms_norm(x, tuple(weight.shape), weight, eps=attrs["eps"])


def tf_rms_norm(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, weight = inputs
    rank = len(x.shape)
    axes = list(range(rank - len(weight.shape), rank))
    mean_square = tf.math.reduce_mean(tf.math.square(x), axis=axes, keepdims=True)
    return x * tf.math.rsqrt(mean_square + attrs["eps"]) * weight


def onnx_rms_norm(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # RMSNormalization arrives in opset 23; spelled out in the input dtype.
    x, weight = inputs
    rank = g.rank(x)
    axes = g.ints(list(range(rank - g.rank(weight), rank)))
    mean_square = g.ReduceMean(g.Mul(x, x), axes, keepdims=1)
    rms = g.Sqrt(g.Add(mean_square, g.scalar(attrs["eps"], like=x)))
    return g.Mul(g.Div(x, rms), weight)


RMS_NORM = OpSpec(
    name="rms_norm",
    operands=(Operand("x", ranks=(1, 2, 3, 4)), Operand("weight", ranks=(1, 2), weight=True)),
    dtypes=FLOATS,
    attrs={"eps": EPS},
    infer=same_shape,
    requires=trailing_requires,
    reference=reference_rms_norm,
    torch=torch_rms_norm,
    tf=tf_rms_norm,
    onnx=onnx_rms_norm,
    excluded_dtypes=NO_INT,
    doc="x / sqrt(mean(x^2) + eps) * weight over the trailing dims named by the weight's shape; "
    "eps is explicit (torch's default depends on the dtype). Well conditioned: no guard.",
)

# --- instance_norm and group_norm: per sample, over channel groups and spatial dims -----------


def channel_affine_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    """Optional per-channel affine parameters (weight, then bias) of shape (C,)."""
    x = shapes[0]
    if len(x) < 2 or any(len(p) != 1 for p in shapes[1:]):
        return [False]
    return [p[0] == x[1] for p in shapes[1:]]


def group_norm_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    needs = channel_affine_requires(shapes, attrs)
    if needs and needs[0] is False:
        return needs
    x, groups = shapes[0], attrs["num_groups"]
    # torch rejects groups of a single value ("expected more than 1 value per channel").
    return needs + [mod(x[1], groups) == 0, prod(x[1:]) >= 2 * groups]


def instance_norm_requires(shapes: Sequence[Shape], attrs: Attrs) -> list[SymBool]:
    needs = channel_affine_requires(shapes, attrs)
    if needs and needs[0] is False:
        return needs
    # torch rejects a single spatial element ("expected more than 1 spatial element").
    return needs + [prod(shapes[0][2:]) >= 2]


def reference_group_norm(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    groups = x.reshape((x.shape[0], attrs["num_groups"], -1))
    mean = np.mean(groups, axis=2, keepdims=True)
    var = np.mean(np.square(groups - mean), axis=2, keepdims=True)
    out = ((groups - mean) / np.sqrt(var + attrs["eps"])).reshape(x.shape)
    shape = _channel_param_shape(x.ndim)
    if len(inputs) > 1:
        out = out * inputs[1].reshape(shape)
    if len(inputs) > 2:
        out = out + inputs[2].reshape(shape)
    return out


def torch_group_norm(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    weight = inputs[1] if len(inputs) > 1 else None
    bias = inputs[2] if len(inputs) > 2 else None
    return torch.nn.functional.group_norm(inputs[0], attrs["num_groups"], weight, bias, eps=attrs["eps"])


def tf_group_norm(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    groups = tf.reshape(x, [tf.shape(x)[0], attrs["num_groups"], -1])
    mean, var = tf.nn.moments(groups, axes=[2], keepdims=True)
    out = tf.reshape((groups - mean) * tf.math.rsqrt(var + attrs["eps"]), tf.shape(x))
    shape = _channel_param_shape(len(x.shape))
    if len(inputs) > 1:
        out = out * tf.reshape(inputs[1], shape)
    if len(inputs) > 2:
        out = out + tf.reshape(inputs[2], shape)
    return out


def onnx_channel_affine(g: Any, inputs: list[Any]) -> tuple[Any, Any]:
    """The (C,) scale and bias operands, ones and zeros where absent (ONNX requires both)."""
    x = inputs[0]
    channels = g.shape(x)[1]
    scale = inputs[1] if len(inputs) > 1 else g.const([1.0] * channels, g.dtype(x))
    bias = inputs[2] if len(inputs) > 2 else g.const([0.0] * channels, g.dtype(x))
    return scale, bias


def onnx_group_norm(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x, groups = inputs[0], attrs["num_groups"]
    if onnx_is_float64(g, x):
        grouped = g.Reshape(x, g.ints([g.shape(x)[0], groups, -1]))
        out = g.Reshape(onnx_normalize(g, grouped, [2], attrs["eps"], x), g.ints(list(g.shape(x))))
        return onnx_channel_affine_spelled(g, out, inputs)
    scale, bias = onnx_channel_affine(g, inputs)
    return g.GroupNormalization(x, scale, bias, num_groups=groups, epsilon=attrs["eps"])


def _group_norm_spread(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    x = inputs[0]
    return _groups_spread(x.reshape((x.shape[0], attrs["num_groups"], -1)), (2,))


GROUP_NORM = OpSpec(
    name="group_norm",
    operands=(Operand("x", ranks=(2, 3, 4)), Operand("affine", ranks=(1,), weight=True)),
    variadic=(0, 2),
    dtypes=FLOATS,
    attrs={"num_groups": IntAttr(1, 4), "eps": EPS},
    infer=same_shape,
    requires=group_norm_requires,
    reference=reference_group_norm,
    torch=torch_group_norm,
    tf=tf_group_norm,
    onnx=onnx_group_norm,
    stable=_group_norm_spread,
    excluded_dtypes=NO_INT,
    doc="Channels (axis 1) split into num_groups groups, each normalized over its channels and the "
    "spatial dims; then the optional affine operands: weight, then bias, each (C,).",
)


def reference_instance_norm(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    axes = tuple(range(2, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + attrs["eps"])
    shape = _channel_param_shape(x.ndim)
    if len(inputs) > 1:
        out = out * inputs[1].reshape(shape)
    if len(inputs) > 2:
        out = out + inputs[2].reshape(shape)
    return out


def torch_instance_norm(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    weight = inputs[1] if len(inputs) > 1 else None
    bias = inputs[2] if len(inputs) > 2 else None
    return torch.nn.functional.instance_norm(inputs[0], weight=weight, bias=bias, eps=attrs["eps"])


def tf_instance_norm(tf: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    mean, var = tf.nn.moments(x, axes=list(range(2, len(x.shape))), keepdims=True)
    out = (x - mean) * tf.math.rsqrt(var + attrs["eps"])
    shape = _channel_param_shape(len(x.shape))
    if len(inputs) > 1:
        out = out * tf.reshape(inputs[1], shape)
    if len(inputs) > 2:
        out = out + tf.reshape(inputs[2], shape)
    return out


def onnx_instance_norm(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    if onnx_is_float64(g, x):
        out = onnx_normalize(g, x, list(range(2, g.rank(x))), attrs["eps"], x)
        return onnx_channel_affine_spelled(g, out, inputs)
    scale, bias = onnx_channel_affine(g, inputs)
    if g.dtype(x).value == "bfloat16":
        # The standard's InstanceNormalization has no bfloat16; GroupNormalization with one
        # group per channel is the same function and has.
        return g.GroupNormalization(x, scale, bias, num_groups=g.shape(x)[1], epsilon=attrs["eps"])
    return g.InstanceNormalization(x, scale, bias, epsilon=attrs["eps"])


def _instance_spread(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    x = inputs[0]
    return _groups_spread(x, tuple(range(2, x.ndim)))


INSTANCE_NORM = OpSpec(
    name="instance_norm",
    operands=(Operand("x", ranks=(3, 4, 5)), Operand("affine", ranks=(1,), weight=True)),
    variadic=(0, 2),
    dtypes=FLOATS,
    attrs={"eps": EPS},
    infer=same_shape,
    requires=instance_norm_requires,
    reference=reference_instance_norm,
    torch=torch_instance_norm,
    tf=tf_instance_norm,
    onnx=onnx_instance_norm,
    stable=_instance_spread,
    excluded_dtypes=NO_INT,
    doc="Each (sample, channel) normalized over the spatial dims (input statistics, no running "
    "stats); then the optional affine operands: weight, then bias, each (C,).",
)

OPS = (BATCH_NORM, LAYER_NORM, RMS_NORM, GROUP_NORM, INSTANCE_NORM)
