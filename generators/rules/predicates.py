"""Input predicates of one signature: candidate comparison atoms that hold on every valid
trace, a small conjunction of them (equalities, a greedy cover of the invalid traces, what
keeps the output expressions defined), and z3 removal of atoms the others imply.
Imports NumPy and z3 (lazily); no framework."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from generators.rules.expr import Compare, Expr

_DIM = re.compile(r".+_s\d+$")  # tensor dimensions are non-negative; int attributes may not be
_MAX_SUM_SYMBOLS = 12  # sums of two symbols as terms only while that stays cheap (66 sums)
_Z3_TIMEOUT_MS = 200
# Preference among atoms covering equally many invalid traces: plain relations over sums,
# equalities (what shape errors usually need) first.
_OP_RANK = {"==": 0, "<=": 1, "<": 2, "!=": 3}


@dataclass
class Requires:
    """The chosen atoms, and what inference could not explain."""

    atoms: list[Compare] = field(default_factory=list)
    uncovered: int = 0  # invalid traces (with distinct symbols) that no atom rejects
    indistinct: int = 0  # invalid traces whose symbols equal a valid trace's (dtype, values...)
    dropped: int = 0  # atoms removed as implied by the others
    timed_out: bool = False  # the cover stopped at the deadline: the atoms may admit invalid calls


@dataclass(frozen=True)
class _Term:
    expr: Expr
    sum_of: frozenset[str] = frozenset()  # the two symbols of a sum term
    is_const: bool = False


def _terms(names: Sequence[str]) -> list[_Term]:
    terms = [_Term(Expr.sym(n)) for n in names] + [_Term(Expr.const(c), is_const=True) for c in (0, 1)]
    if len(names) <= _MAX_SUM_SYMBOLS:
        terms += [_Term(Expr.binop("+", Expr.sym(a), Expr.sym(b)), frozenset((a, b)))
                  for i, a in enumerate(names) for b in names[i + 1:]]
    return terms


def _term_values(term: _Term, names: Sequence[str], matrix: np.ndarray) -> np.ndarray:
    if term.is_const:
        return np.full(matrix.shape[1], int(str(term.expr)), dtype=np.int64)
    index = {n: i for i, n in enumerate(names)}
    return np.asarray(term.expr.evaluate({n: matrix[index[n]] for n in term.expr.symbols()}), dtype=np.int64)


def candidate_atoms(names: Sequence[str], valid: np.ndarray) -> list[Compare]:
    """For each pair of terms, the strongest of == < <= != that holds on every valid call
    (rows of `valid` are the symbols in `names`, columns the calls)."""
    terms = _terms(names)
    values = np.array([_term_values(t, names, valid) for t in terms]).reshape(len(terms), valid.shape[1])
    out: list[Compare] = []
    for i, a in enumerate(terms):
        for j in range(i + 1, len(terms)):
            b = terms[j]
            if (a.is_const and b.is_const) or (a.sum_of and b.sum_of) or (a.sum_of and b.is_const) \
                    or (b.sum_of and (b.sum_of & a.expr.symbols())):
                continue
            x, y = values[i], values[j]
            # A constant goes on the left of an ordering: `1 <= a0_s0` reads "at least one".
            if (x == y).all():
                out.append(Compare("==", a.expr, b.expr))
            elif (x < y).all():
                out.append(Compare("<", a.expr, b.expr))
            elif (y < x).all():
                out.append(Compare("<", b.expr, a.expr))
            elif (x <= y).all():
                out.append(Compare("<=", a.expr, b.expr))
            elif (y <= x).all():
                out.append(Compare("<=", b.expr, a.expr))
            elif (x != y).all():
                out.append(Compare("!=", a.expr, b.expr))
    return out


def _holds(atom: Compare, names: Sequence[str], matrix: np.ndarray) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    env = {n: matrix[index[n]] for n in atom.symbols()}
    value = atom.evaluate(env)
    return np.broadcast_to(np.asarray(value, dtype=bool), (matrix.shape[1],))


def infer_requires(names: Sequence[str], valid: np.ndarray, invalid: np.ndarray, outputs: Sequence[Expr],
                   ranges: Mapping[str, tuple[int, int]], deadline: float) -> Requires:
    """The conjunction for one signature. Precision (generated calls the framework accepts)
    matters more than breadth, so it keeps (1) every equality between two symbols that
    holds on all valid calls, (2) a greedy set cover of the invalid calls the full
    conjunction of candidate atoms rejects (ranges already reject some: those are free),
    and (3) `0 < d` for every divisor and `0 <= e` for every compound output expression.
    Atoms implied by the others (z3) are dropped."""
    result = Requires()
    atoms = candidate_atoms(names, valid)
    equalities = [a for a in atoms if a.op == "==" and a.left.symbols() and a.right.symbols()
                  and str(a.left) in names and str(a.right) in names]
    index = {n: i for i, n in enumerate(names)}
    # Invalid calls with the symbols of a valid one fail for reasons no atom can see.
    valid_keys = {valid[:, j].tobytes() for j in range(valid.shape[1])}
    distinct = [j for j in range(invalid.shape[1]) if invalid[:, j].tobytes() not in valid_keys]
    result.indistinct = invalid.shape[1] - len(distinct)
    invalid = invalid[:, distinct] if distinct else np.zeros((len(names), 0), dtype=np.int64)
    in_range = np.ones(invalid.shape[1], dtype=bool)
    for name, (lo, hi) in ranges.items():
        if name in index:
            row = invalid[index[name]]
            in_range &= (row >= lo) & (row <= hi)
    rejects = {i: ~_holds(a, names, invalid) & in_range for i, a in enumerate(atoms)}
    reachable = np.zeros(invalid.shape[1], dtype=bool)
    for r in rejects.values():
        reachable |= r
    result.uncovered = int((in_range & ~reachable).sum())
    chosen: list[Compare] = []
    covered = np.zeros(invalid.shape[1], dtype=bool)
    while (reachable & ~covered).any() and time.monotonic() < deadline:
        open_ = ~covered
        best = min(rejects, key=lambda i: (-int((rejects[i] & open_).sum()), _preference(atoms[i])))
        if not (rejects[best] & ~covered).any():
            break
        chosen.append(atoms[best])
        covered |= rejects[best]
    result.timed_out = bool((reachable & ~covered).any() and time.monotonic() >= deadline)
    if (reachable & ~covered).any():
        result.uncovered += int((reachable & ~covered).sum())
    defined: list[Compare] = []
    for expr in outputs:
        for d in expr.divisors():
            if d.symbols():
                defined.append(Compare("<", Expr.const(0), d))
        if expr.size > 1:
            defined.append(Compare("<=", Expr.const(0), expr))
    ordered = _unique(equalities + chosen + defined)
    kept = _drop_implied(ordered, names, deadline)
    result.dropped = len(ordered) - len(kept)
    result.atoms = kept
    return result


def _preference(atom: Compare) -> tuple[int, int, int, str]:
    has_sum = int(atom.left.size > 1 or atom.right.size > 1)
    return (has_sum, _OP_RANK[atom.op], atom.size, str(atom))


def _unique(atoms: Sequence[Compare]) -> list[Compare]:
    seen: set[str] = set()
    out = []
    for a in atoms:
        if str(a) not in seen:
            seen.add(str(a))
            out.append(a)
    return out


def _drop_implied(atoms: Sequence[Compare], names: Sequence[str], deadline: float) -> list[Compare]:
    """Remove, last first, each atom the remaining ones imply (dimensions >= 0 assumed);
    an unknown answer (timeout, nonlinear) keeps the atom."""
    import z3

    ctx = z3.Context()
    env = {n: z3.Int(n, ctx) for n in names}
    background = [env[n] >= 0 for n in names if _DIM.match(n)]
    terms = {str(a): a.evaluate(env) for a in atoms}
    kept = list(atoms)
    for atom in reversed(list(atoms)):
        if time.monotonic() > deadline:
            break
        others = [terms[str(a)] for a in kept if a is not atom]
        solver = z3.Solver(ctx=ctx)
        solver.set("timeout", _Z3_TIMEOUT_MS)
        solver.add(*background, *others, z3.Not(terms[str(atom)]))
        if solver.check() == z3.unsat:
            kept.remove(atom)
    return kept
