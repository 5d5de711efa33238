"""Fooling-input benchmark on the digits models (torch MLP / CNN, Keras MLP / CNN): per model and
method, the classes reached at >= the confidence, the median confidence, the median seconds per
class (each class searched on its own), and how far the inputs lie from the training data
(median L2 distance to the nearest training sample vs the training set's own median
nearest-neighbour distance). Writes one grid PNG per method (rows: models, columns: classes).

Usage (from the repo root): PYTHONPATH=. python benchmarks/fooling.py [--out runs/fooling/] [--seed 0]
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
from generators.inputs.fooling import METHODS, fooling, nominal_spacing  # noqa: E402
from generators.png import png  # noqa: E402
from tests.generators.inputs import digits  # noqa: E402

MODELS: dict[str, Callable[[], Any]] = {
    "torch MLP": digits.torch_mlp,
    "torch CNN": digits.torch_cnn,
    "Keras MLP": digits.keras_mlp,
    "Keras CNN": digits.keras_cnn,
}
SCALE = 8  # 8x8 digits become 64x64 tiles
GAP = 4


def run(adapter: ModelAdapter, method: str, seed: int, confidence: float, train: np.ndarray) -> dict[str, Any]:
    """Every class searched on its own (classes reached, seconds per class), then all classes in
    one call (whose evolutionary archive shares its evaluations between classes)."""
    reached = 0
    seconds = []
    for c in range(adapter.num_classes):
        start = time.perf_counter()
        reached += len(fooling(adapter, method=method, classes=[c], confidence=confidence, seed=seed)) > 0
        seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    together = fooling(adapter, method=method, confidence=confidence, seed=seed, reference=train)
    together_s = time.perf_counter() - start
    # confidence, distance and the grid come from the all-at-once call, where each class starts
    # from its own noise (single-class calls with one seed all start from the same noise)
    targets = together.params["targets"]
    confidences = [float(p[t]) for p, t in zip(together.predicted, targets)]
    distances = together.params["nearest_reference_distance"]
    tiles = {int(t): x[0] for t, x in zip(targets, together.x)}
    return {
        "reached": reached,
        "confidence": statistics.median(confidences) if confidences else float("nan"),
        "seconds": statistics.median(seconds),
        "distance": statistics.median(distances) if distances else float("nan"),
        "together_reached": len(together),
        "together_s": together_s,
        "together_evaluations": together.params["evaluations"],
        "tiles": tiles,
    }


def grid(rows: list[dict[int, np.ndarray]], classes: int, bounds: tuple[float, float]) -> np.ndarray:
    """uint8 grey image: one row per model, one tile per class (black where none was found)."""
    low, high = bounds
    tile = 8 * SCALE
    image = np.full((len(rows) * (tile + GAP) + GAP, classes * (tile + GAP) + GAP), 255, dtype=np.uint8)
    for r, tiles in enumerate(rows):
        for c in range(classes):
            pixels = tiles.get(c, np.zeros((8, 8), dtype=np.float32))
            grey = np.round(255 * (pixels - low) / (high - low)).clip(0, 255)
            top, left = GAP + r * (tile + GAP), GAP + c * (tile + GAP)
            image[top : top + tile, left : left + tile] = np.kron(grey, np.ones((SCALE, SCALE))).astype(np.uint8)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/fooling/"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--confidence", type=float, default=0.99)
    args = parser.parse_args()
    # one thread: on shared cores two contending torch threads slow the models down many times
    torch.set_num_threads(1)
    train = digits.digits()[0]
    spacing = nominal_spacing(train)
    print(f"digits: {len(train)} training samples, nominal nearest-neighbour distance (median) {spacing:.3f}")
    print(
        f"confidence >= {args.confidence}, seed {args.seed}, default budgets; 'reached' and 's/cls': each class "
        "searched alone; confidence, distance and the all-at-once columns: one call for all classes"
    )
    header = (
        f"{'model':<10} {'method':<10} {'reached':>7} {'med conf':>9} {'med s/cls':>9} {'med NN dist':>11} "
        f"{'nominal':>7} | {'all-at-once':>11} {'s':>6} {'evals':>6}"
    )
    print(header)
    print("-" * len(header))
    tiles: dict[str, list[dict[int, np.ndarray]]] = {m: [] for m in METHODS}
    for name, factory in MODELS.items():
        adapter = adapt(factory(), digits.SHAPE, description=name)
        for method in METHODS:
            row = run(adapter, method, args.seed, args.confidence, train)
            tiles[method].append(row["tiles"])
            print(
                f"{name:<10} {method:<10} {row['reached']:>4}/{adapter.num_classes:<2} {row['confidence']:>9.5f} "
                f"{row['seconds']:>9.3f} {row['distance']:>11.3f} {spacing:>7.3f} | "
                f"{row['together_reached']:>8}/{adapter.num_classes:<2} {row['together_s']:>6.2f} "
                f"{row['together_evaluations']:>6}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    for method in METHODS:
        path = args.out / f"fooling_{method}.png"
        path.write_bytes(png(grid(tiles[method], digits.CLASSES, (0.0, 1.0))))
        print(f"grid ({', '.join(MODELS)} by class 0..9): {path}")


if __name__ == "__main__":
    main()
