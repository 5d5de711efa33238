"""Differential testing through the sandbox: starts the worker pool, probes the backends
(cached on disk), streams test jobs to the workers, and re-submits a test whose worker
died so the crash becomes an outcome and the other backends are still judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fuzz.backends import load
from fuzz.execute import BatchJob, CaseJob, CaseResult, Describe, KnownCrash, ProbeJob, WorkerConfig
from fuzz.probe import Capabilities, Pair, ProbeCache, all_pairs, cache_dir
from fuzz.sandbox import Died, SandboxLimits, WorkerPool
from generators.errors import GauntletError
from generators.graph_gen import GenOptions

if TYPE_CHECKING:
    from fuzz.ray_pool import RayPool


# Graphs a compiled backend builds in one compilation. Its fixed costs (tracing setup, one
# C++ file per extern depth) are shared by the batch; beyond 32 the gain measured nil.
DEFAULT_BATCH = 32


def batch_before_deadline(batch: int, remaining_s: float, tests_per_s: float, workers: int) -> int:
    """The largest batch, up to `batch`, that a worker can still finish before a deadline
    `remaining_s` away: a batch submitted now waits behind the one its worker is running
    (two jobs per worker are in flight), and each worker completes `tests_per_s / workers`
    tests a second. `batch` while no rate is known; 1 when not even that fits, because
    results arrive per job and a batch cut off by the deadline loses every test in it."""
    if tests_per_s <= 0 or batch <= 1:
        return max(1, batch)
    per_worker = tests_per_s / max(1, workers)
    fits = int(remaining_s * per_worker / 2)
    return max(1, min(batch, fits))


@dataclass(frozen=True)
class InternalFailure:
    """A test that killed its worker outside any backend (a Gauntlet bug, kept visible)."""

    seed: int
    symptom: str
    stage: str
    detail: str


def split_stage(stage: str) -> tuple[str, str]:
    """("compile", "torch_eager") from "compile:torch_eager"; ("", "") for other stages."""
    kind, _, rest = stage.partition(":")
    return (kind, rest.split(":")[0]) if kind in ("compile", "run", "probe") else ("", "")


def _absolute(spec: str) -> str:
    path, sep, attr = spec.rpartition(":")
    if sep and path.endswith(".py") and Path(path).is_file():
        return f"{Path(path).resolve()}:{attr}"
    return spec


class DifferentialRunner:
    """One pool of workers, each holding every requested backend."""

    def __init__(
        self,
        backends: Sequence[str],
        workers: int = 2,
        limits: SandboxLimits | None = None,
        cache: Path | None = None,
        progress: Callable[[str], None] = lambda line: None,
        batch: int = DEFAULT_BATCH,
        ray: str | None = None,
        coverage: tuple[str, ...] = (),
        rules: str = "",
    ) -> None:
        if not backends:
            raise GauntletError("no backends given")
        self.requested = tuple(backends)
        loaded = [load(b) for b in backends]  # user errors (unknown names) surface here
        self.names = tuple(b.name for b in loaded)
        # How to load each backend again later (replays): file specs made absolute.
        self.specs = {name: _absolute(spec) for name, spec in zip(self.names, self.requested)}
        if len(set(self.names)) != len(self.names):
            raise GauntletError(f"a backend is listed twice: {', '.join(self.names)}")
        self.lazy = tuple(b.name for b in loaded if getattr(b, "probe_lazily", False))
        self.lowerings = tuple(sorted({b.lowering for b in loaded}))
        if rules:
            from generators.rules.catalog import rules_framework

            framework = rules_framework(rules)
            others = [b.name for b in loaded if b.lowering != framework]
            if others:
                raise GauntletError(f"the rules in {rules} are {framework} APIs; backend(s) {', '.join(others)} cannot run "
                                    f"them (choose {framework} backends with --backends)")
        # Backends whose cost is compilation compile `batch` graphs together (see BatchJob).
        self.batched = tuple(b.name for b in loaded if getattr(b, "batchable", False))
        self.batch = max(1, batch) if self.batched else 1
        self.progress = progress
        self.cache_root = cache or cache_dir()
        pool_args = ("fuzz.execute:target", max(1, workers), limits or SandboxLimits())
        config = WorkerConfig(self.requested, coverage=coverage, rules=rules)
        self.rules = rules
        self.pool: WorkerPool | RayPool
        if ray is None:
            self.pool = WorkerPool(*pool_args, setup="fuzz.execute:setup", setup_arg=config)
        else:
            # Ray actors, each holding a one-worker sandbox: crashes are classified the same way.
            from fuzz.ray_pool import RayPool

            self.pool = RayPool(*pool_args, setup="fuzz.execute:setup", setup_arg=config, address=ray)
        self.versions: dict[str, str] = {}
        self.capabilities: dict[str, Capabilities] = {}
        self.capability_json: tuple[str, ...] = ()  # sent with every job

    def __enter__(self) -> DifferentialRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    # --- setup ---------------------------------------------------------------------------

    def start(self) -> None:
        """Check availability and probe every eagerly probed backend (or load its cache)."""
        answer = self.pool.run([Describe()])[0]
        if isinstance(answer, Died):
            raise GauntletError(f"a sandbox worker died while loading the backends ({answer.symptom}): {answer.detail}")
        self.versions = dict(answer)
        missing = [n for n in self.names if n not in self.versions]
        if missing:
            raise GauntletError(f"backend(s) not available on this machine: {', '.join(missing)}")
        from generators.rules.catalog import catalog_for

        # Rule-backed operators are probed lazily (a failing graph is re-run node by node):
        # their reference is the framework's own eager run, which already refuses calls it
        # cannot make, and probing thousands of them up front took minutes. The hand-written
        # catalog's probe is shared with campaigns without rules.
        cat = catalog_for("")
        store = ProbeCache(self.cache_root, cat)
        files = []
        for name in self.names:
            if name in self.lazy:
                continue
            version = self.versions[name]
            caps = store.load(name, version)
            if caps is None:
                self.progress(f"probing {name} ({version}): every operator x dtype, once; cached afterwards")
                caps = self._probe(name, version, all_pairs(cat))
                store.save(caps)
            caps.check_not_tiny()
            self.capabilities[name] = caps
            files.append(caps.to_json())
        self.capability_json = tuple(files)

    def _probe(self, name: str, version: str, pairs: list[Pair]) -> Capabilities:
        unsupported: dict[Pair, str] = {}
        todo = list(pairs)
        while todo:
            chunks = [tuple(todo[i :: self.pool.size]) for i in range(self.pool.size)]
            results = self.pool.run([ProbeJob(name, c) for c in chunks if c])
            todo = []
            for chunk, result in zip([c for c in chunks if c], results):
                if isinstance(result, Died):
                    parts = result.stage.split(":")
                    crashed = (parts[2], parts[3]) if len(parts) == 4 and parts[0] == "probe" else chunk[0]
                    unsupported[crashed] = f"crashed the worker ({result.symptom}) when run alone: {result.detail.splitlines()[0] if result.detail else ''}"
                    self.progress(f"  {name}: {crashed[0]}/{crashed[1]} crashed when run alone ({result.symptom})")
                    todo.extend(chunk[chunk.index(crashed) + 1 :])
                else:
                    unsupported.update(result)
        return Capabilities(name, version, unsupported, len(pairs))

    # --- tests ---------------------------------------------------------------------------

    def job(self, seed: int, options: GenOptions, keep_arrays: bool = False) -> CaseJob:
        return CaseJob(seed, options, self.names, self.capability_json, keep_arrays=keep_arrays)

    def run(
        self,
        seeds: Iterable[int],
        options: GenOptions | Callable[[int], GenOptions],
        keep_arrays: bool = False,
        batch_size: Callable[[], int] | None = None,
    ) -> Iterator[CaseResult | InternalFailure]:
        """Results as tests finish (not in seed order); at most 2 jobs per worker in flight.
        `options` may depend on the seed (e.g. to vary the graph size). `batch_size`, asked
        before each new job, caps the runner's batch (a campaign shrinks it near its deadline)."""
        options_for = options if callable(options) else (lambda seed: options)
        pending: dict[int, CaseJob | BatchJob] = {}
        it = iter(seeds)
        exhausted = False
        limit = 2 * self.pool.size
        lost: set[int] = set()

        def fill() -> None:
            nonlocal exhausted
            while not exhausted and len(pending) < limit:
                size = self.batch if batch_size is None else max(1, min(self.batch, batch_size()))
                jobs = []
                for seed in it:
                    jobs.append(self.job(seed, options_for(seed), keep_arrays))
                    if len(jobs) == size:
                        break
                else:
                    exhausted = True
                if not jobs:
                    return
                job: CaseJob | BatchJob = jobs[0] if size == 1 else BatchJob(tuple(jobs), self.batched)
                pending[self.pool.submit(job)] = job

        fill()
        while pending:
            for job_id, result in self._one():
                job = pending.pop(job_id)
                if isinstance(job, BatchJob):
                    if isinstance(result, Died):
                        # Something in the shared compilation crashed: run each test alone
                        # so the crash is attributed to its own graph.
                        for single in job.jobs:
                            pending[self.pool.submit(single)] = single
                    else:
                        yield from result
                elif isinstance(result, Died) and result.stage == "ray" and job.seed not in lost:
                    # The Ray node running it was lost, not a backend failure: run it again, once.
                    lost.add(job.seed)
                    pending[self.pool.submit(job)] = job
                elif isinstance(result, Died):
                    retry = self._after_death(job, result)
                    if isinstance(retry, CaseJob):
                        pending[self.pool.submit(retry)] = retry
                    else:
                        yield retry
                else:
                    yield result
                fill()

    def _one(self) -> Iterator[tuple[int, Any]]:
        """The next finished job (the pool's iterator, stopped after one answer)."""
        for item in self.pool.results():
            yield item
            return

    def _after_death(self, job: CaseJob, died: Died) -> CaseJob | InternalFailure:
        stage, backend = split_stage(died.stage)
        if backend not in job.backends or any(c.backend == backend for c in job.crashed):
            return InternalFailure(job.seed, died.symptom, died.stage, died.detail)
        detail = died.detail
        if stage == "probe":
            # A compiled backend's lazy probe of one operator crashed: still that backend.
            stage, detail = "compile", f"(while running {':'.join(died.stage.split(':')[2:])} alone) {detail}"
        crash = KnownCrash(backend, died.symptom, stage, detail)
        return replace(job, crashed=(*job.crashed, crash))
