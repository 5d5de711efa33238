"""A rule-backed operator whose framework refuses a call its rule admits costs a generated
test only that node (and what depends on it), not the whole graph; a given graph (replay,
reduction) with a refused node is skipped, never judged or reported."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fuzz.campaign import CampaignConfig
from fuzz.execute import CaseJob, GraphJob, WorkerConfig, run_test, setup
from generators.graph_gen import GraphGenerator
from generators.ir import graph_from_json
from generators.reference import ReferenceRejects
from generators.values import sound_feed

RULES = str(Path(__file__).resolve().parents[2] / "corpora" / "rules" / "torch" / "2.13.0")


def refused_seeds(count: int):  # type: ignore[no-untyped-def]
    """Seeds (with their graph and the refusing node) whose generated graph a framework refuses."""
    state = setup(WorkerConfig(backends=("torch_eager",), rules=RULES))
    options = CampaignConfig(backends=("torch_eager",), rules=RULES).options()
    generator = GraphGenerator(state.catalog, options)
    found = []
    for seed in range(200):
        graph = generator.generate(seed)
        try:
            sound_feed(graph, np.random.default_rng(seed), state.catalog)
        except ReferenceRejects as refused:
            assert refused.node is not None and "(" in graph.nodes[refused.node].op  # a rule-backed operator
            found.append((seed, graph, refused.node))
            if len(found) == count:
                break
    return state, options, found


@pytest.fixture(scope="module")
def refused():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # framework UserWarnings from refused calls
        return refused_seeds(6)


def test_a_refused_node_is_dropped_and_the_rest_is_tested(refused) -> None:  # type: ignore[no-untyped-def]
    state, options, found = refused
    assert len(found) == 6, "the shipped torch rules should produce refused calls within 200 seeds"
    tested = 0
    for seed, graph, _ in found:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run_test(CaseJob(seed, options, ("torch_eager",)), lambda _: None, state)
        assert not isinstance(result, dict)
        if result.verdict is None:
            continue
        tested += 1
        ran = graph_from_json(result.graph_json)
        assert len(ran.nodes) < len(graph.nodes)
        assert not Counter(ran.op_names()) - Counter(graph.op_names())  # only nodes were removed
        assert result.feed is None or len(result.feed) == len(ran.placeholders)
    assert tested >= 3, f"only {tested} of 6 refused graphs were tested after dropping nodes"


def test_a_given_graph_with_a_refused_node_is_skipped(refused) -> None:  # type: ignore[no-untyped-def]
    state, _, found = refused
    seed, graph, _ = found[0]
    rng = np.random.default_rng(seed)
    arrays = tuple(rng.uniform(-1, 1, p.type.shape).astype(p.type.dtype.numpy()) for p in graph.placeholders)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_test(GraphJob(seed, graph.to_json(), arrays, ("torch_eager",)), lambda _: None, state)
    assert not isinstance(result, dict)
    assert result.verdict is None and result.outcomes == ()
    assert graph_from_json(result.graph_json) == graph


def test_every_rule_backed_api_weighs_the_same_in_a_rules_campaign(refused) -> None:  # type: ignore[no-untyped-def]
    state, options, _ = refused
    weights = dict(options.op_weights)
    rule_ops = [name for name, spec in state.catalog.items() if "(" in name]
    assert sorted(weights) == sorted(rule_ops)  # hand-written operators keep weight 1
    per_api: dict[str, float] = {}
    for name, w in weights.items():
        api = state.catalog[name].reference.call.path
        per_api[api] = per_api.get(api, 0.0) + w
    assert max(per_api.values()) - min(per_api.values()) < 1e-9  # each API's signatures share one weight
    assert abs(sum(weights.values()) - len(rule_ops)) < 1e-6  # rule-backed operators keep their total share
