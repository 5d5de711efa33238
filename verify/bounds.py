"""Sound bounds on a Network over batches of input boxes: interval propagation and CROWN-style
back-substitution with linear relaxations of the activations (ReLU lower slopes optionally
optimized, alpha-CROWN style), in float64 with outward margins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from verify.network import Activation, Affine, Network, activate

# Outward margin added to every computed bound: float64 rounding in a few thousand-term
# dot products is far below it, so a bound that clears zero by more is a real bound.
REL_MARGIN = 1e-9
ABS_MARGIN = 1e-12


def widen(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pad = REL_MARGIN * (lower.abs() + upper.abs()) + ABS_MARGIN
    return lower - pad, upper + pad


@dataclass(frozen=True, eq=False)
class Relaxation:
    """lower_slope * x + lower_bias <= f(x) <= upper_slope * x + upper_bias on [l, u];
    each tensor is [D, 1, size] (or [D, k, size] for per-row optimized slopes)."""

    lower_slope: torch.Tensor
    lower_bias: torch.Tensor
    upper_slope: torch.Tensor
    upper_bias: torch.Tensor


def _sigmoid_like(kind: str) -> tuple[object, object]:
    if kind == "sigmoid":
        return torch.sigmoid, lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x))
    return torch.tanh, lambda x: 1 - torch.tanh(x) ** 2


def relax(layer: Activation, l: torch.Tensor, u: torch.Tensor, alpha: torch.Tensor | None = None) -> Relaxation:
    """Linear bounds of the activation on [l, u] ([D, size]). `alpha` replaces the lower
    slope of unstable (leaky) ReLUs; it is clamped to its valid range here."""
    zero = torch.zeros_like(l)
    if layer.kind in ("relu", "leaky_relu"):
        s = layer.slope if layer.kind == "leaky_relu" else 0.0
        active, inactive = l >= 0, u <= 0
        unstable = ~(active | inactive)
        width = torch.where(unstable, u - l, torch.ones_like(l))
        one, slope = torch.ones_like(l), torch.full_like(l, s)
        stable_slope = torch.where(active, one, slope)
        chord = torch.where(unstable, (u - s * l) / width, stable_slope)
        up_bias = torch.where(unstable, u - chord * u, zero)
        if alpha is None:
            default = torch.where(u >= -l, one, slope)
            low = torch.where(unstable, default, stable_slope).unsqueeze(1)
        else:
            low = torch.where(unstable.unsqueeze(1), alpha.clamp(s, 1.0), stable_slope.unsqueeze(1))
        return Relaxation(low, zero.unsqueeze(1), chord.unsqueeze(1), up_bias.unsqueeze(1))
    f, df = _sigmoid_like(layer.kind)
    fl, fu = f(l), f(u)  # type: ignore[operator]
    mid = (l + u) / 2
    tangent_slope = df(mid)  # type: ignore[operator]
    tangent_bias = f(mid) - tangent_slope * mid  # type: ignore[operator]
    narrow = (u - l) < 1e-9
    chord_slope = torch.where(narrow, tangent_slope, (fu - fl) / torch.where(narrow, torch.ones_like(l), u - l))
    chord_bias = fl - chord_slope * l
    concave, convex = l >= 0, u <= 0  # sigmoid and tanh are convex below 0, concave above
    up_cross_s, up_cross_b = _crossing_tangent(f, df, l, u, upper=True)
    low_cross_s, low_cross_b = _crossing_tangent(f, df, l, u, upper=False)
    low_s = torch.where(concave, chord_slope, torch.where(convex, tangent_slope, low_cross_s))
    low_b = torch.where(concave, chord_bias, torch.where(convex, tangent_bias, low_cross_b))
    up_s = torch.where(concave, tangent_slope, torch.where(convex, chord_slope, up_cross_s))
    up_b = torch.where(concave, tangent_bias, torch.where(convex, chord_bias, up_cross_b))
    # A chord or tangent computed in float64 can be off by a few ulps of f: pad it.
    pad = 1e-12 + 1e-12 * (l.abs() + u.abs()) * (low_s.abs() + up_s.abs())
    return Relaxation(low_s.unsqueeze(1), (low_b - pad).unsqueeze(1), up_s.unsqueeze(1), (up_b + pad).unsqueeze(1))


def _crossing_tangent(f: Any, df: Any, l: torch.Tensor, u: torch.Tensor, upper: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """For l < 0 < u: a tangent of f at a point on the concave side (upper bound) or the
    convex side (lower bound) that also clears f at the far end, found by bisection. Such a
    tangent bounds f on all of [l, u]; where none is found the constant f(u) / f(l) is used."""
    far = l if upper else u
    f_far = f(far)
    near, away = torch.zeros_like(l), (u if upper else l).clone()  # away end is feasible if any is

    def clears(point: torch.Tensor) -> torch.Tensor:
        value: torch.Tensor = f(point) + df(point) * (far - point)
        result: torch.Tensor = value >= f_far + 1e-12 if upper else value <= f_far - 1e-12
        return result

    ok = clears(away)
    for _ in range(30):
        mid = (near + away) / 2
        good = clears(mid)
        away = torch.where(good, mid, away)
        near = torch.where(good, near, mid)
    slope = df(away)
    bias = f(away) - slope * away
    fallback = f(u) if upper else f(l)
    return torch.where(ok, slope, torch.zeros_like(l)), torch.where(ok, bias, fallback)


@dataclass(eq=False)
class Backsub:
    """The result of one back-substitution: the lower bound of Lam . x_start + const, the
    coefficients it reached the input with, and (if asked) those at each activation."""

    lower: torch.Tensor  # [D, k]
    input_coeffs: torch.Tensor  # [D, k, n0]
    at_activation: dict[int, torch.Tensor] = field(default_factory=dict)


def backsubstitute(
    net: Network,
    start: int,
    lam: torch.Tensor,
    const: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    relaxations: Mapping[int, Relaxation],
    record: bool = False,
    extra: Mapping[int, torch.Tensor] | None = None,
) -> Backsub:
    """Lower bound over the box [lo, hi] ([D, n0]) of lam ([D, k, size(start)]) . x_start +
    const ([D, k]), through every layer down to the input. `extra[node]` ([D, k, size]) is
    added to the coefficients of an activation's input as the pass crosses it (the split
    constraints' Lagrangian terms, beta-CROWN)."""
    pending: dict[int, torch.Tensor] = {start: lam}
    total = const
    recorded: dict[int, torch.Tensor] = {}
    for node in range(start, 0, -1):
        L = pending.pop(node, None)
        if L is None:
            continue
        layer = net.layers[node - 1]
        if isinstance(layer, Affine):
            total = total + L @ layer.bias
            for p, w in zip(layer.parents, layer.weights):
                contribution = L @ w
                pending[p] = pending[p] + contribution if p in pending else contribution
        else:
            if record:
                recorded[node] = L
            r = relaxations[node]
            neg = L.clamp(max=0)
            # pos * a + neg * b == L * a + neg * (b - a): one clamp and fused products instead
            # of two clamps and four full-size products (this loop dominates the cost).
            if r.lower_slope.shape[1] == 1 and L.dim() == 3:
                bias = torch.bmm(L, r.lower_bias.transpose(1, 2)) + torch.bmm(neg, (r.upper_bias - r.lower_bias).transpose(1, 2))
                total = total + bias.squeeze(-1)
            else:
                total = total + (L * r.lower_bias + neg * (r.upper_bias - r.lower_bias)).sum(-1)
            through = torch.addcmul(L * r.lower_slope, neg, r.upper_slope - r.lower_slope)
            if extra is not None and node in extra:
                through = through + extra[node]
            p = layer.parent
            pending[p] = pending[p] + through if p in pending else through
    L0 = pending.get(0)
    if L0 is None:
        L0 = torch.zeros((*lam.shape[:2], lo.shape[1]), dtype=lam.dtype)
    center = ((lo + hi) / 2).unsqueeze(-1)
    radius = ((hi - lo) / 2).unsqueeze(-1)
    lower = total + (L0 @ center).squeeze(-1) - (L0.abs() @ radius).squeeze(-1)
    scale = total.abs() + (L0.abs() @ (center.abs() + radius)).squeeze(-1)
    return Backsub(lower - REL_MARGIN * scale - ABS_MARGIN, L0, recorded)


def apply_splits(l: torch.Tensor, u: torch.Tensor, split: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bounds of activation inputs under ReLU split decisions (+1: input >= 0, -1: <= 0,
    0: free), and which boxes the decisions contradict (their lower bound passed the upper)."""
    l = torch.where(split > 0, l.clamp(min=0), l)
    u = torch.where(split < 0, u.clamp(max=0), u)
    contradicted = (l > u).any(-1)
    return l, torch.maximum(u, l), contradicted


@dataclass(eq=False)
class LayerBounds:
    """Bounds of every node for a batch of D boxes. `infeasible[D]` marks boxes whose ReLU
    split decisions contradict each other (no input satisfies them)."""

    lower: dict[int, torch.Tensor]
    upper: dict[int, torch.Tensor]
    relaxations: dict[int, Relaxation]
    infeasible: torch.Tensor

    def select(self, keep: torch.Tensor) -> LayerBounds:
        """The bounds of the boxes where `keep` ([D] bool) is set."""
        return LayerBounds(
            {n: t[keep] for n, t in self.lower.items()},
            {n: t[keep] for n, t in self.upper.items()},
            {
                n: Relaxation(r.lower_slope[keep], r.lower_bias[keep], r.upper_slope[keep], r.upper_bias[keep])
                for n, r in self.relaxations.items()
            },
            self.infeasible[keep],
        )


def _interval(net: Network, node: int, lower: Mapping[int, torch.Tensor], upper: Mapping[int, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    layer = net.layers[node - 1]
    assert isinstance(layer, Affine)
    lo = layer.bias.expand(lower[0].shape[0], -1)
    hi = lo
    for p, w in zip(layer.parents, layer.weights):
        center, radius = (lower[p] + upper[p]) / 2, (upper[p] - lower[p]) / 2
        mid = center @ w.T
        spread = radius @ w.abs().T
        lo, hi = lo + mid - spread, hi + mid + spread
    return lo, hi


def intermediate_bounds(
    net: Network,
    lo: torch.Tensor,
    hi: torch.Tensor,
    splits: Mapping[int, torch.Tensor] | None = None,
    method: str = "crown",
    prior: Mapping[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> LayerBounds:
    """Bounds of each activation's input by back-substitution (`crown`, intersected with
    interval bounds) or by forward linear bounds (`forward`: cheap when the input has few
    dimensions), and the activations' relaxations. `splits[node]` ([D, size] in {-1, 0, 1})
    forces an activation's input <= 0 (-1) or >= 0 (+1) in each box. `prior[pre]` holds
    bounds already known for these boxes (e.g. a parent box's): results are intersected
    with them, and neurons they prove stable are not bounded again."""
    if method in ("forward", "hybrid"):
        return _forward_bounds(net, lo, hi, splits, refine=method == "hybrid", prior=prior)
    lower: dict[int, torch.Tensor] = {0: lo}
    upper: dict[int, torch.Tensor] = {0: hi}
    relaxations: dict[int, Relaxation] = {}
    infeasible = torch.zeros(lo.shape[0], dtype=torch.bool)
    for node, layer in enumerate(net.layers, start=1):
        if isinstance(layer, Affine):
            continue
        pre = layer.parent
        if pre not in lower:
            l, u = _interval(net, pre, lower, upper)
            if prior is not None and pre in prior:
                l, u = torch.maximum(l, prior[pre][0]), torch.minimum(u, prior[pre][1])
            if method == "crown":  # "prior": interval bounds and the prior alone
                size = layer.size
                unsure = (l < 0) & (u > 0)
                rows = unsure.any(0).nonzero().squeeze(1)
                if rows.numel():
                    eye = torch.zeros((rows.numel(), size), dtype=lo.dtype)
                    eye[torch.arange(rows.numel()), rows] = 1.0
                    lam = torch.cat([eye, -eye]).expand(lo.shape[0], -1, -1)
                    zero = torch.zeros(lam.shape[:2], dtype=lo.dtype)
                    result = backsubstitute(net, pre, lam, zero, lo, hi, relaxations).lower
                    k = rows.numel()
                    l = l.clone()
                    u = u.clone()
                    l[:, rows] = torch.maximum(l[:, rows], result[:, :k])
                    u[:, rows] = torch.minimum(u[:, rows], -result[:, k:])
            l, u = widen(l, u)
            lower[pre], upper[pre] = l, u
        l, u = lower[pre], upper[pre]
        if splits is not None and node in splits:
            l, u, contradicted = apply_splits(l, u, splits[node])
            infeasible |= contradicted
        relaxations[node] = relax(layer, l, u)
        lower[node], upper[node] = activate(layer, l), activate(layer, u)
    return LayerBounds(lower, upper, relaxations, infeasible)


def spec_bounds(
    net: Network,
    lo: torch.Tensor,
    hi: torch.Tensor,
    C: torch.Tensor,
    d: torch.Tensor,
    layer_bounds: LayerBounds,
    alpha_steps: int = 0,
    record: bool = False,
    splits: Mapping[int, torch.Tensor] | None = None,
) -> Backsub:
    """Lower bounds of C @ y - d ([D, k]) over each box, from precomputed intermediate
    bounds; with `alpha_steps`, ReLU lower slopes are optimized per row by projected
    gradient ascent on the bound (every slope in range is sound, so any iterate is).
    `splits` ([D, size] in {-1, 0, 1} per activation node, as given to intermediate_bounds)
    adds beta-CROWN terms: for a split s * z >= 0 and beta >= 0, min f >= min (f - beta s z)
    over the sub-domain, and the betas are optimized with the slopes."""
    D = lo.shape[0]
    lam = C.expand(D, -1, -1) if C.dim() == 2 else C
    const = -(d.expand(D, -1) if d.dim() == 1 else d)
    out = len(net.layers)
    if alpha_steps <= 0:
        return backsubstitute(net, out, lam, const, lo, hi, layer_bounds.relaxations, record)
    k = lam.shape[1]
    alphas: dict[int, torch.Tensor] = {}
    betas: dict[int, torch.Tensor] = {}
    signs: dict[int, torch.Tensor] = {}
    clamped: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for node in net.activation_nodes():
        layer = net.layers[node - 1]
        if layer.kind not in ("relu", "leaky_relu"):  # type: ignore[union-attr]
            continue
        base = layer_bounds.relaxations[node].lower_slope
        alphas[node] = base.expand(D, k, -1).clone().requires_grad_(True)
        pre = layer.parent  # type: ignore[union-attr]
        l, u = layer_bounds.lower[pre], layer_bounds.upper[pre]
        if splits is not None and node in splits and bool((splits[node] != 0).any()):
            # The relaxation must see the split decisions, as intermediate_bounds' did.
            l, u, _ = apply_splits(l, u, splits[node])
            signs[node] = splits[node].to(lo.dtype).unsqueeze(1)
            betas[node] = torch.zeros((D, k, l.shape[1]), dtype=lo.dtype, requires_grad=True)
        clamped[node] = (l, u)
    best: Backsub | None = None
    params = list(alphas.values()) + list(betas.values())
    optimizer = _Adam(params) if params else None
    for step in range(alpha_steps + 1):
        with torch.enable_grad():
            relaxations = dict(layer_bounds.relaxations)
            for node, a in alphas.items():
                relaxations[node] = relax(net.layers[node - 1], *clamped[node], a)  # type: ignore[arg-type]
            extra = {node: -b.clamp(min=0) * signs[node] for node, b in betas.items()}
            result = backsubstitute(net, out, lam, const, lo, hi, relaxations, record, extra)
            if best is None:
                best = Backsub(result.lower.detach(), result.input_coeffs.detach(), {n: v.detach() for n, v in result.at_activation.items()})
            else:
                better = result.lower.detach() > best.lower
                best.lower = torch.where(better, result.lower.detach(), best.lower)
                best.input_coeffs = torch.where(better.unsqueeze(-1), result.input_coeffs.detach(), best.input_coeffs)
                for n, v in result.at_activation.items():
                    best.at_activation[n] = torch.where(better.unsqueeze(-1), v.detach(), best.at_activation[n])
            if optimizer is None or step == alpha_steps:
                break
            grads = torch.autograd.grad(-result.lower.sum(), optimizer.params, allow_unused=True)
            optimizer.step(tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, optimizer.params)))
    assert best is not None
    return best


class _Adam:
    """Adam on a few tensors, in place (torch.optim would import torch._dynamo: ~1.5 s per
    process). Any iterate is sound: the slopes are clamped to their valid range when used."""

    def __init__(self, params: list[torch.Tensor], lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.params, self.lr, self.betas, self.t = params, lr, betas, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, grads: tuple[torch.Tensor, ...]) -> None:
        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2**self.t)).sqrt_().add_(1e-8)
                p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.t))


def _concretize(A: torch.Tensor, b: torch.Tensor, center: torch.Tensor, radius: torch.Tensor, sign: float) -> torch.Tensor:
    """min (sign=-1) or max (sign=+1) over the box of A x + b, A [D, size, n0], with margin."""
    mid = (A @ center).squeeze(-1) + b
    spread = (A.abs() @ radius).squeeze(-1)
    scale = b.abs() + (A.abs() @ (center.abs() + radius)).squeeze(-1)
    return mid + sign * (spread + REL_MARGIN * scale + ABS_MARGIN)


def _refine_unstable(
    net: Network, pre: int, l: torch.Tensor, u: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, relaxations: Mapping[int, Relaxation]
) -> tuple[torch.Tensor, torch.Tensor]:
    """CROWN bounds for just the neurons still unstable: each box bounds its own unstable
    neurons, padded to the largest count among the boxes, so the cost follows the number of
    unstable neurons while the relaxations stay shared per box (no per-row copies)."""
    unstable = (l < 0) & (u > 0)
    counts = unstable.sum(1)
    K = int(counts.max()) if counts.numel() else 0
    if K == 0:
        return l, u
    boxes = (counts > 0).nonzero().squeeze(1)
    every = boxes.numel() == l.shape[0]
    mask = unstable if every else unstable[boxes]
    B, size = mask.shape
    # The unstable units of each box first (a stable sort keeps them in order), then padding.
    units = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :K]
    valid = mask.gather(1, units)
    lam = torch.zeros((B, 2 * K, size), dtype=l.dtype)
    ones = valid.to(l.dtype).unsqueeze(-1)
    lam[:, :K].scatter_(2, units.unsqueeze(-1), ones)
    lam[:, K:].scatter_(2, units.unsqueeze(-1), -ones)
    sub = relaxations if every else {
        n: Relaxation(r.lower_slope[boxes], r.lower_bias[boxes], r.upper_slope[boxes], r.upper_bias[boxes])
        for n, r in relaxations.items()
    }
    box_lo, box_hi = (lo, hi) if every else (lo[boxes], hi[boxes])
    result = backsubstitute(net, pre, lam, torch.zeros((B, 2 * K), dtype=l.dtype), box_lo, box_hi, sub).lower
    inf = torch.tensor(float("inf"), dtype=l.dtype)
    new_l = torch.where(valid, result[:, :K], -inf)
    new_u = torch.where(valid, -result[:, K:], inf)
    l, u = l.clone(), u.clone()
    sub_l, sub_u = (l, u) if every else (l[boxes], u[boxes])
    sub_l = sub_l.scatter_reduce(1, units, new_l, reduce="amax")
    sub_u = sub_u.scatter_reduce(1, units, new_u, reduce="amin")
    if every:
        return sub_l, sub_u
    l[boxes], u[boxes] = sub_l, sub_u
    return l, u


def _forward_bounds(
    net: Network,
    lo: torch.Tensor,
    hi: torch.Tensor,
    splits: Mapping[int, torch.Tensor] | None,
    refine: bool = False,
    prior: Mapping[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> LayerBounds:
    """Every node bounded by linear functions of the input, pushed forward layer by layer
    (relaxation slopes are all >= 0, so lower functions map to lower functions). With
    `refine`, neurons these bounds leave unstable get CROWN bounds as well."""
    D, n0 = lo.shape
    center, radius = ((lo + hi) / 2).unsqueeze(-1), ((hi - lo) / 2).unsqueeze(-1)
    eye = torch.eye(n0, dtype=lo.dtype).expand(D, -1, -1)
    zero = torch.zeros((D, n0), dtype=lo.dtype)
    funcs: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {0: (eye, zero, eye, zero)}
    lower: dict[int, torch.Tensor] = {0: lo}
    upper: dict[int, torch.Tensor] = {0: hi}
    relaxations: dict[int, Relaxation] = {}
    infeasible = torch.zeros(D, dtype=torch.bool)
    for node, layer in enumerate(net.layers, start=1):
        if isinstance(layer, Affine):
            Al = Au = torch.zeros((D, layer.size, n0), dtype=lo.dtype)
            bl = bu = layer.bias.expand(D, -1)
            for p, w in zip(layer.parents, layer.weights):
                pAl, pbl, pAu, pbu = funcs[p]
                wp, wn = w.clamp(min=0), w.clamp(max=0)
                Al = Al + wp @ pAl + wn @ pAu
                Au = Au + wp @ pAu + wn @ pAl
                bl = bl + pbl @ wp.T + pbu @ wn.T
                bu = bu + pbu @ wp.T + pbl @ wn.T
            funcs[node] = (Al, bl, Au, bu)
            continue
        pre = layer.parent
        if pre not in lower:
            Al, bl, Au, bu = funcs[pre]
            l_iv, u_iv = _interval(net, pre, lower, upper) if all(p in lower for p in net.layers[pre - 1].parents) else (None, None)  # type: ignore[union-attr]
            l = _concretize(Al, bl, center, radius, -1.0)
            u = _concretize(Au, bu, center, radius, 1.0)
            if l_iv is not None and u_iv is not None:
                l_iv, u_iv = widen(l_iv, u_iv)
                l, u = torch.maximum(l, l_iv), torch.minimum(u, u_iv)
            if prior is not None and pre in prior:
                l, u = torch.maximum(l, prior[pre][0]), torch.minimum(u, prior[pre][1])
            if refine:
                l, u = _refine_unstable(net, pre, l, u, lo, hi, relaxations)
            lower[pre], upper[pre] = l, u
        l, u = lower[pre], upper[pre]
        if splits is not None and node in splits:
            l, u, contradicted = apply_splits(l, u, splits[node])
            infeasible |= contradicted
        r = relax(layer, l, u)
        relaxations[node] = r
        lower[node], upper[node] = activate(layer, l), activate(layer, u)
        Al, bl, Au, bu = funcs[pre]
        ls, lb_, us, ub_ = (t.squeeze(1) for t in (r.lower_slope, r.lower_bias, r.upper_slope, r.upper_bias))
        funcs[node] = (ls.unsqueeze(-1) * Al, ls * bl + lb_, us.unsqueeze(-1) * Au, us * bu + ub_)
    return LayerBounds(lower, upper, relaxations, infeasible)
