"""Active probing's mutations: small edits of a recorded invocation (one dimension, a rank,
an int attribute, a dtype, a flag) whose acceptance by the framework teaches inference
where an API's valid region ends."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from generators.rules.trace import Arg, Invocation

# Dtypes a dtype mutation may move every tensor of one dtype to.
PROBE_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool")
MAX_DIM = 64  # dims a mutation creates stay small: probing runs real kernels
MAX_RANK = 6

Mutation = Callable[[Invocation, np.random.Generator], Invocation | None]


def _replace(inv: Invocation, name: str, arg: Arg) -> Invocation:
    """`inv` with the argument called `name` (a{i} or a keyword) replaced."""
    if name.startswith("a") and name[1:].isdigit() and int(name[1:]) < len(inv.args):
        i = int(name[1:])
        return Invocation(inv.api, inv.args[:i] + (arg,) + inv.args[i + 1:], inv.kwargs)
    return Invocation(inv.api, inv.args, tuple((k, arg if k == name else a) for k, a in inv.kwargs))


def _pick(rng: np.random.Generator, items: list[tuple[str, Arg]]) -> tuple[str, Arg] | None:
    return items[int(rng.integers(len(items)))] if items else None


def _near(value: int, rng: np.random.Generator, low: int) -> int:
    """A value near `value`: off by one or two, doubled, halved, or a boundary."""
    options = [value + 1, value - 1, value + 2, value * 2, value // 2, low, low + 1]
    options = [v for v in options if v != value and v >= low]
    return int(options[int(rng.integers(len(options)))]) if options else value + 1


def change_dim(inv: Invocation, rng: np.random.Generator) -> Invocation | None:
    chosen = _pick(rng, [(n, a) for n, a in inv.tensors() if a.rank > 0])
    if chosen is None:
        return None
    name, arg = chosen
    shape = list(arg.shape or ())
    j = int(rng.integers(len(shape)))
    shape[j] = min(_near(shape[j], rng, 0), MAX_DIM)
    return _replace(inv, name, Arg.tensor(shape, arg.dtype or "float32"))


def copy_shape(inv: Invocation, rng: np.random.Generator) -> Invocation | None:
    """One tensor takes another's shape: elementwise APIs are valid on equal shapes."""
    tensors = inv.tensors()
    if len(tensors) < 2:
        return None
    i, j = rng.choice(len(tensors), size=2, replace=False)
    (name, arg), (_, source) = tensors[int(i)], tensors[int(j)]
    if arg.shape == source.shape:
        return None
    return _replace(inv, name, Arg.tensor(source.shape or (), arg.dtype or "float32"))


def change_rank(inv: Invocation, rng: np.random.Generator) -> Invocation | None:
    chosen = _pick(rng, inv.tensors())
    if chosen is None:
        return None
    name, arg = chosen
    shape = list(arg.shape or ())
    if shape and (len(shape) >= MAX_RANK or rng.random() < 0.5):
        del shape[int(rng.integers(len(shape)))]
    else:
        shape.insert(int(rng.integers(len(shape) + 1)), int(rng.integers(1, 5)))
    return _replace(inv, name, Arg.tensor(shape, arg.dtype or "float32"))


def change_int(inv: Invocation, rng: np.random.Generator) -> Invocation | None:
    chosen = _pick(rng, [(n, a) for n, a in inv.named() if a.kind in ("int", "ints") and a.value != ()])
    if chosen is None:
        return None
    name, arg = chosen
    if arg.kind == "int" and isinstance(arg.value, int):
        return _replace(inv, name, Arg("int", value=_near(arg.value, rng, -1)))
    values = list(arg.ints)
    if not values:
        return None
    j = int(rng.integers(len(values)))
    values[j] = _near(values[j], rng, -1)
    return _replace(inv, name, Arg("ints", value=tuple(values)))


def change_dtype(inv: Invocation, rng: np.random.Generator) -> Invocation | None:
    """Every tensor of one dtype moves to another (mixed-dtype calls stay mixed the same way)."""
    present = sorted({a.dtype for _, a in inv.tensors() if a.dtype})
    if not present:
        return None
    old = present[int(rng.integers(len(present)))]
    new = [d for d in PROBE_DTYPES if d != old]
    target = new[int(rng.integers(len(new)))]
    out = inv
    for name, arg in inv.tensors():
        if arg.dtype == old:
            out = _replace(out, name, Arg.tensor(arg.shape or (), target))
    return out


def flip_bool(inv: Invocation, rng: np.random.Generator) -> Invocation | None:
    chosen = _pick(rng, [(n, a) for n, a in inv.named() if a.kind == "bool"])
    if chosen is None:
        return None
    name, arg = chosen
    return _replace(inv, name, Arg("bool", value=not arg.value))


# Dimension and attribute edits keep the signature (they teach predicates); rank and dtype
# edits reach new signatures and dtypes, so they are drawn less often.
MUTATIONS: tuple[tuple[Mutation, float], ...] = (
    (change_dim, 4.0), (copy_shape, 1.0), (change_int, 3.0), (change_rank, 1.0),
    (change_dtype, 1.5), (flip_bool, 0.5),
)


def mutations(inv: Invocation, rng: np.random.Generator, count: int) -> list[Invocation]:
    """Up to `count` distinct invocations, each one small edit away from `inv`."""
    weights = np.array([w for _, w in MUTATIONS])
    weights /= weights.sum()
    seen = {inv}
    out: list[Invocation] = []
    for _ in range(count * 8):
        if len(out) >= count:
            break
        mutate = MUTATIONS[int(rng.choice(len(MUTATIONS), p=weights))][0]
        candidate = mutate(inv, rng)
        if candidate is not None and candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
    return out
