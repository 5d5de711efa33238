"""PyTorch nn.Module -> Gauntlet graph IR: the torch.fx trace (eval mode), the Converter that emits
catalog nodes (parameters as `weight` placeholders) and the original module as `run_real`; the
per-call handlers are in generators.load.torch_ops. Imports torch and generators; never fuzz.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn

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
from generators.load.model import LoadedModel, ModelError
from generators.load.torch_ops import Site, bind, call_table, dispatch, module_table, unsupported
from generators.materialize.torch import to_numpy
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs
from generators.spec import AttrDomain, AttrValue, Choice, FloatAttr, IntAttr, IntsAttr, RankCtx

__all__ = ["load_torch"]

# How far the IR (float64 reference) may be from the module on the example input, relative
# to 1 + max|output|: rounding in the module's dtype, not a semantic difference.
SELF_CHECK_TOL = {DType.float64: 1e-9, DType.float32: 1e-3, DType.float16: 5e-2, DType.bfloat16: 1e-1}
# Shape queries give the same answer for every input of the example's shape.
SHAPE_METHODS = frozenset({"size", "dim", "ndimension", "numel", "nelement"})
SHAPE_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "is_cuda"})
# Folding these into constants would freeze one random draw.
RANDOM = frozenset({"rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal",
                    "bernoulli", "multinomial", "poisson", "uniform_", "normal_", "bernoulli_", "random_"})
INPLACE_OPERATORS = frozenset({operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.setitem})


@dataclass(frozen=True)
class _Meta:
    """What the example run showed about an input-dependent tensor."""

    shape: tuple[int, ...]
    dtype: torch.dtype


def load_torch(module: nn.Module, example_input: np.ndarray | torch.Tensor, description: str = "") -> LoadedModel:
    """The module as a LoadedModel whose graph input has `example_input`'s shape. Raises
    ModelError naming the first module/function the catalog cannot express exactly."""
    if not isinstance(module, nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    tdtype, device = _dtype_and_device(module, example_input)
    dtype = DType.parse(str(tdtype).removeprefix("torch."))
    if isinstance(example_input, torch.Tensor):
        example = example_input.detach().to(device=device, dtype=tdtype)
    else:
        example = torch.as_tensor(np.asarray(example_input, dtype=np.float64)).to(device=device, dtype=tdtype)
    if example.dim() == 0 or min(example.shape) < 1:
        raise ModelError(f"the example input must have a non-empty shape, got {tuple(example.shape)}")
    name = description or f"torch {type(module).__name__}"
    with _eval_mode(module), torch.no_grad():
        traced = _trace(module, name)
        dep = _dependence(traced)
        recorder = _Recorder(traced, dep)
        try:
            recorder.run(example)
        except Exception as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"{name}: running the traced model on the example input failed: {first_line}") from None
        graph, weights = Converter(traced, recorder.seen, dep, dtype, tdtype).convert()
    try:
        validate(graph, catalog())
    except GraphError as exc:
        raise ModelError(f"{name}: the loaded graph is invalid (please report this): {exc}") from None
    run_real = _real_runner(module, tuple(example.shape), tuple(graph.type_of(graph.outputs[0]).shape), tdtype, device)
    _self_check(graph, weights, to_numpy(example.cpu()), run_real, name, dtype)
    return LoadedModel(graph, MappingProxyType(weights), run_real, name)


def _dtype_and_device(module: nn.Module, example: Any) -> tuple[torch.dtype, torch.device]:
    for t in [*module.parameters(), *module.buffers()]:
        if t.is_floating_point():
            return t.dtype, t.device
    if isinstance(example, torch.Tensor) and example.is_floating_point():
        return example.dtype, example.device
    return torch.float32, torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; then every submodule's own mode back (they may differ)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _real_runner(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 tdtype: torch.dtype, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    def run_real(x: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(in_shape)).to(device=device, dtype=tdtype)
        with _eval_mode(module), torch.no_grad():
            out = module(t)
        if not isinstance(out, torch.Tensor):
            raise ModelError(f"the module returned {type(out).__name__}, not one tensor")
        return np.asarray(out.detach().to("cpu", torch.float64).numpy()).reshape(out_shape)

    return run_real


def _self_check(graph: Graph, weights: Mapping[int, np.ndarray], example: np.ndarray,
                run_real: Callable[[np.ndarray], np.ndarray], name: str, dtype: DType) -> None:
    """The IR must reproduce the module on the example: this catches what a trace cannot see
    (in-place updates of aliased tensors, side effects in forward)."""
    feed = [weights[i] if i in weights else example for i in range(len(graph.placeholders))]
    results = evaluate(graph, feed, catalog(), wide=True)
    assert results is not None  # no `check` given
    ir = np.asarray(graph_outputs(graph, results, feed)[0], dtype=np.float64)
    real = run_real(example)
    err = float(np.max(np.abs(ir - real), initial=0.0))
    bound = SELF_CHECK_TOL[dtype] * (1.0 + float(np.max(np.abs(real), initial=0.0)))
    if not err <= bound:
        raise ModelError(f"{name}: the traced graph does not reproduce the module on the example input (max "
                         f"difference {err:.3g} > {bound:.3g}); in-place updates of tensors used elsewhere or "
                         "side effects in forward are the usual cause")


# --- tracing ---------------------------------------------------------------------------------


def _trace(module: nn.Module, name: str) -> torch.fx.GraphModule:
    params = list(inspect.signature(module.forward).parameters.values())
    required = [p for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(required) != 1:
        raise ModelError(f"{name}: forward must take exactly one tensor argument (others need defaults), got "
                         f"({', '.join(p.name for p in params)}); wrap the model so it takes one input tensor")
    # Defaults are baked in: the verifier runs forward(x) only.
    concrete = {p.name: p.default for p in params if p.default is not p.empty}
    try:
        return torch.fx.symbolic_trace(module, concrete_args=concrete or None)
    except Exception as exc:
        raise ModelError(
            f"{name}: torch.fx cannot trace the model ({type(exc).__name__}: {exc}). The verifier needs a forward "
            "whose structure does not depend on tensor values: replace Python if/for/while on tensors (and "
            ".item()/.tolist()) by tensor operations such as torch.where, or wrap the model in a module with a "
            "fixed forward"
        ) from None


def _is_shape_query(n: torch.fx.Node) -> bool:
    if n.op == "call_method":
        return n.target in SHAPE_METHODS
    return n.op == "call_function" and n.target is builtins.getattr and n.args[1] in SHAPE_ATTRS


def _dependence(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, bool]:
    """Which nodes' values depend on the input's values (the rest fold to constants)."""
    dep: dict[torch.fx.Node, bool] = {}
    first = True
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            dep[n], first = first, False
        elif n.op == "get_attr" or _is_shape_query(n):
            dep[n] = False
        else:
            dep[n] = any(dep[a] for a in n.all_input_nodes)
    return dep


class _Recorder(torch.fx.Interpreter):
    """Runs the trace on the example: shapes of input-dependent tensors, values of the rest."""

    def __init__(self, gm: torch.fx.GraphModule, dep: Mapping[torch.fx.Node, bool]) -> None:
        super().__init__(gm)
        self.dep = dep
        self.seen: dict[torch.fx.Node, Any] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            # A clone: a later in-place op must not change the constant we recorded.
            self.seen[n] = _Meta(tuple(result.shape), result.dtype) if self.dep[n] else result.detach().clone()
        else:
            self.seen[n] = result
        return result


def _target_name(n: torch.fx.Node) -> str:
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    if n.op == "call_module":
        return str(n.target)
    return _qualname(n.target)


def _qualname(fn: Any) -> str:
    for name, (target, _, _) in call_table().items():
        if target is fn:
            return name
    module = getattr(fn, "__module__", None) or "torch"
    return f"{module.replace('_operator', 'operator')}.{getattr(fn, '__name__', repr(fn))}"


# --- conversion ------------------------------------------------------------------------------


class Converter:
    """Walks the live nodes of the trace in order and emits catalog nodes."""

    def __init__(self, gm: torch.fx.GraphModule, seen: Mapping[torch.fx.Node, Any],
                 dep: Mapping[torch.fx.Node, bool], dtype: DType, tdtype: torch.dtype) -> None:
        self.gm, self.seen, self.dep, self.dtype, self.tdtype = gm, seen, dep, dtype, tdtype
        self.catalog = catalog()
        first = next(n for n in gm.graph.nodes if n.op == "placeholder")
        self.placeholders = [Placeholder(TensorType(seen[first].shape, dtype), "input")]
        self.nodes: list[Node] = []
        self.weights: dict[int, np.ndarray] = {}
        self._cached: dict[int, tuple[torch.Tensor, InputRef]] = {}  # id -> (kept alive, ref)

    def convert(self) -> tuple[Graph, dict[int, np.ndarray]]:
        nodes = list(self.gm.graph.nodes)
        result = nodes[-1].args[0]
        if not isinstance(result, torch.fx.Node) or not isinstance(self.seen[result], (_Meta, torch.Tensor)):
            raise ModelError(f"forward returns {type(self.seen.get(result, result)).__name__}, not one tensor: wrap "
                             "the model so that forward returns one logits tensor (e.g. `return model(x)[0]`)")
        if not self.dep[result]:
            raise ModelError("the model's output does not depend on its input")
        for n in nodes:
            self._check_mutation(n)
        live: set[torch.fx.Node] = set()
        stack = [result]
        while stack:
            n = stack.pop()
            if n not in live:
                live.add(n)
                stack.extend(n.all_input_nodes)
        env: dict[torch.fx.Node, Any] = {}
        for n in nodes:
            if n not in live:
                continue
            if n.op == "placeholder" and self.dep[n]:
                env[n] = InputRef(0)
            elif not self.dep[n]:
                if n.op in ("call_function", "call_method") and _target_name(n).split(".")[-1] in RANDOM:
                    raise ModelError(f"{_target_name(n)} (node '{n.name}') draws random numbers")
                env[n] = self.seen[n]
            else:
                env[n] = self._convert(n, env)
        graph = Graph(tuple(self.placeholders), tuple(self.nodes), (env[result],))
        return graph, self.weights

    def _check_mutation(self, n: torch.fx.Node) -> None:
        """In-place ops are traced as out-of-place ones: exact only when nothing else sees the
        tensor they change."""
        if n.op == "call_method":
            inplace = str(n.target).endswith("_") and not str(n.target).endswith("__")
        elif n.op == "call_function":
            name = getattr(n.target, "__name__", "")
            inplace = n.target in INPLACE_OPERATORS or (name.endswith("_") and not name.endswith("__"))
        elif n.op == "call_module":
            inplace = getattr(self.gm.get_submodule(str(n.target)), "inplace", False) is True
        else:
            return
        inplace = inplace or n.kwargs.get("inplace") is True
        target = n.args[0] if n.args else None
        if not inplace or not isinstance(target, torch.fx.Node):
            return
        if not self.dep[target]:
            raise ModelError(f"{_target_name(n)} (node '{n.name}') changes a parameter, buffer or constant in place")
        if len(target.users) > 1:
            raise ModelError(f"{_target_name(n)} (node '{n.name}') changes in place a tensor that other operations "
                             "also use; use the out-of-place form")

    def _convert(self, n: torch.fx.Node, env: Mapping[torch.fx.Node, Any]) -> ValueRef:
        args = torch.fx.node.map_arg(n.args, lambda a: env[a])
        kwargs = dict(torch.fx.node.map_arg(n.kwargs, lambda a: env[a]))
        meta = self.seen[n]
        if n.op == "call_module":
            mod = self.gm.get_submodule(str(n.target))
            where = f"module '{n.target}' ({type(mod).__name__})"
            module_build = module_table().get(type(mod))
            if module_build is None:
                raise unsupported(where)
            if len(args) != 1 or kwargs:
                raise ModelError(f"{where}: expected to be called on one tensor")
            site = self._site(where, meta)
            out = module_build(self, site, mod, self.ref(args[0], site))
        else:
            where = f"{_target_name(n)} (node '{n.name}')"
            functions, methods = dispatch()
            if n.op == "call_method":
                entry = methods.get(str(n.target))
            else:
                entry = functions.get(n.target) if _hashable(n.target) else None
            if entry is None:
                raise unsupported(where)
            site = self._site(where, meta)
            bound = bind(site, args, kwargs, entry[0])
            if "input" in bound:
                bound["input"] = self.ref(bound["input"], site)
            out = entry[1](self, site, bound)
        if self.type_of(out).shape != site.out_shape:
            raise ModelError(f"{where}: the IR computes shape {self.type_of(out).shape} but torch produced "
                             f"{site.out_shape} (please report this)")
        return out

    def _site(self, where: str, meta: Any) -> Site:
        if not isinstance(meta, _Meta):
            raise ModelError(f"{where}: returns {type(meta).__name__} computed from the input's values; the verifier "
                             "needs tensor-to-tensor operations")
        if meta.dtype != self.tdtype:
            raise ModelError(f"{where}: computes in {meta.dtype}, but the model's dtype is {self.tdtype}")
        return Site(where, meta.shape)

    # --- building blocks for the handlers ---

    def type_of(self, ref: ValueRef) -> TensorType:
        if isinstance(ref, InputRef):
            return self.placeholders[ref.index].type
        return self.nodes[ref.node].outputs[ref.output]

    def rank(self, ref: ValueRef) -> int:
        return self.type_of(ref).rank

    def ref(self, value: Any, s: Site) -> ValueRef:
        """A graph value for an operand: input-dependent values as they are, constant tensors
        and Python numbers as weight placeholders in the model's dtype."""
        if isinstance(value, (InputRef, NodeRef)):
            return value
        if isinstance(value, torch.Tensor):
            return self.weight(value)
        if isinstance(value, (bool, int, float)):
            return self.weight(torch.tensor(value, dtype=self.tdtype))
        raise ModelError(f"{s.where}: expected a tensor operand, got {type(value).__name__}")

    def weight(self, t: torch.Tensor) -> InputRef:
        cached = self._cached.get(id(t))
        if cached is not None:
            return cached[1]
        # A copy: the verified graph must not change when the module is trained further or
        # its storage moves (multiprocessing moves tensors into shared memory).
        array = to_numpy(t.detach().to(device="cpu", dtype=self.tdtype)).copy()
        ref = InputRef(len(self.placeholders))
        self.placeholders.append(Placeholder(TensorType(tuple(array.shape), self.dtype), "weight"))
        self.weights[ref.index] = array
        self._cached[id(t)] = (t, ref)
        return ref

    def const(self, value: Any, what: str, s: Site) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"{s.where}: the {what} must be a parameter or constant, not computed from the input")
        return value

    def problem(self, name: str, inputs: Sequence[ValueRef], attrs: Mapping[str, Any]) -> str | None:
        """Why catalog operator `name` cannot take these operand ranks and attributes, or None."""
        spec = self.catalog[name]
        ranks = tuple(self.rank(r) for r in inputs)
        lo, hi = spec.arity_range()
        if not lo <= len(ranks) <= hi:
            return f"the catalog's {name} takes {lo}..{hi} operands, not {len(ranks)}"
        for j, rank in enumerate(ranks):
            allowed = spec.operand_at(j).ranks
            if rank not in allowed:
                return f"the catalog's {name} takes operand {spec.operand_at(j).name} of rank {list(allowed)}, not {rank}"
        for key, domain in spec.attrs.items():
            ctx = RankCtx(ranks, self.dtype, {k: v for k, v in attrs.items() if k != key})
            if not domain.contains(attrs[key], ctx):
                return (f"the catalog's {name} takes {key} in {_describe(domain, ctx)}, not {attrs[key]!r} "
                        "(a catalog limit; the model needs a wider domain)")
        return None

    def op(self, name: str, inputs: Sequence[ValueRef], attrs: Mapping[str, AttrValue], s: Site) -> NodeRef:
        """Appends one catalog node, checked against its spec exactly as validate() checks it."""
        problem = self.problem(name, inputs, attrs)
        if problem is not None:
            raise ModelError(f"{s.where}: {problem}")
        spec = self.catalog[name]
        types = [self.type_of(r) for r in inputs]
        try:
            t = type_variable(spec, [x.dtype for x in types], [])
            shapes = spec.infer([x.shape for x in types], attrs)
            outputs = tuple(TensorType(tuple(int(d) for d in shape), dt)
                            for shape, dt in zip(shapes, spec.output_dtypes(t, attrs, len(shapes))))
        except (GraphError, IndexError, KeyError, TypeError, ValueError):
            outputs = ()  # validate() below names the violated constraint
        node_attrs = tuple(sorted(attrs.items()))
        local = Node(name, tuple(InputRef(i) for i in range(len(types))), node_attrs, outputs)
        try:
            validate(Graph(tuple(Placeholder(x) for x in types), (local,), (NodeRef(0),)), self.catalog)
        except GraphError as exc:
            raise ModelError(f"{s.where}: the catalog's {name} rejects it: {exc}") from None
        self.nodes.append(Node(name, tuple(inputs), node_attrs, outputs))
        return NodeRef(len(self.nodes) - 1)


def _hashable(target: Any) -> bool:
    try:
        hash(target)
    except TypeError:
        return False
    return True


def _describe(domain: AttrDomain, ctx: RankCtx) -> str:
    if isinstance(domain, (IntAttr, FloatAttr)):
        return f"[{domain.lo}, {domain.hi}]"
    if isinstance(domain, IntsAttr):
        return f"{domain.size(ctx)} integers in [{domain.lo}, {domain.hi}]"
    if isinstance(domain, Choice):
        return repr(domain.values)
    return type(domain).__name__
