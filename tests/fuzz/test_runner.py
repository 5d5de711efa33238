"""Differential runs through the real sandbox: each real backend failure (segfault, abort,
hang, memory blow-up, inconsistent rejection, wrong result) becomes a classified finding,
the worker is replaced, and the next test still runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz.execute import CaseResult
from fuzz.runner import DifferentialRunner
from fuzz.sandbox import SandboxLimits
from generators.graph_gen import GenOptions

FAULTY = str(Path(__file__).with_name("faulty_backends.py"))
OPTIONS = GenOptions(max_nodes=3, ops=("exp", "add", "mul", "tanh", "reshape", "transpose"))
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe-cache")


def run(backends: list[str], cache: Path, seeds: list[int], limits: SandboxLimits | None = None) -> Iterator[CaseResult]:
    with DifferentialRunner(backends, workers=1, limits=limits or SandboxLimits(timeout_s=20), cache=cache) as runner:
        runner.start()
        results = sorted(runner.run(seeds, OPTIONS), key=lambda r: r.seed)
        assert all(isinstance(r, CaseResult) for r in results)
        yield from results  # type: ignore[misc]
        run.restarts = runner.pool.restarts  # type: ignore[attr-defined]


def findings(result: CaseResult) -> list[tuple[str, str, tuple[str, ...]]]:
    assert result.verdict is not None
    return [(f.symptom, f.stage, f.backends) for f in result.verdict.findings]


@pytest.mark.parametrize(
    ("spec", "symptom", "stage"),
    [
        ("SegfaultOnRun", "segfault", "run"),
        ("AbortOnCompile", "abort", "compile"),
        ("HangOnRun", "hang", "run"),
        ("BlowUpOnRun", "oom", "run"),
    ],
)
def test_a_crashing_backend_becomes_a_finding_and_the_next_test_runs(cache: Path, spec: str, symptom: str, stage: str) -> None:
    name = {"SegfaultOnRun": "segfault_on_run", "AbortOnCompile": "abort_on_compile", "HangOnRun": "hang_on_run",
            "BlowUpOnRun": "blow_up_on_run"}[spec]
    limits = SandboxLimits(timeout_s=3, memory_mb=512)
    results = list(run(["torch_eager", f"{FAULTY}:{spec}"], cache, [1, 2], limits))
    assert len(results) == 2  # both tests answered: the second ran on a replacement worker
    for r in results:
        assert findings(r) == [(symptom, stage, (name,))]
        # torch_eager's outcome was still judged, on the re-run of the same test.
        eager = next(o for o in r.outcomes if o.backend == "torch_eager")
        assert eager.status == "ok"
    assert run.restarts >= 2  # type: ignore[attr-defined]


def test_a_backend_rejecting_what_it_runs_node_by_node_is_an_inconsistency(cache: Path) -> None:
    (r,) = run(["torch_eager", f"{FAULTY}:RejectsChains"], cache, [3])
    assert findings(r) == [("rejection", "compile", ("rejects_chains",))]


def test_a_backend_lacking_an_operator_is_unsupported_not_buggy(cache: Path) -> None:
    options_with_exp = [s for s in range(40) if "exp" in _ops(s)][:2]
    for r in run(["torch_eager", f"{FAULTY}:RejectsExp"], cache, options_with_exp):
        assert r.verdict is not None and r.verdict.kind == "pass"
        outcome = next(o for o in r.outcomes if o.backend == "rejects_exp")
        assert outcome.status == "unsupported" and "exp" in outcome.message
        assert any(row[0] == "rejects_exp" and row[1] == "exp" for row in r.lazily_unsupported)


def _ops(seed: int) -> tuple[str, ...]:
    from generators.graph_gen import GraphGenerator
    from generators.ops import catalog

    return GraphGenerator(catalog(), OPTIONS).generate(seed).op_names()


def test_a_wrong_result_is_found_with_the_failing_output(cache: Path) -> None:
    (r,) = run(["torch_eager", f"{FAULTY}:WrongByOne"], cache, [4])
    assert r.verdict is not None and r.verdict.kind == "bug"
    assert {f.symptom for f in r.verdict.findings} == {"wrong_result"}
    assert all(f.backends == ("wrong_by_one",) and f.output is not None for f in r.verdict.findings)
    assert r.feed is not None  # a bug keeps its inputs for the reproducer


def test_unknown_and_unavailable_backends_are_user_errors(cache: Path) -> None:
    from generators.errors import GauntletError

    with pytest.raises(GauntletError, match="unknown backend"):
        DifferentialRunner(["torch_eager", "no_such_backend"], workers=1, cache=cache)
    with pytest.raises(GauntletError, match="listed twice"):
        DifferentialRunner(["torch_eager", "torch_eager"], workers=1, cache=cache)
