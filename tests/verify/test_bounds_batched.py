"""Batched bounds agree with one-box-at-a-time bounds and contain sampled values; beta-CROWN
bounds under ReLU split decisions contain the outputs of the constrained sub-domain; input
splitting with a lookahead and combined rows agrees with sampling on conjunctive disjuncts."""

from __future__ import annotations

import time

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.verify.nets import mlp
from verify.attack import Region
from verify.bounds import intermediate_bounds, spec_bounds
from verify.input_split import STRATEGIES, combined_rows, input_split
from verify.network import Activation, linearize
from verify.property import Disjunct, Property
from verify.solve import verify_property
from verify.verdict import Counterexample, Verified


def _boxes(rng: np.random.Generator, count: int, n: int, width: float) -> tuple[torch.Tensor, torch.Tensor]:
    center = rng.uniform(-1, 1, size=(count, n))
    half = rng.uniform(0.1, 1.0, size=(count, n)) * width / 2
    return torch.tensor(center - half), torch.tensor(center + half)


def _inside(rng: np.random.Generator, lo: torch.Tensor, hi: torch.Tensor, count: int) -> torch.Tensor:
    u = torch.tensor(rng.uniform(size=(count, lo.shape[0])))
    corners = torch.tensor(rng.uniform(size=(count // 4, lo.shape[0])) < 0.5)
    return torch.cat([lo + (hi - lo) * u, torch.where(corners, hi, lo)])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), width=st.floats(0.05, 2.0), activation=st.sampled_from(["relu", "leaky_relu", "tanh"]))
def test_batched_hybrid_bounds_equal_single_box_bounds_and_contain_samples(seed: int, width: float, activation: str) -> None:
    """The padded per-box refinement of unstable neurons: a batch of boxes gets the same
    bounds as each box alone, and they contain every sampled activation input."""
    net = linearize(mlp([5, 16, 16, 16, 3], activation, seed=seed))
    rng = np.random.default_rng(seed)
    lo, hi = _boxes(rng, 6, 5, width)
    batched = intermediate_bounds(net, lo, hi, method="hybrid")
    for i in range(lo.shape[0]):
        alone = intermediate_bounds(net, lo[i : i + 1], hi[i : i + 1], method="hybrid")
        for node, bound in alone.lower.items():
            assert torch.allclose(bound[0], batched.lower[node][i], rtol=1e-9, atol=1e-9)
            assert torch.allclose(alone.upper[node][0], batched.upper[node][i], rtol=1e-9, atol=1e-9)
        xs = _inside(rng, lo[i], hi[i], 800)
        with torch.no_grad():
            values = net.forward_all(xs)
        for node in batched.lower:
            assert (values[node] >= batched.lower[node][i]).all() and (values[node] <= batched.upper[node][i]).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), width=st.floats(0.2, 2.0), n_splits=st.integers(1, 6))
def test_beta_bounds_contain_outputs_of_the_split_sub_domain(seed: int, width: float, n_splits: int) -> None:
    """Split decisions (input >= 0 / <= 0 of some ReLUs) with optimized slopes and betas bound
    C y - d from below at every sampled input that satisfies the decisions."""
    net = linearize(mlp([4, 12, 12, 3], "relu", seed=seed))
    rng = np.random.default_rng(seed)
    lo, hi = _boxes(rng, 1, 4, width)
    xs = _inside(rng, lo[0], hi[0], 6000)
    with torch.no_grad():
        values = net.forward_all(xs)
    nodes = net.activation_nodes()
    splits = {n: torch.zeros((1, net.layers[n - 1].size), dtype=torch.int8) for n in nodes}
    keep = torch.ones(xs.shape[0], dtype=torch.bool)
    # Decisions taken from one sampled point, so the sub-domain is not empty.
    anchor = int(rng.integers(xs.shape[0]))
    for _ in range(n_splits):
        node = nodes[int(rng.integers(len(nodes)))]
        layer = net.layers[node - 1]
        assert isinstance(layer, Activation)
        unit = int(rng.integers(layer.size))
        pre = values[layer.parent][:, unit]
        sign = 1 if float(pre[anchor]) >= 0 else -1
        splits[node][0, unit] = sign
        keep &= pre * sign >= 0
    C = torch.tensor(rng.normal(size=(4, 3)))
    d = torch.tensor(rng.normal(size=4))
    layer_bounds = intermediate_bounds(net, lo, hi, splits)
    plain = spec_bounds(net, lo, hi, C, d, layer_bounds, splits=splits).lower[0]
    tuned = spec_bounds(net, lo, hi, C, d, layer_bounds, alpha_steps=8, splits=splits).lower[0]
    assert (tuned >= plain - 1e-9).all()
    outputs = values[-1][keep] @ C.T - d
    assert keep.any()
    assert (outputs >= tuned).all()


def test_combined_rows_are_nonnegative_averages() -> None:
    C = torch.tensor([[1.0, -1.0, 0.0], [1.0, 0.0, -1.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    d = torch.tensor([0.5, -0.5, 1.0], dtype=torch.float64)
    C2, d2 = combined_rows(C, d)
    assert C2.shape == (3 + 3 + 1, 3) and torch.equal(C2[:3], C)
    assert torch.allclose(C2[-1], C.mean(0)) and torch.allclose(d2[-1], d.mean())
    single_C, single_d = combined_rows(C[:1], d[:1])
    assert torch.equal(single_C, C[:1]) and torch.equal(single_d, d[:1])


def _minimum_property(center: np.ndarray, eps: float, target: int, outputs: int) -> Property:
    """Unsafe: output `target` is the smallest (one disjunct, a conjunction of rows)."""
    rows = []
    for j in range(outputs):
        if j != target:
            row = np.zeros(outputs)
            row[target], row[j] = 1.0, -1.0
            rows.append(row)
    return Property(center.size, outputs, (Disjunct(center - eps, center + eps, np.array(rows), np.zeros(len(rows))),))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), eps=st.floats(0.05, 0.6))
def test_conjunctive_disjuncts_agree_with_sampling(seed: int, eps: float) -> None:
    model = mlp([3, 12, 12, 4], "relu", seed=seed)
    center = np.random.default_rng(seed).uniform(-1, 1, size=3)
    target = int(np.argmin(model.run_real(center)))
    target = (target + 1) % 4  # often not the minimum at the center: both verdicts occur
    prop = _minimum_property(center, eps, target, 4)
    verdict = verify_property(model, prop, timeout=10.0, seed=seed)
    if isinstance(verdict, Counterexample):
        assert prop.disjuncts[0].violated_by(verdict.x, model.run_real(verdict.x))
    elif isinstance(verdict, Verified):
        xs = np.random.default_rng(seed).uniform(center - eps, center + eps, size=(4000, 3))
        ys = linearize(model)(xs)
        assert (ys[:, target] > np.delete(ys, target, axis=1).min(1)).all()


def test_lookahead_and_plain_bisection_both_verify() -> None:
    model = mlp([2, 16, 16, 2], "relu", seed=4)
    net = linearize(model)
    center = np.array([0.2, -0.3])
    label = int(np.argmax(model.run_real(center)))
    row = np.zeros(2)
    row[label], row[1 - label] = 1.0, -1.0
    region = Region(torch.tensor(center - 0.2), torch.tensor(center + 0.2))
    C, d = torch.tensor(row[None, :]), torch.zeros(1, dtype=torch.float64)
    results = [input_split(net, region, C, d, time.monotonic() + 20, lambda x: True, strategies=(s,)) for s in STRATEGIES]
    assert {r.status for r in results} == {"verified"}, [r.status for r in results]
