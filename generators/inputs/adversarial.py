"""Adversarial inputs for one classifier: FGSM, PGD (L-inf and L2, random restarts) and
Carlini-Wagner L2. Every example returned has been re-run through the model in float32 and
lies inside its ball and the model's bounds; imports nothing but the adapter and the result."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.inputs.result import HardInputs

__all__ = ["NORMS", "carlini_wagner", "fgsm", "pgd", "pgd_points"]

NORMS = ("linf", "l2")

# Float32 rounding of x +- eps (and of an L2 rescale) may land a hair outside the exact ball.
_BALL_TOLERANCE = 1e-5
# Samples attacked together; bounds memory for large inputs, does not change results.
_CHUNK = 256


# --- shared pieces ---------------------------------------------------------------------------


def _check_ball(eps: float, norm: str) -> None:
    if norm not in NORMS:
        raise GauntletError(f"unknown norm {norm!r}; one of {', '.join(NORMS)}")
    if not eps > 0 or not np.isfinite(eps):
        raise GauntletError(f"eps must be a positive finite number, not {eps}")


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against t."""
    norms: torch.Tensor = t.flatten(1).norm(dim=1)
    return norms.reshape(-1, *([1] * (t.ndim - 1)))


def _project(
    adapter: ModelAdapter, adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str
) -> torch.Tensor:
    """Onto the eps-ball around x, then onto the bounds; clipping to the bounds moves every
    coordinate towards x (which is inside them), so the result stays in the ball."""
    delta = adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _flat_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return adapter.clip(x + delta)


def _distances(adv: np.ndarray, x: np.ndarray, norm: str) -> np.ndarray:
    delta = (adv.astype(np.float64) - x.astype(np.float64)).reshape(len(adv), int(np.prod(adv.shape[1:])))
    if norm == "linf":
        return np.asarray(np.abs(delta).max(axis=1, initial=0.0))
    return np.asarray(np.sqrt((delta**2).sum(axis=1)))


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def _inward(limit: np.ndarray, upwards: bool) -> np.ndarray:
    """`limit` (float64) rounded to float32 towards the inside of the interval it bounds."""
    rounded = limit.astype(np.float32)
    if upwards:
        return np.where(rounded < limit, np.nextafter(rounded, np.float32(np.inf)), rounded)
    return np.where(rounded > limit, np.nextafter(rounded, np.float32(-np.inf)), rounded)


def _into_ball(
    adapter: ModelAdapter, adv: np.ndarray, x: np.ndarray, eps: float | None, norm: str
) -> np.ndarray:
    """Float32 candidates put back inside the bounds exactly and inside the ball (exactly for
    L-inf, to float32 rounding for L2); the attacks keep them there up to rounding already."""
    low, high = adapter.bounds
    if eps is not None and norm == "linf":
        x64 = x.astype(np.float64)
        adv = np.clip(
            adv, _inward(np.maximum(x64 - eps, low), True), _inward(np.minimum(x64 + eps, high), False)
        )
    elif eps is not None and len(adv):
        distance = _distances(adv, x, "l2").reshape(-1, *([1] * (adv.ndim - 1)))
        scale = np.where(distance > eps, eps * (1 - 1e-6) / np.maximum(distance, 1e-30), 1.0)
        adv = (x + (adv.astype(np.float64) - x) * scale).astype(np.float32)
    return np.asarray(np.clip(adv, np.float32(low), np.float32(high)), dtype=np.float32)


def _verified(
    adapter: ModelAdapter,
    method: str,
    adv: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    source: np.ndarray,
    eps: float | None,
    norm: str,
    params: dict[str, Any],
) -> tuple[HardInputs, np.ndarray]:
    """Casts the candidates to float32, clips them into the bounds, re-runs the model on them
    and keeps those still misclassified and inside the ball; the rest are counted, not hidden.
    Returns the result and the kept mask over the candidates."""
    seeds, labels = x[source], y[source]
    adv = _into_ball(adapter, np.asarray(adv, dtype=np.float32), seeds, eps, norm)
    logits = adapter.logits(adv) if len(adv) else np.zeros((0, adapter.num_classes))
    keep = logits.argmax(axis=1) != labels
    distance = _distances(adv, seeds, norm)
    if eps is not None:
        keep &= distance <= eps * (1 + _BALL_TOLERANCE) + 1e-7
    params = dict(params)
    params["succeeded"] = int(keep.sum())
    params["rejected_on_recheck"] = int(len(adv) - keep.sum())
    params[f"mean_{norm}"] = float(distance[keep].mean()) if keep.any() else None
    return HardInputs(
        category="adversarial",
        method=method,
        x=adv[keep],
        source=source[keep].astype(np.int64),
        labels=_one_hot(labels[keep], adapter.num_classes),
        predicted=_softmax(logits[keep]).astype(np.float32),
        params=params,
    ), keep


def _correct(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the samples the model gets right: only those can be attacked."""
    if not len(x):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(adapter.predict(x) == y)


def _gradient(adapter: ModelAdapter, adv: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, gradient of the per-sample cross-entropy) at adv."""
    adv = adv.detach().requires_grad_(True)
    logits = adapter.forward(adv).cpu()  # models on an accelerator answer there
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, adv)
    return logits.detach(), grad.detach()


def _ascend(adv: torch.Tensor, grad: torch.Tensor, step: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return adv + step * grad.sign()
    return adv + step * grad / _flat_norm(grad).clamp_min(1e-12)


# --- FGSM ------------------------------------------------------------------------------------


def fgsm(
    adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str = "linf"
) -> HardInputs:
    """One gradient step of size eps (the sign for L-inf, the normalized gradient for L2) from
    each correctly classified sample (Goodfellow et al.)."""
    _check_ball(eps, norm)
    x, y = adapter.labelled_batch(x, y)
    attacked = _correct(adapter, x, y)
    candidates: list[np.ndarray] = []
    found: list[np.ndarray] = []
    for start in range(0, len(attacked), _CHUNK):
        index = attacked[start : start + _CHUNK]
        xt, yt = torch.from_numpy(x[index]), torch.from_numpy(y[index])
        _, grad = _gradient(adapter, xt, yt)
        adv = _project(adapter, _ascend(xt, grad, eps, norm), xt, eps, norm)
        with torch.no_grad():
            fooled = (adapter.forward(adv).cpu().argmax(dim=1) != yt).numpy()
        candidates.append(adv.numpy()[fooled])
        found.append(index[fooled])
    params = {
        "eps": float(eps),
        "norm": norm,
        "steps": 1,
        "step_size": float(eps),
        "attempted": len(attacked),
        "skipped_misclassified": int(len(x) - len(attacked)),
    }
    adv_all = np.concatenate(candidates) if candidates else np.zeros((0, *adapter.input_shape), np.float32)
    source = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    return _verified(adapter, "fgsm", adv_all, x, y, source, eps, norm, params)[0]


# --- PGD -------------------------------------------------------------------------------------


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator) -> torch.Tensor:
    """Uniform in the L-inf ball, or uniform in the L2 ball (direction, then radius eps*u^(1/d))."""
    if norm == "linf":
        return x + (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    direction = torch.randn(x.shape, generator=generator)
    direction = direction / _flat_norm(direction).clamp_min(1e-12)
    dims = x[0].numel()
    radius = torch.rand((len(x),), generator=generator) ** (1.0 / dims) * eps
    return x + direction * radius.reshape(-1, *([1] * (x.ndim - 1)))


def _pgd_run(
    adapter: ModelAdapter,
    x: torch.Tensor,
    y: torch.Tensor,
    start: torch.Tensor,
    eps: float,
    norm: str,
    steps: int,
    step_size: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD from `start` (inside the ball); a sample stops moving as soon as the model
    misclassifies it. Returns (final points, misclassified mask)."""
    adv = _project(adapter, start, x, eps, norm)
    done = torch.zeros(len(x), dtype=torch.bool)
    for step in range(steps + 1):
        active = torch.nonzero(~done).flatten()
        if not len(active):
            break
        logits, grad = _gradient(adapter, adv[active], y[active])
        fooled = logits.argmax(dim=1) != y[active]
        done[active[fooled]] = True
        if step == steps:
            break
        moving = active[~fooled]
        moved = _ascend(adv[moving], grad[~fooled], step_size, norm)
        adv[moving] = _project(adapter, moved, x[moving], eps, norm)
    return adv, done


def _pgd_options(eps: float, norm: str, steps: int, step_size: float | None, restarts: int) -> float:
    _check_ball(eps, norm)
    if steps < 1:
        raise GauntletError(f"steps must be at least 1, not {steps}")
    if restarts < 1:
        raise GauntletError(f"restarts must be at least 1, not {restarts}")
    size = 2.5 * eps / steps if step_size is None else float(step_size)
    if not size > 0:
        raise GauntletError(f"step_size must be positive, not {step_size}")
    return size


def pgd(
    adapter: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 40,
    step_size: float | None = None,
    restarts: int = 1,
    seed: int = 0,
) -> HardInputs:
    """Projected gradient ascent on the cross-entropy inside the eps-ball (Madry et al.), from a
    uniform random start per restart; step size 2.5*eps/steps unless given. Each restart only
    re-attacks the samples no earlier restart has fooled, so a sample keeps its first success."""
    size = _pgd_options(eps, norm, steps, step_size, restarts)
    x, y = adapter.labelled_batch(x, y)
    attacked = _correct(adapter, x, y)
    generator = torch.Generator().manual_seed(int(seed))
    best = x.copy()
    fooled = np.zeros(len(x), dtype=bool)
    restarts_used = np.zeros(len(x), dtype=np.int64)
    for restart in range(restarts):
        # every attacked sample draws its start, fooled or not, so a sample's starts do not
        # depend on which other samples earlier restarts fooled.
        starts = _random_start(torch.from_numpy(x[attacked]), eps, norm, generator)
        remaining = np.flatnonzero(~fooled[attacked])
        for start in range(0, len(remaining), _CHUNK):
            rows = remaining[start : start + _CHUNK]
            index = attacked[rows]
            xt, yt = torch.from_numpy(x[index]), torch.from_numpy(y[index])
            adv, done = _pgd_run(adapter, xt, yt, starts[rows], eps, norm, steps, size)
            hit = index[done.numpy()]
            best[hit] = adv.numpy()[done.numpy()]
            fooled[hit] = True
            restarts_used[hit] = restart + 1
    source = np.flatnonzero(fooled)
    params = {
        "eps": float(eps),
        "norm": norm,
        "steps": int(steps),
        "step_size": float(size),
        "restarts": int(restarts),
        "seed": int(seed),
        "random_start": True,
        "keep": "first successful restart",
        "attempted": len(attacked),
        "skipped_misclassified": int(len(x) - len(attacked)),
    }
    result, keep = _verified(adapter, "pgd", best[source], x, y, source, eps, norm, params)
    return dataclasses.replace(
        result, params={**result.params, "restart_of_success": restarts_used[source[keep]].tolist()}
    )


def pgd_points(
    adapter: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 20,
    step_size: float | None = None,
) -> np.ndarray:
    """One PGD run from the given start points (projected into the ball first), returning
    every final point, fooled or not; the strategies build on this."""
    size = _pgd_options(eps, norm, steps, step_size, 1)
    x, y = adapter.labelled_batch(x, y)
    begin = torch.from_numpy(adapter.as_batch(start).astype(np.float32))
    if begin.shape != x.shape:
        raise GauntletError(f"start points have shape {tuple(begin.shape)}; the inputs have {x.shape}")
    adv, _ = _pgd_run(adapter, torch.from_numpy(x), torch.from_numpy(y), begin, eps, norm, steps, size)
    low, high = adapter.bounds
    return np.clip(adv.numpy().astype(np.float32), np.float32(low), np.float32(high))


# --- Carlini-Wagner L2 ------------------------------------------------------------------------


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Best other logit minus the true one: positive means misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return others.max(dim=1).values - true


def _cw_chunk(
    adapter: ModelAdapter,
    x: torch.Tensor,
    y: torch.Tensor,
    binary_steps: int,
    steps: int,
    initial_c: float,
    learning_rate: float,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(best points, best L2 (inf where none), the c of each best point, success mask)."""
    low, high = adapter.bounds
    span = high - low

    def to_input(w: torch.Tensor) -> torch.Tensor:
        return low + span * (torch.tanh(w) + 1) / 2

    # atanh of the inputs, pulled slightly inside (-1, 1) so samples at the bounds stay finite.
    w0 = torch.atanh(((x - low) / span * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
    n = len(x)
    c = torch.full((n,), float(initial_c))
    lower = torch.zeros(n)
    upper = torch.full((n,), float("inf"))
    best_l2 = torch.full((n,), float("inf"))
    best_c = torch.full((n,), float("nan"))
    best = x.clone()
    for _ in range(binary_steps):
        w = w0.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([w], lr=learning_rate)
        succeeded = torch.zeros(n, dtype=torch.bool)
        for _ in range(steps):
            adv = to_input(w)
            logits = adapter.forward(adv).cpu()
            margin = _margin(logits, y)
            l2 = (adv - x).flatten(1).pow(2).sum(dim=1)
            # f = max(Z_y - max_other, -confidence): nothing more to gain once past the margin.
            loss = (l2 + c * torch.clamp(-margin, min=-confidence)).sum()
            optimiser.zero_grad()
            torch.autograd.backward(loss)
            with torch.no_grad():
                hit = (margin > 0) & (margin >= confidence)
                better = hit & (l2.sqrt() < best_l2)
                best_l2 = torch.where(better, l2.sqrt(), best_l2)
                best_c = torch.where(better, c, best_c)
                best[better] = adv.detach()[better]
                succeeded |= hit
            optimiser.step()
        # binary search per sample: shrink c after a success, grow it (x10 until bracketed) after none.
        upper = torch.where(succeeded, torch.minimum(upper, c), upper)
        lower = torch.where(succeeded, lower, torch.maximum(lower, c))
        c = torch.where(torch.isinf(upper), c * 10, (lower + upper) / 2)
    found = torch.isfinite(best_l2)
    return best.numpy(), best_l2.numpy(), best_c.numpy(), found.numpy()


def carlini_wagner(
    adapter: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    binary_steps: int = 9,
    steps: int = 100,
    initial_c: float = 1e-2,
    learning_rate: float = 1e-2,
    confidence: float = 0.0,
    seed: int = 0,
) -> HardInputs:
    """Carlini-Wagner L2 (untargeted): Adam on tanh-space variables mapped onto the model's
    bounds, minimizing ||x' - x||^2 + c * max(Z_y - max_other Z, -confidence), with a binary
    search over c per sample; keeps each sample's smallest-L2 success. Deterministic: `seed`
    is recorded only (the attack starts from x itself)."""
    if binary_steps < 1 or steps < 1:
        raise GauntletError(f"binary_steps and steps must be at least 1, not {binary_steps} and {steps}")
    if not initial_c > 0 or not learning_rate > 0 or confidence < 0:
        raise GauntletError("initial_c and learning_rate must be positive and confidence non-negative")
    x, y = adapter.labelled_batch(x, y)
    attacked = _correct(adapter, x, y)
    points, c_of = [], []
    found: list[np.ndarray] = []
    for start in range(0, len(attacked), _CHUNK):
        index = attacked[start : start + _CHUNK]
        xt, yt = torch.from_numpy(x[index]), torch.from_numpy(y[index])
        best, _, best_c, ok = _cw_chunk(
            adapter, xt, yt, binary_steps, steps, initial_c, learning_rate, confidence
        )
        points.append(best[ok])
        c_of.append(best_c[ok])
        found.append(index[ok])
    source = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    adv = np.concatenate(points) if points else np.zeros((0, *adapter.input_shape), np.float32)
    c_values = np.concatenate(c_of) if c_of else np.zeros(0)
    params = {
        "norm": "l2",
        "binary_steps": int(binary_steps),
        "steps": int(steps),
        "initial_c": float(initial_c),
        "learning_rate": float(learning_rate),
        "confidence": float(confidence),
        "seed": int(seed),
        "attempted": len(attacked),
        "skipped_misclassified": int(len(x) - len(attacked)),
    }
    result, keep = _verified(adapter, "carlini_wagner", adv, x, y, source, None, "l2", params)
    extra = {"c": [float(v) for v in c_values[keep]], "mean_l2": result.params["mean_l2"]}
    return dataclasses.replace(result, params={**result.params, **extra})
