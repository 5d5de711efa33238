"""The verifier's answers: Verified, Counterexample (always re-checked on the real model)
and Unknown with its reason. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Verified:
    """No input of the property's region reaches the unsafe set. `margin` is the smallest
    certified lower bound on the violation (> 0) over the pieces that needed bounds."""

    method: str
    margin: float
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    status = "verified"


@dataclass(frozen=True, eq=False)
class Counterexample:
    """`x` (model input shape, values exactly as fed to the real model) makes the real model
    output `y`, which violates disjunct number `disjunct` of the property."""

    x: np.ndarray
    y: np.ndarray
    disjunct: int
    method: str
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    status = "counterexample"


@dataclass(frozen=True, eq=False)
class Unknown:
    """Undecided: a timeout, an exhausted budget, or a limit of the methods, in `reason`."""

    reason: str
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    status = "unknown"


Verdict = Verified | Counterexample | Unknown
