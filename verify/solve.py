"""The verification pipeline for one property: center and attack first, then CROWN bounds,
then branch and bound, every counterexample replayed on the real model; a timeout or an
exhausted method is Unknown, never Verified.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from generators.load.model import LoadedModel, ModelError
from verify.attack import Region, pgd
from verify.bounds import LayerBounds, intermediate_bounds, spec_bounds
from verify.branch import Search, relu_split
from verify.input_split import input_split
from verify.network import Network, linearize
from verify.property import Disjunct, Property
from verify.replay import confirm
from verify.verdict import Counterexample, Unknown, Verdict, Verified

# Inputs up to this many dimensions are split directly; larger ones split ReLUs.
INPUT_SPLIT_MAX_DIMS = 16

Log = Callable[[str], None]


@dataclass(eq=False)
class _Piece:
    index: int
    disjunct: Disjunct
    region: Region
    C: torch.Tensor
    d: torch.Tensor
    bound: float = -float("inf")
    members: list[_Piece] = field(default_factory=list)  # single-row disjuncts searched together
    found: _Piece | None = None


def _merge_same_box(pieces: list[_Piece]) -> list[_Piece]:
    """Single-row disjuncts over the same box (e.g. "some other class wins") share one ReLU
    splitting tree: its bounds serve every row, and a piece closes when all rows are proved."""
    groups: dict[tuple[bytes, bytes], list[_Piece]] = {}
    rest = []
    for p in pieces:
        if p.C.shape[0] == 1 and p.region.center is None:
            groups.setdefault((p.region.lo.numpy().tobytes(), p.region.hi.numpy().tobytes()), []).append(p)
        else:
            rest.append(p)
    for members in groups.values():
        if len(members) == 1:
            rest.append(members[0])
            continue
        first = members[0]
        merged = _Piece(
            first.index, first.disjunct, first.region, torch.cat([m.C for m in members]), torch.cat([m.d for m in members]),
            min(m.bound for m in members), members,
        )
        rest.append(merged)
    return rest


def _network_rows(net: Network, disjunct: Disjunct) -> tuple[np.ndarray, np.ndarray]:
    """The disjunct's output constraints restated over the logits when the model ends in a
    softmax the Network dropped; constraints that do not survive that are refused."""
    C, d = np.asarray(disjunct.C, dtype=np.float64), np.asarray(disjunct.d, dtype=np.float64)
    if net.squash is None:
        return C, d
    for row, bound in zip(C, d):
        sums_to_zero = abs(float(row.sum())) <= 1e-12
        if net.squash == "log_softmax" and sums_to_zero:
            continue  # differences of log-softmax outputs equal differences of logits
        pairwise = sums_to_zero and np.count_nonzero(row) == 2 and bound == 0
        if net.squash == "softmax" and pairwise:
            continue  # softmax keeps the order of the logits
        raise ModelError(
            f"the property constrains the model's {net.squash} outputs in a way the verifier cannot restate over "
            "the logits (only comparisons between outputs are supported after a softmax)"
        )
    return C, d


def _pieces(net: Network, prop: Property) -> list[_Piece]:
    if prop.n_inputs != net.input_size or prop.n_outputs != net.output_size:
        raise ModelError(
            f"the property has {prop.n_inputs} inputs and {prop.n_outputs} outputs; the model has "
            f"{net.input_size} and {net.output_size}"
        )
    pieces = []
    for i, disjunct in enumerate(prop.disjuncts):
        C, d = _network_rows(net, disjunct)
        center = None if disjunct.l2_center is None else torch.as_tensor(np.asarray(disjunct.l2_center, dtype=np.float64))
        region = Region(
            torch.as_tensor(np.asarray(disjunct.lower, dtype=np.float64)),
            torch.as_tensor(np.asarray(disjunct.upper, dtype=np.float64)),
            center,
            float(disjunct.l2_radius),
        )
        pieces.append(_Piece(i, disjunct, region, torch.as_tensor(C), torch.as_tensor(d)))
    return pieces


def verify_property(
    model: LoadedModel,
    prop: Property,
    timeout: float,
    *,
    net: Network | None = None,
    seed: int = 0,
    log: Log | None = None,
) -> Verdict:
    """Decides whether any input of the property's region reaches its unsafe set."""
    start = time.monotonic()
    deadline = start + timeout
    say = log or (lambda message: None)
    net = net if net is not None else linearize(model)
    pieces = _pieces(net, prop)
    if not pieces:
        return Verified("empty unsafe set", float("inf"), time.monotonic() - start)
    stats: dict[str, float] = {"disjuncts": len(pieces)}

    def found(piece: _Piece, x: np.ndarray, method: str) -> Counterexample | None:
        confirmed = confirm(model, piece.disjunct, x)
        if confirmed is None:
            stats["unconfirmed_candidates"] = stats.get("unconfirmed_candidates", 0) + 1
            return None
        return Counterexample(confirmed[0], confirmed[1], piece.index, method, time.monotonic() - start, stats)

    with torch.no_grad():
        for piece in pieces:
            x, value = pgd(net, piece.region, piece.C, piece.d, seed=seed + piece.index)
            if value <= 0 and (cex := found(piece, x, "attack")) is not None:
                say(f"counterexample by attack on disjunct {piece.index}")
                return cex
            if time.monotonic() > deadline:
                return Unknown("timeout during the attack", time.monotonic() - start, stats)
        open_pieces = []
        shared: dict[tuple[bytes, bytes], LayerBounds] = {}  # disjuncts often share one box
        for piece in pieces:
            lo, hi = piece.region.lo.unsqueeze(0), piece.region.hi.unsqueeze(0)
            key = (lo.numpy().tobytes(), hi.numpy().tobytes())
            if key not in shared:
                shared[key] = intermediate_bounds(net, lo, hi)
            bounds = shared[key]
            steps = 0 if net.input_size <= INPUT_SPLIT_MAX_DIMS else 20
            piece.bound = float(spec_bounds(net, lo, hi, piece.C, piece.d, bounds, alpha_steps=steps).lower.max())
            if piece.bound <= 0 and not bool(bounds.infeasible.all()):
                open_pieces.append(piece)
        margins = [p.bound for p in pieces if p.bound > 0]
        stats["bounded"] = len(pieces) - len(open_pieces)
        say(f"bounds: {len(pieces) - len(open_pieces)} of {len(pieces)} disjuncts verified")
        if not open_pieces:
            return Verified("crown", min(margins, default=float("inf")), time.monotonic() - start, stats)
        undecided: list[str] = []
        open_pieces = _merge_same_box(open_pieces)
        for k, piece in enumerate(sorted(open_pieces, key=lambda p: -p.bound)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                undecided.append(f"disjunct {piece.index}: timeout")
                continue
            piece_deadline = time.monotonic() + remaining / (len(open_pieces) - k)

            def check(x: np.ndarray, piece: _Piece = piece) -> bool:
                for member in piece.members or [piece]:
                    if confirm(model, member.disjunct, x) is not None:
                        piece.found = member
                        return True
                return False

            search: Search
            if net.input_size <= INPUT_SPLIT_MAX_DIMS:
                search = input_split(net, piece.region, piece.C, piece.d, piece_deadline, check, every_row=bool(piece.members))
                method = "input splitting"
            else:
                search = relu_split(net, piece.region, piece.C, piece.d, piece_deadline, check, every_row=bool(piece.members))
                method = "relu splitting"
            stats["domains"] = stats.get("domains", 0) + search.domains
            for name, value in search.stats.items():
                stats[name] = stats.get(name, 0) + value
            say(f"disjunct {piece.index}: {method} -> {search.status} after {search.domains} domains")
            if search.status == "counterexample" and search.x is not None:
                cex = found(piece.found or piece, search.x, method)
                if cex is not None:
                    return cex
            if search.status == "verified":
                margins.append(search.margin)
            else:
                undecided.append(f"disjunct {piece.index}: {method} {search.status} after {search.domains} domains")
        elapsed = time.monotonic() - start
        if undecided:
            return Unknown("; ".join(undecided), elapsed, stats)
        return Verified("branch and bound", min(margins, default=float("inf")), elapsed, stats)
