"""`gauntlet infer` end to end on real torch: shipped examples plus probing into a traces
file, rules inferred from it, rule-backed operators generated and accepted by torch, and a
campaign that runs them; clean errors for user mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fuzz.cli import main
from generators.instantiate import Instantiator
from generators.rules.catalog import catalog_for, op_name, rule_catalog, rule_invocation
from generators.rules.collect_torch import run, version
from generators.rules.store import read_rule_dir, read_rules
from generators.rules.trace import read_traces

APIS = ("torch.matmul", "torch.nn.functional.conv1d", "torch.nn.functional.avg_pool1d")


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("infer")
    traces = root / "traces.jsonl"
    assert main(["infer", "collect", "--framework", "torch", "--apis", ",".join(APIS), "--probes", "12",
                 "--seeds", "4", "--workers", "1", "--out", str(traces), "--quiet"]) == 0
    assert main(["infer", "rules", str(traces), "--out", str(root / "rules"), "--workers", "1", "--refine", "1",
                 "--per-op", "4", "--quiet"]) == 0
    return traces, root / "rules"


def test_collection_records_examples_and_probes(collected: tuple[Path, Path]) -> None:
    traces = list(read_traces(collected[0]))
    assert {t.invocation.api for t in traces} == set(APIS)
    refined = list(read_traces(collected[0].with_name("traces-refine.jsonl")))
    assert all(t.source == "refine" for t in refined)
    sources = {t.source.split(":")[0] for t in traces}
    assert sources == {"opinfo", "probe"}
    probes = [t for t in traces if t.source == "probe"]
    assert any(t.valid for t in probes) and any(not t.valid for t in probes)
    bad = next(t for t in probes if not t.valid)
    assert ":" in bad.error and bad.outputs == ()


def test_rules_are_written_per_api_and_load(collected: tuple[Path, Path]) -> None:
    rules = read_rule_dir(collected[1], "torch", version())
    assert {r.api for r in rules} == set(APIS)
    matmul = read_rules(collected[1] / "torch" / version() / "torch.matmul.json")
    two_d = next(r for r in matmul.rules if r.signature == "torch.matmul(tensor2,tensor2)")
    assert two_d.outputs[0][0] == ("a0_s0", "a1_s1")
    assert "a0_s1 == a1_s0" in two_d.requires or "a1_s0 == a0_s1" in two_d.requires
    assert matmul.provenance.get("opinfo", 0) > 0 and matmul.provenance.get("probe", 0) > 0


def test_generated_calls_are_accepted_with_the_predicted_shapes(collected: tuple[Path, Path]) -> None:
    rules = read_rule_dir(collected[1], "torch", version())
    catalog = rule_catalog(rules, {})
    instantiator = Instantiator()
    tried = accepted = shaped = 0
    for api_rules in rules:
        for rule in api_rules.rules:
            spec = catalog.ops.get(op_name(rule.signature))
            if spec is None:
                continue
            rng = np.random.default_rng(0)
            for k in range(4):
                dtype = sorted(spec.dtypes, key=lambda d: d.value)[k % len(spec.dtypes)]
                inst = instantiator.instantiate(spec, rng, [None] * len(spec.operands), dtype)
                if inst is None:
                    continue
                trace = run(rule_invocation(api_rules.api, rule, inst), k)
                tried += 1
                if trace.valid:
                    accepted += 1
                    shaped += [o.shape for o in trace.outputs] == [o.shape for o in inst.outputs]
    assert tried >= 20 and accepted / tried >= 0.9 and shaped / accepted >= 0.9, (accepted, shaped, tried)


def test_a_campaign_runs_rule_backed_operators(collected: tuple[Path, Path], tmp_path: Path) -> None:
    rules_dir = collected[1] / "torch" / version()
    assert not [name for name in catalog_for(str(rules_dir)) if name.startswith("torch.matmul(")], \
        "the hand-written matmul spec wins over its rules"
    ops = [name for name in catalog_for(str(rules_dir)) if name.startswith(("torch.nn.functional.conv1d(",
                                                                           "torch.nn.functional.avg_pool1d("))]
    assert ops
    out = tmp_path / "campaign"
    code = main(["fuzz", "--rules", str(rules_dir), "--backends", "torch_eager", "--ops", ",".join(ops),
                 "--max-tests", "6", "--max-nodes", "3", "--workers", "1", "--out", str(out), "--quiet"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    totals = report["totals"]
    assert totals["tests"] == 6 and totals["unique_bugs"] == 0 and totals["internal_failures"] == 0
    assert totals["verdicts"].get("pass", 0) >= 3
    assert {o["op"] for o in report["operators"] if o["tests"]} <= set(ops)


def test_user_mistakes_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "collect", "--framework", "torch", "--apis", "torch.no_such_api", "--out",
                 str(tmp_path / "t.jsonl")]) == 2
    assert "no shipped examples for torch.no_such_api" in capsys.readouterr().err
    assert main(["infer", "collect", "--framework", "torch", "--apis", "torch.bernoulli"]) == 2
    assert "excluded from tracing" in capsys.readouterr().err
    assert main(["infer", "rules", str(tmp_path / "missing.jsonl")]) == 2
    assert "no traces file" in capsys.readouterr().err
    assert main(["fuzz", "--rules", str(tmp_path), "--max-tests", "1", "--out", str(tmp_path / "c")]) == 2
    assert "rules directory" in capsys.readouterr().err


def test_a_crashing_probe_becomes_a_confirmed_standalone_reproducer(tmp_path: Path) -> None:
    from fuzz.rules_collect import _call_note, crashing_call
    from fuzz.rules_crashes import record_crash
    from generators.rules import collect_torch
    from generators.rules.trace import Arg, Invocation

    crash = Invocation("torch.lu_unpack", (Arg.tensor((3, 3), "float32"), Arg.tensor((0,), "int32")))
    benign = Invocation("torch.add", (Arg.tensor((2, 3), "float32"), Arg.tensor((2, 3), "float32")),
                        (("alpha", Arg("int", value=2)),))
    for invocation, expected in ((crash, True), (benign, False)):
        assert crashing_call(_call_note(invocation, 7)) == (invocation, 7)
        found = record_crash(tmp_path, "torch", version(), collect_torch, invocation, 7, "segfault")
        assert found.confirmed is expected, found.detail
        script = (found.directory / "repro.py").read_text()
        assert "gauntlet" not in script.split('"""')[2] and invocation.api + "(" in script
        assert json.loads((found.directory / "crash.json").read_text())["confirmed"] is expected


def test_ops_lists_rule_backed_operators(collected: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules_dir = collected[1] / "torch" / version()
    assert main(["ops", "--json", "--rules", str(rules_dir)]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    conv = [r for name, r in rows.items() if name.startswith("torch.nn.functional.conv1d(")]
    assert conv and all(r["support"]["torch"] == "yes" and r["support"]["tensorflow"].startswith("no:") for r in conv)
    assert "exp" in rows
