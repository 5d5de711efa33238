"""Supervisors: per-input suspicion scores of a classifier (HIGHER = MORE SUSPICIOUS), the
built-ins (softmax family, MC dropout, Mahalanobis on features) and loading user callables by
name. Imports torch and the adapter only; never a generator."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter
from generators.load.user import import_object

__all__ = [
    "BUILTIN_NAMES",
    "Mahalanobis",
    "MCDropout",
    "Supervisor",
    "SupervisorFactory",
    "SupervisorUnavailable",
    "TrainingData",
    "build_supervisors",
    "builtin_supervisors",
    "check_scores",
    "deepgini",
    "describe",
    "fit_mahalanobis",
    "import_object",
    "max_softmax",
    "softmax_entropy",
]

# A supervisor maps (adapter, x [N, *input_shape]) to N finite scores, HIGHER = MORE SUSPICIOUS:
# a monitor that rejects inputs above a threshold rejects the highest-scoring ones first.
Supervisor = Callable[[ModelAdapter, np.ndarray], np.ndarray]
TrainingData = tuple[np.ndarray, np.ndarray]
# name -> (adapter, nominal training data or None, seed) -> supervisor; may raise SupervisorUnavailable.
SupervisorFactory = Callable[[ModelAdapter, "TrainingData | None", int], Supervisor]


class SupervisorUnavailable(GauntletError):
    """This supervisor cannot run on this model or with the data given (the message says why)."""


# --- softmax family ---------------------------------------------------------------------------


def max_softmax(adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
    """1 - the largest softmax probability (Hendrycks & Gimpel's baseline, negated)."""
    return np.asarray(1.0 - adapter.probabilities(x).max(axis=1))


def _entropy(p: np.ndarray) -> np.ndarray:
    # 0 * log 0 counts as 0; clipping keeps the log finite without changing those terms.
    return np.asarray(-(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1))


def softmax_entropy(adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of the softmax distribution."""
    return _entropy(adapter.probabilities(x))


def deepgini(adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
    """DeepGini's impurity 1 - sum_k p_k^2 (Feng et al., 2020)."""
    p = adapter.probabilities(x)
    return np.asarray(1.0 - (p * p).sum(axis=1))


# --- MC dropout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MCDropout:
    """`samples` stochastic passes with dropout active (Gal & Ghahramani). `score="variance"`:
    the variance of each class's probability over the passes, averaged over classes;
    `score="entropy"`: the entropy of the mean probability (predictive entropy). Torch dropout
    draws from a private generator seeded with `seed` (torch's global RNG is forked and put
    back), so scores repeat exactly; Keras dropout layers draw from their own seed generators."""

    samples: int = 20
    score: str = "variance"
    seed: int = 0
    batch: int = 256

    def __post_init__(self) -> None:
        if self.samples < 2:
            raise GauntletError(f"MC dropout needs at least 2 passes, got {self.samples}")
        if self.score not in ("variance", "entropy"):
            raise GauntletError(f"MC dropout score {self.score!r}: choose variance or entropy")

    def __call__(self, adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
        stochastic = adapter.dropout_forward
        if stochastic is None:
            raise SupervisorUnavailable(f"{adapter.description} has no dropout layer, so MC dropout has nothing to sample")
        x = adapter.as_batch(x)
        passes = np.zeros((self.samples, len(x), adapter.num_classes))
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(self.seed)
            for t in range(self.samples):
                for start in range(0, len(x), self.batch):
                    logits = stochastic(torch.from_numpy(x[start : start + self.batch])).double()
                    passes[t, start : start + self.batch] = torch.softmax(logits, dim=1).cpu().numpy()
        if self.score == "variance":
            return np.asarray(passes.var(axis=0).mean(axis=1))
        return _entropy(passes.mean(axis=0))


# --- Mahalanobis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mahalanobis:
    """Lee et al. (2018): class-conditional Gaussians over the features (the input of the last
    linear layer) with one shared covariance; the score of x is the smallest Mahalanobis
    distance from its features to a class mean. Build it with `fit_mahalanobis`."""

    means: np.ndarray  # [classes, F]
    precision: np.ndarray  # [F, F], pseudo-inverse of the shared covariance
    classes: tuple[int, ...]  # the classes with training samples, one per row of means

    def __call__(self, adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
        features = adapter.feature_values(x)
        if features.shape[1] != self.means.shape[1]:
            raise GauntletError(f"features have {features.shape[1]} values but the fit had {self.means.shape[1]}")
        best = np.full(len(features), np.inf)
        for mean in self.means:
            d = features - mean
            squared = np.einsum("nf,fg,ng->n", d, self.precision, d)
            best = np.minimum(best, squared)
        # the pseudo-inverse is positive semi-definite; rounding may dip a hair below zero.
        return np.asarray(np.sqrt(np.clip(best, 0.0, None)))


def fit_mahalanobis(adapter: ModelAdapter, x_train: np.ndarray, y_train: np.ndarray) -> Mahalanobis:
    """Class means and the shared (maximum-likelihood) covariance of the training features of
    each labelled class; the covariance is inverted with a symmetric pseudo-inverse because
    ReLU features are often rank-deficient (dead units)."""
    if adapter.features is None:
        raise SupervisorUnavailable(f"{adapter.description}: no feature layer is known, so Mahalanobis has no features")
    labels = np.asarray(y_train).reshape(-1)
    x_train = adapter.as_batch(x_train)
    if len(labels) != len(x_train) or len(labels) == 0:
        raise GauntletError(f"Mahalanobis needs labelled training samples; got {len(x_train)} samples, {len(labels)} labels")
    features = adapter.feature_values(x_train)
    classes = tuple(int(c) for c in np.unique(labels))
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, labels)]
    covariance = centred.T @ centred / len(features)
    precision = np.linalg.pinv(covariance, hermitian=True)
    return Mahalanobis(means=means, precision=precision, classes=classes)


# --- the built-ins by name --------------------------------------------------------------------


def _stateless(fn: Supervisor) -> SupervisorFactory:
    return lambda _adapter, _train, _seed: fn


def _mc_dropout(score: str) -> SupervisorFactory:
    def build(adapter: ModelAdapter, _train: TrainingData | None, seed: int) -> Supervisor:
        if adapter.dropout_forward is None:
            raise SupervisorUnavailable(f"{adapter.description} has no dropout layer")
        return MCDropout(score=score, seed=seed)

    return build


def _mahalanobis(adapter: ModelAdapter, train: TrainingData | None, _seed: int) -> Supervisor:
    if train is None:
        raise SupervisorUnavailable("Mahalanobis is fitted on nominal training data; none was given (--train)")
    return fit_mahalanobis(adapter, *train)


def builtin_supervisors() -> Mapping[str, SupervisorFactory]:
    """A fresh read-only mapping of the built-in supervisors by name."""
    return MappingProxyType({
        "max_softmax": _stateless(max_softmax),
        "entropy": _stateless(softmax_entropy),
        "deepgini": _stateless(deepgini),
        "mc_dropout": _mc_dropout("variance"),
        "mc_dropout_entropy": _mc_dropout("entropy"),
        "mahalanobis": _mahalanobis,
    })


BUILTIN_NAMES = ("max_softmax", "entropy", "deepgini", "mc_dropout", "mc_dropout_entropy", "mahalanobis")


def _callable_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def build_supervisors(
    specs: Sequence[str | Supervisor] | Mapping[str, Supervisor] | None,
    adapter: ModelAdapter,
    *,
    train: TrainingData | None = None,
    seed: int = 0,
) -> tuple[dict[str, Supervisor], dict[str, str]]:
    """(name -> supervisor, name -> reason it is unavailable). `specs`: built-in names,
    `file.py:attr` / `package.module:attr` naming a supervisor callable, callables (named by
    their `__name__`), or a mapping name -> callable; None means every built-in. `train` (x, y)
    fits the supervisors that need nominal training data (Mahalanobis)."""
    factories = builtin_supervisors()
    if specs is None:
        specs = list(BUILTIN_NAMES)
    named: list[tuple[str, str | Supervisor]]
    if isinstance(specs, Mapping):
        named = [(str(k), v) for k, v in specs.items()]
    else:
        named = [(s if isinstance(s, str) else _callable_name(s), s) for s in specs]
    built: dict[str, Supervisor] = {}
    unavailable: dict[str, str] = {}
    for name, spec in named:
        if name in built or name in unavailable:
            raise GauntletError(f"supervisor {name!r} is named twice")
        if not isinstance(spec, str):
            if not callable(spec):
                raise GauntletError(f"supervisor {name!r} is a {type(spec).__name__}, not a callable")
            built[name] = spec
        elif spec in factories:
            try:
                built[name] = factories[spec](adapter, train, seed)
            except SupervisorUnavailable as why:
                unavailable[name] = str(why)
        elif ":" in spec:
            built[name] = import_object(spec, "supervisor")
        else:
            raise GauntletError(
                f"unknown supervisor {spec!r}: choose from {', '.join(BUILTIN_NAMES)}, or name your own "
                "callable as file.py:function or package.module:function"
            )
    return built, unavailable


def check_scores(name: str, scores: Any, count: int) -> np.ndarray:
    """A supervisor's output as float64 [count], or a GauntletError saying what is wrong."""
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise GauntletError(f"supervisor {name!r} returned something that is not numbers: {err}") from None
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (count,):
        raise GauntletError(f"supervisor {name!r} returned shape {values.shape} for {count} inputs; expected ({count},)")
    if np.isnan(values).any():
        bad = int(np.isnan(values).sum())
        raise GauntletError(f"supervisor {name!r} returned NaN for {bad} of {count} inputs")
    return values


def describe(name: str) -> str:
    """One line saying what a built-in supervisor measures (user callables: their name)."""
    return _DESCRIPTIONS.get(name, f"user supervisor {name}")


_DESCRIPTIONS = {
    "max_softmax": "1 - max softmax probability",
    "entropy": "entropy of the softmax",
    "deepgini": "DeepGini 1 - sum p^2",
    "mc_dropout": "MC dropout: mean class variance over 20 passes",
    "mc_dropout_entropy": "MC dropout: predictive entropy over 20 passes",
    "mahalanobis": "Mahalanobis distance of features to the nearest class (shared covariance)",
}
