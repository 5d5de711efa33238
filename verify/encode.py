"""Exact z3 encoding of the verifier's residual sub-problems: a (leaky) ReLU network on an input
box with sound pre-activation bounds, in real arithmetic over the exact rationals of the float64
weights. Imports z3 lazily; knows nothing of attacks, bound propagation or branch and bound.

Design. Every float64 is a dyadic rational, so each layer is composed exactly in Python integers
(value = integer row . anchors / 2**E) and z3 sees only the *anchors*: the inputs and the outputs
of unstable ReLUs. Stable ReLUs disappear (y = x or y = 0 inside the composed rows). Measured on
ACAS Xu residuals this is 10-200x faster than one z3 variable per neuron: exact simplex pivots on
hundreds of dense rows make huge rationals. Where composing would make rows wider than the
layer (many inputs, e.g. MNIST, or many unstable neurons), the layer is materialized instead:
one z3 variable per neuron, the rows start afresh from those variables.

A stable neuron's sign is implied when its bounds are sound over the box, so its bound row is
not asserted up front (asserting it made the solver 5-20x slower); every sat model is checked
against all of them exactly and violated ones are added before solving again (lazy rows), so a
returned x always satisfies every bound and an unsat is exact whatever the bounds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from verify.network import Activation, Affine, Network

# The exact ReLU case split as an `or` of the two phases or as an `ite` term: equivalent; `or`
# solved 84 ACAS Xu / random residuals in 282 s (15 timeouts) against 326 s (23) for `ite`.
SPLIT_FORMS = ("or", "ite")
# The triangle (convex hull) is redundant next to the exact split; it is taken over [l, u]
# rounded outward to this many significant bits (so it stays valid): exact ends give it
# 100-160-bit rationals, and the rounded one solved the same set about 20% faster.
TRIANGLE_BITS = 16
PIECEWISE_LINEAR = frozenset({"relu", "leaky_relu"})


class NotEncodable(Exception):
    """The sub-problem cannot be written exactly (a sigmoid or tanh, a NaN or infinite weight
    or spec entry); `solve_residual` answers unknown with this message."""


@dataclass(frozen=True, eq=False)
class Residual:
    """The answer for one sub-problem. `status` is "unsat" (no input of the box satisfies
    C @ net(x) <= d), "sat" (`x` does, in exact real arithmetic over the float64 weights; it
    is the nearest float64 to z3's rational) or "unknown" (`reason`). `rounds` counts the
    lazy-row re-solves."""

    status: str
    x: np.ndarray | None = None
    reason: str = ""
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    rounds: int = 0


# --- exact numbers -----------------------------------------------------------------------------


def _num(value: int | Fraction | float) -> str:
    """An exact rational as an SMT-LIB term."""
    n, d = value.as_integer_ratio()
    text = str(abs(n)) if d == 1 else f"(/ {abs(n)} {d})"
    return f"(- {text})" if n < 0 else text


def _round_out(v: float, bits: int, up: bool) -> float:
    """v rounded up (or down) to `bits` significant bits, exactly."""
    m, e = math.frexp(v)
    scaled = m * 2.0**bits
    return math.ldexp(math.ceil(scaled) if up else math.floor(scaled), e - bits)


def _pow2(e: int) -> Fraction:
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def _strip(ints: np.ndarray, e: int) -> tuple[np.ndarray, int]:
    """Divides out the largest power of two common to every entry (keeps numbers short)."""
    nonzero = [v for v in ints.ravel().tolist() if v]
    if not nonzero:
        return ints, 0
    tz = min((v & -v).bit_length() - 1 for v in nonzero)
    if tz == 0:
        return ints, e
    return ints // (1 << tz), e - tz


def _dyadic(values: Any) -> tuple[np.ndarray, int]:
    """Integers N (an object array of Python ints) and E with values == N / 2**E exactly."""
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise NotEncodable("a weight, bias, box end or spec entry is not finite")
    mant, exp = np.frexp(array.ravel())
    m = (mant * 2.0**53).astype(np.int64).tolist()  # exact: |mant| < 1
    shift = (53 - exp).tolist()  # entry = m / 2**shift
    e = max((s for v, s in zip(m, shift) if v), default=0)
    ints = np.empty(len(m), dtype=object)
    ints[:] = [v << (e - s) if v else 0 for v, s in zip(m, shift)]
    return _strip(ints.reshape(array.shape), e)


@dataclass(eq=False)
class _Lin:
    """value[j] = (sum_c A[j, c] * anchor[cols[c]] + b[j]) / 2**E exactly. A "pick" row has at
    most one nonzero: pick[j] is its column (or -1) and scale[j] its coefficient; then A is
    None (the input's identity would be n x n)."""

    cols: tuple[int, ...]
    b: np.ndarray
    E: int
    A: np.ndarray | None = None
    pick: np.ndarray | None = None
    scale: np.ndarray | None = None

    def row(self, j: int) -> list[tuple[int, int]]:
        """(anchor id, coefficient) pairs of row j, zeros left out."""
        if self.A is None:
            assert self.pick is not None and self.scale is not None
            c = int(self.pick[j])
            return [] if c < 0 or self.scale[j] == 0 else [(self.cols[c], self.scale[j])]
        return [(a, v) for a, v in zip(self.cols, self.A[j].tolist()) if v]

    def times(self, W: np.ndarray, e_w: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(W / 2**e_w) @ self as (A over self.cols, b, E)."""
        if self.A is None:
            assert self.pick is not None and self.scale is not None
            A = np.zeros((W.shape[0], len(self.cols)), dtype=object)
            rows = np.nonzero(self.pick >= 0)[0]
            A[:, self.pick[rows]] = W[:, rows] * self.scale[rows]  # picked columns are distinct
        else:
            A = W @ self.A
        return A, W @ self.b, e_w + self.E


def _slope(s: Fraction) -> tuple[int, int]:
    """s == s_int / 2**s_e."""
    ints, e = _dyadic(float(s))
    return int(ints), e


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=object)


# --- the encoder -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Deferred:
    """Bounds of stable neurons not asserted up front: checked against each sat model."""

    lin: _Lin
    rows: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(eq=False)
class Encoding:
    """The sub-problem as SMT-LIB lines; `anchors` are the z3 variable names (the first
    `inputs` are the input coordinates); `deferred` rows are checked lazily."""

    lines: list[str]
    anchors: list[str]
    inputs: int
    deferred: list[_Deferred] = field(default_factory=list)

    def script(self) -> str:
        return "\n".join(self.lines)

    def violations(self, values: Sequence[Fraction]) -> list[str]:
        """The assertions of every deferred bound that the anchor values violate."""
        added: list[str] = []
        for item in self.deferred:
            lin = item.lin
            assert lin.A is not None  # deferred rows are an Affine node's composed rows
            q = math.lcm(*(values[a].denominator for a in lin.cols)) if lin.cols else 1
            point = _zeros(len(lin.cols))
            point[:] = [int(values[a] * q) for a in lin.cols]
            numer = lin.A[item.rows] @ point + lin.b[item.rows] * q  # = value * q * 2**E
            scale = q * _pow2(lin.E)
            for j, n, lo_j, hi_j in zip(
                item.rows.tolist(), numer.tolist(), item.lower.tolist(), item.upper.tolist()
            ):
                if (np.isfinite(lo_j) and n < Fraction(lo_j) * scale) or (
                    np.isfinite(hi_j) and n > Fraction(hi_j) * scale
                ):
                    added.extend(_bound_lines(self._row_text(lin, j), lin.E, lo_j, hi_j))
        return added

    def _row_text(self, lin: _Lin, j: int) -> str:
        return _row_text(lin.row(j), self.anchors, int(lin.b[j]))


def _row_text(terms: Sequence[tuple[int, int]], names: Sequence[str], const: int) -> str:
    parts = [f"(* {_num(v)} {names[a]})" for a, v in terms]
    if const:
        parts.append(_num(const))
    if not parts:
        return "0"
    return parts[0] if len(parts) == 1 else f"(+ {' '.join(parts)})"


def _bound_lines(row: str, e: int, lower: float, upper: float) -> list[str]:
    """lower <= row / 2**e <= upper (infinite ends left out)."""
    scale = _pow2(e)
    out = []
    if np.isfinite(lower):
        out.append(f"(assert (<= {_num(Fraction(lower) * scale)} {row}))")
    if np.isfinite(upper):
        out.append(f"(assert (<= {row} {_num(Fraction(upper) * scale)}))")
    return out


class _Encoder:
    def __init__(self, net: Network, split_form: str) -> None:
        self.net = net
        self.split_form = split_form
        self.lines: list[str] = []
        self.anchors: list[str] = []
        self.deferred: list[_Deferred] = []
        self.lins: dict[int, _Lin] = {}

    def declare(self, name: str) -> int:
        self.lines.append(f"(declare-const {name} Real)")
        self.anchors.append(name)
        return len(self.anchors) - 1

    def add(self, formula: str) -> None:
        self.lines.append(f"(assert {formula})")

    def input_box(self, lo: np.ndarray, hi: np.ndarray) -> None:
        n = self.net.input_size
        ids = [self.declare(f"in_{j}") for j in range(n)]
        for j, a, b in zip(ids, lo.tolist(), hi.tolist()):
            self.lines.extend(_bound_lines(self.anchors[j], 0, a, b))
        ones = _zeros(n)
        ones[:] = 1
        self.lins[0] = _Lin(tuple(ids), _zeros(n), 0, pick=np.arange(n), scale=ones)

    def affine(self, node: int, layer: Affine) -> None:
        bias, e_b = _dyadic(layer.bias.detach().cpu().numpy())
        parts = []
        for p, w in zip(layer.parents, layer.weights):
            W, e_w = _dyadic(w.detach().cpu().numpy())
            parts.append((self.lins[p].cols, *self.lins[p].times(W, e_w)))
        cols = list(dict.fromkeys(c for part in parts for c in part[0]))
        position = {c: i for i, c in enumerate(cols)}
        e = max([e_b, *(part[3] for part in parts)])
        A = np.zeros((layer.size, len(cols)), dtype=object)
        b = bias * (1 << (e - e_b))
        for part_cols, pA, pb, pe in parts:
            factor = 1 << (e - pe)
            A[:, [position[c] for c in part_cols]] += pA * factor
            b = b + pb * factor
        both, e = _strip(np.concatenate([A.ravel(), b]), e)
        A, b = both[: A.size].reshape(A.shape), both[A.size :]
        self.lins[node] = _Lin(tuple(cols), b, e, A=A)

    def activation(self, node: int, layer: Activation, lower: np.ndarray, upper: np.ndarray) -> None:
        x = self.lins[layer.parent]
        assert x.A is not None  # an activation's parent is an Affine: a composed row set
        s = Fraction(layer.slope) if layer.kind == "leaky_relu" else Fraction(0)
        active = lower >= 0
        inactive = (upper <= 0) & ~active
        unstable = ~(active | inactive)
        kept = int((~inactive).sum()) if s == 0 else layer.size
        # Materialize when composing further would carry more columns than the layer has.
        if len(x.cols) + int(unstable.sum()) > kept:
            self.materialized(node, x, s, active, inactive, lower, upper)
        else:
            self.passed_through(node, x, s, active, inactive, lower, upper)

    def passed_through(
        self,
        node: int,
        x: _Lin,
        s: Fraction,
        active: np.ndarray,
        inactive: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        """Stable rows stay composed rows; each unstable neuron becomes a new anchor."""
        assert x.A is not None
        s_int, s_e = _slope(s)
        # Output rows over 2**e, e >= 0 so that a new anchor's row is the integer 2**e.
        e = max(x.E + max(s_e, 0), 0)
        unstable = np.nonzero(~(active | inactive))[0]
        stable = np.nonzero(active | inactive)[0]
        if stable.size:
            self.deferred.append(_Deferred(x, stable, lower[stable], upper[stable]))
        new_ids = []
        for j in unstable.tolist():
            pre = self.declare(f"p{node}_{j}")
            post = self.declare(f"r{node}_{j}")
            new_ids.append(post)
            self.define(pre, x, j)
            self.lines.extend(_bound_lines(self.anchors[pre], 0, float(lower[j]), float(upper[j])))
            self.split(self.anchors[pre], self.anchors[post], s, float(lower[j]), float(upper[j]))
        width = len(x.cols)
        A = np.zeros((x.A.shape[0], width + len(new_ids)), dtype=object)
        b = _zeros(x.b.shape[0])
        keep = np.nonzero(active)[0]
        A[keep, :width] = x.A[keep] * (1 << (e - x.E))
        b[keep] = x.b[keep] * (1 << (e - x.E))
        if s != 0:
            leaky = np.nonzero(inactive)[0]
            factor = s_int << (e - x.E - s_e)  # value = s_int / 2**s_e * row / 2**x.E
            A[leaky, :width] = x.A[leaky] * factor
            b[leaky] = x.b[leaky] * factor
        for k, j in enumerate(unstable.tolist()):
            A[j, width + k] = 1 << e
        both, e = _strip(np.concatenate([A.ravel(), b]), e)
        self.lins[node] = _Lin(x.cols + tuple(new_ids), both[A.size :], e, A=both[: A.size].reshape(A.shape))

    def materialized(
        self,
        node: int,
        x: _Lin,
        s: Fraction,
        active: np.ndarray,
        inactive: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        """One z3 variable per kept neuron; the output rows pick one variable each."""
        size = x.b.shape[0]
        pick = np.full(size, -1, dtype=np.int64)
        scale = _zeros(size)
        s_int, s_e = _slope(s)
        e = max(s_e, 0)  # rows over 2**e: s = s_int / 2**s_e is then an integer multiple
        cols: list[int] = []
        gone = np.nonzero(inactive)[0] if s == 0 else np.zeros(0, dtype=np.int64)
        if gone.size:
            self.deferred.append(_Deferred(x, gone, lower[gone], upper[gone]))
        for j in range(size):
            if s == 0 and inactive[j]:
                continue
            pre = self.declare(f"p{node}_{j}")
            self.define(pre, x, j)
            self.lines.extend(_bound_lines(self.anchors[pre], 0, float(lower[j]), float(upper[j])))
            pick[j] = len(cols)
            if active[j]:
                cols.append(pre)
                scale[j] = 1 << e
            elif inactive[j]:
                cols.append(pre)
                scale[j] = s_int << (e - s_e)
            else:
                post = self.declare(f"r{node}_{j}")
                self.split(self.anchors[pre], self.anchors[post], s, float(lower[j]), float(upper[j]))
                cols.append(post)
                scale[j] = 1 << e
        self.lins[node] = _Lin(tuple(cols), _zeros(size), e, pick=pick, scale=scale)

    def define(self, var: int, lin: _Lin, j: int) -> None:
        """anchor[var] = row j of lin."""
        row = _row_text(lin.row(j), self.anchors, int(lin.b[j]))
        self.add(f"(= (* {_num(_pow2(lin.E))} {self.anchors[var]}) {row})")

    def split(self, x: str, y: str, s: Fraction, lower: float, upper: float) -> None:
        """y = leaky_relu_s(x): the exact case split, plus its convex hull on [lower, upper]
        (the triangle, where both are finite), which the solver's LP relaxation can use
        before splitting any case."""
        sx = "0" if s == 0 else f"(* {_num(s)} {x})"
        hull, chord = (">=", "<=") if s <= 1 else ("<=", ">=")  # s <= 1: f = max(x, s x)
        self.add(f"({hull} {y} {x})")
        self.add(f"({hull} {y} {sx})")
        if np.isfinite(lower) and np.isfinite(upper) and lower < 0 < upper:
            L = Fraction(_round_out(lower, TRIANGLE_BITS, up=False))
            U = Fraction(_round_out(upper, TRIANGLE_BITS, up=True))
            c = (U - s * L) / (U - L)
            self.add(f"({chord} {y} (+ (* {_num(c)} {x}) {_num(s * L - c * L)}))")
        if self.split_form == "or":
            self.add(f"(or (and (<= {x} 0) (= {y} {sx})) (and (>= {x} 0) (= {y} {x})))")
        else:
            self.add(f"(= {y} (ite (>= {x} 0) {x} {sx}))")

    def spec(self, C: np.ndarray, d: np.ndarray) -> None:
        Ci, e_c = _dyadic(C)
        out = self.lins[len(self.net.layers)]
        A, b, e = out.times(Ci, e_c)
        scale = _pow2(e)
        for i, bound in enumerate(d.tolist()):
            terms = [(a, v) for a, v in zip(out.cols, A[i].tolist()) if v]
            rhs = Fraction(bound) * scale - int(b[i])
            self.add(f"(<= {_row_text(terms, self.anchors, 0)} {_num(rhs)})")


def _bounds_of(bounds: Mapping[int, Any], node: int, size: int, fill: float) -> np.ndarray:
    b = bounds.get(node)
    if b is None:
        return np.full(size, fill)
    array = np.asarray(b, dtype=np.float64).reshape(-1)
    if array.shape[0] != size:
        raise ValueError(f"bounds for node {node} have {array.shape[0]} entries, the node has {size}")
    return np.where(np.isnan(array), fill, array)  # NaN: no information


def encode(
    net: Network,
    lo: np.ndarray,
    hi: np.ndarray,
    C: np.ndarray,
    d: np.ndarray,
    pre_lower: Mapping[int, Any],
    pre_upper: Mapping[int, Any],
    split_form: str = "or",
) -> Encoding:
    """The sub-problem as SMT-LIB (see the module docstring). Raises NotEncodable for what
    cannot be written exactly and ValueError for inconsistent shapes. An infinite box end
    leaves that side unbounded; NaN pre-activation bounds mean none."""
    if split_form not in SPLIT_FORMS:
        raise ValueError(f"split_form must be one of {SPLIT_FORMS}, not {split_form!r}")
    for layer in net.layers:
        if isinstance(layer, Activation) and layer.kind not in PIECEWISE_LINEAR:
            raise NotEncodable(f"{layer.kind}: not encodable exactly")
    lo = np.asarray(lo, dtype=np.float64).reshape(-1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1)
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    if lo.shape[0] != net.input_size or hi.shape[0] != net.input_size:
        raise ValueError(
            f"the box has {lo.shape[0]} / {hi.shape[0]} ends, the network {net.input_size} inputs"
        )
    if C.shape != (d.shape[0], net.output_size):
        raise ValueError(f"C has shape {C.shape}, expected ({d.shape[0]}, {net.output_size})")
    if np.isnan(lo).any() or np.isnan(hi).any() or not (np.isfinite(C).all() and np.isfinite(d).all()):
        raise NotEncodable("the box holds a NaN or the spec a non-finite number")
    encoder = _Encoder(net, split_form)
    encoder.input_box(lo, hi)
    for node, layer in enumerate(net.layers, start=1):
        if isinstance(layer, Affine):
            encoder.affine(node, layer)
        else:
            size = net.size(layer.parent)
            lower = _bounds_of(pre_lower, layer.parent, size, -np.inf)
            upper = _bounds_of(pre_upper, layer.parent, size, np.inf)
            encoder.activation(node, layer, lower, upper)
    encoder.spec(C, d)
    return Encoding(encoder.lines, encoder.anchors, net.input_size, encoder.deferred)


# --- solving -----------------------------------------------------------------------------------


def _value(model: Any, var: Any) -> Fraction:
    value = model.eval(var, model_completion=True)
    return Fraction(value.numerator_as_long(), value.denominator_as_long())


def solve_residual(
    net: Network,
    lo: np.ndarray,
    hi: np.ndarray,
    C: np.ndarray,
    d: np.ndarray,
    pre_lower: dict[int, np.ndarray],
    pre_upper: dict[int, np.ndarray],
    timeout_s: float,
    seed: int = 0,
    split_form: str = "or",
) -> Residual:
    """Decides whether some x in [lo, hi] has C @ net(x) <= d (every row), exactly over the
    reals. `pre_lower` / `pre_upper` hold sound bounds of each activation's input node (they
    may be loose, never wrong); neurons without them get the exact split alone. `timeout_s`
    covers building and every solve; `seed` fixes z3's random choices. Inconsistent shapes
    raise ValueError (a caller's bug, never an unknown)."""
    import z3

    start = time.perf_counter()
    deadline = start + timeout_s
    try:
        encoding = encode(net, lo, hi, C, d, pre_lower, pre_upper, split_form)
    except NotEncodable as error:
        return Residual("unknown", reason=str(error), build_seconds=time.perf_counter() - start)
    # A fresh context per call: z3's choices depend on the terms its context has seen, so a
    # shared one would make the answer depend on earlier calls (and it is not thread-safe).
    ctx = z3.Context()
    lines = encoding.lines
    build = solve = 0.0
    rounds = 0
    while True:
        t0 = time.perf_counter()
        solver = z3.SolverFor("QF_LRA", ctx=ctx)
        solver.from_string("\n".join(lines))
        t1 = time.perf_counter()
        build += t1 - (start if rounds == 0 else t0)
        remaining_ms = int((deadline - t1) * 1000)
        if remaining_ms <= 0:
            return Residual(
                "unknown", reason="timeout", build_seconds=build, solve_seconds=solve, rounds=rounds
            )
        solver.set("timeout", remaining_ms, "random_seed", seed % (2**31))
        result = solver.check()
        solve += time.perf_counter() - t1
        if result == z3.unsat:
            return Residual("unsat", build_seconds=build, solve_seconds=solve, rounds=rounds)
        if result != z3.sat:
            reason = solver.reason_unknown()
            reason = "timeout" if "timeout" in reason or "canceled" in reason else f"z3 unknown: {reason}"
            return Residual("unknown", reason=reason, build_seconds=build, solve_seconds=solve, rounds=rounds)
        model = solver.model()
        values = [_value(model, z3.Real(name, ctx)) for name in encoding.anchors]
        missing = encoding.violations(values)
        if not missing:
            x = np.array([float(v) for v in values[: encoding.inputs]], dtype=np.float64)
            # Rounding to the nearest float cannot leave a box with float64 ends; clip regardless.
            x = np.clip(
                x, np.asarray(lo, dtype=np.float64).reshape(-1), np.asarray(hi, dtype=np.float64).reshape(-1)
            )
            return Residual("sat", x=x, build_seconds=build, solve_seconds=solve, rounds=rounds)
        lines = lines + missing
        rounds += 1
