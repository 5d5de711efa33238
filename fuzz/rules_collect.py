"""Trace collection for rule inference: each API's shipped examples, then active probing
(mutations of its valid calls), run per API in sandboxed workers so a framework crash costs
one API's probes, not the collection; traces go to one JSON Lines file."""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fuzz.rules_crashes import Crash, record_crash
from fuzz.sandbox import Died, SandboxLimits, WorkerPool
from generators.errors import GauntletError
from generators.rules.mutate import mutations
from generators.rules.trace import Invocation, Trace, write_traces

# Framework name -> the module implementing the collector protocol (docs/rules.md).
COLLECTORS = {"torch": "generators.rules.collect_torch", "tensorflow": "generators.rules.collect_tf"}


def collector(framework: str) -> ModuleType:
    if framework not in COLLECTORS:
        raise GauntletError(f"unknown framework {framework!r}: choose one of {', '.join(sorted(COLLECTORS))}")
    return importlib.import_module(COLLECTORS[framework])


@dataclass(frozen=True)
class ApiJob:
    framework: str
    api: str
    seed: int
    probes: int  # mutated calls per seed call
    seeds: int  # valid calls (of distinct signatures first) that get mutated
    seconds: float  # probing stops after this long; examples always run


def seed_calls(valid: Sequence[Trace], count: int, rng: np.random.Generator) -> list[Trace]:
    """Up to `count` valid traces, one per signature first (round robin), so probing covers
    every signature the examples reach before it deepens any."""
    by_signature: dict[str, list[Trace]] = {}
    for t in valid:
        by_signature.setdefault(t.invocation.signature(), []).append(t)
    groups = [list(g) for g in by_signature.values()]
    for g in groups:
        rng.shuffle(g)
    out: list[Trace] = []
    while len(out) < count and any(groups):
        for g in groups:
            if g and len(out) < count:
                out.append(g.pop())
    return out


def _call_note(invocation: Invocation, seed: int) -> str:
    """The stage a worker announces before each call: a crash's Died.stage then names the call."""
    return f"call {seed} {json.dumps(invocation.to_json(), separators=(',', ':'))}"


def crashing_call(stage: str) -> tuple[Invocation, int] | None:
    """The call (and its seed) a died worker was running, from its last stage."""
    if not stage.startswith("call "):
        return None
    _, seed, text = stage.split(" ", 2)
    return Trace.from_json({**json.loads(text), "valid": False}).invocation, int(seed)


def collect_api(job: ApiJob, note: Callable[[str], None], module: ModuleType) -> list[dict[str, Any]]:
    """Worker side: the API's examples, then probes around them, as trace JSON objects."""
    note("examples")
    traces = list(module.examples(job.api))
    rng = np.random.default_rng([job.seed, sum(job.api.encode())])
    deadline = time.monotonic() + job.seconds
    seen = {t.invocation for t in traces}
    for start in seed_calls([t for t in traces if t.valid], job.seeds, rng):
        if job.probes and time.monotonic() < deadline:
            # The valid call again with fresh values: if it now fails, the API's validity
            # depends on tensor values (indices, probabilities), which shape rules cannot hold.
            seed = int(rng.integers(2**31))
            note(_call_note(start.invocation, seed))
            traces.append(module.run(start.invocation, seed))
        for invocation in mutations(start.invocation, rng, job.probes):
            if time.monotonic() > deadline:
                break
            if invocation in seen:
                continue
            seen.add(invocation)
            seed = int(rng.integers(2**31))
            note(_call_note(invocation, seed))
            traces.append(module.run(invocation, seed))
    return [t.to_json() for t in traces]


def worker_setup(framework: str) -> ModuleType:
    module = collector(framework)
    module.version()  # imports the framework before the memory limit applies
    return module


def worker_run(job: ApiJob, note: Callable[[str], None], module: ModuleType) -> list[dict[str, Any]]:
    return collect_api(job, note, module)


def worker_run_calls(calls: list[dict[str, Any]], note: Callable[[str], None], module: ModuleType) -> list[dict[str, Any]]:
    """Worker side: run invocations (as JSON objects) and return their traces."""
    out = []
    for k, data in enumerate(calls):
        note(f"call {k}")
        out.append(module.run(Trace.from_json({**data, "valid": True}).invocation, k).to_json())
    return out


@dataclass
class CollectSummary:
    framework: str
    version: str
    out: Path
    apis: int = 0
    traces: Counter[str] = field(default_factory=Counter)  # valid / invalid
    died: dict[str, str] = field(default_factory=dict)  # api -> symptom while probing (examples kept)
    lost: dict[str, str] = field(default_factory=dict)  # api -> symptom even without probing
    crashes: list[Crash] = field(default_factory=list)  # reproducers of the calls workers died on
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"framework": self.framework, "version": self.version, "traces": str(self.out),
                "apis": self.apis, "valid": self.traces["valid"], "invalid": self.traces["invalid"],
                "died_while_probing": self.died, "lost": self.lost,
                "crashes": [{"api": c.api, "symptom": c.symptom, "reproducer": str(c.directory / "repro.py"),
                             "confirmed": c.confirmed, "detail": c.detail} for c in self.crashes],
                "seconds": round(self.seconds, 1)}


def default_trace_path(framework: str, version: str) -> Path:
    return Path(".gauntlet") / "traces" / f"{framework}-{version}.jsonl"


def collect(
    framework: str,
    out: Path | None = None,
    apis: Sequence[str] | None = None,
    probes: int = 12,
    seeds: int = 6,
    seconds_per_api: float = 20.0,
    workers: int = 2,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> CollectSummary:
    """Collect traces of `apis` (default: every API with shipped examples) into `out`.

    An API whose worker dies while probing (segfault, abort, hang, memory) is collected again
    without probing, so its examples are kept; the symptom is reported, since a framework that
    crashes on a small edit of a valid call is itself worth a look."""
    module = collector(framework)
    version = module.version()
    known = module.apis()
    chosen = list(known if apis is None else apis)
    excluded = module.excluded()
    unknown = [a for a in chosen if a not in known and a not in excluded]
    if unknown:
        raise GauntletError(f"no shipped examples for {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else "")
                            + f" (`gauntlet infer apis --framework {framework}` lists them)")
    refused = [a for a in chosen if a in excluded]
    if refused:
        raise GauntletError(f"{refused[0]} is excluded from tracing: {excluded[refused[0]]}")
    path = out or default_trace_path(framework, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    summary = CollectSummary(framework, version, path)
    start = time.monotonic()
    limits = SandboxLimits(timeout_s=max(60.0, seconds_per_api * 3), memory_mb=6144)
    jobs = {a: ApiJob(framework, a, seed, probes, seeds, seconds_per_api) for a in chosen}
    with WorkerPool("fuzz.rules_collect:worker_run", workers, limits, setup="fuzz.rules_collect:worker_setup",
                    setup_arg=framework) as pool:
        ids = {pool.submit(job): api for api, job in jobs.items()}
        retries: dict[int, str] = {}
        crashes: list[tuple[Invocation, int, str]] = []
        done = 0
        while ids or retries:
            for job_id, result in pool.results():
                api = ids.pop(job_id, None) or retries.pop(job_id)
                if isinstance(result, Died):
                    if api in summary.died or jobs[api].probes == 0:
                        summary.lost[api] = result.symptom
                    else:
                        summary.died[api] = f"{result.symptom} ({result.detail.splitlines()[0] if result.detail else ''})"
                        found = crashing_call(result.stage)
                        if found is not None:
                            crashes.append((found[0], found[1], result.symptom))
                        retry = ApiJob(framework, api, seed, 0, 0, 0.0)
                        retries[pool.submit(retry)] = api
                        continue
                else:
                    traces = [Trace.from_json(t) for t in result]
                    write_traces(path, traces, append=True)
                    summary.traces.update("valid" if t.valid else "invalid" for t in traces)
                done += 1
                summary.apis = done
                if progress and (done % 10 == 0 or done == len(chosen)):
                    progress(f"{done}/{len(chosen)} APIs, {summary.traces['valid']} valid and "
                             f"{summary.traces['invalid']} invalid traces, {time.monotonic() - start:.0f}s")
    for invocation, call_seed, symptom in crashes:
        if progress:
            progress(f"confirming the {symptom} of {invocation.api} with a standalone reproducer")
        crash = record_crash(path.parent / "crashes" / f"{framework}-{version}", framework, version, module,
                             invocation, call_seed, symptom)
        summary.crashes.append(crash)
    summary.seconds = time.monotonic() - start
    return summary


def instrument_command(framework: str, argv: Sequence[str], out: Path | None = None) -> CollectSummary:
    """Record the API calls a user's Python command makes (in this process)."""
    module = collector(framework)
    version = module.version()
    path = out or default_trace_path(framework, version).with_name(f"{framework}-{version}-user.jsonl")
    try:
        traces = module.instrument(list(argv))
    except GauntletError as exc:
        # The command failed; what it called until then is still worth keeping.
        kept = list(getattr(exc, "traces", ()))
        if kept:
            write_traces(path, kept)
            raise GauntletError(f"{exc} ({len(kept)} trace(s) recorded before the failure are in {path})") from None
        raise
    summary = CollectSummary(framework, version, path, apis=len({t.invocation.api for t in traces}))
    write_traces(path, traces)
    summary.traces.update("valid" if t.valid else "invalid" for t in traces)
    return summary


def print_summary(summary: CollectSummary) -> None:
    print(json.dumps(summary.to_json(), indent=1), file=sys.stdout)
