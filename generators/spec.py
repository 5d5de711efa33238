"""The operator contract: one OpSpec holds everything Gauntlet knows about an operator.

An OpSpec declares operands, attribute domains, the dtype variable, shape inference and
constraints (written once over `symbolic`, so they work on ints and z3 terms), a NumPy
reference and one lowering per framework. Missing pieces are `Missing(reason)` values.
Imports no framework; lowerings receive the framework module as their first argument.

Lowering and reference functions must be module-level `def`s with the signature
`(fw, inputs: list, attrs: Mapping) -> tensor | tuple[tensor, ...]` that use only their
arguments, builtins, `math` and other module-level functions of the same module: the
reproducer writer copies their source into standalone scripts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from generators.dtypes import DType
from generators.symbolic import Shape, SymBool

AttrValue = Union[int, float, bool, str, tuple[int, ...]]
Attrs = Mapping[str, Any]  # values may be z3 terms while solving


@dataclass(frozen=True)
class RankCtx:
    """What an attribute domain may depend on: the operands' ranks and earlier attributes."""

    ranks: tuple[int, ...]
    dtype: DType
    attrs: Mapping[str, Any]


# --- attribute domains -------------------------------------------------------------------
# Structural attributes (choices, axes, permutations, floats) are sampled concretely before
# solving; integer attributes (IntAttr, IntsAttr) are solver variables within [lo, hi].


@dataclass(frozen=True)
class IntAttr:
    lo: int
    hi: int
    symbolic = True

    def length(self, ctx: RankCtx) -> int | None:
        return None

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return type(value) is int and self.lo <= value <= self.hi


@dataclass(frozen=True)
class IntsAttr:
    """A tuple of solver-chosen ints whose length follows from the ranks (e.g. strides)."""

    size: Callable[[RankCtx], int]
    lo: int
    hi: int
    symbolic = True

    def length(self, ctx: RankCtx) -> int | None:
        return self.size(ctx)

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return (
            isinstance(value, tuple)
            and len(value) == self.size(ctx)
            and all(type(v) is int and self.lo <= v <= self.hi for v in value)
        )


@dataclass(frozen=True)
class Choice:
    values: tuple[AttrValue, ...]
    symbolic = False

    def sample(self, rng: np.random.Generator, ctx: RankCtx) -> AttrValue:
        return self.values[int(rng.integers(len(self.values)))]

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)


@dataclass(frozen=True)
class FloatAttr:
    """A float sampled uniformly and rounded to `digits`, so JSON shows it plainly."""

    lo: float
    hi: float
    digits: int = 3
    symbolic = False

    def sample(self, rng: np.random.Generator, ctx: RankCtx) -> float:
        return round(float(rng.uniform(self.lo, self.hi)), self.digits)

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return isinstance(value, float) and math.isfinite(value) and self.lo <= value <= self.hi


@dataclass(frozen=True)
class Axis:
    """One axis of operand `operand`, in [0, rank + extra) (extra=1 for unsqueeze/stack)."""

    operand: int = 0
    extra: int = 0
    symbolic = False

    def sample(self, rng: np.random.Generator, ctx: RankCtx) -> int:
        return int(rng.integers(ctx.ranks[self.operand] + self.extra))

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return type(value) is int and 0 <= value < ctx.ranks[self.operand] + self.extra


@dataclass(frozen=True)
class Axes:
    """A sorted, duplicate-free, non-empty subset of the axes of operand `operand`."""

    operand: int = 0
    symbolic = False

    def sample(self, rng: np.random.Generator, ctx: RankCtx) -> tuple[int, ...]:
        rank = ctx.ranks[self.operand]
        count = int(rng.integers(1, rank + 1))
        return tuple(sorted(int(a) for a in rng.choice(rank, size=count, replace=False)))

    def contains(self, value: object, ctx: RankCtx) -> bool:
        rank = ctx.ranks[self.operand]
        return (
            isinstance(value, tuple)
            and len(value) >= 1
            and all(type(a) is int and 0 <= a < rank for a in value)
            and list(value) == sorted(set(value))
        )


@dataclass(frozen=True)
class Permutation:
    operand: int = 0
    symbolic = False

    def sample(self, rng: np.random.Generator, ctx: RankCtx) -> tuple[int, ...]:
        return tuple(int(a) for a in rng.permutation(ctx.ranks[self.operand]))

    def contains(self, value: object, ctx: RankCtx) -> bool:
        return (
            isinstance(value, tuple)
            and all(type(a) is int for a in value)
            and sorted(value) == list(range(ctx.ranks[self.operand]))
        )


AttrDomain = Union[IntAttr, IntsAttr, Choice, FloatAttr, Axis, Axes, Permutation]


@dataclass(frozen=True)
class Values:
    """A value range for placeholders; with `fraction`, the fractional part of every value
    lies in that interval (keeps floor/round inputs away from their jumps)."""

    lo: float
    hi: float
    fraction: tuple[float, float] | None = None


ValueDomain = Union[tuple[float, float], Values]


# --- operands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    """One input of an operator.

    `dtype` None means the operator's dtype variable T; a DType fixes it (e.g. bool masks).
    When every operand is fixed, T is the dtype of the first output (e.g. one_hot).
    `weight` operands are always fresh parameter placeholders (conv kernels, norm stats).
    `values` is the range placeholders feeding this operand directly are drawn from.
    """

    name: str
    ranks: tuple[int, ...] = (0, 1, 2, 3, 4)
    dtype: DType | None = None
    weight: bool = False
    values: ValueDomain | None = None


@dataclass(frozen=True)
class Call:
    """A lowering that calls one framework function: `Call("torch.exp")`.

    The first path component names the framework module passed in; the rest is looked up
    with getattr (never eval). `kwargs` maps the function's keyword to an attribute name;
    `fixed` adds constant keywords. Reproducer scripts print it as a plain call.
    """

    path: str
    kwargs: tuple[tuple[str, str], ...] = ()
    fixed: tuple[tuple[str, AttrValue], ...] = ()
    # Positional arguments when they are not just the inputs in order: an int is an input's
    # index, a str an attribute's name (APIs taking ints between tensors, e.g. narrow(x, 0, 1, 2)).
    layout: tuple[int | str, ...] = ()

    def positional(self, inputs: Sequence[Any], attrs: Attrs) -> list[Any]:
        if not self.layout:
            return list(inputs)
        return [inputs[p] if isinstance(p, int) else attrs[p] for p in self.layout]

    def resolve(self, fw: Any) -> Callable[..., Any]:
        fn = fw
        for part in self.path.split(".")[1:]:
            fn = getattr(fn, part)
        return fn  # type: ignore[no-any-return]

    def __call__(self, fw: Any, inputs: Sequence[Any], attrs: Attrs) -> Any:
        kw = {param: attrs[attr] for param, attr in self.kwargs}
        kw.update(self.fixed)
        return self.resolve(fw)(*self.positional(inputs, attrs), **kw)


@dataclass(frozen=True)
class Missing:
    """A capability the operator lacks, with the reason (never silently absent)."""

    reason: str


@dataclass(frozen=True)
class Tolerance:
    """A per-operator comparison tolerance override for some dtypes, with its reason."""

    rtol: float
    atol: float
    dtypes: frozenset[DType]
    reason: str


Function = Callable[..., Any]  # a module-level def, or a Call


def _no_requires(shapes: Sequence[Shape], attrs: Attrs) -> Iterable[SymBool]:
    return ()


@dataclass(frozen=True)
class OpSpec:
    """The full contract of one operator. See the module docstring for lowering rules."""

    name: str
    operands: tuple[Operand, ...]
    dtypes: frozenset[DType]
    infer: Callable[[Sequence[Shape], Attrs], Sequence[Shape]]
    reference: Function | Missing
    torch: Function | Missing
    tf: Function | Missing
    attrs: Mapping[str, AttrDomain] = field(default_factory=dict)
    # The ONNX lowering receives a `generators.materialize.onnx.OnnxBuilder` as `fw` and
    # the input value names; `Call("onnx.Exp")` emits one node of that type.
    onnx: Function | Missing = Missing("no ONNX lowering yet")
    requires: Callable[[Sequence[Shape], Attrs], Iterable[SymBool]] = _no_requires
    out_dtypes: Callable[[DType, Attrs], Sequence[DType]] | None = None
    variadic: tuple[int, int] | None = None  # the last operand repeats min..max times
    same_rank: bool = False
    stable: Callable[[Sequence[np.ndarray], Attrs], bool] | None = None
    tolerances: tuple[Tolerance, ...] = ()
    excluded_dtypes: Mapping[DType, str] = field(default_factory=dict)
    # Integer results are defined modulo 2**bits (bitwise ops), so the value search does not
    # treat a result that differs from the int64 computation as an overflow.
    modular_ints: bool = False
    doc: str = ""

    def operand_at(self, index: int) -> Operand:
        """The operand spec for input `index`, expanding the variadic tail."""
        if index < len(self.operands):
            return self.operands[index]
        if self.variadic is None:
            raise IndexError(f"{self.name} has {len(self.operands)} operands")
        return self.operands[-1]

    def arity_range(self) -> tuple[int, int]:
        if self.variadic is None:
            return len(self.operands), len(self.operands)
        fixed = len(self.operands) - 1
        return fixed + self.variadic[0], fixed + self.variadic[1]

    def operand_dtype(self, index: int, t: DType) -> DType:
        fixed = self.operand_at(index).dtype
        return t if fixed is None else fixed

    def output_dtypes(self, t: DType, attrs: Attrs, count: int) -> tuple[DType, ...]:
        if self.out_dtypes is None:
            return (t,) * count
        out = tuple(self.out_dtypes(t, attrs))
        return out if len(out) == count else out + (out[-1],) * (count - len(out))

    def lowering(self, framework: str) -> Function | Missing:
        return {"torch": self.torch, "tensorflow": self.tf, "numpy": self.reference, "onnx": self.onnx}[framework]


def same_shape(shapes: Sequence[Shape], attrs: Attrs) -> Sequence[Shape]:
    """Shape rule of operators whose one output has the shape of their first input."""
    return (tuple(shapes[0]),)
