"""The ambiguous generator's auxiliary ensemble: members trained on the user's data are accurate,
differ from each other, are reproducible per seed, and handle flat and channels-last inputs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from generators.inputs.ensemble import EnsembleSettings, image_layout, train_auxiliaries
from tests.generators.inputs.digits import SHAPE, digits


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny batches train several times slower on two threads when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


QUICK = EnsembleSettings(steps=300)


def test_members_are_accurate_different_and_reproducible() -> None:
    x, y, x_test, y_test = digits()
    members = train_auxiliaries(x, y, SHAPE, (0.0, 1.0), 10, 3, QUICK, seed=0)
    assert [m.description.split(": ")[1] for m in members] == ["mlp96", "cnn12", "mlp128"]
    probabilities = [m.probabilities(x_test) for m in members]
    for p in probabilities:
        assert p.shape == (len(x_test), 10)
        assert (p.argmax(axis=1) == y_test).mean() > 0.9
    assert not np.allclose(probabilities[0], probabilities[2], atol=1e-3)
    again = train_auxiliaries(x, y, SHAPE, (0.0, 1.0), 10, 3, QUICK, seed=0)
    for first, second in zip(members, again):
        np.testing.assert_array_equal(first.probabilities(x_test), second.probabilities(x_test))
    other = train_auxiliaries(x, y, SHAPE, (0.0, 1.0), 10, 1, QUICK, seed=1)
    assert not np.array_equal(other[0].probabilities(x_test), probabilities[0])


def test_training_leaves_the_global_torch_generator_alone() -> None:
    x, y, _, _ = digits()
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    train_auxiliaries(x[:200], y[:200], SHAPE, (0.0, 1.0), 10, 2, EnsembleSettings(steps=20), seed=0)
    np.testing.assert_array_equal(torch.rand(4).numpy(), expected.numpy())


def test_channels_last_and_other_bounds() -> None:
    """Inputs in [-1, 1], laid out H x W x C: the CNN member reads them as images and the
    forward takes raw inputs (scaling to [0, 1] is inside)."""
    x, y, x_test, y_test = digits()
    to_last = (0, 2, 3, 1)
    raw, raw_test = x.transpose(to_last) * 2 - 1, x_test.transpose(to_last) * 2 - 1
    members = train_auxiliaries(raw, y, (8, 8, 1), (-1.0, 1.0), 10, 2, QUICK, seed=0)
    assert members[1].description.endswith("cnn12")
    for member in members:
        assert (member.probabilities(raw_test).argmax(axis=1) == y_test).mean() > 0.9


@given(shape=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=4))
def test_image_layout_reads_only_image_shapes(shape: list[int]) -> None:
    layout = image_layout(shape)
    if layout is None:
        return
    channels, height, width, last = layout
    assert len(shape) in (2, 3)
    assert channels * height * width == int(np.prod(shape))
    assert channels in (1, 3, 4) and min(height, width) >= 4
    if len(shape) == 3:
        assert (shape[2] if last else shape[0]) == channels
