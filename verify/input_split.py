"""Branch and bound by bisecting the input box (low-dimensional inputs): several splitting
strategies (one-step lookaheads over all dimensions, bounded as one batch, and a plain
heuristic) take turns. Imports bounds, attack and branch helpers only.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Generator

import torch

from verify.attack import Region, pgd
from verify.bounds import LayerBounds, intermediate_bounds, spec_bounds
from verify.branch import Confirm, Search, ball_lower, ball_misses, check_points
from verify.network import Network

# Every ATTACK_EVERY rounds, PGD runs in the ATTACK_PIECES open boxes with the lowest bounds:
# corner and center checks alone missed counterexamples in thin regions.
ATTACK_EVERY = 4
ATTACK_PIECES = 4
# Up to this many pending boxes are expanded weakest first (a sort per round), beyond that
# depth first (memory and the per-round copy stay small).
BEST_FIRST_MAX = 20_000


class _Boxes:
    """A batch of bounded boxes: lo/hi [B, n0], the activation inputs' bounds, and each
    box's best lower bound over the disjunct's rows with the input coefficients of that row."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, pre: dict[int, tuple[torch.Tensor, torch.Tensor]], best: torch.Tensor, coeffs: torch.Tensor) -> None:
        self.lo, self.hi, self.pre, self.best, self.coeffs = lo, hi, pre, best, coeffs

    def __len__(self) -> int:
        return int(self.lo.shape[0])

    def take(self, keep: torch.Tensor | slice) -> _Boxes:
        return _Boxes(self.lo[keep], self.hi[keep], {p: (lb[keep], ub[keep]) for p, (lb, ub) in self.pre.items()}, self.best[keep], self.coeffs[keep])

    @staticmethod
    def cat(parts: list[_Boxes]) -> _Boxes:
        first = parts[0]
        return _Boxes(
            torch.cat([p.lo for p in parts]),
            torch.cat([p.hi for p in parts]),
            {k: (torch.cat([p.pre[k][0] for p in parts]), torch.cat([p.pre[k][1] for p in parts])) for k in first.pre},
            torch.cat([p.best for p in parts]),
            torch.cat([p.coeffs for p in parts]),
        )


def _pop(stack: list[_Boxes], count: int) -> _Boxes:
    """Up to `count` boxes from the end of the stack (depth first: memory stays small), which
    is kept as chunks so that a pop copies only what it takes."""
    parts: list[_Boxes] = []
    while count > 0 and stack:
        last = stack[-1]
        if len(last) <= count:
            parts.append(stack.pop())
            count -= len(last)
        else:
            parts.append(last.take(slice(len(last) - count, None)))
            stack[-1] = last.take(slice(0, len(last) - count))
            count = 0
    return _Boxes.cat(parts) if len(parts) > 1 else parts[0]


def _bound(
    net: Network,
    region: Region,
    C: torch.Tensor,
    d: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    prior: dict[int, tuple[torch.Tensor, torch.Tensor]] | None,
    pres: list[int],
    alpha_steps: int,
    every_row: bool = False,
) -> tuple[_Boxes, LayerBounds]:
    """CROWN bounds of the boxes (intersected with `prior`, a parent's bounds that hold in
    every child); optimized slopes only where the plain bound leaves a box open. A box is
    done when its best is > 0 (proved, or outside the L2 ball: best is then inf). With
    `every_row` (each row its own unsafe set) the best is the worst row's bound."""
    bounds: LayerBounds = intermediate_bounds(net, lo, hi, method="hybrid", prior=prior)
    result = spec_bounds(net, lo, hi, C, d, bounds)
    lower = ball_lower(region, result.input_coeffs, result.lower, lo, hi)
    row = lower.argmin(-1) if every_row else lower.argmax(-1)
    best = lower.gather(1, row.unsqueeze(1)).squeeze(1)
    best = torch.where(bounds.infeasible | ball_misses(region, lo, hi), torch.full_like(best, float("inf")), best)
    n0 = lo.shape[1]
    coeffs = result.input_coeffs.gather(1, row.view(-1, 1, 1).expand(-1, 1, n0)).squeeze(1)
    pre = {p: (bounds.lower[p], bounds.upper[p]) for p in pres}
    boxes = _Boxes(lo, hi, pre, best, coeffs)
    if alpha_steps:
        _tune(net, region, C, d, boxes, bounds, alpha_steps, every_row)
    return boxes, bounds


def _tune(
    net: Network, region: Region, C: torch.Tensor, d: torch.Tensor, boxes: _Boxes, bounds: LayerBounds, alpha_steps: int, every_row: bool
) -> None:
    """Raises `boxes.best` in place with optimized slopes where the plain bound left a box
    open (a few back-substitutions each: spent only there). The plain bound's coefficients
    still steer the corner checks and the attack."""
    hard = ~(boxes.best > 0)
    if not hard.any():
        return
    lo, hi = boxes.lo[hard], boxes.hi[hard]
    tuned = spec_bounds(net, lo, hi, C, d, bounds.select(hard), alpha_steps=alpha_steps)
    tuned_lower = ball_lower(region, tuned.input_coeffs, tuned.lower, lo, hi)
    # With every_row, max(min_j a_j, min_j b_j) <= min_j max(a_j, b_j): still sound.
    tuned_best = tuned_lower.amin(-1) if every_row else tuned_lower.amax(-1)
    boxes.best[hard] = torch.maximum(boxes.best[hard], tuned_best)


def _children(boxes: _Boxes, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
    """Both halves of each box along its `dims` entry ([B] or [B, k]: k candidate dims per
    box, children ordered box-major, then dim, then left/right), with inherited bounds."""
    dims = dims.view(len(boxes), -1)
    B, k = dims.shape
    lo = boxes.lo.unsqueeze(1).expand(-1, k, -1)
    hi = boxes.hi.unsqueeze(1).expand(-1, k, -1)
    mid = ((lo + hi) / 2).gather(2, dims.unsqueeze(-1))
    left_hi = hi.scatter(2, dims.unsqueeze(-1), mid)
    right_lo = lo.scatter(2, dims.unsqueeze(-1), mid)
    n0 = boxes.lo.shape[1]
    child_lo = torch.stack([lo, right_lo], dim=2).reshape(B * k * 2, n0)
    child_hi = torch.stack([left_hi, hi], dim=2).reshape(B * k * 2, n0)
    prior = {p: (lb.repeat_interleave(2 * k, 0), ub.repeat_interleave(2 * k, 0)) for p, (lb, ub) in boxes.pre.items()}
    return child_lo, child_hi, prior


def combined_rows(C: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """C, d with averages of row subsets appended (all subsets of 2+ rows up to 4 rows, else
    pairs). The unsafe set is every row <= 0, so a nonnegative combination > 0 also proves a
    box; it does where the box straddles the border between two rows' proofs."""
    k = C.shape[0]
    if k < 2:
        return C, d
    sizes = range(2, k + 1) if k <= 4 else (2,)
    subsets = [list(c) for r in sizes for c in itertools.combinations(range(k), r)]
    weights = torch.zeros((len(subsets), k), dtype=C.dtype)
    for i, subset in enumerate(subsets):
        weights[i, subset] = 1.0 / len(subset)
    return torch.cat([C, weights @ C]), torch.cat([d, weights @ d])


# The strategies input_split runs side by side, in equal shares of time: measured on ACAS Xu,
# each of them alone left instances the others decided in seconds (lookahead by the worse
# half: 1_1 prop_5, 4_9 prop_3; by both halves: 1_1 prop_5; plain bisection: prop_1).
STRATEGIES = ("lookahead-sum", "plain", "lookahead-worse")


def input_split(
    net: Network,
    region: Region,
    C: torch.Tensor,
    d: torch.Tensor,
    deadline: float,
    confirm: Confirm,
    *,
    batch: int = 1024,
    alpha_steps: int = 5,
    max_domains: int = 50_000_000,
    strategies: tuple[str, ...] = STRATEGIES,
    every_row: bool = False,
) -> Search:
    """Bisects input boxes until every piece is verified, a counterexample is confirmed, or
    the deadline passes. Each strategy grows its own tree of boxes; they take turns, round
    by round, so that each gets an equal share of the time, and the first to decide ends
    the search. Strategies: "plain" splits the dimension with the largest blend of
    |coefficient| x width and width; "lookahead-sum" bounds both halves along every
    dimension and splits where their bounds (capped at 0) sum highest; "lookahead-worse"
    where the worse half is best. With `every_row`, each row of C is a separate unsafe set
    (disjuncts over one box sharing the trees): a box is done when every row is proved."""
    spent = [0.0] * len(strategies)
    tally = {"domains": 0}
    searches = [_search(net, region, C, d, deadline, confirm, s, batch, alpha_steps, max_domains, tally, every_row) for s in strategies]
    live = list(range(len(strategies)))
    last: Search | None = None
    while live:
        i = min(live, key=lambda j: spent[j])
        start = time.monotonic()
        try:
            next(searches[i])
        except StopIteration as stop:
            last = stop.value
            assert isinstance(last, Search)
            if last.status in ("verified", "counterexample", "timeout"):
                last.domains = tally["domains"]
                return last
            live.remove(i)  # exhausted: the others go on
        spent[i] += time.monotonic() - start
    assert last is not None
    last.domains = tally["domains"]
    return last


def _search(
    net: Network,
    region: Region,
    C: torch.Tensor,
    d: torch.Tensor,
    deadline: float,
    confirm: Confirm,
    strategy: str,
    batch: int,
    alpha_steps: int,
    max_domains: int,
    tally: dict[str, int],
    every_row: bool,
) -> Generator[None, None, Search]:
    """One strategy's branch and bound, yielding after every round (see input_split). Each
    box inherits its parent's activation bounds, so only neurons left unstable are bounded
    again."""
    lookahead = strategy.startswith("lookahead")
    pres = [net.layers[a - 1].parent for a in net.activation_nodes()]  # type: ignore[union-attr]
    C_check, d_check = C, d
    if not every_row:  # separate unsafe sets: a combination of rows proves nothing
        C, d = combined_rows(C, d)
    splittable = region.hi > region.lo
    n_split = int(splittable.sum())
    root, _ = _bound(net, region, C, d, region.lo.unsqueeze(0), region.hi.unsqueeze(0), None, pres, alpha_steps, every_row)
    tally["domains"] += 1
    if float(root.best[0]) > 0:
        return Search("verified", margin=float(root.best[0]))
    if n_split == 0:
        return Search("exhausted")
    margin = float("inf")
    stack: list[_Boxes] = [root]
    rounds = 0
    dim_ids = splittable.nonzero().squeeze(1)
    per_parent = 2 * n_split if lookahead else 2
    while stack:
        yield
        if time.monotonic() > deadline:
            return Search("timeout", margin=margin)
        if tally["domains"] > max_domains:
            return Search("exhausted", margin=margin)
        count = max(1, batch // per_parent)
        if sum(len(b) for b in stack) <= BEST_FIRST_MAX:
            # Weakest boxes first: counterexamples in thin regions (ACAS Xu 5_3 prop_2) are
            # found by zooming in where the bound is worst; the work to verify is the same.
            pending = _Boxes.cat(stack) if len(stack) > 1 else stack[0]
            order = pending.best.argsort()
            parents, rest = pending.take(order[:count]), pending.take(order[count:])
            stack = [rest] if len(rest) else []
        else:
            parents = _pop(stack, count)
        take = len(parents)
        if lookahead:
            lo, hi, prior = _children(parents, dim_ids.expand(take, -1))
            trial, trial_bounds = _bound(net, region, C, d, lo, hi, prior, pres, 0, every_row)
            tally["domains"] += len(trial)
            pair = trial.best.view(take, n_split, 2)
            if strategy == "lookahead-worse":
                choice = (pair.min(-1).values + 1e-3 * pair.max(-1).values.clamp(max=1e6)).argmax(-1)
            else:
                choice = pair.clamp(max=0).sum(-1).argmax(-1)
            picked = (torch.arange(take) * n_split + choice).repeat_interleave(2) * 2 + torch.tensor([0, 1]).repeat(take)
            chosen = trial.take(picked)
            # Every trial half's corner and center are candidates too: a cheap net for counterexamples.
            weak = trial.take(~(trial.best > 0))
            points = torch.cat([torch.where(weak.coeffs >= 0, weak.lo, weak.hi), (weak.lo + weak.hi) / 2])
            if len(weak) and (found := check_points(net, C_check, d_check, points, region, confirm, every_row)) is not None:
                return Search("counterexample", x=found, margin=margin)
            if alpha_steps:  # only for the halves kept
                _tune(net, region, C, d, chosen, trial_bounds.select(picked), alpha_steps, every_row)
        else:
            width = parents.hi - parents.lo
            # Influence on the bound (|coefficient| x width) tempered by how far the dimension
            # is already split: either alone blew up on some ACAS Xu instances, the blend none.
            influence = (parents.coeffs.abs() * width) ** 0.5 * width / (region.hi - region.lo).clamp(min=1e-30)
            dims = torch.where(influence.amax(-1) > 0, influence.argmax(-1), width.argmax(-1))
            lo, hi, prior = _children(parents, dims)
            chosen, _ = _bound(net, region, C, d, lo, hi, prior, pres, alpha_steps, every_row)
            tally["domains"] += len(chosen)
        proved = chosen.best > 0
        if proved.any():
            margin = min(margin, float(chosen.best[proved].min()))
        open_ = chosen.take(~proved)
        if not len(open_):
            continue
        corner = torch.where(open_.coeffs >= 0, open_.lo, open_.hi)
        found = check_points(net, C_check, d_check, torch.cat([corner, (open_.lo + open_.hi) / 2]), region, confirm, every_row)
        if found is None and rounds % ATTACK_EVERY == 0:
            # The weakest boxes, where a counterexample is likeliest, get a short attack.
            targets = [(C_check[j : j + 1], d_check[j : j + 1]) for j in range(C_check.shape[0])] if every_row else [(C_check, d_check)]
            for k in open_.best.argsort()[:ATTACK_PIECES].tolist():
                for C_t, d_t in targets:
                    x, value = pgd(net, Region(open_.lo[k], open_.hi[k]), C_t, d_t, restarts=8, steps=20, seed=rounds + k)
                    if value <= 0 and confirm(x):
                        found = x
                        break
                if found is not None:
                    break
        rounds += 1
        if found is not None:
            return Search("counterexample", x=found, margin=margin)
        stack.append(open_)
    return Search("verified", margin=margin)
