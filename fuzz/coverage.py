"""Coverage feedback: workers measure Python line coverage of the frameworks' own code
(compilers, tracers, op layers) with the `coverage` package; the campaign credits new
lines to the operators of the tests that reached them and biases operator choice toward
operators that keep finding new code.
"""

from __future__ import annotations

import importlib.util
import os
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.ir import Graph
from generators.spec import Choice, OpSpec

# Where each framework's Python lives that a generated graph can reach (compilers, tracers,
# decompositions, op wrappers). Native kernels are invisible to Python coverage.
PACKAGES: Mapping[str, tuple[str, ...]] = {
    "torch": ("torch._dynamo", "torch._inductor", "torch.fx", "torch._functorch", "torch._decomp", "torch._refs",
              "torch._prims", "torch._subclasses", "torch.nn", "torch.autograd"),
    "tensorflow": ("tensorflow.python.eager", "tensorflow.python.framework", "tensorflow.python.ops",
                   "tensorflow.python.compiler", "tensorflow.python.autograph"),
}
MEASURE_EVERY_S = 2.0  # reading the collected data costs ~0.2 s per 50k lines


def choice_keys(graph: Graph, catalog: Mapping[str, OpSpec]) -> list[str]:
    """What coverage is credited to for one graph: its operators, and "op.attr=i" for every
    Choice attribute (option index i) its nodes use."""
    keys = list(dict.fromkeys(graph.op_names()))
    for node in graph.nodes:
        for name, domain in catalog[node.op].attrs.items():
            if type(domain) is Choice and name in node.attr_map:
                value = node.attr_map[name]
                index = next((i for i, v in enumerate(domain.values) if type(v) is type(value) and v == value), None)
                if index is not None:
                    keys.append(f"{node.op}.{name}={index}")
    return keys


def choice_domains(catalog: Mapping[str, OpSpec]) -> dict[tuple[str, str], int]:
    """(operator, attribute) -> number of options, for every plain Choice attribute."""
    return {(op, name): len(d.values) for op, spec in catalog.items() for name, d in spec.attrs.items() if type(d) is Choice}


def packages_for(lowerings: Iterable[str]) -> tuple[str, ...]:
    return tuple(p for lowering in sorted(set(lowerings)) for p in PACKAGES.get(lowering, ()))


def line_id(path: str, line: int) -> int:
    """A process-independent id of one source line (Python's str hash is salted per process)."""
    return (zlib.crc32(path.encode()) << 24) | (line & 0xFFFFFF)


def package_files(package: str) -> list[Path]:
    """The Python source files of an installed (sub)package, found without importing it."""
    top, *rest = package.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name is located, not imported
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)), *rest)
    if root.is_dir():
        return sorted(root.rglob("*.py"))
    module = root.with_suffix(".py")
    return [module] if module.is_file() else []


def lines_by_package(line_ids: Iterable[int], packages: Sequence[str]) -> dict[str, int]:
    """How many of `line_ids` (see `line_id`) lie in each package: the id's high bits are the
    checksum of its file's path, matched against the package's files as installed here."""
    owner: dict[int, str] = {}
    for package in packages:
        for path in package_files(package):
            # coverage reports canonical paths; the install may be reached through a link
            for variant in {str(path), os.path.realpath(path)}:
                owner[zlib.crc32(variant.encode())] = package
    counts = dict.fromkeys(packages, 0)
    for i in line_ids:
        found = owner.get(i >> 24)
        if found is not None:
            counts[found] += 1
    return counts


class LineTracker:
    """Runs inside a sandbox worker, after the frameworks are imported (starting the tracer
    before `import torch` crashes the interpreter)."""

    def __init__(self, packages: Sequence[str]) -> None:
        import coverage

        self.cov = coverage.Coverage(source_pkgs=list(packages), data_file=None, config_file=False, branch=False)
        self.cov.set_option("run:disable_warnings", ["module-not-measured", "no-data-collected", "module-not-imported"])
        self.known: dict[str, int] = {}  # file -> lines already reported
        self.window: set[str] = set()  # operators of the tests since the last measurement
        self.last = 0.0
        self.measured = False
        self.cov.start()

    def after_test(self, ops: Iterable[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """New line ids since the last measurement and the operators of the tests that ran
        since then (measured at most every MEASURE_EVERY_S seconds; empty otherwise)."""
        self.window.update(ops)
        now = time.monotonic()
        if now - self.last < MEASURE_EVERY_S:
            return (), ()
        self.last = now
        data = self.cov.get_data()
        new: list[int] = []
        for path in data.measured_files():
            lines = data.lines(path) or []
            if len(lines) != self.known.get(path, 0):
                # Reported ids are re-sent for a grown file; the campaign keeps a set.
                new.extend(line_id(path, n) for n in lines)
                self.known[path] = len(lines)
        # The first measurement holds everything any test reaches (framework set-up paths):
        # counted, but credited to no operator.
        ops_seen = tuple(sorted(self.window)) if self.measured else ()
        self.measured = True
        self.window.clear()
        return tuple(new), ops_seen


@dataclass
class Steering:
    """The campaign side: the set of covered lines, and per operator how many new lines the
    tests using it found. With `steer`, operators that keep finding new lines are drawn
    more often (never less than the base weight, so nothing is starved)."""

    ops: Sequence[str]
    steer: bool
    choices: Mapping[tuple[str, str], int] = field(default_factory=dict)  # Choice attributes: option counts
    covered: set[int] = field(default_factory=set)
    uses: dict[str, int] = field(default_factory=dict)
    gains: dict[str, float] = field(default_factory=dict)
    _weights: tuple[tuple[str, float], ...] = ()
    _choice_weights: tuple[tuple[str, str, tuple[float, ...]], ...] = ()
    _since_update: int = 0

    def add(self, line_ids: Sequence[int], ops: Sequence[str]) -> list[int]:
        """Record one measurement; returns the ids that are new to the campaign."""
        new = [i for i in set(line_ids) if i not in self.covered]
        self.covered.update(new)
        if not ops:
            return new
        gain = len(new)
        for op in ops:
            self.uses[op] = self.uses.get(op, 0) + 1
            self.gains[op] = self.gains.get(op, 0.0) + gain / len(ops)
        self._since_update += 1
        return new

    @property
    def lines(self) -> int:
        return len(self.covered)

    def weights(self) -> tuple[tuple[str, float], ...]:
        """Operator weights for the generator: 1 + 4 x (the operator's new lines per use,
        relative to the best operator's); unexplored operators count as the best."""
        if not self.steer:
            return ()
        if self._since_update < 10 and self._weights:
            return self._weights
        self._since_update = 0
        self._weights = self._relative(list(self.ops))
        self._choice_weights = tuple(
            (op, attr, tuple(w for _, w in weights))
            for (op, attr), n in sorted(self.choices.items())
            if (weights := self._relative([f"{op}.{attr}={i}" for i in range(n)]))
        )
        return self._weights

    def choice_weights(self) -> tuple[tuple[str, str, tuple[float, ...]], ...]:
        """Per Choice attribute, a weight per option, on the same rule as operators
        (computed with `weights()`)."""
        return self._choice_weights if self.steer else ()

    def _relative(self, keys: list[str]) -> tuple[tuple[str, float], ...]:
        """1 + 4 x (new lines per use / the best key's); keys never used count as the best.
        Empty when no key has found anything yet."""
        rates = {k: self.gains.get(k, 0.0) / self.uses[k] for k in keys if self.uses.get(k)}
        best = max(rates.values(), default=0.0)
        if best <= 0:
            return ()
        return tuple((k, round(1.0 + 4.0 * (rates[k] / best if k in rates else 1.0), 3)) for k in keys)


def summary(steering: Steering, packages: Sequence[str] = (), top: int = 10) -> dict[str, Any]:
    """The campaign's coverage figures: covered lines in all and per measured package, and
    the operators whose tests found the most new lines."""
    ranked = sorted(steering.gains.items(), key=lambda kv: -kv[1])[:top]
    return {"lines": steering.lines, "packages": lines_by_package(steering.covered, packages),
            "top_ops": [{"op": op, "new_lines": round(g, 1), "uses": steering.uses.get(op, 0)} for op, g in ranked]}
