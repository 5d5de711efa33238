"""Corruptions at declared severities on the digits models: what each family does to an image,
that severity hurts, that every parameter is recorded, and which shapes each family accepts."""

from __future__ import annotations

import numpy as np
import pytest

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.corrupt import FAMILIES, SEVERITIES, corrupt, severity_parameter
from tests.generators.inputs.digits import SHAPE, digits, torch_cnn, torch_mlp


@pytest.fixture(scope="module")
def cnn() -> ModelAdapter:
    return adapt(torch_cnn(), SHAPE)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    _, _, x_test, y_test = digits()
    return x_test[:120], y_test[:120]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_severity_keeps_every_input_and_hurts_more_when_higher(
    cnn: ModelAdapter, data: tuple[np.ndarray, np.ndarray], family: str
) -> None:
    x, y = data
    wrong = []
    for severity in SEVERITIES:
        result = corrupt(cnn, x, y, family=family, severity=severity, seed=1)
        assert result.category == "corrupted" and result.method == family
        assert result.x.shape == x.shape and result.x.dtype == np.float32
        assert ((result.x >= 0) & (result.x <= 1)).all()
        np.testing.assert_array_equal(result.source, np.arange(len(x)))
        assert result.labels is not None
        np.testing.assert_array_equal(result.labels, np.eye(10, dtype=np.float32)[y])
        np.testing.assert_allclose(result.predicted, cnn.probabilities(result.x), atol=1e-6)
        params = result.params
        assert params["family"] == family and params["severity"] == severity and params["seed"] == 1
        assert severity_parameter(family, severity, SHAPE, (0.0, 1.0)) in params.values()
        assert params["misclassified"] == int((result.predicted.argmax(axis=1) != y).sum())
        wrong.append(params["misclassified"])
    assert wrong[-1] > wrong[0]
    assert wrong[-1] >= 0.2 * len(x)


def test_parameters_grow_with_severity() -> None:
    for family in FAMILIES:
        values = [severity_parameter(family, s, SHAPE, (0.0, 1.0)) for s in SEVERITIES]
        ordered = sorted(values, reverse=family == "contrast")
        assert values == ordered and len(set(values)) == len(values), family
    assert severity_parameter("noise", 3, SHAPE, (-1.0, 1.0)) == pytest.approx(2 * 0.18)
    # blur widens with images larger than 32 pixels.
    assert severity_parameter("blur", 2, (3, 64, 64), (0.0, 1.0)) == pytest.approx(2 * 0.6)


def test_noise_has_the_declared_sigma(cnn: ModelAdapter) -> None:
    gray = np.full((200, *SHAPE), 0.5, dtype=np.float32)
    result = corrupt(cnn, gray, np.zeros(200, dtype=int), family="noise", severity=2, seed=0)
    assert np.std(result.x - gray) == pytest.approx(0.12, rel=0.03)
    again = corrupt(cnn, gray, np.zeros(200, dtype=int), family="noise", severity=2, seed=0)
    np.testing.assert_array_equal(result.x, again.x)


def test_contrast_moves_towards_the_image_mean(
    cnn: ModelAdapter, data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = data
    result = corrupt(cnn, x, y, family="contrast", severity=3)
    np.testing.assert_allclose(result.x.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(
        result.x.std(axis=(1, 2, 3)), 0.2 * x.std(axis=(1, 2, 3)), rtol=1e-4, atol=1e-6
    )


def test_blur_keeps_flat_images_and_spreads_a_point(cnn: ModelAdapter) -> None:
    flat = np.full((1, *SHAPE), 0.3, dtype=np.float32)
    np.testing.assert_allclose(corrupt(cnn, flat, [0], family="blur", severity=5).x, flat, atol=1e-6)
    point = np.zeros((1, *SHAPE), dtype=np.float32)
    point[0, 0, 4, 4] = 1.0
    blurred = corrupt(cnn, point, [0], family="blur", severity=3).x[0, 0]
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5)  # no mass lost away from the borders
    assert blurred[4, 4] == blurred.max() < 1.0
    assert blurred[3, 4] == pytest.approx(blurred[5, 4]) and blurred[4, 3] == pytest.approx(blurred[3, 4])
    assert blurred[4, 5] > blurred[4, 6] > 0


def test_occlusion_paints_one_seeded_square(cnn: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    x = x * 0.9  # no pixel now equals the fill value 0.5, so the patch is exactly where 0.5 is
    severity = 4
    side = int(severity_parameter("occlusion", severity, SHAPE, (0.0, 1.0)))
    result = corrupt(cnn, x, y, family="occlusion", severity=severity, seed=7)
    assert result.params["fill"] == 0.5
    corners = set()
    for before, after in zip(x[:, 0], result.x[:, 0]):
        rows, cols = np.nonzero(after == 0.5)
        assert len(rows) == side * side
        assert rows.max() - rows.min() == side - 1 and cols.max() - cols.min() == side - 1
        outside = after != 0.5
        np.testing.assert_array_equal(after[outside], before[outside])
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 5  # positions vary per image
    again = corrupt(cnn, x, y, family="occlusion", severity=severity, seed=7)
    np.testing.assert_array_equal(result.x, again.x)
    other = corrupt(cnn, x, y, family="occlusion", severity=severity, seed=8)
    assert not np.array_equal(result.x, other.x)


def test_shapes_other_than_channels_first() -> None:
    _, _, x, y = digits()
    x, y = x[:20], y[:20]
    plain = adapt(torch_mlp(), (8, 8))
    for family in FAMILIES:
        result = corrupt(plain, x[:, 0], y, family=family, severity=3)
        assert result.x.shape == (20, 8, 8)
    flat = adapt(torch_mlp(), (64,))
    for family in ("noise", "contrast"):
        assert corrupt(flat, x.reshape(20, 64), y, family=family, severity=2).x.shape == (20, 64)
    for family in ("blur", "occlusion"):
        with pytest.raises(GauntletError, match="image inputs"):
            corrupt(flat, x.reshape(20, 64), y, family=family, severity=2)


def test_bad_requests_raise(cnn: ModelAdapter, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(GauntletError, match="severity"):
        corrupt(cnn, x, y, family="noise", severity=0)
    with pytest.raises(GauntletError, match="severity"):
        corrupt(cnn, x, y, family="noise", severity=6)
    with pytest.raises(GauntletError, match="family"):
        corrupt(cnn, x, y, family="fog", severity=1)
    with pytest.raises(GauntletError, match="bounds"):
        corrupt(cnn, x + 2, y, family="noise", severity=1)
    with pytest.raises(GauntletError, match="labels"):
        corrupt(cnn, x, y[:3], family="noise", severity=1)
