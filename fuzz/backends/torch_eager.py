"""PyTorch eager mode on the CPU: the graph as an nn.Module, run op by op."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fuzz.backends.base import Model


class TorchEager:
    name = "torch_eager"
    lowering = "torch"
    differentiable = True  # has gradients(): takes part in the gradient oracle
    device = "cpu"

    def available(self) -> bool:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False
        return True

    def version(self) -> str:
        import torch

        return f"torch-{torch.__version__}"

    def prepare(self, model: Model) -> Any:
        return model.torch_module(self.device)

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        from generators.materialize import torch as mt

        return mt.run(prepared, inputs, self.device)

    def gradients(self, prepared: Any, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray]) -> list[np.ndarray]:
        from generators.materialize import torch as mt

        return mt.gradients(prepared, inputs, cotangents, self.device)
