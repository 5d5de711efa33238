"""The graph IR: frozen, topologically ordered graphs of typed nodes and typed references.

Owns Graph/Node/Placeholder/TensorType, value references, the exact JSON round trip and
`validate()`. Imports the operator catalog only to validate; never imports a framework.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from generators.dtypes import DType
from generators.errors import GraphError
from generators.spec import AttrValue, OpSpec, RankCtx
from generators.symbolic import all_of

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: DType

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        return f"{self.dtype.value}[{', '.join(map(str, self.shape))}]"


@dataclass(frozen=True, slots=True)
class InputRef:
    """Refers to graph placeholder number `index`."""

    index: int


@dataclass(frozen=True, slots=True)
class NodeRef:
    """Refers to output `output` of node number `node`."""

    node: int
    output: int = 0


ValueRef = Union[InputRef, NodeRef]


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A graph input: fed at run time (`input`) or a fixed parameter (`weight`)."""

    type: TensorType
    kind: Literal["input", "weight"] = "input"


@dataclass(frozen=True, slots=True)
class Node:
    op: str
    inputs: tuple[ValueRef, ...]
    attrs: tuple[tuple[str, AttrValue], ...]
    outputs: tuple[TensorType, ...]

    @property
    def attr_map(self) -> dict[str, AttrValue]:
        return dict(self.attrs)


@dataclass(frozen=True, slots=True)
class Graph:
    placeholders: tuple[Placeholder, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[ValueRef, ...]

    def type_of(self, ref: ValueRef) -> TensorType:
        if isinstance(ref, InputRef):
            return self.placeholders[ref.index].type
        return self.nodes[ref.node].outputs[ref.output]

    @property
    def input_indices(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.placeholders) if p.kind == "input")

    @property
    def weight_indices(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.placeholders) if p.kind == "weight")

    def op_names(self) -> tuple[str, ...]:
        return tuple(n.op for n in self.nodes)

    def to_json(self) -> str:
        return json.dumps(graph_to_dict(self), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """A stable content hash, used as the graph's identity in stores and reports."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return format_graph(self)


def disjoint_union(graphs: Sequence[Graph]) -> Graph:
    """One graph that computes every graph of `graphs` side by side: placeholders, nodes and
    outputs concatenated in order (so graph g's outputs are a contiguous run). Lets a
    compiler build several independent test graphs in one compilation."""
    placeholders: list[Placeholder] = []
    nodes: list[Node] = []
    outputs: list[ValueRef] = []
    for g in graphs:
        p0, n0 = len(placeholders), len(nodes)

        def shift(ref: ValueRef, p0: int = p0, n0: int = n0) -> ValueRef:
            return InputRef(ref.index + p0) if isinstance(ref, InputRef) else NodeRef(ref.node + n0, ref.output)

        placeholders.extend(g.placeholders)
        nodes.extend(Node(n.op, tuple(shift(r) for r in n.inputs), n.attrs, n.outputs) for n in g.nodes)
        outputs.extend(shift(r) for r in g.outputs)
    return Graph(tuple(placeholders), tuple(nodes), tuple(outputs))



def without_node(graph: Graph, index: int) -> Graph | None:
    """`graph` less node `index` and every node that depends on it, or None when no node is
    left. A kept value that only removed nodes consumed becomes an output, so what it
    computes is still observed; placeholders nothing uses any more are removed."""
    gone = {index}
    for i in range(index + 1, len(graph.nodes)):
        if any(isinstance(r, NodeRef) and r.node in gone for r in graph.nodes[i].inputs):
            gone.add(i)
    kept = [i for i in range(len(graph.nodes)) if i not in gone]
    if not kept:
        return None
    consumed_by_kept = {(r.node, r.output) for i in kept for r in graph.nodes[i].inputs if isinstance(r, NodeRef)}
    orphaned = sorted(
        (r.node, r.output)
        for i in gone
        for r in graph.nodes[i].inputs
        if isinstance(r, NodeRef) and r.node not in gone and (r.node, r.output) not in consumed_by_kept
    )
    outputs = [r for r in graph.outputs if not (isinstance(r, NodeRef) and r.node in gone)]
    listed = set(outputs)
    outputs.extend(ref for ref in dict.fromkeys(NodeRef(n, k) for n, k in orphaned) if ref not in listed)
    used = sorted({r.index for r in [*outputs, *(r for i in kept for r in graph.nodes[i].inputs)] if isinstance(r, InputRef)})
    node_map = {old: new for new, old in enumerate(kept)}
    input_map = {old: new for new, old in enumerate(used)}

    def remap(ref: ValueRef) -> ValueRef:
        return InputRef(input_map[ref.index]) if isinstance(ref, InputRef) else NodeRef(node_map[ref.node], ref.output)

    nodes = tuple(Node(n.op, tuple(remap(r) for r in n.inputs), n.attrs, n.outputs) for n in (graph.nodes[i] for i in kept))
    return Graph(tuple(graph.placeholders[i] for i in used), nodes, tuple(remap(r) for r in outputs))

# --- JSON ----------------------------------------------------------------------------------


def _ref_to_json(ref: ValueRef) -> dict[str, int]:
    if isinstance(ref, InputRef):
        return {"input": ref.index}
    return {"node": ref.node, "output": ref.output}


def _type_to_json(t: TensorType) -> dict[str, Any]:
    return {"shape": list(t.shape), "dtype": t.dtype.value}


def _attr_to_json(value: AttrValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "placeholders": [{**_type_to_json(p.type), "kind": p.kind} for p in graph.placeholders],
        "nodes": [
            {
                "op": n.op,
                "inputs": [_ref_to_json(r) for r in n.inputs],
                "attrs": {k: _attr_to_json(v) for k, v in n.attrs},
                "outputs": [_type_to_json(t) for t in n.outputs],
            }
            for n in graph.nodes
        ],
        "outputs": [_ref_to_json(r) for r in graph.outputs],
    }


class _Reader:
    """Parses untrusted JSON data into IR objects with precise, located error messages."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, message: str) -> GraphError:
        return GraphError(f"{self.where}: {path}: {message}")

    def obj(self, value: Any, path: str, keys: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(path, f"missing key(s) {', '.join(missing)}")
        return value

    def list(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {type(value).__name__}")
        return value

    def int(self, value: Any, path: str, lo: int = 0) -> int:
        if type(value) is not int or value < lo:
            raise self.fail(path, f"expected an integer >= {lo}, got {value!r}")
        return value

    def type(self, value: Any, path: str) -> TensorType:
        data = self.obj(value, path, ("shape", "dtype"))
        shape = tuple(
            self.int(d, f"{path}.shape[{i}]", 1)
            for i, d in enumerate(self.list(data["shape"], f"{path}.shape"))
        )
        if not isinstance(data["dtype"], str) or data["dtype"] not in DType.__members__:
            raise self.fail(f"{path}.dtype", f"unknown dtype {data['dtype']!r}")
        return TensorType(shape, DType(data["dtype"]))

    def ref(self, value: Any, path: str) -> ValueRef:
        if isinstance(value, dict) and set(value) == {"input"}:
            return InputRef(self.int(value["input"], f"{path}.input"))
        if isinstance(value, dict) and set(value) == {"node", "output"}:
            return NodeRef(
                self.int(value["node"], f"{path}.node"), self.int(value["output"], f"{path}.output")
            )
        raise self.fail(path, f'expected {{"input": i}} or {{"node": i, "output": j}}, got {value!r}')

    def attr(self, value: Any, path: str) -> AttrValue:
        if isinstance(value, list):
            if not all(type(v) is int for v in value):
                raise self.fail(path, "list attributes must hold integers only")
            return tuple(value)
        if isinstance(value, (bool, int, float, str)):
            return value
        raise self.fail(path, f"unsupported attribute value {value!r}")


def graph_from_dict(data: Any, where: str = "graph") -> Graph:
    """Builds a Graph from parsed JSON. Raises GraphError; call validate() for semantics."""
    r = _Reader(where)
    top = r.obj(data, "$", ("format", "placeholders", "nodes", "outputs"))
    if top["format"] != FORMAT_VERSION:
        raise r.fail("$.format", f"unsupported format {top['format']!r} (expected {FORMAT_VERSION})")
    placeholders = []
    for i, p in enumerate(r.list(top["placeholders"], "$.placeholders")):
        path = f"$.placeholders[{i}]"
        kind = r.obj(p, path, ("kind",))["kind"]
        if kind not in ("input", "weight"):
            raise r.fail(f"{path}.kind", f"expected 'input' or 'weight', got {kind!r}")
        placeholders.append(Placeholder(r.type(p, path), kind))
    nodes = []
    for i, n in enumerate(r.list(top["nodes"], "$.nodes")):
        path = f"$.nodes[{i}]"
        nd = r.obj(n, path, ("op", "inputs", "attrs", "outputs"))
        if not isinstance(nd["op"], str):
            raise r.fail(f"{path}.op", "expected an operator name")
        attrs = r.obj(nd["attrs"], f"{path}.attrs", ())
        nodes.append(
            Node(
                op=nd["op"],
                inputs=tuple(
                    r.ref(x, f"{path}.inputs[{j}]")
                    for j, x in enumerate(r.list(nd["inputs"], f"{path}.inputs"))
                ),
                attrs=tuple(sorted((str(k), r.attr(v, f"{path}.attrs.{k}")) for k, v in attrs.items())),
                outputs=tuple(
                    r.type(t, f"{path}.outputs[{j}]")
                    for j, t in enumerate(r.list(nd["outputs"], f"{path}.outputs"))
                ),
            )
        )
    outputs = tuple(
        r.ref(x, f"$.outputs[{j}]") for j, x in enumerate(r.list(top["outputs"], "$.outputs"))
    )
    return Graph(tuple(placeholders), tuple(nodes), outputs)


def graph_from_json(text: str, where: str = "graph") -> Graph:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphError(f"{where}: not valid JSON: {exc}") from None
    return graph_from_dict(data, where)


# --- validation ----------------------------------------------------------------------------


def validate(graph: Graph, catalog: Mapping[str, OpSpec] | None = None) -> None:
    """Re-checks every reference and node against its spec; raises GraphError on the first
    problem, naming the node."""
    if catalog is None:
        from generators.ops import catalog as full_catalog

        catalog = full_catalog()
    for i, node in enumerate(graph.nodes):
        where = f"node {i} ({node.op})"
        spec = catalog.get(node.op)
        if spec is None:
            raise GraphError(f"{where}: unknown operator {node.op!r}")
        in_types = []
        for j, ref in enumerate(node.inputs):
            in_types.append(_check_ref(graph, ref, before=i, where=f"{where} input {j}"))
        _check_node(spec, node, in_types, where)
    if not graph.outputs:
        raise GraphError("graph has no outputs")
    for j, ref in enumerate(graph.outputs):
        _check_ref(graph, ref, before=len(graph.nodes), where=f"graph output {j}")


def _check_ref(graph: Graph, ref: ValueRef, before: int, where: str) -> TensorType:
    if isinstance(ref, InputRef):
        if ref.index >= len(graph.placeholders):
            raise GraphError(f"{where}: placeholder {ref.index} does not exist")
        return graph.placeholders[ref.index].type
    if ref.node >= before:
        raise GraphError(f"{where}: refers to node {ref.node}, which does not come before it")
    if ref.output >= len(graph.nodes[ref.node].outputs):
        raise GraphError(f"{where}: node {ref.node} has no output {ref.output}")
    return graph.nodes[ref.node].outputs[ref.output]


def _check_node(spec: OpSpec, node: Node, in_types: list[TensorType], where: str) -> None:
    lo, hi = spec.arity_range()
    if not lo <= len(in_types) <= hi:
        raise GraphError(f"{where}: expects {lo}..{hi} inputs, got {len(in_types)}")
    t = type_variable(spec, [it.dtype for it in in_types], [o.dtype for o in node.outputs])
    if t not in spec.dtypes:
        raise GraphError(f"{where}: dtype {t.value} not supported")
    for j, it in enumerate(in_types):
        operand = spec.operand_at(j)
        if it.dtype != spec.operand_dtype(j, t):
            raise GraphError(f"{where}: input {j} ({operand.name}) has dtype {it.dtype.value}, "
                             f"expected {spec.operand_dtype(j, t).value}")
        if it.rank not in operand.ranks:
            raise GraphError(f"{where}: input {j} ({operand.name}) has rank {it.rank}, "
                             f"allowed {list(operand.ranks)}")
    ranks = tuple(it.rank for it in in_types)
    if spec.same_rank and len(set(ranks)) > 1:
        raise GraphError(f"{where}: inputs must have equal ranks, got {list(ranks)}")
    attrs = node.attr_map
    if set(attrs) != set(spec.attrs):
        raise GraphError(f"{where}: attributes {sorted(attrs)} != expected {sorted(spec.attrs)}")
    for name, domain in spec.attrs.items():
        ctx = RankCtx(ranks, t, {k: attrs[k] for k in spec.attrs if k != name})
        if not domain.contains(attrs[name], ctx):
            raise GraphError(f"{where}: attribute {name}={attrs[name]!r} outside its domain {domain}")
    shapes = [it.shape for it in in_types]
    if not all_of(spec.requires(shapes, attrs)):
        raise GraphError(f"{where}: input shapes {[list(s) for s in shapes]} and attributes "
                         f"{attrs} violate the operator's constraints")
    out_shapes = [tuple(s) for s in spec.infer(shapes, attrs)]
    expected = tuple(
        TensorType(s, d)
        for s, d in zip(out_shapes, spec.output_dtypes(t, attrs, len(out_shapes)))
    )
    if expected != node.outputs:
        raise GraphError(f"{where}: declared outputs {[str(o) for o in node.outputs]} but the spec "
                         f"infers {[str(o) for o in expected]}")


def type_variable(spec: OpSpec, in_dtypes: Sequence[DType], out_dtypes: Sequence[DType]) -> DType:
    """The dtype variable T of a node: the dtype of its first T-typed operand, or, when
    every operand has a fixed dtype (e.g. one_hot's indices), the dtype of its first output."""
    for j, d in enumerate(in_dtypes):
        if spec.operand_at(j).dtype is None:
            return d
    if not out_dtypes:
        raise GraphError(f"{spec.name}: node has no outputs")
    return out_dtypes[0]


def iter_refs(graph: Graph) -> Iterator[tuple[int, ValueRef]]:
    """(consumer node index, reference) for every node input."""
    for i, node in enumerate(graph.nodes):
        for ref in node.inputs:
            yield i, ref


def format_graph(graph: Graph) -> str:
    """A compact human-readable listing, one line per placeholder and node."""
    lines = []
    for i, p in enumerate(graph.placeholders):
        lines.append(f"%in{i}: {p.type}  ({p.kind})")
    for i, n in enumerate(graph.nodes):
        args = ", ".join(_fmt_ref(r) for r in n.inputs)
        attrs = ", ".join(f"{k}={v!r}" for k, v in n.attrs)
        outs = ", ".join(str(t) for t in n.outputs)
        lines.append(f"%{i} = {n.op}({args}{'; ' + attrs if attrs else ''}) -> {outs}")
    lines.append("return " + ", ".join(_fmt_ref(r) for r in graph.outputs))
    return "\n".join(lines)


def _fmt_ref(ref: ValueRef) -> str:
    if isinstance(ref, InputRef):
        return f"%in{ref.index}"
    return f"%{ref.node}" + (f".{ref.output}" if ref.output else "")
