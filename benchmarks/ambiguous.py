"""Ambiguous-input figures on the digits models: per label model and class pair, how many inputs
were kept of those attempted, how many are distinct (no other kept input of the pair within an
RMS pixel difference of 0.06), how uncertain independently trained judges are on them (median
top-2 probability gap, fraction below 0.3, against the same on real test digits), and seconds.
The judges are never given to the generator; the last two were added after the generator's
settings were chosen, as a check on tuning to the first three.
Writes an image grid: one row per (label model, pair); two real digits of the pair, then samples.

    PYTHONPATH=. python benchmarks/ambiguous.py
    PYTHONPATH=. python benchmarks/ambiguous.py --models torch_mlp --pairs 3,8 4,9 --per-pair 16
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.ambiguous import ambiguous
from generators.png import png
from tests.generators.inputs import digits as d

LABEL_MODELS: dict[str, Callable[[], Any]] = {
    "torch_mlp": d.torch_mlp,
    "keras_mlp": d.keras_mlp,
    "torch_cnn": d.torch_cnn,
}
# judges never share a (framework, architecture, seed) with a label model above
JUDGES: dict[str, Callable[[], Any]] = {
    "torch_cnn(seed=1)": lambda: d.torch_cnn(seed=1),
    "keras_cnn": d.keras_cnn,
    "torch_mlp(seed=1)": lambda: d.torch_mlp(seed=1),
    "keras_mlp(seed=1)": lambda: d.keras_mlp(seed=1),
    "torch_cnn(seed=2)": lambda: d.torch_cnn(seed=2),
}
DISTINCT = 0.06  # RMS pixel difference below which two samples count as one


def top2_gap(probabilities: np.ndarray) -> np.ndarray:
    ordered = np.sort(probabilities, axis=1)
    return np.asarray(ordered[:, -1] - ordered[:, -2])


def distinct(x: np.ndarray) -> int:
    """How many samples remain after greedily dropping any within DISTINCT of one kept before."""
    flat = x.reshape(len(x), int(np.prod(x.shape[1:])))
    kept: list[int] = []
    for i in range(len(flat)):
        if not kept or np.sqrt(((flat[kept] - flat[i]) ** 2).mean(axis=1)).min() >= DISTINCT:
            kept.append(i)
    return len(kept)


def tile(image: np.ndarray) -> np.ndarray:
    """One 8x8 sample as a grey tile, upscaled 8x with a dark border."""
    return np.pad(np.kron(np.clip(image.reshape(8, 8), 0, 1), np.ones((8, 8))), 2, constant_values=0.25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(LABEL_MODELS), help="label models, comma-separated")
    parser.add_argument("--pairs", nargs="+", default=["3,8", "4,9", "1,7", "3,5", "2,8"])
    parser.add_argument("--per-pair", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ambiguous/grid.png"))
    args = parser.parse_args()
    # tiny batches run several times slower with two threads when other processes share the cores
    torch.set_num_threads(1)
    begun = time.perf_counter()
    pairs = [tuple(int(c) for c in p.split(",")) for p in args.pairs]

    x_train, y_train, x_test, _ = d.digits()
    judges: dict[str, ModelAdapter] = {name: adapt(make(), d.SHAPE) for name, make in JUDGES.items()}
    print("real test digits: judge median top-2 gap / fraction below 0.3")
    for name, judge in judges.items():
        gap = top2_gap(judge.probabilities(x_test))
        print(f"  {name:18s} {np.median(gap):.3f} / {(gap < 0.3).mean():.1%}")

    width = 2 + args.per_pair
    rows: list[np.ndarray] = []
    totals: dict[str, list[float]] = {name: [] for name in judges}
    for model_name in args.models.split(","):
        adapter = adapt(LABEL_MODELS[model_name](), d.SHAPE, description=model_name)
        started = time.perf_counter()
        made = ambiguous(
            adapter, x_train, y_train, pairs=pairs, per_pair=args.per_pair, epochs=args.epochs, seed=args.seed
        )
        seconds = time.perf_counter() - started
        print(f"\nlabel model {model_name}: {len(made)} inputs in {seconds:.1f} s")
        header = "".join(f" | {name:>17s} med  <0.3" for name in judges)
        print(f"  pair  kept/tried dist   s  {header}")
        of = np.array(made.params["pair_of_input"], dtype=np.int64).reshape(-1, 2)
        for report in made.params["per_pair_report"]:
            a, b = report["pair"]
            chosen = (of == (a, b)).all(axis=1)
            cells = ""
            for name, judge in judges.items():
                if chosen.any():
                    gap = top2_gap(judge.probabilities(made.x[chosen]))
                    totals[name].extend(gap.tolist())
                    cells += f" | {'':>12s}{np.median(gap):5.2f} {(gap < 0.3).mean():5.0%}"
                else:
                    cells += f" | {'':>12s}   -      -"
            print(
                f"  {a},{b}  {report['kept']:4d}/{report['attempted']:<4d} {distinct(made.x[chosen]):4d} "
                f"{report['seconds']:4.1f}{cells}"
            )
            real = [x_train[np.flatnonzero(y_train == c)[0]] for c in (a, b)]
            samples = list(made.x[chosen][: args.per_pair])
            blanks = [np.zeros(d.SHAPE, np.float32)] * (args.per_pair - len(samples))
            rows.append(np.concatenate([tile(t) for t in [*real, *samples, *blanks]], axis=1))
        rows.append(np.full((8, rows[-1].shape[1]), 0.5))  # separates label models
    print("\nall label models and pairs together: judge median gap / fraction below 0.3")
    for name, gaps in totals.items():
        if gaps:
            print(
                f"  {name:18s} {statistics.median(gaps):.3f} / {np.mean(np.array(gaps) < 0.3):.1%} of {len(gaps)}"
            )

    grid = np.concatenate(rows[:-1], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png((grid * 255).round().astype(np.uint8)))
    print(
        f"\ngrid ({len(rows) - len(args.models.split(','))} rows of 2 real digits + {width - 2} samples): {args.out}"
    )
    print(f"total {time.perf_counter() - begun:.0f} s (one torch thread)")


if __name__ == "__main__":
    main()
