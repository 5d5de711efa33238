"""Re-checks a candidate counterexample on the real model (onnxruntime / torch) in the
model's own input dtype; only a confirmed one becomes a Counterexample."""

from __future__ import annotations

import numpy as np

from generators.load.model import LoadedModel
from verify.property import Disjunct


def to_model_dtype(model: LoadedModel, disjunct: Disjunct, x: np.ndarray) -> np.ndarray | None:
    """x rounded to the model's input dtype while staying in the disjunct's region (rounding
    can step outside a box bound or a ball by one ulp); None if that is impossible."""
    dtype = np.dtype(model.input_type.dtype.value) if model.input_type.dtype.value != "bfloat16" else np.float32
    flat = np.ravel(np.asarray(x, dtype=np.float64))
    if disjunct.l2_center is not None:
        # Pull slightly toward the center so rounding cannot push the point out of the ball.
        flat = disjunct.l2_center + (flat - disjunct.l2_center) * (1 - 1e-6)
    rounded = flat.astype(dtype)
    low = rounded.astype(np.float64) < disjunct.lower
    rounded[low] = np.nextafter(rounded[low], np.asarray(np.inf, dtype=dtype))
    high = rounded.astype(np.float64) > disjunct.upper
    rounded[high] = np.nextafter(rounded[high], np.asarray(-np.inf, dtype=dtype))
    if not disjunct.inside(rounded.astype(np.float64)):
        return None
    return rounded.reshape(model.input_type.shape)


def confirm(model: LoadedModel, disjunct: Disjunct, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(x as fed, real output) when the real model's output on x violates the disjunct."""
    fed = to_model_dtype(model, disjunct, x)
    if fed is None:
        return None
    y = np.asarray(model.run_real(fed), dtype=np.float64)
    if not np.all(np.isfinite(y)):
        return None
    return (fed, y) if disjunct.violated_by(fed.astype(np.float64), y) else None
