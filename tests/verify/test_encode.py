"""The exact z3 encoding of residual sub-problems: agreement with brute force on tiny networks
(ReLU, leaky ReLU, skip connections, loose and cutting bounds), exactness over float64
rationals, an ACAS Xu network, build time, timeouts and what cannot be encoded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.bounds import intermediate_bounds, spec_bounds
from verify.encode import Residual, encode, solve_residual
from verify.network import Activation, Affine, Network

ACAS = Path("/work/shared/benchmarks/vnncomp/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx")


def _net(
    rng: np.random.Generator,
    sizes: list[int],
    kind: str = "relu",
    slope: float = 0.0,
    float32: bool = True,
    skip: bool = False,
) -> Network:
    """An MLP with normal weights (float32 values by default, like real models: z3's exact
    arithmetic is much faster on 24-bit mantissas). `skip` adds the input to the last layer."""
    layers: list[Affine | Activation] = []
    prev = 0
    for i in range(len(sizes) - 1):
        w = rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i])
        b = rng.normal(size=sizes[i + 1]) * 0.3
        if float32:
            w, b = w.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
        last = i == len(sizes) - 2
        if last and skip:
            w0 = rng.normal(size=(sizes[-1], sizes[0])).astype(np.float32).astype(np.float64)
            layers.append(Affine((0, prev), (torch.tensor(w0), torch.tensor(w)), torch.tensor(b)))
        else:
            layers.append(Affine((prev,), (torch.tensor(w),), torch.tensor(b)))
        if not last:
            layers.append(Activation(len(layers), kind, slope, sizes[i + 1]))
        prev = len(layers)
    return Network((sizes[0],), (sizes[-1],), tuple(layers))


def _bounds(
    net: Network, lo: np.ndarray, hi: np.ndarray
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Pre-activation bounds from verify.bounds (CROWN), keyed by each activation's parent."""
    lb = intermediate_bounds(net, torch.tensor(lo)[None], torch.tensor(hi)[None])
    parents = [net.layers[n - 1].parent for n in net.activation_nodes()]  # type: ignore[union-attr]
    return {p: lb.lower[p][0].numpy() for p in parents}, {p: lb.upper[p][0].numpy() for p in parents}


def _grid(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    axes = np.meshgrid(*(np.linspace(a, b, n) for a, b in zip(lo, hi)))
    return np.stack(axes, -1).reshape(-1, len(lo))


def _check(
    net: Network,
    r: Residual,
    lo: np.ndarray,
    hi: np.ndarray,
    C: np.ndarray,
    d: np.ndarray,
    points: np.ndarray,
) -> None:
    """sat: the witness is in the box and satisfies the spec; unsat: no sampled point does
    (both up to 1e-9: the float64 forward pass rounds, z3 is exact)."""
    if r.status == "sat":
        assert r.x is not None and r.x.dtype == np.float64
        assert (lo <= r.x).all() and (r.x <= hi).all()
        assert (net(r.x[None]) @ C.T <= d + 1e-9).all()
    elif r.status == "unsat":
        assert not ((net(points) @ C.T) <= d - 1e-9).all(1).any()
    else:
        pytest.fail(f"unexpected unknown: {r.reason}")


def _case(
    seed: int, sizes: list[int], width: float, quantile: float, offset: float, rows: int
) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray, float, float]:
    rng = np.random.default_rng(seed)
    center = rng.normal(size=sizes[0])
    lo, hi = center - width, center + width
    C = rng.normal(size=(rows, sizes[-1]))
    return rng, lo, hi, C, quantile, offset


def _spec_near_boundary(
    net: Network, points: np.ndarray, C: np.ndarray, quantile: float, offset: float
) -> np.ndarray:
    """d at a low quantile of the sampled C @ y (so the answer is close either way)."""
    values = net(points) @ C.T
    return np.asarray(np.quantile(values, quantile, axis=0) + offset * values.std(axis=0), dtype=np.float64)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    width=st.floats(0.01, 2.0),
    quantile=st.floats(0.0, 0.1),
    offset=st.floats(-0.2, 0.2),
    rows=st.integers(1, 2),
    bounds=st.sampled_from(["crown", "loose", "none"]),
)
def test_agrees_with_brute_force_on_tiny_relu_nets(
    seed: int, width: float, quantile: float, offset: float, rows: int, bounds: str
) -> None:
    rng, lo, hi, C, q, off = _case(seed, [2, 4, 4, 3], width, quantile, offset, rows)
    net = _net(rng, [2, 4, 4, 3])
    points = _grid(lo, hi, 101)
    d = _spec_near_boundary(net, points, C, q, off)
    pl, pu = _bounds(net, lo, hi) if bounds != "none" else ({}, {})
    if bounds == "loose":  # sound bounds may be looser than the truth
        pl = {k: v - rng.uniform(0, 1, v.shape) for k, v in pl.items()}
        pu = {k: v + rng.uniform(0, 1, v.shape) for k, v in pu.items()}
    r = solve_residual(net, lo, hi, C, d, pl, pu, timeout_s=20, seed=seed)
    _check(net, r, lo, hi, C, d, points)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), slope=st.sampled_from([0.01, 0.2, 0.5, 0.99]), offset=st.floats(-0.2, 0.2)
)
def test_leaky_relu_with_bounds_agrees_with_brute_force(seed: int, slope: float, offset: float) -> None:
    rng, lo, hi, C, q, off = _case(seed, [2, 4, 4, 2], 0.8, 0.02, offset, 1)
    net = _net(rng, [2, 4, 4, 2], "leaky_relu", slope)
    points = _grid(lo, hi, 101)
    d = _spec_near_boundary(net, points, C, q, off)
    r = solve_residual(net, lo, hi, C, d, *_bounds(net, lo, hi), timeout_s=20, seed=seed)
    _check(net, r, lo, hi, C, d, points)


@pytest.mark.parametrize("slope", [-0.5, 1.5, 3.0])
def test_leaky_relu_any_slope_without_bounds(slope: float) -> None:
    # Negative and > 1 slopes (non-monotone, concave): encoded exactly; verify.bounds assumes
    # 0 <= slope <= 1, so no pre-activation bounds here.
    seen = set()
    for seed in range(6):
        rng, lo, hi, C, q, off = _case(seed, [2, 3, 3, 2], 1.0, 0.02, 0.1 if seed % 2 else -0.3, 1)
        net = _net(rng, [2, 3, 3, 2], "leaky_relu", slope)
        points = _grid(lo, hi, 101)
        d = _spec_near_boundary(net, points, C, q, off)
        r = solve_residual(net, lo, hi, C, d, {}, {}, timeout_s=20, seed=seed)
        _check(net, r, lo, hi, C, d, points)
        seen.add(r.status)
    assert seen == {"sat", "unsat"}


def test_both_answers_occur_and_full_float64_weights() -> None:
    # Full 53-bit mantissas (not float32 values), a skip connection, both answers.
    seen = []
    for seed in range(8):
        rng, lo, hi, C, q, off = _case(seed, [2, 4, 4, 3], 0.5, 0.02, 0.15 * (1 if seed % 2 else -1), 1)
        net = _net(rng, [2, 4, 4, 3], float32=False, skip=seed % 4 < 2)
        points = _grid(lo, hi, 101)
        d = _spec_near_boundary(net, points, C, q, off)
        r = solve_residual(net, lo, hi, C, d, *_bounds(net, lo, hi), timeout_s=20, seed=seed)
        _check(net, r, lo, hi, C, d, points)
        seen.append(r.status)
    assert {"sat", "unsat"} <= set(seen)


def test_many_inputs_materialize_layers() -> None:
    # 12 inputs > 6 neurons: the encoder gives each neuron a variable instead of composing rows.
    seen = set()
    for seed in range(6):
        rng, lo, hi, C, q, off = _case(seed, [12, 6, 6, 2], 0.1, 0.01, 0.0, 1)
        net = _net(rng, [12, 6, 6, 2], "leaky_relu" if seed % 3 == 0 else "relu", 0.1)
        points = rng.uniform(lo, hi, (20000, 12))
        pl, pu = _bounds(net, lo, hi)
        if seed % 2:  # below a sound lower bound of C @ y: certainly unsat
            box = torch.tensor(lo)[None], torch.tensor(hi)[None]
            layer_bounds = intermediate_bounds(net, *box)
            zero = torch.zeros(1, dtype=torch.float64)
            d = spec_bounds(net, *box, torch.tensor(C), zero, layer_bounds).lower[0].numpy() - 0.01
        else:
            d = _spec_near_boundary(net, points, C, q, off)
        text = encode(net, lo, hi, C, d, pl, pu).script()
        kept = 6 if seed % 3 == 0 else int((pu[1] > 0).sum())
        assert text.count("(declare-const p2_") == kept  # one variable per neuron that is not 0
        r = solve_residual(net, lo, hi, C, d, pl, pu, timeout_s=20, seed=seed)
        _check(net, r, lo, hi, C, d, points)
        seen.add(r.status)
    assert seen == {"sat", "unsat"}


def test_bounds_that_cut_the_box_restrict_the_question_exactly() -> None:
    # Bounds narrower than the truth (as branch-and-bound splits make them) cut the region:
    # the answer is exact for box & bounds, and a witness satisfies every bound, including
    # those of neurons the cut made look stable (checked lazily, hence rounds > 0 here).
    rounds = 0
    seen = set()
    for seed in range(10):
        rng, lo, hi, C, q, off = _case(seed, [2, 4, 4, 2], 1.0, 0.02, 0.1 if seed % 2 else -0.3, 1)
        net = _net(rng, [2, 4, 4, 2])
        pl, pu = _bounds(net, lo, hi)
        unstable = np.nonzero((pl[1] < 0) & (pu[1] > 0))[0]
        if unstable.size == 0:
            continue
        j = int(unstable[0])
        pu[1] = pu[1].copy()
        pu[1][j] = 0.0  # split: neuron j of the first layer inactive
        points = _grid(lo, hi, 151)
        pre = net.forward_all(torch.tensor(points))[1].numpy()
        region = points[pre[:, j] <= 0]
        if len(region) < 10:
            continue
        d = _spec_near_boundary(net, region, C, q, off)
        r = solve_residual(net, lo, hi, C, d, pl, pu, timeout_s=20, seed=seed)
        _check(net, r, lo, hi, C, d, region)
        if r.status == "sat":
            assert r.x is not None
            assert net.forward_all(torch.tensor(r.x[None]))[1][0, j] <= 1e-9
        rounds += r.rounds
        seen.add(r.status)
    assert seen == {"sat", "unsat"}
    assert rounds > 0


def test_weights_are_exact_float64_rationals() -> None:
    # float(0.1) * 3 is 0.3000000000000000166... over the reals: above float(0.3), and below
    # 0.1 * 3 rounded in float64 (0.30000000000000004). A decimal reading of 0.1 would say sat.
    layers = (
        Affine((0,), (torch.tensor([[0.1]], dtype=torch.float64),), torch.zeros(1, dtype=torch.float64)),
        Activation(1, "relu", 0.0, 1),
        Affine((2,), (torch.tensor([[1.0]], dtype=torch.float64),), torch.zeros(1, dtype=torch.float64)),
    )
    net = Network((1,), (1,), layers)
    box = np.array([3.0])
    C = np.array([[1.0]])
    assert solve_residual(net, box, box, C, np.array([0.3]), {}, {}, timeout_s=10).status == "unsat"
    r = solve_residual(net, box, box, C, np.array([0.1 * 3]), {}, {}, timeout_s=10)
    assert r.status == "sat" and r.x is not None and r.x[0] == 3.0
    # Same with sound bounds making the ReLU stable (its row then lives only in the spec).
    bounds = ({1: np.array([0.29])}, {1: np.array([0.31])})
    assert solve_residual(net, box, box, C, np.array([0.3]), *bounds, timeout_s=10).status == "unsat"


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_smooth_activations_are_unknown(kind: str) -> None:
    rng = np.random.default_rng(0)
    net = _net(rng, [2, 3, 1], kind)
    r = solve_residual(net, np.zeros(2), np.ones(2), np.ones((1, 1)), np.zeros(1), {}, {}, timeout_s=5)
    assert r.status == "unknown" and r.reason == f"{kind}: not encodable exactly"


def test_non_finite_weight_is_unknown_and_bad_shapes_raise() -> None:
    rng = np.random.default_rng(0)
    net = _net(rng, [2, 3, 1])
    w = net.layers[0].weights[0].clone()  # type: ignore[union-attr]
    w[0, 0] = float("nan")
    broken = Network((2,), (1,), (Affine((0,), (w,), net.layers[0].bias), *net.layers[1:]))  # type: ignore[union-attr]
    r = solve_residual(broken, np.zeros(2), np.ones(2), np.ones((1, 1)), np.zeros(1), {}, {}, timeout_s=5)
    assert r.status == "unknown" and "not finite" in r.reason
    with pytest.raises(ValueError, match="box"):
        solve_residual(net, np.zeros(3), np.ones(3), np.ones((1, 1)), np.zeros(1), {}, {}, timeout_s=5)
    with pytest.raises(ValueError, match="C has shape"):
        solve_residual(net, np.zeros(2), np.ones(2), np.ones((1, 2)), np.zeros(1), {}, {}, timeout_s=5)


def test_unbounded_box_side_and_determinism() -> None:
    rng = np.random.default_rng(3)
    net = _net(rng, [2, 4, 2])
    lo, hi = np.array([-np.inf, -1.0]), np.array([0.0, 1.0])
    C, d = np.array([[1.0, -1.0]]), np.array([-2.0])
    first = solve_residual(net, lo, hi, C, d, {}, {}, timeout_s=10, seed=7)
    second = solve_residual(net, lo, hi, C, d, {}, {}, timeout_s=10, seed=7)
    assert first.status == second.status
    if first.status == "sat":
        assert first.x is not None and second.x is not None
        assert np.array_equal(first.x, second.x)
        _check(net, first, lo, hi, C, d, first.x[None])


def _acas_sized(seed: int) -> Network:
    return _net(np.random.default_rng(seed), [5, 50, 50, 50, 50, 50, 50, 5])


def test_acas_sized_network_builds_fast_and_answers() -> None:
    # 5 inputs, 6 x 50 ReLUs, a small box with CROWN bounds: build (encoding + z3 parsing) is
    # far under a second; both answers agree with sampling.
    net = _acas_sized(0)
    rng = np.random.default_rng(1)
    center = rng.uniform(-0.5, 0.5, 5)
    lo, hi = center - 0.01, center + 0.01
    pl, pu = _bounds(net, lo, hi)
    points = rng.uniform(lo, hi, (5000, 5))
    C = np.array([[1.0, -1.0, 0.0, 0.0, 0.0]])
    values = (net(points) @ C.T)[:, 0]
    for d, expected in (
        (values.min() + 0.1 * values.std(), "sat"),
        (values.min() - 0.5 * values.std(), None),
    ):
        r = solve_residual(net, lo, hi, C, np.array([d]), pl, pu, timeout_s=30)
        assert r.build_seconds < 1.0
        if expected:
            assert r.status == expected
        _check(net, r, lo, hi, C, np.array([d]), points)


def test_hard_instance_respects_the_timeout() -> None:
    # ACAS-sized, a wide box, no bounds (300 unstable ReLUs), d just below the sampled minimum.
    net = _acas_sized(2)
    lo, hi = -np.ones(5), np.ones(5)
    points = np.random.default_rng(0).uniform(lo, hi, (20000, 5))
    C = np.array([[1.0, -1.0, 0.0, 0.0, 0.0]])
    d = np.array([(net(points) @ C.T).min() - 1e-3])
    start = time.perf_counter()
    r = solve_residual(net, lo, hi, C, d, {}, {}, timeout_s=1.0)
    elapsed = time.perf_counter() - start
    assert r.status == "unknown" and "timeout" in r.reason
    assert elapsed < 2.0
    zero = solve_residual(net, lo, hi, C, d, {}, {}, timeout_s=0.0)
    assert zero.status == "unknown" and "timeout" in zero.reason


def test_acas_xu_network_on_a_tiny_box() -> None:
    try:
        from generators.load.onnx import load_onnx
    except ImportError:
        pytest.skip("verify/onnx_load.py is not there yet")
    if not ACAS.is_file():
        pytest.skip("VNN-COMP ACAS Xu benchmarks not present")
    from verify.network import linearize

    model = load_onnx(ACAS)
    net = linearize(model)
    rng = np.random.default_rng(0)
    center = np.array([0.64, 0.0, 0.0, 0.475, -0.475])  # inside ACAS Xu property 1's box
    lo, hi = center - 0.004, center + 0.004
    pl, pu = _bounds(net, lo, hi)
    points = rng.uniform(lo, hi, (5000, 5))
    C = np.array([[1.0, -1.0, 0.0, 0.0, 0.0]])
    values = (net(points) @ C.T)[:, 0]
    for d in (values.min() + 0.05 * values.std(), values.min() - 0.5 * values.std()):
        r = solve_residual(net, lo, hi, C, np.array([d]), pl, pu, timeout_s=30)
        assert r.build_seconds < 1.0
        _check(net, r, lo, hi, C, np.array([d]), points)
        if r.status == "sat":
            assert r.x is not None
            real = np.asarray(model.run_real(r.x.reshape(model.input_type.shape))).reshape(-1)
            assert (C @ real <= d + 1e-4).all()  # the real model runs in float32
