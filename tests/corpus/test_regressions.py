"""Replays every promoted bug in corpora/regressions through the sandbox: an `open` bug
must still reproduce (so a fixed framework shows up here, strictly), a `fixed` one must not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzz.backends import load
from fuzz.replay import replay

REGRESSIONS = Path(__file__).resolve().parents[2] / "corpora" / "regressions"
ENTRIES = sorted(p.parent for p in REGRESSIONS.glob("*/bug.json"))


def _available(entry: Path) -> bool:
    meta = json.loads((entry / "bug.json").read_text())
    specs = meta.get("backend_specs", {})
    return all(load(specs.get(b, b)).available() for b in [*meta["backends"], meta.get("witness") or "torch_eager"])


def test_the_corpus_is_not_empty() -> None:
    assert ENTRIES, f"no regression entries under {REGRESSIONS}"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_a_promoted_bug_behaves_as_recorded(entry: Path) -> None:
    if not _available(entry):
        pytest.skip("a backend of this entry is not available on this machine")
    meta = json.loads((entry / "bug.json").read_text())
    (result,) = replay(entry, progress=lambda line: None)
    if meta.get("status", "open") == "open":
        assert result.reproduces, (f"{entry.name} no longer reproduces ({result.detail}) with {meta['versions']}: "
                                   "if the framework fixed it, set \"status\": \"fixed\" in its bug.json")
    else:
        assert not result.reproduces, f"{entry.name} is marked fixed but reproduces again: {result.detail}"
