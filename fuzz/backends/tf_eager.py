"""TensorFlow eager mode on the CPU: the graph as a tf.Module, run op by op."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fuzz.backends.base import Model


class TfEager:
    name = "tf_eager"
    lowering = "tensorflow"
    differentiable = True  # has gradients(): takes part in the gradient oracle
    device = "/CPU:0"

    def available(self) -> bool:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            return False
        return True

    def version(self) -> str:
        import tensorflow as tf

        return f"tensorflow-{tf.__version__}"

    def prepare(self, model: Model) -> Any:
        import tensorflow as tf

        with tf.device(self.device):
            return model.tf_module()

    def run(self, prepared: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        from generators.materialize import tensorflow as mtf

        with tf.device(self.device):
            return mtf.run(prepared, inputs)

    def gradients(self, prepared: Any, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        from generators.materialize import tensorflow as mtf

        with tf.device(self.device):
            return mtf.gradients(prepared, inputs, cotangents)
