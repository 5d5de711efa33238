"""tf.signal.irfft2d (tensorflow 2.21.0) abort on this call, found by Gauntlet's probing.
Run: python repro.py (needs numpy and tensorflow; the inputs are the .npy files beside it)."""
from pathlib import Path

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent
print(tf.__version__, flush=True)
out = tf.signal.irfft2d(tf.cast(tf.constant(np.load(HERE / 'a0.npy')), tf.complex64))
print("returned normally")
