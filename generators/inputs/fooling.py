"""Fooling inputs (Nguyen, Yosinski, Clune 2015): inputs made from noise that the model assigns
to a chosen class with high confidence, by gradient ascent or by an evolutionary search over
directly encoded inputs. Imports torch and the adapter only; no framework-specific code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.inputs.result import HardInputs

__all__ = ["METHODS", "fooling", "nearest_distances", "nominal_spacing"]

METHODS = ("gradient", "evolution")
# Model evaluations per requested fooling input when no budget is given.
DEFAULT_BUDGET = {"gradient": 300, "evolution": 4000}
# The search aims slightly above the requested confidence so re-verification, which may batch
# differently and so round differently, does not drop inputs that sat exactly on the threshold.
_HEADROOM = 0.1


def fooling(
    adapter: ModelAdapter,
    *,
    method: str = "gradient",
    classes: Sequence[int] | None = None,
    per_class: int = 1,
    confidence: float = 0.99,
    seed: int = 0,
    budget: int | None = None,
    reference: np.ndarray | None = None,
    min_distance: float | None = None,
    step_size: float | None = None,
    noise_weight: float = 0.0,
    offspring: int = 32,
    mutation_rate: float = 0.1,
    mutation_scale: float = 0.3,
) -> HardInputs:
    """Up to `per_class` fooling inputs for each class in `classes` (default: every class), each
    started from uniform noise inside `adapter.bounds` and kept only when re-running the model
    on the float32 result gives the target class a probability >= `confidence`.

    `method="gradient"`: signed ascent on the target's log-probability (step `step_size`, default
    2% of the bounds' width), projected onto the bounds, minus `noise_weight` times the mean
    squared change from the starting noise (0 = no pull back to noise); a sample stops once it
    reaches the target. `method="evolution"`: MAP-Elites over directly encoded inputs, one
    archive (an elite per class, fitness = that class's probability) per fooling input slot;
    each generation mutates `offspring` copies of elites of unfinished target classes (each
    value with probability `mutation_rate`, by Gaussian noise of `mutation_scale` times the
    bounds' width, clipped) and every candidate may replace the elite of any class it scores
    best on, so classes serve each other as stepping stones.

    `budget` is the number of model evaluations per requested fooling input (one input through
    the model; a gradient step counts once, forward and backward); an evolution archive shares
    `budget * len(classes)` evaluations among its classes.

    Far from the data: when `reference` (nominal samples, [M, *input_shape]) is given, every
    kept input's L2 distance (over raw input values) to its nearest reference sample is
    recorded in `params["nearest_reference_distance"]`, next to the typical spacing of the data,
    `params["nominal_spacing"]`: the median over reference samples of the L2 distance to their
    nearest *other* reference sample. An input is "far" when its nearest distance exceeds that
    spacing, i.e. it is farther from every nominal sample than nominal samples are from each
    other. `min_distance` (absolute L2, needs `reference`) rejects closer candidates: the
    gradient method restarts such a sample from fresh noise, the evolution never admits them
    to its archive, and re-verification drops any that remain.
    """
    classes_list = _check(adapter, method, classes, per_class, confidence, budget, reference, min_distance)
    steps = DEFAULT_BUDGET[method] if budget is None else int(budget)
    low, high = adapter.bounds
    width = high - low
    ref = None if reference is None else adapter.as_batch(reference).reshape(len(reference), -1).astype(np.float64)
    target = confidence + (1.0 - confidence) * _HEADROOM
    params: dict[str, Any] = {
        "method": method,
        "classes": classes_list,
        "per_class": int(per_class),
        "confidence": float(confidence),
        "search_target": float(target),
        "seed": int(seed),
        "budget": steps,
        "bounds": [low, high],
        "min_distance": None if min_distance is None else float(min_distance),
        "reference_count": None if ref is None else len(ref),
    }
    targets = np.repeat(np.asarray(classes_list, dtype=np.int64), per_class)
    if method == "gradient":
        step = 0.02 * width if step_size is None else float(step_size)
        if step <= 0:
            raise GauntletError(f"step_size must be positive, got {step}")
        if noise_weight < 0:
            raise GauntletError(f"noise_weight must be >= 0, got {noise_weight}")
        params.update(step_size=step, noise_weight=float(noise_weight))
        x, evaluations, restarts = _gradient(adapter, targets, target, steps, seed, step, noise_weight, ref, min_distance)
        params["restarts"] = restarts
    else:
        if offspring < 1:
            raise GauntletError(f"offspring must be >= 1, got {offspring}")
        if not 0 < mutation_rate <= 1:
            raise GauntletError(f"mutation_rate must be in (0, 1], got {mutation_rate}")
        if mutation_scale <= 0:
            raise GauntletError(f"mutation_scale must be positive, got {mutation_scale}")
        params.update(offspring=int(offspring), mutation_rate=float(mutation_rate), mutation_scale=float(mutation_scale))
        x, evaluations = _evolution(
            adapter, classes_list, per_class, target, steps * len(classes_list), seed,
            offspring, mutation_rate, mutation_scale * width, ref, min_distance,
        )  # fmt: skip
    params["evaluations"] = evaluations
    return _verified(adapter, x, targets, classes_list, per_class, confidence, ref, min_distance, params)


def nearest_distances(x: np.ndarray, reference: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """The L2 distance from each row of `x` [N, ...] to its nearest row of `reference` [M, ...]
    (flattened); with `exclude_self`, `x` is `reference` and each row's own entry is skipped."""
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    b = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    if len(b) == 0 or (exclude_self and len(b) < 2):
        raise GauntletError("the reference set needs at least one sample (two to measure its own spacing)")
    squared_b = (b * b).sum(axis=1)
    out = np.empty(len(a))
    chunk = max(1, 4_000_000 // max(1, len(b)))  # bounds the [chunk, M] distance matrix
    for start in range(0, len(a), chunk):
        part = a[start : start + chunk]
        d2 = (part * part).sum(axis=1)[:, None] + squared_b[None, :] - 2.0 * part @ b.T
        if exclude_self:
            rows = np.arange(len(part))
            d2[rows, start + rows] = np.inf
        out[start : start + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def nominal_spacing(reference: np.ndarray) -> float:
    """The median over reference samples of the L2 distance to their nearest other sample."""
    return float(np.median(nearest_distances(reference, reference, exclude_self=True)))


# --- arguments ---------------------------------------------------------------------------------


def _check(
    adapter: ModelAdapter,
    method: str,
    classes: Sequence[int] | None,
    per_class: int,
    confidence: float,
    budget: int | None,
    reference: np.ndarray | None,
    min_distance: float | None,
) -> list[int]:
    if method not in METHODS:
        raise GauntletError(f"unknown fooling method {method!r}; one of {', '.join(METHODS)}")
    if not 0.0 < float(confidence) < 1.0:
        raise GauntletError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if int(per_class) != per_class or per_class < 1:
        raise GauntletError(f"per_class must be a positive integer, got {per_class}")
    if budget is not None and (int(budget) != budget or budget < 1):
        raise GauntletError(f"budget must be a positive integer (model evaluations per input), got {budget}")
    chosen = list(range(adapter.num_classes)) if classes is None else [int(c) for c in classes]
    if not chosen:
        raise GauntletError("no classes to fool: give at least one class or None for all")
    bad = [c for c in chosen if not 0 <= c < adapter.num_classes]
    if bad:
        raise GauntletError(f"classes {bad} are out of range; the model has classes 0..{adapter.num_classes - 1}")
    if len(set(chosen)) != len(chosen):
        raise GauntletError(f"classes {chosen} repeat a class; ask for more per class with per_class")
    if min_distance is not None:
        if reference is None:
            raise GauntletError("min_distance needs reference samples to measure the distance to")
        if not min_distance >= 0:
            raise GauntletError(f"min_distance must be >= 0, got {min_distance}")
    if reference is not None and len(reference) == 0:
        raise GauntletError("the reference set is empty")
    return chosen


# --- gradient ascent ---------------------------------------------------------------------------


def _gradient(
    adapter: ModelAdapter,
    targets: np.ndarray,
    target: float,
    steps: int,
    seed: int,
    step: float,
    noise_weight: float,
    ref: np.ndarray | None,
    min_distance: float | None,
) -> tuple[np.ndarray, int, int]:
    low, high = adapter.bounds
    generator = torch.Generator().manual_seed(seed)

    def noise(n: int) -> torch.Tensor:
        return low + (high - low) * torch.rand((n, *adapter.input_shape), generator=generator)

    x = noise(len(targets))
    start = x.clone()
    labels = torch.from_numpy(targets)
    done = torch.zeros(len(targets), dtype=torch.bool)
    evaluations = restarts = 0
    log_target = float(np.log(target))
    for _ in range(steps):
        active = torch.nonzero(~done).flatten()
        if len(active) == 0:
            break
        xa = x[active].clone().requires_grad_(True)
        gain = torch.log_softmax(adapter.forward(xa).float(), dim=1).gather(1, labels[active, None]).squeeze(1)
        evaluations += len(active)
        reached = gain.detach() >= log_target
        again = torch.zeros_like(reached)
        if ref is not None and min_distance is not None and bool(reached.any()):
            hits = torch.nonzero(reached).flatten()
            near = torch.from_numpy(nearest_distances(x[active[hits]].numpy(), ref) < min_distance)
            again[hits[near]] = True
            reached &= ~again
        done[active[reached]] = True
        moving = ~reached & ~again
        if bool(moving.any()):
            objective = gain
            if noise_weight > 0:
                # pulls the sample back toward its starting noise, so it stays noise-like
                objective = gain - noise_weight * (xa - start[active]).pow(2).flatten(1).mean(dim=1)
            (grad,) = torch.autograd.grad(objective.sum(), xa)
            update = (xa.detach() + step * grad.sign()).clamp(low, high)
            x[active[moving]] = update[moving]
        if bool(again.any()):
            # too close to the data: that sample starts again from fresh noise
            rows = active[again]
            x[rows] = noise(len(rows))
            start[rows] = x[rows]
            restarts += len(rows)
    return x.numpy().astype(np.float32), evaluations, restarts


# --- evolution (MAP-Elites over directly encoded inputs) ----------------------------------------


def _evolution(
    adapter: ModelAdapter,
    classes: list[int],
    archives: int,
    target: float,
    budget: int,
    seed: int,
    offspring: int,
    rate: float,
    scale: float,
    ref: np.ndarray | None,
    min_distance: float | None,
) -> tuple[np.ndarray, int]:
    low, high = adapter.bounds
    rng = np.random.default_rng(seed)
    size = int(np.prod(adapter.input_shape))
    n_classes = adapter.num_classes
    wanted = np.asarray(classes)
    elites = np.zeros((archives, n_classes, size), dtype=np.float32)
    fitness = np.full((archives, n_classes), -np.inf)
    used = np.zeros(archives, dtype=np.int64)

    def admit(slot: np.ndarray, candidates: np.ndarray) -> None:
        """Evaluate `candidates` [A, K, size] (one row per archive in `slot`) and let each
        replace the elite of any class it beats."""
        flat = candidates.reshape(-1, size)
        probs = adapter.probabilities(flat.reshape(-1, *adapter.input_shape)).reshape(len(slot), -1, n_classes)
        if ref is not None and min_distance is not None:
            near = (nearest_distances(flat, ref) < min_distance).reshape(len(slot), -1)
            probs[near] = -np.inf
        used[slot] += candidates.shape[1]
        best = probs.argmax(axis=1)  # [A, C]: the best candidate per class
        best_p = np.take_along_axis(probs, best[:, None, :], axis=1)[:, 0, :]
        better = best_p > fitness[slot]
        a_idx, c_idx = np.nonzero(better)
        elites[slot[a_idx], c_idx] = candidates[a_idx, best[a_idx, c_idx]]
        fitness[slot[a_idx], c_idx] = best_p[a_idx, c_idx]

    everyone = np.arange(archives)
    first = min(offspring, budget)
    admit(everyone, (low + (high - low) * rng.random((archives, first, size))).astype(np.float32))
    while True:
        open_ = fitness[:, wanted] < target  # [A, K]
        slot = np.nonzero(open_.any(axis=1) & (used < budget))[0]
        if len(slot) == 0:
            break
        count = int(min(offspring, (budget - used[slot]).min()))
        parents = np.empty((len(slot), count, size), dtype=np.float32)
        for i, a in enumerate(slot):
            # parents are the current elites of this archive's unfinished target classes
            pool = wanted[open_[a]]
            parents[i] = elites[a, rng.choice(pool, size=count)]
        mask = rng.random(parents.shape) < rate
        step = rng.normal(0.0, scale, parents.shape) * mask
        admit(slot, np.clip(parents + step, low, high).astype(np.float32))
    chosen = elites[:, wanted].transpose(1, 0, 2).reshape(-1, *adapter.input_shape)  # class-major
    return np.ascontiguousarray(chosen), int(used.sum())


# --- re-verification -----------------------------------------------------------------------------


def _verified(
    adapter: ModelAdapter,
    x: np.ndarray,
    targets: np.ndarray,
    classes: list[int],
    per_class: int,
    confidence: float,
    ref: np.ndarray | None,
    min_distance: float | None,
    params: dict[str, Any],
) -> HardInputs:
    """Re-run the model on the float32 inputs and keep those at or above `confidence` for their
    target class, inside the bounds (and far enough from the reference when asked)."""
    low, high = adapter.bounds
    x = adapter.as_batch(x)
    probs = adapter.probabilities(x)
    flat = x.reshape(len(x), -1)
    keep = (probs[np.arange(len(x)), targets] >= confidence) & (flat.min(axis=1) >= low) & (flat.max(axis=1) <= high)
    distances = nearest_distances(x, ref) if ref is not None else None
    if distances is not None and min_distance is not None:
        keep &= distances >= min_distance
    params["targets"] = [int(t) for t in targets[keep]]
    params["attempted"] = {str(c): per_class for c in classes}
    params["succeeded"] = {str(c): int(((targets == c) & keep).sum()) for c in classes}
    params["target_probability"] = [float(p) for p in probs[np.arange(len(x)), targets][keep]]
    if ref is not None and distances is not None:
        params["nearest_reference_distance"] = [float(d) for d in distances[keep]]
        params["nominal_spacing"] = nominal_spacing(ref) if len(ref) > 1 else None
    return HardInputs(
        category="fooling",
        method=str(params["method"]),
        x=x[keep].copy(),
        source=np.full(int(keep.sum()), -1, dtype=np.int64),
        labels=None,
        predicted=probs[keep],
        params=params,
    )
