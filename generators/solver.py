"""The z3 wrapper: every solver is seeded and bounded by a deterministic resource limit
and a wall-clock timeout, so no check can hang and the same seed gives the same model.

Imports z3 lazily; owns nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SolverBudget:
    """Limits for one check. `rlimit` is z3's deterministic step budget (the same on any
    machine, so results replay); `timeout_ms` is a safety net against pathological cases."""

    timeout_ms: int = 2000
    rlimit: int = 2_000_000


class Solver:
    """A seeded z3 solver with `check_with_hints`, which prefers a model close to
    random hints (for diversity) and falls back to any model.

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

    def check_with_hints(self, hints: Iterable[Any]) -> Mapping[str, int] | None:
        """Solve, preferring the hints; returns {variable name: value} or None (unsat or
        out of budget; callers treat both as "this instance does not fit")."""
        z3 = self._z3
        self._solver.push()
        self._solver.add(*hints)
        result = self._solver.check()
        if result != z3.sat:
            self._solver.pop()
            result = self._solver.check()
            if result != z3.sat:
                return None
        model = self._solver.model()
        # Division by a variable adds interpreted functions (div0, mod0) to the model; only
        # constants are our variables.
        values = {d.name(): model[d].as_long() for d in model.decls() if d.arity() == 0}
        return values
