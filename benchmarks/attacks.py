"""Adversarial benchmark: PGD L-inf at eps 0.1 (40 steps; 1 and 10 restarts) on the four digits
models over the 360 test samples, against torchattacks' PGD at the same parameters (when it
imports; Keras models through the adapter) and an exhaustive-restart baseline (our PGD with 100
restarts). Successes count correctly classified samples the attack flips; every success is
re-verified here, independently of the attack's own recheck.

Usage (from the repo root): PYTHONPATH=. python benchmarks/attacks.py [--seeds 3] [--baseline 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generators.inputs.adapter import ModelAdapter, adapt  # noqa: E402
from generators.inputs.adversarial import pgd  # noqa: E402
from tests.generators.inputs import digits as d  # noqa: E402

EPS, STEPS = 0.1, 40
ALPHA = 2.5 * EPS / STEPS
MODELS: dict[str, Callable[[], Any]] = {
    "torch MLP": d.torch_mlp,
    "torch CNN": d.torch_cnn,
    "Keras MLP": d.keras_mlp,
    "Keras CNN": d.keras_cnn,
}


class AdapterModule(torch.nn.Module):
    """An adapter's differentiable forward as a module, so torchattacks can attack Keras models
    through the same GradientTape bridge our PGD uses."""

    def __init__(self, adapter: ModelAdapter) -> None:
        super().__init__()
        self.adapter = adapter
        # torchattacks reads the device off the first parameter.
        self.anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter.forward(x)


def reverified(adapter: ModelAdapter, adv: np.ndarray, x: np.ndarray, y: np.ndarray) -> int:
    """How many of these candidates (one per sample in x) the model misclassifies, inside the
    eps-ball and the bounds, judged here and not by the attack's own bookkeeping."""
    if not len(adv):
        return 0
    flat = adv.reshape(len(adv), -1)
    inside = (np.abs(flat.astype(np.float64) - x.reshape(len(x), -1)).max(axis=1) <= EPS + 1e-6) & (
        (flat >= 0) & (flat <= 1)
    ).all(axis=1)
    return int(((adapter.predict(adv) != y) & inside).sum())


# found, re-verified here, seconds, rejected by our own recheck, the fooled sample indices
Run = tuple[int, int, float, int, frozenset[int]]


def ours(adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, restarts: int, seed: int) -> Run:
    start = time.perf_counter()
    result = pgd(adapter, x, y, eps=EPS, steps=STEPS, restarts=restarts, seed=seed)
    seconds = time.perf_counter() - start
    verified = reverified(adapter, result.x, x[result.source], y[result.source])
    return (
        len(result),
        verified,
        seconds,
        int(result.params["rejected_on_recheck"]),
        frozenset(result.source.tolist()),
    )


def reference(
    model: torch.nn.Module, adapter: ModelAdapter, x: np.ndarray, y: np.ndarray, restarts: int, seed: int
) -> Run:
    """torchattacks' PGD (random start, success judged on the last iterate), restarts as
    independent runs with successes pooled, over the samples the model gets right."""
    import torchattacks

    correct = np.flatnonzero(adapter.predict(x) == y)
    xs, ys = torch.from_numpy(x[correct]), torch.from_numpy(y[correct])
    start = time.perf_counter()
    torch.manual_seed(seed)
    attack = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)
    best = x[correct].copy()
    fooled = np.zeros(len(correct), dtype=bool)
    for _ in range(restarts):
        adv = attack(xs, ys).detach().numpy().astype(np.float32)
        hit = (adapter.predict(adv) != y[correct]) & ~fooled
        best[hit], fooled[hit] = adv[hit], True
    seconds = time.perf_counter() - start
    verified = reverified(adapter, best[fooled], x[correct][fooled], y[correct][fooled])
    return int(fooled.sum()), verified, seconds, 0, frozenset(correct[fooled].tolist())


def cell(runs: list[Run]) -> str:
    found = [r[0] for r in runs]
    verified = "all" if all(r[0] == r[1] for r in runs) else f"{sum(r[1] for r in runs)}/{sum(found)}"
    spread = (
        f"{statistics.mean(found):5.1f} [{min(found)}-{max(found)}]" if len(runs) > 1 else f"{found[0]:5d}"
    )
    return f"{spread} {verified} {statistics.median(r[2] for r in runs):.2f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="seeds (0..n-1) of each 1- and 10-restart run")
    parser.add_argument("--baseline", type=int, default=100, help="restarts of the exhaustive baseline")
    args = parser.parse_args()
    _, _, x, y = d.digits()
    try:
        import torchattacks

        print(f"torch {torch.__version__}, torchattacks {torchattacks.__version__}")
        have_reference = True
    except ImportError as error:
        print(
            f"torch {torch.__version__}; torchattacks not importable ({error}): reference = the baseline only"
        )
        have_reference = False
    print(
        f"PGD L-inf eps={EPS}, steps={STEPS}, step={ALPHA:.5f}, {len(x)} test samples, seeds 0..{args.seeds - 1}.\n"
        "Cell: successes (mean [min-max] over seeds), how many re-verified here, median seconds per run."
    )
    seeds = range(args.seeds)
    columns = ["ours r=1", "torchattacks r=1", "ours r=10", "torchattacks r=10", f"ours r={args.baseline}"]
    header = (
        f"{'model':10} {'right':>5} "
        + " ".join(f"{c:>27}" for c in columns)
        + f" {'rejected':>8} {'ref-only':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, factory in MODELS.items():
        model = factory()
        adapter = adapt(model, d.SHAPE, description=name)
        target = model if isinstance(model, torch.nn.Module) else AdapterModule(adapter)
        runs: dict[str, list[Run]] = {}
        for restarts in (1, 10):
            runs[f"ours r={restarts}"] = [ours(adapter, x, y, restarts, s) for s in seeds]
            if have_reference:
                runs[f"torchattacks r={restarts}"] = [
                    reference(target, adapter, x, y, restarts, s) for s in seeds
                ]
        runs[f"ours r={args.baseline}"] = [ours(adapter, x, y, args.baseline, 0)]
        right = int((adapter.predict(x) == y).sum())
        rejected = sum(r[3] for group in runs.values() for r in group)
        # samples torchattacks fooled and our PGD (same seed, same restarts) did not, over all runs.
        missed = sum(
            len(theirs[4] - mine[4])
            for restarts in (1, 10)
            for mine, theirs in zip(runs[f"ours r={restarts}"], runs.get(f"torchattacks r={restarts}", []))
        )
        cells = " ".join(f"{cell(runs[c]) if c in runs else 'n/a':>27}" for c in columns)
        print(f"{name:10} {right:5d} {cells} {rejected:8d} {missed if have_reference else 'n/a':>8}")
    print(
        "right = correctly classified test samples (the ones attacked); rejected = our successes dropped by our "
        "own float32 recheck;\nref-only = samples torchattacks fooled that our PGD with the same seed and restarts did "
        "not, summed over runs.\nKeras models are attacked by torchattacks through the adapter's GradientTape bridge."
    )


if __name__ == "__main__":
    main()
