"""Small classifiers trained on scikit-learn's bundled digits (8x8, values in [0, 1]), shared by
the hard-input tests and benchmarks: an MLP and a CNN in torch and in Keras, each with dropout.
Every sample has shape (1, 8, 8). Training is seeded and takes a few seconds; results are cached
per process."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

SHAPE = (1, 8, 8)
CLASSES = 10


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): a fixed 80/20 split, x float32 [N, 1, 8, 8] in [0, 1]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32).reshape(-1, *SHAPE)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _train_torch(model: nn.Module, epochs: int, seed: int) -> nn.Module:
    x_train, y_train, _, _ = digits()
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    xs, ys = torch.from_numpy(x_train), torch.from_numpy(y_train)
    model.train()
    # One thread: these tiny batches train several times slower with two threads when other
    # processes share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            for batch in torch.randperm(len(xs), generator=generator).split(64):
                optimiser.zero_grad()
                loss: torch.Tensor = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@functools.cache
def torch_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, CLASSES)
    )
    return _train_torch(model, 40, seed)


@functools.cache
def torch_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(16 * 4 * 4, 32),
        nn.ReLU(),
        nn.Linear(32, CLASSES),
    )
    return _train_torch(model, 30, seed)


def _train_keras(model: Any, epochs: int) -> Any:
    x_train, y_train, _, _ = digits()
    model.compile(
        optimizer="adam",
        loss=__import__("keras").losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    return model


@functools.cache
def keras_mlp(seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )
    return _train_keras(model, 40)


@functools.cache
def keras_cnn(seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Reshape((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )
    return _train_keras(model, 30)
