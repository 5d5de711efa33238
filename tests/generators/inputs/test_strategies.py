"""The Hypothesis strategies over hard inputs: what they draw stays in the ball and bounds, a
property test over them finds a real counterexample, and failures shrink towards the sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.adversarial import pgd, pgd_points
from generators.inputs.corrupt import corrupt
from generators.inputs.strategies import (
    adversarial_inputs,
    ambiguous_inputs,
    corrupted_inputs,
    fooling_inputs,
)
from tests.generators.inputs.digits import SHAPE, digits, torch_mlp

QUICK = settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def mlp() -> ModelAdapter:
    return adapt(torch_mlp(), SHAPE)


@pytest.fixture(scope="module")
def samples(mlp: ModelAdapter) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(a sample PGD from itself fools at eps 0.1, its label, a sample PGD cannot fool at eps 0.1
    with 10 restarts, its label)."""
    _, _, x, y = digits()
    x, y = x[:60], y[:60]
    correct = mlp.predict(x) == y
    from_itself = pgd_points(mlp, x, y, x, eps=0.1, steps=20)
    weak = np.flatnonzero(correct & (mlp.predict(from_itself) != y))
    fooled = pgd(mlp, x, y, eps=0.1, restarts=10).source
    strong = np.setdiff1d(np.flatnonzero(correct), fooled)
    assert len(weak) and len(strong)
    return x[weak[0]], int(y[weak[0]]), x[strong[0]], int(y[strong[0]])


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1), ("l2", 0.8)])
def test_adversarial_inputs_stay_in_the_ball(
    mlp: ModelAdapter, samples: tuple[np.ndarray, int, np.ndarray, int], norm: str, eps: float
) -> None:
    x0 = samples[0]

    @QUICK
    @given(adversarial_inputs(mlp, x0, eps=eps, norm=norm, steps=10))
    def inside(x: np.ndarray) -> None:
        assert x.shape == SHAPE and x.dtype == np.float32
        assert ((x >= 0) & (x <= 1)).all()
        delta = (x.astype(np.float64) - x0).ravel()
        size = np.abs(delta).max() if norm == "linf" else np.linalg.norm(delta)
        assert size <= eps * (1 + 1e-5)

    inside()


def test_a_property_over_adversarial_inputs_finds_the_weak_sample(
    mlp: ModelAdapter, samples: tuple[np.ndarray, int, np.ndarray, int]
) -> None:
    x0, label, _, _ = samples

    @QUICK
    @given(adversarial_inputs(mlp, x0, eps=0.1))
    def robust(x: np.ndarray) -> None:
        assert mlp.predict(x)[0] == label

    with pytest.raises(AssertionError):
        robust()


def test_failures_shrink_to_pgd_from_the_sample(
    mlp: ModelAdapter, samples: tuple[np.ndarray, int, np.ndarray, int]
) -> None:
    x0, label, _, _ = samples
    minimal = find(
        adversarial_inputs(mlp, x0, eps=0.1, steps=20),
        lambda x: bool(mlp.predict(x)[0] != label),
        settings=settings(max_examples=30, deadline=None, database=None),
    )
    from_x0 = pgd_points(mlp, x0[None], np.array([label]), x0[None], eps=0.1, steps=20)[0]
    np.testing.assert_array_equal(minimal, from_x0)


def test_a_robust_sample_passes(mlp: ModelAdapter, samples: tuple[np.ndarray, int, np.ndarray, int]) -> None:
    _, _, x1, label = samples

    @QUICK
    @given(adversarial_inputs(mlp, x1, eps=0.1, steps=20))
    def robust(x: np.ndarray) -> None:
        assert mlp.predict(x)[0] == label

    robust()


def test_corrupted_inputs_draw_family_and_severity(
    mlp: ModelAdapter, samples: tuple[np.ndarray, int, np.ndarray, int]
) -> None:
    x0, label, _, _ = samples
    seen: list[np.ndarray] = []

    @QUICK
    @given(corrupted_inputs(mlp, x0))
    def drawn(x: np.ndarray) -> None:
        assert x.shape == SHAPE and ((x >= 0) & (x <= 1)).all()
        seen.append(x)

    drawn()
    assert len({x.tobytes() for x in seen}) > 5
    # the simplest draw: the first family, the mildest severity, seed 0.
    simplest = find(corrupted_inputs(mlp, x0, families=["contrast", "noise"]), lambda x: True)
    expected = corrupt(mlp, x0[None], [label], family="contrast", severity=1, seed=0).x[0]
    np.testing.assert_array_equal(simplest, expected)


def test_corrupted_inputs_on_flat_models() -> None:
    flat = adapt(torch_mlp(), (64,))
    x0 = digits()[2][0].reshape(64)

    @QUICK
    @given(corrupted_inputs(flat, x0))
    def drawn(x: np.ndarray) -> None:
        assert x.shape == (64,)

    drawn()
    with pytest.raises(GauntletError, match="image inputs"):
        corrupted_inputs(flat, x0, families=["blur"])


def test_strategies_take_one_sample(mlp: ModelAdapter) -> None:
    _, _, x, _ = digits()
    with pytest.raises(GauntletError, match="one sample"):
        adversarial_inputs(mlp, x[:3], eps=0.1)
    with pytest.raises(GauntletError, match="norm"):
        adversarial_inputs(mlp, x[0], eps=0.1, norm="l0")


def test_fooling_inputs_are_confident(mlp: ModelAdapter) -> None:
    pytest.importorskip("generators.inputs.fooling")
    strategy = fooling_inputs(mlp, classes=[3, 7], per_class=1)

    @QUICK
    @given(strategy)
    def confident(x: np.ndarray) -> None:
        assert x.shape == SHAPE
        assert mlp.probabilities(x).max() >= 0.99

    confident()


@pytest.mark.slow
def test_ambiguous_inputs_split_two_classes(mlp: ModelAdapter) -> None:
    pytest.importorskip("generators.inputs.ambiguous")
    x, y, _, _ = digits()

    # the pair the model confuses most; the generator keeps inputs balanced within gap 0.2.
    @QUICK
    @given(ambiguous_inputs(mlp, x, y, per_pair=3, default_pairs=1))
    def split(x: np.ndarray) -> None:
        top = np.sort(mlp.probabilities(x)[0])[::-1]
        assert top[0] - top[1] < 0.25 and top[0] + top[1] >= 0.79

    split()
