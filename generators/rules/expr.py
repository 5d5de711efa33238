"""The rule expression language: integer terms over symbols (`+ - * // %`, `min`, `max`,
int literals) and comparisons, parsed by recursive descent (never eval) and evaluated on
ints and z3 terms alike through generators.symbolic. Imports no framework."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Union

from generators import symbolic as sym
from generators.errors import GauntletError
from generators.symbolic import SymBool, SymInt

ARITH_OPS = ("+", "-", "*", "//", "%", "min", "max")
COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=")
# Binding strength of the infix operators; min/max are calls and bind like atoms.
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2}
_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(//|==|!=|<=|>=|[-+*%()<>,]))")
_FUNCTIONS = ("min", "max")


@dataclass(frozen=True)
class Sym:
    """A symbol: a tensor dimension (`a0_s1`), an int argument (`stride`), an output dim."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class BinOp:
    """`left op right`; `min` and `max` print as calls."""

    op: str
    left: Node
    right: Node

    def __str__(self) -> str:
        if self.op in _FUNCTIONS:
            return f"{self.op}({self.left}, {self.right})"
        level = _PRECEDENCE[self.op]
        # Left-associative operators: the right child needs parentheses at equal binding too.
        left = _wrap(self.left, _level(self.left) < level)
        right = _wrap(self.right, _level(self.right) <= level)
        return f"{left} {self.op} {right}"


Node = Union[Sym, Const, BinOp]


def _level(node: Node) -> int:
    return _PRECEDENCE[node.op] if isinstance(node, BinOp) and node.op in _PRECEDENCE else 3


def _wrap(node: Node, parens: bool) -> str:
    return f"({node})" if parens else str(node)


class Expr:
    """An integer expression. Equality and hashing are structural."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and self.node == other.node

    def __hash__(self) -> int:
        return hash(self.node)

    def __str__(self) -> str:
        return str(self.node)

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    def evaluate(self, env: Mapping[str, SymInt]) -> SymInt:
        """The value for `env` (symbol -> int or z3 ArithRef). `//` and `%` follow Python on
        ints and z3's Euclidean division on terms: they agree for a positive divisor, which
        inferred rules require. A missing symbol is a GauntletError."""
        return _evaluate(self.node, env)

    def symbols(self) -> frozenset[str]:
        return frozenset(n.name for n in _walk(self.node) if isinstance(n, Sym))

    @property
    def size(self) -> int:
        """Number of nodes (symbols, literals, operators)."""
        return sum(1 for _ in _walk(self.node))

    def divisors(self) -> list[Expr]:
        """The right operands of every `//` and `%`: what must stay positive."""
        return [Expr(n.right) for n in _walk(self.node) if isinstance(n, BinOp) and n.op in ("//", "%")]

    @staticmethod
    def sym(name: str) -> Expr:
        return Expr(Sym(name))

    @staticmethod
    def const(value: int) -> Expr:
        return Expr(Const(int(value)))

    @staticmethod
    def binop(op: str, left: Expr, right: Expr) -> Expr:
        if op not in ARITH_OPS:
            raise ValueError(f"unknown operator {op!r}")
        return Expr(BinOp(op, left.node, right.node))


class Compare(Expr):
    """`left op right` with op in == != < <= > >=: an Expr whose value is a bool (or a z3
    BoolRef), so `parse` serves requires and shapes alike."""

    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Expr, right: Expr) -> None:
        if op not in COMPARE_OPS or isinstance(left, Compare) or isinstance(right, Compare):
            raise ValueError(f"not a comparison: {left} {op} {right}")
        super().__init__(Const(0))  # unused: a comparison is its three fields
        self.op, self.left, self.right = op, left, right

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Compare) and (self.op, self.left, self.right) == (other.op, other.left, other.right)

    def __hash__(self) -> int:
        return hash((self.op, self.left, self.right))

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"

    def __repr__(self) -> str:
        return f"Compare({str(self)!r})"

    def evaluate(self, env: Mapping[str, SymInt]) -> SymBool:
        a, b = self.left.evaluate(env), self.right.evaluate(env)
        if self.op == "==":
            return a == b
        if self.op == "!=":
            return a != b
        if self.op == "<":
            return a < b
        if self.op == "<=":
            return a <= b
        if self.op == ">":
            return a > b
        return a >= b

    def symbols(self) -> frozenset[str]:
        return self.left.symbols() | self.right.symbols()

    @property
    def size(self) -> int:
        return 1 + self.left.size + self.right.size

    def divisors(self) -> list[Expr]:
        return self.left.divisors() + self.right.divisors()


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, BinOp):
        yield from _walk(node.left)
        yield from _walk(node.right)


def _evaluate(node: Node, env: Mapping[str, SymInt]) -> SymInt:
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Sym):
        if node.name not in env:
            raise GauntletError(f"expression symbol {node.name!r} has no value")
        return env[node.name]
    a, b = _evaluate(node.left, env), _evaluate(node.right, env)
    op = node.op
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "//":
        return sym.floordiv(a, b)
    if op == "%":
        return sym.mod(a, b)
    if op == "min":
        return sym.smin(a, b)
    return sym.smax(a, b)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, offset)
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if m is None:
                offset = len(stripped) - len(stripped[pos:].lstrip())
                raise self.error(f"unexpected character {stripped[offset]!r}", offset)
            kind = "int" if m.group(1) else "name" if m.group(2) else "op"
            self.tokens.append((kind, m.group(m.lastindex or 0), m.start(m.lastindex or 0)))
            pos = m.end()
        self.i = 0

    def error(self, message: str, offset: int | None = None) -> GauntletError:
        if offset is None:
            offset = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return GauntletError(f"bad rule expression {self.text!r}: {message} at offset {offset}")

    def peek(self, ahead: int = 0) -> str | None:
        j = self.i + ahead
        return self.tokens[j][1] if j < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str, int]:
        if self.i >= len(self.tokens):
            raise self.error(f"expected {expected!r}" if expected else "unexpected end")
        token = self.tokens[self.i]
        if expected is not None and token[1] != expected:
            raise self.error(f"expected {expected!r}, found {token[1]!r}")
        self.i += 1
        return token

    def done(self) -> None:
        if self.i < len(self.tokens):
            raise self.error(f"unexpected {self.tokens[self.i][1]!r}")

    def sum(self) -> Node:
        node = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = BinOp(op, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "//", "%"):
            op = self.take()[1]
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            if self.i < len(self.tokens) and self.tokens[self.i][0] == "int":
                return Const(-int(self.take()[1]))
            # `-x` means `0 - x`, which is how it prints back.
            return BinOp("-", Const(0), self.unary())
        return self.atom()

    def atom(self) -> Node:
        if self.i >= len(self.tokens):
            raise self.error("unexpected end")
        kind, text, _ = self.tokens[self.i]
        if kind == "int":
            self.take()
            return Const(int(text))
        if kind == "name":
            self.take()
            # min/max are calls only when followed by "(": a keyword argument may be named min.
            if text in _FUNCTIONS and self.peek() == "(":
                self.take("(")
                left = self.sum()
                self.take(",")
                right = self.sum()
                self.take(")")
                return BinOp(text, left, right)
            return Sym(text)
        if text == "(":
            self.take()
            node = self.sum()
            self.take(")")
            return node
        raise self.error(f"unexpected {text!r}")


def parse(text: str) -> Expr:
    """An expression, e.g. `(a0_s2 - a1_s2) // stride + 1`, or a comparison of two, e.g.
    `a0_s1 == a1_s0` (a Compare, which evaluates to a bool)."""
    if not isinstance(text, str):
        raise GauntletError(f"a rule expression must be a string, got {type(text).__name__}")
    parser = _Parser(text)
    if not parser.tokens:
        raise parser.error("empty expression")
    left = parser.sum()
    if parser.peek() in COMPARE_OPS:
        op = parser.take()[1]
        right = parser.sum()
        parser.done()
        return Compare(op, Expr(left), Expr(right))
    parser.done()
    return Expr(left)


def parse_term(text: str) -> Expr:
    """An arithmetic expression; a comparison is an error (output shapes are numbers)."""
    expr = parse(text)
    if isinstance(expr, Compare):
        raise GauntletError(f"bad rule expression {text!r}: expected a number, not a comparison")
    return expr


def parse_compare(text: str) -> Compare:
    """A comparison `expr op expr`; anything else is an error (requires are conditions)."""
    expr = parse(text)
    if not isinstance(expr, Compare):
        raise GauntletError(f"bad rule expression {text!r}: expected a comparison (== != < <= > >=)")
    return expr
