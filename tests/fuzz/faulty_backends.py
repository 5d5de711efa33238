"""Backends that fail for real (segfault, abort, hang, memory blow-up, exception), used
through the sandbox to check that each failure becomes a classified outcome."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from fuzz.backends.torch_eager import TorchEager


class _Faulty(TorchEager):
    probe_lazily = True  # probing every operator would crash once per pair

    def version(self) -> str:
        return "faulty-1"


class SegfaultOnRun(_Faulty):
    name = "segfault_on_run"

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


class AbortOnCompile(_Faulty):
    name = "abort_on_compile"

    def prepare(self, model: Any) -> Any:
        os.abort()


class HangOnRun(_Faulty):
    name = "hang_on_run"

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        while True:
            time.sleep(1)


class BlowUpOnRun(_Faulty):
    name = "blow_up_on_run"

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        hoard = []
        while True:
            hoard.append(np.ones(32 * 1024 * 1024, np.uint8))


class RejectsChains(_Faulty):
    """Runs every operator alone but refuses graphs of several operators: an inconsistency."""

    name = "rejects_chains"

    def prepare(self, model: Any) -> Any:
        if len(model.graph.nodes) > 1:
            raise ValueError("graphs of more than one operator are not supported")
        return super().prepare(model)


class RejectsExp(_Faulty):
    """Lacks one operator: graphs using it are unsupported, not bugs."""

    name = "rejects_exp"

    def prepare(self, model: Any) -> Any:
        if "exp" in model.graph.op_names():
            raise ValueError("exp is not supported by this backend")
        return super().prepare(model)


class WrongByOne(_Faulty):
    name = "wrong_by_one"

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [o + np.ones((), o.dtype) if o.dtype.kind in "fiu" else o for o in super().run(prepared, inputs)]


class WrongGradient(_Faulty):
    """Right forward results, gradients 5% too large."""

    name = "wrong_gradient"

    def gradients(self, prepared: Any, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [g * np.asarray(1.05, g.dtype) for g in super().gradients(prepared, inputs, cotangents)]


class EagerBatched(_Faulty):
    """torch eager, declared batchable: the runner hands it unions of test graphs."""

    name = "eager_batched"
    batchable = True
    sizes: list[int] = []  # graph sizes prepared in this process (tests read it in-process)

    def prepare(self, model: Any) -> Any:
        EagerBatched.sizes.append(len(model.graph.nodes))
        return super().prepare(model)


class WrongOnlyInUnions(EagerBatched):
    """Wrong results on big (union) graphs only: must not be reported for a single graph."""

    name = "wrong_only_in_unions"

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = super().run(prepared, inputs)
        if len(prepared.graph.nodes) > 3:
            return [o + np.ones((), o.dtype) if o.dtype.kind == "f" else o for o in outputs]
        return outputs


class BatchedRejectsExp(EagerBatched):
    """Batchable and lacking `exp`: a union holding one graph with `exp` fails to compile."""

    name = "batched_rejects_exp"
    calls: list[tuple[int, int, bool]] = []  # (parts, nodes, has exp) per prepare, in-process

    def prepare(self, model: Any) -> Any:
        has_exp = "exp" in model.graph.op_names()
        BatchedRejectsExp.calls.append((model.parts, len(model.graph.nodes), has_exp))
        if has_exp:
            raise ValueError("exp is not supported by this backend")
        return super().prepare(model)


class SegfaultOnUnions(EagerBatched):
    name = "segfault_on_unions"

    def prepare(self, model: Any) -> Any:
        if len(model.graph.nodes) > 3:
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().prepare(model)
