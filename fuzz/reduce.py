"""Test-case reduction: shrinks a failing graph and its arrays while a caller's predicate still
holds, as a fixed-point loop over named passes with statistics. Imports generators only: no
framework and no other fuzz module (the predicate brings the backends).

Every candidate is built by `rebuild`, which drops dead code, re-indexes and re-infers all
node types, so equal candidates are equal graphs and predicate results cache by content. Each
pass only proposes candidates that strictly shrink (nodes, then outputs, then elements, then
attributes, dtypes and values), which is why the fixed point is reached.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from generators.dtypes import DType
from generators.errors import GraphError
from generators.ir import (
    Graph,
    InputRef,
    Node,
    NodeRef,
    Placeholder,
    TensorType,
    ValueRef,
    type_variable,
    validate,
)
from generators.reference import evaluate
from generators.spec import (
    AttrDomain,
    AttrValue,
    Axes,
    Axis,
    Choice,
    FloatAttr,
    IntAttr,
    IntsAttr,
    OpSpec,
    Permutation,
    RankCtx,
)
from generators.symbolic import all_of

Array = NDArray[Any]
Arrays = tuple[Array, ...]
Predicate = Callable[[Graph, Arrays], bool]
Case = tuple[Graph, Arrays]
T = TypeVar("T")

# What operator code raises on shapes or attributes outside its assumptions; a candidate that
# triggers one is invalid, not a bug in the reducer.
_SPEC_ERRORS = (IndexError, KeyError, TypeError, ValueError, ArithmeticError)
# The dtypes pass narrows or widens toward the types every backend handles best.
_CANONICAL = {DType.float64: DType.float32, DType.float16: DType.float32, DType.bfloat16: DType.float32,
              DType.int64: DType.int32}


class InputPasses(ValueError):
    """The predicate does not hold on the input (a flaky failure, or one needing context)."""


@dataclass(frozen=True)
class PassStats:
    """How often one named pass had a candidate judged (`tried`) and kept (`accepted`)."""

    name: str
    tried: int
    accepted: int


@dataclass(frozen=True)
class Reduction:
    graph: Graph
    arrays: Arrays
    checks: int  # predicate calls made; cache hits are not counted
    passes: tuple[PassStats, ...]
    complete: bool  # False when stopped by max_checks or the deadline


# --- building candidates -------------------------------------------------------------------


def rebuild(
    placeholders: Sequence[Placeholder],
    arrays: Sequence[Array],
    nodes: Sequence[Node],
    outputs: Sequence[ValueRef],
    catalog: Mapping[str, OpSpec],
) -> Case | None:
    """The valid graph computing `outputs` from these parts, or None. Drops nodes that reach no
    output and unused placeholders (re-indexing references and arrays) and re-infers every
    node's output types in order, so callers may change shapes, dtypes, attributes or inputs
    and leave the declared outputs stale. Node inputs must refer to earlier nodes."""
    if not outputs:
        return None
    live: set[int] = set()
    stack = [r.node for r in outputs if isinstance(r, NodeRef)]
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(r.node for r in nodes[i].inputs if isinstance(r, NodeRef))
    node_map = {old: new for new, old in enumerate(sorted(live))}
    refs = [*outputs, *(r for i in sorted(live) for r in nodes[i].inputs)]
    used = sorted({r.index for r in refs if isinstance(r, InputRef)})
    ph_map = {old: new for new, old in enumerate(used)}

    def remap(ref: ValueRef) -> ValueRef:
        if isinstance(ref, InputRef):
            return InputRef(ph_map[ref.index])
        return NodeRef(node_map[ref.node], ref.output)

    new_placeholders = tuple(placeholders[i] for i in used)
    new_nodes: list[Node] = []
    for i in sorted(live):
        inputs = tuple(remap(r) for r in nodes[i].inputs)
        in_types = [
            new_placeholders[r.index].type if isinstance(r, InputRef) else new_nodes[r.node].outputs[r.output]
            for r in inputs
        ]
        node = _reinfer(catalog.get(nodes[i].op), nodes[i], inputs, in_types)
        if node is None:
            return None
        new_nodes.append(node)
    graph = Graph(new_placeholders, tuple(new_nodes), tuple(remap(r) for r in outputs))
    try:
        validate(graph, catalog)
    except GraphError:
        return None
    new_arrays = tuple(arrays[i] for i in used)
    for p, a in zip(graph.placeholders, new_arrays):
        # A mismatch here is a reducer bug, never a property of the candidate.
        assert a.shape == p.type.shape and a.dtype == p.type.dtype.numpy(), (p.type, a.shape, a.dtype)
    return graph, new_arrays


def _reinfer(spec: OpSpec | None, node: Node, inputs: tuple[ValueRef, ...], in_types: list[TensorType]) -> Node | None:
    """`node` on new inputs with its output types inferred again, or None where the spec
    rejects the inputs. Checks what infer() assumes (dtypes, ranks, domains, constraints)
    before calling it; validate() repeats the full check on the finished graph."""
    if spec is None:
        return None
    lo, hi = spec.arity_range()
    if not lo <= len(in_types) <= hi:
        return None
    # Operators whose operands all have fixed dtypes (one_hot) take T from their output.
    t = type_variable(spec, [x.dtype for x in in_types], [o.dtype for o in node.outputs])
    if t not in spec.dtypes:
        return None
    for j, x in enumerate(in_types):
        if x.dtype != spec.operand_dtype(j, t) or x.rank not in spec.operand_at(j).ranks:
            return None
    ranks = tuple(x.rank for x in in_types)
    attrs = node.attr_map
    if set(attrs) != set(spec.attrs):
        return None
    for name, domain in spec.attrs.items():
        if not domain.contains(attrs[name], RankCtx(ranks, t, {k: v for k, v in attrs.items() if k != name})):
            return None
    shapes = [x.shape for x in in_types]
    try:
        if not all_of(spec.requires(shapes, attrs)):
            return None
        out_shapes = [tuple(s) for s in spec.infer(shapes, attrs)]
    except _SPEC_ERRORS:
        return None
    if not all(isinstance(d, int) and d >= 1 for s in out_shapes for d in s):
        return None
    dtypes = spec.output_dtypes(t, attrs, len(out_shapes))
    return Node(node.op, inputs, node.attrs, tuple(TensorType(s, d) for s, d in zip(out_shapes, dtypes)))


def _arrays_key(arrays: Arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype.name}{a.shape};".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --- the search state ------------------------------------------------------------------------


class _Exhausted(Exception):
    """The check budget or the deadline ran out: stop where we are."""


class _Search:
    """The current case, the predicate cache, the budget and per-pass counters."""

    def __init__(self, graph: Graph, arrays: Arrays, catalog: Mapping[str, OpSpec], still_fails: Predicate,
                 max_checks: int, deadline: float | None, progress: Callable[[str], None]) -> None:
        self.graph, self.arrays, self.catalog = graph, arrays, catalog
        self.still_fails, self.max_checks, self.deadline, self.progress = still_fails, max_checks, deadline, progress
        self.cache: dict[tuple[str, str], bool] = {}
        self.checks = 0
        self.pass_name = ""
        self.tried: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self._values: tuple[Graph, Arrays, list[tuple[Array, ...]] | None] | None = None

    def check(self, graph: Graph, arrays: Arrays, *, budgeted: bool = True) -> bool:
        key = (graph.digest(), _arrays_key(arrays))
        if key not in self.cache:
            if budgeted and (self.checks >= self.max_checks
                             or (self.deadline is not None and time.monotonic() >= self.deadline)):
                raise _Exhausted
            self.checks += 1
            self.cache[key] = bool(self.still_fails(graph, arrays))
        return self.cache[key]

    def attempt(self, candidate: Case | None, what: str) -> bool:
        """Judges a candidate (None: invalid, skipped for free) and moves to it if it still fails."""
        if candidate is None:
            return False
        graph, arrays = candidate
        if graph == self.graph and _arrays_key(arrays) == _arrays_key(self.arrays):
            return False
        failing = self.check(graph, arrays)
        self.tried[self.pass_name] = self.tried.get(self.pass_name, 0) + 1
        if not failing:
            return False
        before, after = len(self.graph.nodes), len(graph.nodes)
        self.graph, self.arrays = graph, arrays
        self.accepted[self.pass_name] = self.accepted.get(self.pass_name, 0) + 1
        self.progress(f"{self.pass_name}: {what}" + (f" ({before} -> {after} nodes)" if after != before else ""))
        return True

    def rebuild(self, *, placeholders: Sequence[Placeholder] | None = None, arrays: Sequence[Array] | None = None,
                nodes: Sequence[Node] | None = None, outputs: Sequence[ValueRef] | None = None,
                base: Case | None = None) -> Case | None:
        """rebuild() of `base` (default: the current case) with some parts replaced."""
        graph, current = base or (self.graph, self.arrays)
        return rebuild(
            graph.placeholders if placeholders is None else placeholders,
            current if arrays is None else arrays,
            graph.nodes if nodes is None else nodes,
            graph.outputs if outputs is None else outputs,
            self.catalog,
        )

    def values(self) -> list[tuple[Array, ...]] | None:
        """The reference's per-node outputs for the current case (None where it cannot run)."""
        if self._values is None or self._values[0] is not self.graph or self._values[1] is not self.arrays:
            try:
                result = evaluate(self.graph, self.arrays, self.catalog)
            except Exception:
                # The reference may itself fail on the failing case (that can be the bug under
                # reduction); cutting is then impossible, which is no reason to stop reducing.
                result = None
            self._values = (self.graph, self.arrays, result)
        return self._values[2]


# --- passes ----------------------------------------------------------------------------------


def _ddmin(items: list[T], test: Callable[[list[T]], bool]) -> list[T]:
    """Zeller's ddmin: a 1-minimal sublist of `items` on which `test` holds (it holds on all)."""
    n = 2
    while len(items) >= 2:
        size = math.ceil(len(items) / n)
        chunks = [items[k:k + size] for k in range(0, len(items), size)]
        for chunk in chunks:
            if test(chunk):
                items, n = chunk, 2
                break
        else:
            for k in range(len(chunks) if len(chunks) > 2 else 0):
                rest = [x for c in chunks[:k] + chunks[k + 1:] for x in c]
                if test(rest):
                    items, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(items):
                    break
                n = min(len(items), 2 * n)
    return items


def pass_outputs(s: _Search) -> None:
    """Keeps a 1-minimal subset of the graph outputs (dead code goes with the rest)."""
    # Subsets are positions in the outputs of the case the pass started from.
    base, total = (s.graph, s.arrays), len(s.graph.outputs)

    def test(positions: list[int]) -> bool:
        outputs = [base[0].outputs[k] for k in positions]
        return s.attempt(s.rebuild(outputs=outputs, base=base), f"keep {len(positions)} of {total} outputs")

    _ddmin(list(range(total)), test)


def _cut(graph: Graph, arrays: Arrays, cut: set[int], values: Sequence[tuple[Array, ...]],
         catalog: Mapping[str, OpSpec]) -> Case | None:
    """Nodes in `cut` replaced by fresh input placeholders holding the values they computed;
    graph outputs they produced are dropped."""
    for i in cut:
        if any(v.shape != t.shape or v.dtype != t.dtype.numpy() for v, t in zip(values[i], graph.nodes[i].outputs)):
            return None  # the reference disagrees with the declared types: nothing to feed
    placeholders, new_arrays = list(graph.placeholders), list(arrays)
    fresh: dict[tuple[int, int], int] = {}

    def sub(ref: ValueRef) -> ValueRef:
        if isinstance(ref, InputRef) or ref.node not in cut:
            return ref
        key = (ref.node, ref.output)
        if key not in fresh:
            fresh[key] = len(placeholders)
            placeholders.append(Placeholder(graph.nodes[ref.node].outputs[ref.output], "input"))
            new_arrays.append(values[ref.node][ref.output])
        return InputRef(fresh[key])

    nodes = [n if i in cut else Node(n.op, tuple(sub(r) for r in n.inputs), n.attrs, n.outputs)
             for i, n in enumerate(graph.nodes)]
    outputs = [r for r in graph.outputs if isinstance(r, InputRef) or r.node not in cut]
    return rebuild(placeholders, new_arrays, nodes, outputs, catalog)


def pass_cut(s: _Search) -> None:
    """Replaces chunks of nodes (halves, quarters, ... then single nodes) by their values."""
    chunks = 2
    while len(s.graph.nodes) > 1:
        size = max(1, math.ceil(len(s.graph.nodes) / chunks))
        start = 0
        while start < len(s.graph.nodes):
            values = s.values()
            if values is None:
                return
            stop = min(start + size, len(s.graph.nodes))
            what = f"cut node {start}" if stop == start + 1 else f"cut nodes {start}..{stop - 1}"
            # On success the next chunk has slid into place at `start`.
            if not s.attempt(_cut(s.graph, s.arrays, set(range(start, stop)), values, s.catalog), what):
                start += size
        if size == 1:
            return
        chunks *= 2


def pass_bypass(s: _Search) -> None:
    """Skips a node: every use of its output reads one of its inputs of the same type instead."""
    i = 0
    while i < len(s.graph.nodes):
        node = s.graph.nodes[i]
        moved = False
        if len(node.outputs) == 1:
            for ref in dict.fromkeys(node.inputs):
                if s.graph.type_of(ref) == node.outputs[0] and s.attempt(_bypass(s, i, ref), f"bypass {node.op}"):
                    moved = True
                    break
        if not moved:
            i += 1


def _bypass(s: _Search, i: int, by: ValueRef) -> Case | None:
    target = NodeRef(i, 0)

    def sub(ref: ValueRef) -> ValueRef:
        return by if ref == target else ref

    nodes = [Node(n.op, tuple(sub(r) for r in n.inputs), n.attrs, n.outputs) for n in s.graph.nodes]
    # A placeholder as a graph output computes nothing: drop such outputs instead.
    outputs = [sub(r) for r in s.graph.outputs if not (r == target and isinstance(by, InputRef))]
    return s.rebuild(nodes=nodes, outputs=outputs)


def pass_promote(s: _Search) -> None:
    """Makes one intermediate value the only output, dropping everything downstream of it
    (what `cut` cannot do: cutting the consumers of a node orphans the node too)."""
    i = 0
    while i < len(s.graph.nodes):
        consumed = {r for n in s.graph.nodes for r in n.inputs}
        for k in range(len(s.graph.nodes[i].outputs)):
            ref = NodeRef(i, k)
            if ref in consumed and ref not in s.graph.outputs:
                if s.attempt(s.rebuild(outputs=[ref]), f"output {s.graph.nodes[i].op} alone"):
                    break
        i += 1


def _smaller_dims(d: int) -> list[int]:
    return [x for x in dict.fromkeys((1, d // 2)) if 1 <= x < d]


def _resized(s: _Search, shapes: Sequence[tuple[int, ...]]) -> Case | None:
    placeholders, arrays = [], []
    for p, a, shape in zip(s.graph.placeholders, s.arrays, shapes):
        if shape != p.type.shape:
            p = Placeholder(TensorType(shape, p.type.dtype), p.kind)
            # The leading part of every axis; a copy, so the case owns its memory.
            a = np.array(a[tuple(slice(0, d) for d in shape)])
        placeholders.append(p)
        arrays.append(a)
    return s.rebuild(placeholders=placeholders, arrays=arrays)


def pass_dims(s: _Search) -> None:
    """Shrinks placeholder dimensions (to 1, else halved): first every dimension of one size at
    once (tied dimensions such as a matmul's inner one shrink together), then one at a time."""
    done: set[int] = set()
    while True:
        sizes = sorted({d for p in s.graph.placeholders for d in p.type.shape if d > 1} - done, reverse=True)
        if not sizes:
            break
        v = sizes[0]
        done.add(v)
        for target in _smaller_dims(v):
            shapes = [tuple(target if d == v else d for d in p.type.shape) for p in s.graph.placeholders]
            if s.attempt(_resized(s, shapes), f"all dims {v} -> {target}"):
                break
    i = 0
    while i < len(s.graph.placeholders):
        for axis in range(s.graph.placeholders[i].type.rank):
            for target in _smaller_dims(s.graph.placeholders[i].type.shape[axis]):
                shapes = [p.type.shape for p in s.graph.placeholders]
                shape = shapes[i]
                shapes[i] = shape[:axis] + (target,) + shape[axis + 1:]
                if s.attempt(_resized(s, shapes), f"input {i} axis {axis}: {shape[axis]} -> {target}"):
                    break
        i += 1


def _attr_cost(domain: AttrDomain, value: AttrValue) -> tuple[float, ...]:
    """How complicated an attribute value is; the attrs pass only moves to cheaper ones."""
    if isinstance(domain, Choice):
        found = [k for k, v in enumerate(domain.values) if type(v) is type(value) and v == value]
        return (float(found[0] if found else len(domain.values)),)
    if isinstance(value, bool):
        return (float(value),)
    if isinstance(value, int):
        return (float(abs(value)),)
    if isinstance(value, float):
        level = 0 if value == 0 else 1 if abs(value) == 1 else 2 if round(value, 1) == value else 3
        return (float(level), abs(value))
    if isinstance(value, tuple):
        if isinstance(domain, Permutation):
            return (float(sum(1 for k, a in enumerate(value) if k != a)),)
        if isinstance(domain, Axes):
            return (float(len(value)), float(sum(value)))
        return (float(sum(abs(v) for v in value)),)
    return (0.0,)


def _simpler(domain: AttrDomain, value: AttrValue) -> list[AttrValue]:
    """Cheaper values to try for one attribute, best first (the domain is checked later)."""
    options: list[AttrValue] = []
    if isinstance(domain, Choice):
        options = [domain.values[0]]
    elif isinstance(domain, IntAttr) and isinstance(value, int):
        options = [0, 1, domain.lo, int(value / 2)]
    elif isinstance(domain, IntsAttr) and isinstance(value, tuple):
        n, low = len(value), max(domain.lo, 0)
        options = [(low,) * n, (1,) * n, *(value[:k] + (low,) + value[k + 1:] for k in range(n))]
    elif isinstance(domain, FloatAttr) and isinstance(value, float):
        inside = (math.ceil(domain.lo * 10) / 10, math.floor(domain.hi * 10) / 10)
        options = [0.0, 1.0, -1.0, round(value, 1), *inside]
    elif isinstance(domain, Axis):
        options = [0]
    elif isinstance(domain, Axes) and isinstance(value, tuple) and value:
        options = [(0,), (value[0],)]
    elif isinstance(domain, Permutation) and isinstance(value, tuple):
        options = [tuple(range(len(value)))]
    cost = _attr_cost(domain, value)
    unique = list(dict.fromkeys((type(o), o) for o in options))
    return [o for _, o in unique if _attr_cost(domain, o) < cost]


def pass_attrs(s: _Search) -> None:
    """Simpler attribute values: 0, 1, False, the first choice, identity permutations, ..."""
    for i in range(len(s.graph.nodes)):
        spec = s.catalog[s.graph.nodes[i].op]
        for name in sorted(spec.attrs):
            value = s.graph.nodes[i].attr_map[name]
            for option in _simpler(spec.attrs[name], value):
                node = s.graph.nodes[i]
                attrs = tuple((k, option if k == name else v) for k, v in node.attrs)
                nodes = [*s.graph.nodes[:i], Node(node.op, node.inputs, attrs, node.outputs), *s.graph.nodes[i + 1:]]
                if s.attempt(s.rebuild(nodes=nodes), f"{node.op}.{name}={option!r}"):
                    break


def _dtype_components(graph: Graph, catalog: Mapping[str, OpSpec]) -> list[list[int]]:
    """Placeholders grouped by the type variables that tie them: changing one's dtype forces
    the others' (a node's T-typed operands and T-typed outputs share one dtype)."""
    count = len(graph.placeholders)
    offsets = [count]
    for node in graph.nodes:
        offsets.append(offsets[-1] + len(node.outputs))
    parent = list(range(offsets[-1]))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def key(ref: ValueRef) -> int:
        return ref.index if isinstance(ref, InputRef) else offsets[ref.node] + ref.output

    for i, node in enumerate(graph.nodes):
        spec = catalog[node.op]
        t = type_variable(spec, [graph.type_of(r).dtype for r in node.inputs], [o.dtype for o in node.outputs])
        alt = DType.int8 if t is not DType.int8 else DType.int16
        here = spec.output_dtypes(t, node.attr_map, len(node.outputs))
        there = spec.output_dtypes(alt, node.attr_map, len(node.outputs))
        tied = [key(r) for j, r in enumerate(node.inputs) if spec.operand_at(j).dtype is None]
        tied += [offsets[i] + k for k in range(len(node.outputs)) if here[k] == t and there[k] == alt]
        for member in tied[1:]:
            parent[find(member)] = find(tied[0])
    groups: dict[int, list[int]] = {}
    for p in range(count):
        groups.setdefault(find(p), []).append(p)
    return list(groups.values())


def pass_dtypes(s: _Search) -> None:
    """float64/float16/bfloat16 -> float32 and int64 -> int32 for one tied group of placeholders
    at a time; node dtypes follow from their specs and the arrays are cast."""
    k = 0
    while True:
        groups = [g for g in _dtype_components(s.graph, s.catalog)
                  if s.graph.placeholders[g[0]].type.dtype in _CANONICAL]
        if k >= len(groups):
            return
        group = groups[k]
        old = s.graph.placeholders[group[0]].type.dtype
        new = _CANONICAL[old]
        placeholders, arrays = list(s.graph.placeholders), list(s.arrays)
        for p in group:
            placeholders[p] = Placeholder(TensorType(placeholders[p].type.shape, new), placeholders[p].kind)
            arrays[p] = arrays[p].astype(new.numpy())
        what = f"{old.value} -> {new.value} for {len(group)} input(s)"
        if not s.attempt(s.rebuild(placeholders=placeholders, arrays=arrays), what):
            k += 1


def _value_level(a: Array) -> int:
    """0 all zero, 1 all one, 2 round (one decimal, or not a float), 3 anything else."""
    if not np.any(a):
        return 0
    if np.all(a == 1):
        return 1
    if a.dtype.kind != "f" and a.dtype.name != "bfloat16":
        return 2
    rounded = np.round(a.astype(np.float64), 1).astype(a.dtype)
    return 2 if np.array_equal(rounded, a) else 3


def pass_values(s: _Search) -> None:
    """A placeholder's array replaced by zeros, ones, or its values rounded to one decimal."""
    for i in range(len(s.graph.placeholders)):
        a = s.arrays[i]
        level = _value_level(a)
        options = [("zeros", np.zeros_like(a)), ("ones", np.ones_like(a))]
        if level == 3:
            options.append(("rounded", np.round(a.astype(np.float64), 1).astype(a.dtype)))
        for label, option in options[:level]:
            arrays = (*s.arrays[:i], option, *s.arrays[i + 1:])
            if s.attempt((s.graph, arrays), f"input {i} {label}"):
                break


PASSES: tuple[tuple[str, Callable[[_Search], None]], ...] = (
    ("outputs", pass_outputs),
    ("cut", pass_cut),
    ("bypass", pass_bypass),
    ("promote", pass_promote),
    ("dims", pass_dims),
    ("attrs", pass_attrs),
    ("dtypes", pass_dtypes),
    ("values", pass_values),
)


def reduce(
    graph: Graph,
    arrays: Sequence[np.ndarray],
    catalog: Mapping[str, OpSpec],
    still_fails: Predicate,
    max_checks: int = 300,
    deadline_s: float | None = None,
    progress: Callable[[str], None] = lambda s: None,
) -> Reduction:
    """The smallest graph and arrays found on which `still_fails` holds, running the passes
    until none makes progress or `max_checks` predicate calls (the first, which confirms the
    input fails, included) or `deadline_s` seconds are spent. Deterministic for a
    deterministic predicate, whose exceptions propagate. Raises GraphError for an invalid
    graph and ValueError for mismatched arrays or an input that does not fail."""
    start = time.monotonic()
    validate(graph, catalog)
    if len(arrays) != len(graph.placeholders):
        raise ValueError(f"{len(arrays)} arrays for {len(graph.placeholders)} placeholders")
    for k, (p, a) in enumerate(zip(graph.placeholders, arrays)):
        if a.shape != p.type.shape or a.dtype != p.type.dtype.numpy():
            raise ValueError(f"array {k} is {a.dtype.name}{list(a.shape)}, placeholder {k} is {p.type}")
    if max_checks < 1:
        raise ValueError("max_checks must be at least 1 (the input itself is checked first)")
    deadline = None if deadline_s is None else start + deadline_s
    s = _Search(graph, tuple(arrays), catalog, still_fails, max_checks, deadline, progress)
    if not s.check(s.graph, s.arrays, budgeted=False):
        raise InputPasses("still_fails is False on the input: there is nothing to reduce")
    complete = True
    try:
        moved = True
        while moved:
            moved = False
            for name, run in PASSES:
                s.pass_name = name
                before = s.accepted.get(name, 0)
                run(s)
                moved = moved or s.accepted.get(name, 0) > before
    except _Exhausted:
        complete = False
    stats = tuple(PassStats(name, s.tried.get(name, 0), s.accepted.get(name, 0)) for name, _ in PASSES)
    return Reduction(s.graph, s.arrays, s.checks, stats, complete)
