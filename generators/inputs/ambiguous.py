"""Ambiguous inputs, AmbiGuess-style (Weiss, García Gómez & Tonella, 2022): per class pair a small
regularized adversarial autoencoder (generators/inputs/aae.py), gradient-guided search in its latent
space for codes the label model and an auxiliary ensemble trained on the user's data
(generators/inputs/ensemble.py) split evenly between the pair, and re-verified filtering."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from generators.errors import GauntletError
from generators.inputs.aae import AAESettings, PairAAE, train_pair_aae
from generators.inputs.adapter import ModelAdapter
from generators.inputs.ensemble import EnsembleSettings, train_auxiliaries
from generators.inputs.result import HardInputs

__all__ = ["ambiguous", "confused_pairs"]

Pair = tuple[int, int]
MIN_PER_CLASS = 10  # fewer samples than this cannot shape a class's latent mode


def confused_pairs(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, count: int) -> list[Pair]:
    """The `count` class pairs the model mixes up most on (x, y): for each pair (a, b), the mean
    probability the model gives b on samples of a plus the mean it gives a on samples of b."""
    labels = np.asarray(y).reshape(-1)
    probabilities = adapter.probabilities(x)
    present = [c for c in range(adapter.num_classes) if (labels == c).sum() >= MIN_PER_CLASS]
    # mean[c, k]: average probability of class k on samples labelled c
    mean = np.zeros((adapter.num_classes, adapter.num_classes))
    for c in present:
        mean[c] = probabilities[labels == c].mean(axis=0)
    scored = sorted(
        ((mean[a, b] + mean[b, a], a, b) for a, b in itertools.combinations(present, 2)), key=lambda t: -t[0]
    )
    return [(a, b) for _, a, b in scored[:count]]


def _pairs(
    adapter: ModelAdapter,
    x: np.ndarray,
    labels: np.ndarray,
    pairs: Sequence[Sequence[int]] | str | None,
    default: int,
) -> list[Pair]:
    classes = adapter.num_classes
    if pairs is None:
        chosen = confused_pairs(adapter, x, labels, default)
        if not chosen:
            raise GauntletError(
                f"no two classes have {MIN_PER_CLASS} or more samples each; give more samples"
            )
        return chosen
    if isinstance(pairs, str):
        if pairs != "all":
            raise GauntletError(
                f"pairs={pairs!r}: give a list of (a, b) class pairs, 'all', or None for the most confused"
            )
        present = [c for c in range(classes) if (labels == c).sum() >= MIN_PER_CLASS]
        return list(itertools.combinations(present, 2))
    result: list[Pair] = []
    for pair in pairs:
        if len(pair) != 2:
            raise GauntletError(f"pair {tuple(pair)} must name exactly two classes")
        a, b = (int(c) for c in pair)
        if a == b:
            raise GauntletError(f"pair ({a}, {b}) names one class twice; an ambiguous input needs two")
        for c in (a, b):
            if not 0 <= c < classes:
                raise GauntletError(
                    f"class {c} in pair ({a}, {b}) is outside the model's classes 0..{classes - 1}"
                )
            count = int((labels == c).sum())
            if count < MIN_PER_CLASS:
                raise GauntletError(
                    f"class {c} has {count} samples; the pair autoencoder needs at least {MIN_PER_CLASS}"
                )
        if (a, b) not in result and (b, a) not in result:
            result.append((a, b))
    if not result:
        raise GauntletError("pairs is empty; give at least one (a, b) class pair")
    return result


def _seed(seed: int, a: int, b: int) -> int:
    """One pair's seed: independent of which other pairs are asked for."""
    return int(np.random.SeedSequence([seed, a, b]).generate_state(1)[0])


Forward = Callable[[torch.Tensor], torch.Tensor]


def _log_ratio(logits: torch.Tensor, a: int, b: int) -> torch.Tensor:
    log_p = torch.log_softmax(logits, dim=1)
    return log_p[:, a] - log_p[:, b]


def _search(
    views: Sequence[Forward],
    helpers: Sequence[Forward],
    aae: PairAAE,
    a: int,
    b: int,
    start: torch.Tensor,
    steps: int,
    step_size: float,
    prior_weight: float,
    jitter: float,
    ensemble_weight: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Move latent codes toward points every view (the label model and any reference models)
    splits evenly between a and b while the pair keeps most of the probability, and where the
    auxiliary models (`helpers`) are balanced on average; a prior term keeps codes where the
    decoder was trained. The balance is asked of a small neighbourhood (a jittered copy), not a
    single knife-edge point."""
    z = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=step_size)
    for _ in range(steps):
        noise = jitter * torch.randn(z.shape, generator=generator)
        decoded = aae.decode(torch.cat([z, z + noise]))
        loss = -prior_weight * aae.prior_log_density(z).sum()
        for view in views:
            log_p = torch.log_softmax(view(decoded), dim=1)
            balance = (log_p[:, a] - log_p[:, b]) ** 2
            pair_mass = -torch.logsumexp(log_p[:, [a, b]], dim=1)
            loss = loss + (balance + pair_mass).sum() / len(views)
        if helpers and ensemble_weight > 0:
            # the ensemble's mean log-ratio, not each member's: asking every member to balance
            # exactly pulls codes off the label model's boundary where the members disagree
            mean_ratio = torch.stack([_log_ratio(h(decoded), a, b) for h in helpers]).mean(0)
            loss = loss + ensemble_weight * (mean_ratio**2).sum()
        # gradient w.r.t. the codes only: the user's model must not accumulate .grad
        (grad,) = torch.autograd.grad(loss, z)
        optimiser.zero_grad()
        z.grad = grad
        optimiser.step()
    return z.detach()


def _spread_out(order: np.ndarray, flat: np.ndarray, count: int, spacing: float) -> list[int]:
    """Up to `count` indices taken in `order`, skipping any closer than `spacing` (root mean
    square difference per value) to one already taken: near-copies of one lucky point would
    make a set look more ambiguous than the generator is."""
    taken: list[int] = []
    for i in order:
        if len(taken) == count:
            break
        if taken and np.sqrt(((flat[taken] - flat[i]) ** 2).mean(axis=1)).min() < spacing:
            continue
        taken.append(int(i))
    return taken


def ambiguous(
    adapter: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    pairs: Sequence[Sequence[int]] | str | None = None,
    per_pair: int = 10,
    seed: int = 0,
    epochs: int = 150,
    gap: float = 0.2,
    mass: float = 0.8,
    candidates: int | None = None,
    steps: int = 150,
    step_size: float = 0.05,
    prior_weight: float = 0.1,
    jitter: float = 0.0,
    references: Sequence[ModelAdapter] = (),
    reference_gap: float = 0.3,
    auxiliary: int = 8,
    auxiliary_gap: float = 0.3,
    ensemble_weight: float = 0.5,
    spacing: float = 0.06,
    ensemble: EnsembleSettings | None = None,
    default_pairs: int = 5,
    settings: AAESettings | None = None,
) -> HardInputs:
    """Up to `per_pair` ambiguous inputs for each class pair. `pairs`: a list of (a, b), "all"
    (every pair of classes with samples), or None for the `default_pairs` pairs the model
    confuses most on (x, y).

    First `auxiliary` small classifiers (`ensemble`) are trained on (x, y): ambiguity that one
    model alone sees rarely transfers to another, ambiguity several agree on does more often.
    Per pair, an autoencoder (`settings`, `epochs`) is trained on the pair's samples and
    `candidates` codes (default 40 * per_pair) between the two class modes are moved `steps`
    Adam steps of `step_size` toward the label model's balance plus `ensemble_weight` times the
    auxiliary models' mean balance. A decoded input qualifies when the label model's top two
    classes are exactly the pair, |p_a - p_b| / (p_a + p_b) < `gap` and p_a + p_b >= `mass`
    (re-verified on the returned float32 inputs), and the auxiliary models' mean probability
    puts the pair on top with a split below `auxiliary_gap`. Qualifying inputs are taken in
    order of the auxiliary models' mean squared log-ratio log(p_a / p_b) (most agreed first),
    skipping any within `spacing` (root mean square, in units of the bounds' width) of one
    already taken. `references`: further models that must each also put the pair on top with a
    split below `reference_gap` (they join the search too). `epochs` overrides
    `settings.epochs`. Labels are 0.5 / 0.5 on the pair; `params["pair_of_input"]` names each
    input's pair and `params["auxiliary_balanced"]` how many auxiliary models split each input
    below `auxiliary_gap`."""
    xs = adapter.as_batch(x)
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    if len(labels) != len(xs):
        raise GauntletError(f"{len(xs)} samples but {len(labels)} labels")
    if per_pair < 1 or steps < 0 or epochs < 1 or auxiliary < 0:
        raise GauntletError(
            f"per_pair ({per_pair}) and epochs ({epochs}) must be at least 1, steps ({steps}) "
            f"and auxiliary ({auxiliary}) at least 0"
        )
    if not 0.0 < gap <= 1.0 or not 0.0 <= mass <= 1.0 or not 0.0 < auxiliary_gap <= 1.0:
        raise GauntletError(
            f"gap ({gap}) and auxiliary_gap ({auxiliary_gap}) must be in (0, 1] and mass ({mass}) in [0, 1]"
        )
    if ensemble_weight < 0 or spacing < 0:
        raise GauntletError(f"ensemble_weight ({ensemble_weight}) and spacing ({spacing}) must be at least 0")
    low, high = adapter.bounds
    if len(xs) and (xs.min() < low - 1e-6 or xs.max() > high + 1e-6):
        raise GauntletError(
            f"the samples span [{xs.min():.4g}, {xs.max():.4g}], outside the bounds [{low:.4g}, {high:.4g}]"
        )
    chosen = _pairs(adapter, xs, labels, pairs, default_pairs)
    base = settings if settings is not None else AAESettings()
    aae_settings = dataclasses.replace(base, epochs=epochs)
    tries = candidates if candidates is not None else 40 * per_pair
    if tries < 1:
        raise GauntletError(f"candidates ({tries}) must be at least 1")

    for reference in references:
        if reference.input_shape != adapter.input_shape or reference.num_classes != adapter.num_classes:
            raise GauntletError(
                f"reference {reference.description} takes {reference.input_shape} with {reference.num_classes} classes; "
                f"the label model takes {adapter.input_shape} with {adapter.num_classes}"
            )
    views: list[Forward] = [adapter.forward, *(r.forward for r in references)]
    ensemble_settings = ensemble if ensemble is not None else EnsembleSettings()
    started = time.perf_counter()
    helpers = train_auxiliaries(
        xs, labels, adapter.input_shape, adapter.bounds, adapter.num_classes, auxiliary, ensemble_settings, seed
    )
    ensemble_seconds = time.perf_counter() - started

    kept_x: list[np.ndarray] = []
    kept_pairs: list[Pair] = []
    kept_agreement: list[int] = []
    report: list[dict[str, Any]] = []
    for a, b in chosen:
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(_seed(seed, a, b))
        member = (labels == a) | (labels == b)
        side = (labels[member] == b).astype(np.int64)
        aae, losses = train_pair_aae(
            xs[member], side, adapter.input_shape, adapter.bounds, aae_settings, generator
        )
        # starting codes spread between the two modes, where the decoder passes from one class to the other
        spread = aae_settings.separation
        start = torch.randn(tries, aae_settings.latent, generator=generator)
        start[:, 0] = (torch.rand(tries, generator=generator) * 2 - 1) * spread
        z = _search(
            views,
            [h.forward for h in helpers],
            aae,
            a,
            b,
            start,
            steps,
            step_size,
            prior_weight,
            jitter,
            ensemble_weight,
            generator,
        )
        with torch.no_grad():
            decoded = adapter.clip(aae.decode(z)).numpy().astype(np.float32)
        ok = _balanced(adapter.probabilities(decoded), a, b, gap, mass)
        for reference in references:
            ok &= _balanced(reference.probabilities(decoded), a, b, reference_gap, mass)
        label_balanced = int(ok.sum())
        agreement = np.zeros(tries, dtype=np.int64)
        disagreement = np.zeros(tries)
        if helpers:
            helper_p = np.stack([h.probabilities(decoded) for h in helpers])
            ok &= _balanced(helper_p.mean(axis=0), a, b, auxiliary_gap, mass)
            agreement = np.sum([_balanced(p, a, b, auxiliary_gap, 0.0) for p in helper_p], axis=0)
            ratio = np.log(np.maximum(helper_p[:, :, a], 1e-12)) - np.log(np.maximum(helper_p[:, :, b], 1e-12))
            disagreement = (ratio**2).mean(axis=0)
        candidates_ok = np.flatnonzero(ok)
        order = candidates_ok[np.argsort(disagreement[candidates_ok], kind="stable")]
        flat = (decoded.reshape(tries, -1) - low) / (high - low)
        keep = np.array(_spread_out(order, flat, per_pair, spacing), dtype=np.int64)
        kept_x.append(decoded[keep])
        kept_pairs.extend([(a, b)] * len(keep))
        kept_agreement.extend(int(v) for v in agreement[keep])
        report.append(
            {
                "pair": [a, b],
                "samples": int(member.sum()),
                "attempted": tries,
                "label_balanced": label_balanced,
                "balanced": int(ok.sum()),
                "kept": len(keep),
                "seconds": round(time.perf_counter() - started, 3),
                "aae": {k: round(v, 5) for k, v in losses.items()},
            }
        )

    out = np.concatenate(kept_x) if kept_x else np.zeros((0, *adapter.input_shape), np.float32)
    out = np.ascontiguousarray(out, dtype=np.float32)
    predicted = adapter.probabilities(out) if len(out) else np.zeros((0, adapter.num_classes))
    # re-verify on exactly what is returned; drop anything that no longer passes
    final = np.array(
        [_balanced(predicted[i : i + 1], a, b, gap, mass)[0] for i, (a, b) in enumerate(kept_pairs)],
        dtype=bool,
    )
    soft = np.zeros((len(out), adapter.num_classes))
    for i, (a, b) in enumerate(kept_pairs):
        soft[i, a] = soft[i, b] = 0.5
    pair_array = np.array(kept_pairs, dtype=np.int64).reshape(-1, 2)
    return HardInputs(
        category="ambiguous",
        method="aae-latent-search",
        x=out[final],
        source=np.full(int(final.sum()), -1, dtype=np.int64),
        labels=soft[final],
        predicted=predicted[final],
        params={
            "pairs": [list(p) for p in chosen],
            "pair_of_input": pair_array[final].tolist(),
            "auxiliary_balanced": np.array(kept_agreement, dtype=np.int64)[final].tolist(),
            "per_pair": per_pair,
            "seed": seed,
            "epochs": epochs,
            "gap": gap,
            "mass": mass,
            "candidates": tries,
            "steps": steps,
            "step_size": step_size,
            "prior_weight": prior_weight,
            "jitter": jitter,
            "references": [r.description for r in references],
            "reference_gap": reference_gap,
            "auxiliary": auxiliary,
            "auxiliary_gap": auxiliary_gap,
            "ensemble_weight": ensemble_weight,
            "spacing": spacing,
            "ensemble": ensemble_settings.as_params(),
            "auxiliary_models": [
                {
                    "description": h.description,
                    "train_accuracy": round(h.train_accuracy, 4),
                    "seconds": round(h.seconds, 3),
                }
                for h in helpers
            ],
            "ensemble_seconds": round(ensemble_seconds, 3),
            "aae": aae_settings.as_params(),
            "per_pair_report": report,
            "attempted": tries * len(chosen),
            "succeeded": int(final.sum()),
        },
    )


def _balanced(probabilities: np.ndarray, a: int, b: int, gap: float, mass: float) -> np.ndarray:
    """Rows whose top two classes are exactly {a, b}, evenly split and holding most probability."""
    top2 = np.argsort(-probabilities, axis=1)[:, :2]
    on_pair = np.sort(top2, axis=1) == np.array(sorted((a, b)))
    p_a, p_b = probabilities[:, a], probabilities[:, b]
    total = p_a + p_b
    split = np.abs(p_a - p_b) / np.maximum(total, 1e-12)
    result: np.ndarray = on_pair.all(axis=1) & (split < gap) & (total >= mass)
    return result
