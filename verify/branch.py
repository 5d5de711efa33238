"""Branch and bound over ReLU splits for one disjunct (input splitting is in
verify/input_split.py), bounding batches of sub-domains with CROWN and checking the points
the bounds point at as counterexample candidates; the helpers both share.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from verify.attack import Region
from verify.bounds import LayerBounds, apply_splits, intermediate_bounds, spec_bounds
from verify.encode import Residual, solve_residual
from verify.network import Activation, Network

# A candidate x (flattened float64) -> whether the real model confirms it.
Confirm = Callable[[np.ndarray], bool]


@dataclass
class Search:
    """The outcome of a branch and bound run: `status` is verified, counterexample (x set),
    timeout or exhausted (a domain limit hit)."""

    status: str
    x: np.ndarray | None = None
    margin: float = float("inf")
    domains: int = 0
    stats: dict[str, float] = field(default_factory=dict)


def ball_misses(region: Region, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Boxes that do not meet the L2 ball at all (nothing to verify there)."""
    if region.center is None:
        return torch.zeros(lo.shape[0], dtype=torch.bool)
    nearest = torch.maximum(torch.minimum(region.center, hi), lo)
    misses: torch.Tensor = (nearest - region.center).norm(dim=-1) > region.radius
    return misses


def ball_lower(region: Region, coeffs: torch.Tensor, lower: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """With an L2 ball, min of the linear bound over the ball can beat the box's: keep the
    larger (both are valid lower bounds over a superset of box & ball)."""
    if region.center is None:
        return lower
    center_term = ((lo + hi) / 2).unsqueeze(1)
    radius_term = ((hi - lo) / 2).unsqueeze(1)
    const = lower + (coeffs.abs() * radius_term).sum(-1) - (coeffs * center_term).sum(-1)
    ball = const + coeffs @ region.center - region.radius * coeffs.norm(dim=-1)
    return torch.maximum(lower, ball - 1e-9 * (1 + ball.abs()))


def check_points(
    net: Network, C: torch.Tensor, d: torch.Tensor, points: torch.Tensor, region: Region, confirm: Confirm, every_row: bool = False
) -> np.ndarray | None:
    """Evaluates candidate points; the first whose violation is <= 0 and that the real model
    confirms is returned. With `every_row`, each row of C is an unsafe set of its own."""
    points = region.project(points)
    with torch.no_grad():
        y = net.forward(points)
        values = y @ C.T - d
        if not C.shape[0]:
            v = torch.full((points.shape[0],), -1.0, dtype=points.dtype)
        else:
            v = values.min(-1).values if every_row else values.max(-1).values
    for i in torch.argsort(v).tolist()[:8]:
        if float(v[i]) > 0:
            break
        x = points[i].numpy()
        if confirm(x):
            return x
    return None


# Sub-domains with this few undecided ReLUs go to z3 (exact) instead of being split further:
# measured, z3 decides them in well under a second where splitting needs up to 2^k pieces.
# Each z3 timeout halves the limit for the rest of the search (MNIST 256x2: 5 s lost a call).
RESIDUAL_MAX_UNSTABLE = 10
RESIDUAL_TIMEOUT = 5.0


def _residual(
    net: Network,
    region: Region,
    C: torch.Tensor,
    d: torch.Tensor,
    bounds: LayerBounds,
    splits: dict[int, torch.Tensor],
    i: int,
    timeout: float,
) -> Residual:
    """Sub-domain i exactly with z3: its activation-input bounds, clamped by its split
    decisions, delimit the piece (an unsat covers exactly that piece)."""
    pre_lower: dict[int, np.ndarray] = {}
    pre_upper: dict[int, np.ndarray] = {}
    for node in net.activation_nodes():
        pre = net.layers[node - 1].parent  # type: ignore[union-attr]
        low, up = bounds.lower[pre][i], bounds.upper[pre][i]
        if node in splits:
            low, up, _ = apply_splits(low, up, splits[node][i])
        pre_lower[pre], pre_upper[pre] = low.numpy(), up.numpy()
    if region.center is not None:
        return Residual("unknown", reason="an L2 ball is not linear")
    return solve_residual(net, region.lo.numpy(), region.hi.numpy(), C.numpy(), d.numpy(), pre_lower, pre_upper, timeout)


@dataclass(order=True)
class _Domain:
    lower: float
    order: int
    splits: dict[int, torch.Tensor] = field(compare=False)


def _relu_scores(net: Network, bounds: LayerBounds, at_activation: dict[int, torch.Tensor], row: torch.Tensor, splits: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """BaBSR-style score of each unstable, unsplit ReLU: how much its triangle relaxation's
    intercept costs the bound of the chosen row (zero where splitting cannot help)."""
    scores: dict[int, torch.Tensor] = {}
    for node, L in at_activation.items():
        layer = net.layers[node - 1]
        assert isinstance(layer, Activation)
        pre = layer.parent
        l, u = bounds.lower[pre], bounds.upper[pre]
        if node in splits:
            l, u, _ = apply_splits(l, u, splits[node])
        unstable = (l < 0) & (u > 0)
        if node in splits:
            unstable &= splits[node] == 0
        coeff = L.gather(1, row.view(-1, 1, 1).expand(-1, 1, L.shape[2])).squeeze(1)
        intercept = torch.where(unstable, -l * u / torch.where(unstable, u - l, torch.ones_like(l)), torch.zeros_like(l))
        scores[node] = torch.where(unstable, coeff.abs() * intercept + 1e-12 * (u - l), torch.full_like(l, -1.0))
    return scores


def relu_split(
    net: Network,
    region: Region,
    C: torch.Tensor,
    d: torch.Tensor,
    deadline: float,
    confirm: Confirm,
    *,
    batch: int = 32,
    alpha_steps: int = 10,
    max_domains: int = 200_000,
    every_row: bool = False,
    refresh: bool = True,
) -> Search:
    """Splits unstable ReLUs (input >= 0 / <= 0) in best-first order of the bound, with the
    split ReLUs' input bounds clamped so every later layer's bounds tighten, and the split
    constraints in the final bound as beta-CROWN terms (optimized with the slopes). With
    `every_row`, each row of C is a separate unsafe set (disjuncts over one box sharing one
    tree): a piece is done when every row is proved."""
    relu_nodes = [n for n in net.activation_nodes() if net.layers[n - 1].kind in ("relu", "leaky_relu")]  # type: ignore[union-attr]
    if len(relu_nodes) != len(net.activation_nodes()):
        return Search("exhausted", stats={"reason_sigmoid": 1.0})
    counter = itertools.count()
    root = {n: torch.zeros(net.layers[n - 1].size, dtype=torch.int8) for n in relu_nodes}
    # The whole box's CROWN bounds hold in every piece: each piece's own bounds are
    # intersected with them (and, with `refresh`, re-derived under its split decisions).
    start = intermediate_bounds(net, region.lo.unsqueeze(0), region.hi.unsqueeze(0))
    prior_root = {
        layer.parent: (start.lower[layer.parent], start.upper[layer.parent])
        for layer in net.layers
        if isinstance(layer, Activation)
    }
    heap: list[_Domain] = [_Domain(-float("inf"), next(counter), root)]
    residual_max = RESIDUAL_MAX_UNSTABLE
    stats: dict[str, float] = {}
    domains = 0
    margin = float("inf")
    while heap:
        if time.monotonic() > deadline:
            return Search("timeout", margin=margin, domains=domains)
        if domains > max_domains:
            return Search("exhausted", margin=margin, domains=domains)
        picked = [heapq.heappop(heap) for _ in range(min(batch, len(heap)))]
        domains += len(picked)
        D = len(picked)
        splits = {n: torch.stack([p.splits[n] for p in picked]) for n in relu_nodes}
        lo, hi = region.lo.expand(D, -1), region.hi.expand(D, -1)
        prior = {p: (lb.expand(D, -1), ub.expand(D, -1)) for p, (lb, ub) in prior_root.items()}
        bounds = intermediate_bounds(net, lo, hi, splits, method="crown" if refresh else "prior", prior=prior)
        result = spec_bounds(net, lo, hi, C, d, bounds, alpha_steps=alpha_steps, record=True, splits=splits)
        lower = ball_lower(region, result.input_coeffs, result.lower, lo, hi)
        best_row = lower.argmin(-1) if every_row else lower.argmax(-1)
        best = lower.gather(1, best_row.unsqueeze(1)).squeeze(1)
        best = torch.where(bounds.infeasible, torch.full_like(best, float("inf")), best)
        coeffs = result.input_coeffs.gather(1, best_row.view(-1, 1, 1).expand(-1, 1, lo.shape[1])).squeeze(1)
        corner = torch.where(coeffs >= 0, lo, hi)
        open_rows = [i for i in range(D) if not float(best[i]) > 0]
        verified_rows = [i for i in range(D) if float(best[i]) > 0 and not bool(bounds.infeasible[i])]
        if verified_rows:
            margin = min(margin, float(best[verified_rows].min()))
        if open_rows:
            found = check_points(net, C, d, corner[open_rows], region, confirm, every_row)
            if found is not None:
                return Search("counterexample", x=found, margin=margin, domains=domains)
        scores = _relu_scores(net, bounds, result.at_activation, best_row, splits)
        for i in open_rows:
            unstable = sum(int((s[i] >= 0).sum()) for s in scores.values())
            if unstable <= residual_max and time.monotonic() < deadline:
                # Each row alone with `every_row` (separate unsafe sets), else the conjunction.
                groups = [[j] for j in range(C.shape[0]) if float(lower[i, j]) <= 0] if every_row else [list(range(C.shape[0]))]
                decided = True
                for rows in groups:
                    residual = _residual(net, region, C[rows], d[rows], bounds, splits, i, min(RESIDUAL_TIMEOUT, deadline - time.monotonic()))
                    stats["z3_calls"] = stats.get("z3_calls", 0) + 1
                    if residual.status == "sat" and residual.x is not None and confirm(residual.x):
                        return Search("counterexample", x=residual.x, margin=margin, domains=domains, stats=stats)
                    decided = decided and residual.status == "unsat"
                    if residual.status not in ("sat", "unsat"):
                        # z3 timed out: on this network, pieces need fewer undecided ReLUs.
                        residual_max //= 2
                        stats["z3_unknown"] = stats.get("z3_unknown", 0) + 1
                if decided:
                    stats["z3_unsat"] = stats.get("z3_unsat", 0) + 1
                    continue
            node, unit, value = -1, -1, -1.0
            for n, s in scores.items():
                j = int(s[i].argmax())
                if float(s[i, j]) > value:
                    node, unit, value = n, j, float(s[i, j])
            if node < 0:
                # Every ReLU is fixed and z3 did not decide the piece: nothing left to split.
                return Search("exhausted", margin=margin, domains=domains, stats={**stats, "stuck_bound": float(best[i])})
            for phase in (1, -1):
                child = {n: t.clone() for n, t in picked[i].splits.items()}
                child[node][unit] = phase
                heapq.heappush(heap, _Domain(float(best[i]), next(counter), child))
    return Search("verified", margin=margin, domains=domains)
