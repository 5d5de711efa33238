"""Soundness of the verifier on random small networks: bounds contain sampled outputs, a
verified region has no violating sample, every counterexample violates on the real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.verify.nets import mlp
from verify.bounds import intermediate_bounds, spec_bounds
from verify.network import linearize
from verify.property import Disjunct, Property
from verify.solve import verify_property
from verify.verdict import Counterexample, Unknown, Verified

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh"]


def samples(lo: np.ndarray, hi: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    inner = lo + (hi - lo) * rng.uniform(size=(count, lo.shape[0]))
    corners = np.where(rng.uniform(size=(count // 4, lo.shape[0])) < 0.5, lo, hi)
    return np.concatenate([inner, corners])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    activation=st.sampled_from(ACTIVATIONS),
    width=st.floats(0.01, 2.0),
    alpha_steps=st.sampled_from([0, 5]),
)
def test_bounds_contain_sampled_outputs(seed: int, activation: str, width: float, alpha_steps: int) -> None:
    model = mlp([4, 12, 12, 3], activation, seed=seed)
    net = linearize(model)
    rng = np.random.default_rng(seed)
    center = rng.uniform(-1, 1, size=4)
    lo, hi = center - width / 2, center + width / 2
    tlo, thi = torch.tensor(lo).unsqueeze(0), torch.tensor(hi).unsqueeze(0)
    C = torch.tensor(rng.normal(size=(5, 3)))
    d = torch.tensor(rng.normal(size=5))
    layer_bounds = intermediate_bounds(net, tlo, thi)
    lower = spec_bounds(net, tlo, thi, C, d, layer_bounds, alpha_steps=alpha_steps).lower[0].numpy()
    xs = samples(lo, hi, 4000, seed)
    values = net(xs) @ C.numpy().T - d.numpy()
    assert (values.min(0) >= lower).all()
    for node in range(1, len(net.layers) + 1):
        if node in layer_bounds.lower:
            with torch.no_grad():
                inside = net.forward_all(torch.tensor(xs))[node]
            assert (inside >= layer_bounds.lower[node]).all() and (inside <= layer_bounds.upper[node]).all()


def label_property(center: np.ndarray, eps: float, label: int, outputs: int) -> Property:
    disjuncts = []
    for j in range(outputs):
        if j == label:
            continue
        row = np.zeros(outputs)
        row[label], row[j] = 1.0, -1.0
        disjuncts.append(Disjunct(center - eps, center + eps, row[None, :], np.zeros(1)))
    return Property(center.size, outputs, tuple(disjuncts))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), activation=st.sampled_from(ACTIVATIONS), eps=st.floats(0.001, 0.5))
def test_verdicts_agree_with_sampling(seed: int, activation: str, eps: float) -> None:
    model = mlp([3, 10, 10, 3], activation, seed=seed)
    rng = np.random.default_rng(seed)
    center = rng.uniform(-1, 1, size=3)
    label = int(np.argmax(model.run_real(center)))
    prop = label_property(center, eps, label, 3)
    verdict = verify_property(model, prop, timeout=10.0, seed=seed)
    if isinstance(verdict, Counterexample):
        assert prop.disjuncts[verdict.disjunct].violated_by(verdict.x, model.run_real(verdict.x))
    elif isinstance(verdict, Verified):
        xs = samples(center - eps, center + eps, 3000, seed)
        ys = linearize(model)(xs)
        others = np.delete(ys, label, axis=1)
        assert (ys[:, label][:, None] > others).all()
    else:
        assert isinstance(verdict, Unknown) and verdict.reason


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_piecewise_linear_nets_are_decided(activation: str) -> None:
    """Low-dimensional ReLU nets are decided by input splitting, both ways."""
    decided = {"verified": 0, "counterexample": 0}
    for seed in range(12):
        model = mlp([2, 16, 16, 2], activation, seed=seed)
        center = np.random.default_rng(seed).uniform(-1, 1, size=2)
        label = int(np.argmax(model.run_real(center)))
        verdict = verify_property(model, label_property(center, 0.3, label, 2), timeout=20.0)
        assert verdict.status != "unknown", getattr(verdict, "reason", "")
        decided[verdict.status] += 1
    assert decided["verified"] and decided["counterexample"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), eps=st.floats(0.01, 0.3))
def test_relu_splitting_and_z3_agree_with_sampling(seed: int, eps: float) -> None:
    """20 inputs: above the input-splitting limit, so ReLU splitting and z3 residuals decide."""
    model = mlp([20, 10, 10, 3], "relu", seed=seed)
    center = np.random.default_rng(seed).uniform(-1, 1, size=20)
    label = int(np.argmax(model.run_real(center)))
    prop = label_property(center, eps, label, 3)
    verdict = verify_property(model, prop, timeout=20.0, seed=seed)
    if isinstance(verdict, Counterexample):
        assert prop.disjuncts[verdict.disjunct].violated_by(verdict.x, model.run_real(verdict.x))
    elif isinstance(verdict, Verified):
        ys = linearize(model)(samples(center - eps, center + eps, 4000, seed))
        assert (ys[:, label][:, None] > np.delete(ys, label, axis=1)).all()


@pytest.mark.parametrize("slope", [-0.5, 1.5])
def test_leaky_relu_slopes_outside_the_unit_interval(slope: float) -> None:
    model = mlp([3, 8, 8, 2], "leaky_relu", seed=3, slope=slope)
    net = linearize(model)
    xs = samples(np.full(3, -1.0), np.full(3, 1.0), 2000, 0)
    real = np.stack([model.run_real(x) for x in xs[:50]]).reshape(50, -1)
    assert np.allclose(net(xs[:50]), real, atol=1e-5)
    lo, hi = torch.full((1, 3), -1.0, dtype=torch.float64), torch.full((1, 3), 1.0, dtype=torch.float64)
    C = torch.eye(2, dtype=torch.float64)
    lower = spec_bounds(net, lo, hi, C, torch.zeros(2, dtype=torch.float64), intermediate_bounds(net, lo, hi)).lower[0]
    assert (net(xs).min(0) >= lower.numpy()).all()
