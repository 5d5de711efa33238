"""A third-party Gauntlet backend, as a user would write it for their own compiler: here
TorchScript (torch.jit.trace + freeze), plugged in without editing Gauntlet:

    gauntlet run --backends torch_eager,examples/torchscript_backend.py:TorchScript

or registered by a package under the `gauntlet.backends` entry-point group:

    [project.entry-points."gauntlet.backends"]
    torchscript = "my_package.backend:TorchScript"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class TorchScript:
    name = "torchscript"
    lowering = "torch"  # runs the operators' torch lowerings (see `gauntlet ops`)
    probe_lazily = True  # compile per graph is slow: find unsupported operators on failure

    def available(self) -> bool:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False
        return True

    def version(self) -> str:
        import torch

        return f"torchscript-{torch.__version__}"

    def prepare(self, model: Any) -> Any:
        """The compile stage: `model` is a fuzz.backends.Model (graph, weights, example
        inputs, and helpers that build the torch / tf / ONNX model)."""
        import torch

        from generators.materialize.torch import to_tensor

        module = model.torch_module()
        example = tuple(to_tensor(x) for x in model.example_inputs)
        with torch.no_grad():
            traced = torch.jit.trace(module, example, check_trace=False)
        return torch.jit.freeze(traced.eval())

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The run stage: NumPy in, NumPy out (one array per graph output)."""
        import torch

        from generators.materialize.torch import to_numpy, to_tensor

        with torch.no_grad():
            outputs = prepared(*[to_tensor(x) for x in inputs])
        return [to_numpy(o) for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
