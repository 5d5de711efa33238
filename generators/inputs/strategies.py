"""Hypothesis strategies over hard inputs for one model: adversarial points near a sample,
corrupted versions of it, fooling and ambiguous inputs. All randomness comes from Hypothesis'
draws, so failures replay and shrink; the fooling and ambiguous generators load lazily."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.inputs.adversarial import NORMS, pgd_points
from generators.inputs.corrupt import FAMILIES, SEVERITIES, corrupt, severity_parameter

__all__ = ["adversarial_inputs", "ambiguous_inputs", "corrupted_inputs", "fooling_inputs"]

_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def _one_sample(adapter: ModelAdapter, x: np.ndarray, label: int | None) -> tuple[np.ndarray, int]:
    batch = adapter.as_batch(x)
    if len(batch) != 1:
        raise GauntletError(f"give one sample of shape {adapter.input_shape}, not a batch of {len(batch)}")
    chosen = int(adapter.predict(batch)[0]) if label is None else int(label)
    return batch, chosen


def adversarial_inputs(
    adapter: ModelAdapter,
    x: np.ndarray,
    eps: float,
    norm: str = "linf",
    steps: int = 20,
    *,
    label: int | None = None,
    step_size: float | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Points inside the eps-ball around the one sample `x` (and inside the model's bounds):
    PGD run from a start drawn inside the ball, stopped as soon as the model changes its mind.
    The start is `x` plus a drawn fraction of eps along a seeded direction, so a failure shrinks
    to PGD from `x` itself. `label` defaults to the model's prediction on `x`. Use as
    `@given(adversarial_inputs(adapter, x0, eps=0.1))` with `assert adapter.predict(x) == label`."""
    if norm not in NORMS:
        raise GauntletError(f"unknown norm {norm!r}; one of {', '.join(NORMS)}")
    if not eps > 0:
        raise GauntletError(f"eps must be positive, not {eps}")
    batch, chosen = _one_sample(adapter, x, label)
    labels = np.array([chosen])

    def build(seed: int, fraction: float) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if norm == "linf":
            direction = rng.uniform(-1.0, 1.0, size=batch.shape)
        else:
            direction = rng.normal(size=batch.shape)
            direction /= max(float(np.linalg.norm(direction)), 1e-12)
        start = (batch + fraction * eps * direction).astype(np.float32)
        points = pgd_points(
            adapter, batch, labels, start, eps=eps, norm=norm, steps=steps, step_size=step_size
        )
        return np.asarray(points[0])

    return st.builds(build, _SEEDS, st.floats(min_value=0.0, max_value=1.0))


def corrupted_inputs(
    adapter: ModelAdapter,
    x: np.ndarray,
    families: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    *,
    label: int | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """The one sample `x` corrupted by a drawn family, severity and seed (shrinking towards the
    first family, the mildest severity and seed 0). By default every family that applies to the
    model's input shape (flat inputs: noise and contrast only)."""
    if families is None:
        families = [f for f in FAMILIES if len(adapter.input_shape) >= 2 or f in ("noise", "contrast")]
    families = list(families)
    if not families or not severities:
        raise GauntletError("give at least one corruption family and one severity")
    for family in families:
        for severity in severities:
            severity_parameter(
                family, severity, adapter.input_shape, adapter.bounds
            )  # rejects bad requests now
    batch, chosen = _one_sample(adapter, x, label)
    labels = np.array([chosen])

    def build(family: str, severity: int, seed: int) -> np.ndarray:
        return np.asarray(corrupt(adapter, batch, labels, family=family, severity=severity, seed=seed).x[0])

    return st.builds(build, st.sampled_from(families), st.sampled_from(sorted(severities)), _SEEDS)


def _pooled(make: Callable[[], np.ndarray], what: str) -> st.SearchStrategy[np.ndarray]:
    """Draws from a pool made on the first draw and kept: the generators behind these train or
    search for seconds, far too long to run once per example."""
    pool: list[np.ndarray] = []

    @st.composite
    def draw_one(draw: st.DrawFn) -> np.ndarray:
        if not pool:
            made = make()
            if not len(made):
                raise GauntletError(f"the {what} generator found no inputs to draw from; raise its budget")
            pool.append(made)
        index = draw(st.integers(min_value=0, max_value=len(pool[0]) - 1))
        return np.array(pool[0][index])

    return draw_one()


def fooling_inputs(
    adapter: ModelAdapter,
    classes: Sequence[int] | None = None,
    *,
    per_class: int = 2,
    seed: int = 0,
    **options: Any,
) -> st.SearchStrategy[np.ndarray]:
    """Fooling inputs (confidently classified, far from data) drawn from one pool of `per_class`
    inputs per class, made with `generators.inputs.fooling.fooling(adapter, classes=..., seed=...,
    **options)` on the first draw."""

    def make() -> np.ndarray:
        from generators.inputs.fooling import fooling

        return fooling(adapter, classes=classes, per_class=per_class, seed=seed, **options).x

    return _pooled(make, "fooling")


def ambiguous_inputs(
    adapter: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    pairs: Sequence[Sequence[int]] | str | None = None,
    per_pair: int = 4,
    seed: int = 0,
    **options: Any,
) -> st.SearchStrategy[np.ndarray]:
    """Ambiguous inputs (split between two classes) drawn from one pool made with
    `generators.inputs.ambiguous.ambiguous(adapter, x, y, pairs=..., per_pair=..., seed=...,
    **options)` on the first draw."""

    def make() -> np.ndarray:
        from generators.inputs.ambiguous import ambiguous

        return ambiguous(adapter, x, y, pairs=pairs, per_pair=per_pair, seed=seed, **options).x

    return _pooled(make, "ambiguous")
