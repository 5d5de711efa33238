"""verify.robustness and verify.api.assert_robust on a small MLP and CNN trained here on
scikit-learn's digits: ball properties, per-sample verdicts re-checked on the real model,
certified radii, the process pool, and the user-facing assertion.

The digits helpers at the top are shared with test_manipulations and test_robust_report.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from generators.errors import GauntletError
from generators.load.model import LoadedModel
from generators.load.torch import load_torch
from verify.api import assert_robust
from verify.network import linearize
from verify.robustness import (
    RobustnessError,
    check_samples,
    distance,
    l2_ball,
    linf_ball,
    unsafe_rows,
)
from verify.solve import verify_property
from verify.verdict import Counterexample, Unknown, Verified

DOMAIN = (0.0, 1.0)

# --- shared digits models ---------------------------------------------------------------------


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny tensors: one torch thread is many times faster than two on a shared 2-core box."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """8x8 digits scaled to [0, 1] (float32) and their labels."""
    datasets = pytest.importorskip("sklearn.datasets", reason="the digits data ships with scikit-learn")
    bunch = datasets.load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def mlp_module() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def cnn_module() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))


def train(module: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in module.parameters():  # a fixed initialization, whatever ran before
        nn.init.normal_(p, std=0.1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    with one_thread(), torch.enable_grad():
        for _ in range(epochs):
            optimizer.zero_grad()
            nn.functional.cross_entropy(module(xt), yt).backward()
            optimizer.step()
    return module.eval()


@functools.lru_cache(maxsize=1)
def trained_mlp() -> nn.Module:
    x, y = digits()
    return train(mlp_module(), x[:1500], y[:1500], 200)


@functools.lru_cache(maxsize=1)
def trained_cnn() -> nn.Module:
    x, y = digits()
    return train(cnn_module(), x[:1500].reshape(-1, 1, 8, 8), y[:1500], 120)


@functools.lru_cache(maxsize=1)
def mlp_model() -> LoadedModel:
    return load_torch(trained_mlp(), digits()[0][:1], description="digits mlp")


@functools.lru_cache(maxsize=1)
def cnn_model() -> LoadedModel:
    return load_torch(trained_cnn(), digits()[0][:1].reshape(1, 1, 8, 8), description="digits cnn")


def held_out(n: int, start: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    x, y = digits()
    return x[start : start + n], y[start : start + n]


def real_class(model: LoadedModel, x: np.ndarray) -> int:
    return int(np.argmax(model.run_real(np.asarray(x, np.float32).reshape(model.input_type.shape))))


def test_models_learn_the_digits() -> None:
    x, y = held_out(200)
    with one_thread(), torch.no_grad():
        mlp = np.mean(trained_mlp()(torch.from_numpy(x)).argmax(1).numpy() == y)
        cnn = np.mean(trained_cnn()(torch.from_numpy(x.reshape(-1, 1, 8, 8))).argmax(1).numpy() == y)
    assert mlp > 0.85 and cnn > 0.85
    for xi in x[:3]:  # the loaded models are the trained modules
        with torch.no_grad():
            assert real_class(mlp_model(), xi) == int(trained_mlp()(torch.from_numpy(xi[None])).argmax())


# --- properties -------------------------------------------------------------------------------


def test_label_unchanged_rows() -> None:
    rows = unsafe_rows(2, 4)
    assert len(rows) == 3
    for (c, d), j in zip(rows, (0, 1, 3)):
        expected = np.zeros((1, 4))
        expected[0, 2], expected[0, j] = 1.0, -1.0
        np.testing.assert_array_equal(c, expected)
        np.testing.assert_array_equal(d, [0.0])
    (_, d), *_ = unsafe_rows(0, 3, margin=0.5)
    np.testing.assert_array_equal(d, [0.5])
    with pytest.raises(RobustnessError, match="not a class"):
        unsafe_rows(4, 4)


def test_linf_ball_is_clipped_to_the_domain() -> None:
    x0 = np.array([0.0, 0.5, 1.0])
    prop = linf_ball(x0, 0.1, 1, DOMAIN, 3)
    assert (prop.n_inputs, prop.n_outputs, len(prop.disjuncts)) == (3, 3, 2)
    for disjunct in prop.disjuncts:
        np.testing.assert_allclose(disjunct.lower, [0.0, 0.4, 0.9])
        np.testing.assert_allclose(disjunct.upper, [0.1, 0.6, 1.0])
        assert disjunct.l2_center is None
    # The label's output tied with another is unsafe; strictly above every other is safe.
    assert prop.violated_by(x0, np.array([0.0, 1.0, 1.0]))
    assert not prop.violated_by(x0, np.array([0.0, 1.0, 0.9]))
    assert not prop.violated_by(x0 + 0.2, np.array([0.0, 0.0, 1.0]))  # outside the ball
    with pytest.raises(RobustnessError, match="outside the input domain"):
        linf_ball(np.array([1.5]), 0.1, 0, DOMAIN, 2)


def test_l2_ball_carries_the_ball_and_its_bounding_box() -> None:
    x0 = np.array([0.2, 0.9])
    prop = l2_ball(x0, 0.3, 0, DOMAIN, 2, margin=0.25)
    (disjunct,) = prop.disjuncts
    np.testing.assert_allclose(disjunct.lower, [0.0, 0.6])
    np.testing.assert_allclose(disjunct.upper, [0.5, 1.0])
    assert disjunct.l2_center is not None
    np.testing.assert_allclose(disjunct.l2_center, x0)
    assert disjunct.l2_radius == 0.3 and disjunct.d[0] == 0.25
    assert not disjunct.inside(np.array([0.45, 0.65]))  # in the box, outside the ball
    assert prop.violated_by(np.array([0.3, 0.8]), np.array([1.0, 0.8]))  # margin 0.2 <= 0.25


# --- checking samples -------------------------------------------------------------------------


def test_check_samples_on_the_mlp() -> None:
    model = mlp_model()
    x, y = held_out(8)
    seen: list[int] = []
    result = check_samples(model, x, y, 0.03, "linf", DOMAIN, 5.0, progress=lambda r, done, total: seen.append(done))
    assert seen == list(range(1, 9))
    assert [r.index for r in result.records] == list(range(8))
    counts = result.counts()
    assert sum(counts.values()) == 8 and counts["verified"] >= 1 and counts["counterexample"] >= 1
    for record, x0 in zip(result.records, x):
        np.testing.assert_array_equal(record.x.ravel(), x0.astype(np.float64))
        if record.status == "misclassified":
            assert record.verdict is None and record.predicted != record.label
            continue
        v = record.verdict
        if isinstance(v, Verified):
            assert v.method and v.margin > 0
            assert "verified by" in record.summary()
        elif isinstance(v, Counterexample):
            y_real = model.run_real(v.x)
            np.testing.assert_array_equal(v.y, y_real)
            assert y_real.ravel()[record.label] <= np.delete(y_real.ravel(), record.label).max()  # a tie is unsafe
            assert distance("linf", v.x, x0) <= 0.03 + 1e-6 and v.x.min() >= 0 and v.x.max() <= 1
            assert f"class {int(np.argmax(v.y))}" in record.summary()
    assert result.exit_code == (1 if counts["counterexample"] or counts["misclassified"] else 3 if counts["unknown"] else 0)


def test_misclassified_samples_are_reported_not_verified() -> None:
    model = mlp_model()
    x, y = held_out(3)
    wrong = (y + 1) % 10
    result = check_samples(model, x, wrong, 0.01, "linf", DOMAIN, 2.0)
    assert [r.status for r in result.records] == ["misclassified"] * 3
    assert all(r.predicted == real_class(model, xi) for r, xi in zip(result.records, x))
    assert result.exit_code == 1
    # Without labels, the model's own answers are the labels: nothing is misclassified.
    result = check_samples(model, x, None, 0.0, "linf", DOMAIN, 2.0)
    assert [r.label for r in result.records] == [real_class(model, xi) for xi in x]
    assert result.counts()["misclassified"] == 0


def test_check_samples_on_the_cnn_with_an_l2_ball() -> None:
    model = cnn_model()
    x, y = held_out(3)
    result = check_samples(model, x.reshape(-1, 1, 8, 8), y, 0.3, "l2", DOMAIN, 2.0)
    for record, x0 in zip(result.records, x):
        if isinstance(record.verdict, Counterexample):
            v = record.verdict
            assert v.x.shape == (1, 1, 8, 8)
            assert np.linalg.norm(v.x.ravel() - x0) <= 0.3 + 1e-5
            prop = l2_ball(x0, 0.3, record.label, DOMAIN, 10)
            assert prop.violated_by(v.x, model.run_real(v.x))
    assert sum(result.counts().values()) == 3


def test_input_errors() -> None:
    model = mlp_model()
    x, y = held_out(2)
    with pytest.raises(RobustnessError, match="norm"):
        check_samples(model, x, y, 0.1, "l1", DOMAIN, 1.0)
    with pytest.raises(RobustnessError, match="do not fit"):
        check_samples(model, x[:, :10], y, 0.1, "linf", DOMAIN, 1.0)
    with pytest.raises(RobustnessError, match="labels"):
        check_samples(model, x, y[:1], 0.1, "linf", DOMAIN, 1.0)
    with pytest.raises(RobustnessError, match="nothing to check"):
        check_samples(model, x, y, None, "linf", DOMAIN, 1.0)
    with pytest.raises(RobustnessError, match="NaN"):
        check_samples(model, np.full_like(x, np.nan), y, 0.1, "linf", DOMAIN, 1.0)
    with pytest.raises(RobustnessError, match="outside the input domain"):
        check_samples(model, x + 2.0, y, 0.1, "linf", DOMAIN, 1.0)
    assert issubclass(RobustnessError, GauntletError)


def _ball_point(rng: np.random.Generator, x0: np.ndarray, eps: float, norm: str) -> np.ndarray:
    if norm == "linf":
        point = x0 + rng.uniform(-eps, eps, x0.shape)
    else:
        direction = rng.standard_normal(x0.shape)
        point = x0 + direction / np.linalg.norm(direction) * eps * rng.uniform() ** (1 / x0.size)
    # Clipping to the domain moves each coordinate toward x0 (which is inside): still in the ball.
    return np.clip(point, *DOMAIN)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, 199),
    eps=st.floats(0.002, 0.15),
    norm=st.sampled_from(["linf", "l2"]),
    seed=st.integers(0, 2**16),
)
def test_verdicts_hold_on_the_real_model(index: int, eps: float, norm: str, seed: int) -> None:
    """Every counterexample violates its property on the real model; a sample verified at eps
    keeps its label at random points of the ball."""
    model = mlp_model()
    x, y = held_out(200)
    x0 = x[index].astype(np.float64)
    eps = eps if norm == "linf" else eps * 8  # comparable balls: ||.||_2 <= 8 ||.||_inf in 64 dims
    result = check_samples(model, x0[None], y[index : index + 1], eps, norm, DOMAIN, 2.0)
    (record,) = result.records
    v = record.verdict
    if isinstance(v, Counterexample):
        prop = linf_ball(x0, eps, record.label, DOMAIN, 10) if norm == "linf" else l2_ball(x0, eps, record.label, DOMAIN, 10)
        assert prop.violated_by(v.x, model.run_real(v.x))
    elif isinstance(v, Verified):
        rng = np.random.default_rng(seed)
        points = np.stack([_ball_point(rng, x0, eps, norm) for _ in range(64)])
        for point in points:
            out = model.run_real(point.astype(np.float32).reshape(1, 64)).ravel()
            assert out[record.label] > np.delete(out, record.label).max()


def test_certified_radius_brackets_the_nearest_counterexample() -> None:
    model = mlp_model()
    net = linearize(model)
    x, y = held_out(3)
    x, y = x[1:], y[1:]
    result = check_samples(model, x, y, 0.02, "linf", DOMAIN, 1.5, radius=True, radius_steps=5)
    checked = 0
    for record, x0 in zip(result.records, x):
        if record.status == "misclassified":
            assert record.radius is None
            continue
        r = record.radius
        assert r is not None and 0 < len(r.steps) <= 5 and r.stop
        assert r.upper is None or r.lower <= r.upper
        assert r.undecided is None or r.lower <= r.undecided
        for step in r.steps:
            assert step.status in ("verified", "counterexample", "unknown")
        if r.lower > 0:
            # The lower end is a verified ball: the pipeline proves it again, and sampling agrees.
            again = verify_property(model, linf_ball(x0, r.lower, record.label, DOMAIN, 10), 3.0, net=net)
            assert isinstance(again, Verified | Unknown)
            assert not isinstance(again, Counterexample)
            rng = np.random.default_rng(0)
            for _ in range(32):
                assert real_class(model, _ball_point(rng, x0.astype(np.float64), r.lower, "linf")) == record.label
        checked += 1
        assert "radius in [" in record.summary()
    assert checked == 2


def test_process_pool_matches_sequential() -> None:
    model = mlp_model()
    x, y = held_out(4)
    # The recipe holds the live module, whose parameters the loaded model's weights alias.
    rebuild = functools.partial(load_torch, trained_mlp(), digits()[0][:1], "digits mlp")
    before = {i: w.copy() for i, w in model.weights.items()}
    sequential = check_samples(model, x, y, 0.01, "linf", DOMAIN, 5.0)
    pooled = check_samples(model, x, y, 0.01, "linf", DOMAIN, 5.0, workers=2, rebuild=rebuild)
    for i, w in model.weights.items():  # sending the recipe to the workers left them intact
        np.testing.assert_array_equal(w, before[i])
    assert pooled.workers == 2 and sequential.workers == 1
    assert [r.index for r in pooled.records] == list(range(4))
    assert [r.status for r in pooled.records] == [r.status for r in sequential.records]


def test_a_rebuilt_model_that_differs_is_refused() -> None:
    x, y = held_out(2)
    other = functools.partial(load_torch, mlp_module(), digits()[0][:1])  # untrained weights
    with pytest.raises(RobustnessError, match="different outputs"):
        check_samples(mlp_model(), x, y, 0.01, "linf", DOMAIN, 2.0, workers=2, rebuild=other)


# --- assert_robust ----------------------------------------------------------------------------


def test_assert_robust_passes_on_robust_samples() -> None:
    x, _ = held_out(5)
    result = assert_robust(trained_mlp(), x[2:5], eps=0.003, domain=DOMAIN, timeout=5.0)
    assert result.counts()["verified"] == 3


def test_assert_robust_lists_counterexamples_with_their_outputs() -> None:
    x, y = held_out(8)
    with pytest.raises(AssertionError) as info:
        assert_robust(trained_mlp(), torch.from_numpy(x), y, eps=0.1, domain=DOMAIN, timeout=5.0)
    message = str(info.value)
    assert "samples are not robust (linf eps=0.1)" in message
    assert "counterexample by" in message and "outputs [" in message


def test_assert_robust_does_not_pass_unknowns() -> None:
    x, y = held_out(3)
    x, y = x[2:], y[2:]  # robust at this eps: the attack finds nothing, and no time is left for bounds
    with pytest.raises(AssertionError, match="unknown is not a pass"):
        assert_robust(mlp_model(), x, y, eps=0.01, domain=DOMAIN, timeout=1e-6)
    result = assert_robust(mlp_model(), x, y, eps=0.01, domain=DOMAIN, timeout=1e-6, allow_unknown=True)
    assert result.counts()["unknown"] == 1


def test_assert_robust_refuses_what_it_cannot_load() -> None:
    with pytest.raises(GauntletError, match="nn.Module"):
        assert_robust(object(), np.zeros((1, 4)), eps=0.1)
    with pytest.raises(GauntletError, match="nn.Module"):
        assert_robust("model.pt", np.zeros((1, 4)), eps=0.1)
