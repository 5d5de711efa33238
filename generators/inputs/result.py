"""The one value every hard-input generator returns: the inputs, where they came from, what the
model says about them, and every parameter that produced them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CATEGORIES", "HardInputs"]

# The input categories a supervisor is scored on, against nominal data.
CATEGORIES = ("adversarial", "fooling", "ambiguous", "corrupted")


@dataclass(frozen=True)
class HardInputs:
    """`x` [N, *input_shape] float32, inside the model's bounds. `source[i]` is the index of the
    seed sample input i was made from (-1 when made from noise). `labels` [N, classes] are the
    soft labels a correct model should give (one-hot of the seed's label for adversarial and
    corrupted inputs, the balanced pair for ambiguous ones), or None where no label is right
    (fooling inputs). `predicted` [N, classes] are the model's probabilities, re-run on `x`.
    `params` records every parameter, seed included, so the set can be made again."""

    category: str
    method: str
    x: np.ndarray
    source: np.ndarray
    labels: np.ndarray | None
    predicted: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; one of {', '.join(CATEGORIES)}")
        n = len(self.x)
        if len(self.source) != n or len(self.predicted) != n or (self.labels is not None and len(self.labels) != n):
            raise ValueError("x, source, labels and predicted must have one row per input")

    def __len__(self) -> int:
        return len(self.x)
