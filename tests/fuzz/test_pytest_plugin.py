"""The pytest plugin end to end, in real pytest sessions (pytester, in subprocesses): lazy
imports, options, the regression corpus as items (strict xfail while open, failing with the
reproducer when a fixed bug returns), the fuzz marker, the fixtures, reports and Hypothesis."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fuzz.pytest_plugin.settings import Budget, parse_budget

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
PLANTED = str(Path(__file__).with_name("planted_backends.py"))
GELU = ROOT / "corpora" / "regressions" / "wrong_result-onnxruntime-gelu-b5530641"


def _outcomes(result: pytest.RunResult) -> dict[str, int]:
    return result.parseoutcomes()


@pytest.fixture(autouse=True)
def _no_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner sessions inherit the environment; a CI variable would switch on the ci profile."""
    monkeypatch.delenv("CI", raising=False)


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "budget"),
    [("200", Budget(examples=200)), ("30s", Budget(seconds=30.0)), ("2m", Budget(seconds=120.0)),
     ("1.5h", Budget(seconds=5400.0)), (7, Budget(examples=7))],
)
def test_budgets_parse(text: str | int, budget: Budget) -> None:
    assert parse_budget(text) == budget


@pytest.mark.parametrize("text", ["", "0", "-3", "2.5", "ten", "5d"])
def test_bad_budgets_are_usage_errors(text: str) -> None:
    with pytest.raises(pytest.UsageError, match="budget"):
        parse_budget(text)


def test_the_plugin_imports_no_framework_and_reports_its_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_light="""
        import sys

        def test_nothing_heavy_was_imported():
            assert "torch" not in sys.modules and "tensorflow" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gauntlet-seed", "41")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gauntlet: seed 41 (given; rerun with --gauntlet-seed 41)"])


def test_ci_profile_fixes_the_seed_and_drops_deadlines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_profile="""
        from hypothesis import settings

        def test_profile():
            assert settings().derandomize and settings().deadline is None
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gauntlet-profile", "ci")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gauntlet: seed 0 (ci profile*"])


def test_a_ci_environment_selects_the_ci_profile(pytester: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_env="""
        from hypothesis import settings

        def test_profile():
            assert settings().derandomize
    """)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gauntlet: seed 0 (ci profile*"])


def test_bad_options_are_clear_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gauntlet-budget", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*gauntlet budget 'soon': give a number of examples*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gauntlet-corpus", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gauntlet-corpus nowhere: no such directory*"])


# --- the regression corpus ---------------------------------------------------------------------


def _corpus(pytester: pytest.Pytester, status: str, upstream: str | None = None) -> Path:
    entry = pytester.path / "corpora" / "regressions" / GELU.name
    shutil.copytree(GELU, entry)
    meta = json.loads((entry / "bug.json").read_text())
    meta["status"] = status
    if upstream:
        meta["upstream"] = upstream
    (entry / "bug.json").write_text(json.dumps(meta))
    return entry


def test_an_open_bug_is_a_strict_xfail_with_its_upstream_reference(pytester: pytest.Pytester) -> None:
    _corpus(pytester, "open", upstream="https://example.org/onnxruntime/issues/1")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines([f"XFAIL*{GELU.name}*open upstream (https://example.org/onnxruntime/issues/1)*"])
    # Naming only the test file leaves the corpus out; naming the corpus runs it alone.
    assert _outcomes(pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_x.py")) == {"passed": 1}
    assert _outcomes(pytester.runpytest_subprocess("-p", "no:cacheprovider", "corpora")) == {"xfailed": 1}


def test_a_fixed_bug_that_comes_back_fails_with_its_reproducer(pytester: pytest.Pytester) -> None:
    entry = _corpus(pytester, "fixed")
    report = pytester.path / "gauntlet.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=junit.xml",
                                           f"--gauntlet-report={report}", "corpora")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{GELU.name} reproduces: wrong_result on onnxruntime*",
                                 f"*reproducer: {entry / 'repro.py'} (seed 178)*",
                                 "*1 unique bug(s)*"])
    properties = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert properties["gauntlet_repro"] == str(entry / "repro.py") and properties["gauntlet_seed"] == "178"
    data = json.loads(report.read_text())
    assert data["schema"] == 1 and [t["outcome"] for t in data["tests"]] == ["failed"]
    assert data["unique_bugs"][0]["repro"] == str(entry / "repro.py")


def test_an_open_bug_that_no_longer_reproduces_fails_strictly(pytester: pytest.Pytester) -> None:
    entry = _corpus(pytester, "open")
    graph = json.loads((entry / "graph.json").read_text())
    graph["nodes"][0]["op"], graph["nodes"][0]["attrs"] = "relu", {}  # onnxruntime's relu is exact
    (entry / "graph.json").write_text(json.dumps(graph))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "corpora")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*open upstream*set \"status\": \"fixed\"*"])


def test_the_corpus_option_adds_a_directory(pytester: pytest.Pytester, tmp_path: Path) -> None:
    elsewhere = tmp_path / "bugs"
    shutil.copytree(GELU, elsewhere / GELU.name)
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_x.py", f"--gauntlet-corpus={elsewhere}")
    result.assert_outcomes(passed=1, xfailed=1)


# --- the fuzz marker ---------------------------------------------------------------------------


def test_a_fuzz_marked_test_runs_a_campaign_and_fails_on_a_planted_bug(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fuzz=f"""
        import pytest

        @pytest.mark.gauntlet_fuzz(budget=4, ops=["relu", "add"], backends=["torch_eager", "onnxruntime"], reduce=False)
        def test_clean(gauntlet_fuzz):
            assert gauntlet_fuzz.tests == 4 and not gauntlet_fuzz.bugs

        @pytest.mark.gauntlet_fuzz(budget=6, ops=["sum"], backends=["torch_eager", {PLANTED + ":WrongSumKeepdims"!r}],
                                   max_nodes=2, seed=3)
        def test_planted():
            pass
    """)
    report = pytester.path / "gauntlet.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--gauntlet-report={report}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*unique bug(s) in 6 tests:*", "*wrong_result on wrong_sum_keepdims (sum)*",
                                 "*run again with --gauntlet-seed 3*", "*=== Gauntlet ===*",
                                 "2 Gauntlet tests (2 fuzz); 10 graphs run; 1 unique bug(s); seed *"])
    data = json.loads(report.read_text())
    planted = next(t for t in data["tests"] if t["nodeid"].endswith("test_planted"))
    assert planted["outcome"] == "failed" and planted["graphs"] == 6
    assert Path(planted["campaign"], "campaign.db").is_file()


def test_marker_mistakes_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.gauntlet_fuzz(budget=2, ops=["no_such_op"])
        def test_bad():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*unknown operator(s) no_such_op*"])
    assert result.ret != 0


# --- fixtures ----------------------------------------------------------------------------------


def test_differential_fixture_on_torch_functions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_diff="""
        import torch

        def test_agree(differential):
            differential.assert_backends_agree(lambda x: torch.sin(x) * 2 + x, [torch.linspace(-3, 3, 50)],
                                               backends=["torch_eager", "torch_compile"])

        def planted(x):
            # a compiler that adds 1e-3 where eager does not
            return x + (1e-3 if torch.compiler.is_compiling() else 0.0)

        def test_planted(differential):
            differential.assert_backends_agree(planted, [torch.ones(4)], backends=["torch_eager", "torch_compile"])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*wrong_result on torch_compile: output 0: 4 of 4 element(s) outside tolerance*",
                                 "*reproducer: *inputs.npz (seed *"])


def test_differential_fixture_on_graphs_and_keras(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_graph="""
        import numpy as np
        import tensorflow as tf
        from generators.graph_gen import GenOptions, GraphGenerator
        from generators.ops import catalog

        def test_generated_graph(differential):
            graph = GraphGenerator(catalog(), GenOptions(max_nodes=3, ops=("add", "relu", "mul"))).generate(
                np.random.default_rng(5))
            differential.assert_backends_agree(graph, backends=["torch_eager", "onnxruntime"])

        def test_keras_eager_and_xla(differential):
            differential.assert_backends_agree(lambda x: tf.tanh(x) * x, [tf.linspace(-2.0, 2.0, 16)])
            differential.assert_backends_agree(lambda x: tf.exp(x), [np.ones(3, np.float32)],
                                               backends=["tf_eager", "tf_xla"])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*backends: onnxruntime, tf_eager, tf_xla, torch_eager*"])


def test_robustness_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_robust="""
        import numpy as np
        import pytest
        import torch

        def model():
            torch.manual_seed(0)
            net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            return net.eval()

        def test_robust(robustness):
            robustness.assert_robust(model(), np.array([[0.5, -0.25]]), eps=1e-4)

        def test_not_robust(robustness):
            with pytest.raises(AssertionError):
                robustness.assert_robust(model(), np.array([[0.5, -0.25]]), eps=100.0)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["2 Gauntlet tests (2 robustness)*"])


# --- Hypothesis ----------------------------------------------------------------------------------


def test_graphs_strategy_finds_and_shrinks_a_planted_bug(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shrink="""
        import numpy as np
        from hypothesis import given, settings
        from generators.ops import catalog
        from generators.reference import evaluate, graph_outputs
        from generators.strategies import graphs

        OPS = ("add", "exp", "relu", "neg", "mul")

        def buggy_backend(graph, arrays):
            # A planted fusion bug: relu of an add's result is off by 1 %.
            from generators.ir import NodeRef

            wrong = any(node.op == "relu" and isinstance(node.inputs[0], NodeRef)
                        and graph.nodes[node.inputs[0].node].op == "add" for node in graph.nodes)
            outs = graph_outputs(graph, evaluate(graph, arrays, catalog()), arrays)
            return [o * 1.01 + 0.01 if wrong else o for o in outs]

        @settings(max_examples=500, database=None, derandomize=True)
        @given(graphs(max_nodes=5, ops=OPS))
        def test_backend_matches_reference(graph):
            arrays = [np.full(p.type.shape, 0.5).astype(p.type.dtype.numpy()) for p in graph.placeholders]
            expected = graph_outputs(graph, evaluate(graph, arrays, catalog()), arrays)
            for got, want in zip(buggy_backend(graph, arrays), expected):
                np.testing.assert_allclose(got, want, rtol=1e-6)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    line = next(line for line in text.splitlines() if "graph (" in line and "operator(s)" in line)
    count = int(line.split("graph (")[1].split()[0])
    assert count <= 2 and "add, relu" in line, line
    assert "reproduce the graph: generators.ir.graph_from_json(" in text
