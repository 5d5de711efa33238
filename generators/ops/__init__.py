"""The operator catalog: every hand-written OpSpec, one module per operator family.

`catalog()` collects the families' `OPS` tuples into an immutable mapping; nothing is
registered at import time and nothing here imports a framework.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from generators.spec import OpSpec


def _families() -> tuple[tuple[OpSpec, ...], ...]:
    from generators.ops import (
        activation,
        binary,
        conv,
        index,
        linear,
        misc,
        norm,
        pool,
        reduce,
        resize,
        shape,
        softmax,
        unary,
    )

    return (
        unary.OPS,
        activation.OPS,
        softmax.OPS,
        binary.OPS,
        reduce.OPS,
        linear.OPS,
        norm.OPS,
        misc.OPS,
        conv.OPS,
        pool.OPS,
        resize.OPS,
        shape.OPS,
        index.OPS,
    )


@functools.cache
def catalog() -> Mapping[str, OpSpec]:
    """All operators by name. Raises if two families define the same name."""
    ops: dict[str, OpSpec] = {}
    for family in _families():
        for spec in family:
            if spec.name in ops:
                raise RuntimeError(f"operator {spec.name!r} is defined twice")
            ops[spec.name] = spec
    return MappingProxyType(ops)
