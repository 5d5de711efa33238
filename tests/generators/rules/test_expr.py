"""The rule expression language: text round trip, errors, and one meaning on ints and z3."""

from __future__ import annotations

import pytest
import z3
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from generators.errors import GauntletError
from generators.rules.expr import ARITH_OPS, COMPARE_OPS, Compare, Expr, parse, parse_compare, parse_term

NAMES = ("a0_s0", "a1_s1", "stride", "min", "x")


def exprs() -> st.SearchStrategy[Expr]:
    leaves = st.one_of(st.sampled_from(NAMES).map(Expr.sym), st.integers(-5, 9).map(Expr.const))
    return st.recursive(leaves, lambda inner: st.builds(Expr.binop, st.sampled_from(ARITH_OPS), inner, inner),
                        max_leaves=12)


@given(exprs())
def test_text_round_trip(expr: Expr) -> None:
    text = str(expr)
    assert parse(text) == expr
    assert str(parse(text)) == text


@given(exprs(), st.sampled_from(COMPARE_OPS), exprs())
def test_compare_round_trip(left: Expr, op: str, right: Expr) -> None:
    atom = Compare(op, left, right)
    assert parse_compare(str(atom)) == atom
    assert parse(str(atom)) == atom


@settings(max_examples=150, deadline=None)
@given(exprs(), st.fixed_dictionaries({n: st.integers(-6, 12) for n in NAMES}))
def test_ints_and_z3_agree(expr: Expr, env: dict[str, int]) -> None:
    # `//` and `%` share one meaning only for a positive divisor (the rules' contract).
    assume(all(_positive(d, env) for d in expr.divisors()))
    symbols = {n: z3.Int(n) for n in NAMES}
    term = expr.evaluate(symbols)
    concrete = z3.substitute(term, *[(symbols[n], z3.IntVal(v)) for n, v in env.items()]) \
        if isinstance(term, z3.ArithRef) else term
    value = z3.simplify(concrete).as_long() if isinstance(concrete, z3.ArithRef) else concrete
    assert value == expr.evaluate(env)


def _positive(divisor: Expr, env: dict[str, int]) -> bool:
    try:
        return all(_positive(d, env) for d in divisor.divisors()) and divisor.evaluate(env) > 0  # type: ignore[operator]
    except ZeroDivisionError:
        return False


def test_conv_rule_evaluates_and_prints_canonically() -> None:
    expr = parse("(a0_s2 + 2*padding - a1_s2) // stride + 1")
    assert str(expr) == "(a0_s2 + 2 * padding - a1_s2) // stride + 1"
    assert expr.evaluate({"a0_s2": 32, "padding": 1, "a1_s2": 3, "stride": 2}) == 16
    assert expr.symbols() == {"a0_s2", "padding", "a1_s2", "stride"}
    assert expr.size == 11
    assert [str(d) for d in expr.divisors()] == ["stride"]


def test_precedence_and_unary_minus() -> None:
    assert parse("a - (b - c)").evaluate({"a": 5, "b": 3, "c": 1}) == 3
    assert parse("a - b - c").evaluate({"a": 5, "b": 3, "c": 1}) == 1
    assert parse("-a // 2").evaluate({"a": 3}) == -2  # like Python: (-3) // 2
    assert parse("a - -1") == Expr.binop("-", Expr.sym("a"), Expr.const(-1))
    assert parse("min(a, max(b, 2)) % 4").evaluate({"a": 9, "b": 7}) == 3
    # min and max are calls only when followed by "(": a keyword argument may be named so.
    assert parse("min + max").symbols() == {"min", "max"}


def test_comparison_on_ints_and_z3() -> None:
    atom = parse_compare("a0_s1 == a1_s0")
    assert atom.evaluate({"a0_s1": 3, "a1_s0": 3}) is True
    assert atom.evaluate({"a0_s1": 3, "a1_s0": 4}) is False
    x, y = z3.Ints("a0_s1 a1_s0")
    solver = z3.Solver()
    solver.add(atom.evaluate({"a0_s1": x, "a1_s0": y}), x != y)
    assert solver.check() == z3.unsat


@pytest.mark.parametrize("text", ["", "a +", "a $ b", "min(a)", "a b", "(a", "1 < 2 < 3", "a == ", "eval('1')"])
def test_bad_text_is_a_clear_error(text: str) -> None:
    with pytest.raises(GauntletError, match="bad rule expression"):
        parse(text)


def test_missing_symbol_and_wrong_form() -> None:
    with pytest.raises(GauntletError, match="'b' has no value"):
        parse("a + b").evaluate({"a": 1})
    with pytest.raises(GauntletError, match="expected a comparison"):
        parse_compare("a + 1")
    with pytest.raises(GauntletError, match="not a comparison"):
        parse_term("a == b")
    # `parse` reads requires too: a comparison is an Expr whose value is a bool.
    assert isinstance(parse("a0_s0 <= 2 * a1_s0"), Compare)
    assert parse("a0_s0 <= 2 * a1_s0").evaluate({"a0_s0": 5, "a1_s0": 2}) is False
