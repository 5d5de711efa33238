"""Corrupted inputs at declared severities (1..5): Gaussian noise, Gaussian blur, contrast loss
and occlusion, in NumPy only; every corrupted input is kept, fooled or not. Images are (C, H, W)
or (H, W) with the last two axes spatial; flat inputs take only noise and contrast."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.inputs.result import HardInputs

__all__ = ["FAMILIES", "SEVERITIES", "corrupt", "severity_parameter"]

FAMILIES = ("noise", "blur", "contrast", "occlusion")
SEVERITIES = (1, 2, 3, 4, 5)

# Per severity, after ImageNet-C (Hendrycks & Dietterich) where its values carry over:
# noise sigma as a fraction of the bounds' span; blur sigma in pixels for a 32-pixel image
# (scaled with the image's smaller side above 32); contrast factor towards the mean;
# occlusion side as a fraction of the image's smaller side.
_NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
_BLUR_SIGMA = (0.4, 0.6, 0.8, 1.0, 1.5)
_CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
_OCCLUSION = (0.15, 0.25, 0.35, 0.5, 0.65)
_SPATIAL = ("blur", "occlusion")


def severity_parameter(
    family: str, severity: int, input_shape: tuple[int, ...], bounds: tuple[float, float]
) -> float:
    """The concrete parameter of `family` at `severity` for inputs of this shape and bounds:
    noise sigma (input units), blur sigma (pixels), contrast factor, occlusion side (pixels)."""
    if family not in FAMILIES:
        raise GauntletError(f"unknown corruption family {family!r}; one of {', '.join(FAMILIES)}")
    if severity not in SEVERITIES:
        raise GauntletError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    if family in _SPATIAL and len(input_shape) < 2:
        raise GauntletError(
            f"{family} needs image inputs shaped (C, H, W) or (H, W); these inputs have shape {input_shape}; "
            "use noise or contrast for flat inputs"
        )
    level = severity - 1
    if family == "noise":
        return _NOISE_SIGMA[level] * (bounds[1] - bounds[0])
    if family == "contrast":
        return _CONTRAST[level]
    side = min(input_shape[-2:])
    if family == "blur":
        return _BLUR_SIGMA[level] * max(1.0, side / 32)
    return float(max(1, round(_OCCLUSION[level] * side)))


def _noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(x + rng.normal(0.0, sigma, size=x.shape))


def _contrast(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    mean = x.reshape(len(x), int(np.prod(x.shape[1:]))).mean(axis=1).reshape(-1, *([1] * (x.ndim - 1)))
    return np.asarray(mean + (x - mean) * factor)


def _blur_axis(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = len(kernel) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    # symmetric padding keeps the image's mean brightness near the borders.
    padded = np.pad(x, pad, mode="symmetric")
    size = x.shape[axis]
    out = np.zeros_like(x)
    for k, weight in enumerate(kernel):
        out += weight * np.take(padded, np.arange(k, k + size), axis=axis)
    return out


def _blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return _blur_axis(_blur_axis(x, kernel, x.ndim - 2), kernel, x.ndim - 1)


def _occlude(x: np.ndarray, side: float, fill: float, rng: np.random.Generator) -> np.ndarray:
    out = x.copy()
    size = int(side)
    height, width = x.shape[-2:]
    tops = rng.integers(0, height - size + 1, size=len(x))
    lefts = rng.integers(0, width - size + 1, size=len(x))
    for i, (top, left) in enumerate(zip(tops, lefts)):
        out[i, ..., top : top + size, left : left + size] = fill
    return out


def corrupt(
    adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, *, family: str, severity: int, seed: int = 0
) -> HardInputs:
    """Every input in `x` corrupted by `family` at `severity` (1..5) and clipped to the model's
    bounds; labels are the one-hot true labels, `predicted` the model's probabilities on the
    corrupted inputs. Noise and occlusion positions come from `seed`."""
    batch32, labels = adapter.labelled_batch(x, y)
    batch = batch32.astype(np.float64)
    low, high = adapter.bounds
    value = severity_parameter(family, severity, adapter.input_shape, adapter.bounds)
    rng = np.random.default_rng(seed)
    fill = (low + high) / 2
    apply: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
        "noise": _noise,
        "blur": _blur,
        "contrast": _contrast,
        "occlusion": lambda v, p, r: _occlude(v, p, fill, r),
    }
    out = np.clip(apply[family](batch, value, rng), low, high).astype(np.float32)
    out = np.clip(out, np.float32(low), np.float32(high))
    predicted = (
        adapter.probabilities(out).astype(np.float32) if len(out) else np.zeros((0, adapter.num_classes))
    )
    one_hot = np.zeros((len(labels), adapter.num_classes), dtype=np.float32)
    one_hot[np.arange(len(labels)), labels] = 1.0
    names = {"noise": "sigma", "blur": "sigma_pixels", "contrast": "factor", "occlusion": "side_pixels"}
    params: dict[str, object] = {
        "family": family,
        "severity": int(severity),
        names[family]: float(value),
        "seed": int(seed),
        "count": len(out),
        "misclassified": int((predicted.argmax(axis=1) != labels).sum()) if len(out) else 0,
    }
    if family == "occlusion":
        params["fill"] = float(fill)
    if family in _SPATIAL:
        params["spatial_axes"] = [-2, -1]
    return HardInputs(
        category="corrupted",
        method=family,
        x=out,
        source=np.arange(len(out), dtype=np.int64),
        labels=one_hot,
        predicted=predicted,
        params=params,
    )
