"""The torch loader's per-call handlers: signatures of the supported torch functions, Tensor
methods and nn modules, and how each maps onto catalog operators through the loader's Converter.
Imports torch and generators; generators.load.torch only for type checking.
"""

from __future__ import annotations

import builtins
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generators.ir import ValueRef
from generators.load.model import ModelError
from generators.spec import IntsAttr

if TYPE_CHECKING:
    from generators.load.torch import Converter


@dataclass(frozen=True)
class Site:
    """The torch call being converted: a description for errors and its output shape."""

    where: str
    out_shape: tuple[int, ...]


# --- handlers --------------------------------------------------------------------------------
# A handler gets the torch call's arguments bound by name ("input" already a graph value) and
# returns the graph value of its result; Converter._convert then checks that value's shape.

Build = Callable[["Converter", Site, dict[str, Any]], ValueRef]
ModuleBuild = Callable[["Converter", Site, Any, ValueRef], ValueRef]


@dataclass(frozen=True)
class _Signature:
    """A torch signature: names in positional order ("*x" collects the rest, "**" takes any
    keyword), with defaults."""

    names: tuple[str, ...]
    defaults: Mapping[str, Any]


def _sig(*names: str, **defaults: Any) -> _Signature:
    return _Signature((*names, *defaults), defaults)


def bind(s: Site, args: Sequence[Any], kwargs: Mapping[str, Any], sig: _Signature) -> dict[str, Any]:
    names = [n for n in sig.names if n != "**"]
    star = next((n[1:] for n in names if n.startswith("*")), None)
    positional = names[:names.index(f"*{star}")] if star is not None else names
    bound: dict[str, Any] = dict(zip(positional, args))
    if len(args) > len(positional):
        if star is None:
            raise ModelError(f"{s.where}: too many arguments")
        bound[star] = tuple(args[len(positional):])
    for key, value in kwargs.items():
        if key in bound or (key not in names and key != star and "**" not in sig.names):
            raise ModelError(f"{s.where}: argument {key}={value!r} is not supported")
        bound[key] = value
    for key in names:
        if key.startswith("*"):
            bound.setdefault(key[1:], ())
        elif key not in bound:
            if key not in sig.defaults:
                raise ModelError(f"{s.where}: missing argument {key!r}")
            bound[key] = sig.defaults[key]
    return bound


def _ints(value: Any, n: int) -> tuple[int, ...]:
    out = (value,) if isinstance(value, int) else tuple(int(v) for v in value)
    return out * n if len(out) == 1 else out


def _axis(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def _unary(op: str, **attrs_from: str) -> Build:
    """An elementwise catalog operator; `attrs_from` maps its attributes to torch argument names."""
    def build(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
        attrs = {k: float(a[v]) if isinstance(a[v], int) else a[v] for k, v in attrs_from.items()}
        return cv.op(op, [a["input"]], attrs, s)

    return build


def _binary(op: str, swap: bool = False) -> Build:
    def build(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
        if a["rounding_mode"] is not None:
            raise ModelError(f"{s.where}: rounding_mode={a['rounding_mode']!r} is not supported")
        lhs, rhs = (a["other"], a["input"]) if swap else (a["input"], a["other"])
        if a["alpha"] != 1:
            rhs = cv.op("mul", [cv.ref(rhs, s), cv.ref(a["alpha"], s)], {}, s)
        return cv.op(op, [cv.ref(lhs, s), cv.ref(rhs, s)], {}, s)

    return build


def _dropout(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
    if a["training"]:
        raise ModelError(f"{s.where}: dropout with training=True is random; pass training=self.training")
    x: ValueRef = a["input"]
    return x


def _f_batch_norm(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
    if a["training"]:
        raise ModelError(f"{s.where}: batch_norm with training=True uses the batch's statistics")
    return _batch_norm(cv, s, a["input"], a["running_mean"], a["running_var"], a["weight"], a["bias"], a["eps"])


def _h_permute(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
    dims = a["dims"]
    return _permute(cv, s, a["input"], dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)


def _reshape(cv: Converter, s: Site, x: ValueRef) -> ValueRef:
    """view/reshape/flatten/(un)squeeze/unflatten are all row-major reshapes to torch's output
    shape: any catalog operator producing that shape computes the same tensor."""
    shape, target = cv.type_of(x).shape, s.out_shape
    k = len(shape) - len(target)
    for start in range(len(target)) if k > 0 else ():
        if shape[:start] + (int(np.prod(shape[start:start + k + 1])),) + shape[start + k + 1:] == target:
            return cv.op("flatten", [x], {"start": start, "end": start + k}, s)
    for axis in range(len(shape) + 1) if k == -1 else ():
        if shape[:axis] + (1,) + shape[axis:] == target:
            return cv.op("unsqueeze", [x], {"axis": axis}, s)
    if shape == target:
        return x
    if len(shape) > 4:  # the catalog's reshape takes inputs of rank <= 4
        x = cv.op("flatten", [x], {"start": 0, "end": len(shape) - 1}, s)
    return cv.op("reshape", [x], {"out_rank": len(target), "lead": tuple(target[:-1])}, s)


def _permute(cv: Converter, s: Site, x: ValueRef, perm: Sequence[int]) -> ValueRef:
    perm = tuple(_axis(int(p), cv.rank(x)) for p in perm)
    return x if perm == tuple(range(cv.rank(x))) else cv.op("transpose", [x], {"perm": perm}, s)


def _transpose(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
    x: ValueRef = a["input"]
    perm = list(range(cv.rank(x)))
    if len(perm) < 2:  # Tensor.t() of a vector
        return x
    i, j = _axis(a["dim0"], len(perm)), _axis(a["dim1"], len(perm))
    perm[i], perm[j] = perm[j], perm[i]
    return _permute(cv, s, x, perm)


def _getattr(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
    x, rank = a["input"], cv.rank(a["input"])
    if a["name"] == "T":
        return _permute(cv, s, x, range(rank - 1, -1, -1))
    if a["name"] == "mT" and rank >= 2:
        return _permute(cv, s, x, [*range(rank - 2), rank - 1, rank - 2])
    raise unsupported(f"attribute Tensor.{a['name']} ({s.where})")


def _softmax(op: str) -> Build:
    def build(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
        if a["dtype"] is not None:
            raise ModelError(f"{s.where}: dtype= is not supported")
        rank = cv.rank(a["input"])
        dim = (0 if rank in (0, 1, 3) else 1) if a["dim"] is None else a["dim"]  # None: torch's legacy rule
        return cv.op(op, [a["input"]], {"axis": _axis(dim, rank)}, s)

    return build


def _reduce(op: str) -> Build:
    def build(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
        rank = cv.rank(a["input"])
        if a["dtype"] is not None:
            raise ModelError(f"{s.where}: dtype= is not supported")
        axes = tuple(sorted({_axis(d, rank) for d in (range(rank) if a["dim"] is None else _ints(a["dim"], 1))}))
        return cv.op(op, [a["input"]], {"axes": axes, "keepdims": bool(a["keepdim"])}, s)

    return build


def _cat(cv: Converter, s: Site, a: dict[str, Any]) -> ValueRef:
    refs = [cv.ref(t, s) for t in a["tensors"]]
    axis = _axis(a["dim"] if a["axis"] is None else a["axis"], cv.rank(refs[0]))
    while len(refs) > 1:  # the catalog's concat takes 2..4 operands; concatenation is associative
        refs = [cv.op("concat", refs[:4], {"axis": axis}, s), *refs[4:]]
    return refs[0]


def _clamp(cv: Converter, s: Site, x: ValueRef, lo: Any, hi: Any) -> ValueRef:
    """min(max(x, lo), hi) with the narrowest catalog operator that computes it exactly."""
    numbers = all(isinstance(v, (int, float, type(None))) for v in (lo, hi))
    if numbers and lo == 0 and hi is None:
        return cv.op("relu", [x], {}, s)
    if numbers and lo == 0 and hi == 6:
        return cv.op("relu6", [x], {}, s)
    for op, attrs in (("hardtanh", {"min_val": lo, "max_val": hi}), ("clip", {"min": lo, "max": hi})):
        if numbers and lo is not None and hi is not None:
            attrs = {k: float(v) for k, v in attrs.items()}
            if cv.problem(op, [x], attrs) is None:
                return cv.op(op, [x], attrs, s)
    # Outside those domains (or with tensor bounds): max(x, lo) = lo + relu(x - lo) and
    # min(y, hi) = hi - relu(hi - y), exact identities in ReLUs and affine maps, which the
    # verifier handles best.
    if lo is not None:
        x = cv.op("add", [cv.op("relu", [cv.op("sub", [x, cv.ref(lo, s)], {}, s)], {}, s), cv.ref(lo, s)], {}, s)
    if hi is not None:
        x = cv.op("sub", [cv.ref(hi, s), cv.op("relu", [cv.op("sub", [cv.ref(hi, s), x], {}, s)], {}, s)], {}, s)
    return x


def _leaky_relu(cv: Converter, s: Site, x: ValueRef, slope: float) -> ValueRef:
    attrs = {"negative_slope": float(slope)}
    if cv.problem("leaky_relu", [x], attrs) is None:
        return cv.op("leaky_relu", [x], attrs, s)
    # Outside the catalog's slope domain: slope * x + (1 - slope) * relu(x), exactly.
    linear = cv.op("mul", [x, cv.ref(float(slope), s)], {}, s)
    rest = cv.op("mul", [cv.op("relu", [x], {}, s), cv.ref(1.0 - float(slope), s)], {}, s)
    return cv.op("add", [linear, rest], {}, s)


def _linear(cv: Converter, s: Site, x: ValueRef, weight: Any, bias: Any) -> ValueRef:
    params = [weight] if bias is None else [weight, bias]
    return cv.op("linear", [x, *(cv.weight(cv.const(p, "weight and bias", s)) for p in params)], {}, s)


def _conv(cv: Converter, s: Site, x: ValueRef, a: Mapping[str, Any]) -> ValueRef:
    w = cv.const(a["weight"], "weight", s)
    n, padding, mode = w.dim() - 2, a["padding"], a.get("padding_mode", "zeros")
    if cv.rank(x) != n + 2:
        raise ModelError(f"{s.where}: expected a batched input of rank {n + 2}, got rank {cv.rank(x)}")
    if mode not in ("zeros", "reflect", "replicate") or (mode != "zeros" and padding == "same"):
        raise ModelError(f"{s.where}: padding_mode={mode!r} with padding={padding!r} is not supported")
    pads = (0,) * n if isinstance(padding, str) else _ints(padding, n)
    weight = cv.weight(w)
    attrs = {"stride": _ints(a["stride"], n), "dilation": _ints(a["dilation"], n), "groups": int(a["groups"]),
             "same": padding == "same", "pads": () if padding == "same" else pads}
    if any(pads) and (mode != "zeros" or cv.problem(f"conv{n}d", [x, weight], attrs) is not None):
        # Padding first is exact (and zero padding wider than the catalog's conv pads chains pad nodes).
        x = _pad(cv, s, x, [(0, 0), (0, 0), *[(p, p) for p in pads]], "constant" if mode == "zeros" else mode)
        attrs["pads"] = (0,) * n
    out = cv.op(f"conv{n}d", [x, weight], attrs, s)
    if a["bias"] is None:
        return out
    bias = cv.const(a["bias"], "bias", s).reshape(-1, *[1] * n)
    return cv.op("add", [out, cv.weight(bias)], {}, s)


def _pool(kind: str) -> Callable[[Converter, Site, Mapping[str, Any]], ValueRef]:
    def build(cv: Converter, s: Site, a: Mapping[str, Any]) -> ValueRef:
        x = a["input"]
        n = cv.rank(x) - 2
        if n not in (1, 2) or a.get("return_indices") or _ints(a.get("dilation", 1), n) != (1,) * n:
            raise ModelError(f"{s.where}: only batched 1-d/2-d pooling without dilation or indices is supported")
        kernel = _ints(a["kernel_size"], n)
        stride = kernel if a["stride"] in (None, []) else _ints(a["stride"], n)
        padding = _ints(a["padding"], n)
        out = cv.op(f"{kind}_pool{n}d", [x], {"kernel": kernel, "stride": stride, "padding": padding}, s)
        if cv.type_of(out).shape != s.out_shape and a.get("ceil_mode"):
            raise ModelError(f"{s.where}: ceil_mode=True adds a partial window here; the catalog pools in floor mode")
        if kind == "avg" and a.get("divisor_override"):
            return cv.op("mul", [out, cv.ref(float(np.prod(kernel)) / a["divisor_override"], s)], {}, s)
        if kind == "avg" and not a.get("count_include_pad", True) and any(padding):
            # The catalog averages the zero padding in; rescale each window to its real element count.
            ones = torch.ones((1, 1, *cv.type_of(x).shape[2:]), dtype=torch.float64)
            share = getattr(F, f"avg_pool{n}d")(ones, kernel, stride, padding, count_include_pad=True)
            return cv.op("mul", [out, cv.weight(1.0 / share)], {}, s)
        return out

    return build


def _adaptive_avg(cv: Converter, s: Site, x: ValueRef) -> ValueRef:
    spatial_in, spatial_out = cv.type_of(x).shape[2:], s.out_shape[2:]
    if cv.rank(x) == 4 and spatial_out == (1, 1):
        return cv.op("global_avg_pool2d", [x], {}, s)
    if spatial_in == spatial_out:
        return x
    if all(i % o == 0 for i, o in zip(spatial_in, spatial_out)):  # then adaptive pooling is uniform
        kernel = tuple(i // o for i, o in zip(spatial_in, spatial_out))
        return _pool("avg")(cv, s, {"input": x, "kernel_size": kernel, "stride": kernel, "padding": 0})
    raise ModelError(f"{s.where}: adaptive average pooling from {spatial_in} to {spatial_out} has uneven windows")


def _batch_norm(cv: Converter, s: Site, x: ValueRef, mean: Any, var: Any, weight: Any, bias: Any,
                eps: float) -> ValueRef:
    if mean is None or var is None:
        raise ModelError(f"{s.where}: without running statistics batch norm uses the batch's own statistics even "
                         "in eval mode (track_running_stats=False)")
    mean = cv.const(mean, "running mean", s)
    params = [mean, var, torch.ones_like(mean) if weight is None else weight,
              torch.zeros_like(mean) if bias is None else bias]
    return cv.op("batch_norm", [x, *(cv.weight(cv.const(p, "parameters", s)) for p in params)], {"eps": float(eps)}, s)


def _layer_norm(cv: Converter, s: Site, x: ValueRef, shape: Sequence[int], weight: Any, bias: Any,
                eps: float) -> ValueRef:
    params = [torch.ones(tuple(shape)) if weight is None else weight, *([] if bias is None else [bias])]
    return cv.op("layer_norm", [x, *(cv.weight(cv.const(p, "parameters", s)) for p in params)], {"eps": float(eps)}, s)


def _pad(cv: Converter, s: Site, x: ValueRef, widths: Sequence[tuple[int, int]], mode: str) -> ValueRef:
    """Pads dim i by widths[i] = (before, after), for every dim."""
    rank = cv.rank(x)
    k = rank if mode == "constant" else max(0, min(rank - 1, 2))
    if any(w != (0, 0) for w in widths[:rank - k]):
        raise ModelError(f"{s.where}: the catalog's {mode} padding covers only the last {k} dims")
    pads = [int(p) for w in widths[rank - k:] for p in w]
    domain = cv.catalog["pad"].attrs["pads"]
    limit = domain.hi if isinstance(domain, IntsAttr) else 1
    while any(pads):
        # Zero and edge padding compose, so wide padding chains pad nodes within the catalog's
        # per-node limit; reflection does not compose and goes in one node (or fails its domain).
        step = pads if mode == "reflect" else [min(p, limit) for p in pads]
        x = cv.op("pad", [x], {"mode": mode, "pads": tuple(step)}, s)
        pads = [p - q for p, q in zip(pads, step)]
    return x


def _torch_pad(cv: Converter, s: Site, x: ValueRef, pad: Sequence[int], mode: str, value: Any) -> ValueRef:
    if mode not in ("constant", "reflect", "replicate") or value not in (None, 0):
        raise ModelError(f"{s.where}: padding mode {mode!r} with value {value!r} is not supported (the catalog "
                         "pads with zeros, by reflection or by replication)")
    widths = [(0, 0)] * cv.rank(x)
    for i in range(len(pad) // 2):  # torch lists the last dim first
        widths[-1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return _pad(cv, s, x, widths, mode)


_ACTIVATIONS = {"relu6": "relu6", "silu": "silu", "mish": "mish", "hardswish": "hardswish",
                "hardsigmoid": "hardsigmoid", "softsign": "softsign", "tanhshrink": "tanhshrink",
                "logsigmoid": "log_sigmoid", "selu": "selu"}
_INPUT = _sig("input", inplace=False)
_BINARY = _sig("input", "other", alpha=1, rounding_mode=None)
_F_SOFTMAX = _sig("input", dim=None, _stacklevel=3, dtype=None)
_T_SOFTMAX = _sig("input", dim=None, dtype=None)
_REDUCE = _sig("input", dim=None, keepdim=False, dtype=None)
_ANY = _sig("input", "*rest", "**")

# (space-separated names, signature, build): "F." is torch.nn.functional, "Tensor.x" the method x.
_CALLS: tuple[tuple[str, _Signature, Build], ...] = (
    ("torch.relu torch.relu_ F.relu F.relu_ Tensor.relu Tensor.relu_", _INPUT, _unary("relu")),
    ("torch.sigmoid torch.sigmoid_ F.sigmoid Tensor.sigmoid Tensor.sigmoid_", _INPUT, _unary("sigmoid")),
    ("torch.tanh torch.tanh_ F.tanh Tensor.tanh Tensor.tanh_", _INPUT, _unary("tanh")),
    *((f"F.{name}", _INPUT, _unary(op)) for name, op in _ACTIVATIONS.items()),
    ("torch.neg operator.neg Tensor.neg Tensor.neg_", _sig("input"), _unary("neg")),
    ("F.elu", _sig("input", alpha=1.0, inplace=False), _unary("elu", alpha="alpha")),
    ("F.celu", _sig("input", alpha=1.0, inplace=False), _unary("celu", alpha="alpha")),
    ("F.gelu", _sig("input", approximate="none"), _unary("gelu", approximate="approximate")),
    ("F.leaky_relu F.leaky_relu_", _sig("input", negative_slope=0.01, inplace=False),
     lambda cv, s, a: _leaky_relu(cv, s, a["input"], a["negative_slope"])),
    ("F.hardtanh F.hardtanh_", _sig("input", min_val=-1.0, max_val=1.0, inplace=False),
     lambda cv, s, a: _clamp(cv, s, a["input"], a["min_val"], a["max_val"])),
    ("torch.clamp torch.clip torch.clamp_ Tensor.clamp Tensor.clip Tensor.clamp_ Tensor.clip_",
     _sig("input", min=None, max=None), lambda cv, s, a: _clamp(cv, s, a["input"], a["min"], a["max"])),
    ("operator.add operator.iadd torch.add Tensor.add Tensor.add_", _BINARY, _binary("add")),
    ("operator.sub operator.isub torch.sub torch.subtract Tensor.sub Tensor.sub_", _BINARY, _binary("sub")),
    ("torch.rsub", _BINARY, _binary("sub", swap=True)),
    ("operator.mul operator.imul torch.mul torch.multiply Tensor.mul Tensor.mul_", _BINARY, _binary("mul")),
    ("operator.truediv operator.itruediv torch.div torch.divide torch.true_divide Tensor.div Tensor.div_",
     _BINARY, _binary("div")),
    ("operator.matmul torch.matmul torch.mm torch.bmm Tensor.matmul Tensor.mm Tensor.bmm", _sig("input", "other"),
     lambda cv, s, a: cv.op("matmul", [a["input"], cv.ref(a["other"], s)], {}, s)),
    ("F.linear", _sig("input", "weight", bias=None), lambda cv, s, a: _linear(cv, s, a["input"], a["weight"], a["bias"])),
    ("F.conv1d F.conv2d", _sig("input", "weight", bias=None, stride=1, padding=0, dilation=1, groups=1),
     lambda cv, s, a: _conv(cv, s, a["input"], a)),
    ("F.max_pool1d F.max_pool2d", _sig("input", "kernel_size", stride=None, padding=0, dilation=1, ceil_mode=False,
                                        return_indices=False), _pool("max")),
    ("F.avg_pool1d F.avg_pool2d", _sig("input", "kernel_size", stride=None, padding=0, ceil_mode=False,
                                        count_include_pad=True, divisor_override=None), _pool("avg")),
    ("F.adaptive_avg_pool1d F.adaptive_avg_pool2d", _sig("input", "output_size"),
     lambda cv, s, a: _adaptive_avg(cv, s, a["input"])),
    ("F.batch_norm", _sig("input", "running_mean", "running_var", weight=None, bias=None, training=False,
                          momentum=0.1, eps=1e-5), _f_batch_norm),
    ("F.layer_norm", _sig("input", "normalized_shape", weight=None, bias=None, eps=1e-5),
     lambda cv, s, a: _layer_norm(cv, s, a["input"], a["normalized_shape"], a["weight"], a["bias"], a["eps"])),
    ("F.prelu", _sig("input", "weight"),
     lambda cv, s, a: cv.op("prelu", [a["input"], cv.weight(cv.const(a["weight"], "weight", s))], {}, s)),
    ("F.pad", _sig("input", "pad", mode="constant", value=None),
     lambda cv, s, a: _torch_pad(cv, s, a["input"], a["pad"], a["mode"], a["value"])),
    ("F.softmax", _F_SOFTMAX, _softmax("softmax")),
    ("torch.softmax Tensor.softmax", _T_SOFTMAX, _softmax("softmax")),
    ("F.log_softmax", _F_SOFTMAX, _softmax("log_softmax")),
    ("torch.log_softmax Tensor.log_softmax", _T_SOFTMAX, _softmax("log_softmax")),
    ("F.softmin", _F_SOFTMAX, _softmax("softmin")),
    ("torch.mean Tensor.mean", _REDUCE, _reduce("mean")),
    ("torch.sum Tensor.sum", _REDUCE, _reduce("sum")),
    ("torch.cat torch.concat torch.concatenate", _sig("tensors", dim=0, axis=None), _cat),
    ("torch.flatten torch.reshape torch.squeeze torch.unsqueeze torch.unflatten Tensor.flatten Tensor.view "
     "Tensor.reshape Tensor.squeeze Tensor.unsqueeze Tensor.unflatten Tensor.view_as Tensor.reshape_as", _ANY,
     lambda cv, s, a: _reshape(cv, s, a["input"])),
    ("torch.permute Tensor.permute", _sig("input", "*dims"), _h_permute),
    ("torch.transpose torch.t Tensor.transpose Tensor.t", _sig("input", dim0=0, dim1=1), _transpose),
    ("builtins.getattr", _sig("input", "name"), _getattr),
    # Dtype changes are refused by _convert's dtype check; these are then identities.
    ("Tensor.contiguous Tensor.clone Tensor.detach Tensor.float Tensor.double Tensor.to Tensor.type torch.clone",
     _ANY, lambda cv, s, a: a["input"]),
    ("F.dropout F.dropout1d F.dropout2d F.dropout3d", _sig("input", p=0.5, training=True, inplace=False), _dropout),
    ("F.alpha_dropout F.feature_alpha_dropout", _sig("input", p=0.5, training=False, inplace=False), _dropout),
)


def _resolve(name: str) -> Any:
    """A dotted name -> the object, by getattr from a known root (never eval); None if absent."""
    roots: dict[str, Any] = {"torch": torch, "F": F, "operator": operator, "builtins": builtins}
    head, *rest = name.split(".")
    obj: Any = roots[head]
    for part in rest:
        obj = getattr(obj, part, None)
    return obj


@functools.cache
def call_table() -> Mapping[str, tuple[Any, _Signature, Build]]:
    """By registered name: (the function, or the method name for "Tensor.x"), signature, build."""
    out: dict[str, tuple[Any, _Signature, Build]] = {}
    for names, sig, build in _CALLS:
        for name in names.split():
            target = name.removeprefix("Tensor.") if name.startswith("Tensor.") else _resolve(name)
            if target is not None:
                out[name] = (target, sig, build)
    return MappingProxyType(out)


@functools.cache
def dispatch() -> tuple[Mapping[Any, tuple[_Signature, Build]], Mapping[str, tuple[_Signature, Build]]]:
    """(functions by object, methods by name)."""
    functions: dict[Any, tuple[_Signature, Build]] = {}
    methods: dict[Any, tuple[_Signature, Build]] = {}
    for name, (target, sig, build) in call_table().items():
        (methods if name.startswith("Tensor.") else functions)[target] = (sig, build)
    return MappingProxyType(functions), MappingProxyType(methods)


def _m_unary(op: str) -> ModuleBuild:
    return lambda cv, s, m, x: cv.op(op, [x], {}, s)


def _m_pad(mode: str) -> ModuleBuild:
    return lambda cv, s, m, x: _torch_pad(cv, s, x, m.padding, mode, getattr(m, "value", 0))


def _m_softmax(op: str) -> ModuleBuild:
    return lambda cv, s, m, x: _softmax(op)(cv, s, {"input": x, "dim": m.dim, "dtype": None})


_MODULES: tuple[tuple[str, ModuleBuild], ...] = (
    ("Linear", lambda cv, s, m, x: _linear(cv, s, x, m.weight, m.bias)),
    ("Conv1d Conv2d", lambda cv, s, m, x: _conv(cv, s, x, vars(m) | {"weight": m.weight, "bias": m.bias})),
    ("BatchNorm1d BatchNorm2d",
     lambda cv, s, m, x: _batch_norm(cv, s, x, m.running_mean, m.running_var, m.weight, m.bias, m.eps)),
    ("LayerNorm", lambda cv, s, m, x: _layer_norm(cv, s, x, m.normalized_shape, m.weight, m.bias, m.eps)),
    ("MaxPool1d MaxPool2d", lambda cv, s, m, x: _pool("max")(cv, s, vars(m) | {"input": x})),
    ("AvgPool1d AvgPool2d", lambda cv, s, m, x: _pool("avg")(cv, s, vars(m) | {"input": x})),
    ("AdaptiveAvgPool1d AdaptiveAvgPool2d", lambda cv, s, m, x: _adaptive_avg(cv, s, x)),
    ("ReLU", _m_unary("relu")), ("ReLU6", _m_unary("relu6")), ("Sigmoid", _m_unary("sigmoid")),
    ("Tanh", _m_unary("tanh")), ("SiLU", _m_unary("silu")), ("Mish", _m_unary("mish")),
    ("Hardswish", _m_unary("hardswish")), ("Hardsigmoid", _m_unary("hardsigmoid")),
    ("Softsign", _m_unary("softsign")), ("Tanhshrink", _m_unary("tanhshrink")),
    ("LogSigmoid", _m_unary("log_sigmoid")), ("SELU", _m_unary("selu")),
    ("PReLU", lambda cv, s, m, x: cv.op("prelu", [x, cv.weight(m.weight)], {}, s)),
    ("LeakyReLU", lambda cv, s, m, x: _leaky_relu(cv, s, x, m.negative_slope)),
    ("Hardtanh", lambda cv, s, m, x: _clamp(cv, s, x, m.min_val, m.max_val)),
    ("ELU", lambda cv, s, m, x: cv.op("elu", [x], {"alpha": float(m.alpha)}, s)),
    ("CELU", lambda cv, s, m, x: cv.op("celu", [x], {"alpha": float(m.alpha)}, s)),
    ("GELU", lambda cv, s, m, x: cv.op("gelu", [x], {"approximate": m.approximate}, s)),
    ("Softmax", _m_softmax("softmax")), ("LogSoftmax", _m_softmax("log_softmax")), ("Softmin", _m_softmax("softmin")),
    ("Flatten Unflatten", lambda cv, s, m, x: _reshape(cv, s, x)),
    ("Identity Dropout Dropout1d Dropout2d Dropout3d AlphaDropout FeatureAlphaDropout", lambda cv, s, m, x: x),
    ("ZeroPad1d ZeroPad2d ConstantPad1d ConstantPad2d", _m_pad("constant")),
    ("ReflectionPad1d ReflectionPad2d", _m_pad("reflect")),
    ("ReplicationPad1d ReplicationPad2d", _m_pad("replicate")),
)


@functools.cache
def module_table() -> Mapping[type, ModuleBuild]:
    """By exact type: fx keeps torch.nn modules as leaves and traces user subclasses through."""
    return MappingProxyType({getattr(nn, name): build for names, build in _MODULES for name in names.split()})


def unsupported(where: str) -> ModelError:
    modules = sorted(t.__name__ for t in module_table())
    functions = sorted(n for n in call_table() if not n.startswith("Tensor."))
    methods = sorted(n for n in call_table() if n.startswith("Tensor."))
    return ModelError(f"{where} is not supported by the torch loader. Supported modules: {', '.join(modules)}. "
                      f"Functions: {', '.join(functions)}. Tensor methods and attributes: {', '.join(methods)}")
