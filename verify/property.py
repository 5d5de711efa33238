"""What the verifier decides: an unsafe set as a union of disjuncts, each an input box and
a conjunction of linear output constraints over the flattened input X and output Y.
Pure data; VNN-LIB files and robustness specs are translated into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Disjunct:
    """Unsafe when `lower <= x <= upper` and `C @ y <= d` (every row). `C` has shape
    [k, n_outputs] and `d` shape [k]; k == 0 means every output in the box is unsafe.
    With `l2_center`, x must also lie within `l2_radius` of it (Euclidean distance)."""

    lower: np.ndarray
    upper: np.ndarray
    C: np.ndarray
    d: np.ndarray
    l2_center: np.ndarray | None = None
    l2_radius: float = 0.0

    def inside(self, x: np.ndarray) -> bool:
        x = np.ravel(x)
        if not (np.all(x >= self.lower) and np.all(x <= self.upper)):
            return False
        return self.l2_center is None or float(np.linalg.norm(x - self.l2_center)) <= self.l2_radius

    def violated_by(self, x: np.ndarray, y: np.ndarray, slack: float = 0.0) -> bool:
        """Whether the concrete pair (x, y), flattened, lies in this unsafe set."""
        return self.inside(x) and bool(np.all(self.C @ np.ravel(y) <= self.d + slack))


@dataclass(frozen=True, eq=False)
class Property:
    """The unsafe set is the union of `disjuncts`; the property holds when no input reaches
    it. `n_inputs`/`n_outputs` are the flattened sizes the constraints refer to."""

    n_inputs: int
    n_outputs: int
    disjuncts: tuple[Disjunct, ...]
    source: str = ""

    def violated_by(self, x: np.ndarray, y: np.ndarray) -> bool:
        return any(d.violated_by(x, y) for d in self.disjuncts)
