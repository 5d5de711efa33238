"""A scheduler pass for inductor on the CPU that orders the kernels of several independent
test graphs compiled together so that each C++ translation unit holds as many as it can.

Inductor's C++ backend puts consecutive generated kernels into one file and starts a new file
at every extern call (convolution, matmul, sort, ...): each file costs a g++ run of about
0.6 s, most of it fixed. In a batch of unrelated graphs the default order interleaves every
extern call with the kernel that feeds it, so a batch of 8 graphs built 3-6 files. Ordering
the fused nodes by extern depth (every node that needs no extern result first, then the
externs that need only those, ...) builds one file per depth instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def extern_depth_order(nodes: Sequence[Any]) -> list[int]:
    """A topological order of inductor scheduler nodes (given in a topological order) that
    groups them by extern depth: the number of extern calls on the longest path to a node.
    Non-extern nodes of depth d come right after the extern nodes of depth d; ties keep the
    given order. Uses only `get_operation_names()`, `ancestors` (operation names) and
    `is_extern()`."""
    position: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in node.get_operation_names():
            position[name] = i
    depth: list[int] = []
    keys: list[tuple[int, int]] = []
    for i, node in enumerate(nodes):
        extern = 1 if node.is_extern() else 0
        before = (position[a] for a in node.ancestors if a in position and position[a] < i)
        d = max((depth[j] for j in before), default=0) + extern
        depth.append(d)
        # Externs of depth d (key 2d-1) precede the other nodes of depth d (key 2d): along
        # an edge u -> v the key never decreases, and only ties between non-externs remain,
        # broken by the given (topological) position.
        keys.append((2 * d - extern, i))
    return [i for _, i in sorted(keys)]


def group_by_extern_depth(nodes: list[Any]) -> list[Any]:
    """The pass itself (inductor's `_post_fusion_custom_pass`): `nodes` reordered by
    `extern_depth_order`, or unchanged if the result would run a node before one of its
    ancestors (a safety net: the pass must never change what the program computes)."""
    order = extern_depth_order(nodes)
    reordered = [nodes[i] for i in order]
    done: set[str] = set()
    names = {name for node in nodes for name in node.get_operation_names()}
    for node in reordered:
        if any(a in names and a not in done for a in node.ancestors if a not in node.get_operation_names()):
            return nodes
        done.update(node.get_operation_names())
    return reordered
