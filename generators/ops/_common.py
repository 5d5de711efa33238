"""Builders and value guards shared by the operator families.

A builder fills the boilerplate of a common operator shape (elementwise unary/binary);
guards tell the value search where an operator is ill-conditioned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from generators.dtypes import DType
from generators.spec import (
    AttrDomain,
    Attrs,
    Function,
    Missing,
    Operand,
    OpSpec,
    Tolerance,
    ValueDomain,
    same_shape,
)
from generators.symbolic import Shape, SymBool, broadcast

Guard = Callable[[Sequence[np.ndarray], Attrs], bool]
NO_ONNX = Missing("no ONNX lowering yet")


def unary(
    name: str,
    dtypes: Iterable[DType],
    *,
    reference: Function | Missing,
    torch: Function | Missing,
    tf: Function | Missing,
    onnx: Function | Missing = NO_ONNX,
    values: ValueDomain | None = None,
    stable: Guard | None = None,
    attrs: Mapping[str, AttrDomain] | None = None,
    out_dtype: DType | None = None,
    ranks: tuple[int, ...] = (0, 1, 2, 3, 4),
    tolerances: tuple[Tolerance, ...] = (),
    excluded_dtypes: Mapping[DType, str] | None = None,
    modular_ints: bool = False,
    doc: str = "",
) -> OpSpec:
    """An elementwise operator of one input whose output has the input's shape."""
    return OpSpec(
        name=name,
        operands=(Operand("x", ranks=ranks, values=values),),
        dtypes=frozenset(dtypes),
        infer=same_shape,
        reference=reference,
        torch=torch,
        tf=tf,
        onnx=onnx,
        attrs=dict(attrs or {}),
        out_dtypes=None if out_dtype is None else (lambda t, a: (out_dtype,)),
        stable=stable,
        tolerances=tolerances,
        excluded_dtypes=dict(excluded_dtypes or {}),
        modular_ints=modular_ints,
        doc=doc,
    )


def broadcast_infer(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    out, _ = broadcast(shapes[0], shapes[1])
    return (out,)


def broadcast_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    _, needs = broadcast(shapes[0], shapes[1])
    return needs


def binary(
    name: str,
    dtypes: Iterable[DType],
    *,
    reference: Function | Missing,
    torch: Function | Missing,
    tf: Function | Missing,
    onnx: Function | Missing = NO_ONNX,
    values: ValueDomain | None = None,
    rhs_values: ValueDomain | None = None,
    stable: Guard | None = None,
    out_dtype: DType | None = None,
    tolerances: tuple[Tolerance, ...] = (),
    excluded_dtypes: Mapping[DType, str] | None = None,
    modular_ints: bool = False,
    doc: str = "",
) -> OpSpec:
    """An elementwise operator of two inputs with NumPy broadcasting."""
    return OpSpec(
        name=name,
        operands=(Operand("a", values=values), Operand("b", values=rhs_values or values)),
        dtypes=frozenset(dtypes),
        infer=broadcast_infer,
        requires=broadcast_requires,
        reference=reference,
        torch=torch,
        tf=tf,
        onnx=onnx,
        out_dtypes=None if out_dtype is None else (lambda t, a: (out_dtype,)),
        stable=stable,
        tolerances=tolerances,
        excluded_dtypes=dict(excluded_dtypes or {}),
        modular_ints=modular_ints,
        doc=doc,
    )


# --- guards ------------------------------------------------------------------------------


def finfo_eps(array: np.ndarray) -> float:
    """Machine epsilon of a float array's dtype (bfloat16 included)."""
    if array.dtype.name == "bfloat16":
        return 2.0**-7
    return float(np.finfo(array.dtype).eps)


def margin(array: np.ndarray, ulps: float = 4.0, floor: float = 1e-3) -> np.ndarray:
    """How far from a discontinuity a value must be so rounding noise in the dtype (and in
    the operators before it) cannot move it across: `ulps` units in the last place."""
    x = np.abs(array.astype(np.float64))
    return np.maximum(floor, ulps * finfo_eps(array) * np.maximum(x, 1.0))


def far_from_integers(array: np.ndarray, offset: float = 0.0) -> bool:
    """True if no value is near an integer (+ offset): floor/ceil/trunc/round are safe."""
    if not np.issubdtype(array.dtype, np.floating) and array.dtype.name != "bfloat16":
        return True
    x = array.astype(np.float64) - offset
    return bool(np.all(np.abs(x - np.round(x)) > margin(array)))


def all_greater(array: np.ndarray, bound: float) -> bool:
    return bool(np.all(array.astype(np.float64) > bound))


def all_abs_greater(array: np.ndarray, bound: float) -> bool:
    return bool(np.all(np.abs(array.astype(np.float64)) > bound))


def all_abs_less(array: np.ndarray, bound: float) -> bool:
    return bool(np.all(np.abs(array.astype(np.float64)) < bound))


def no_ties(array: np.ndarray, axis: int | None = None) -> bool:
    """True if values along `axis` are pairwise separated by more than the rounding margin,
    so argmax/sort/top-k have one right answer."""
    x = array.astype(np.float64)
    if x.size <= 1:
        return True
    x = np.sort(x.reshape(-1) if axis is None else np.moveaxis(x, axis, -1), axis=-1)
    gaps = np.diff(x, axis=-1)
    if gaps.size == 0:
        return True
    m = margin(array, ulps=16.0, floor=0.0) if array.dtype.kind == "f" or array.dtype.name == "bfloat16" else 0.0
    scale = float(np.max(m))
    return bool(np.all(gaps > scale))


def to_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
