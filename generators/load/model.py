"""A model the verifier works on: its graph in the Gauntlet IR with weights, and a way to
run the real model (onnxruntime, torch) so that every counterexample is re-checked on it.
Imports no framework; the loaders (`generators.load.onnx`, `generators.load.torch`) do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from generators.errors import GauntletError
from generators.ir import Graph, TensorType


class ModelError(GauntletError):
    """The model cannot be loaded or verified as given (e.g. an unsupported operator)."""


@dataclass(frozen=True)
class LoadedModel:
    """`graph` has exactly one `input` placeholder and one output; `weights` maps every
    `weight` placeholder index to its array. `run_real(x)` runs the original model (not
    the IR) on one input of `graph`'s input shape, cast to the model's own dtype, and
    returns its output as float64 in `graph`'s output shape."""

    graph: Graph
    weights: Mapping[int, np.ndarray]
    run_real: Callable[[np.ndarray], np.ndarray]
    description: str

    @property
    def input_type(self) -> TensorType:
        return self.graph.placeholders[self.graph.input_indices[0]].type

    @property
    def output_type(self) -> TensorType:
        return self.graph.type_of(self.graph.outputs[0])

    @property
    def input_size(self) -> int:
        return self.input_type.size

    @property
    def output_size(self) -> int:
        return self.output_type.size
