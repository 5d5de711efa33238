"""API traces: one recorded framework call (its arguments as shapes, dtypes and attribute
values; valid with output shapes, or the error), the symbols rules are written over, and
the JSON Lines files traces are kept in."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

from generators.errors import GauntletError

ArgKind = Literal["tensor", "int", "float", "bool", "str", "ints", "none", "dtype"]
Scalar = Union[int, float, bool, str, tuple[int, ...], None]
KINDS: frozenset[str] = frozenset({"tensor", "int", "float", "bool", "str", "ints", "none", "dtype"})


@dataclass(frozen=True)
class Arg:
    """One argument (or output). A tensor has `shape` and `dtype` (the framework's dtype name,
    e.g. float32, complex64); every other kind has `value` (for `dtype`, the dtype's name)."""

    kind: ArgKind
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    value: Scalar = None

    @staticmethod
    def tensor(shape: Iterable[int], dtype: str) -> Arg:
        return Arg("tensor", tuple(int(d) for d in shape), dtype)

    @property
    def ints(self) -> tuple[int, ...]:
        """The value of an `ints` argument (empty for any other kind)."""
        return tuple(int(v) for v in self.value) if isinstance(self.value, tuple) else ()

    @property
    def rank(self) -> int:
        if self.shape is None:
            raise ValueError(f"a {self.kind} argument has no rank")
        return len(self.shape)

    def slot(self) -> str:
        """What a rule signature keeps of this argument: tensors by rank, int tuples by
        length, strings/bools/dtypes/none by value (they select code paths), numbers by kind."""
        if self.kind == "tensor":
            return f"tensor{self.rank}"
        if self.kind == "ints":
            return f"ints{len(self.ints)}"
        if self.kind in ("str", "bool", "dtype", "none"):
            return f"{self.kind}={self.value}"
        return self.kind

    def to_json(self) -> dict[str, object]:
        if self.kind == "tensor":
            return {"kind": "tensor", "shape": list(self.shape or ()), "dtype": self.dtype}
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"kind": self.kind, "value": value}

    @staticmethod
    def from_json(data: Mapping[str, object]) -> Arg:
        kind = data.get("kind")
        if kind not in KINDS:
            raise GauntletError(f"unknown argument kind {kind!r}")
        if kind == "tensor":
            shape = data.get("shape")
            if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
                raise GauntletError(f"a tensor argument needs a shape of non-negative ints, got {shape!r}")
            return Arg("tensor", tuple(shape), str(data.get("dtype")))
        value = data.get("value")
        if kind == "ints":
            if not isinstance(value, list) or not all(type(v) is int for v in value):
                raise GauntletError(f"an ints argument needs a list of ints, got {value!r}")
            return Arg("ints", value=tuple(value))
        return Arg(kind, value=value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Invocation:
    """A call of `api` (its dotted public name, e.g. torch.nn.functional.conv2d)."""

    api: str
    args: tuple[Arg, ...] = ()
    kwargs: tuple[tuple[str, Arg], ...] = ()  # sorted by name

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", tuple(sorted(self.kwargs)))

    def named(self) -> list[tuple[str, Arg]]:
        """Every argument with its symbol prefix: positional i is `a{i}`, a keyword its name."""
        return [(f"a{i}", a) for i, a in enumerate(self.args)] + list(self.kwargs)

    def signature(self) -> str:
        """The group a rule is inferred for: the API with each argument's slot, e.g.
        `torch.add(tensor2,tensor2,alpha=int)`."""
        parts = [a.slot() for a in self.args] + [f"{k}={a.slot()}" for k, a in self.kwargs]
        return f"{self.api}({','.join(parts)})"

    def tensors(self) -> list[tuple[str, Arg]]:
        return [(name, a) for name, a in self.named() if a.kind == "tensor"]

    def to_json(self) -> dict[str, object]:
        return {"api": self.api, "args": [a.to_json() for a in self.args],
                "kwargs": {k: a.to_json() for k, a in self.kwargs}}


def symbols(invocation: Invocation) -> dict[str, int]:
    """The integer symbols rules are written over, with their values in this call:
    `{p}_s{j}` dimension j of tensor argument p, `{p}` an int argument, `{p}_{j}` element j
    of an int tuple (p = a0, a1, ... for positional arguments, the keyword otherwise)."""
    out: dict[str, int] = {}
    for name, arg in invocation.named():
        if arg.kind == "tensor":
            for j, d in enumerate(arg.shape or ()):
                out[f"{name}_s{j}"] = d
        elif arg.kind == "int" and type(arg.value) is int:
            out[name] = arg.value
        elif arg.kind == "ints":
            for j, v in enumerate(arg.ints):
                out[f"{name}_{j}"] = v
    return out


@dataclass(frozen=True)
class Trace:
    """One recorded call: valid with its outputs, or invalid with the error (type: message)."""

    invocation: Invocation
    valid: bool
    outputs: tuple[Arg, ...] = ()
    error: str = ""
    source: str = ""  # where it came from: opinfo:<name>, doc:<api>, probe, user:<command>

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {**self.invocation.to_json(), "valid": self.valid, "source": self.source}
        if self.valid:
            out["outputs"] = [o.to_json() for o in self.outputs]
        else:
            out["error"] = self.error
        return out

    @staticmethod
    def from_json(data: Mapping[str, object]) -> Trace:
        api = data.get("api")
        args = data.get("args", [])
        kwargs = data.get("kwargs", {})
        if not isinstance(api, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
            raise GauntletError("a trace needs api (str), args (list) and kwargs (object)")
        invocation = Invocation(api, tuple(Arg.from_json(a) for a in args),
                                tuple((str(k), Arg.from_json(a)) for k, a in kwargs.items()))
        outputs = data.get("outputs", [])
        if not isinstance(outputs, list):
            raise GauntletError("trace outputs must be a list")
        return Trace(invocation, bool(data.get("valid")), tuple(Arg.from_json(o) for o in outputs),
                     str(data.get("error", "")), str(data.get("source", "")))


def output_symbols(trace: Trace) -> dict[str, int]:
    """`o{k}_s{j}`: dimension j of tensor output k."""
    return {f"o{k}_s{j}": d for k, o in enumerate(trace.outputs) if o.kind == "tensor"
            for j, d in enumerate(o.shape or ())}


def write_traces(path: Path, traces: Iterable[Trace], append: bool = False) -> int:
    """Write traces as JSON Lines; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("a" if append else "w", encoding="utf-8") as f:
        for t in traces:
            f.write(json.dumps(t.to_json(), separators=(",", ":")) + "\n")
            count += 1
    return count


def read_traces(path: Path) -> Iterator[Trace]:
    """Traces from a JSON Lines file; a malformed line is a user error naming the line."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise GauntletError("not a JSON object")
                yield Trace.from_json(data)
            except (ValueError, GauntletError) as exc:
                raise GauntletError(f"{path}:{number}: not a trace: {exc}") from None
