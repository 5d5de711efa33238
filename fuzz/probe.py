"""Capability probing: which operator x dtype pairs a backend can run at all, found by
running each pair alone on small generated instances, cached on disk per backend name,
backend version and catalog, so "not implemented" never shows up as a bug.

`probe_pair` runs inside a sandbox worker; `ProbeCache` is the on-disk store. Imports no
framework.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fuzz.backends.base import Backend, Model
from generators.dtypes import DType, ordered
from generators.errors import GauntletError
from generators.graph_gen import single_node_graph
from generators.instantiate import Instantiator, Limits
from generators.spec import Missing, OpSpec
from generators.values import make_feed

Pair = tuple[str, str]  # (operator, dtype name)

# A backend that runs less than this share of what its lowerings declare is broken (a
# missing library, a wrong device), not a backend with gaps: refuse to fuzz with it.
MIN_SUPPORTED_SHARE = 0.2
PROBE_LIMITS = Limits(max_dim=4, max_elements=256)


def all_pairs(catalog: Mapping[str, OpSpec]) -> list[Pair]:
    return [(name, d.value) for name, spec in sorted(catalog.items()) for d in ordered(spec.dtypes)]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def probe_pair(backend: Backend, spec: OpSpec, dtype: DType, catalog: Mapping[str, OpSpec], seed: int = 0, tries: int = 2) -> str | None:
    """None if `backend` runs `spec` at `dtype` on some small instance, else why not."""
    lowering = spec.lowering(backend.lowering)
    if isinstance(lowering, Missing):
        return f"no {backend.lowering} lowering: {lowering.reason}"
    rng = np.random.default_rng(seed)
    instantiator = Instantiator(PROBE_LIMITS)
    first_error: str | None = None
    attempts = 0
    for _ in range(tries * 10):
        if attempts == tries:
            break
        lo, _hi = spec.arity_range()
        instance = instantiator.instantiate(spec, rng, [None] * lo, dtype)
        if instance is None:
            continue
        graph = single_node_graph(instance)
        feed = make_feed(graph, rng, catalog)
        if feed is None:
            continue
        attempts += 1
        inputs = feed.inputs(graph)
        try:
            prepared = backend.prepare(Model(graph, feed.weights(graph), tuple(inputs), catalog))
            backend.run(prepared, inputs)
            return None
        except Exception as exc:  # any failure to run is "unsupported" for a lone operator
            first_error = first_error or first_line(exc)
    # No instance could be built: the generator cannot produce the pair either.
    return first_error


def catalog_digest(catalog: Mapping[str, OpSpec]) -> str:
    """Changes when any operator family's source changes (lowerings, dtypes, domains)."""
    h = hashlib.sha256()
    import generators.ops as ops_pkg

    for path in sorted(Path(ops_pkg.__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(",".join(sorted(catalog)).encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """$GAUNTLET_CACHE_DIR, else $XDG_CACHE_HOME/gauntlet, else ~/.cache/gauntlet."""
    explicit = os.environ.get("GAUNTLET_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gauntlet"


@dataclass(frozen=True)
class Capabilities:
    """One backend's probe: the pairs it cannot run, each with the reason."""

    backend: str
    version: str
    unsupported: Mapping[Pair, str]
    probed: int

    def supports(self, op: str, dtype: str) -> bool:
        return (op, dtype) not in self.unsupported

    def check_not_tiny(self) -> None:
        supported = self.probed - len(self.unsupported)
        if self.probed and supported < MIN_SUPPORTED_SHARE * self.probed:
            sample = "; ".join(f"{op}/{dt}: {why}" for (op, dt), why in list(self.unsupported.items())[:3])
            raise GauntletError(
                f"backend {self.backend} ({self.version}) runs only {supported} of {self.probed} operator x dtype "
                f"pairs; it looks broken, not incomplete (e.g. {sample})"
            )

    def to_json(self) -> str:
        rows = [{"op": op, "dtype": dt, "reason": why} for (op, dt), why in sorted(self.unsupported.items())]
        return json.dumps({"backend": self.backend, "version": self.version, "probed": self.probed, "unsupported": rows}, indent=1)

    @staticmethod
    def from_json(text: str) -> Capabilities:
        data = json.loads(text)
        return Capabilities(
            data["backend"], data["version"], {(r["op"], r["dtype"]): r["reason"] for r in data["unsupported"]}, int(data["probed"])
        )


class ProbeCache:
    """Probe results on disk: one JSON file per (backend, version, catalog digest)."""

    def __init__(self, root: Path, catalog: Mapping[str, OpSpec]) -> None:
        self.root = root
        self.digest = catalog_digest(catalog)

    def path(self, backend: str, version: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{backend}-{version}")
        return self.root / "probes" / f"{safe}-{self.digest}.json"

    def load(self, backend: str, version: str) -> Capabilities | None:
        path = self.path(backend, version)
        try:
            return Capabilities.from_json(path.read_text())
        except (OSError, ValueError, KeyError):
            return None

    def save(self, caps: Capabilities) -> Path:
        path = self.path(caps.backend, caps.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(caps.to_json() + "\n")
        tmp.replace(path)
        return path


def probe_all(
    backend: Backend, catalog: Mapping[str, OpSpec], pairs: list[Pair], note: Callable[[str], None]
) -> dict[Pair, str]:
    """Probe `pairs` in order, announcing each so a crash is attributed to its pair."""
    unsupported = {}
    for op, dt in pairs:
        note(f"probe:{backend.name}:{op}:{dt}")
        reason = probe_pair(backend, catalog[op], DType(dt), catalog)
        if reason is not None:
            unsupported[(op, dt)] = reason
    return unsupported
