"""The built-in supervisors on the digits models: their formulas, that each scores obviously hard
inputs (uniform noise, PGD examples made here) above nominal test data, MC dropout's seeding,
Mahalanobis against a brute-force computation, and naming / loading supervisors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.supervise import auc_roc
from generators.inputs.supervisors import (
    BUILTIN_NAMES,
    MCDropout,
    SupervisorUnavailable,
    build_supervisors,
    builtin_supervisors,
    check_scores,
    deepgini,
    fit_mahalanobis,
    import_object,
    max_softmax,
    softmax_entropy,
)
from tests.generators.inputs.digits import SHAPE, digits, keras_mlp, torch_mlp


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the duration: on the shared 2-core test machine, two
    threads competing with other jobs are about 5x slower (digits MLP training: 21 s against 4 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_thread_mlp() -> torch.nn.Module:
    """The cached digits MLP, trained on one thread."""
    with one_thread():
        return torch_mlp()


def local_pgd(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, eps: float = 0.1, steps: int = 20) -> np.ndarray:
    """A plain L-inf PGD, independent of generators.inputs.adversarial; returns only the
    examples the model gets wrong."""
    x0, labels = torch.from_numpy(x), torch.from_numpy(y)
    adv = x0.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(adapter.forward(adv), labels)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = torch.min(torch.max(adv.detach() + 2.5 * eps / steps * grad.sign(), x0 - eps), x0 + eps).clamp(0, 1)
    out = adv.numpy()
    return np.asarray(out[adapter.predict(out) != y])


@pytest.fixture(scope="module")
def mlp() -> ModelAdapter:
    return adapt(one_thread_mlp(), SHAPE)


@pytest.fixture(scope="module")
def hard(mlp: ModelAdapter) -> dict[str, np.ndarray]:
    _, _, x_test, y_test = digits()
    noise = np.random.default_rng(0).uniform(0, 1, (150, *SHAPE)).astype(np.float32)
    return {"nominal": x_test, "noise": noise, "pgd": local_pgd(mlp, x_test[:100], y_test[:100])}


def test_softmax_formulas(mlp: ModelAdapter) -> None:
    x = digits()[2][:20]
    p = torch.softmax(mlp.forward(torch.from_numpy(x)).double(), dim=1).detach().numpy()
    np.testing.assert_allclose(max_softmax(mlp, x), 1 - p.max(axis=1), atol=1e-9)
    np.testing.assert_allclose(softmax_entropy(mlp, x), -(p * np.log(p)).sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(deepgini(mlp, x), 1 - (p**2).sum(axis=1), atol=1e-9)
    # a one-hot distribution is the least suspicious possible: every score 0
    certain = np.eye(3)[[0]]
    assert float(-(certain * np.log(np.clip(certain, 1e-300, None))).sum()) == 0.0


@pytest.mark.parametrize("name", ["max_softmax", "entropy", "deepgini", "mc_dropout", "mc_dropout_entropy", "mahalanobis"])
def test_hard_inputs_score_higher_than_nominal(name: str, mlp: ModelAdapter, hard: dict[str, np.ndarray]) -> None:
    x_train, y_train, _, _ = digits()
    built, unavailable = build_supervisors([name], mlp, train=(x_train, y_train))
    assert not unavailable
    supervisor = built[name]
    nominal = check_scores(name, supervisor(mlp, hard["nominal"]), len(hard["nominal"]))
    assert len(hard["pgd"]) >= 30
    for kind in ("noise", "pgd"):
        scores = check_scores(name, supervisor(mlp, hard[kind]), len(hard[kind]))
        auc = auc_roc(nominal, scores)
        assert auc is not None and auc > 0.7, (name, kind, auc)


def test_mc_dropout_is_seeded_and_leaves_torch_rng_alone(mlp: ModelAdapter) -> None:
    x = digits()[2][:40]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = MCDropout(samples=8, seed=5)(mlp, x)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(first, MCDropout(samples=8, seed=5)(mlp, x))
    assert not np.array_equal(first, MCDropout(samples=8, seed=6)(mlp, x))
    entropy = MCDropout(samples=8, seed=5, score="entropy")(mlp, x)
    assert entropy.shape == (40,) and (entropy >= 0).all()
    # dropout stays off for ordinary calls afterwards
    assert not torch_mlp().training
    np.testing.assert_array_equal(mlp.logits(x), mlp.logits(x))


def test_mc_dropout_unavailable_without_dropout() -> None:
    torch.manual_seed(0)
    plain = adapt(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), SHAPE, description="no-dropout net")
    built, unavailable = build_supervisors(None, plain)
    assert set(unavailable) == {"mc_dropout", "mc_dropout_entropy", "mahalanobis"}
    assert "no dropout layer" in unavailable["mc_dropout"] and "--train" in unavailable["mahalanobis"]
    assert set(built) == {"max_softmax", "entropy", "deepgini"}
    with pytest.raises(SupervisorUnavailable, match="no dropout"):
        MCDropout()(plain, digits()[2][:3])
    with pytest.raises(GauntletError, match="at least 2"):
        MCDropout(samples=1)


def test_mahalanobis_matches_brute_force(mlp: ModelAdapter) -> None:
    x_train, y_train, x_test, _ = digits()
    fitted = fit_mahalanobis(mlp, x_train, y_train)
    net = torch_mlp()
    assert isinstance(net, torch.nn.Sequential)
    with torch.no_grad():  # the input of the last linear layer, computed without the adapter
        feats = net[:-1](torch.from_numpy(x_train)).double().numpy()
        probe = net[:-1](torch.from_numpy(x_test[:12])).double().numpy()
    means = {c: feats[y_train == c].mean(axis=0) for c in range(10)}
    cov = sum(np.outer(f - means[c], f - means[c]) for f, c in zip(feats, y_train)) / len(feats)
    inverse = np.linalg.pinv(cov)
    expected = [min(np.sqrt(max((f - m) @ inverse @ (f - m), 0.0)) for m in means.values()) for f in probe]
    np.testing.assert_allclose(fitted(mlp, x_test[:12]), expected, rtol=1e-6, atol=1e-6)


def test_keras_model_supervisors() -> None:
    adapter = adapt(keras_mlp(), SHAPE)
    x_train, y_train, x_test, _ = digits()
    built, unavailable = build_supervisors(["deepgini", "mc_dropout", "mahalanobis"], adapter, train=(x_train, y_train))
    assert not unavailable
    noise = np.random.default_rng(1).uniform(0, 1, (60, *SHAPE)).astype(np.float32)
    for name, supervisor in built.items():
        auc = auc_roc(supervisor(adapter, x_test[:120]), supervisor(adapter, noise))
        assert auc is not None and auc > 0.7, (name, auc)


def test_naming_and_loading_supervisors(tmp_path: Path, mlp: ModelAdapter) -> None:
    user = tmp_path / "my_supervisor.py"
    user.write_text("import numpy as np\n\ndef brightness(adapter, x):\n    return np.asarray(x).reshape(len(x), -1).mean(axis=1)\n"
                    "\nNOT_CALLABLE = 3\n")
    built, _ = build_supervisors(["max_softmax", f"{user}:brightness"], mlp)
    scores = built[f"{user}:brightness"](mlp, digits()[2][:4])
    assert scores.shape == (4,)

    def mine(adapter: ModelAdapter, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))

    assert list(build_supervisors([mine], mlp)[0]) == ["mine"]
    assert list(build_supervisors({"zero": mine}, mlp)[0]) == ["zero"]
    with pytest.raises(GauntletError, match="unknown supervisor 'softmax'"):
        build_supervisors(["softmax"], mlp)
    with pytest.raises(GauntletError, match="named twice"):
        build_supervisors(["deepgini", "deepgini"], mlp)
    with pytest.raises(GauntletError, match="no file"):
        import_object(f"{tmp_path}/missing.py:fn", "supervisor")
    with pytest.raises(GauntletError, match="has no function NOT_CALLABLE"):
        import_object(f"{user}:NOT_CALLABLE", "supervisor")
    with pytest.raises(GauntletError, match="cannot import module"):
        import_object("no_such_package_xyz.mod:fn", "supervisor")
    assert import_object("numpy:mean") is np.mean
    registry = builtin_supervisors()
    assert tuple(registry) == BUILTIN_NAMES
    with pytest.raises(TypeError):
        registry["evil"] = registry["deepgini"]  # type: ignore[index]
    assert "evil" not in builtin_supervisors()


def test_check_scores_rejects_bad_output() -> None:
    np.testing.assert_array_equal(check_scores("s", [[1.0], [2.0]], 2), [1.0, 2.0])
    assert check_scores("s", [np.inf, 0.0], 2)[0] == np.inf
    with pytest.raises(GauntletError, match=r"shape \(3,\) for 2 inputs"):
        check_scores("s", [1, 2, 3], 2)
    with pytest.raises(GauntletError, match="NaN for 1 of 2"):
        check_scores("s", [np.nan, 1.0], 2)
    with pytest.raises(GauntletError, match="not numbers"):
        check_scores("s", ["a", "b"], 2)
