"""VNN-LIB 1.0 property files -> `verify.property.Property`, and VNN-COMP counterexample files.
A hand-written tokenizer and s-expression reader (no eval); imports no framework.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from generators.errors import GauntletError
from verify.property import Disjunct, Property

__all__ = [
    "MAX_DISJUNCTS",
    "VnnlibError",
    "format_counterexample",
    "load_vnnlib",
    "parse_counterexample",
    "parse_vnnlib",
    "write_counterexample",
]

# Past this many disjuncts the DNF is too big for any verifier we run; fail early and clearly.
MAX_DISJUNCTS = 100_000


class VnnlibError(GauntletError):
    """A VNN-LIB or counterexample file is malformed or uses something we do not support."""


# ---------------------------------------------------------------------------------------------
# Tokens and s-expressions

_TOKEN = re.compile(r";[^\n]*|[()]|[^\s();]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_VARIABLE = re.compile(r"([XY])_(0|[1-9]\d*)")


class _Sym:
    """A symbol or number; `pos` is its token's index in the text (see `_Source.where`)."""

    __slots__ = ("text", "pos")

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos


class _List:
    """A parenthesised list; `pos` is the token index of its '('."""

    __slots__ = ("items", "pos")

    def __init__(self, items: list[_Node], pos: int) -> None:
        self.items = items
        self.pos = pos


_Node = Union[_Sym, _List]


class _Source:
    """The text being read, for turning token indices into `file:line:column` in messages.
    Nodes keep token indices, not offsets: the reader can then tokenize with one C-level
    `findall`, and offsets are recovered by tokenizing again only when reporting an error."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name or "<string>"

    def where(self, pos: int | None) -> str:
        if pos is None:
            return self.name
        match = next(itertools.islice(_TOKEN.finditer(self.text), pos, None))
        offset = match.start()
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return f"{self.name}:{line}:{column}"

    def error(self, pos: int | None, message: str) -> VnnlibError:
        return VnnlibError(f"{self.where(pos)}: {message}")


def _read(src: _Source) -> list[_Node]:
    """All top-level s-expressions of `src`, comments dropped."""
    top: list[_Node] = []
    items = top
    open_lists: list[tuple[list[_Node], _List]] = []  # (enclosing items, the open list)
    for i, token in enumerate(_TOKEN.findall(src.text)):
        if token == "(":
            node = _List([], i)
            items.append(node)
            open_lists.append((items, node))
            items = node.items
        elif token == ")":
            if not open_lists:
                raise src.error(i, "unbalanced parentheses: unexpected ')'")
            items = open_lists.pop()[0]
        elif token[0] != ";":
            items.append(_Sym(token, i))
    if open_lists:
        raise src.error(open_lists[-1][1].pos, "unbalanced parentheses: this '(' is never closed")
    return top


def _describe(node: _Node) -> str:
    if isinstance(node, _Sym):
        return repr(node.text)
    head = node.items[0] if node.items else None
    return f"'({head.text} ...)'" if isinstance(head, _Sym) else "a list"


def _number(src: _Source, sym: _Sym) -> float:
    value = float(sym.text)
    if not math.isfinite(value):
        raise src.error(sym.pos, f"number {sym.text} is out of the float64 range")
    return value


# ---------------------------------------------------------------------------------------------
# Linear terms and atoms

_Var = tuple[str, int]  # ("X", i) or ("Y", j)


@dataclass
class _Linear:
    """sum(coefs[v] * v) + const."""

    coefs: dict[_Var, float]
    const: float

    def scaled(self, factor: float) -> _Linear:
        return _Linear({v: c * factor for v, c in self.coefs.items()}, self.const * factor)

    def add(self, other: _Linear, sign: float = 1.0) -> None:
        for v, c in other.coefs.items():
            self.coefs[v] = self.coefs.get(v, 0.0) + sign * c
        self.const += sign * other.const


@dataclass(frozen=True)
class _Bound:
    """X_index <= value (upper) or X_index >= value (lower)."""

    index: int
    upper: bool
    value: float


@dataclass(frozen=True)
class _Row:
    """sum(coefs[j] * Y_j) <= d."""

    coefs: tuple[tuple[int, float], ...]
    d: float


_Atom = Union[_Bound, _Row]
_Dnf = list[tuple[_Atom, ...]]  # a union of conjunctions; [] is false, [()] is true


class _Parser:
    """Declarations seen so far, and the translation of terms and formulas into DNF atoms."""

    def __init__(self, src: _Source, max_disjuncts: int) -> None:
        self.src = src
        self.max_disjuncts = max_disjuncts
        self.variables: dict[str, _Var] = {}
        self.declared_at: dict[_Var, int] = {}

    # -- terms --------------------------------------------------------------------------------
    def term(self, node: _Node) -> _Linear:
        if isinstance(node, _Sym):
            if _NUMBER.fullmatch(node.text):
                return _Linear({}, _number(self.src, node))
            var = self.variables.get(node.text)
            if var is None:
                if _VARIABLE.fullmatch(node.text):
                    raise self.src.error(node.pos, f"unknown variable {node.text} (not declared)")
                raise self.src.error(node.pos, f"expected a number or a declared variable, got {node.text!r}")
            return _Linear({var: 1.0}, 0.0)
        head, args = self.head(node, "a term")
        if head.text in ("+", "-") and args:
            acc = self.term(args[0])
            if head.text == "-" and len(args) == 1:
                return acc.scaled(-1.0)
            for arg in args[1:]:
                acc.add(self.term(arg), 1.0 if head.text == "+" else -1.0)
            return acc
        if head.text == "*" and args:
            factor = 1.0
            variable_part: _Linear | None = None
            for arg in args:
                t = self.term(arg)
                if not any(t.coefs.values()):
                    factor *= t.const
                elif variable_part is None:
                    variable_part = t
                else:
                    raise self.src.error(
                        node.pos, "nonlinear term: '*' needs all factors but one to be constants"
                    )
            return _Linear({}, factor) if variable_part is None else variable_part.scaled(factor)
        if head.text in ("+", "-", "*"):
            raise self.src.error(node.pos, f"'{head.text}' needs at least one argument")
        raise self.src.error(
            head.pos, f"expected a term ('+', '-', '*', a number or a variable), got {head.text!r}"
        )

    def head(self, node: _List, what: str) -> tuple[_Sym, list[_Node]]:
        if not node.items or not isinstance(node.items[0], _Sym):
            raise self.src.error(node.pos, f"expected {what}, got {_describe(node)}")
        return node.items[0], node.items[1:]

    # -- formulas -----------------------------------------------------------------------------
    def formula(self, node: _Node) -> _Dnf:
        """The formula at `node` in disjunctive normal form."""
        if isinstance(node, _Sym):
            raise self.src.error(node.pos, f"expected a formula ('and', 'or', '<=', '>='), got {node.text!r}")
        head, args = self.head(node, "a formula ('and', 'or', '<=', '>=')")
        op = head.text
        if op == "or":
            out: _Dnf = []
            for arg in args:
                out.extend(self.formula(arg))
                self._check_size(len(out), node.pos)
            return out
        if op == "and":
            return self.conjoin([self.formula(arg) for arg in args], node.pos)
        if op in ("<=", ">=", "="):
            if len(args) < 2:
                raise self.src.error(node.pos, f"'{op}' needs at least two terms")
            bound = self._simple_bound(op, args)
            if bound is not None:
                return [(bound,)]
            terms = [self.term(arg) for arg in args]
            atoms: list[_Atom] = []
            feasible = True
            # SMT-LIB chains: (<= a b c) means a <= b and b <= c.
            for left, right in itertools.pairwise(terms):
                if op in ("<=", "="):
                    feasible &= self._atom(left, right, node.pos, atoms)
                if op in (">=", "="):
                    feasible &= self._atom(right, left, node.pos, atoms)
            return [tuple(atoms)] if feasible else []
        if op in ("<", ">"):
            raise self.src.error(
                head.pos, f"strict inequality '{op}' is not part of VNN-LIB 1.0; use '{op}='"
            )
        raise self.src.error(head.pos, f"expected 'and', 'or', '<=' or '>=', got {op!r}")

    def _simple_bound(self, op: str, args: list[_Node]) -> _Bound | None:
        """`(<= X_i c)` or `(>= X_i c)` without building linear terms: input boxes are most of
        a file's atoms (1568 of 1577 in an MNIST property)."""
        if op == "=" or len(args) != 2:
            return None
        var_node, value_node = args
        if not (isinstance(var_node, _Sym) and isinstance(value_node, _Sym)):
            return None
        var = self.variables.get(var_node.text)
        if var is None or var[0] != "X" or not _NUMBER.fullmatch(value_node.text):
            return None
        return _Bound(var[1], op == "<=", _number(self.src, value_node))

    def _atom(self, left: _Linear, right: _Linear, pos: int, out: list[_Atom]) -> bool:
        """Appends `left <= right`, normalised through `left - right <= 0`; False when it is a
        constant atom that is false (a true one appends nothing)."""
        e = _Linear(dict(left.coefs), left.const)
        e.add(right, -1.0)
        coefs = {v: c for v, c in e.coefs.items() if c != 0.0}
        xs = [v for v in coefs if v[0] == "X"]
        if not coefs:
            return e.const <= 0.0
        if xs and (len(coefs) > 1):
            raise self.src.error(
                pos,
                "linear constraints over inputs are not supported "
                "(an atom may bound one X variable, or relate Y variables only)",
            )
        if xs:
            (var,) = xs
            a = coefs[var]
            out.append(_Bound(var[1], a > 0.0, -e.const / a))
        else:
            out.append(_Row(tuple(sorted((v[1], c) for v, c in coefs.items())), -e.const))
        return True

    def conjoin(self, parts: list[_Dnf], pos: int | None) -> _Dnf:
        """The DNF of the conjunction of `parts`."""
        common, rest = self.factor(parts, pos)
        return [common + conj for conj in rest]

    def factor(self, parts: list[_Dnf], pos: int | None) -> tuple[tuple[_Atom, ...], _Dnf]:
        """The conjunction of `parts` as (atoms every disjunct shares, DNF of the rest).
        Single-disjunct parts are merged first so that long lists of bounds cost one
        concatenation, not a product each."""
        common: list[_Atom] = []
        multi: list[_Dnf] = []
        for part in parts:
            if not part:
                return (), []
            if len(part) == 1:
                common.extend(part[0])
            else:
                multi.append(part)
        acc: _Dnf = [()]
        for part in multi:
            self._check_size(len(acc) * len(part), pos)
            acc = [a + b for a in acc for b in part]
        return tuple(common), acc

    def _check_size(self, n: int, pos: int | None) -> None:
        if n > self.max_disjuncts:
            raise self.src.error(
                pos,
                f"the property is too large: its disjunctive normal form has more than "
                f"{self.max_disjuncts} disjuncts",
            )

    # -- commands -----------------------------------------------------------------------------
    def declare(self, node: _List, args: list[_Node]) -> None:
        if len(args) != 2 or not all(isinstance(a, _Sym) for a in args):
            raise self.src.error(node.pos, "expected (declare-const <name> Real)")
        name, sort = args
        assert isinstance(name, _Sym) and isinstance(sort, _Sym)
        if sort.text != "Real":
            raise self.src.error(sort.pos, f"expected sort Real, got {sort.text!r}")
        match = _VARIABLE.fullmatch(name.text)
        if match is None:
            raise self.src.error(
                name.pos, f"expected a variable named X_<index> or Y_<index>, got {name.text!r}"
            )
        if name.text in self.variables:
            first = self.src.where(self.declared_at[self.variables[name.text]])
            raise self.src.error(
                name.pos, f"duplicate declaration of {name.text} (first declared at {first})"
            )
        var = (match.group(1), int(match.group(2)))
        self.variables[name.text] = var
        self.declared_at[var] = name.pos

    def size(self, kind: str) -> int:
        indices = sorted(i for k, i in self.declared_at if k == kind)
        if not indices:
            raise self.src.error(None, f"no {kind} variables declared (expected {kind}_0 ...)")
        for expected, got in enumerate(indices):
            if got != expected:
                raise self.src.error(
                    self.declared_at[(kind, got)],
                    f"{kind}_{got} is declared but {kind}_{expected} is not "
                    f"(indices must run contiguously from {kind}_0)",
                )
        return len(indices)


# SMT-LIB commands that do not change the property; some generators write them.
_IGNORED_COMMANDS = frozenset({"check-sat", "get-model", "exit", "set-logic", "set-info", "set-option"})


def parse_vnnlib(text: str, source: str = "", *, max_disjuncts: int = MAX_DISJUNCTS) -> Property:
    """The unsafe set that VNN-LIB `text` describes, as a union of input boxes with output rows.
    `source` names the text in error messages (usually its path)."""
    src = _Source(text, source)
    parser = _Parser(src, max_disjuncts)
    asserts: list[_Dnf] = []
    for node in _read(src):
        if not isinstance(node, _List):
            raise src.error(node.pos, f"expected a command such as '(assert ...)', got {node.text!r}")
        head, args = parser.head(node, "a command ('declare-const' or 'assert')")
        if head.text == "declare-const":
            parser.declare(node, args)
        elif head.text == "assert":
            if len(args) != 1:
                raise src.error(node.pos, "expected (assert <formula>) with exactly one formula")
            asserts.append(parser.formula(args[0]))
        elif head.text not in _IGNORED_COMMANDS:
            raise src.error(head.pos, f"expected 'declare-const' or 'assert', got {head.text!r}")
    n_inputs, n_outputs = parser.size("X"), parser.size("Y")
    # Top-level bounds (ACAS Xu, MNIST) are shared by every disjunct: compile them once and
    # apply only each disjunct's own atoms on top.
    common, rest = parser.factor(asserts, None)
    base = _compile(common, np.full(n_inputs, -np.inf), np.full(n_inputs, np.inf), [])
    disjuncts: list[Disjunct] = []
    if base is not None:
        for k, conj in enumerate(rest):
            compiled = _compile(conj, base[0].copy(), base[1].copy(), list(base[2]))
            if compiled is None:
                continue
            lower, upper, rows = compiled
            _check_bounded(parser, lower, upper, k, len(rest))
            C = np.zeros((len(rows), n_outputs))
            d = np.empty(len(rows))
            for r, row in enumerate(rows):
                for j, c in row.coefs:
                    C[r, j] = c
                d[r] = row.d
            disjuncts.append(Disjunct(lower, upper, C, d))
    return Property(n_inputs, n_outputs, tuple(disjuncts), source)


def _compile(
    atoms: tuple[_Atom, ...], lower: np.ndarray, upper: np.ndarray, rows: list[_Row]
) -> tuple[np.ndarray, np.ndarray, list[_Row]] | None:
    """Applies `atoms` to the box and row list (in place); None when the box is empty."""
    for atom in atoms:
        if isinstance(atom, _Row):
            rows.append(atom)
        elif atom.upper:
            if atom.value < upper[atom.index]:
                upper[atom.index] = atom.value
        elif atom.value > lower[atom.index]:
            lower[atom.index] = atom.value
    if np.any(lower > upper):
        return None
    return lower, upper, rows


def _check_bounded(parser: _Parser, lower: np.ndarray, upper: np.ndarray, k: int, n: int) -> None:
    for bounds, side in ((lower, "lower"), (upper, "upper")):
        missing = np.flatnonzero(np.isinf(bounds))
        if missing.size:
            i = int(missing[0])
            where = f" in disjunct {k + 1} of {n}" if n > 1 else ""
            raise parser.src.error(
                parser.declared_at[("X", i)],
                f"input X_{i} has no {side} bound{where}; every input needs a finite box",
            )


def load_vnnlib(path: str | Path) -> Property:
    """`parse_vnnlib` on the file at `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise VnnlibError(f"{path}: cannot read VNN-LIB file: {e}") from e
    return parse_vnnlib(text, str(path))


# ---------------------------------------------------------------------------------------------
# Counterexamples (the VNN-COMP result file format)


def format_counterexample(x: np.ndarray, y: np.ndarray) -> str:
    """The VNN-COMP `sat` result text for input `x` and output `y` (both flattened)."""
    xs = np.ravel(np.asarray(x, dtype=np.float64))
    ys = np.ravel(np.asarray(y, dtype=np.float64))
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise VnnlibError("a counterexample must be finite; got NaN or infinity")
    entries = [f"(X_{i} {float(v)!r})" for i, v in enumerate(xs)]
    entries += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(ys)]
    return "sat\n(" + "\n ".join(entries) + ")\n"


def write_counterexample(path: str | Path, x: np.ndarray, y: np.ndarray) -> None:
    """Writes `format_counterexample(x, y)` to `path`."""
    text = format_counterexample(x, y)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise VnnlibError(f"{path}: cannot write counterexample: {e}") from e


def parse_counterexample(text: str, source: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a VNN-COMP `sat` result text; a leading `sat` line is optional, and values
    may be written as `-0.5` or `(- 0.5)`."""
    src = _Source(text, source)
    nodes = _read(src)
    if nodes and isinstance(nodes[0], _Sym):
        if nodes[0].text != "sat":
            raise src.error(nodes[0].pos, f"not a counterexample: the result is {nodes[0].text!r}")
        nodes = nodes[1:]
    if len(nodes) != 1 or not isinstance(nodes[0], _List):
        raise src.error(nodes[0].pos if nodes else None, "expected one list of (X_i value) pairs")
    values: dict[_Var, float] = {}
    for entry in nodes[0].items:
        if not (isinstance(entry, _List) and len(entry.items) == 2 and isinstance(entry.items[0], _Sym)):
            raise src.error(entry.pos, "expected a (<variable> <value>) pair")
        name, value = entry.items
        assert isinstance(name, _Sym)
        match = _VARIABLE.fullmatch(name.text)
        if match is None:
            raise src.error(name.pos, f"expected a variable named X_<index> or Y_<index>, got {name.text!r}")
        var = (match.group(1), int(match.group(2)))
        if var in values:
            raise src.error(name.pos, f"{name.text} is given twice")
        values[var] = _counterexample_value(src, value)
    return _vector(src, values, "X"), _vector(src, values, "Y")


def _counterexample_value(src: _Source, node: _Node) -> float:
    sign = 1.0
    if isinstance(node, _List):
        items = node.items
        if len(items) == 2 and isinstance(items[0], _Sym) and items[0].text == "-":
            sign, node = -1.0, items[1]
    if isinstance(node, _Sym) and _NUMBER.fullmatch(node.text):
        return sign * _number(src, node)
    raise src.error(node.pos, "expected a number")


def _vector(src: _Source, values: dict[_Var, float], kind: str) -> np.ndarray:
    indices = sorted(i for k, i in values if k == kind)
    if not indices:
        raise src.error(None, f"the counterexample gives no {kind} values")
    if indices != list(range(len(indices))):
        missing = next(i for i in range(len(indices) + 1) if i not in set(indices))
        raise src.error(None, f"{kind}_{missing} is missing from the counterexample")
    return np.array([values[(kind, i)] for i in indices], dtype=np.float64)
