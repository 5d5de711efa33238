"""TensorFlow with XLA on the CPU: the graph's call wrapped in tf.function(jit_compile=True)."""

from __future__ import annotations

from typing import Any

from fuzz.backends.base import Model
from fuzz.backends.tf_eager import TfEager


class TfXla(TfEager):
    name = "tf_xla"
    # Compiling every operator x dtype up front would take many minutes: probe a pair
    # only when a graph using it fails.
    probe_lazily = True
    # Compilation dominates: the runner compiles several test graphs side by side at once
    # (a finding is re-checked on its graph alone before it is reported).
    batchable = True
    differentiable = False  # the gradient oracle covers the eager backends

    def prepare(self, model: Model) -> Any:
        import tensorflow as tf

        from generators.materialize import tensorflow as mtf

        with tf.device(self.device):
            module = model.tf_module()
            # autograph=False: lowerings are straight-line code, and AutoGraph's source
            # rewriting was most of the tracing time.
            compiled = tf.function(module.__call__, jit_compile=True, reduce_retracing=False, autograph=False)
            # Tracing and XLA compilation happen on the first call: do it here, so compile
            # errors belong to the compile stage.
            mtf.run(compiled, model.example_inputs)
        return compiled

