"""A mix of hard inputs: which categories, how many of each and with what parameters (the
`--mix` spec), and generating them by calling the generators (imported lazily, per category)."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.inputs.result import CATEGORIES, HardInputs

__all__ = ["DEFAULT_MIX", "DEFAULTS", "generate_mix", "parse_mix", "resolve_mix"]

DEFAULT_MIX = "adversarial=50,fooling=10,ambiguous=20,corrupted=50"

# Parameters each category gets unless the mix says otherwise. `count` means: adversarial, seed
# samples attacked (only re-verified successes are kept); corrupted, inputs made (split evenly
# over the families); fooling, inputs asked for (spread over the classes); ambiguous, at most
# this many kept (spread over the pairs).
DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "adversarial": {"method": "pgd", "eps": 0.1, "norm": "linf"},
    "corrupted": {"families": "all", "severity": 3},
    "fooling": {"method": "gradient"},
    "ambiguous": {},
}
ADVERSARIAL_METHODS = ("pgd", "fgsm", "cw")

MixValue = int | Mapping[str, Any]
Progress = Callable[[str], None]


# --- the spec ---------------------------------------------------------------------------------


def _value(text: str) -> Any:
    if "+" in text:
        return [_value(part) for part in text.split("+") if part]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_mix(text: str) -> dict[str, MixValue]:
    """`adversarial=50,fooling=10,ambiguous=20,corrupted=50` -> {category: count}; a count may
    carry parameters, `adversarial=50:method=cw:confidence=0.5` or
    `corrupted=40:families=noise+blur:severity=5` (lists joined by `+`)."""
    mix: dict[str, MixValue] = {}
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise GauntletError(f"--mix {text!r}: give category=count pairs, e.g. {DEFAULT_MIX}")
    for item in items:
        head, *options = item.split(":")
        category, sep, count = head.partition("=")
        category = category.strip()
        if not sep:
            raise GauntletError(f"--mix item {item!r}: write category=count, e.g. adversarial=50")
        if category not in CATEGORIES:
            raise GauntletError(f"--mix item {item!r}: unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
        if category in mix:
            raise GauntletError(f"--mix: {category} is given twice")
        try:
            number = int(count)
        except ValueError:
            raise GauntletError(f"--mix item {item!r}: the count {count!r} is not a whole number") from None
        if number < 0:
            raise GauntletError(f"--mix item {item!r}: the count must be >= 0")
        params: dict[str, Any] = {"count": number}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or not key.strip().isidentifier():
                raise GauntletError(f"--mix item {item!r}: parameter {option!r} must be name=value")
            params[key.strip()] = _value(value.strip())
        mix[category] = params if options else number
    return mix


def resolve_mix(mix: Mapping[str, MixValue] | str) -> dict[str, dict[str, Any]]:
    """Every category's full parameters: its DEFAULTS overridden by what the mix gives."""
    if isinstance(mix, str):
        mix = parse_mix(mix)
    resolved: dict[str, dict[str, Any]] = {}
    for category, value in mix.items():
        if category not in CATEGORIES:
            raise GauntletError(f"mix: unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
        params = {"count": value} if isinstance(value, int) else dict(value)
        count = params.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise GauntletError(f"mix {category}: give a whole-number count >= 0, got {count!r}")
        resolved[category] = {**DEFAULTS[category], **params}
        if category == "adversarial":
            method = resolved[category]["method"]
            if method not in ADVERSARIAL_METHODS:
                raise GauntletError(f"mix adversarial: method {method!r}; choose from {', '.join(ADVERSARIAL_METHODS)}")
            if method == "cw":  # Carlini-Wagner minimizes the distortion; it takes no eps ball
                for key in ("eps", "norm"):
                    if key not in params:
                        resolved[category].pop(key)
    return resolved


# --- generating -------------------------------------------------------------------------------


def _call(category: str, fn: Callable[..., HardInputs], args: tuple[Any, ...], kwargs: dict[str, Any]) -> HardInputs:
    """Checks the parameters against the generator's signature first, so a misspelt one is a
    user error naming the accepted ones rather than a TypeError from deep inside."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as err:
        accepted = [p for p in inspect.signature(fn).parameters if p not in ("adapter", "x", "y")]
        raise GauntletError(f"mix {category}: {err}; {fn.__name__} takes {', '.join(accepted)}") from None
    return fn(*args, **kwargs)


def _take(h: HardInputs, rows: np.ndarray, source: np.ndarray | None = None) -> HardInputs:
    """The rows `rows` of a set; `source` maps the generator's seed indices to the caller's."""
    src = h.source[rows]
    if source is not None:
        src = np.where(src >= 0, source[np.clip(src, 0, None)], -1)
    # Per-row parameters (a pair or target class per input, CW's c) follow their rows.
    params = {k: [v[int(r)] for r in rows] if isinstance(v, list) and len(v) == len(h) else v
              for k, v in h.params.items()}
    return replace(
        h,
        params=params,
        x=h.x[rows],
        source=src,
        labels=None if h.labels is None else h.labels[rows],
        predicted=h.predicted[rows],
    )


def empty(adapter: ModelAdapter, category: str, method: str, params: Mapping[str, Any]) -> HardInputs:
    """A set with no inputs (a category asked for with count 0)."""
    return HardInputs(
        category=category,
        method=method,
        x=np.zeros((0, *adapter.input_shape), np.float32),
        source=np.zeros(0, np.int64),
        labels=None if category == "fooling" else np.zeros((0, adapter.num_classes)),
        predicted=np.zeros((0, adapter.num_classes)),
        params=dict(params),
    )


def _adversarial(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, p: dict[str, Any], rng: np.random.Generator, seed: int) -> list[HardInputs]:
    from generators.inputs import adversarial

    # Attacks start from correctly classified samples: a misclassified one is no evidence.
    correct = np.flatnonzero(adapter.predict(x) == y)
    rows = np.sort(rng.choice(correct, size=min(p["count"], len(correct)), replace=False))
    method = p["method"]
    if len(rows) == 0:
        return [empty(adapter, "adversarial", method, {"attempted": 0, "reason": "no correctly classified sample"})]
    attacks: dict[str, Callable[..., HardInputs]] = {
        "pgd": adversarial.pgd, "fgsm": adversarial.fgsm, "cw": adversarial.carlini_wagner,
    }  # fmt: skip
    fn = attacks[method]
    kwargs = {k: v for k, v in p.items() if k not in ("count", "method")}
    if method != "fgsm" and "seed" not in kwargs:
        kwargs["seed"] = seed
    result = _call("adversarial", fn, (adapter, x[rows], y[rows]), kwargs)
    return [_take(result, np.arange(len(result)), rows)]


def _corrupted(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, p: dict[str, Any], rng: np.random.Generator, seed: int) -> list[HardInputs]:
    from generators.inputs import corrupt

    families = p.pop("families")
    chosen = list(corrupt.FAMILIES) if families in ("all", None) else ([families] if isinstance(families, str) else list(families))
    unknown = [f for f in chosen if f not in corrupt.FAMILIES]
    if unknown or not chosen:
        raise GauntletError(f"mix corrupted: families {unknown or chosen}; choose from {', '.join(corrupt.FAMILIES)} or all")
    rows = rng.choice(len(x), size=p["count"], replace=p["count"] > len(x))
    sets = []
    for family, part in zip(chosen, np.array_split(rows, len(chosen))):
        if len(part) == 0:
            continue
        kwargs = {k: v for k, v in p.items() if k != "count"}
        kwargs.setdefault("seed", seed)
        result = _call("corrupted", corrupt.corrupt, (adapter, x[part], y[part]), {"family": family, **kwargs})
        sets.append(_take(result, np.arange(len(result)), part))
    return sets


def _fooling(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, p: dict[str, Any], rng: np.random.Generator, seed: int) -> list[HardInputs]:
    from generators.inputs.fooling import fooling

    count = p["count"]
    kwargs = {k: v for k, v in p.items() if k != "count"}
    if "classes" not in kwargs:
        n = adapter.num_classes
        kwargs["classes"] = list(range(n)) if count >= n else sorted(int(c) for c in rng.choice(n, count, replace=False))
    kwargs.setdefault("per_class", max(1, math.ceil(count / max(len(kwargs["classes"]), 1))))
    kwargs.setdefault("reference", x)  # records how far each fooling input lies from the data
    kwargs.setdefault("seed", seed)
    result = _call("fooling", fooling, (adapter,), kwargs)
    return [_trim(result, count, rng)]


def _ambiguous(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, p: dict[str, Any], rng: np.random.Generator, seed: int) -> list[HardInputs]:
    from generators.inputs.ambiguous import ambiguous

    count = p["count"]
    kwargs = {k: v for k, v in p.items() if k != "count"}
    pairs = kwargs.get("pairs")
    if isinstance(pairs, str) and "/" in pairs:  # one pair on the command line: pairs=3/8
        pairs = [pairs]
    if isinstance(pairs, list) and any(isinstance(pair, str) for pair in pairs):
        kwargs["pairs"] = pairs = [_pair(pair) for pair in pairs]
    if isinstance(pairs, list):
        n_pairs = len(pairs)
    elif pairs == "all":
        n_pairs = adapter.num_classes * (adapter.num_classes - 1) // 2
    else:
        n_pairs = int(kwargs.get("default_pairs", 5))
    kwargs.setdefault("per_pair", max(1, math.ceil(count / max(n_pairs, 1))))
    kwargs.setdefault("seed", seed)
    result = _call("ambiguous", ambiguous, (adapter, x, y), kwargs)
    return [_trim(result, count, rng)]


def _pair(text: Any) -> list[int]:
    """A class pair written `a/b` on the command line (`pairs=3/8+1/7`)."""
    parts = str(text).split("/")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise GauntletError(f"mix ambiguous: pair {text!r}: write two class numbers as a/b, e.g. pairs=3/8+1/7")
    return [int(p) for p in parts]


def _trim(h: HardInputs, count: int, rng: np.random.Generator) -> HardInputs:
    """At most `count` rows, chosen evenly at random (sets come ordered by class or pair)."""
    if len(h) <= count:
        return h
    return _take(h, np.sort(rng.choice(len(h), size=count, replace=False)))


_MAKERS = {"adversarial": _adversarial, "corrupted": _corrupted, "fooling": _fooling, "ambiguous": _ambiguous}


def generate_mix(
    adapter: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    mix: Mapping[str, MixValue] | str,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[HardInputs]:
    """The hard inputs of `mix` (a spec string or {category: count or params}, see DEFAULTS)
    made from the samples (x, y); each set's `params` gains `mix` (what was asked) and `seconds`.
    Sample choices draw from a generator seeded by (seed, category), so one category's inputs do
    not depend on which others are asked for."""
    resolved = resolve_mix(mix)
    x = adapter.as_batch(x)
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise GauntletError(f"{len(x)} samples but {len(y)} labels")
    sets: list[HardInputs] = []
    for category in CATEGORIES:
        if category not in resolved:
            continue
        asked = resolved[category]
        if progress is not None:
            progress(f"{category}: generating up to {asked['count']} ({_describe(asked)})")
        tick = time.perf_counter()
        method = str(asked.get("method", "corrupt" if category == "corrupted" else category))
        if asked["count"] == 0:
            made = [empty(adapter, category, method, {"mix": asked})]
        else:
            rng = np.random.default_rng([seed, CATEGORIES.index(category)])
            made = _MAKERS[category](adapter, x, y, dict(asked), rng, seed)
        seconds = time.perf_counter() - tick
        record = {k: v for k, v in asked.items() if _jsonable(v)}
        made = [replace(h, params={**h.params, "mix": record, "seconds": seconds / max(len(made), 1)}) for h in made]
        if progress is not None:
            progress(f"{category}: {sum(len(h) for h in made)} inputs in {seconds:.1f} s")
        sets.extend(made)
    return sets


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if k != "count" and _jsonable(v)) or "defaults"


def _jsonable(value: Any) -> bool:
    if isinstance(value, str | bool | int | float) or value is None:
        return True
    if isinstance(value, list | tuple):
        return all(_jsonable(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False
