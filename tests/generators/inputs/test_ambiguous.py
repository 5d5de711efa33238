"""Ambiguous inputs on the digits models: what is kept is re-verified on the label model, agreed
on by the generator's own auxiliary ensemble, spread out, labelled 0.5 / 0.5 on its pair,
reproducible per seed, and judged by an independently trained CNN."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.ambiguous import ambiguous, confused_pairs
from generators.inputs.ensemble import EnsembleSettings, train_auxiliaries
from generators.inputs.result import HardInputs
from tests.generators.inputs.digits import SHAPE, digits, keras_mlp, torch_cnn, torch_mlp


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny batches train several times slower on two threads when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


PAIRS = [(3, 8), (1, 7)]
ENSEMBLE = EnsembleSettings(steps=600)
FAST: dict[str, Any] = {
    "per_pair": 8,
    "epochs": 100,
    "candidates": 160,
    "auxiliary": 4,
    "ensemble": ENSEMBLE,
}


@pytest.fixture(scope="module")
def label_model() -> ModelAdapter:
    return adapt(torch_mlp(), SHAPE)


@pytest.fixture(scope="module")
def made(label_model: ModelAdapter) -> HardInputs:
    x, y, _, _ = digits()
    return ambiguous(label_model, x, y, pairs=PAIRS, seed=0, **FAST)


def pair_of(made: HardInputs) -> np.ndarray:
    return np.array(made.params["pair_of_input"], dtype=np.int64).reshape(-1, 2)


def top2_gap(probabilities: np.ndarray) -> np.ndarray:
    ordered = np.sort(probabilities, axis=1)
    return np.asarray(ordered[:, -1] - ordered[:, -2])


def test_inputs_for_every_requested_pair(made: HardInputs) -> None:
    assert made.category == "ambiguous"
    assert made.params["pairs"] == [list(p) for p in PAIRS]
    pairs = pair_of(made)
    for pair in PAIRS:
        count = int((pairs == pair).all(axis=1).sum())
        assert 1 <= count <= FAST["per_pair"], pair
    assert (made.source == -1).all()
    report = {tuple(r["pair"]): r for r in made.params["per_pair_report"]}
    assert sum(r["kept"] for r in report.values()) == len(made) == made.params["succeeded"]
    assert all(r["attempted"] == FAST["candidates"] for r in report.values())
    json.dumps(dict(made.params))  # every parameter is recorded as plain JSON


def test_inside_bounds_as_float32(made: HardInputs, label_model: ModelAdapter) -> None:
    assert made.x.dtype == np.float32 and made.x.shape[1:] == SHAPE
    low, high = label_model.bounds
    assert made.x.min() >= low and made.x.max() <= high


def test_soft_labels_split_evenly_on_the_pair(made: HardInputs) -> None:
    assert made.labels is not None
    np.testing.assert_allclose(made.labels.sum(axis=1), 1.0)
    rows = np.arange(len(made))
    pairs = pair_of(made)
    np.testing.assert_allclose(made.labels[rows, pairs[:, 0]], 0.5)
    np.testing.assert_allclose(made.labels[rows, pairs[:, 1]], 0.5)


def test_rerun_puts_the_pair_on_top_evenly_split(made: HardInputs, label_model: ModelAdapter) -> None:
    probabilities = label_model.probabilities(made.x)
    np.testing.assert_allclose(probabilities, made.predicted, atol=1e-6)
    pairs = pair_of(made)
    top2 = np.sort(np.argsort(-probabilities, axis=1)[:, :2], axis=1)
    assert (top2 == np.sort(pairs, axis=1)).all()
    rows = np.arange(len(made))
    p_a, p_b = probabilities[rows, pairs[:, 0]], probabilities[rows, pairs[:, 1]]
    assert (np.abs(p_a - p_b) / (p_a + p_b) < made.params["gap"]).all()
    assert (p_a + p_b >= made.params["mass"]).all()


def test_the_auxiliary_ensemble_agrees_on_every_kept_input(made: HardInputs) -> None:
    """The generator's own auxiliary models (rebuilt here from the same seed: training is
    deterministic) put each kept input's pair on top of their mean probability, split below
    auxiliary_gap; params say how many of them balance each input on their own."""
    x, y, _, _ = digits()
    helpers = train_auxiliaries(x, y, SHAPE, (0.0, 1.0), 10, FAST["auxiliary"], ENSEMBLE, seed=0)
    recorded = made.params["auxiliary_models"]
    assert [h.description for h in helpers] == [m["description"] for m in recorded]
    assert all(m["train_accuracy"] > 0.9 for m in recorded)
    mean = np.mean([h.probabilities(made.x) for h in helpers], axis=0)
    pairs = pair_of(made)
    rows = np.arange(len(made))
    p_a, p_b = mean[rows, pairs[:, 0]], mean[rows, pairs[:, 1]]
    top2 = np.sort(np.argsort(-mean, axis=1)[:, :2], axis=1)
    assert (top2 == np.sort(pairs, axis=1)).all()
    assert (np.abs(p_a - p_b) / (p_a + p_b) < made.params["auxiliary_gap"]).all()
    agreement = np.array(made.params["auxiliary_balanced"])
    assert agreement.shape == (len(made),) and ((agreement >= 0) & (agreement <= FAST["auxiliary"])).all()


def test_kept_inputs_of_a_pair_are_spread_out(made: HardInputs) -> None:
    pairs = pair_of(made)
    for pair in PAIRS:
        flat = made.x[(pairs == pair).all(axis=1)].reshape(-1, int(np.prod(SHAPE)))
        distances = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(axis=2))
        np.fill_diagonal(distances, np.inf)
        assert distances.min() >= made.params["spacing"], pair


def test_without_auxiliary_models_only_the_label_model_decides(label_model: ModelAdapter) -> None:
    x, y, _, _ = digits()
    alone = ambiguous(label_model, x, y, pairs=[PAIRS[0]], seed=0, **{**FAST, "auxiliary": 0})
    assert alone.params["auxiliary_models"] == [] and len(alone) >= 1
    assert alone.params["auxiliary_balanced"] == [0] * len(alone)


def test_an_independent_judge_finds_them_far_less_certain_than_real_digits(made: HardInputs) -> None:
    """Measured with seed 0 (13 inputs kept): the judge (another architecture, another seed, never
    shown to the generator) has a median top-2 gap of 0.30 on them against 1.00 on real test
    digits; 54% of kept inputs are below a gap of 0.3 against 1% of real digits (25% before the
    auxiliary ensemble)."""
    judge = adapt(torch_cnn(seed=1), SHAPE)
    _, _, x_test, _ = digits()
    probabilities = judge.probabilities(made.x)
    gap, nominal = top2_gap(probabilities), top2_gap(judge.probabilities(x_test))
    assert np.median(gap) < 0.8 and np.median(nominal) > 0.99
    assert (gap < 0.3).mean() >= 10 * (nominal < 0.3).mean()
    top2 = np.sort(np.argsort(-probabilities, axis=1)[:, :2], axis=1)
    assert (top2 == np.sort(pair_of(made), axis=1)).all(axis=1).mean() >= 0.75


@pytest.mark.xfail(
    strict=True,
    reason="acceptance not reached: independently trained digits models rarely agree on what is "
    "ambiguous. On real test digits another model shares one model's ambiguity 22% of the time; on "
    "the generator's candidates this judge finds 40% ambiguous even among those all four other "
    "held-out judges do (benchmarks/ambiguity_agreement.py), so no selection by model agreement "
    "reaches 80%",
)
def test_judge_gap_below_03_on_80_percent(made: HardInputs) -> None:
    judge = adapt(torch_cnn(seed=1), SHAPE)
    assert (top2_gap(judge.probabilities(made.x)) < 0.3).mean() >= 0.8


def test_same_seed_same_inputs_and_pairs_are_independent(made: HardInputs, label_model: ModelAdapter) -> None:
    x, y, _, _ = digits()
    again = ambiguous(label_model, x, y, pairs=[PAIRS[0]], seed=0, **FAST)
    first = (pair_of(made) == PAIRS[0]).all(axis=1)
    np.testing.assert_array_equal(again.x, made.x[first])
    other = ambiguous(label_model, x, y, pairs=[PAIRS[0]], seed=1, **FAST)
    assert other.x.shape != again.x.shape or not np.array_equal(other.x, again.x)


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([(3, 3)], "one class twice"),
        ([(3, 10)], "outside the model's classes"),
        ([(-1, 2)], "outside the model's classes"),
        ([(1, 2, 3)], "exactly two classes"),
        ([], "pairs is empty"),
        ("most", "'all', or None"),
    ],
)
def test_bad_pairs_raise(label_model: ModelAdapter, pairs: object, message: str) -> None:
    x, y, _, _ = digits()
    with pytest.raises(GauntletError, match=message):
        ambiguous(label_model, x, y, pairs=pairs, **FAST)  # type: ignore[arg-type]


def test_too_few_samples_or_bad_data_raise(label_model: ModelAdapter) -> None:
    x, y, _, _ = digits()
    few = np.concatenate([np.flatnonzero(y == 3)[:5], np.flatnonzero(y == 8)])
    with pytest.raises(GauntletError, match="class 3 has 5 samples"):
        ambiguous(label_model, x[few], y[few], pairs=[(3, 8)])
    with pytest.raises(GauntletError, match="labels"):
        ambiguous(label_model, x, y[:-1], pairs=[(3, 8)])
    with pytest.raises(GauntletError, match="outside the bounds"):
        ambiguous(label_model, x * 2, y, pairs=[(3, 8)])
    with pytest.raises(GauntletError, match="gap"):
        ambiguous(label_model, x, y, pairs=[(3, 8)], gap=0.0)
    with pytest.raises(GauntletError, match="auxiliary_gap"):
        ambiguous(label_model, x, y, pairs=[(3, 8)], auxiliary_gap=0.0)
    with pytest.raises(GauntletError, match="ensemble_weight"):
        ambiguous(label_model, x, y, pairs=[(3, 8)], ensemble_weight=-1.0)
    with pytest.raises(GauntletError, match="auxiliary"):
        ambiguous(label_model, x, y, pairs=[(3, 8)], auxiliary=-1)


@settings(max_examples=8, deadline=None)
@given(count=st.integers(min_value=0, max_value=50))
def test_confused_pairs_are_distinct_and_ordered(label_model: ModelAdapter, count: int) -> None:
    x, y, _, _ = digits()
    chosen = confused_pairs(label_model, x, y, count)
    assert len(chosen) == min(count, 45) and len(set(chosen)) == len(chosen)
    assert all(0 <= a < b < 10 for a, b in chosen)
    probabilities = label_model.probabilities(x)
    scores = [probabilities[y == a][:, b].mean() + probabilities[y == b][:, a].mean() for a, b in chosen]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_keras_label_model_through_the_gradient_bridge() -> None:
    adapter = adapt(keras_mlp(), SHAPE)
    x, y, _, _ = digits()
    made = ambiguous(adapter, x, y, pairs=[(3, 8)], seed=0, **FAST)
    assert len(made) >= 1
    top2 = np.sort(np.argsort(-adapter.probabilities(made.x), axis=1)[:, :2], axis=1)
    assert (top2 == [3, 8]).all()
