"""Campaign progress for a person: a live `rich` panel at a terminal, plain periodic lines
otherwise (or with --quiet). Knows nothing about how the numbers are produced.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO


@dataclass(frozen=True)
class Snapshot:
    elapsed: float
    remaining: float | None
    tests: int
    max_tests: int | None
    tests_per_s: float
    valid_pct: float
    bugs_by_symptom: dict[str, int] = field(default_factory=dict)
    ops_covered: int = 0
    ops_total: int = 0

    def line(self) -> str:
        bugs = sum(self.bugs_by_symptom.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.bugs_by_symptom.items()))
        left = f", {fmt_duration(self.remaining)} left" if self.remaining is not None else ""
        of = f"/{self.max_tests}" if self.max_tests is not None else ""
        return (f"[{fmt_duration(self.elapsed)}{left}] {self.tests}{of} tests, {self.tests_per_s:.1f} tests/s, "
                f"{self.valid_pct:.0f}% valid, {bugs} unique bug(s){f' ({detail})' if detail else ''}, "
                f"{self.ops_covered}/{self.ops_total} operators")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Display(Protocol):
    def update(self, snapshot: Snapshot) -> None: ...
    def log(self, line: str) -> None: ...
    def close(self) -> None: ...


class PlainDisplay:
    """A status line every `every_s` seconds, and every log line as it comes."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stdout
        self.every_s = every_s
        self.last = 0.0
        self.latest: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            print(snapshot.line(), file=self.stream, flush=True)

    def log(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.latest is not None:
            print(self.latest.line(), file=self.stream, flush=True)


class RichDisplay:
    """A live panel (elapsed/remaining, tests/s, valid %, bugs by symptom, operators)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.latest: Snapshot | None = None
        self.live = Live(self._render(None), console=self.console, refresh_per_second=2, transient=False)
        self.live.start()

    def _render(self, s: Snapshot | None) -> Any:
        from rich.table import Table

        table = Table(title="gauntlet fuzz", show_header=False, expand=False)
        table.add_column(style="bold")
        table.add_column()
        if s is None:
            table.add_row("status", "starting the workers and probing the backends")
            return table
        table.add_row("elapsed", fmt_duration(s.elapsed) + (f"  ({fmt_duration(s.remaining)} left)" if s.remaining is not None else ""))
        table.add_row("tests", f"{s.tests}" + (f" / {s.max_tests}" if s.max_tests is not None else "") + f"   {s.tests_per_s:.1f}/s")
        table.add_row("valid", f"{s.valid_pct:.1f}%")
        bugs = sum(s.bugs_by_symptom.values())
        table.add_row("unique bugs", f"{bugs}" + ("  " + ", ".join(f"{k}: {v}" for k, v in sorted(s.bugs_by_symptom.items())) if bugs else ""))
        table.add_row("operators", f"{s.ops_covered} / {s.ops_total}")
        return table

    def update(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        self.live.update(self._render(snapshot))

    def log(self, line: str) -> None:
        self.live.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        self.live.stop()


def display_for(quiet: bool) -> Display:
    if not quiet and sys.stdout.isatty():
        return RichDisplay()
    return PlainDisplay(every_s=30.0 if quiet else 10.0)
