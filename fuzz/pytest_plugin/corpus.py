"""The regression corpus as test items: every bug directory (a `bug.json` beside its graph and
reproducer) becomes one item named after the bug. A fixed bug passes while it stays fixed and
fails with its reproducer when it comes back; a bug still open upstream is a strict xfail."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fuzz.pytest_plugin.summary import LOG, BugRecord

__all__ = ["BugFile", "RegressionItem", "corpus_items", "is_bug_file"]


class RegressionBack(AssertionError):
    """A recorded bug reproduces."""


def is_bug_file(path: Path) -> bool:
    return path.name == "bug.json" and (path.parent / "graph.json").is_file()


def _meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise pytest.UsageError(f"{path}: not a readable bug record ({error})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("backends"), list):
        raise pytest.UsageError(f"{path}: not a Gauntlet bug record (no 'backends' list)")
    return meta


class BugFile(pytest.File):
    def collect(self) -> Iterable[pytest.Item]:
        meta = _meta(self.path)
        item = RegressionItem.from_parent(self, name=self.path.parent.name, meta=meta)
        if meta.get("status", "open") == "open":
            upstream = meta.get("upstream") or "no upstream report recorded"
            item.add_marker(pytest.mark.xfail(
                strict=True, raises=RegressionBack,
                reason=f"open upstream ({upstream}); once fixed there, set \"status\": \"fixed\" in {self.path}",
            ))
        yield item


class RegressionItem(pytest.Item):
    def __init__(self, *, meta: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.meta = meta
        self.directory = self.path.parent

    def _record(self) -> Any:
        record = self.config.stash[LOG].record(self.nodeid, "regression")
        specs = self.meta.get("backend_specs", {})
        witness = [self.meta["witness"]] if self.meta.get("witness") else []
        record.backends = tuple(specs.get(b, b) for b in [*self.meta["backends"], *witness])
        record.seed = self.meta.get("seed")
        return record

    def runtest(self) -> None:
        from fuzz.backends import load
        from fuzz.replay import replay

        record = self._record()
        missing = [b for b in record.backends if not load(b).available()]
        if missing:
            pytest.skip(f"backend(s) not available here: {', '.join(missing)}")
        (result,) = replay(self.directory, progress=lambda line: None)
        record.graphs = 1
        repro = self.directory / "repro.py"
        self.user_properties.append(("gauntlet_repro", str(repro)))
        self.user_properties.append(("gauntlet_seed", str(self.meta.get("seed"))))
        if result.reproduces:
            bug = BugRecord(
                label=self.name,
                symptom=str(self.meta.get("symptom", "")),
                backends=tuple(self.meta["backends"]),
                ops=tuple(self.meta.get("ops", ())),
                repro=str(repro) if repro.exists() else None,
                seed=self.meta.get("seed"),
                detail=result.detail,
            )
            if self.meta.get("status", "open") != "open":
                record.bugs.append(bug)
            raise RegressionBack(
                f"{self.name} reproduces: {result.detail}\nreproducer: {repro} (seed {self.meta.get('seed')})"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RegressionBack):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"regression {self.name}"


def corpus_items(session: pytest.Session, directory: Path, known: set[Path]) -> Iterator[pytest.Item]:
    """Items for every bug directory under `directory` not already collected."""
    for bug in sorted(directory.rglob("bug.json")):
        if is_bug_file(bug) and bug.resolve() not in known:
            collector = BugFile.from_parent(session, path=bug)
            yield from (i for i in collector.collect() if isinstance(i, pytest.Item))
