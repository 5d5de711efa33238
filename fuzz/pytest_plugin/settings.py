"""The plugin's command-line options and ini keys, parsed once into typed `Settings` kept in
the pytest config's stash. Imports no framework."""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SETTINGS", "Budget", "Settings", "add_options", "parse_budget", "read_settings"]


@dataclass(frozen=True)
class Budget:
    """A fuzz test's budget: wall-clock seconds or a number of generated tests (examples)."""

    seconds: float | None = None
    examples: int | None = None

    def __str__(self) -> str:
        return f"{self.seconds:g}s" if self.seconds is not None else f"{self.examples} examples"


def parse_budget(text: str | int | float) -> Budget:
    """`200` (examples), `30s`, `2m`, `1h` (seconds)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value: str = str(text)
    elif isinstance(text, float):
        return Budget(seconds=float(text)) if text > 0 else _bad_budget(str(text))
    else:
        value = str(text).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h)?", value)
    if match is None:
        return _bad_budget(value)
    number, unit = float(match.group(1)), match.group(2)
    if number <= 0:
        return _bad_budget(value)
    if unit is None:
        if not number.is_integer():
            return _bad_budget(value)
        return Budget(examples=int(number))
    return Budget(seconds=number * {"s": 1, "m": 60, "h": 3600}[unit])


def _bad_budget(text: str) -> Budget:
    raise pytest.UsageError(f"gauntlet budget {text!r}: give a number of examples (200) or a duration (30s, 2m, 1h)")


@dataclass(frozen=True)
class Settings:
    budget: Budget | None  # None: each fuzz marker's own budget
    backends: tuple[str, ...] | None  # None: each test's own, else the local CPU defaults
    seed: int
    seed_given: bool
    report: Path | None
    corpora: tuple[Path, ...]  # --gauntlet-corpus directories (always collected)
    default_corpus: Path | None  # the ini `gauntlet_corpus` directory, collected on full runs
    ci: bool


SETTINGS = pytest.StashKey[Settings]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("gauntlet", "Gauntlet: differential fuzzing, regression corpus, robustness")
    group.addoption("--gauntlet-budget", metavar="N|30s", default=None,
                    help="budget of every fuzz-marked test: examples (200) or seconds (30s, 2m); overrides the markers")
    group.addoption("--gauntlet-backends", metavar="A,B", default=None,
                    help="comma-separated backends for fuzz tests and the differential fixture (default: each test's own)")
    group.addoption("--gauntlet-seed", metavar="N", type=int, default=None,
                    help="seed of every fuzz test (default: random, printed; fixed at 0 under the ci profile)")
    group.addoption("--gauntlet-report", metavar="PATH", default=None,
                    help="write a JSON report of Gauntlet's tests, bugs and reproducers to PATH")
    group.addoption("--gauntlet-corpus", metavar="DIR", action="append", default=[],
                    help="also replay the bug directories under DIR as regression tests (repeatable)")
    group.addoption("--gauntlet-profile", choices=("default", "ci"), default=None,
                    help="ci: derandomized seeds and no Hypothesis deadlines (default when the CI variable is set)")
    parser.addini("gauntlet_corpus", "regression corpus replayed on full runs (relative to the rootdir)",
                  default="corpora/regressions")


def read_settings(config: pytest.Config) -> Settings:
    profile = config.getoption("--gauntlet-profile")
    ci = profile == "ci" or (profile is None and os.environ.get("CI", "").lower() not in ("", "0", "false"))
    budget_text = config.getoption("--gauntlet-budget")
    backends_text = config.getoption("--gauntlet-backends")
    backends = tuple(b.strip() for b in backends_text.split(",") if b.strip()) if backends_text else None
    if backends_text is not None and not backends:
        raise pytest.UsageError("--gauntlet-backends: give at least one backend name")
    seed_option = config.getoption("--gauntlet-seed")
    seed = seed_option if seed_option is not None else (0 if ci else random.SystemRandom().randrange(1_000_000))
    report = config.getoption("--gauntlet-report")
    corpora = []
    for text in config.getoption("--gauntlet-corpus"):
        path = Path(text).expanduser()
        if not path.is_dir():
            raise pytest.UsageError(f"--gauntlet-corpus {text}: no such directory")
        corpora.append(path.resolve())
    default = Path(str(config.getini("gauntlet_corpus")))
    default = default if default.is_absolute() else config.rootpath / default
    return Settings(
        budget=parse_budget(budget_text) if budget_text is not None else None,
        backends=backends,
        seed=int(seed),
        seed_given=seed_option is not None,
        report=Path(report) if report else None,
        corpora=tuple(corpora),
        default_corpus=default.resolve() if default.is_dir() else None,
        ci=ci,
    )
