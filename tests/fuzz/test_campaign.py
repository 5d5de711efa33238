"""Fuzz campaigns end to end, through the real command, sandbox and store: planted bugs
are found, deduplicated, reduced and reproduced; a campaign killed with SIGKILL resumes
without losing a bug; Ctrl-C still writes the report; user mistakes are clear errors."""

from __future__ import annotations

import ast
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.store import CampaignStore

pytest.importorskip("torch")
PLANTED = str(Path(__file__).with_name("planted_backends.py"))
ROOT = Path(__file__).resolve().parents[2]


def fuzz(out: Path, *extra: str) -> int:
    return main(["fuzz", "--out", str(out), "--quiet", "--workers", "1", "--timeout", "30", *extra])


@pytest.fixture(autouse=True)
def _probe_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAUNTLET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "probe-cache"))


def _report(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "report.json").read_text())


def _run_repro(bug_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(bug_dir / "repro.py")], cwd=bug_dir.parent, capture_output=True, text=True,
                          timeout=180, env=env)


def test_planted_bugs_are_found_deduplicated_reduced_and_reproduced(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    code = fuzz(out, "--backends", f"torch_eager,{PLANTED}:WrongSumKeepdims,{PLANTED}:AbortsOnCosFloat64",
                "--ops", "sum,cos,add,exp,tanh,mul", "--dtypes", "float32,float64", "--max-nodes", "4",
                "--max-tests", "30", "--seed", "3")
    assert code == 0
    report = _report(out)
    assert report["totals"]["tests"] == 30
    bugs = {(b["symptom"], tuple(b["backends"])): b for b in report["bugs"]}
    assert set(bugs) == {("wrong_result", ("wrong_sum_keepdims",)), ("abort", ("aborts_on_cos_f64",))}, report["bugs"]
    wrong, abort = bugs[("wrong_result", ("wrong_sum_keepdims",))], bugs[("abort", ("aborts_on_cos_f64",))]
    assert wrong["ops"] == ["sum"] and abort["ops"] == ["cos"]
    assert abort["dtypes"] == ["float64"]
    with CampaignStore(out, create=False) as store:
        tests_with_sum_bug = sum(1 for bug, _ in store.occurrences())
    assert wrong["duplicates"] + abort["duplicates"] >= 2  # repeats are counted, not re-reported
    assert tests_with_sum_bug == 2 + wrong["duplicates"] + abort["duplicates"]
    for bug in (wrong, abort):
        assert bug["reduction"]["nodes_after"] <= 3
        bug_dir = out / bug["dir"]
        meta = json.loads((bug_dir / "bug.json").read_text())
        assert meta["seed"] == bug["first_seed"] and meta["versions"]
        result = _run_repro(bug_dir)
        assert result.returncode != 0, result.stdout + result.stderr  # the planted bug reproduces
    assert (out / "report.html").read_text().count("B000") >= 2
    # `gauntlet replay` on the campaign agrees.
    assert main(["replay", str(out), "--exit-status", "--timeout", "30"]) == 1


def _db_counts(db: Path, state: str = "reported") -> tuple[int, int]:
    try:
        con = sqlite3.connect(db, timeout=1)
        tests = con.execute("SELECT COUNT(*) FROM tests").fetchone()[0]
        bugs = con.execute("SELECT COUNT(*) FROM bugs" + (" WHERE state = ?" if state else ""), (state,) if state else ()).fetchone()[0]
        con.close()
        return tests, bugs
    except sqlite3.Error:
        return 0, 0


def _start(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "fuzz.cli", "fuzz", "--out", str(out), "--quiet", "--workers", "1", "--timeout", "30", *extra]
    log = (out.parent / f"{out.name}.log").open("wb")
    try:
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # then never raises KeyboardInterrupt: give the campaign the default disposition.
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    finally:
        log.close()


def _wait_for(process: subprocess.Popen[bytes], db: Path, tests: int, bugs: int, limit_s: float = 150, state: str = "reported") -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the campaign ended early: {(db.parent.parent / f'{db.parent.name}.log').read_text()}")
        t, b = _db_counts(db, state)
        if t >= tests and b >= bugs:
            return
        time.sleep(0.05)
    raise AssertionError(f"no progress within {limit_s}s: {_db_counts(db)}")


CAMPAIGN = ("--backends", f"torch_eager,{PLANTED}:WrongSumKeepdims", "--ops", "sum,add,exp,tanh", "--dtypes", "float32",
            "--max-nodes", "3", "--seed", "11")


@pytest.mark.parametrize("moment", ["after_report", "while_reducing"])
def test_kill_9_then_resume_loses_no_bug_and_continues_the_campaign(tmp_path: Path, moment: str) -> None:
    out = tmp_path / "campaign"
    process = _start(out, *CAMPAIGN, "--max-tests", "100000")
    try:
        if moment == "after_report":
            _wait_for(process, out / "campaign.db", tests=12, bugs=1)
        else:  # the first moment a bug is in the database, typically before its reduction ends
            _wait_for(process, out / "campaign.db", tests=0, bugs=1, state="")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the campaign and its sandbox workers, at once
        process.wait()
    with CampaignStore(out, create=False) as store:
        before_bugs = [(b.id, b.signature) for b in store.bugs(state="reported")]
        found_before = [b.id for b in store.bugs()]
        before_tests = store.test_count()
        done_before = store.done_seeds()
    assert found_before
    code = fuzz(out, "--resume", "--max-tests", str(before_tests + 10))
    assert code == 0
    with CampaignStore(out, create=False) as store:
        after_bugs = [(b.id, b.signature) for b in store.bugs(state="reported")]
        assert store.test_count() == before_tests + 10
        assert done_before <= store.done_seeds()
        assert [s[3] for s in store.sessions()] == ["running", "finished"]  # the killed session never ended
        # Every bug found before the kill is reported now (reductions cut short are redone).
        assert not store.bugs(state="reducing")
        reported = {b.id for b in store.bugs()}
        merged = sum(b.duplicates for b in store.bugs())
    assert after_bugs[: len(before_bugs)] == before_bugs
    assert set(found_before) <= reported or merged > 0
    report = _report(out)
    assert report["campaign"]["sessions"] == 2
    assert {b["id"] for b in report["bugs"]} >= {f"B{i:04d}" for i, _ in before_bugs}
    for bug in report["bugs"]:
        assert (out / bug["dir"] / "bug.json").exists()


def test_interrupt_stops_cleanly_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    process = _start(out, *CAMPAIGN, "--time", "10m")
    _wait_for(process, out / "campaign.db", tests=3, bugs=0)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    report = _report(out)
    assert report["campaign"]["status"] == "interrupted"
    assert report["totals"]["tests"] >= 3
    assert (out / "report.html").exists()


def test_user_mistakes_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz(tmp_path / "none", "--resume") == 2
    assert "holds no campaign" in capsys.readouterr().err
    assert fuzz(tmp_path / "x", "--ops", "no_such_op", "--max-tests", "1") == 2
    assert "unknown operator" in capsys.readouterr().err
    assert main(["replay", str(tmp_path)]) == 2
    assert "neither a bug directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["fuzz", "--out", str(tmp_path / "y"), "--time", "ten minutes"])
    assert exc.value.code == 2
    assert "not a duration" in capsys.readouterr().err


def test_a_finished_campaign_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "campaign"
    assert fuzz(out, "--backends", "torch_eager", "--ops", "add,exp", "--max-nodes", "2", "--max-tests", "3") == 0
    assert fuzz(out, "--backends", "torch_eager", "--max-tests", "3") == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["report", str(out)]) == 0
    assert _report(out)["totals"]["tests"] == 3


def test_a_real_onnxruntime_bug_ends_as_a_one_operator_standalone_reproducer(tmp_path: Path) -> None:
    """onnxruntime 1.32 computes float64 Shrink in float32: found, reduced to the one
    operator, and the standalone repro.py (numpy + onnxruntime only) shows it."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "campaign"
    assert fuzz(out, "--backends", "torch_eager,onnxruntime", "--ops", "hardshrink,add,exp,tanh", "--dtypes", "float64",
                "--max-nodes", "3", "--max-tests", "15") == 0
    (bug,) = _report(out)["bugs"]
    assert (bug["symptom"], bug["backends"], bug["ops"], bug["dtypes"]) == ("wrong_result", ["onnxruntime"], ["hardshrink"], ["float64"])
    bug_dir = out / bug["dir"]
    source = (bug_dir / "repro.py").read_text()
    imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for a in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "onnxruntime" in imported and not imported & {"fuzz", "generators", "gauntlet"}
    result = subprocess.run([sys.executable, str(bug_dir / "repro.py")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "outside tolerance" in result.stdout or "element(s)" in result.stdout
    assert "hardshrink" in (bug_dir / "issue.md").read_text()


def test_coverage_is_measured_and_plotted(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    assert fuzz(out, "--backends", "torch_eager", "--ops", "exp,add,softmax,sum,tanh", "--max-nodes", "3", "--max-tests", "20",
                "--coverage") == 0
    report = _report(out)
    assert report["coverage"]["lines"] > 0
    assert report["timeline"][-1]["coverage_lines"] == report["coverage"]["lines"]
    assert "coverage" in (out / "report.html").read_text().lower()


def test_reduce_and_promote_a_bug_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "campaign"
    assert fuzz(out, "--backends", f"torch_eager,{PLANTED}:WrongSumKeepdims", "--ops", "sum,exp,tanh", "--dtypes", "float32",
                "--max-nodes", "4", "--max-tests", "6", "--seed", "2", "--no-reduce") == 0
    bug = _report(out)["bugs"][0]
    bug_dir = out / bug["dir"]
    assert bug["reduction"]["nodes_after"] == bug["reduction"]["nodes_before"] > 1
    assert main(["reduce", str(bug_dir), "--timeout", "30"]) == 0
    meta = json.loads((bug_dir / "bug.json").read_text())
    assert meta["ops"] == ["sum"] and meta["reduction"]["nodes_after"] == 1 and meta["id"] == bug["id"]
    # the finding is the reduced graph's own (its output index exists there), and the
    # rewrite left no scratch directories behind
    outputs = json.loads((bug_dir / "graph.json").read_text())["outputs"]
    assert meta["finding"]["output"] is None or meta["finding"]["output"] < len(outputs)
    assert sorted(p.name for p in bug_dir.parent.iterdir()) == [bug_dir.name]
    corpus = tmp_path / "regressions"
    assert main(["promote", str(bug_dir), "--corpus", str(corpus), "--timeout", "30",
                 "--upstream", "https://example.org/issues/7"]) == 0
    (entry,) = corpus.iterdir()
    promoted = json.loads((entry / "bug.json").read_text())
    assert promoted["status"] == "open" and promoted["upstream"] == "https://example.org/issues/7"
    assert main(["promote", str(bug_dir), "--corpus", str(corpus), "--no-confirm"]) == 2
    assert "already in the regression corpus" in capsys.readouterr().err


def test_a_campaign_on_ray_actors_fills_the_same_store(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "campaign"
    assert main(["fuzz", "--out", str(out), "--quiet", "--ray", "local", "--workers", "2", "--timeout", "60",
                 "--backends", f"torch_eager,{PLANTED}:WrongSumKeepdims", "--ops", "sum,exp,add", "--dtypes", "float32",
                 "--max-nodes", "3", "--max-tests", "20", "--seed", "5"]) == 0
    report = _report(out)
    assert report["totals"]["tests"] == 20 and report["campaign"]["ray"] == "local"
    assert [b["ops"] for b in report["bugs"]] == [["sum"]]
