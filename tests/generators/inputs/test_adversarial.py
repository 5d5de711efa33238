"""FGSM, PGD and Carlini-Wagner on the digits models: success rates, re-verification, the
ball and bounds, determinism, and the recheck that drops what the model no longer misclassifies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.adversarial import carlini_wagner, fgsm, pgd
from generators.inputs.result import HardInputs
from tests.generators.inputs.digits import SHAPE, digits, keras_mlp, torch_mlp


@pytest.fixture(scope="module")
def mlp() -> ModelAdapter:
    return adapt(torch_mlp(), SHAPE)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    _, _, x_test, y_test = digits()
    return x_test[:50], y_test[:50]


def distances(result: HardInputs, x: np.ndarray, norm: str) -> np.ndarray:
    delta = (result.x.astype(np.float64) - x[result.source].astype(np.float64)).reshape(len(result), 64)
    return np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt((delta**2).sum(axis=1))


def assert_sound(
    adapter: ModelAdapter, result: HardInputs, x: np.ndarray, y: np.ndarray, eps: float | None, norm: str
) -> None:
    """Every returned example is misclassified when re-run, lies in the bounds and the ball,
    and the bookkeeping adds up."""
    assert result.category == "adversarial"
    assert result.x.dtype == np.float32 and result.x.shape[1:] == SHAPE
    assert (adapter.predict(result.x) != y[result.source]).all()
    assert ((result.x >= 0.0) & (result.x <= 1.0)).all()
    if eps is not None:
        slack = 0.0 if norm == "linf" else 1e-5 * eps
        assert (distances(result, x, norm) <= eps + slack).all()
    assert len(np.unique(result.source)) == len(result)
    assert result.labels is not None
    assert (result.labels.argmax(axis=1) == y[result.source]).all()
    np.testing.assert_allclose(result.predicted, adapter.probabilities(result.x), atol=1e-5)
    params = result.params
    assert params["succeeded"] == len(result)
    assert params["attempted"] == int((adapter.predict(x) == y).sum())
    assert params["rejected_on_recheck"] == 0


def test_pgd_linf_fools_a_clear_majority(mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    result = pgd(mlp, x, y, eps=0.1, restarts=3)
    assert_sound(mlp, result, x, y, 0.1, "linf")
    assert len(result) >= 0.6 * result.params["attempted"]
    assert result.params["step_size"] == pytest.approx(2.5 * 0.1 / 40)
    assert result.params["mean_linf"] <= 0.1
    assert set(result.params["restart_of_success"]) <= {1, 2, 3}


def test_pgd_l2_fools_a_clear_majority(mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    result = pgd(mlp, x, y, eps=1.0, norm="l2", steps=20)
    assert_sound(mlp, result, x, y, 1.0, "l2")
    assert len(result) >= 0.8 * result.params["attempted"]
    assert result.params["norm"] == "l2" and result.params["mean_l2"] <= 1.0


def test_fgsm_finds_no_more_than_pgd(mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    for norm, eps in (("linf", 0.1), ("l2", 1.0)):
        one_step = fgsm(mlp, x, y, eps=eps, norm=norm)
        assert_sound(mlp, one_step, x, y, eps, norm)
        assert 0 < len(one_step) <= len(pgd(mlp, x, y, eps=eps, norm=norm))


def test_more_restarts_find_at_least_as_many(mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    # restart 1 of both runs draws the same start, and later restarts only add successes.
    one = pgd(mlp, x, y, eps=0.08, steps=20)
    five = pgd(mlp, x, y, eps=0.08, steps=20, restarts=5)
    assert set(one.source) <= set(five.source)


def test_carlini_wagner_finds_smaller_l2_than_pgd(
    mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = data
    x, y = x[:30], y[:30]
    cw = carlini_wagner(mlp, x, y, binary_steps=6, steps=60, learning_rate=0.05)
    assert_sound(mlp, cw, x, y, None, "l2")
    projected = pgd(mlp, x, y, eps=1.0, norm="l2", steps=20)
    assert len(cw) >= 0.9 * len(projected)
    assert cw.params["mean_l2"] < projected.params["mean_l2"]
    assert cw.params["mean_l2"] == pytest.approx(distances(cw, x, "l2").mean(), rel=1e-6)
    assert len(cw.params["c"]) == len(cw) and all(c > 0 for c in cw.params["c"])


def test_keras_model(data: tuple[np.ndarray, np.ndarray]) -> None:
    adapter = adapt(keras_mlp(), SHAPE)
    x, y = data[0][:12], data[1][:12]
    result = pgd(adapter, x, y, eps=0.15, steps=10)
    assert_sound(adapter, result, x, y, 0.15, "linf")
    assert len(result) >= result.params["attempted"] // 2


def test_same_seed_same_examples(mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    first = pgd(mlp, x, y, eps=0.07, norm="linf", steps=10, restarts=2, seed=3)
    again = pgd(mlp, x, y, eps=0.07, norm="linf", steps=10, restarts=2, seed=3)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.source, again.source)
    assert first.params == again.params


@settings(max_examples=15, deadline=None)
@given(
    eps=st.floats(min_value=1e-3, max_value=3.0),
    norm=st.sampled_from(["linf", "l2"]),
    seed=st.integers(min_value=0, max_value=2**31),
    restarts=st.integers(min_value=1, max_value=2),
)
def test_pgd_stays_in_ball_and_bounds(eps: float, norm: str, seed: int, restarts: int) -> None:
    adapter = adapt(torch_mlp(), SHAPE)
    _, _, x, y = digits()
    x, y = x[50:58], y[50:58]
    result = pgd(adapter, x, y, eps=eps, norm=norm, steps=5, restarts=restarts, seed=seed)
    assert_sound(adapter, result, x, y, eps, norm)


class Jittery(torch.nn.Module):
    """A classifier whose logits carry fresh noise on every call: what it misclassified during
    the attack it may classify correctly on the recheck."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch_mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits + 20 * torch.randn(logits.shape)


def test_recheck_drops_and_counts_what_no_longer_fools(data: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    adapter = adapt(Jittery(), SHAPE)
    x, y = data
    result = pgd(adapter, x, y, eps=0.01, steps=3)
    params = result.params
    assert params["rejected_on_recheck"] > 0
    assert params["succeeded"] == len(result)


def test_bad_requests_raise(mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(GauntletError, match="norm"):
        pgd(mlp, x, y, eps=0.1, norm="l1")
    with pytest.raises(GauntletError, match="eps"):
        fgsm(mlp, x, y, eps=0.0)
    with pytest.raises(GauntletError, match="bounds"):
        pgd(mlp, x * 3, y, eps=0.1)
    with pytest.raises(GauntletError, match="labels"):
        pgd(mlp, x, y[:-1], eps=0.1)
    with pytest.raises(GauntletError, match="steps"):
        pgd(mlp, x, y, eps=0.1, steps=0)
    with pytest.raises(GauntletError, match="shape"):
        carlini_wagner(mlp, x.reshape(len(x), -1), y)


def test_misclassified_samples_are_not_attacked(
    mlp: ModelAdapter, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = data
    wrong = (y + 1) % 10
    result = pgd(mlp, x, wrong, eps=0.1, steps=5)
    assert result.params["attempted"] == int((mlp.predict(x) == wrong).sum())
    assert len(result) <= result.params["attempted"]
