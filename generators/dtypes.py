"""Tensor element types and their mappings to NumPy, PyTorch and TensorFlow.

Owns the DType enum only; framework modules are passed in, never imported here.
"""

from __future__ import annotations

import builtins
import enum
from typing import Any, cast

import numpy as np


class DType(enum.Enum):
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"
    float64 = "float64"
    int8 = "int8"
    int16 = "int16"
    int32 = "int32"
    int64 = "int64"
    uint8 = "uint8"
    bool = "bool"

    @property
    def is_float(self) -> builtins.bool:
        return self in FLOATS

    @property
    def is_int(self) -> builtins.bool:
        return self in INTS

    @property
    def is_bool(self) -> builtins.bool:
        return self is DType.bool

    @property
    def bits(self) -> int:
        return _BITS[self]

    def numpy(self) -> np.dtype[Any]:
        """The NumPy dtype; bfloat16 comes from ml_dtypes (shipped with TensorFlow/JAX)."""
        if self is DType.bfloat16:
            import ml_dtypes

            return cast(np.dtype[Any], np.dtype(ml_dtypes.bfloat16))
        return cast(np.dtype[Any], np.dtype(self.value))

    def torch(self, torch: Any) -> Any:
        """The torch dtype, given the torch module."""
        return getattr(torch, self.value)

    def tf(self, tf: Any) -> Any:
        """The tf.DType, given the tensorflow module."""
        return getattr(tf, self.value)

    @classmethod
    def parse(cls, name: str) -> DType:
        from generators.errors import GauntletError

        try:
            return cls(name)
        except ValueError:
            known = ", ".join(d.value for d in cls)
            raise GauntletError(f"unknown dtype {name!r}; known: {known}") from None

    @classmethod
    def from_numpy(cls, dtype: np.dtype[Any]) -> DType:
        name = "bfloat16" if dtype.name == "bfloat16" else dtype.name
        return cls.parse(name)


_BITS = {
    DType.float16: 16,
    DType.bfloat16: 16,
    DType.float32: 32,
    DType.float64: 64,
    DType.int8: 8,
    DType.int16: 16,
    DType.int32: 32,
    DType.int64: 64,
    DType.uint8: 8,
    DType.bool: 8,
}

FLOATS: frozenset[DType] = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})
SIGNED_INTS: frozenset[DType] = frozenset({DType.int8, DType.int16, DType.int32, DType.int64})
INTS: frozenset[DType] = SIGNED_INTS | {DType.uint8}
NUMERIC: frozenset[DType] = FLOATS | INTS
ALL: frozenset[DType] = NUMERIC | {DType.bool}


def ordered(dtypes: frozenset[DType] | set[DType]) -> tuple[DType, ...]:
    """A deterministic order (enum declaration order), so seeded choices are reproducible."""
    return tuple(d for d in DType if d in dtypes)
