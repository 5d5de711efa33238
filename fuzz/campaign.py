"""The fuzz campaign loop: configuration, budget (time or tests), seeds, the sandboxed
runner (local workers or Ray), the store, bug triage, live progress, clean stops
(Ctrl-C, SIGTERM) and resume after any interruption, including `kill -9`.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import FrameType
from typing import Any

from fuzz.coverage import Steering
from fuzz.execute import CaseResult
from fuzz.progress import Display, Snapshot
from fuzz.runner import DEFAULT_BATCH, DifferentialRunner, InternalFailure, batch_before_deadline
from fuzz.sandbox import SandboxLimits
from fuzz.store import CampaignStore
from fuzz.triage import Triage
from generators.errors import GauntletError
from generators.graph_gen import GenOptions
from generators.spec import OpSpec

SAMPLE_EVERY_S = 5.0
VALID = frozenset({"pass", "bug", "reference_suspect", "unstable"})


@dataclass(frozen=True)
class CampaignConfig:
    """What a campaign runs; stored in the campaign database so `--resume` continues it."""

    backends: tuple[str, ...]
    workers: int = 1
    seed: int = 0
    max_nodes: int = 10
    ops: tuple[str, ...] | None = None
    exclude_ops: tuple[str, ...] = ()
    dtypes: tuple[str, ...] | None = None
    max_elements: int = 4096
    batch: int = DEFAULT_BATCH
    timeout_s: float = 120.0
    memory_mb: int = 4096
    reduce: bool = True
    reduce_checks: int = 150
    reduce_seconds: float = 120.0
    time_s: float | None = None  # budget of the whole campaign (all sessions)
    max_tests: int | None = None
    ray: str | None = None
    coverage: str = ""  # "" off; "measure": measure framework line coverage; "steer": measure and steer
    rules: str = ""  # a directory of inferred rules (corpora/rules/<framework>/<version>) joining the catalog

    def options(self) -> GenOptions:
        from generators.dtypes import DType
        from generators.graph_gen import DEFAULT_DTYPES
        from generators.instantiate import Limits

        dtypes = DEFAULT_DTYPES if self.dtypes is None else tuple(DType.parse(d) for d in self.dtypes)
        options = GenOptions(max_nodes=self.max_nodes, ops=self.ops, exclude_ops=self.exclude_ops, dtypes=dtypes,
                             limits=Limits(max_elements=self.max_elements))
        if self.rules:
            # Rule-backed operators exist in one framework: graphs need only its lowering (and
            # the reference, which for them is that framework's float64 eager run).
            from generators.rules.catalog import api_weights, catalog_for, rules_framework

            options = replace(options, frameworks=(rules_framework(self.rules), "numpy"),  # type: ignore[arg-type]
                              op_weights=api_weights(catalog_for(self.rules)))
        return options

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> CampaignConfig:
        known = {f.name for f in fields(CampaignConfig)}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return CampaignConfig(**values)


@dataclass
class CampaignResult:
    out: Path
    status: str  # finished | interrupted
    tests: int
    tests_this_session: int
    unique_bugs: int
    report_json: Path
    report_html: Path


def open_campaign(out: Path, config: CampaignConfig | None, resume: bool, overrides: Mapping[str, Any]) -> tuple[CampaignStore, CampaignConfig]:
    """The store and the configuration to run: a new campaign, or the stored one on resume
    (with budget, workers and Ray address taken from `overrides` where given)."""
    exists = (out / "campaign.db").exists()
    if resume:
        if not exists:
            raise GauntletError(f"--resume: {out} holds no campaign (no campaign.db); start one without --resume")
        store = CampaignStore(out, create=False)
        stored = store.get_meta("config")
        if stored is None:
            store.close()
            raise GauntletError(f"--resume: {out}/campaign.db has no configuration")
        merged = CampaignConfig.from_json(stored)
        merged = replace(merged, **{k: v for k, v in overrides.items() if v is not None})
        store.set_meta("config", merged.to_json())
        return store, merged
    if config is None:
        raise GauntletError("no campaign configuration given")
    if exists:
        with CampaignStore(out, create=False) as old:
            if old.test_count() or old.bugs():
                raise GauntletError(f"{out} already holds a campaign ({old.test_count()} tests): continue it with --resume, or choose another --out")
    store = CampaignStore(out)
    store.set_meta("config", config.to_json())
    store.set_meta("created", time.time())
    return store, config


class _Stop(Exception):
    """SIGTERM: stop like Ctrl-C."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


class Campaign:
    def __init__(self, store: CampaignStore, config: CampaignConfig, catalog: Mapping[str, OpSpec], display: Display,
                 command: str = "") -> None:
        self.store = store
        self.config = config
        self.catalog = catalog
        self.display = display
        self.command = command
        self.session_tests = 0
        self.ops_seen: set[str] = set()
        self.steering: Steering | None = None
        self.coverage_packages: tuple[str, ...] = ()
        self.base_options = config.options()

    def _seeds(self) -> Iterator[int]:
        done = self.store.done_seeds()
        seeds = (s for s in itertools.count(self.config.seed) if s not in done)
        if self.config.max_tests is not None:
            return itertools.islice(seeds, max(0, self.config.max_tests - len(done)))
        return seeds

    def run(self) -> CampaignResult:
        from fuzz.report import write_report

        config = self.config
        out = self.store.directory
        # Inductor's on-disk cache grows with every compiled graph: keep it with the campaign.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str((out / ".cache" / "inductor").resolve()))
        session = self.store.start_session()
        self.store.set_meta("command", self.command)
        elapsed0 = self.store.elapsed()
        test_counts, _ = self.store.op_counts()
        self.ops_seen = set(test_counts)
        status = "interrupted"
        previous = signal.signal(signal.SIGTERM, _terminate)
        runner: DifferentialRunner | None = None
        try:
            limits = SandboxLimits(timeout_s=config.timeout_s, memory_mb=config.memory_mb)
            self.display.log(f"campaign {out}: {', '.join(config.backends)}; {config.workers} worker(s)"
                             + (f" on Ray ({config.ray})" if config.ray else ""))
            runner = self._runner(limits)
            runner.start()
            self.store.set_meta("versions", runner.versions)
            self.store.set_meta("backend_specs", runner.specs)
            triage = Triage(self.store, runner, self.catalog, config.reduce, config.reduce_checks, config.reduce_seconds,
                            progress=self.display.log)
            for pending in self.store.bugs(state="reducing"):
                self.display.log(f"resuming the reduction of {pending.label}")
                triage.finish(pending)
            for bug in self.store.bugs(state="reported"):  # killed between the database and the files
                if not (self.store.directory / bug.dir / "bug.json").exists():
                    triage.write_dir(bug)
            status = self._loop(runner, triage, elapsed0, session)
        except (KeyboardInterrupt, _Stop):
            status = "interrupted"
            self.display.log("stopping: writing the report (run again with --resume to continue)")
        finally:
            signal.signal(signal.SIGTERM, previous)
            if runner is not None:
                runner.close()
            self.store.end_session(session, status)
            self.display.close()
        self._write_missing_dirs(runner)
        paths = write_report(out, self.store, self.catalog, status)
        return CampaignResult(out, status, self.store.test_count(), self.session_tests, len(self.store.bugs(state="reported")),
                              *paths)

    def _runner(self, limits: SandboxLimits) -> DifferentialRunner:
        from fuzz.backends import load
        from fuzz.coverage import Steering, packages_for

        config = self.config
        packages: tuple[str, ...] = ()
        if config.coverage:
            packages = packages_for(load(b).lowering for b in config.backends)
            if not packages:
                raise GauntletError("--coverage: none of the backends runs Python framework code Gauntlet can measure")
            from fuzz.coverage import choice_domains

            self.steering = Steering(sorted(self.catalog), steer=config.coverage == "steer", covered=self.store.lines(),
                                     choices=choice_domains(self.catalog))
            self.coverage_packages = packages
            self.display.log(f"coverage: measuring {', '.join(packages)}" + ("; steering operator choice" if self.steering.steer else ""))
        return DifferentialRunner(config.backends, workers=config.workers, limits=limits, progress=self.display.log,
                                  batch=config.batch, ray=config.ray, coverage=packages, rules=config.rules)

    def _options(self, seed: int) -> GenOptions:
        if self.steering is None or not self.steering.steer:
            return self.base_options
        steered = self.steering.weights()
        base = dict(self.base_options.op_weights)  # e.g. rule-backed APIs' shares
        if base and steered:
            steered = tuple((op, w * base.get(op, 1.0)) for op, w in steered)
        return replace(self.base_options, op_weights=steered or self.base_options.op_weights,
                       choice_weights=self.steering.choice_weights())

    def _loop(self, runner: DifferentialRunner, triage: Triage, elapsed0: float, session: int) -> str:
        config = self.config
        start = time.monotonic()
        last_sample = start
        verdicts = self.store.verdict_counts()
        tests = sum(verdicts.values())

        def elapsed() -> float:
            return elapsed0 + time.monotonic() - start

        def out_of_time() -> bool:
            return config.time_s is not None and elapsed() >= config.time_s

        if out_of_time() or (config.max_tests is not None and tests >= config.max_tests):
            self.display.log("the campaign's budget is already spent: give a larger --time or --max-tests to continue")
            return "finished"
        def batch_size() -> int:
            # near the deadline, batches shrink so that work in flight still finishes in time
            if config.time_s is None:
                return runner.batch
            rate = self.session_tests / max(time.monotonic() - start, 1e-9)
            return batch_before_deadline(runner.batch, config.time_s - elapsed(), rate, runner.pool.size)

        self.display.update(self._snapshot(elapsed(), verdicts, 0.0))
        for result in runner.run(self._seeds(), self._options, batch_size=batch_size):
            now = elapsed()
            if isinstance(result, InternalFailure):
                self.store.record_internal_failure(result.seed, result.symptom, result.stage, result.detail)
                self.store.record_test(result.seed, "", "internal", [], 0.0, now, session)
                verdict = "internal"
                self.display.log(f"internal failure at seed {result.seed} ({result.symptom} in {result.stage}); "
                                 "a Gauntlet bug, please report it")
            else:
                verdict = self._record(result, now, session)
                if self.steering is not None and (result.new_lines or result.lines_ops):
                    self.store.add_lines(self.steering.add(result.new_lines, result.lines_ops))
                if verdict == "bug":
                    triage.handle(result)
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            self.session_tests += 1
            wall = time.monotonic()
            rate = self.session_tests / max(wall - start, 1e-9)
            if wall - last_sample >= SAMPLE_EVERY_S:
                last_sample = wall
                self._sample(elapsed(), verdicts, rate)
            self.display.update(self._snapshot(elapsed(), verdicts, rate))
            if out_of_time():
                break
        self._sample(elapsed(), verdicts, self.session_tests / max(time.monotonic() - start, 1e-9))
        if self.steering is not None:
            from fuzz.coverage import summary

            self.store.set_meta("coverage", summary(self.steering, self.coverage_packages))
        return "finished"

    def _record(self, result: CaseResult, elapsed: float, session: int) -> str:
        verdict = result.verdict.kind if result.verdict is not None else "no_stable_inputs"
        self.store.record_test(result.seed, result.digest, verdict, result.ops, sum(result.seconds.values()), elapsed, session)
        self.ops_seen.update(result.ops)
        return verdict

    def _sample(self, elapsed: float, verdicts: Mapping[str, int], rate: float) -> None:
        bugs = self.store.bugs()
        self.store.record_sample(elapsed, sum(verdicts.values()), len(bugs), verdicts.get("bug", 0), round(rate, 3),
                                 len(self.ops_seen), self.steering.lines if self.steering is not None else None)

    def _snapshot(self, elapsed: float, verdicts: Mapping[str, int], rate: float) -> Snapshot:
        tests = sum(verdicts.values())
        by_symptom: dict[str, int] = {}
        for bug in self.store.bugs():
            by_symptom[bug.symptom] = by_symptom.get(bug.symptom, 0) + 1
        valid = sum(n for v, n in verdicts.items() if v in VALID)
        return Snapshot(
            elapsed=elapsed,
            remaining=None if self.config.time_s is None else max(0.0, self.config.time_s - elapsed),
            tests=tests,
            max_tests=self.config.max_tests,
            tests_per_s=rate,
            valid_pct=100.0 * valid / tests if tests else 0.0,
            bugs_by_symptom=by_symptom,
            ops_covered=len(self.ops_seen),
            ops_total=len(self.catalog),
        )

    def _write_missing_dirs(self, runner: DifferentialRunner | None) -> None:
        """Every bug gets its directory, even one whose reduction was interrupted (with the
        unreduced graph, until a resumed campaign finishes it)."""
        from fuzz.triage import write_bug_dir

        versions = runner.versions if runner is not None else self.store.get_meta("versions", {})
        for bug in self.store.bugs():
            directory = self.store.directory / bug.dir
            if not (directory / "bug.json").exists():
                try:
                    write_bug_dir(directory, bug, self.catalog, versions, self.store.directory,
                                  self.store.get_meta("backend_specs", {}), self.config.rules)
                except Exception as exc:  # noqa: BLE001 - the report must still be written
                    self.display.log(f"could not write {bug.dir} ({type(exc).__name__}: {exc}); the bug stays in the store")
