"""Batched compilation: a batchable backend gets the disjoint union of several test graphs,
its outputs are split back per test, findings are re-checked on the graph alone, a union that
fails to compile is bisected, a crash of the union re-runs each test alone, and batches shrink
to what still fits before a campaign's deadline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.execute import BatchJob, CaseJob, CaseResult, WorkerConfig, run_batch_job, run_test, setup
from fuzz.runner import DifferentialRunner, batch_before_deadline
from fuzz.sandbox import SandboxLimits
from generators.graph_gen import GenOptions, GraphGenerator
from generators.ir import disjoint_union, validate
from generators.ops import catalog

FAULTY = str(Path(__file__).with_name("faulty_backends.py"))
OPTIONS = GenOptions(max_nodes=3, ops=("add", "mul", "tanh", "exp", "reshape", "transpose", "sum"))
pytest.importorskip("torch")


def test_the_disjoint_union_is_a_valid_graph_with_outputs_in_order() -> None:
    gen = GraphGenerator(catalog(), OPTIONS)
    graphs = [gen.generate(s) for s in range(4)]
    union = disjoint_union(graphs)
    validate(union)
    assert len(union.nodes) == sum(len(g.nodes) for g in graphs)
    assert [union.type_of(r) for r in union.outputs] == [g.type_of(r) for g in graphs for r in g.outputs]


def test_a_batch_compiles_once_and_judges_each_test_like_alone() -> None:
    state = setup(WorkerConfig(("torch_eager", f"{FAULTY}:EagerBatched")))
    names = ("torch_eager", "eager_batched")
    jobs = tuple(CaseJob(s, OPTIONS, names, gradients=False) for s in range(6))
    cls = type(state.backends["eager_batched"])
    cls.sizes.clear()  # type: ignore[attr-defined]
    batched = run_batch_job(BatchJob(jobs, ("eager_batched",)), lambda stage: None, state)
    live = [r for r in batched if r.verdict is not None]
    assert cls.sizes[0] == sum(len(r.ops) for r in live)  # type: ignore[attr-defined]  # one union
    alone = [run_test(j, lambda stage: None, state) for j in jobs]
    for b, a in zip(batched, alone):
        assert isinstance(a, CaseResult)
        assert (b.seed, b.digest) == (a.seed, a.digest)
        assert (b.verdict.kind if b.verdict else None) == (a.verdict.kind if a.verdict else None) == ("pass" if b.verdict else None)


def test_a_failing_union_is_bisected_so_only_the_failing_graph_runs_alone() -> None:
    state = setup(WorkerConfig(("torch_eager", f"{FAULTY}:BatchedRejectsExp")))
    names = ("torch_eager", "batched_rejects_exp")
    gen = GraphGenerator(catalog(), OPTIONS)
    with_exp = [s for s in range(200) if "exp" in gen.generate(s).op_names()]
    without = [s for s in range(200) if "exp" not in gen.generate(s).op_names()]
    seeds = without[:3] + with_exp[:1] + without[3:7]
    jobs = tuple(CaseJob(s, OPTIONS, names, gradients=False) for s in seeds)
    cls = type(state.backends["batched_rejects_exp"])
    cls.calls.clear()  # type: ignore[attr-defined]
    results = run_batch_job(BatchJob(jobs, ("batched_rejects_exp",)), lambda stage: None, state)

    assert [r.seed for r in results] == seeds
    for r in results:
        assert r.verdict is not None and r.verdict.kind == "pass", r.verdict
        outcome = {o.backend: o for o in r.outcomes}["batched_rejects_exp"]
        assert outcome.status == ("unsupported" if r.seed == with_exp[0] else "ok"), outcome
    calls = cls.calls  # type: ignore[attr-defined]
    # 8 -> 4 + 4 -> 2 + 2 -> 1 + 1: five unions (parts says how many graphs each joins) ...
    assert sorted(parts for parts, _, _ in calls if parts > 1) == [2, 2, 4, 4, 8]
    # ... and alone only the failing graph (then its nodes, one by one, to find the gap) and
    # its last sibling, instead of all eight.
    alone = [has_exp for parts, nodes, has_exp in calls if parts == 1 and nodes > 1]
    assert sorted(alone) == [False, True]


def test_a_finding_that_does_not_reproduce_alone_is_not_reported() -> None:
    state = setup(WorkerConfig(("torch_eager", f"{FAULTY}:WrongOnlyInUnions")))
    names = ("torch_eager", "wrong_only_in_unions")
    jobs = tuple(CaseJob(s, OPTIONS, names, gradients=False) for s in range(6))
    results = run_batch_job(BatchJob(jobs, ("wrong_only_in_unions",)), lambda stage: None, state)
    assert all(r.verdict is None or r.verdict.kind == "pass" for r in results)


def test_a_crash_while_compiling_the_union_reruns_each_test_alone(tmp_path: Path) -> None:
    with DifferentialRunner(["torch_eager", f"{FAULTY}:SegfaultOnUnions"], workers=1, cache=tmp_path,
                            limits=SandboxLimits(timeout_s=20), batch=4) as runner:
        runner.start()
        results = sorted(runner.run(range(8), OPTIONS), key=lambda r: r.seed)
    assert [r.seed for r in results] == list(range(8))
    for r in results:
        assert isinstance(r, CaseResult)
        assert r.verdict is None or r.verdict.kind == "pass", r.verdict
    assert np.sum([r.verdict is not None for r in results]) >= 6


@settings(max_examples=200, deadline=None)
@given(
    batch=st.integers(1, 64),
    remaining=st.floats(0.0, 1e4),
    rate=st.floats(0.0, 100.0),
    workers=st.integers(1, 16),
)
def test_a_batch_near_the_deadline_fits_in_the_time_left(batch: int, remaining: float, rate: float, workers: int) -> None:
    size = batch_before_deadline(batch, remaining, rate, workers)
    assert 1 <= size <= batch
    if rate == 0:
        assert size == batch  # no rate measured yet: nothing to size by
    elif size > 1:
        # behind the batch its worker is running, it still finishes before the deadline
        assert 2 * size / (rate / workers) <= remaining + 1e-9
    if size < batch:
        assert batch_before_deadline(batch, remaining * 2 + 1, rate, workers) >= size  # more time, never smaller


def test_the_runner_sizes_each_job_by_the_batch_size_it_is_given(tmp_path: Path) -> None:
    sizes = iter([3, 3, 1, 1, 5, 99])
    submitted: list[int] = []
    with DifferentialRunner(["torch_eager", f"{FAULTY}:EagerBatched"], workers=1, cache=tmp_path,
                            limits=SandboxLimits(timeout_s=20), batch=4) as runner:
        runner.start()
        submit = runner.pool.submit

        def spy(job: CaseJob | BatchJob) -> int:
            submitted.append(len(job.jobs) if isinstance(job, BatchJob) else 1)
            return submit(job)

        runner.pool.submit = spy  # type: ignore[method-assign]
        results = sorted(runner.run(range(14), OPTIONS, batch_size=lambda: next(sizes)), key=lambda r: r.seed)
    # each answer is capped by the runner's own batch (4); 1 submits a single test
    assert submitted == [3, 3, 1, 1, 4, 2]
    assert [r.seed for r in results] == list(range(14))
    assert all(isinstance(r, CaseResult) and (r.verdict is None or r.verdict.kind == "pass") for r in results)
