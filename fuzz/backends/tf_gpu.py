"""TensorFlow eager mode on a GPU; unavailable without one."""

from __future__ import annotations

from fuzz.backends.tf_eager import TfEager


class TfGpu(TfEager):
    name = "tf_gpu"
    device = "/GPU:0"

    def available(self) -> bool:
        if not super().available():
            return False
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
