"""The small class-pair adversarial autoencoder behind the ambiguous-input generator: a small
latent space (4-D by default; AmbiGuess uses 2-D) whose prior has one Gaussian mode per class,
so the two classes sit in known regions and the space between them decodes to blends. Torch
only; knows nothing of the model under test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["AAESettings", "PairAAE", "train_pair_aae"]

@dataclass(frozen=True)
class AAESettings:
    """Training settings of one pair's autoencoder. `separation` is the distance of each class
    mode from the origin along the first latent axis, in units of the modes' standard deviation
    (1); `adversarial` weighs the discriminator's push against the reconstruction loss; `latent`
    is the code size (more than 2 leaves room to satisfy the label model and the auxiliary
    ensemble of the generator at once; with 2 their balanced curves rarely meet)."""

    epochs: int = 150
    batch: int = 64
    hidden: tuple[int, ...] = (128, 64)
    learning_rate: float = 2e-3
    separation: float = 1.5
    adversarial: float = 0.05
    latent: int = 4

    def as_params(self) -> dict[str, object]:
        return {
            "epochs": self.epochs,
            "batch": self.batch,
            "hidden": list(self.hidden),
            "learning_rate": self.learning_rate,
            "separation": self.separation,
            "adversarial": self.adversarial,
            "latent": self.latent,
        }


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class PairAAE(nn.Module):
    """Encoder to a `settings.latent`-D code, decoder back to the input space (each value mapped into `bounds`
    through a scaled sigmoid), and a discriminator on (code, class) telling codes from draws of
    the class's prior mode. Class 0 of the pair sits at (-separation, 0, ...), class 1 at
    (+separation, 0, ...)."""

    def __init__(
        self, input_shape: Sequence[int], bounds: tuple[float, float], settings: AAESettings
    ) -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.settings = settings
        size = int(np.prod(self.input_shape))
        hidden = list(settings.hidden)
        self.encoder = _mlp([size, *hidden, settings.latent])
        self.decoder = _mlp([settings.latent, *reversed(hidden), size])
        self.discriminator = _mlp([settings.latent + 2, *hidden, 1])
        modes = torch.zeros(2, settings.latent)
        modes[0, 0], modes[1, 0] = -settings.separation, settings.separation
        self.register_buffer("modes", modes)

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs scaled from `bounds` to [0, 1], flattened."""
        low, high = self.bounds
        return ((x - low) / (high - low)).reshape(x.shape[0], -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        code: torch.Tensor = self.encoder(self.unit(x))
        return code

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.decoder(z)
        return logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        low, high = self.bounds
        unit = torch.sigmoid(self.decode_logits(z))
        return (low + (high - low) * unit).reshape(z.shape[0], *self.input_shape)

    def prior_log_density(self, z: torch.Tensor) -> torch.Tensor:
        """Log density (up to a constant) of the two-mode prior at each code [N]."""
        modes: torch.Tensor = self.modes  # type: ignore[assignment]
        squared = ((z[:, None, :] - modes[None]) ** 2).sum(-1)
        return torch.logsumexp(-0.5 * squared, dim=1)

    def _judge(self, z: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.discriminator(torch.cat([z, F.one_hot(side, 2).float()], dim=1))
        return out.squeeze(1)


def train_pair_aae(
    x: np.ndarray,
    side: np.ndarray,
    input_shape: Sequence[int],
    bounds: tuple[float, float],
    settings: AAESettings,
    generator: torch.Generator,
) -> tuple[PairAAE, dict[str, float]]:
    """Train on one pair's samples (`side[i]` is 0 for the pair's first class, 1 for its second).
    Randomness (weights, batches, prior draws) comes from `generator` only. Returns the model in
    eval mode and final losses (reconstruction, discriminator, and how far each class's mean
    code sits from its mode)."""
    model = PairAAE(input_shape, bounds, settings)
    with torch.no_grad():
        # initial weights from the explicit generator, not the global one
        for parameter in model.parameters():
            if parameter.ndim > 1:
                bound = 1.0 / np.sqrt(parameter.shape[1])
                parameter.copy_((torch.rand(parameter.shape, generator=generator) * 2 - 1) * bound)
            else:
                parameter.zero_()
    xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    sides = torch.from_numpy(np.asarray(side, dtype=np.int64))
    targets = model.unit(xs).clamp(0.0, 1.0)
    modes: torch.Tensor = model.modes  # type: ignore[assignment]
    autoencoder = torch.optim.Adam(
        [*model.encoder.parameters(), *model.decoder.parameters()], lr=settings.learning_rate
    )
    critic = torch.optim.Adam(model.discriminator.parameters(), lr=settings.learning_rate)
    model.train()
    reconstruction = discriminated = 0.0
    for _ in range(settings.epochs):
        for batch in torch.split(torch.randperm(len(xs), generator=generator), settings.batch):
            code = model.encode(xs[batch])
            label = sides[batch]
            # the critic learns prior draws (real) from codes (fake), each conditioned on its class
            prior = modes[label] + torch.randn(code.shape, generator=generator)
            real, fake = model._judge(prior, label), model._judge(code.detach(), label)
            loss_d = F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
            critic.zero_grad()
            torch.autograd.backward(loss_d)
            critic.step()
            # reconstruction plus fooling the critic moves each class's codes onto its own mode
            loss_r = F.binary_cross_entropy_with_logits(
                model.decode_logits(code), targets[batch], reduction="sum"
            ) / len(batch)
            fool = model._judge(code, label)
            loss_g = F.binary_cross_entropy_with_logits(fool, torch.ones_like(fool))
            loss = loss_r + settings.adversarial * targets.shape[1] * loss_g
            autoencoder.zero_grad()
            torch.autograd.backward(loss)
            autoencoder.step()
            reconstruction, discriminated = loss_r.item() / targets.shape[1], loss_d.item()
    model.eval()
    with torch.no_grad():
        codes = model.encode(xs)
        drift = [float((codes[sides == s].mean(0) - modes[s]).norm()) for s in (0, 1)]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, {
        "reconstruction": reconstruction,
        "discriminator": discriminated,
        "drift_a": drift[0],
        "drift_b": drift[1],
    }
