"""VNN-LIB parsing (benchmark files, exact semantics, a random-formula property, errors) and the
VNN-COMP counterexample format."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verify.property import Property
from verify.vnnlib import (
    VnnlibError,
    format_counterexample,
    load_vnnlib,
    parse_counterexample,
    parse_vnnlib,
    write_counterexample,
)

BENCH = Path("/work/shared/benchmarks/vnncomp")
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="VNN-COMP benchmarks not present")


def _files(folder: str) -> list[Path]:
    return sorted((BENCH / folder).glob("*.vnnlib")) if BENCH.is_dir() else []


def _header(n_in: int, n_out: int) -> str:
    return "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in)) + "".join(
        f"(declare-const Y_{j} Real)\n" for j in range(n_out)
    )


def _box(lo: float, hi: float, n_in: int) -> str:
    return "".join(f"(assert (>= X_{i} {lo}))\n(assert (<= X_{i} {hi}))\n" for i in range(n_in))


def _unit(j: int, n: int, scale: float = 1.0) -> np.ndarray:
    e = np.zeros(n)
    e[j] = scale
    return e


# ---------------------------------------------------------------------------------------------
# Every benchmark file parses with the right sizes

TEST_SIZES = {"test_nano": (1, 1), "test_tiny": (1, 1), "test_small": (1, 1), "test_prop": (5, 5)}


@needs_bench
@pytest.mark.parametrize(
    "path",
    _files("test") + _files("acasxu/vnnlib") + _files("mnist_fc/vnnlib"),
    ids=lambda p: f"{p.parent.parent.name}/{p.name}" if p.parent.name == "vnnlib" else p.name,
)
def test_every_benchmark_file_parses(path: Path) -> None:
    prop = load_vnnlib(path)
    if path.parent.name == "test":
        expected = TEST_SIZES[path.stem]
    else:
        expected = (5, 5) if "acasxu" in str(path) else (784, 10)
    assert (prop.n_inputs, prop.n_outputs) == expected
    assert prop.source == str(path)
    assert prop.disjuncts
    for dj in prop.disjuncts:
        assert dj.lower.shape == dj.upper.shape == (prop.n_inputs,)
        assert np.all(np.isfinite(dj.lower)) and np.all(np.isfinite(dj.upper))
        assert np.all(dj.lower <= dj.upper)
        assert dj.C.shape == (dj.d.shape[0], prop.n_outputs) and dj.d.shape[0] >= 1


def test_benchmark_folders_are_all_found() -> None:
    if not BENCH.is_dir():
        pytest.skip("VNN-COMP benchmarks not present")
    assert len(_files("test")) == 4 and len(_files("acasxu/vnnlib")) == 10
    assert len(_files("mnist_fc/vnnlib")) == 30


# ---------------------------------------------------------------------------------------------
# Exact semantics on known files


@needs_bench
def test_test_tiny_box_inside_the_disjunct() -> None:
    prop = load_vnnlib(BENCH / "test/test_tiny.vnnlib")
    (dj,) = prop.disjuncts
    assert dj.lower.tolist() == [-1.0] and dj.upper.tolist() == [1.0]
    # Y_0 >= 100  ->  -Y_0 <= -100
    assert dj.C.tolist() == [[-1.0]] and dj.d.tolist() == [-100.0]
    assert prop.violated_by(np.array([0.5]), np.array([100.0]))
    assert not prop.violated_by(np.array([0.5]), np.array([99.9]))
    assert not prop.violated_by(np.array([1.5]), np.array([200.0]))


@needs_bench
def test_test_nano_top_level_box_and_output() -> None:
    (dj,) = load_vnnlib(BENCH / "test/test_nano.vnnlib").disjuncts
    assert dj.lower.tolist() == [-1.0] and dj.upper.tolist() == [1.0]
    assert dj.C.tolist() == [[1.0]] and dj.d.tolist() == [-1.0]


@needs_bench
def test_test_prop_is_acas_property_3() -> None:
    (dj,) = load_vnnlib(BENCH / "test/test_prop.vnnlib").disjuncts
    assert dj.lower.tolist() == [-0.30353115613746867, -0.009549296585513092, 0.4933803235848431, 0.3, 0.3]
    assert dj.upper.tolist() == [-0.29855281193475053, 0.009549296585513092, 0.49999999998567607, 0.5, 0.5]
    # Y_0 <= Y_j  ->  Y_0 - Y_j <= 0
    expected = np.array([_unit(0, 5) - _unit(j, 5) for j in range(1, 5)])
    np.testing.assert_array_equal(dj.C, expected)
    np.testing.assert_array_equal(dj.d, np.zeros(4))


@needs_bench
def test_acas_prop_1_single_row() -> None:
    prop = load_vnnlib(BENCH / "acasxu/vnnlib/prop_1.vnnlib")
    (dj,) = prop.disjuncts
    assert dj.lower.tolist() == [0.6, -0.5, -0.5, 0.45, -0.5]
    assert dj.upper.tolist() == [0.679857769, 0.5, 0.5, 0.5, -0.45]
    assert dj.C.tolist() == [[-1.0, 0.0, 0.0, 0.0, 0.0]]
    assert dj.d.tolist() == [-3.991125645861615]


@needs_bench
def test_acas_prop_2_several_rows_in_one_disjunct() -> None:
    (dj,) = load_vnnlib(BENCH / "acasxu/vnnlib/prop_2.vnnlib").disjuncts
    # Y_j <= Y_0  ->  Y_j - Y_0 <= 0
    expected = np.array([_unit(j, 5) - _unit(0, 5) for j in range(1, 5)])
    np.testing.assert_array_equal(dj.C, expected)
    np.testing.assert_array_equal(dj.d, np.zeros(4))


@needs_bench
def test_acas_prop_5_top_level_box_with_an_or() -> None:
    prop = load_vnnlib(BENCH / "acasxu/vnnlib/prop_5.vnnlib")
    assert len(prop.disjuncts) == 4
    for j, dj in enumerate(prop.disjuncts):
        np.testing.assert_array_equal(dj.C, [_unit(j, 5) - _unit(4, 5)])
        np.testing.assert_array_equal(dj.lower, prop.disjuncts[0].lower)


@needs_bench
def test_acas_prop_6_two_ors_multiply_out() -> None:
    prop = load_vnnlib(BENCH / "acasxu/vnnlib/prop_6.vnnlib")
    assert len(prop.disjuncts) == 8
    boxes = {(tuple(dj.lower), tuple(dj.upper)) for dj in prop.disjuncts}
    assert len(boxes) == 2
    assert {dj.lower[1] for dj in prop.disjuncts} == {0.11140846, -0.499999896}
    rows = {tuple(dj.C[0]) for dj in prop.disjuncts}
    assert rows == {tuple(_unit(j, 5) - _unit(0, 5)) for j in range(1, 5)}


@needs_bench
def test_acas_prop_7_conjunctions_inside_the_or() -> None:
    prop = load_vnnlib(BENCH / "acasxu/vnnlib/prop_7.vnnlib")
    assert [dj.C.shape for dj in prop.disjuncts] == [(3, 5), (3, 5)]
    for dj, k in zip(prop.disjuncts, (3, 4)):
        np.testing.assert_array_equal(dj.C, [_unit(k, 5) - _unit(j, 5) for j in range(3)])


@needs_bench
@pytest.mark.parametrize("name", ["prop_0_0.03", "prop_7_0.05"])
def test_mnist_robustness_property(name: str) -> None:
    path = BENCH / f"mnist_fc/vnnlib/{name}.vnnlib"
    text = path.read_text()
    label_match = re.search(r"label: (\d+)", text)
    assert label_match is not None
    label, eps = int(label_match.group(1)), float(name.rsplit("_", 1)[1])
    prop = parse_vnnlib(text, str(path))
    assert len(prop.disjuncts) == 9
    others = [j for j in range(10) if j != label]
    for j, dj in zip(others, prop.disjuncts):
        # Y_j >= Y_label  ->  Y_label - Y_j <= 0
        np.testing.assert_array_equal(dj.C, [_unit(label, 10) - _unit(j, 10)])
        np.testing.assert_array_equal(dj.d, [0.0])
        assert np.all(dj.lower >= 0.0) and np.all(dj.upper <= 1.0)
        assert np.all(dj.upper - dj.lower <= 2 * eps + 1e-6)
        np.testing.assert_array_equal(dj.lower, prop.disjuncts[0].lower)
    centre = (prop.disjuncts[0].lower + prop.disjuncts[0].upper) / 2
    y = np.zeros(10)
    y[label] = 1.0
    assert not prop.violated_by(centre, y)
    y[others[3]] = 1.0
    assert prop.violated_by(centre, y)


# ---------------------------------------------------------------------------------------------
# Semantics of the language on small texts


def test_terms_numbers_and_normalisation() -> None:
    text = _header(1, 3) + _box(-1, 1, 1)
    text += "(assert (<= (+ (* 2 Y_0) (* Y_1 -3) (- Y_2) 1.5e0) (- 0.5)))\n"
    text += "(assert (>= (- Y_0 Y_1 .25) -2.5E-1))\n"
    (dj,) = parse_vnnlib(text).disjuncts
    # 2y0 - 3y1 - y2 + 1.5 <= -0.5  ->  [2, -3, -1] . y <= -2
    # -0.25 >= y0 - y1 - 0.25         ->  [-1, 1, 0] . y <= 0
    np.testing.assert_array_equal(dj.C, [[2.0, -3.0, -1.0], [-1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(dj.d, [-2.0, 0.0])


def test_scaled_input_bounds_and_intersection() -> None:
    text = _header(2, 1) + (
        "(assert (<= (* 2 X_0) 1))\n(assert (>= (* X_0 -4) 2))\n(assert (<= X_0 0.75))\n"
        "(assert (>= (+ X_1 1) 0))\n(assert (>= X_1 -2))\n(assert (<= (- X_1) 3))\n"
        "(assert (<= X_1 (+ 1 2)))\n(assert (<= X_0 1))\n(assert (>= X_0 -3))\n(assert (>= Y_0 0))"
    )
    (dj,) = parse_vnnlib(text).disjuncts
    # X_0: <= 0.5, <= -0.5 (-4 X_0 >= 2), <= 0.75, <= 1, >= -3.  X_1: >= -1, >= -2, >= -3, <= 3.
    assert dj.upper.tolist() == [-0.5, 3.0]
    assert dj.lower.tolist() == [-3.0, -1.0]


def test_chained_and_equality_atoms() -> None:
    text = _header(1, 2) + "(assert (<= -1 X_0 1))\n(assert (= Y_0 Y_1))"
    (dj,) = parse_vnnlib(text).disjuncts
    assert dj.lower.tolist() == [-1.0] and dj.upper.tolist() == [1.0]
    np.testing.assert_array_equal(dj.C, [[1.0, -1.0], [-1.0, 1.0]])


def test_constant_atoms_true_dropped_false_makes_disjunct_infeasible() -> None:
    head = _header(1, 1) + _box(0, 1, 1)
    prop = parse_vnnlib(head + "(assert (or (and (<= 1 2) (>= Y_0 3)) (and (<= 2 1) (>= Y_0 4))))")
    (dj,) = prop.disjuncts
    assert dj.d.tolist() == [-3.0]
    assert parse_vnnlib(head + "(assert (>= (* 0 Y_0) 1))").disjuncts == ()
    # A true constant atom alone leaves no rows: every output in the box is unsafe.
    (dj,) = parse_vnnlib(head + "(assert (<= (- Y_0 Y_0) 0))").disjuncts
    assert dj.C.shape == (0, 1) and dj.d.shape == (0,)


def test_empty_box_disjunct_is_dropped_and_empty_or_is_false() -> None:
    head = _header(1, 1) + _box(0, 1, 1)
    prop = parse_vnnlib(head + "(assert (or (and (>= X_0 2) (>= Y_0 1)) (and (<= X_0 0.5) (>= Y_0 2))))")
    (dj,) = prop.disjuncts
    assert dj.upper.tolist() == [0.5] and dj.d.tolist() == [-2.0]
    assert parse_vnnlib(head + "(assert (or))").disjuncts == ()
    assert len(parse_vnnlib(head + "(assert (and))").disjuncts) == 1


def test_comments_whitespace_and_harmless_smtlib_commands() -> None:
    text = "; header\n(set-logic QF_LRA)\n" + _header(1, 1).replace("\n", " ; c\n\t")
    text += "(assert(<= X_0 1))(assert (>= X_0 0));x\n(assert (>= Y_0 0))\n(check-sat)\n(get-model)\n(exit)"
    (dj,) = parse_vnnlib(text).disjuncts
    assert dj.upper.tolist() == [1.0]


def test_the_dnf_cap() -> None:
    ors = "".join(f"(assert (or (>= Y_0 {k}) (<= Y_0 {-k})))\n" for k in range(17))
    with pytest.raises(VnnlibError, match="too large: .* more than 100000 disjuncts"):
        parse_vnnlib(_header(1, 1) + _box(0, 1, 1) + ors)
    prop = parse_vnnlib(_header(1, 1) + _box(0, 1, 1) + ors[: ors.index("(assert", 200)])
    assert len(prop.disjuncts) == 2 ** ors[: ors.index("(assert", 200)].count("(assert")
    with pytest.raises(VnnlibError, match=r"<string>:\d+:\d+: the property is too large"):
        parse_vnnlib(
            _header(1, 1) + _box(0, 1, 1) + "(assert (or (>= Y_0 1) (>= Y_0 2) (>= Y_0 3)))", max_disjuncts=2
        )


# ---------------------------------------------------------------------------------------------
# Errors

H = _header(1, 1)
ERRORS = [
    (H + "(assert (< X_0 1))", r"f\.vnnlib:3:10: strict inequality '<' is not part of VNN-LIB 1\.0"),
    (H + "(assert (> Y_0 1))", r"3:10: strict inequality '>'"),
    (H + "(assert (<= X_1 1))", r"3:13: unknown variable X_1 \(not declared\)"),
    (
        H + "(declare-const X_0 Real)",
        r"3:16: duplicate declaration of X_0 \(first declared at f\.vnnlib:1:16\)",
    ),
    (
        "(declare-const X_0 Real)\n(declare-const X_2 Real)\n(declare-const Y_0 Real)",
        r"2:16: X_2 is declared but X_1 is not",
    ),
    (H + "(assert (<= X_0 1)", r"3:1: unbalanced parentheses: this '\(' is never closed"),
    (H + "(assert (<= X_0 1)))", r"3:20: unbalanced parentheses: unexpected '\)'"),
    (H + "(assert (<= (* Y_0 Y_0) 1))", r"3:13: nonlinear term"),
    (H + "(assert (<= X_0 Y_0))", r"3:9: linear constraints over inputs are not supported"),
    (_header(2, 1) + "(assert (<= (+ X_0 X_1) 1))", r"linear constraints over inputs are not supported"),
    (H + "(assert (<= X_0 1))\n(assert (>= Y_0 0))", r"1:16: input X_0 has no lower bound"),
    (
        H + "(assert (or (and (<= X_0 1) (>= X_0 0)) (and (<= X_0 1) (>= Y_0 0))))",
        r"1:16: input X_0 has no lower bound in disjunct 2 of 2",
    ),
    ("(declare-const X_0 Int)", r"1:20: expected sort Real, got 'Int'"),
    ("(declare-const Z_0 Real)", r"1:16: expected a variable named X_<index> or Y_<index>, got 'Z_0'"),
    ("(declare-const X_01 Real)", r"expected a variable named X_<index>"),
    (H + "(assert (foo X_0 1))", r"3:10: expected 'and', 'or', '<=' or '>=', got 'foo'"),
    (H + "(assert (<= X_0 1e999))", r"3:17: number 1e999 is out of the float64 range"),
    (H + "(assert (<= X_0 inf))", r"3:17: expected a number or a declared variable, got 'inf'"),
    (H + "(assert (<= (/ X_0 2) 1))", r"3:14: expected a term"),
    (H + "(assert (<= X_0))", r"3:9: '<=' needs at least two terms"),
    (H + "(assert X_0)", r"3:9: expected a formula"),
    (H + "(assert (<= X_0 1) (<= X_0 2))", r"3:1: expected \(assert <formula>\)"),
    (H + "(define-fun f () Real 1)", r"3:2: expected 'declare-const' or 'assert'"),
    (H + "assert", r"3:1: expected a command"),
    ("(declare-const X_0 Real)(assert (>= X_0 0))(assert (<= X_0 1))", r"f\.vnnlib: no Y variables declared"),
    ("(declare-const Y_0 Real)", r"no X variables declared"),
]


@pytest.mark.parametrize(("text", "pattern"), ERRORS)
def test_errors_name_the_place_and_the_problem(text: str, pattern: str) -> None:
    with pytest.raises(VnnlibError, match=pattern):
        parse_vnnlib(text, "f.vnnlib")


def test_load_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(VnnlibError, match="nope.vnnlib: cannot read VNN-LIB file"):
        load_vnnlib(tmp_path / "nope.vnnlib")
    with pytest.raises(VnnlibError, match="cannot read VNN-LIB file"):
        load_vnnlib(tmp_path)
    bad = tmp_path / "bad.vnnlib"
    bad.write_bytes(b"\xff\xfe(")
    with pytest.raises(VnnlibError, match="cannot read"):
        load_vnnlib(bad)
    bad.write_text(H + "(assert (< X_0 1))")
    with pytest.raises(VnnlibError, match=re.escape(f"{bad}:3:10: strict")):
        load_vnnlib(bad)


# ---------------------------------------------------------------------------------------------
# Random formulas: the parsed Property agrees with evaluating the formula directly.
# All numbers are multiples of 1/4 and coefficients small (powers of two on inputs), so both
# sides compute exactly and points on a constraint's boundary are compared exactly too.

Env = tuple[np.ndarray, np.ndarray]
Term = tuple[str, Callable[[Env], float]]
Formula = tuple[str, Callable[[Env], bool]]


@st.composite
def constants(draw: st.DrawFn) -> Term:
    value = draw(st.integers(-12, 12)) / 4
    style = draw(st.sampled_from(["repr", "sci", "neg", "int"]))
    if style == "sci":
        text = f"{int(value * 100)}e-2"
    elif style == "neg" and value < 0:
        text = f"(- {-value!r})"
    elif style == "int" and value.is_integer():
        text = str(int(value))
    else:
        text = repr(value)
    return text, lambda env: value


def input_terms(n_in: int) -> st.SearchStrategy[Term]:
    @st.composite
    def build(draw: st.DrawFn) -> Term:
        i = draw(st.integers(0, n_in - 1))
        a = draw(st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 4.0]))
        style = draw(st.integers(0, 2))
        if a == 1.0:
            text = f"X_{i}"
        elif a == -1.0 and style == 0:
            text = f"(- X_{i})"
        else:
            text = f"(* {a!r} X_{i})" if style else f"(* X_{i} {a!r})"
        if draw(st.booleans()):
            c_text, c = draw(constants())
            return f"(+ {text} {c_text})", lambda env: a * env[0][i] + c(env)
        return text, lambda env: a * env[0][i]

    return build()


def output_terms(n_out: int) -> st.SearchStrategy[Term]:
    @st.composite
    def build(draw: st.DrawFn) -> Term:
        parts = draw(
            st.lists(st.tuples(st.integers(0, n_out - 1), st.integers(-3, 3)), min_size=1, max_size=3)
        )
        texts = [f"Y_{j}" if c == 1 else f"(* {c} Y_{j})" for j, c in parts]
        c_text, c = draw(constants())
        sign = draw(st.sampled_from(["+", "-"]))
        # (- a b c) subtracts every term after the first; evaluate it that way too.
        text = f"({sign} {' '.join(texts)} {c_text})"

        def value(env: Env) -> float:
            vals = [k * float(env[1][j]) for j, k in parts] + [c(env)]
            return vals[0] + (sum(vals[1:]) if sign == "+" else -sum(vals[1:]))

        return text, value

    return build()


def atoms(n_in: int, n_out: int) -> st.SearchStrategy[Formula]:
    @st.composite
    def build(draw: st.DrawFn) -> Formula:
        kind = draw(st.sampled_from(["input", "output", "output", "output", "constant"]))
        if kind == "input":
            left, right = draw(input_terms(n_in)), draw(constants())
            if draw(st.booleans()):
                left, right = right, left
        elif kind == "output":
            left, right = draw(output_terms(n_out)), draw(st.one_of(output_terms(n_out), constants()))
        else:
            left, right = draw(constants()), draw(constants())
        op = draw(st.sampled_from(["<=", ">="]))
        (lt, lf), (rt, rf) = left, right
        if op == "<=":
            return f"({op} {lt} {rt})", lambda env: lf(env) <= rf(env)
        return f"({op} {lt} {rt})", lambda env: lf(env) >= rf(env)

    return build()


def formulas(n_in: int, n_out: int) -> st.SearchStrategy[Formula]:
    def combine(children: st.SearchStrategy[Formula]) -> st.SearchStrategy[Formula]:
        @st.composite
        def build(draw: st.DrawFn) -> Formula:
            op = draw(st.sampled_from(["and", "or"]))
            parts = draw(st.lists(children, min_size=1, max_size=3))
            text = f"({op} {' '.join(t for t, _ in parts)})"
            fns = [f for _, f in parts]
            if op == "and":
                return text, lambda env: all(f(env) for f in fns)
            return text, lambda env: any(f(env) for f in fns)

        return build()

    return st.recursive(atoms(n_in, n_out), combine, max_leaves=8)


@dataclass(frozen=True)
class Problem:
    text: str
    direct: Callable[[Env], bool]
    n_in: int
    n_out: int
    lo: np.ndarray  # the global input box
    hi: np.ndarray
    seed: int


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lo = np.array(draw(st.lists(st.integers(-8, 4), min_size=n_in, max_size=n_in))) / 4
    hi = lo + np.array(draw(st.lists(st.integers(0, 6), min_size=n_in, max_size=n_in))) / 4
    asserts = draw(st.lists(formulas(n_in, n_out), min_size=1, max_size=3))
    lines = [_header(n_in, n_out)]
    # The global box is split between top-level asserts and, at random, an `and` that also
    # holds the first formula, so boxes end up both outside and inside disjuncts.
    box_atoms = [f"(>= X_{i} {float(lo[i])!r}) (<= X_{i} {float(hi[i])!r})" for i in range(n_in)]
    if draw(st.booleans()):
        lines.append(f"(assert (and {' '.join(box_atoms)} {asserts[0][0]}))")
    else:
        lines += [f"(assert (and {b}))" for b in box_atoms] + [f"(assert {asserts[0][0]})"]
    lines += [f"(assert {t})" for t, _ in asserts[1:]]
    fns = [f for _, f in asserts]

    def direct(env: Env) -> bool:
        x = env[0]
        return bool(np.all(x >= lo) and np.all(x <= hi)) and all(f(env) for f in fns)

    return Problem("\n".join(lines), direct, n_in, n_out, lo, hi, draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=150, deadline=None)
@given(problems())
def test_random_formulas_agree_with_direct_evaluation(problem: Problem) -> None:
    prop = parse_vnnlib(problem.text)
    assert isinstance(prop, Property) and (prop.n_inputs, prop.n_outputs) == (problem.n_in, problem.n_out)
    rng = np.random.default_rng(problem.seed)
    # Points on the 1/4 grid in and just around the global box, where the disjuncts' own
    # bounds and their boundaries are.
    lo, hi = (problem.lo * 4).astype(int) - 1, (problem.hi * 4).astype(int) + 1
    for _ in range(40):
        x = rng.integers(lo, hi + 1) / 4
        y = rng.integers(-14, 15, size=problem.n_out) / 4
        assert prop.violated_by(x, y) == problem.direct((x, y)), (problem.text, x, y)


# ---------------------------------------------------------------------------------------------
# Counterexamples

floats = st.floats(allow_nan=False, allow_infinity=False)


@given(
    hnp.arrays(np.float64, st.integers(1, 6), elements=floats),
    hnp.arrays(np.float64, st.integers(1, 4), elements=floats),
)
def test_counterexample_round_trip(x: np.ndarray, y: np.ndarray) -> None:
    text = format_counterexample(x, y)
    got_x, got_y = parse_counterexample(text)
    assert got_x.tobytes() == x.tobytes() and got_y.tobytes() == y.tobytes()  # -0.0 included


def test_counterexample_layout_and_file(tmp_path: Path) -> None:
    x = np.array([[0.1, -2.0]])
    text = format_counterexample(x, np.array([1e-300]))
    assert text == "sat\n((X_0 0.1)\n (X_1 -2.0)\n (Y_0 1e-300))\n"
    path = tmp_path / "ce.txt"
    write_counterexample(path, x, np.array([3.0]))
    got_x, got_y = parse_counterexample(path.read_text())
    assert got_x.tolist() == [0.1, -2.0] and got_y.tolist() == [3.0]


def test_counterexample_parsing_is_tolerant() -> None:
    x, y = parse_counterexample("  ( (Y_0   1.5) (X_1 (- 0.5))\n\n(X_0 -1e-3) )  ")
    assert x.tolist() == [-0.001, -0.5] and y.tolist() == [1.5]
    x, y = parse_counterexample("sat\r\n((X_0 1)\r\n(Y_0 2))\r\n")
    assert x.tolist() == [1.0] and y.tolist() == [2.0]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("unsat", r"not a counterexample: the result is 'unsat'"),
        ("sat\n((X_0 1) (X_2 1) (Y_0 1))", r"X_1 is missing"),
        ("sat\n((X_0 1) (X_0 2) (Y_0 1))", r"2:11: X_0 is given twice"),
        ("sat\n((X_0 1) (Y_0 nan))", r"2:15: expected a number"),
        ("sat\n((X_0 1) (Z_0 1))", r"expected a variable named"),
        ("sat\n((X_0 1) (Y_0 1)", r"never closed"),
        ("sat", r"expected one list"),
        ("sat\n((X_0 1))", r"ce.txt: the counterexample gives no Y values"),
    ],
)
def test_counterexample_errors(text: str, pattern: str) -> None:
    with pytest.raises(VnnlibError, match=pattern):
        parse_counterexample(text, "ce.txt")


def test_non_finite_counterexamples_are_refused() -> None:
    with pytest.raises(VnnlibError, match="must be finite"):
        format_counterexample(np.array([np.nan]), np.array([0.0]))
