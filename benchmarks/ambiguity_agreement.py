"""How far independently trained digits models agree on what is ambiguous: the ceiling any
ambiguous-input generator meets when it is judged by one more such model.

1. Real test digits: for every ordered pair of models (A, B), the fraction of digits A finds
   ambiguous (top-2 probability gap below 0.3) that B finds ambiguous too.
2. The generator's candidates: every input of a large ambiguous() run whose label model and
   auxiliary ensemble put the pair on top (no spacing, no per-pair cap). For each judge, the
   fraction of candidates it finds ambiguous among those that k or more of the other judges find
   ambiguous. The other judges were never shown to the generator, so keeping only what they
   agree on is the best any selection by model agreement can do; if even that stays well below
   a target, no filter of this kind reaches it.

    PYTHONPATH=. python benchmarks/ambiguity_agreement.py
    PYTHONPATH=. python benchmarks/ambiguity_agreement.py --pairs 3,8 1,7 --candidates 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.ambiguous import JUDGES, LABEL_MODELS, top2_gap
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.ambiguous import ambiguous
from tests.generators.inputs import digits as d

GAP = 0.3


def uncertain(models: dict[str, ModelAdapter], x: np.ndarray) -> np.ndarray:
    """[models, samples]: whether each model's top-2 gap on each sample is below GAP."""
    return np.stack([top2_gap(m.probabilities(x)) < GAP for m in models.values()])


def conditional_table(names: list[str], flags: np.ndarray) -> None:
    """Row A, column B: P(B ambiguous | A ambiguous), with how many samples A finds ambiguous."""
    print(f"  {'given / also':20s} {'n':>4s} " + " ".join(f"{n[:9]:>9s}" for n in names))
    off_diagonal: list[float] = []
    for i, name in enumerate(names):
        given = flags[i]
        cells = []
        for j in range(len(names)):
            value = float(flags[j][given].mean()) if given.any() else float("nan")
            if i != j and given.any():
                off_diagonal.append(value)
            cells.append(f"{value:9.2f}")
        print(f"  {name:20s} {int(given.sum()):4d} " + " ".join(cells))
    print(f"  mean over ordered pairs of different models: {np.mean(off_diagonal):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="torch_mlp", choices=list(LABEL_MODELS), help="label model of the generator")
    parser.add_argument("--pairs", nargs="+", default=["3,8", "4,9", "1,7", "3,5", "2,8"])
    parser.add_argument("--candidates", type=int, default=400, help="candidate codes per pair")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny batches run slower on two threads when other jobs share the cores
    begun = time.perf_counter()
    x_train, y_train, x_test, _ = d.digits()
    label = adapt(LABEL_MODELS[args.model](), d.SHAPE, description=args.model)
    judges = {name: adapt(make(), d.SHAPE) for name, make in JUDGES.items()}

    print(f"1. real test digits ({len(x_test)}): P(column ambiguous | row ambiguous), gap < {GAP}")
    models = {args.model: label, **judges}
    conditional_table(list(models), uncertain(models, x_test))

    pairs = [tuple(int(c) for c in p.split(",")) for p in args.pairs]
    made = ambiguous(
        label, x_train, y_train, pairs=pairs, per_pair=args.candidates, candidates=args.candidates,
        gap=0.2, auxiliary_gap=1.0, spacing=0.0, seed=args.seed,
    )
    flags = uncertain(judges, made.x)
    names = list(judges)
    print(f"\n2. generator candidates the label model splits (gap < 0.2) with the pair on top of the "
          f"auxiliary mean: {len(made)} of {made.params['attempted']}")
    print(f"  {'judge':20s} {'alone':>6s} " + " ".join(f"{'>=' + str(k) + ' others':>13s}" for k in range(1, len(names))))
    for i, name in enumerate(names):
        others = np.delete(flags, i, axis=0).sum(axis=0)
        cells = []
        for k in range(1, len(names)):
            chosen = others >= k
            cells.append(f"{flags[i][chosen].mean():6.2f} n={int(chosen.sum()):4d}" if chosen.any() else f"{'-':>13s}")
        print(f"  {name:20s} {flags[i].mean():6.2f} " + " ".join(cells))
    print(f"\ntotal {time.perf_counter() - begun:.0f} s (one torch thread)")


if __name__ == "__main__":
    main()
