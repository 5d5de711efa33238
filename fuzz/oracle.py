"""The judge: backend outcomes + the float64 reference (with its spread) -> a verdict.

Pure: no framework, no I/O, no randomness. Owns the dtype-keyed tolerance table, the
NaN/Inf rules, error consistency across backends, and which disagreements are bugs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from generators.dtypes import DType
from generators.ir import Graph, InputRef, ValueRef, type_variable
from generators.spec import OpSpec

Status = Literal["ok", "error", "unsupported", "crash"]
Stage = Literal["compile", "run", "compare", ""]


@dataclass(frozen=True)
class Tol:
    """|actual - expected| <= atol + rtol * |expected| + ulps * spacing(expected)
    + SPREAD_FACTOR * spread, per element."""

    rtol: float
    atol: float
    ulps: float = 0.0

    def widened(self, rtol: float, atol: float) -> Tol:
        return Tol(max(self.rtol, rtol), max(self.atol, atol), self.ulps)


# Exact for integers and bool (no entry). Float entries allow for the rounding of a
# whole graph; ill-conditioning is the spread's job, not the table's.
TOLERANCE: Mapping[DType, Tol] = {
    DType.float16: Tol(rtol=1e-2, atol=1e-3, ulps=4),
    DType.bfloat16: Tol(rtol=4e-2, atol=8e-3, ulps=4),
    DType.float32: Tol(rtol=1e-4, atol=1e-6, ulps=8),
    DType.float64: Tol(rtol=1e-9, atol=1e-12, ulps=8),
}
# How many spreads of reference movement under rounding noise an element may deviate by.
SPREAD_FACTOR = 8.0

_SPACING_DIGITS: Mapping[DType, int] = {DType.float16: 11, DType.bfloat16: 8, DType.float32: 24, DType.float64: 53}
_MAX: Mapping[DType, float] = {
    DType.float16: 65504.0,
    DType.bfloat16: 3.3895313892515355e38,
    DType.float32: float(np.finfo(np.float32).max),
    DType.float64: float(np.finfo(np.float64).max),
}


@dataclass(frozen=True)
class Outcome:
    """What one backend did with one test case."""

    backend: str
    status: Status
    stage: Stage = ""
    outputs: tuple[np.ndarray, ...] = field(default=(), repr=False)
    symptom: str = ""  # crash: segfault/abort/hang/oom/...; error: exception type
    message: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Expected:
    """The declared type of one graph output and its comparison tolerance."""

    dtype: DType
    shape: tuple[int, ...]
    tol: Tol | None  # None: exact


@dataclass(frozen=True)
class Finding:
    """One bug candidate. `symptom` is one of: crash kinds (segfault, abort, hang, oom,
    killed, exit), rejection, wrong_result, nan_inf, wrong_shape, wrong_dtype."""

    symptom: str
    stage: Stage
    backends: tuple[str, ...]
    output: int | None = None
    detail: str = ""


Kind = Literal["pass", "bug", "rejected", "skipped", "unstable", "reference_suspect"]


@dataclass(frozen=True)
class Verdict:
    """`pass`: every backend that ran agrees with the reference; `bug`: findings;
    `rejected`: every backend that ran refused the graph (not a bug); `skipped`: no backend
    could run it; `unstable`: nothing could be judged (the reference is ill-conditioned
    everywhere); `reference_suspect`: all backends agree with each other but not with the
    reference (a Gauntlet spec problem, not a framework bug)."""

    kind: Kind
    findings: tuple[Finding, ...] = ()
    judged_elements: int = 0
    unstable_elements: int = 0


def expectations(graph: Graph, catalog: Mapping[str, OpSpec]) -> tuple[Expected, ...]:
    """Per output: dtype, shape and tolerance (the dtype's entry, widened to the entry of
    every float dtype on the output's path and by the overrides of every operator on the
    path whose type variable the override names)."""
    ancestors: dict[ValueRef, set[int]] = {}

    def path(ref: ValueRef) -> set[int]:
        if isinstance(ref, InputRef):
            return set()
        if ref not in ancestors:
            found = {ref.node}
            for r in graph.nodes[ref.node].inputs:
                found |= path(r)
            ancestors[ref] = found
        return ancestors[ref]

    result = []
    for ref in graph.outputs:
        ttype = graph.type_of(ref)
        tol = TOLERANCE.get(ttype.dtype)
        if tol is not None:
            for n in sorted(path(ref)):
                node = graph.nodes[n]
                # A value computed in a lower precision keeps that precision's error after a
                # cast up (float32 elu cast to float64 is only float32-accurate).
                for value in [*(graph.type_of(r) for r in node.inputs), *node.outputs]:
                    lower = TOLERANCE.get(value.dtype)
                    if lower is not None:
                        tol = tol.widened(lower.rtol, lower.atol)
                spec = catalog[node.op]
                t = type_variable(spec, [graph.type_of(r).dtype for r in node.inputs], [o.dtype for o in node.outputs])
                for override in spec.tolerances:
                    if t in override.dtypes:
                        tol = tol.widened(override.rtol, override.atol)
        result.append(Expected(ttype.dtype, ttype.shape, tol))
    return tuple(result)


def _spacing(expected: np.ndarray, dtype: DType) -> np.ndarray:
    """The distance between adjacent values of `dtype` near each expected value."""
    exponent = np.floor(np.log2(np.maximum(np.abs(expected), 1e-300)))
    return np.asarray(2.0 ** (exponent - (_SPACING_DIGITS[dtype] - 1)))


@dataclass(frozen=True)
class _Comparison:
    symptom: str | None  # None: agrees
    detail: str
    judged: int
    unstable: int


def allowed_error(expected: np.ndarray, spread: np.ndarray, want: Expected) -> np.ndarray | None:
    """Per element, the largest |actual - expected| the judge accepts; inf where the element
    is not judged (ill-conditioned, or the reference is non-finite or overflows the dtype).
    None for exact dtypes. Reproducer scripts save it, so they judge exactly as the oracle."""
    if want.tol is None:
        return None
    e = expected.astype(np.float64)
    stable = np.isfinite(spread)
    tol = want.tol
    with np.errstate(all="ignore"):
        judgeable = stable & np.isfinite(e) & (np.abs(e) <= _MAX[want.dtype])
        allowed = tol.atol + tol.rtol * np.abs(e) + tol.ulps * _spacing(e, want.dtype) + SPREAD_FACTOR * np.where(stable, spread, 0.0)
    return np.where(judgeable, allowed, np.inf)


def compare(actual: np.ndarray, expected: np.ndarray, spread: np.ndarray, want: Expected) -> _Comparison:
    """One backend output against the reference, element by element."""
    if tuple(actual.shape) != want.shape:
        return _Comparison("wrong_shape", f"shape {list(actual.shape)}, expected {list(want.shape)}", 0, 0)
    if DType.from_numpy(actual.dtype) != want.dtype:
        return _Comparison("wrong_dtype", f"dtype {actual.dtype}, expected {want.dtype.value}", 0, 0)
    stable = np.isfinite(spread)
    if want.tol is None:
        differs = (actual.astype(np.int64) != expected.astype(np.int64)) & stable
        judged, unstable = int(np.sum(stable)), int(np.sum(~stable))
        if np.any(differs):
            idx = tuple(int(i) for i in np.argwhere(differs)[0])
            return _Comparison(
                "wrong_result",
                f"{int(np.sum(differs))} of {judged} element(s) differ; at {list(idx)}: {actual[idx]!r}, expected {expected[idx]!r}",
                judged, unstable,
            )
        return _Comparison(None, "", judged, unstable)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    allowed = allowed_error(e, spread, want)
    assert allowed is not None
    with np.errstate(all="ignore"):
        judgeable = np.isfinite(allowed)
        nonfinite = judgeable & ~np.isfinite(a)
        error = np.abs(a - e)
        wrong = judgeable & np.isfinite(a) & (error > allowed)
    judged, unstable = int(np.sum(judgeable)), int(np.sum(~judgeable))
    if np.any(nonfinite):
        idx = tuple(int(i) for i in np.argwhere(nonfinite)[0])
        return _Comparison(
            "nan_inf", f"{int(np.sum(nonfinite))} non-finite element(s) where the reference is finite; at {list(idx)}: {a[idx]!r}, expected {e[idx]!r}",
            judged, unstable,
        )
    if np.any(wrong):
        excess = np.where(wrong, error / np.maximum(allowed, 1e-300), 0.0)
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))
        return _Comparison(
            "wrong_result",
            f"{int(np.sum(wrong))} of {judged} element(s) outside tolerance; worst at {list(idx)}: "
            f"{a[idx]!r}, expected {e[idx]!r} (abs error {error[idx]:.3g}, allowed {allowed[idx]:.3g})",
            judged, unstable,
        )
    return _Comparison(None, "", judged, unstable)


def _agree(x: np.ndarray, y: np.ndarray, want: Expected) -> bool:
    if x.shape != y.shape:
        return False
    if want.tol is None:
        return bool(np.array_equal(x, y))
    a, b = x.astype(np.float64), y.astype(np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    return bool(np.all((np.abs(a - b) <= want.tol.atol + want.tol.rtol * scale) | (a == b) | (np.isnan(a) & np.isnan(b))))


def judge(outcomes: Sequence[Outcome], outputs: Sequence[np.ndarray], spread: Sequence[np.ndarray], expected: Sequence[Expected]) -> Verdict:
    """The verdict for one test case: `outputs`/`spread` are the reference's."""
    findings: list[Finding] = []
    for o in outcomes:
        if o.status == "crash":
            findings.append(Finding(o.symptom or "crash", o.stage, (o.backend,), None, o.message))
    ran = [o for o in outcomes if o.status in ("ok", "error", "crash")]
    ok = [o for o in outcomes if o.status == "ok"]
    errored = [o for o in outcomes if o.status == "error"]
    if not ran:
        return Verdict("skipped")
    if errored and not ok and not findings:
        return Verdict("rejected")
    if ok:
        # A backend refusing what the reference and other backends accept.
        for o in errored:
            findings.append(Finding("rejection", o.stage, (o.backend,), None, f"{o.symptom}: {o.message}"))
    judged = unstable = 0
    wrong: dict[tuple[str, int], Finding] = {}
    for o in ok:
        if len(o.outputs) != len(expected):
            findings.append(Finding("wrong_shape", "compare", (o.backend,), None, f"{len(o.outputs)} outputs, expected {len(expected)}"))
            continue
        for k, want in enumerate(expected):
            c = compare(o.outputs[k], outputs[k], spread[k], want)
            judged, unstable = judged + c.judged, unstable + c.unstable
            if c.symptom is not None:
                wrong[(o.backend, k)] = Finding(c.symptom, "compare", (o.backend,), k, c.detail)
    # Every backend wrong the same way on an output: the reference (our spec) is suspect.
    suspect_outputs = set()
    if len(ok) >= 2:
        for k, want in enumerate(expected):
            if all((o.backend, k) in wrong for o in ok) and all(
                len(o.outputs) == len(expected) and _agree(o.outputs[k], ok[0].outputs[k], want) for o in ok
            ):
                suspect_outputs.add(k)
    findings.extend(f for (_, k), f in sorted(wrong.items()) if k not in suspect_outputs)
    if findings:
        return Verdict("bug", tuple(findings), judged, unstable)
    if suspect_outputs:
        return Verdict("reference_suspect", tuple(f for (_, k), f in sorted(wrong.items())), judged, unstable)
    if ok and judged == 0 and unstable > 0:
        return Verdict("unstable", (), judged, unstable)
    return Verdict("pass", (), judged, unstable)
