"""Rule files: the records of inferred rules (ApiRules > SignatureRule > SlotRule) and their
readable JSON under <root>/<framework>/<version>/<api>.json, validated field by field on
read. Imports no framework; never eval or pickle."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.errors import GauntletError
from generators.rules.expr import parse_compare, parse_term

SCHEMA = 1
SLOT_KINDS = ("tensor", "int", "float", "bool", "str", "ints", "none", "dtype")
_VALUE_KINDS = ("str", "bool", "dtype", "none")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")  # api, framework, version: safe as path parts


@dataclass(frozen=True)
class SlotRule:
    """One argument slot: tensors carry `rank`, int tuples `length`, str/bool/dtype/none the
    `value` that selects the code path; int and float only their kind."""

    kind: str
    rank: int | None = None
    length: int | None = None
    value: str | bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "tensor":
            out["rank"] = self.rank
        elif self.kind == "ints":
            out["length"] = self.length
        elif self.kind in _VALUE_KINDS:
            out["value"] = self.value
        return out

    def symbols(self, prefix: str) -> list[str]:
        """The expression symbols this slot provides (see trace.symbols)."""
        if self.kind == "tensor":
            return [f"{prefix}_s{j}" for j in range(self.rank or 0)]
        if self.kind == "ints":
            return [f"{prefix}_{j}" for j in range(self.length or 0)]
        return [prefix] if self.kind == "int" else []


@dataclass(frozen=True)
class SignatureRule:
    """The rule of one signature: its slots, valid dtype tuples, output shapes (expression
    texts) with dtypes, required predicates, observed symbol ranges and float values."""

    signature: str
    args: tuple[SlotRule, ...]
    kwargs: Mapping[str, SlotRule]
    dtypes: tuple[tuple[str, ...], ...]
    outputs: tuple[tuple[tuple[str, ...], str], ...]  # (shape expressions, dtype) per tensor output
    requires: tuple[str, ...]
    ranges: Mapping[str, tuple[int, int]]
    floats: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    traces: Mapping[str, int] = field(default_factory=dict)

    def symbols(self) -> set[str]:
        named = [(f"a{i}", s) for i, s in enumerate(self.args)] + sorted(self.kwargs.items())
        return {name for prefix, slot in named for name in slot.symbols(prefix)}

    def to_json(self) -> dict[str, Any]:
        return {"signature": self.signature, "args": [a.to_json() for a in self.args],
                "kwargs": {k: v.to_json() for k, v in sorted(self.kwargs.items())},
                "dtypes": [list(t) for t in self.dtypes],
                "outputs": [{"shape": list(shape), "dtype": dtype} for shape, dtype in self.outputs],
                "requires": list(self.requires),
                "ranges": {k: [lo, hi] for k, (lo, hi) in sorted(self.ranges.items())},
                "floats": {k: [lo, hi] for k, (lo, hi) in sorted(self.floats.items())},
                "traces": dict(sorted(self.traces.items()))}


@dataclass(frozen=True)
class ApiRules:
    """Every signature rule of one API of one framework version."""

    framework: str
    version: str
    api: str
    provenance: Mapping[str, int]  # trace counts by source prefix (opinfo, doc, probe, user)
    rules: tuple[SignatureRule, ...]

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "framework": self.framework, "version": self.version, "api": self.api,
                "provenance": dict(sorted(self.provenance.items())), "rules": [r.to_json() for r in self.rules]}


def rule_path(root: Path, framework: str, version: str, api: str) -> Path:
    for what, part in (("framework", framework), ("version", version), ("api", api)):
        if not _NAME.match(part) or part.startswith("."):
            raise GauntletError(f"{what} {part!r} cannot name a rule file (letters, digits and _ . + - only)")
    return root / framework / version / f"{api}.json"


def write_rules(root: Path, rules: ApiRules) -> Path:
    """Write `root/<framework>/<version>/<api>.json` (sorted keys, indent 1); returns the path."""
    path = rule_path(Path(root), rules.framework, rules.version, rules.api)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rules.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


class _Reader:
    """Field-by-field validation; every error names the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> GauntletError:
        return GauntletError(f"rule file {self.path}: {where}: {problem}")

    def get(self, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if key not in data:
            raise self.fail(f"{where}{key}", "missing")
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"{where}{key}", f"expected {names}, got {type(value).__name__}")
        return value

    def count(self, value: Any, where: str) -> int:
        if type(value) is not int or value < 0:
            raise self.fail(where, f"expected a non-negative int, got {value!r}")
        return value

    def slot(self, data: Any, where: str) -> SlotRule:
        if not isinstance(data, dict):
            raise self.fail(where, "expected an object")
        kind = self.get(data, "kind", str, f"{where}.")
        if kind not in SLOT_KINDS:
            raise self.fail(f"{where}.kind", f"unknown kind {kind!r}")
        if kind == "tensor":
            return SlotRule(kind, rank=self.count(data.get("rank"), f"{where}.rank"))
        if kind == "ints":
            return SlotRule(kind, length=self.count(data.get("length"), f"{where}.length"))
        if kind in _VALUE_KINDS:
            value = data.get("value")
            if not (value is None or isinstance(value, (str, bool))):
                raise self.fail(f"{where}.value", f"expected a string, bool or null, got {value!r}")
            return SlotRule(kind, value=value)
        return SlotRule(kind)

    def rule(self, data: Any, where: str) -> SignatureRule:
        if not isinstance(data, dict):
            raise self.fail(where, "expected an object")
        w = f"{where}."
        signature = self.get(data, "signature", str, w)
        args = tuple(self.slot(a, f"{w}args[{i}]") for i, a in enumerate(self.get(data, "args", list, w)))
        kwargs = {str(k): self.slot(v, f"{w}kwargs.{k}") for k, v in self.get(data, "kwargs", dict, w).items()}
        tensors = sum(1 for s in list(args) + list(kwargs.values()) if s.kind == "tensor")
        dtypes = []
        for i, t in enumerate(self.get(data, "dtypes", list, w)):
            if not isinstance(t, list) or len(t) != tensors or not all(isinstance(d, str) for d in t):
                raise self.fail(f"{w}dtypes[{i}]", f"expected {tensors} dtype names, got {t!r}")
            dtypes.append(tuple(t))
        rule = SignatureRule(signature, args, kwargs, tuple(dtypes), (), (), {})
        known = rule.symbols()
        outputs = []
        for i, o in enumerate(self.get(data, "outputs", list, w)):
            if not isinstance(o, dict):
                raise self.fail(f"{w}outputs[{i}]", "expected an object")
            shape = self.get(o, "shape", list, f"{w}outputs[{i}].")
            for j, text in enumerate(shape):
                self.expression(text, known, f"{w}outputs[{i}].shape[{j}]", compare=False)
            dtype = self.get(o, "dtype", str, f"{w}outputs[{i}].")
            outputs.append((tuple(shape), dtype))
        requires = self.get(data, "requires", list, w)
        for i, text in enumerate(requires):
            self.expression(text, known, f"{w}requires[{i}]", compare=True)
        ranges = {}
        for name, pair in self.get(data, "ranges", dict, w).items():
            if not (isinstance(pair, list) and len(pair) == 2 and all(type(v) is int for v in pair)
                    and pair[0] <= pair[1]):
                raise self.fail(f"{w}ranges.{name}", f"expected [min, max] ints, got {pair!r}")
            ranges[str(name)] = (pair[0], pair[1])
        floats = {}
        for name, pair in self.get(data, "floats", dict, w).items():
            if not (isinstance(pair, list) and len(pair) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
                    and pair[0] <= pair[1]):
                raise self.fail(f"{w}floats.{name}", f"expected [min, max] finite numbers, got {pair!r}")
            floats[str(name)] = (float(pair[0]), float(pair[1]))
        traces = {str(k): self.count(v, f"{w}traces.{k}") for k, v in self.get(data, "traces", dict, w).items()}
        return SignatureRule(signature, args, kwargs, tuple(dtypes), tuple(outputs), tuple(requires), ranges,
                             floats, traces)

    def expression(self, text: Any, known: set[str], where: str, compare: bool) -> None:
        if not isinstance(text, str):
            raise self.fail(where, f"expected an expression string, got {text!r}")
        try:
            expr = parse_compare(text) if compare else parse_term(text)
        except GauntletError as exc:
            raise self.fail(where, str(exc)) from None
        unknown = sorted(expr.symbols() - known)
        if unknown:
            raise self.fail(where, f"{text!r} uses {', '.join(unknown)}, which the signature's slots do not define")


def read_rules(path: Path) -> ApiRules:
    """An ApiRules from its file; any malformed field is a GauntletError naming file and field."""
    path = Path(path)
    reader = _Reader(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GauntletError(f"rule file {path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise GauntletError(f"rule file {path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise reader.fail("top level", "expected an object")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise reader.fail("schema", f"expected {SCHEMA}, got {schema!r}")
    framework = reader.get(data, "framework", str, "")
    version = reader.get(data, "version", str, "")
    api = reader.get(data, "api", str, "")
    provenance = {str(k): reader.count(v, f"provenance.{k}") for k, v in reader.get(data, "provenance", dict, "").items()}
    rules = tuple(reader.rule(r, f"rules[{i}]") for i, r in enumerate(reader.get(data, "rules", list, "")))
    return ApiRules(framework, version, api, provenance, rules)


def read_rule_dir(root: Path, framework: str, version: str) -> list[ApiRules]:
    """Every rule file of one framework version, sorted by API."""
    directory = Path(root) / framework / version
    if not directory.is_dir():
        raise GauntletError(f"no rules directory {directory}")
    return [read_rules(p) for p in sorted(directory.glob("*.json"))]
