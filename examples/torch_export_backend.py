"""A third-party Gauntlet backend, as a user would write it for their own compiler: here
torch.export (the graph captured ahead of time, then run as an exported program), plugged
in without editing Gauntlet:

    gauntlet run --backends torch_eager,examples/torch_export_backend.py:TorchExport

or registered by a package under the `gauntlet.backends` entry-point group:

    [project.entry-points."gauntlet.backends"]
    torch_export = "my_package.backend:TorchExport"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class TorchExport:
    name = "torch_export"
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

        return f"torch-export-{torch.__version__}"

    def prepare(self, model: Any) -> Any:
        """The compile stage: `model` is a fuzz.backends.Model (graph, weights, example
        inputs, and helpers that build the torch / tf / ONNX model)."""
        import torch

        from generators.materialize.torch import to_tensor

        module = model.torch_module()
        example = tuple(to_tensor(x) for x in model.example_inputs)
        return torch.export.export(module, example).module()

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The run stage: NumPy in, NumPy out (one array per graph output)."""
        import torch

        from generators.materialize.torch import to_numpy, to_tensor

        with torch.no_grad():
            outputs = prepared(*[to_tensor(x) for x in inputs])
        return [to_numpy(o) for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
