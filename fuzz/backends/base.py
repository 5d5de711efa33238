"""The backend protocol: what Gauntlet needs from an engine that runs a model, and the
model handed to it. Imports no framework (Model's helpers import one lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from generators.ir import Graph
from generators.spec import OpSpec


@dataclass(frozen=True)
class Model:
    """A concrete graph with its weights: what `Backend.prepare` receives.

    The helpers build the framework model a backend usually starts from, so a third-party
    backend (a user's compiler) can take a torch module, a tf.Module or an ONNX model.
    """

    graph: Graph
    weights: Mapping[int, np.ndarray]
    # The inputs run() will receive: for compilers that trace or specialize on examples.
    example_inputs: tuple[np.ndarray, ...] = ()
    catalog: Mapping[str, OpSpec] = field(repr=False, default_factory=dict)
    # How many independent test graphs `graph` joins side by side (see `batchable`): a
    # compiler may schedule such a union differently from a single model.
    parts: int = 1

    def _catalog(self) -> Mapping[str, OpSpec]:
        if self.catalog:
            return self.catalog
        from generators.ops import catalog

        return catalog()

    def torch_module(self, device: str = "cpu") -> Any:
        from generators.materialize import torch as mt

        return mt.to_torch(self.graph, self.weights, self._catalog(), device)

    def tf_module(self) -> Any:
        from generators.materialize import tensorflow as mtf

        return mtf.to_tensorflow(self.graph, self.weights, self._catalog())

    def onnx_model(self, bfloat16_io_as_float32: bool = False) -> Any:
        from generators.materialize import onnx as mo

        return mo.to_onnx(self.graph, self.weights, self._catalog(), bfloat16_io_as_float32)


@runtime_checkable
class Backend(Protocol):
    """An engine under test. `prepare` is the compile stage, `run` the run stage; both raise
    on failure (the sandbox turns exceptions and crashes into outcomes).

    `lowering` names the operator lowerings the backend executes ("torch", "tensorflow" or
    "onnx"): capability probing and the reproducer writer use it.
    """

    name: str
    lowering: str

    def available(self) -> bool: ...

    def version(self) -> str: ...

    def prepare(self, model: Model) -> Any: ...

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


@runtime_checkable
class GradientBackend(Backend, Protocol):
    """A backend that can also differentiate: the gradient of sum(outputs * cotangents)
    with respect to every float `input` placeholder (the second oracle). It declares
    `differentiable = True`."""

    differentiable: bool

    def gradients(
        self, prepared: Any, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray]
    ) -> list[np.ndarray]: ...
