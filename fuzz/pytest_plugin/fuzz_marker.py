"""`@pytest.mark.gauntlet_fuzz(budget=..., ops=[...], backends=[...])`: the test becomes a bounded
differential campaign (sandboxed workers, oracle, deduplication, reduction); its unique bugs fail
the test with their reproducers. The campaign directory stays under `.gauntlet/pytest/`."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fuzz.pytest_plugin.settings import SETTINGS, Budget, parse_budget
from fuzz.pytest_plugin.summary import LOG, BugRecord, TestRecord

__all__ = ["FuzzBugs", "FuzzOutcome", "MARKER", "run_marked"]

MARKER = "gauntlet_fuzz"
DEFAULT_BUDGET = Budget(examples=20)
KNOWN_ARGS = frozenset({"budget", "ops", "exclude_ops", "backends", "seed", "max_nodes", "dtypes", "reduce", "expect_bugs"})


class FuzzBugs(AssertionError):
    """A fuzz-marked test found bugs."""


class FuzzOutcome:
    """What the campaign of one marked test found: `bugs`, `tests`, `directory`."""

    def __init__(self, record: TestRecord, directory: Path, tests: int, status: str) -> None:
        self.record = record
        self.directory = directory
        self.tests = tests
        self.status = status

    @property
    def bugs(self) -> list[BugRecord]:
        return self.record.bugs


OUTCOME = pytest.StashKey[FuzzOutcome]()


def _tuple(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value) or not value:
        raise pytest.UsageError(f"@{MARKER}: {name} must be a non-empty list of names")
    return tuple(value)


def run_marked(item: pytest.Item, out_root: Path) -> FuzzOutcome:
    """Runs (once per test) the campaign the marker describes."""
    if OUTCOME in item.stash:
        return item.stash[OUTCOME]
    from fuzz.backends import CPU_DEFAULT
    from fuzz.campaign import Campaign, CampaignConfig, open_campaign
    from fuzz.progress import PlainDisplay
    from generators.ops import catalog

    marker = item.get_closest_marker(MARKER)
    assert marker is not None
    if marker.args:
        raise pytest.UsageError(f"@{MARKER} takes keyword arguments only ({', '.join(sorted(KNOWN_ARGS))})")
    unknown = set(marker.kwargs) - KNOWN_ARGS
    if unknown:
        raise pytest.UsageError(f"@{MARKER}: unknown argument(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(KNOWN_ARGS))}")
    settings = item.config.stash[SETTINGS]
    kwargs = marker.kwargs
    budget = settings.budget or (parse_budget(kwargs["budget"]) if "budget" in kwargs else DEFAULT_BUDGET)
    backends = settings.backends or _tuple(kwargs.get("backends"), "backends") or CPU_DEFAULT
    ops = _tuple(kwargs.get("ops"), "ops")
    if ops is not None:
        missing = sorted(set(ops) - set(catalog()))
        if missing:
            raise pytest.UsageError(f"@{MARKER}: unknown operator(s) {', '.join(missing)} (see `gauntlet ops`)")
    seed = settings.seed if settings.seed_given or "seed" not in kwargs else int(kwargs["seed"])
    directory = out_root / _dirname(item.nodeid)
    if directory.exists():
        shutil.rmtree(directory)  # one campaign per test and run: the previous run's is replaced
    config = CampaignConfig(
        backends=tuple(backends),
        workers=1,
        seed=seed,
        max_nodes=int(kwargs.get("max_nodes", 5)),
        ops=ops,
        exclude_ops=_tuple(kwargs.get("exclude_ops"), "exclude_ops") or (),
        dtypes=_tuple(kwargs.get("dtypes"), "dtypes"),
        reduce=bool(kwargs.get("reduce", True)),
        reduce_seconds=60.0,
        time_s=budget.seconds,
        max_tests=budget.examples,
    )
    record = item.config.stash[LOG].record(item.nodeid, "fuzz")
    record.seed, record.campaign = seed, str(directory)
    store, config = open_campaign(directory, config, False, {})
    log = io.StringIO()
    with store:
        result = Campaign(store, config, catalog(), PlainDisplay(log, every_s=1e9), command=f"pytest {item.nodeid}").run()
    report = json.loads(result.report_json.read_text())
    record.graphs = result.tests
    record.backends = tuple(sorted({*record.backends, *config.backends}))
    for bug in report.get("bugs", []):
        repro = directory / bug["repro"] if bug.get("repro") else None
        record.bugs.append(BugRecord(bug["id"], bug["symptom"], tuple(bug["backends"]), tuple(bug["ops"]),
                                     str(repro) if repro else None, bug.get("first_seed"), bug.get("message", "")[:300]))
        if repro:
            item.user_properties.append(("gauntlet_repro", str(repro)))
    item.user_properties.append(("gauntlet_seed", str(seed)))
    item.user_properties.append(("gauntlet_campaign", str(directory)))
    outcome = FuzzOutcome(record, directory, result.tests, result.status)
    item.stash[OUTCOME] = outcome
    return outcome


def check(item: pytest.Item, outcome: FuzzOutcome) -> None:
    marker = item.get_closest_marker(MARKER)
    if marker is not None and marker.kwargs.get("expect_bugs"):
        return
    if outcome.bugs:
        lines = "\n".join(bug.line() for bug in outcome.bugs)
        raise FuzzBugs(f"{len(outcome.bugs)} unique bug(s) in {outcome.tests} tests:\n{lines}\n"
                       f"campaign: {outcome.directory}; run again with --gauntlet-seed {outcome.record.seed}")


def _dirname(nodeid: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[-120:] or "test"
