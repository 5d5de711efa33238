"""The graph generator: grows a valid graph one operator at a time by forward insertion
(consume values already in the graph) and backward insertion (replace a graph input by an
operator that produces a value of exactly its type), solving shapes per insertion.

Owns GenOptions and the growth loop; operator knowledge comes from the catalog, solving
from `instantiate`. Same seed and options, same graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from generators.dtypes import DType, ordered
from generators.errors import GenerationError
from generators.instantiate import Instance, Instantiator, Limits
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, ValueRef
from generators.spec import Missing, OpSpec

Framework = Literal["torch", "tensorflow", "numpy"]

DEFAULT_DTYPES = (DType.float32, DType.float64, DType.float16, DType.int32, DType.int64, DType.bool)
# The start placeholder's dtype: float32 most of the time, the way real models are.
_START_WEIGHTS = {DType.float32: 6.0, DType.float64: 1.0, DType.float16: 1.0, DType.bfloat16: 1.0}


@dataclass(frozen=True)
class GenOptions:
    max_nodes: int = 10
    ops: tuple[str, ...] | None = None  # allow-list; None = whole catalog
    exclude_ops: tuple[str, ...] = ()
    dtypes: tuple[DType, ...] = DEFAULT_DTYPES
    limits: Limits = field(default_factory=Limits)
    frameworks: tuple[Framework, ...] = ("torch", "tensorflow", "numpy")
    backward_prob: float = 0.3
    reuse_prob: float = 0.4
    max_arity: int = 4  # cap for variadic operators
    # Relative operator weights (coverage feedback); operators not listed weigh 1. Empty:
    # uniform choice (the draw sequence of earlier releases, so seeds keep their graphs).
    op_weights: tuple[tuple[str, float], ...] = ()
    # Per (operator, Choice attribute): a weight for each option, in the domain's order.
    choice_weights: tuple[tuple[str, str, tuple[float, ...]], ...] = ()


def usable_ops(catalog: Mapping[str, OpSpec], options: GenOptions) -> list[OpSpec]:
    """Operators the options allow, that every requested framework can run. Unknown names in
    the allow/deny lists are user errors."""
    for name in (*(options.ops or ()), *options.exclude_ops):
        if name not in catalog:
            raise GenerationError(f"unknown operator {name!r} (see `gauntlet ops`)")
    names = options.ops if options.ops is not None else tuple(catalog)
    allowed = set(options.dtypes)
    out = []
    for name in names:
        spec = catalog[name]
        if name in options.exclude_ops or not (spec.dtypes & allowed):
            continue
        if any(isinstance(spec.lowering(f), Missing) for f in options.frameworks):
            continue
        out.append(spec)
    if not out:
        raise GenerationError("no operator satisfies the requested ops, dtypes and frameworks")
    return out


@dataclass
class _Builder:
    """Mutable graph under construction; nodes and placeholders have stable ids."""

    placeholders: dict[int, Placeholder] = field(default_factory=dict)
    nodes: dict[int, tuple[Instance, tuple[tuple[str, int, int], ...]]] = field(default_factory=dict)
    replaced: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # placeholder -> node out
    # Placeholders feeding an operand with a value domain: their values are sampled in that
    # domain, so backward insertion must not replace them by a computed value.
    pinned: set[int] = field(default_factory=set)
    next_id: int = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_placeholder(self, t: TensorType, kind: Literal["input", "weight"]) -> tuple[str, int, int]:
        pid = self.new_id()
        self.placeholders[pid] = Placeholder(t, kind)
        return ("p", pid, 0)

    def values(self) -> list[tuple[tuple[str, int, int], TensorType]]:
        """Every value a new node may consume: live inputs and all node outputs."""
        out: list[tuple[tuple[str, int, int], TensorType]] = [
            (("p", pid, 0), p.type)
            for pid, p in self.placeholders.items()
            if p.kind == "input" and pid not in self.replaced
        ]
        for nid, (inst, _) in self.nodes.items():
            out.extend((("n", nid, k), t) for k, t in enumerate(inst.outputs))
        return out

    def resolve(self, key: tuple[str, int, int]) -> tuple[str, int, int]:
        while key[0] == "p" and key[1] in self.replaced:
            key = self.replaced[key[1]]
        return key

    def freeze(self) -> Graph:
        deps = {nid: [self.resolve(k) for k in ins] for nid, (_, ins) in self.nodes.items()}
        order: list[int] = []
        done: set[int] = set()

        def visit(nid: int) -> None:  # depth-first; ids ascend so the order is deterministic
            if nid in done:
                return
            done.add(nid)
            for kind, dep, _ in deps[nid]:
                if kind == "n":
                    visit(dep)
            order.append(nid)

        for nid in sorted(self.nodes):
            visit(nid)
        live = sorted(pid for pid in self.placeholders if pid not in self.replaced)
        p_index = {pid: i for i, pid in enumerate(live)}
        n_index = {nid: i for i, nid in enumerate(order)}

        def ref(key: tuple[str, int, int]) -> ValueRef:
            kind, ident, out = self.resolve(key)
            return InputRef(p_index[ident]) if kind == "p" else NodeRef(n_index[ident], out)

        nodes = []
        consumed: set[tuple[str, int, int]] = set()
        for nid in order:
            inst, ins = self.nodes[nid]
            nodes.append(Node(inst.spec.name, tuple(ref(k) for k in ins), inst.attrs, inst.outputs))
            consumed.update(deps[nid])
        outputs = [
            NodeRef(n_index[nid], k)
            for nid in order
            for k in range(len(self.nodes[nid][0].outputs))
            if ("n", nid, k) not in consumed
        ]
        return Graph(tuple(self.placeholders[pid] for pid in live), tuple(nodes), tuple(outputs))


class GraphGenerator:
    """Generates graphs for one set of options; reuse it across seeds (it caches the op list)."""

    def __init__(self, catalog: Mapping[str, OpSpec], options: GenOptions = GenOptions()) -> None:
        if options.max_nodes < 1:
            raise GenerationError("max_nodes must be at least 1")
        self.options = options
        self.ops = usable_ops(catalog, options)
        self.allowed = frozenset(options.dtypes)
        self.instantiator = Instantiator(options.limits, choice_weights={(op, a): w for op, a, w in options.choice_weights})
        self._op_dtypes = {s.name: ordered(s.dtypes & self.allowed) for s in self.ops}
        # A start dtype must be one some usable operator can consume.
        consumable: set[DType] = set()
        for s in self.ops:
            for j in range(s.arity_range()[0]):
                fixed = s.operand_at(j).dtype
                consumable |= set(self._op_dtypes[s.name]) if fixed is None else {fixed}
        self._start_dtypes = ordered(frozenset(consumable & self.allowed))
        weights = dict(options.op_weights)
        if any(w < 0 for w in weights.values()):
            raise GenerationError("operator weights must be non-negative")
        p = np.asarray([weights.get(s.name, 1.0) for s in self.ops], np.float64)
        self._op_p = p / p.sum() if weights and p.sum() > 0 else None

    def _pick_op(self, rng: np.random.Generator) -> OpSpec:
        if self._op_p is None:
            return self.ops[int(rng.integers(len(self.ops)))]
        return self.ops[int(rng.choice(len(self.ops), p=self._op_p))]

    def generate(self, seed: int) -> Graph:
        return self.generate_with(np.random.default_rng(seed))

    def generate_with(self, rng: np.random.Generator) -> Graph:
        """Generate from any object with the Generator methods used here (random, integers,
        choice, permutation, uniform): a seeded NumPy Generator, or Hypothesis draws."""
        b = _Builder()
        self.instantiator.new_context()
        b.add_placeholder(self._start_type(rng), "input")
        failures = 0
        while len(b.nodes) < self.options.max_nodes:
            # Written so a draw of 0 means forward: Hypothesis shrinks toward the simple path.
            backward = rng.random() >= 1.0 - self.options.backward_prob
            # After many misses the values in the graph may fit no operator (e.g. a bool
            # start with only squeeze allowed): let forward insertion start afresh.
            ok = self._backward(b, rng) if backward else self._forward(b, rng, fresh=failures >= 50)
            if ok:
                failures = 0
                continue
            failures += 1
            if failures > 400:
                raise GenerationError(
                    f"could not grow the graph past {len(b.nodes)} node(s) with the given options"
                )
        return b.freeze()

    def _start_type(self, rng: np.random.Generator) -> TensorType:
        dtypes = self._start_dtypes
        weights = np.array([_START_WEIGHTS.get(d, 0.5) for d in dtypes])
        dtype = dtypes[int(rng.choice(len(dtypes), p=weights / weights.sum()))]
        lim = self.options.limits
        rank = int(rng.integers(1, min(4, lim.max_rank) + 1))
        while True:
            shape = tuple(int(d) for d in rng.integers(1, lim.max_dim + 1, size=rank))
            if int(np.prod(shape)) <= lim.max_elements:
                return TensorType(shape, dtype)

    def _arity(self, spec: OpSpec, rng: np.random.Generator) -> int:
        lo, hi = spec.arity_range()
        return int(rng.integers(lo, min(hi, max(lo, self.options.max_arity)) + 1))

    def _accept(self, inst: Instance | None) -> bool:
        return inst is not None and all(t.dtype in self.allowed for t in (*inst.inputs, *inst.outputs))

    def _add(self, b: _Builder, inst: Instance, chosen: Sequence[tuple[str, int, int] | None]) -> tuple[str, int, int]:
        keys = []
        for j, (key, t) in enumerate(zip(chosen, inst.inputs)):
            operand = inst.spec.operand_at(j)
            if key is None:
                key = b.add_placeholder(t, "weight" if operand.weight else "input")
                if operand.values is not None:
                    b.pinned.add(key[1])
            keys.append(key)
        nid = b.new_id()
        b.nodes[nid] = (inst, tuple(keys))
        return ("n", nid, 0)

    def _forward(self, b: _Builder, rng: np.random.Generator, fresh: bool = False) -> bool:
        spec = self._pick_op(rng)
        n = self._arity(spec, rng)
        dtypes = self._op_dtypes[spec.name]
        # Operands with a value domain (log, asin, indices...) always get a fresh placeholder
        # sampled in that domain: a computed value would usually fall outside it.
        slots = [j for j in range(n) if not spec.operand_at(j).weight and spec.operand_at(j).values is None]
        chosen: list[tuple[str, int, int] | None] = [None] * n
        known: list[TensorType | None] = [None] * n
        values = b.values()
        fits: list[tuple[tuple[str, int, int], TensorType]] = []
        anchor = -1
        if slots:
            anchor = slots[int(rng.integers(len(slots)))]
            fixed = spec.operand_at(anchor).dtype
            fits = [
                (k, t) for k, t in values
                if t.rank in spec.operand_at(anchor).ranks
                and (t.dtype == fixed if fixed is not None else t.dtype in dtypes)
            ]
        if slots and not fits and not fresh and min(spec.operand_at(anchor).ranks) <= self.options.limits.max_rank:
            return False
        if slots and fits:
            key, t = fits[int(rng.integers(len(fits)))]
            chosen[anchor], known[anchor] = key, t
            dtype = t.dtype if fixed is None else dtypes[int(rng.integers(len(dtypes)))]
        else:
            # No operand can take an existing value, or the anchor needs a rank nothing
            # produces (rank-5 conv3d/pool3d inputs): start from fresh placeholders.
            dtype = dtypes[int(rng.integers(len(dtypes)))]
        for j in slots:
            if j == anchor or rng.random() >= self.options.reuse_prob:
                continue
            want = spec.operand_dtype(j, dtype)
            cands = [(k, v) for k, v in values if v.dtype == want and v.rank in spec.operand_at(j).ranks]
            if cands:
                chosen[j], known[j] = cands[int(rng.integers(len(cands)))]
        inst = self.instantiator.instantiate(spec, rng, known, dtype)
        if not self._accept(inst):
            return False
        assert inst is not None
        self._add(b, inst, chosen)
        return True

    def _backward(self, b: _Builder, rng: np.random.Generator) -> bool:
        targets = [
            (pid, p) for pid, p in b.placeholders.items()
            if p.kind == "input" and pid not in b.replaced and pid not in b.pinned
        ]
        if not targets:
            return False
        pid, p = targets[int(rng.integers(len(targets)))]
        spec = self._pick_op(rng)
        dtypes = self._op_dtypes[spec.name]
        if spec.out_dtypes is None:
            if p.type.dtype not in dtypes:
                return False
            dtype = p.type.dtype
        else:
            dtype = dtypes[int(rng.integers(len(dtypes)))]
        n = self._arity(spec, rng)
        inst = self.instantiator.instantiate(spec, rng, [None] * n, dtype, target=p.type)
        if not self._accept(inst):
            return False
        assert inst is not None
        b.replaced[pid] = self._add(b, inst, [None] * n)
        return True


def single_node_graph(inst: Instance) -> Graph:
    """A graph of exactly one node whose operands are all placeholders (for op tests/probes)."""
    spec = inst.spec
    placeholders = tuple(
        Placeholder(t, "weight" if spec.operand_at(j).weight else "input") for j, t in enumerate(inst.inputs)
    )
    node = Node(spec.name, tuple(InputRef(j) for j in range(len(inst.inputs))), inst.attrs, inst.outputs)
    return Graph(placeholders, (node,), tuple(NodeRef(0, k) for k in range(len(inst.outputs))))


def generate_graph(seed: int, options: GenOptions = GenOptions(), catalog: Mapping[str, OpSpec] | None = None) -> Graph:
    """One graph for `seed` (convenience; build a GraphGenerator to generate many)."""
    if catalog is None:
        from generators.ops import catalog as full_catalog

        catalog = full_catalog()
    return GraphGenerator(catalog, options).generate(seed)
