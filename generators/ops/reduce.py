"""Reductions over axes (sum, mean, prod, max, min, all, any, logsumexp, var, std),
arg-reductions (argmax, argmin) and scans (cumsum, cumprod). Axes are sorted non-negative
ints; keepdims is an attribute. No framework import: lowerings receive the framework module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from generators.dtypes import FLOATS, INTS, NUMERIC, DType
from generators.ops._common import margin
from generators.spec import (
    Attrs,
    Axes,
    Axis,
    Call,
    Choice,
    Operand,
    OpSpec,
    Tolerance,
    ValueDomain,
    same_shape,
)

KEEPDIMS = Choice((False, True))
RANKS = (1, 2, 3, 4)

NO_BOOL = {DType.bool: "tf has no bool kernel for it (torch promotes bool to int64)"}
FLOAT_ONLY = {
    **{d: "fractional result: tf has no integer kernel, torch errors or promotes to float" for d in INTS},
    DType.bool: "fractional result: no bool kernel in tf",
}


def reduced_shape(shapes: Sequence[Any], attrs: Attrs) -> Sequence[Any]:
    axes = attrs["axes"] if "axes" in attrs else (attrs["axis"],)
    shape = shapes[0]
    if attrs["keepdims"]:
        return (tuple(1 if i in axes else d for i, d in enumerate(shape)),)
    return (tuple(d for i, d in enumerate(shape) if i not in axes),)


def _reduction(
    name: str,
    dtypes: Iterable[DType],
    reference: Any,
    torch: Any,
    tf: Any,
    *,
    onnx: Any,
    values: ValueDomain | None = None,
    stable: Any = None,
    excluded: Mapping[DType, str] | None = None,
    tolerances: tuple[Tolerance, ...] = (),
    doc: str = "",
) -> OpSpec:
    return OpSpec(
        name=name,
        operands=(Operand("x", ranks=RANKS, values=values),),
        dtypes=frozenset(dtypes),
        attrs={"axes": Axes(), "keepdims": KEEPDIMS},
        infer=reduced_shape,
        reference=reference,
        torch=torch,
        tf=tf,
        onnx=onnx,
        stable=stable,
        excluded_dtypes=dict(excluded or {}),
        tolerances=tolerances,
        doc=doc,
    )


def _tf_reduce(path: str) -> Call:
    return Call(path, (("axis", "axes"), ("keepdims", "keepdims")))


def _np_reduce(path: str) -> Call:
    return Call(path, (("axis", "axes"), ("keepdims", "keepdims")))


def _torch_reduce(path: str) -> Call:
    return Call(path, (("dim", "axes"), ("keepdim", "keepdims")))


def onnx_reduction(g: Any, op: str, x: str, attrs: Attrs, narrow: tuple[str, ...] = ()) -> str:
    """ONNX reduction `op` over attrs' axes. For the dtypes in `narrow`, which the ONNX
    standard does not define `op` for, it runs in int32 and casts back: exact, since int32
    holds every result that fits the narrow type (the value search rejects overflow)."""
    t = g.dtype(x)
    axes = g.ints(attrs["axes"])
    keepdims = int(attrs["keepdims"])
    if t.value in narrow:
        wide = g.op(op, g.cast(x, DType.int32), axes, keepdims=keepdims)
        return g.cast(wide, t)  # type: ignore[no-any-return]
    return g.op(op, x, axes, keepdims=keepdims)  # type: ignore[no-any-return]


# --- sums and products ---------------------------------------------------------------------


def reference_sum(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.sum(x, axis=attrs["axes"], keepdims=attrs["keepdims"]).astype(x.dtype)


def torch_sum(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return torch.sum(x, dim=attrs["axes"], keepdim=attrs["keepdims"], dtype=x.dtype)


def onnx_sum(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceSum", inputs[0], attrs, ("int8", "int16", "uint8"))


SUM = _reduction(
    "sum", NUMERIC, reference_sum, torch_sum, _tf_reduce("tf.math.reduce_sum"),
    onnx=onnx_sum, excluded=NO_BOOL,
    doc="Integer sums keep the input dtype (torch would promote to int64; the lowering asks for "
    "the input dtype); overflowing inputs are rejected by the value search.",
)


def onnx_mean(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceMean", inputs[0], attrs)


MEAN = _reduction(
    "mean", FLOATS, _np_reduce("np.mean"), _torch_reduce("torch.mean"), _tf_reduce("tf.math.reduce_mean"),
    onnx=onnx_mean,
    excluded={**FLOAT_ONLY, **{d: "torch.mean rejects integer inputs; tf truncates the integer mean" for d in INTS}},
)


def reference_prod(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.prod(x, axis=attrs["axes"], keepdims=attrs["keepdims"]).astype(x.dtype)


def torch_prod(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # torch.prod reduces one dim at a time; descending order keeps the other indices valid.
    x = inputs[0]
    for axis in sorted(attrs["axes"], reverse=True):
        x = torch.prod(x, dim=axis, keepdim=attrs["keepdims"], dtype=inputs[0].dtype)
    return x


def onnx_prod(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceProd", inputs[0], attrs, ("int8", "int16", "uint8"))


PROD = _reduction(
    "prod", NUMERIC, reference_prod, torch_prod, _tf_reduce("tf.math.reduce_prod"),
    onnx=onnx_prod, values=(-2.0, 2.0), excluded=NO_BOOL,
    doc="torch.prod takes one dim, so the torch lowering reduces the axes one by one.",
)

# --- extrema -------------------------------------------------------------------------------


def onnx_reduce_max(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceMax", inputs[0], attrs, ("int16",))


def onnx_reduce_min(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceMin", inputs[0], attrs, ("int16",))


REDUCE_MAX = _reduction(
    "reduce_max", NUMERIC, _np_reduce("np.max"), _torch_reduce("torch.amax"), _tf_reduce("tf.math.reduce_max"),
    onnx=onnx_reduce_max, excluded=NO_BOOL,
)

REDUCE_MIN = _reduction(
    "reduce_min", NUMERIC, _np_reduce("np.min"), _torch_reduce("torch.amin"), _tf_reduce("tf.math.reduce_min"),
    onnx=onnx_reduce_min, excluded=NO_BOOL,
)

# --- logical -------------------------------------------------------------------------------


def onnx_all(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX has no ReduceAll; ReduceMin takes bool since opset 20.
    return onnx_reduction(g, "ReduceMin", inputs[0], attrs)


def onnx_any(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceMax", inputs[0], attrs)


ALL = _reduction(
    "all", {DType.bool}, _np_reduce("np.all"), _torch_reduce("torch.all"), _tf_reduce("tf.math.reduce_all"),
    onnx=onnx_all,
    excluded={d: "tf.math.reduce_all takes bool only" for d in NUMERIC},
)

ANY = _reduction(
    "any", {DType.bool}, _np_reduce("np.any"), _torch_reduce("torch.any"), _tf_reduce("tf.math.reduce_any"),
    onnx=onnx_any,
    excluded={d: "tf.math.reduce_any takes bool only" for d in NUMERIC},
)

# --- logsumexp and moments -----------------------------------------------------------------


def reference_logsumexp(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    m = np.max(x, axis=attrs["axes"], keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=attrs["axes"], keepdims=True)) + m
    return out if attrs["keepdims"] else np.squeeze(out, axis=attrs["axes"])


def onnx_logsumexp(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return onnx_reduction(g, "ReduceLogSumExp", inputs[0], attrs)


LOGSUMEXP = _reduction(
    "logsumexp", FLOATS, reference_logsumexp, _torch_reduce("torch.logsumexp"),
    _tf_reduce("tf.math.reduce_logsumexp"), onnx=onnx_logsumexp,
    excluded=FLOAT_ONLY,
)


def reference_var(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.var(inputs[0], axis=attrs["axes"], keepdims=attrs["keepdims"])


def reference_std(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return np.std(inputs[0], axis=attrs["axes"], keepdims=attrs["keepdims"])


def torch_var(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.var(inputs[0], dim=attrs["axes"], correction=0, keepdim=attrs["keepdims"])


def torch_std(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return torch.std(inputs[0], dim=attrs["axes"], correction=0, keepdim=attrs["keepdims"])


def onnx_var(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX has no variance: the mean of squared deviations from the mean, as np.var.
    x = inputs[0]
    axes = g.ints(attrs["axes"])
    d = g.Sub(x, g.ReduceMean(x, axes, keepdims=1))
    return g.ReduceMean(g.Mul(d, d), axes, keepdims=int(attrs["keepdims"]))


def onnx_std(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.Sqrt(onnx_var(g, inputs, attrs))


def _spread_groups(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    """Every reduced group of two or more values has a variance well above rounding noise, so
    the square root in std is well conditioned (one-value groups have variance exactly 0)."""
    x = inputs[0]
    axes = attrs["axes"]
    if int(np.prod([x.shape[a] for a in axes])) <= 1:
        return True
    w = x.astype(np.float64)
    var = np.var(w, axis=axes)
    scale = np.mean(w * w, axis=axes)
    return bool(np.all(var > 0.05 * scale + 1e-9))


VAR = _reduction(
    "var", FLOATS, reference_var, torch_var, _tf_reduce("tf.math.reduce_variance"),
    onnx=onnx_var, excluded=FLOAT_ONLY,
    doc="Population variance (correction 0), as tf.math.reduce_variance computes it.",
)

STD = _reduction(
    "std", FLOATS, reference_std, torch_std, _tf_reduce("tf.math.reduce_std"),
    onnx=onnx_std, stable=_spread_groups, excluded=FLOAT_ONLY,
    doc="Population standard deviation (correction 0); groups keep a clear spread, where the "
    "square root is well conditioned.",
)

# --- arg-reductions ------------------------------------------------------------------------


def _sorted_along(x: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    s = np.sort(np.moveaxis(x.astype(np.float64), axis, -1), axis=-1)
    return s[..., ::-1] if largest else s


def distinct_extremes(x: np.ndarray, axis: int, count: int, largest: bool) -> bool:
    """True if the `count` largest (or smallest) values along `axis` and the next one are
    pairwise apart by more than rounding noise: the arg-extreme / top-k indices are unique."""
    if x.size == 0 or x.shape[axis] <= 1:
        return True
    s = _sorted_along(x, axis, largest)[..., : count + 1]
    gaps = np.abs(np.diff(s, axis=-1))
    if not (x.dtype.kind == "f" or x.dtype.name == "bfloat16"):
        return bool(np.all(gaps > 0))
    # Rounding noise of the dtype at the magnitude of the two neighbours (x's own dtype).
    noise = margin(s.astype(x.dtype), ulps=8.0)
    return bool(np.all(gaps > np.maximum(noise[..., 1:], noise[..., :-1])))


def _unique_max(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return distinct_extremes(inputs[0], attrs["axis"], 1, True)


def _unique_min(inputs: Sequence[np.ndarray], attrs: Attrs) -> bool:
    return distinct_extremes(inputs[0], attrs["axis"], 1, False)


def _int64_output(t: DType, attrs: Attrs) -> Sequence[DType]:
    return (DType.int64,)


def _arg_reduction(name: str, reference: Any, torch: Any, tf: Any, onnx: Any, stable: Any) -> OpSpec:
    return OpSpec(
        name=name,
        operands=(Operand("x", ranks=RANKS),),
        dtypes=NUMERIC,
        attrs={"axis": Axis(), "keepdims": KEEPDIMS},
        infer=reduced_shape,
        out_dtypes=_int64_output,
        reference=reference,
        torch=torch,
        tf=tf,
        onnx=onnx,
        stable=stable,
        excluded_dtypes={DType.bool: "torch has no bool argmax/argmin kernel"},
        doc="The extreme along the axis is kept unique: on ties frameworks may pick different indices.",
    )


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


def onnx_argmax(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.ArgMax(inputs[0], axis=attrs["axis"], keepdims=int(attrs["keepdims"]))


def onnx_argmin(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    return g.ArgMin(inputs[0], axis=attrs["axis"], keepdims=int(attrs["keepdims"]))


ARGMAX = _arg_reduction(
    "argmax", reference_argmax, Call("torch.argmax", (("dim", "axis"), ("keepdim", "keepdims"))), tf_argmax,
    onnx_argmax, _unique_max,
)
ARGMIN = _arg_reduction(
    "argmin", reference_argmin, Call("torch.argmin", (("dim", "axis"), ("keepdim", "keepdims"))), tf_argmin,
    onnx_argmin, _unique_min,
)

# --- scans ---------------------------------------------------------------------------------


def reference_cumsum(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.cumsum(x, axis=attrs["axis"]).astype(x.dtype)


def reference_cumprod(np: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return np.cumprod(x, axis=attrs["axis"]).astype(x.dtype)


def torch_cumsum(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return torch.cumsum(x, dim=attrs["axis"], dtype=x.dtype)


def torch_cumprod(torch: Any, inputs: list[Any], attrs: Attrs) -> Any:
    x = inputs[0]
    return torch.cumprod(x, dim=attrs["axis"], dtype=x.dtype)


def onnx_cumsum(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # ONNX CumSum has no int8/int16/uint8; int32 holds every sum that fits them: exact.
    x = inputs[0]
    t = g.dtype(x)
    axis = g.const(attrs["axis"], DType.int64)
    if t.value in ("int8", "int16", "uint8"):
        return g.cast(g.CumSum(g.cast(x, DType.int32), axis), t)
    return g.CumSum(x, axis)


def onnx_cumprod(g: Any, inputs: list[Any], attrs: Attrs) -> Any:
    # CumProd arrived in opset 26. out[i] = prod_j (x[j] if j <= i else 1): a new axis i
    # before the scanned axis j, a lower-triangular mask, and ReduceProd over j (which has
    # no int8/int16/uint8; int32 holds every product that fits them: exact).
    x = inputs[0]
    t = g.dtype(x)
    k, rank = attrs["axis"], g.rank(x)
    n = g.shape(x)[k]
    wide = DType.int32 if t.value in ("int8", "int16", "uint8") else t
    if wide is not t:
        x = g.cast(x, wide)
    lower = g.const([[j <= i for j in range(n)] for i in range(n)])
    mask = g.Reshape(lower, g.ints([n, n] + [1] * (rank - k - 1)))
    rows = g.Where(mask, g.Unsqueeze(x, g.ints([k])), g.const(1, wide))
    out = g.ReduceProd(rows, g.ints([k + 1]), keepdims=0)
    return out if wide is t else g.cast(out, t)


def _scan(
    name: str, reference: Any, torch: Any, tf: Any, onnx: Any, values: ValueDomain | None = None
) -> OpSpec:
    return OpSpec(
        name=name,
        operands=(Operand("x", ranks=RANKS, values=values),),
        dtypes=NUMERIC,
        attrs={"axis": Axis()},
        infer=same_shape,
        reference=reference,
        torch=torch,
        tf=tf,
        onnx=onnx,
        excluded_dtypes=NO_BOOL,
        doc="Inclusive scan along one axis, in the input dtype (torch is asked not to promote ints).",
    )


CUMSUM = _scan(
    "cumsum", reference_cumsum, torch_cumsum, Call("tf.math.cumsum", (("axis", "axis"),)), onnx_cumsum
)
CUMPROD = _scan(
    "cumprod", reference_cumprod, torch_cumprod, Call("tf.math.cumprod", (("axis", "axis"),)), onnx_cumprod,
    values=(-2.0, 2.0),
)

OPS = (
    SUM, MEAN, PROD, REDUCE_MAX, REDUCE_MIN, ALL, ANY, LOGSUMEXP, VAR, STD, ARGMAX, ARGMIN, CUMSUM,
    CUMPROD,
)
