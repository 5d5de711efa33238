"""Capability probing: single-operator probes on a real backend, the on-disk cache keyed by
backend and version, and the refusal of a backend that runs almost nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fuzz.backends import load
from fuzz.probe import Capabilities, ProbeCache, all_pairs, probe_all, probe_pair
from generators.dtypes import DType
from generators.errors import GauntletError
from generators.ops import catalog
from generators.spec import Missing

pytest.importorskip("torch")


def test_a_supported_pair_probes_clean_and_a_missing_lowering_does_not() -> None:
    backend = load("torch_eager")
    assert probe_pair(backend, catalog()["exp"], DType.float32, catalog()) is None
    cat = dict(catalog())
    cat["exp"] = dataclasses.replace(cat["exp"], torch=Missing("not in this build"))
    reason = probe_pair(backend, cat["exp"], DType.float32, cat)
    assert reason is not None and "not in this build" in reason


def test_a_backend_that_raises_is_unsupported_with_the_error() -> None:
    class Broken:
        name, lowering = "broken", "torch"

        def available(self) -> bool:
            return True

        def version(self) -> str:
            return "0"

        def prepare(self, model):  # type: ignore[no-untyped-def]
            raise RuntimeError("no kernel for this")

        def run(self, prepared, inputs):  # type: ignore[no-untyped-def]
            return []

    stages: list[str] = []
    found = probe_all(Broken(), catalog(), [("exp", "float32"), ("add", "int32")], stages.append)  # type: ignore[arg-type]
    assert set(found) == {("exp", "float32"), ("add", "int32")}
    assert all("RuntimeError: no kernel for this" in why for why in found.values())
    assert stages == ["probe:broken:exp:float32", "probe:broken:add:int32"]


def test_the_cache_round_trips_per_backend_and_version(tmp_path: Path) -> None:
    cache = ProbeCache(tmp_path, catalog())
    caps = Capabilities("torch_eager", "torch-9.9", {("exp", "bfloat16"): "NotImplementedError: x"}, 800)
    path = cache.save(caps)
    assert path.is_file()
    loaded = cache.load("torch_eager", "torch-9.9")
    assert loaded == caps and not loaded.supports("exp", "bfloat16") and loaded.supports("exp", "float32")
    assert cache.load("torch_eager", "torch-10.0") is None  # a new version probes again
    path.write_text("{ not json")
    assert cache.load("torch_eager", "torch-9.9") is None  # a damaged cache probes again


def test_a_tiny_supported_set_is_refused() -> None:
    pairs = all_pairs(catalog())
    unsupported = {p: "ImportError: libfoo.so" for p in pairs[: int(len(pairs) * 0.9)]}
    with pytest.raises(GauntletError, match="looks broken"):
        Capabilities("x", "1", unsupported, len(pairs)).check_not_tiny()
    Capabilities("x", "1", dict(list(unsupported.items())[:100]), len(pairs)).check_not_tiny()
