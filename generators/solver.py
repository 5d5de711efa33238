"""The z3 wrapper: every solver is seeded and bounded by a deterministic resource limit
and a wall-clock timeout, so no check can hang and the same seed gives the same model.

Imports z3 lazily; owns nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SolverBudget:
    """Limits for one check. `rlimit` is z3's deterministic step budget (the same on any
    machine, so results replay); `timeout_ms` is a safety net against pathological cases."""

    timeout_ms: int = 2000
    rlimit: int = 2_000_000


class Solver:
    """A seeded z3 solver with `solve_near`, which returns the assignment closest to random
    targets (for diversity) that the constraints allow, deterministically.

    z3's choices depend on the history of terms in its context, so callers pass a context
    whose history is itself determined by their seed (the generator uses one per graph);
    a process-wide context would make the model depend on everything solved before."""

    def __init__(self, seed: int, ctx: Any, budget: SolverBudget | None = None) -> None:
        import z3

        budget = budget or SolverBudget()
        self._z3 = z3
        self.ctx = ctx
        self._solver = z3.SolverFor("QF_NIA", ctx=self.ctx)
        self._solver.set(
            "timeout", budget.timeout_ms, "rlimit", budget.rlimit, "random_seed", seed % (2**31)
        )

    def add(self, constraints: Iterable[Any]) -> None:
        for c in constraints:
            if isinstance(c, bool):
                c = self._z3.BoolVal(c, self.ctx)
            self._solver.add(c)

    def _sat(self, *extra: Any) -> bool:
        self._solver.push()
        self._solver.add(*extra)
        result = bool(self._solver.check() == self._z3.sat)
        self._solver.pop()
        return result

    def solve_near(self, targets: Sequence[tuple[Any, int, int, int]]) -> Mapping[str, int] | None:
        """Values for the integer variables, each as close to its target as the constraints
        allow, or None (unsat or out of budget: "this instance does not fit").

        The result is a function of the constraints and the targets alone, never of which
        model z3 happens to return: z3's models can differ between two fresh contexts of one
        process (its symbol table is global), and the same seed must give the same graph.
        `targets` holds (variable, lo, hi, target) in a fixed order; variables are pinned one
        after the other to the feasible value nearest the target (ties: the lower one).
        """
        z3 = self._z3
        if self._sat(*(v == t for v, _, _, t in targets)):
            return {str(v): t for v, _, _, t in targets}
        if not self._sat():
            return None
        values: dict[str, int] = {}
        for v, lo, hi, t in targets:
            t = min(max(t, lo), hi)
            if self._sat(v == t):
                chosen = t
            else:
                # Any model's value m is feasible, so the nearest feasible value lies within
                # |m - t| of t: search only there (the answer does not depend on m).
                self._solver.check()
                m = self._solver.model().eval(v, model_completion=True).as_long()
                reach = abs(m - t)
                below = self._extreme(v, max(lo, t - reach), t - 1, lowest=False)
                above = self._extreme(v, t + 1, min(hi, t + reach), lowest=True)
                options = [x for x in (below, above) if x is not None]
                if not options:
                    return None  # only reachable when the budget ran out mid-search
                chosen = min(options, key=lambda x: (abs(x - t), x))
            self._solver.add(v == chosen)
            values[str(v)] = chosen
        return values if self._solver.check() == z3.sat else None

    def _extreme(self, v: Any, lo: int, hi: int, lowest: bool) -> int | None:
        """The lowest (or highest) feasible value of v in [lo, hi], by bisection."""
        if lo > hi or not self._sat(v >= lo, v <= hi):
            return None
        while lo < hi:
            if lowest:
                mid = (lo + hi) // 2
                if self._sat(v >= lo, v <= mid):
                    hi = mid
                else:
                    lo = mid + 1
            else:
                mid = (lo + hi + 1) // 2
                if self._sat(v >= mid, v <= hi):
                    lo = mid
                else:
                    hi = mid - 1
        return lo
