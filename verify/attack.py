"""Counterexample search before any proof: projected gradient descent with random restarts
on the Network (float64, autograd), for the box and optional L2 ball of one disjunct."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from verify.network import Network


@dataclass(frozen=True, eq=False)
class Region:
    """A disjunct's input region as tensors: the box, and an optional L2 ball inside it."""

    lo: torch.Tensor  # [n]
    hi: torch.Tensor
    center: torch.Tensor | None = None
    radius: float = 0.0

    def project(self, x: torch.Tensor) -> torch.Tensor:
        if self.center is not None:
            delta = x - self.center
            norm = delta.norm(dim=-1, keepdim=True).clamp(min=1e-30)
            x = self.center + delta * torch.clamp(self.radius / norm, max=1.0)
        # Clipping into the box only moves coordinates toward the ball's center (which lies in
        # the box), so a point of the ball stays in it.
        return torch.maximum(torch.minimum(x, self.hi), self.lo)

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand((count, self.lo.shape[0]), dtype=self.lo.dtype, generator=generator)
        return self.project(self.lo + (self.hi - self.lo) * u)


# The last PGD step as a fraction of the first (0.25 of the box width).
FINAL_STEP = 4e-4


def violation(net: Network, x: torch.Tensor, C: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """max_j (C_j y - d_j) per row of x: <= 0 exactly when y is in the unsafe set."""
    y = net.forward(x)
    if C.shape[0] == 0:
        return torch.full((x.shape[0],), -1.0, dtype=x.dtype)
    return (y @ C.T - d).max(dim=-1).values


def pgd(
    net: Network,
    region: Region,
    C: torch.Tensor,
    d: torch.Tensor,
    *,
    restarts: int = 32,
    steps: int = 50,
    seed: int = 0,
    starts: torch.Tensor | None = None,
) -> tuple[np.ndarray, float]:
    """The input with the lowest violation found and that violation (<= 0: a candidate
    counterexample, still to be re-checked on the real model). Starts: the center, the
    given points, and random points; signed (L-inf) or normalized (L2) steps that shrink."""
    generator = torch.Generator().manual_seed(seed)
    center = (region.lo + region.hi) / 2 if region.center is None else region.center
    points = [center.unsqueeze(0)]
    if starts is not None:
        points.append(region.project(starts))
    points.append(region.sample(restarts, generator))
    x = torch.cat(points)
    width = region.hi - region.lo
    best_x, best_v = x[0].clone(), float("inf")
    for step in range(steps + 1):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = net.forward(x)
            if C.shape[0] == 0:
                v = torch.full((x.shape[0],), -1.0, dtype=x.dtype)
                grad = torch.zeros_like(x)
            else:
                g = y @ C.T - d
                v = g.max(dim=-1).values
                # The max alone follows one row at a time and zigzags where rows tie;
                # descending every row still above zero at once moves along the tie.
                loss = torch.where(g > 0, g, torch.zeros_like(g)).sum(-1) + v.clamp(max=0)
                (grad,) = torch.autograd.grad(loss.sum(), x)
        i = int(v.argmin())
        if float(v[i]) < best_v:
            best_v, best_x = float(v[i]), x[i].detach().clone()
        if step == steps or best_v < -1e-3 * (1 + abs(best_v)):
            break
        # Geometric decay to 1e-4 of the width (a linear schedule stopped at 1e-2): ACAS Xu
        # counterexamples can clear the unsafe set by only ~3e-5 (5_3 prop_2).
        fraction = 0.25 * FINAL_STEP ** (step / steps)
        with torch.no_grad():
            if region.center is not None:
                direction = grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-30)
                x = x - fraction * 2 * region.radius * direction
            else:
                x = x - fraction * width * grad.sign()
            x = region.project(x)
    return best_x.numpy(), best_v
