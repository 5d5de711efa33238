"""The model adapter on real torch, Keras and ONNX models: accuracy self-check, gradients against
finite differences, output selection, probabilities, features, MC dropout, and the errors that
catch a model, its bounds or its preprocessing not fitting the data."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from generators.inputs.adapter import AdapterError, ModelAdapter, adapt
from tests.generators.inputs.digits import CLASSES, SHAPE, digits, keras_cnn, keras_mlp, torch_cnn, torch_mlp

MODELS = {"torch_mlp": torch_mlp, "torch_cnn": torch_cnn, "keras_mlp": keras_mlp, "keras_cnn": keras_cnn}


@pytest.fixture(scope="module")
def test_data() -> tuple[np.ndarray, np.ndarray]:
    _, _, x, y = digits()
    return x, y


@pytest.mark.parametrize("name", list(MODELS))
def test_every_digits_model_passes_its_accuracy_check(
    name: str, test_data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = test_data
    adapter = adapt(MODELS[name](), SHAPE)
    assert adapter.num_classes == CLASSES and adapter.input_shape == SHAPE and adapter.bounds == (0.0, 1.0)
    assert adapter.check(x, y) >= 0.95
    logits = adapter.logits(x[:5])
    assert logits.shape == (5, CLASSES)
    np.testing.assert_allclose(adapter.probabilities(x[:5]).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(adapter.predict(x[:5]), logits.argmax(axis=1))
    # one unbatched sample is a batch of one.
    np.testing.assert_allclose(adapter.logits(x[0]), logits[:1], atol=1e-5)


@pytest.mark.parametrize("name", ["torch_mlp", "torch_cnn", "keras_mlp", "keras_cnn"])
def test_gradient_matches_finite_differences(name: str, test_data: tuple[np.ndarray, np.ndarray]) -> None:
    adapter = adapt(MODELS[name](), SHAPE)
    x = torch.from_numpy(test_data[0][:2]).clone().requires_grad_(True)
    target = int(test_data[1][0])
    adapter.forward(x)[0, target].backward()
    assert x.grad is not None
    grad = x.grad.numpy()
    assert np.abs(grad[0]).max() > 1e-3
    assert np.abs(grad[1]).max() == 0  # sample 1 does not feed sample 0's logit
    step = 1e-3
    for index in ((0, 0, 3, 4), (0, 0, 5, 2), (0, 0, 2, 6)):
        up, down = test_data[0][:1].copy(), test_data[0][:1].copy()
        up[index], down[index] = up[index] + step, down[index] - step
        slope = (adapter.logits(up)[0, target] - adapter.logits(down)[0, target]) / (2 * step)
        assert slope == pytest.approx(float(grad[index]), rel=2e-2, abs=2e-2)


def test_onnx_export_matches_torch(tmp_path: Path, test_data: tuple[np.ndarray, np.ndarray]) -> None:
    model = torch_mlp()
    path = tmp_path / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
        torch.onnx.export(model, (torch.zeros(1, *SHAPE),), str(path), dynamo=False)
    assert model.training is False
    onnx = adapt(path, SHAPE)
    assert onnx.description == "ONNX model mlp.onnx"
    x, y = test_data
    np.testing.assert_allclose(onnx.logits(x[:20]), adapt(model, SHAPE).logits(x[:20]), atol=1e-4)
    assert onnx.check(x[:60], y[:60]) >= 0.95
    xt = torch.from_numpy(x[:3]).clone().requires_grad_(True)
    onnx.forward(xt).sum().backward()
    assert xt.grad is not None and xt.grad.abs().max() > 0
    assert onnx.features is None and onnx.dropout_forward is None


class TwoHeads(torch.nn.Module):
    def __init__(self, as_dict: bool, key: str = "logits") -> None:
        super().__init__()
        self.net = torch_mlp()
        self.as_dict = as_dict
        self.key = key

    def forward(self, x: torch.Tensor) -> Any:
        logits = self.net(x)
        if self.as_dict:
            return {"aux": -logits, self.key: logits}
        return logits, -logits


def test_tuple_and_dict_outputs(test_data: tuple[np.ndarray, np.ndarray]) -> None:
    x = test_data[0][:8]
    reference = adapt(torch_mlp(), SHAPE).logits(x)
    np.testing.assert_allclose(adapt(TwoHeads(False), SHAPE).logits(x), reference, atol=1e-6)
    np.testing.assert_allclose(adapt(TwoHeads(False), SHAPE, output=1).logits(x), -reference, atol=1e-6)
    np.testing.assert_allclose(adapt(TwoHeads(True), SHAPE).logits(x), reference, atol=1e-6)
    np.testing.assert_allclose(
        adapt(TwoHeads(True, "scores"), SHAPE, output="scores").logits(x), reference, atol=1e-6
    )
    np.testing.assert_allclose(
        adapt(TwoHeads(True), SHAPE, output=lambda out: out["aux"]).logits(x), -reference, atol=1e-6
    )
    with pytest.raises(AdapterError, match="output=..."):
        adapt(TwoHeads(True, "scores"), SHAPE)
    with pytest.raises(AdapterError, match="cannot select output"):
        adapt(TwoHeads(False), SHAPE, output=5)


def test_probability_outputs_become_log_probabilities(test_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = test_data
    softmax = torch.nn.Sequential(torch_mlp(), torch.nn.Softmax(dim=1))
    adapter = adapt(softmax, SHAPE, probabilities=True)
    logits = adapter.logits(x[:10])
    with torch.no_grad():
        expected = softmax(torch.from_numpy(x[:10])).double().numpy()
    np.testing.assert_allclose(logits, np.log(expected), atol=1e-5)
    np.testing.assert_allclose(adapter.probabilities(x[:10]), expected, atol=1e-6)
    assert adapter.check(x, y) >= 0.95


def test_features_are_the_input_of_the_last_linear_layer(test_data: tuple[np.ndarray, np.ndarray]) -> None:
    x = test_data[0][:6]
    for factory in (torch_mlp, torch_cnn, keras_mlp, keras_cnn):
        adapter = adapt(factory(), SHAPE)
        assert adapter.feature_values(x).shape == (6, 32)
    model = torch_mlp()
    chosen = adapt(model, SHAPE, feature_layer="4")
    assert chosen.feature_values(x).shape == (6, 64)
    with torch.no_grad():
        hidden = model[4](torch.from_numpy(chosen.feature_values(x)).float()).relu()
        expected = model[6](hidden)
    np.testing.assert_allclose(adapt(model, SHAPE).logits(x), expected.numpy(), atol=1e-5)
    with pytest.raises(AdapterError, match="no module named"):
        adapt(model, SHAPE, feature_layer="head")
    with pytest.raises(AdapterError, match="no layer named"):
        adapt(keras_mlp(), SHAPE, feature_layer="head")


@pytest.mark.parametrize("training", [True, False])
def test_dropout_forward_is_stochastic_and_modes_are_restored(
    training: bool, test_data: tuple[np.ndarray, np.ndarray]
) -> None:
    model = torch_mlp()
    model.train(training)
    try:
        adapter = adapt(model, SHAPE)
        x = torch.from_numpy(test_data[0][:16])
        assert adapter.dropout_forward is not None
        with torch.no_grad():
            assert torch.equal(adapter.forward(x), adapter.forward(x))
            assert not torch.equal(adapter.dropout_forward(x), adapter.dropout_forward(x))
        assert all(m.training is training for m in model.modules())
    finally:
        model.eval()


def test_keras_dropout_forward_is_stochastic(test_data: tuple[np.ndarray, np.ndarray]) -> None:
    adapter = adapt(keras_mlp(), SHAPE)
    x = torch.from_numpy(test_data[0][:16])
    assert adapter.dropout_forward is not None
    assert torch.equal(adapter.forward(x), adapter.forward(x))
    assert not torch.equal(adapter.dropout_forward(x), adapter.dropout_forward(x))


def test_models_without_dropout_have_no_dropout_forward() -> None:
    adapter = adapt(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), SHAPE)
    assert adapter.dropout_forward is None and adapter.num_classes == 3


def test_mistakes_raise_adapter_errors(test_data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = test_data
    adapter: ModelAdapter = adapt(torch_mlp(), SHAPE)
    with pytest.raises(AdapterError, match="declared input bounds"):
        adapter.check(x * 16, y)
    with pytest.raises(AdapterError, match="model takes"):
        adapter.logits(x.reshape(len(x), 64))
    with pytest.raises(AdapterError, match="fails on a batch"):
        adapt(torch_mlp(), (3, 8, 8))
    with pytest.raises(AdapterError, match="a classifier must return"):
        adapt(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1)), SHAPE)
    with pytest.raises(AdapterError, match="a classifier must return"):
        adapt(torch.nn.Flatten(0), SHAPE)
    with pytest.raises(AdapterError, match="cannot adapt a builtins.object"):
        adapt(object(), SHAPE)
    with pytest.raises(AdapterError, match="only ONNX files"):
        adapt(tmp_path / "model.txt", SHAPE)
    with pytest.raises(AdapterError, match="empty"):
        adapt(torch_mlp(), SHAPE, bounds=(1.0, 0.0))
    with pytest.raises(AdapterError, match="labels"):
        adapter.check(x, y[:-1])
    with pytest.raises(AdapterError, match="labels span"):
        adapter.check(x, y + 5)
    inverted = adapt(torch_mlp(), SHAPE, preprocess=lambda t: 1 - t, description="inverted")
    with pytest.raises(AdapterError, match="inverted: clean accuracy .* check the preprocessing"):
        inverted.check(x, y)
    wide = adapt(torch_mlp(), SHAPE, bounds=(0.0, 255.0), preprocess=lambda t: t / 255)
    with pytest.raises(AdapterError, match="scaled to \\[0, 1\\]"):
        wide.check(x, y)
    assert wide.check(x * 255, y) >= 0.95
