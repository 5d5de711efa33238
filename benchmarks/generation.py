"""Generation benchmark: throughput (graphs/s, one process, generation only) and validity
(fraction of graphs that run on torch eager AND tf eager without error, with every output's
shape and dtype equal to the inferred type), for graphs of 5, 10 and 20 operators.

Usage: python benchmarks/generation.py [--graphs 1000] [--sizes 5,10,20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generators.graph_gen import GenOptions, GraphGenerator  # noqa: E402
from generators.ir import Graph  # noqa: E402
from generators.ops import catalog  # noqa: E402
from generators.values import make_feed, placeholder_ranges, sample_array  # noqa: E402

NNSMITH_GRAPHS_PER_S = {5: 62.0, 10: 37.0, 20: 13.6}  # MISSION.md, same kind of machine


def throughput(size: int, graphs: int, repeats: int) -> tuple[float, GraphGenerator]:
    rates = []
    gen = GraphGenerator(catalog(), GenOptions(max_nodes=size))
    for r in range(repeats):
        gen = GraphGenerator(catalog(), GenOptions(max_nodes=size))
        start = time.perf_counter()
        for seed in range(r * graphs, (r + 1) * graphs):
            gen.generate(seed)
        rates.append(graphs / (time.perf_counter() - start))
    return statistics.median(rates), gen


def feed_for(graph: Graph, seed: int) -> list[np.ndarray]:
    """Values from the value search, or plain samples if it gives up (validity is about
    running, not about the values)."""
    cat = catalog()
    feed = make_feed(graph, np.random.default_rng(seed), cat)
    if feed is not None:
        return list(feed.arrays)
    rng = np.random.default_rng(seed)
    ranges = placeholder_ranges(graph, cat)
    return [sample_array(rng, p.type, ranges[i]) for i, p in enumerate(graph.placeholders)]


def validity(size: int, graphs: int) -> tuple[float, Counter[str], int, set[str], int]:
    from generators.materialize import tensorflow as mtf
    from generators.materialize import torch as mt

    gen = GraphGenerator(catalog(), GenOptions(max_nodes=size))
    failures: Counter[str] = Counter()
    no_stable_values = 0
    ops: set[str] = set()
    valid = 0
    for seed in range(10_000, 10_000 + graphs):
        graph = gen.generate(seed)
        ops.update(graph.op_names())
        if make_feed(graph, np.random.default_rng(seed), catalog()) is None:
            no_stable_values += 1
        arrays = feed_for(graph, seed)
        weights = {i: arrays[i] for i in graph.weight_indices}
        inputs = [arrays[i] for i in graph.input_indices]
        ok = True
        for name in ("torch", "tensorflow"):
            try:
                if name == "torch":
                    outs = mt.run(mt.to_torch(graph, weights), inputs)
                else:
                    outs = mtf.run(mtf.to_tensorflow(graph, weights), inputs)
            except Exception as exc:  # noqa: BLE001 - counting failures is the point
                failures[f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"] += 1
                ok = False
                continue
            for ref, out in zip(graph.outputs, outs):
                t = graph.type_of(ref)
                if out.shape != t.shape or out.dtype != t.dtype.numpy():
                    failures[f"{name}: wrong type for {graph.nodes[ref.node].op if hasattr(ref, 'node') else 'input'}"] += 1  # type: ignore[union-attr]
                    ok = False
        valid += ok
    return valid / graphs, failures, no_stable_values, ops, graphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=1000, help="graphs per size for validity (default 1000)")
    parser.add_argument("--rate-graphs", type=int, default=300, help="graphs per throughput repeat (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput repeats; the median is reported")
    parser.add_argument("--sizes", default="5,10,20")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"operators in the catalog: {len(catalog())}")
    print(f"{'ops/graph':>9} {'graphs/s':>9} {'NNSmith':>8} {'ratio':>6} {'fast/z3/failed insertions':>26} "
          f"{'valid':>8} {'no stable values':>16} {'op types used':>13}")
    all_ops: set[str] = set()
    for size in sizes:
        rate, gen = throughput(size, args.rate_graphs, args.repeats)
        st = gen.instantiator.stats
        frac, failures, unstable, ops, n = validity(size, args.graphs)
        all_ops |= ops
        ref = NNSMITH_GRAPHS_PER_S.get(size)
        ratio = f"{rate / ref:5.1f}x" if ref else "   -"
        print(f"{size:>9} {rate:>9.1f} {ref or '-':>8} {ratio:>6} {f'{st.fast}/{st.solved}/{st.failed}':>26} "
              f"{frac:>8.2%} {f'{unstable}/{n}':>16} {len(ops):>13}", flush=True)
        for key, count in failures.most_common(8):
            print(f"          {count:4d} x {key}")
    print(f"distinct operator types used across all sizes: {len(all_ops)}")


if __name__ == "__main__":
    main()
