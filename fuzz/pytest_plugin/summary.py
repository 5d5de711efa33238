"""What Gauntlet did in one pytest session (fuzz campaigns, differential checks, regression
replays, bugs with their reproducers), for the terminal summary, JUnit properties and the
--gauntlet-report JSON file. Imports no framework."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LOG", "BugRecord", "SessionLog", "TestRecord"]


@dataclass(frozen=True)
class BugRecord:
    """One unique bug a test found (or a regression that came back)."""

    label: str
    symptom: str
    backends: tuple[str, ...]
    ops: tuple[str, ...]
    repro: str | None  # path of the standalone reproducer
    seed: int | None
    detail: str = ""

    def line(self) -> str:
        where = f"{self.symptom} on {', '.join(self.backends)}" + (f" ({', '.join(self.ops)})" if self.ops else "")
        repro = f"\n    reproducer: {self.repro}" if self.repro else ""
        seed = f" seed {self.seed}" if self.seed is not None else ""
        return f"{self.label}: {where}{seed}{repro}" + (f"\n    {self.detail}" if self.detail else "")


@dataclass
class TestRecord:
    nodeid: str
    kind: str  # fuzz | differential | regression | robustness
    outcome: str = ""  # passed | failed | xfailed | skipped
    graphs: int = 0  # generated or checked graphs
    backends: tuple[str, ...] = ()
    seed: int | None = None
    seconds: float = 0.0
    bugs: list[BugRecord] = field(default_factory=list)
    campaign: str | None = None  # campaign directory, where one ran


@dataclass
class SessionLog:
    seed: int
    started: float = field(default_factory=time.time)
    tests: dict[str, TestRecord] = field(default_factory=dict)

    def record(self, nodeid: str, kind: str) -> TestRecord:
        if nodeid not in self.tests:
            self.tests[nodeid] = TestRecord(nodeid, kind)
        return self.tests[nodeid]

    def backends(self) -> list[str]:
        return sorted({b for t in self.tests.values() for b in t.backends})

    def unique_bugs(self) -> list[BugRecord]:
        seen: dict[tuple[str, tuple[str, ...], tuple[str, ...]], BugRecord] = {}
        for test in self.tests.values():
            for bug in test.bugs:
                seen.setdefault((bug.symptom, bug.backends, bug.ops), bug)
        return list(seen.values())

    def summary_lines(self) -> list[str]:
        counts: dict[str, int] = {}
        for test in self.tests.values():
            counts[test.kind] = counts.get(test.kind, 0) + 1
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        graphs = sum(t.graphs for t in self.tests.values())
        bugs = self.unique_bugs()
        lines = [
            f"{len(self.tests)} Gauntlet tests ({kinds}); {graphs} graphs run; {len(bugs)} unique bug(s); "
            f"seed {self.seed}",
            f"backends: {', '.join(self.backends()) or 'none'}",
        ]
        lines += [bug.line() for bug in bugs]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "seed": self.seed,
            "started": self.started,
            "seconds": round(time.time() - self.started, 3),
            "backends": self.backends(),
            "unique_bugs": [asdict(b) for b in self.unique_bugs()],
            "tests": [asdict(t) for t in self.tests.values()],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=list) + "\n")


LOG = pytest.StashKey[SessionLog]()
