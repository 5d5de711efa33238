"""Rule-backed operators: each inferred signature rule becomes an OpSpec beside the
hand-written ones (shape inference and requires from the rule's expressions, lowering a
call of the API, reference the same API run eagerly in float64)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from generators.dtypes import DType
from generators.errors import GauntletError
from generators.instantiate import Instance
from generators.reference import ReferenceRejects
from generators.rules.expr import parse
from generators.rules.store import ApiRules, SignatureRule, read_rules
from generators.rules.trace import Arg, Invocation
from generators.spec import (
    AttrDomain,
    Call,
    Choice,
    FloatAttr,
    IntAttr,
    IntsAttr,
    Missing,
    Operand,
    OpSpec,
    RankCtx,
)
from generators.symbolic import Shape, SymBool

# Which lowering field of an OpSpec a framework's rules fill, and its module prefix.
_FIELDS = {"torch": "torch", "tensorflow": "tf"}
_DIM_CAP = 32  # generated dimensions stay small even where traces went larger


@dataclass(frozen=True)
class FrameworkReference:
    """The API itself, run eagerly on the CPU in the widest dtype the reference gets (float64
    for floats): rule-backed operators have no NumPy reference, so the float64 eager run is
    the reference compiled and low-precision runs are judged against."""

    call: Call
    framework: str
    # The rule's shape inference: an output of another shape means the rule was wrong for
    # this call, and the graph built on its prediction is skipped.
    infer: Callable[[Sequence[Shape], Mapping[str, Any]], Sequence[Shape]]

    def __call__(self, fw: Any, inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> Any:
        try:
            if self.framework == "torch":
                outputs = self._torch(inputs, attrs)
            else:
                tf = importlib.import_module("tensorflow")
                result = self.call(tf, [tf.constant(a) for a in inputs], attrs)
                outputs = tuple(np.asarray(o) for o in (result if isinstance(result, (tuple, list)) else (result,)))
        except Exception as exc:  # noqa: BLE001 - whatever the framework raises means "not this call"
            first = (str(exc).splitlines() or [""])[0]
            raise ReferenceRejects(f"{self.call.path}: {type(exc).__name__}: {first}") from None
        predicted = [tuple(s) for s in self.infer([a.shape for a in inputs], attrs)]
        if [o.shape for o in outputs] != predicted:
            raise ReferenceRejects(f"{self.call.path}: output shapes {[o.shape for o in outputs]}, the rule says {predicted}")
        return outputs

    def _torch(self, inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
        torch = importlib.import_module("torch")
        tensors = []
        for a in inputs:
            if a.dtype.name == "bfloat16":  # torch cannot share ml_dtypes' bfloat16 memory
                tensors.append(torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16))
            else:
                tensors.append(torch.from_numpy(np.ascontiguousarray(a)))
        result = self.call(torch, tensors, attrs)
        outs = result if isinstance(result, (tuple, list)) else (result,)
        arrays = []
        for o in outs:
            if hasattr(o, "detach"):
                o = o.detach().cpu()
                arrays.append(o.float().numpy() if o.dtype == torch.bfloat16 else o.numpy())
            else:
                arrays.append(np.asarray(o))
        return tuple(arrays)


def _symbol_env(rule: SignatureRule, shapes: Sequence[Shape], attrs: Mapping[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    operand = 0
    for prefix, slot in _slots(rule):
        if slot.kind == "tensor":
            for j, d in enumerate(shapes[operand]):
                env[f"{prefix}_s{j}"] = d
            operand += 1
        elif slot.kind == "int":
            env[prefix] = attrs[prefix]
        elif slot.kind == "ints":
            for j, v in enumerate(attrs[prefix]):
                env[f"{prefix}_{j}"] = v
    return env


@dataclass(frozen=True)
class _FixedLength:
    """The length of an int-tuple attribute: fixed by the signature."""

    n: int

    def __call__(self, ctx: RankCtx) -> int:
        return self.n


def _slots(rule: SignatureRule) -> list[tuple[str, Any]]:
    """Every argument slot with its symbol prefix, in Invocation.named() order."""
    return [(f"a{i}", s) for i, s in enumerate(rule.args)] + sorted(rule.kwargs.items())


def _positional(rule: SignatureRule, prefix: str) -> bool:
    return prefix.startswith("a") and prefix[1:].isdigit() and int(prefix[1:]) < len(rule.args)


def rule_invocation(api: str, rule: SignatureRule, instance: Instance) -> Invocation:
    """The framework call an instance of a rule-backed operator stands for."""
    attrs = dict(instance.attrs)
    args: list[Arg] = []
    kwargs: list[tuple[str, Arg]] = []
    operand = 0
    for prefix, slot in _slots(rule):
        if slot.kind == "tensor":
            t = instance.inputs[operand]
            arg = Arg.tensor(t.shape, t.dtype.value)
            operand += 1
        elif slot.kind == "none":
            arg = Arg("none")
        elif slot.kind == "ints":
            arg = Arg("ints", value=tuple(int(v) for v in attrs[prefix]))  # type: ignore[union-attr]
        else:
            arg = Arg(slot.kind, value=attrs[prefix])
        if _positional(rule, prefix):
            args.append(arg)
        else:
            kwargs.append((prefix, arg))
    return Invocation(api, tuple(args), tuple(kwargs))


def _dtype(name: str) -> DType | None:
    try:
        return DType.parse(name)
    except (GauntletError, ValueError, KeyError):
        return None


def op_name(signature: str) -> str:
    """A rule-backed operator's name: its signature with `|` between arguments, so lists of
    operators stay comma-separated (`torch.add(tensor2|tensor2|alpha=int)`)."""
    return signature.replace(",", "|")


def rule_spec(api_rules: ApiRules, rule: SignatureRule) -> OpSpec | str:
    """The OpSpec of one signature rule, or why it cannot be one."""
    framework = api_rules.framework
    if framework not in _FIELDS:
        return f"unknown framework {framework}"
    if rule.traces.get("value_dependent", 0):
        return "validity depends on tensor values (a valid call failed again with other values)"
    slots = _slots(rule)
    tensors = [p for p, s in slots if s.kind == "tensor"]
    if not tensors:
        return "no tensor argument"
    uniform = sorted({t[0] for t in rule.dtypes if len(set(t)) == 1 and _dtype(t[0]) is not None})
    if not uniform:
        return "no valid call with one dtype the generator knows for every tensor"
    out_dtypes: list[DType | None] = []
    for _, dtype in rule.outputs:
        if dtype in tensors:
            out_dtypes.append(None)  # the operand dtype variable
        elif _dtype(dtype) is not None:
            out_dtypes.append(_dtype(dtype))
        else:
            return f"output dtype {dtype} is not one the generator knows"
    attrs: dict[str, AttrDomain] = {}
    layout: list[int | str] = []
    kwargs: list[tuple[str, str]] = []
    fixed: list[tuple[str, Any]] = []
    operand = 0
    for prefix, slot in slots:
        positional = _positional(rule, prefix)
        if slot.kind == "tensor":
            layout.append(operand)
            operand += 1
            continue
        if slot.kind == "int":
            lo, hi = rule.ranges.get(prefix, (0, 4))
            attrs[prefix] = IntAttr(int(lo), int(hi))
        elif slot.kind == "ints":
            bounds = [rule.ranges[k] for k in rule.ranges if k.startswith(prefix + "_")]
            lo = min((b[0] for b in bounds), default=0)
            hi = max((b[1] for b in bounds), default=4)
            attrs[prefix] = IntsAttr(_FixedLength(int(slot.length or 0)), int(lo), int(hi))
        elif slot.kind == "float":
            lo_f, hi_f = rule.floats.get(prefix, (0.5, 0.5))
            attrs[prefix] = FloatAttr(float(lo_f), float(hi_f) if hi_f > lo_f else float(lo_f) + 1e-3)
        elif slot.kind in ("str", "bool"):
            attrs[prefix] = Choice((slot.value,))
        elif slot.kind == "none" and not positional:
            fixed.append((prefix, None))
            continue
        else:
            return f"a {slot.kind} argument ({prefix}) is not generated yet"
        if positional:
            layout.append(prefix)
        else:
            kwargs.append((prefix, prefix))
    shapes_out = [[parse(e) for e in shape] for shape, _ in rule.outputs]
    requires = [parse(r) for r in rule.requires]
    ranges = dict(rule.ranges)

    def infer(shapes: Sequence[Shape], attr_values: Mapping[str, Any]) -> Sequence[Shape]:
        env = _symbol_env(rule, shapes, attr_values)
        return [tuple(e.evaluate(env) for e in shape) for shape in shapes_out]

    def require(shapes: Sequence[Shape], attr_values: Mapping[str, Any]) -> Iterable[SymBool]:
        env = _symbol_env(rule, shapes, attr_values)
        out: list[SymBool] = [r.evaluate(env) for r in requires]
        for name, value in env.items():  # stay inside what the traces showed valid
            if name in ranges:
                lo, hi = ranges[name]
                out += [value >= lo, value <= min(hi, max(lo, _DIM_CAP))]
        for shape in infer(shapes, attr_values):
            out += [d >= 1 for d in shape]
        return out

    operands = tuple(Operand(p, ranks=(s.rank,)) for p, s in slots if s.kind == "tensor")
    call = Call(api_rules.api, kwargs=tuple(kwargs), fixed=tuple(fixed), layout=tuple(layout))
    missing_other = Missing(f"rule-backed {framework} API: runs on {framework} backends only")
    lowerings: dict[str, Any] = {"torch": missing_other, "tf": missing_other}
    lowerings[_FIELDS[framework]] = call
    dtype_vector = tuple(out_dtypes)
    return OpSpec(
        name=op_name(rule.signature),
        operands=operands,
        dtypes=frozenset(d for d in (_dtype(n) for n in uniform) if d is not None),
        infer=infer,
        reference=FrameworkReference(call, framework, infer),
        torch=lowerings["torch"],
        tf=lowerings["tf"],
        attrs=attrs,
        requires=require,
        out_dtypes=(lambda t, a: [t if d is None else d for d in dtype_vector]) if any(dtype_vector) else None,
        onnx=Missing("rule-backed API: no ONNX lowering"),
        doc=f"inferred from {rule.traces.get('valid', 0)} valid and {rule.traces.get('invalid', 0)} invalid traces",
    )


def hand_written_apis(catalog: Mapping[str, OpSpec], framework: str) -> set[str]:
    """APIs a hand-written spec lowers to directly; their cross-framework spec wins over rules."""
    field = _FIELDS[framework]
    return {getattr(spec, field).path for spec in catalog.values() if isinstance(getattr(spec, field), Call)}


@dataclass(frozen=True)
class RuleCatalog:
    """Rule-backed operators of one rules directory, and why the others were left out."""

    ops: Mapping[str, OpSpec]
    skipped: Mapping[str, str]  # signature -> reason


def rule_catalog(rules: Iterable[ApiRules], hand_written: Mapping[str, OpSpec]) -> RuleCatalog:
    ops: dict[str, OpSpec] = {}
    skipped: dict[str, str] = {}
    rules = list(rules)
    shadowed = {fw: hand_written_apis(hand_written, fw) for fw in {r.framework for r in rules} if fw in _FIELDS}
    for api_rules in rules:
        for rule in api_rules.rules:
            if api_rules.api in shadowed.get(api_rules.framework, set()):
                skipped[op_name(rule.signature)] = "a hand-written cross-framework spec covers this API"
                continue
            spec = rule_spec(api_rules, rule)
            if isinstance(spec, str):
                skipped[op_name(rule.signature)] = spec
            elif spec.name in hand_written or spec.name in ops:
                skipped[spec.name] = "an operator of this name exists"
            else:
                ops[spec.name] = spec
    return RuleCatalog(MappingProxyType(ops), MappingProxyType(skipped))


def rules_framework(rules: str) -> str:
    """The framework a rules directory (<root>/<framework>/<version>) is for."""
    framework = Path(rules).resolve().parent.name
    if framework not in _FIELDS:
        raise GauntletError(f"rules directory {rules}: expected <root>/<framework>/<version> with framework "
                            f"{' or '.join(sorted(_FIELDS))}")
    return framework


@functools.cache
def catalog_for(rules: str = "") -> Mapping[str, OpSpec]:
    """The catalog a campaign runs on: the hand-written operators, plus the rule-backed
    operators of the rule files in directory `rules` when given."""
    from generators.ops import catalog

    hand_written = catalog()
    if not rules:
        return hand_written
    directory = Path(rules)
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        raise GauntletError(f"rules directory {rules}: no rule files (*.json) there (see `gauntlet infer rules`)")
    rules_framework(rules)
    extra = rule_catalog([read_rules(f) for f in files], hand_written).ops
    return MappingProxyType({**hand_written, **extra})


def api_weights(catalog: Mapping[str, OpSpec]) -> tuple[tuple[str, float], ...]:
    """Generator weights that make every rule-backed API equally likely: an API's signatures
    share one API's weight. Without them an API with 60 signatures would be drawn 60 times
    as often as one with a single signature. The rule-backed operators' total weight stays
    what it is without weights (one per operator), so hand-written ones keep their share."""
    apis: dict[str, list[str]] = {}
    for name, spec in catalog.items():
        if isinstance(spec.reference, FrameworkReference):
            apis.setdefault(spec.reference.call.path, []).append(name)
    per_api = sum(map(len, apis.values())) / max(1, len(apis))
    return tuple((name, per_api / len(names)) for names in apis.values() for name in sorted(names))
