"""Output-shape synthesis: the smallest expression over a signature's symbols that equals an
output dimension on every valid trace, by bottom-up enumeration pruned by observational
equivalence (vectorized with NumPy), plus meet-in-the-middle for `+`/`-` and a `N // d + c`
template for the conv/pool family. Pure NumPy; imports no framework and no z3."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from generators.rules.expr import Expr

OPS = ("+", "-", "*", "//", "%", "min", "max")
_COMMUTATIVE = frozenset({"+", "*", "min", "max"})
CONSTANTS = (0, 1, 2, -1)
# Values beyond this are dropped so products of two kept values cannot overflow int64.
_LIMIT = 1 << 31
_CHUNK = 1 << 21  # elements per vectorized block: bounds memory and lets the deadline bite


@dataclass(frozen=True)
class SynthesisLimits:
    max_size: int = 7  # enumerated expression size (nodes); meet-in-the-middle reaches ~2x
    max_bank: int = 400_000  # distinct value vectors kept
    max_columns: int = 64  # distinct symbol vectors enumerated over (all are checked after)


@dataclass
class _Level:
    """One expression size: value vectors, their hashes, and how each was built (leaves are
    Exprs; a composite row i is ops[i] applied to rows left[i] and right[i] of the operand
    levels `sizes`)."""

    values: np.ndarray  # (count, columns) int64
    hashes: np.ndarray  # (count,) uint64
    leaves: list[Expr] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    left: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    right: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class Synthesis:
    """Found expressions by target name, and why the others were not found."""

    found: dict[str, Expr] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    bank: int = 0
    size: int = 0


class _Bank:
    def __init__(self, columns: int, seed: int = 0x5EED) -> None:
        rng = np.random.default_rng(seed)
        # A random linear hash mod 2^64: h(x - y) = h(x) - h(y), which meet-in-the-middle uses.
        self.weights = rng.integers(1, np.iinfo(np.int64).max, size=columns, dtype=np.int64).astype(np.uint64) | 1
        self.levels: dict[int, _Level] = {}
        self.sorted_hashes = np.zeros(0, dtype=np.uint64)
        self.sorted_where = np.zeros((0, 2), dtype=np.int64)  # (level, index) per sorted hash

    def hash(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            hashes: np.ndarray = (values.astype(np.uint64) * self.weights).sum(axis=-1, dtype=np.uint64)
        return hashes

    def count(self) -> int:
        return int(self.sorted_hashes.shape[0])

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Index into the sorted table for each hash, or -1."""
        if self.count() == 0:
            return np.full(hashes.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.sorted_hashes, hashes), self.count() - 1)
        return np.where(self.sorted_hashes[pos] == hashes, pos, -1)

    def add(self, size: int, level: _Level) -> None:
        self.levels[size] = level
        count = level.hashes.shape[0]
        where = np.stack([np.full(count, size), np.arange(count)], axis=1)
        allh = np.concatenate([self.sorted_hashes, level.hashes])
        allw = np.concatenate([self.sorted_where, where])
        order = np.argsort(allh, kind="stable")
        self.sorted_hashes, self.sorted_where = allh[order], allw[order]

    def expr(self, size: int, index: int) -> Expr:
        level = self.levels[size]
        if level.leaves:
            return level.leaves[index]
        op, (la, lb) = level.ops[index], level.sizes[index]
        return Expr.binop(op, self.expr(la, int(level.left[index])), self.expr(lb, int(level.right[index])))

    def values(self, size: int, index: int) -> np.ndarray:
        row: np.ndarray = self.levels[size].values[index]
        return row


def _apply(op: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """op on broadcast blocks; returns (values, ok) where ok marks rows defined everywhere."""
    with np.errstate(all="ignore"):
        if op == "+":
            out = a + b
        elif op == "-":
            out = a - b
        elif op == "*":
            out = a * b
        elif op in ("//", "%"):
            safe = np.where(b > 0, b, 1)
            out = a // safe if op == "//" else a % safe
        elif op == "min":
            out = np.minimum(a, b)
        else:
            out = np.maximum(a, b)
    ok = (np.abs(out) < _LIMIT).all(axis=-1)
    if op in ("//", "%"):
        # Divisors must be positive on every trace: the project's floordiv/mod contract.
        ok &= np.broadcast_to((b > 0).all(axis=-1), ok.shape)
    return out, ok


class Enumerator:
    """Bottom-up enumeration over `columns` (one row per symbol, one column per distinct call)."""

    def __init__(self, names: Sequence[str], columns: np.ndarray, extra_constants: Sequence[int] = (),
                 limits: SynthesisLimits | None = None) -> None:
        self.limits = limits or SynthesisLimits()
        self.width = columns.shape[1]
        self.bank = _Bank(self.width)
        leaves: list[Expr] = [Expr.sym(n) for n in names]
        rows = [np.asarray(columns[i], dtype=np.int64) for i in range(len(names))]
        for c in list(CONSTANTS) + [c for c in extra_constants if c not in CONSTANTS]:
            leaves.append(Expr.const(c))
            rows.append(np.full(self.width, c, dtype=np.int64))
        values = np.array(rows, dtype=np.int64).reshape(len(rows), self.width)
        hashes = self.bank.hash(values)
        _, first = np.unique(hashes, return_index=True)
        first.sort()  # first occurrence wins: symbols before constants, in the given order
        self.bank.add(1, _Level(values[first], hashes[first], leaves=[leaves[i] for i in first]))
        self.size = 1

    def grow(self, deadline: float) -> bool:
        """Enumerate the next size (a binary operator adds 1 to its operands' sizes, so sizes
        are odd); False when the size limit, the bank limit or the deadline stopped it."""
        size = self.size + 2
        if size > self.limits.max_size or self.bank.count() >= self.limits.max_bank:
            return False
        self.size = size
        blocks: list[tuple[np.ndarray, str, int, int, np.ndarray, np.ndarray]] = []
        budget = self.limits.max_bank - self.bank.count()
        complete = True
        # Larger left operands first: `a - b + 1` reads better than `a + (1 - b)`.
        for left in range(size - 2, 0, -2):
            right = size - 1 - left
            if left not in self.bank.levels or right not in self.bank.levels:
                continue
            for op in OPS:
                if op in _COMMUTATIVE and left < right:
                    continue
                complete = self._combine(op, left, right, deadline, blocks, budget) and complete
                if not complete:
                    break
            if not complete:
                break
        self._finish(size, blocks, budget)
        return complete

    def _combine(self, op: str, left: int, right: int, deadline: float,
                 blocks: list[tuple[np.ndarray, str, int, int, np.ndarray, np.ndarray]], budget: int) -> bool:
        a_all, b_all = self.bank.levels[left].values, self.bank.levels[right].values
        b_index = np.arange(b_all.shape[0])
        if op in ("//", "%"):
            b_index = b_index[(b_all > 0).all(axis=1) & ~(b_all == 1).all(axis=1)]
        if op in ("+", "-"):
            # x + -c is x - c and x - -c is x + c: keep the readable form only.
            b_index = b_index[~((b_all < 0).all(axis=1) & (b_all == b_all[:, :1]).all(axis=1))]
        if b_index.size == 0:
            return True
        rows = max(1, _CHUNK // max(1, b_index.size * self.width))
        for start in range(0, a_all.shape[0], rows):
            if time.monotonic() > deadline or sum(b[0].size for b in blocks) >= 4 * budget:
                return False
            grid_a, grid_b = np.meshgrid(np.arange(start, min(start + rows, a_all.shape[0])), b_index, indexing="ij")
            ia, ib = grid_a.ravel(), grid_b.ravel()
            if op in _COMMUTATIVE and left == right:
                keep = ia <= ib
                ia, ib = ia[keep], ib[keep]
            out, ok = _apply(op, a_all[ia], b_all[ib])
            hashes = self.bank.hash(out[ok])
            ia, ib = ia[ok], ib[ok]
            _, first = np.unique(hashes, return_index=True)
            first = first[self.bank.contains(hashes[first]) < 0]
            if first.size:
                first.sort()
                blocks.append((hashes[first], op, left, right, ia[first], ib[first]))
        return True

    def _finish(self, size: int, blocks: list[tuple[np.ndarray, str, int, int, np.ndarray, np.ndarray]],
                budget: int) -> None:
        """Deduplicate a level's candidates across blocks (first wins), keep at most `budget`,
        and recompute their values (only hashes were kept while enumerating)."""
        if not blocks or budget <= 0:
            return
        hashes = np.concatenate([b[0] for b in blocks])
        block_of = np.concatenate([np.full(b[0].size, k) for k, b in enumerate(blocks)])
        row_of = np.concatenate([np.arange(b[0].size) for b in blocks])
        _, first = np.unique(hashes, return_index=True)
        first = np.sort(first)[:budget]
        values, ops, sizes, lefts, rights = [], [], [], [], []
        for k, (_, op, left, right, ia, ib) in enumerate(blocks):
            rows = row_of[first[block_of[first] == k]]
            if rows.size == 0:
                continue
            out, _ = _apply(op, self.bank.levels[left].values[ia[rows]], self.bank.levels[right].values[ib[rows]])
            values.append(out)
            ops += [op] * rows.size
            sizes += [(left, right)] * rows.size
            lefts.append(ia[rows])
            rights.append(ib[rows])
        self.bank.add(size, _Level(np.concatenate(values), hashes[first], ops=ops, sizes=sizes,
                                   left=np.concatenate(lefts), right=np.concatenate(rights)))

    def lookup(self, target: np.ndarray) -> Expr | None:
        pos = self.bank.contains(self.bank.hash(target[None, :]))[0]
        if pos < 0:
            return None
        size, index = self.bank.sorted_where[pos]
        if not np.array_equal(self.bank.values(int(size), int(index)), target):
            return None
        return self.bank.expr(int(size), int(index))

    def meet_in_middle(self, target: np.ndarray) -> Expr | None:
        """The smallest `x + y`, `x - y` with x and y in the bank, or None. The hash is linear,
        so the hashes of target - x for every x come from one subtraction."""
        bank = self.bank
        all_where = bank.sorted_where
        best: tuple[int, str, Expr, Expr] | None = None
        t_hash = bank.hash(target[None, :])[0]
        with np.errstate(over="ignore"):
            candidates = {"+": t_hash - bank.sorted_hashes, "-x": bank.sorted_hashes - t_hash,
                          "x-": t_hash + bank.sorted_hashes}
        for kind, hashes in candidates.items():
            hits = np.nonzero(bank.contains(hashes) >= 0)[0]
            for i in hits[:2000]:
                j = bank.contains(hashes[i:i + 1])[0]
                (sx, ix), (sy, iy) = all_where[i], all_where[j]
                x, y = bank.values(int(sx), int(ix)), bank.values(int(sy), int(iy))
                if kind == "+":
                    ok, left, right, op = np.array_equal(x + y, target), (sx, ix), (sy, iy), "+"
                elif kind == "-x":  # x - target = y  ->  target = x - y
                    ok, left, right, op = np.array_equal(x - y, target), (sx, ix), (sy, iy), "-"
                else:  # target + x = y  ->  target = y - x
                    ok, left, right, op = np.array_equal(y - x, target), (sy, iy), (sx, ix), "-"
                total = int(sx + sy + 1)
                if ok and (best is None or total < best[0]):
                    best = (total, op, bank.expr(int(left[0]), int(left[1])), bank.expr(int(right[0]), int(right[1])))
        return None if best is None else Expr.binop(best[1], best[2], best[3])

    def division(self, target: np.ndarray, deadline: float) -> Expr | None:
        """The smallest `n // d + c` (d a positive leaf symbol, c in 0, 1) with n in the bank:
        the shape of every strided window (conv, pool, unfold)."""
        bank = self.bank
        leaves = bank.levels[1]
        best: tuple[int, Expr] | None = None
        for c in (0, 1):
            q = target - c
            for d_index, d in enumerate(leaves.values):
                if time.monotonic() > deadline:
                    return None
                d_expr = leaves.leaves[d_index]
                if not d_expr.symbols() or not (d > 1).any() or not (d > 0).all():
                    continue
                low, high = q * d, q * d + d
                for size in sorted(bank.levels):
                    if best is not None and size + 3 + 2 * c >= best[0]:
                        break
                    values = bank.levels[size].values
                    ok = np.nonzero(((values >= low) & (values < high)).all(axis=1))[0]
                    if ok.size:
                        n = bank.expr(size, int(ok[0]))
                        expr = Expr.binop("//", n, d_expr)
                        if c:
                            expr = Expr.binop("+", expr, Expr.const(c))
                        best = (expr.size, expr)
                        break
        return None if best is None else best[1]


def synthesize(names: Sequence[str], columns: np.ndarray, targets: Mapping[str, np.ndarray], deadline: float,
               limits: SynthesisLimits | None = None) -> Synthesis:
    """Expressions over `names` (rows of `columns`, one column per distinct call) equal to
    each target vector; the smallest found wins (enumeration size first, then the
    meet-in-the-middle and division templates for what enumeration does not reach)."""
    result = Synthesis()
    constants = sorted({int(t[0]) for t in targets.values() if t.size and (t == t[0]).all()})
    enum = Enumerator(names, columns, constants, limits)
    pending = dict(targets)

    def check() -> None:
        for name, target in list(pending.items()):
            expr = enum.lookup(target)
            if expr is not None:
                result.found[name] = expr
                del pending[name]

    check()
    while pending and enum.grow(deadline):
        check()
    check()
    for name, target in list(pending.items()):
        if time.monotonic() > deadline:
            break
        found = [e for e in (enum.meet_in_middle(target), enum.division(target, deadline)) if e is not None]
        if found:
            result.found[name] = min(found, key=lambda e: (e.size, str(e)))
            del pending[name]
    stop = "the time budget ran out" if time.monotonic() > deadline else (
        f"no expression of size <= {enum.size} (or a sum/difference of two, or n // d + c) fits")
    for name in pending:
        result.missing[name] = stop
    result.bank, result.size = enum.bank.count(), enum.size
    return result
