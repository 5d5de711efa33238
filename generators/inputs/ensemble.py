"""Small auxiliary classifiers the ambiguous-input generator trains on the user's own data, so
that an input is kept only when several independently trained models agree it is ambiguous.
Torch only; knows nothing of the model under test or of any judge."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Auxiliary", "EnsembleSettings", "image_layout", "train_auxiliaries"]

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EnsembleSettings:
    """How the auxiliary classifiers are trained. Each sees all of the user's samples for about
    `steps` Adam updates (at least `min_epochs` passes); architectures alternate between an MLP
    and, where inputs are images, a small CNN, with widths varied per member so that no two are
    alike."""

    steps: int = 900
    min_epochs: int = 10
    batch: int = 64
    learning_rate: float = 3e-3
    dropout: float = 0.2
    weight_decay: float = 1e-4

    def as_params(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "min_epochs": self.min_epochs,
            "batch": self.batch,
            "learning_rate": self.learning_rate,
            "dropout": self.dropout,
            "weight_decay": self.weight_decay,
        }


@dataclass(frozen=True)
class Auxiliary:
    """One trained auxiliary classifier: `forward` maps raw inputs (inside the bounds) to logits."""

    forward: Forward
    description: str
    train_accuracy: float
    seconds: float

    def probabilities(self, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        parts = []
        with torch.no_grad():
            for start in range(0, len(x), batch):
                chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch], dtype=np.float32))
                parts.append(torch.softmax(self.forward(chunk), dim=1).double().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, 0))


def image_layout(shape: Sequence[int]) -> tuple[int, int, int, bool] | None:
    """(channels, height, width, channels_last) when `shape` reads as an image big enough for a
    3x3 stride-2 convolution, else None. Channels first is assumed unless only the last axis
    looks like a channel axis (1, 3 or 4)."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 2:
        dims = (1, *dims)
    if len(dims) != 3:
        return None
    if dims[0] in (1, 3, 4):
        channels, height, width, last = dims[0], dims[1], dims[2], False
    elif dims[2] in (1, 3, 4):
        channels, height, width, last = dims[2], dims[0], dims[1], True
    else:
        return None
    return (channels, height, width, last) if min(height, width) >= 4 else None


class _Dropout(nn.Module):
    """Dropout drawing its masks from an explicit generator (the global one stays untouched)."""

    def __init__(self, rate: float, generator: torch.Generator) -> None:
        super().__init__()
        self.rate, self.generator = rate, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate <= 0:
            return x
        keep = (torch.rand(x.shape, generator=self.generator) >= self.rate).to(x.dtype)
        return x * keep / (1.0 - self.rate)


class _Image(nn.Module):
    """Flat unit-scaled inputs back to [N, C, H, W]."""

    def __init__(self, channels: int, height: int, width: int, last: bool) -> None:
        super().__init__()
        self.shape, self.last = (channels, height, width), last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        if self.last:
            return x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        return x.reshape(-1, c, h, w)


def _mlp(size: int, classes: int, width: int, dropout: float, generator: torch.Generator) -> nn.Module:
    return nn.Sequential(
        nn.Linear(size, width),
        nn.ReLU(),
        _Dropout(dropout, generator),
        nn.Linear(width, width // 2),
        nn.ReLU(),
        nn.Linear(width // 2, classes),
    )


def _cnn(
    layout: tuple[int, int, int, bool], classes: int, width: int, dropout: float, generator: torch.Generator
) -> nn.Module:
    channels, height, width_px, last = layout
    flat = 2 * width * ((height + 1) // 2) * ((width_px + 1) // 2)
    return nn.Sequential(
        _Image(channels, height, width_px, last),
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        _Dropout(dropout, generator),
        nn.Linear(flat, 48),
        nn.ReLU(),
        nn.Linear(48, classes),
    )


def _member(
    index: int, shape: Sequence[int], classes: int, dropout: float, generator: torch.Generator
) -> tuple[nn.Module, str]:
    """Member `index`: even ones MLPs, odd ones CNNs where the inputs are images; widths cycle
    so that members differ in architecture as well as in initialisation."""
    layout = image_layout(shape)
    size = int(np.prod(shape))
    if index % 2 == 1 and layout is not None:
        width = (12, 8, 16)[(index // 2) % 3]
        return _cnn(layout, classes, width, dropout, generator), f"cnn{width}"
    width = (96, 128, 80)[(index // 2) % 3]
    return _mlp(size, classes, width, dropout, generator), f"mlp{width}"


def train_auxiliaries(
    x: np.ndarray,
    y: np.ndarray,
    shape: Sequence[int],
    bounds: tuple[float, float],
    classes: int,
    count: int,
    settings: EnsembleSettings,
    seed: int,
) -> list[Auxiliary]:
    """`count` classifiers trained on (x, y), member i seeded from (seed, i) only. Each sees
    inputs scaled from `bounds` to [0, 1]; its `forward` takes raw inputs."""
    low, high = float(bounds[0]), float(bounds[1])
    xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(len(x), -1)
    xs = (xs - low) / (high - low)
    ys = torch.from_numpy(np.asarray(y, dtype=np.int64).reshape(-1))
    batches = max(1, math.ceil(len(xs) / settings.batch))
    epochs = max(settings.min_epochs, math.ceil(settings.steps / batches))
    members: list[Auxiliary] = []
    for index in range(count):
        started = time.perf_counter()
        state = np.random.SeedSequence([seed, 7919, index]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(state))
        # layer constructors draw default weights from the global generator; those draws are
        # overwritten below, so keep the caller's global random stream where it was
        with torch.random.fork_rng(devices=[]):
            net, name = _member(index, shape, classes, settings.dropout, generator)
        with torch.no_grad():
            # initial weights from the explicit generator, not the global one
            for parameter in net.parameters():
                fan_in = int(np.prod(parameter.shape[1:])) if parameter.ndim > 1 else 0
                if fan_in:
                    bound = math.sqrt(6.0 / fan_in) / math.sqrt(2.0)
                    parameter.copy_((torch.rand(parameter.shape, generator=generator) * 2 - 1) * bound)
                else:
                    parameter.zero_()
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        net.train()
        for _ in range(epochs):
            for batch in torch.split(torch.randperm(len(xs), generator=generator), settings.batch):
                loss = F.cross_entropy(net(xs[batch]), ys[batch])
                optimiser.zero_grad()
                torch.autograd.backward(loss)
                optimiser.step()
        net.eval()
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        with torch.no_grad():
            accuracy = float((net(xs).argmax(1) == ys).double().mean())
        members.append(
            Auxiliary(
                forward=_scaled(net, low, high),
                description=f"auxiliary {index}: {name}",
                train_accuracy=accuracy,
                seconds=time.perf_counter() - started,
            )
        )
    return members


def _scaled(net: nn.Module, low: float, high: float) -> Forward:
    def forward(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = net(((x - low) / (high - low)).reshape(x.shape[0], -1))
        return out

    return forward
