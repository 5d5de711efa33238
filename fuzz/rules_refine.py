"""Counterexample-guided refinement of inferred rules: calls generated from each rule-backed
operator (the campaign's own instantiation path) run on the framework in sandboxed workers;
a rejected call or a wrong predicted shape becomes a new trace and its API is inferred
again. The same measurement is the precision figure of benchmarks/rules.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fuzz.sandbox import Died, SandboxLimits, WorkerPool
from generators.instantiate import Instantiator, Limits
from generators.rules.catalog import op_name, rule_catalog, rule_invocation, rule_spec
from generators.rules.store import ApiRules
from generators.rules.trace import Invocation, Trace

_LIMITS = Limits(max_dim=16, max_elements=4096, max_rank=6)


@dataclass(frozen=True)
class Sampled:
    """Calls generated from one rule-backed operator, with the output shapes it predicts."""

    api: str
    signature: str
    calls: tuple[Invocation, ...]
    predicted: tuple[tuple[tuple[int, ...], ...], ...]


@dataclass
class Checked:
    """What the framework said of one operator's generated calls."""

    sampled: Sampled
    traces: list[Trace] = field(default_factory=list)
    died: str = ""

    @property
    def accepted(self) -> int:
        return sum(t.valid for t in self.traces)

    @property
    def shapes_right(self) -> int:
        return sum(t.valid and _shapes(t) == p for t, p in zip(self.traces, self.sampled.predicted))

    def counterexamples(self) -> list[Trace]:
        """Rejected calls and accepted calls whose outputs the rule got wrong."""
        return [t for t, p in zip(self.traces, self.sampled.predicted) if not t.valid or _shapes(t) != p]


def _shapes(trace: Trace) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(o.shape or ()) for o in trace.outputs if o.kind == "tensor")


def sample_calls(rules: Sequence[ApiRules], per_op: int, seed: int) -> list[Sampled]:
    """`per_op` calls for every rule that makes an operator (dtypes taken in turn)."""
    usable = rule_catalog(rules, {}).ops  # every rule, also those a hand-written spec shadows
    instantiator = Instantiator(_LIMITS)
    out: list[Sampled] = []
    for api_rules in rules:
        for rule in api_rules.rules:
            if op_name(rule.signature) not in usable:
                continue
            spec = rule_spec(api_rules, rule)
            assert not isinstance(spec, str)
            rng = np.random.default_rng([seed, sum(rule.signature.encode()), len(out)])
            dtypes = sorted(spec.dtypes, key=lambda d: d.value)
            calls, predicted = [], []
            for k in range(per_op):
                instantiator.new_context()
                inst = instantiator.instantiate(spec, rng, [None] * len(spec.operands), dtypes[k % len(dtypes)])
                if inst is not None:
                    calls.append(rule_invocation(api_rules.api, rule, inst))
                    predicted.append(tuple(o.shape for o in inst.outputs))
            if calls:
                out.append(Sampled(api_rules.api, rule.signature, tuple(calls), tuple(predicted)))
    return out


def check_calls(framework: str, sampled: Sequence[Sampled], workers: int,
                progress: Callable[[str], None] | None = None) -> list[Checked]:
    """Run every sampled call on the framework (one sandboxed job per operator)."""
    limits = SandboxLimits(timeout_s=120.0, memory_mb=6144)
    checked = [Checked(s) for s in sampled]
    with WorkerPool("fuzz.rules_collect:worker_run_calls", workers, limits,
                    setup="fuzz.rules_collect:worker_setup", setup_arg=framework) as pool:
        jobs = {pool.submit([c.to_json() for c in s.calls]): k for k, s in enumerate(sampled)}
        for done, (job, result) in enumerate(pool.results(), 1):
            item = checked[jobs[job]]
            if isinstance(result, Died):
                item.died = result.symptom
            else:
                item.traces = [Trace.from_json(t) for t in result]
            if progress and (done % 200 == 0 or done == len(jobs)):
                progress(f"checked {done}/{len(jobs)} rule-backed operators")
    return checked


@dataclass(frozen=True)
class Precision:
    calls: int
    accepted: int
    shapes_right: int
    operators: int
    apis: int

    @property
    def precision(self) -> float:
        return self.accepted / self.calls if self.calls else 0.0

    @property
    def shape_accuracy(self) -> float:
        return self.shapes_right / self.accepted if self.accepted else 0.0


def precision(checked: Sequence[Checked]) -> Precision:
    return Precision(sum(len(c.traces) for c in checked), sum(c.accepted for c in checked),
                     sum(c.shapes_right for c in checked), len(checked), len({c.sampled.api for c in checked}))


def counterexample_traces(checked: Sequence[Checked]) -> list[Trace]:
    """The traces that contradict a rule, as new traces (source "refine")."""
    return [Trace(t.invocation, t.valid, t.outputs, t.error, "refine") for c in checked for t in c.counterexamples()]
