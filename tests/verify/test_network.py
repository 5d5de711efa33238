"""Linearization: the Network computes exactly what the loaded model computes, for every
supported layer kind, and unsupported operators are named in a ModelError."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.load.model import ModelError
from generators.load.torch import load_torch
from verify.network import Activation, linearize


def agree(module: torch.nn.Module, shape: tuple[int, ...], seed: int = 0) -> int:
    x = np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)
    model = load_torch(module, x)
    net = linearize(model)
    xs = np.random.default_rng(seed + 1).uniform(-1, 1, size=(16, int(np.prod(shape))))
    real = np.stack([model.run_real(row.reshape(shape)) for row in xs]).reshape(16, -1)
    mine = net(xs)
    assert np.allclose(mine, real, rtol=1e-5, atol=1e-5), np.abs(mine - real).max()
    return len(net.layers)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), pool=st.sampled_from([(2, 2, 0), (3, 1, 1), (3, 2, 1)]))
def test_cnn_with_max_pooling_and_clamps_is_exact(seed: int, pool: tuple[int, int, int]) -> None:
    torch.manual_seed(seed)
    kernel, stride, padding = pool
    module = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(kernel, stride, padding),
        torch.nn.Conv2d(3, 2, 3), torch.nn.Hardtanh(), torch.nn.Flatten(), torch.nn.LazyLinear(6), torch.nn.ReLU6(),
        torch.nn.Linear(6, 3),
    )
    module(torch.zeros(1, 1, 8, 8))  # materializes the lazy layer
    agree(module, (1, 1, 8, 8), seed)


def test_residual_and_batch_norm_fold_into_affine_layers() -> None:
    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(6, 6)
            self.bn = torch.nn.BatchNorm1d(6)
            self.b = torch.nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.bn(self.a(x)))
            return self.b(h + x)

    torch.manual_seed(0)
    block = Block()
    block.bn.running_mean.uniform_(-1, 1)
    block.bn.running_var.uniform_(0.5, 2)
    layers = agree(block.eval(), (1, 6))
    assert layers == 3  # affine, relu, affine: the batch norm and the skip fold away


def test_softmax_output_is_dropped_and_recorded() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3), torch.nn.Softmax(dim=1))
    model = load_torch(module, np.zeros((1, 4), np.float32))
    net = linearize(model)
    assert net.squash == "softmax"
    assert [type(layer) for layer in net.layers].count(Activation) == 1


def test_unsupported_operator_is_named() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ELU(), torch.nn.Linear(3, 2))
    with pytest.raises(ModelError, match="elu"):
        linearize(load_torch(module, np.zeros((1, 3), np.float32)))


def test_product_of_two_input_dependent_values_is_refused() -> None:
    class Square(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * x

    with pytest.raises(ModelError, match="multiplies two input-dependent values"):
        linearize(load_torch(Square(), np.zeros((1, 3), np.float32)))
