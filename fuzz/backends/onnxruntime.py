"""ONNX Runtime on the CPU, fed by Gauntlet's own exporter (generators/materialize/onnx.py),
with the runtime's full graph optimizations: a third, independent implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fuzz.backends.base import Model


class OnnxRuntime:
    name = "onnxruntime"
    lowering = "onnx"

    def available(self) -> bool:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            return False
        return True

    def version(self) -> str:
        import onnxruntime as ort

        return f"onnxruntime-{ort.__version__}"

    def prepare(self, model: Model) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread per session: the sandbox runs one worker per core.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(
            model.onnx_model(bfloat16_io_as_float32=True).SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return session, model.graph

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        from generators.materialize.onnx import feed_dict, fetched

        session, graph = prepared
        return fetched(graph, session.run(None, feed_dict(graph, inputs)))
