"""Scoring supervisors against nominal data: per category of hard inputs, the exact AUC-ROC
(nominal = negatives, hard inputs = positives, ties counted half), the ROC curve, counts, the
model's accuracy and timings. Pure scoring: generates nothing, writes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.inputs.result import CATEGORIES, HardInputs
from generators.inputs.supervisors import Supervisor, check_scores

__all__ = ["ROC_POINTS", "SuperviseResult", "auc_roc", "roc_curve", "score_supervisors"]

# Categories where a correct label exists and the model's accuracy on them means something.
LABELLED = ("adversarial", "corrupted")
ROC_POINTS = 400  # curves with more distinct thresholds are thinned for the report


def auc_roc(negatives: np.ndarray, positives: np.ndarray) -> float | None:
    """P(score of a random positive > score of a random negative) + P(tie) / 2, exactly (the
    Mann-Whitney statistic via average ranks); None when either side is empty."""
    neg = np.asarray(negatives, dtype=np.float64).reshape(-1)
    pos = np.asarray(positives, dtype=np.float64).reshape(-1)
    if len(neg) == 0 or len(pos) == 0:
        return None
    values, inverse, counts = np.unique(np.concatenate([neg, pos]), return_inverse=True, return_counts=True)
    # the average 1-based rank of each distinct value: tied scores share their ranks evenly.
    upper = np.cumsum(counts)
    average = upper - (counts - 1) / 2.0
    rank_sum = float(average[inverse[len(neg) :]].sum())
    n_pos, n_neg = len(pos), len(neg)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def roc_curve(negatives: np.ndarray, positives: np.ndarray, limit: int | None = ROC_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) from (0, 0) to (1, 1), one point per distinct
    threshold (flagging scores >= threshold), thinned evenly to at most `limit` points (ends
    kept). The trapezoid area under the unthinned curve equals `auc_roc`."""
    neg = np.asarray(negatives, dtype=np.float64).reshape(-1)
    pos = np.asarray(positives, dtype=np.float64).reshape(-1)
    if len(neg) == 0 or len(pos) == 0:
        return np.zeros(0), np.zeros(0)
    thresholds = np.unique(np.concatenate([neg, pos]))[::-1]
    # counts of scores >= each threshold, via sorted searches (thresholds descending).
    fp = len(neg) - np.searchsorted(np.sort(neg), thresholds, side="left")
    tp = len(pos) - np.searchsorted(np.sort(pos), thresholds, side="left")
    fpr = np.concatenate([[0.0], fp / len(neg)])
    tpr = np.concatenate([[0.0], tp / len(pos)])
    if limit is not None and len(fpr) > limit:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max(limit, 2))).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr, tpr


@dataclass(frozen=True)
class CategoryScore:
    """One supervisor on one category: AUC (None: no inputs in the category) and the ROC curve."""

    auc: float | None
    fpr: np.ndarray
    tpr: np.ndarray
    mean_score: float | None


@dataclass(frozen=True)
class SupervisorScores:
    name: str
    nominal_mean: float
    seconds: float
    per_input_ms: float
    categories: Mapping[str, CategoryScore]


@dataclass(frozen=True)
class CategoryInfo:
    """What went into a category: its inputs, their generating methods and the model on them.
    `accuracy` is the share whose prediction matches the label's arg-max, for labelled
    categories (adversarial, corrupted) with inputs; otherwise None."""

    category: str
    count: int
    methods: Mapping[str, int]
    accuracy: float | None
    sets: int


@dataclass(frozen=True)
class SuperviseResult:
    """Every supervisor scored against `nominal_count` nominal inputs, per category."""

    model: str
    nominal_count: int
    nominal_accuracy: float | None
    categories: tuple[CategoryInfo, ...]
    supervisors: tuple[SupervisorScores, ...]
    unavailable: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def auc(self, supervisor: str, category: str) -> float | None:
        for s in self.supervisors:
            if s.name == supervisor:
                return s.categories[category].auc
        raise KeyError(supervisor)

    def table(self) -> list[str]:
        """The AUC table as text lines: a row per supervisor, a column per category."""
        names = [c.category for c in self.categories]
        width = max([len("supervisor"), *(len(s.name) for s in self.supervisors), *(len(n) for n in self.unavailable)]) + 2
        cols = [max(len(n), 7) + 2 for n in names]
        lines = ["AUC-ROC (nominal vs category; 0.5 = no better than chance, 1 = perfect)"]
        lines.append(f"{'supervisor':<{width}}" + "".join(f"{n:>{w}}" for n, w in zip(names, cols)) + f"{'time':>10}")
        for s in self.supervisors:
            cells = "".join(f"{_auc_text(s.categories[n].auc):>{w}}" for n, w in zip(names, cols))
            lines.append(f"{s.name:<{width}}{cells}{s.seconds:>9.2f}s")
        lines.append(f"{'inputs':<{width}}" + "".join(f"{c.count:>{w}}" for c, w in zip(self.categories, cols)))
        accuracy = [("-" if c.accuracy is None else f"{c.accuracy:.0%}") for c in self.categories]
        lines.append(f"{'model accuracy':<{width}}" + "".join(f"{a:>{w}}" for a, w in zip(accuracy, cols)))
        for name, why in self.unavailable.items():
            lines.append(f"{name}: unavailable - {why}")
        return lines


def _auc_text(auc: float | None) -> str:
    return "no inputs" if auc is None else f"{auc:.3f}"


def _accuracy(adapter: ModelAdapter, sets: Sequence[HardInputs]) -> float | None:
    right = total = 0
    for h in sets:
        if h.labels is None or len(h) == 0:
            continue
        predicted = adapter.predict(h.x)
        right += int((predicted == np.asarray(h.labels).argmax(axis=1)).sum())
        total += len(h)
    return right / total if total else None


def score_supervisors(
    adapter: ModelAdapter,
    nominal_x: np.ndarray,
    hard: Sequence[HardInputs],
    supervisors: Mapping[str, Supervisor],
    *,
    nominal_y: np.ndarray | None = None,
    unavailable: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SuperviseResult:
    """Scores `nominal_x` and every set in `hard` with each supervisor and computes, per category
    (sets of one category are pooled; categories in CATEGORIES order, then any others), the
    AUC-ROC of telling the category's inputs from nominal ones. A category whose sets are all
    empty is reported with count 0 and AUC None. `unavailable` (name -> reason) is carried into
    the result for supervisors that could not be built."""
    started = time.perf_counter()
    nominal = adapter.as_batch(nominal_x)
    if len(nominal) == 0:
        raise GauntletError("no nominal inputs to score the supervisors against")
    if not supervisors:
        raise GauntletError("no supervisor to score" + (f" ({'; '.join(f'{k}: {v}' for k, v in unavailable.items())})" if unavailable else ""))
    order = [c for c in CATEGORIES if any(h.category == c for h in hard)]
    order += sorted({h.category for h in hard} - set(order))
    grouped = {c: [h for h in hard if h.category == c] for c in order}
    pooled = {
        c: (adapter.as_batch(np.concatenate([h.x for h in sets])) if sum(len(h) for h in sets) else np.zeros((0, *adapter.input_shape), np.float32))
        for c, sets in grouped.items()
    }
    infos = []
    for c, sets in grouped.items():
        methods: dict[str, int] = {}
        for h in sets:
            methods[h.method] = methods.get(h.method, 0) + len(h)
        accuracy = _accuracy(adapter, sets) if c in LABELLED else None
        infos.append(CategoryInfo(c, len(pooled[c]), methods, accuracy, len(sets)))
    scored = []
    total = len(nominal) + sum(len(v) for v in pooled.values())
    for name, supervisor in supervisors.items():
        if progress is not None:
            progress(f"scoring {name} on {total} inputs")
        tick = time.perf_counter()
        base = check_scores(name, supervisor(adapter, nominal), len(nominal))
        categories = {}
        for c, x in pooled.items():
            scores = check_scores(name, supervisor(adapter, x), len(x)) if len(x) else np.zeros(0)
            fpr, tpr = roc_curve(base, scores)
            mean = float(scores.mean()) if len(scores) else None
            categories[c] = CategoryScore(auc_roc(base, scores), fpr, tpr, mean)
        seconds = time.perf_counter() - tick
        scored.append(SupervisorScores(name, float(base.mean()), seconds, 1000 * seconds / total, categories))
    nominal_accuracy = None if nominal_y is None else adapter.accuracy(nominal, np.asarray(nominal_y))
    return SuperviseResult(
        model=adapter.description,
        nominal_count=len(nominal),
        nominal_accuracy=nominal_accuracy,
        categories=tuple(infos),
        supervisors=tuple(scored),
        unavailable=dict(unavailable or {}),
        seconds=time.perf_counter() - started,
    )
