"""The gauntlet command end to end: ops, generate (json and standalone scripts), validate,
run, and clean errors for user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.cli import main
from generators.ir import graph_from_json, validate


def test_ops_lists_the_catalog_with_support(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"exp", "abs"} <= names
    assert all(set(r["support"]) == {"torch", "tensorflow", "numpy"} for r in rows)


def test_generate_json_is_deterministic_and_valid(tmp_path: Path) -> None:
    for d in ("a", "b"):
        assert (
            main(["generate", "--count", "3", "--max-nodes", "6", "--seed", "7", "--out", str(tmp_path / d)])
            == 0
        )
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["graph_000007.json", "graph_000008.json", "graph_000009.json"]
    for f in files:
        text = (tmp_path / "a" / f).read_text()
        assert text == (tmp_path / "b" / f).read_text()
        validate(graph_from_json(text))


def test_generated_scripts_run_standalone_and_agree(tmp_path: Path) -> None:
    """The torch and tf scripts need no Gauntlet (run from an empty cwd with no PYTHONPATH)
    and print the same outputs for float64 graphs."""
    assert (
        main(
            [
                "generate",
                "--count",
                "1",
                "--max-nodes",
                "6",
                "--seed",
                "3",
                "--dtypes",
                "float64",
                "--out",
                str(tmp_path),
                "--format",
                "py",
            ]
        )
        == 0
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    outs = {}
    for fw in ("torch", "tf"):
        script = tmp_path / f"graph_000003_{fw}.py"
        assert "import generators" not in script.read_text() and "from generators" not in script.read_text()
        proc = subprocess.run(
            [sys.executable, "-I", str(script)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs[fw] = [
            line.split("dtype=")[0] + line.split("sum=")[1]
            for line in proc.stdout.splitlines()
            if line.startswith("output")
        ]
    assert outs["torch"] and outs["torch"] == outs["tf"]


def test_validate_reports_a_bad_file_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "placeholders": [], "nodes": [], "outputs": []}')
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gauntlet: error:") and "no outputs" in err and "Traceback" not in err
    assert main(["validate", str(tmp_path / "missing.json")]) == 2
    assert "No such file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "fuzz"])
def test_the_batch_option_defaults_to_the_runners_batch(command: str) -> None:
    from fuzz.cli import build_parser
    from fuzz.runner import DEFAULT_BATCH

    args = build_parser().parse_args([command] + (["--out", "x"] if command == "fuzz" else []))
    assert args.batch == DEFAULT_BATCH


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--out", "x", "--ops", "nosuch"], "unknown operator 'nosuch'"),
        (["generate", "--out", "x", "--dtypes", "float8"], "unknown dtype 'float8'"),
        (["generate", "--out", "x", "--count", "0"], "must be positive"),
        (["run", "--backends", "jax"], "unknown backend"),
        (["run", "--backends", "nowhere.py:Backend"], "does not exist"),
        (["run", "--workers", "0"], "--workers and --batch must be"),
    ],
)
def test_user_mistakes_exit_2_with_a_message(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_run_summarizes_a_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAUNTLET_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["run", "--count", "8", "--max-nodes", "5", "--dtypes", "float32,float64", "--out", str(tmp_path / "run"),
            "--backends", "torch_eager,tf_eager", "--workers", "1"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["tests"] == 8 and summary["backends"] == ["torch_eager", "tf_eager"]
    assert sum(summary["verdicts"].values()) == 8
    assert summary["verdicts"].get("pass", 0) >= 6
    assert set(summary["versions"]) == {"torch_eager", "tf_eager"}
    assert "report:" in capsys.readouterr().out
    assert len(list((tmp_path / "cache" / "probes").glob("*.json"))) == 2  # the probe was cached


def test_backends_lists_builtins_with_availability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"torch_eager", "torch_compile", "tf_eager", "tf_xla", "onnxruntime", "torch_cuda", "torch_compile_cuda", "tf_gpu"} <= set(rows)
    assert rows["torch_eager"]["available"] and rows["torch_eager"]["version"].startswith("torch-")


def test_generate_onnx_writes_models_that_onnxruntime_runs(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    assert main(["generate", "--count", "3", "--max-nodes", "5", "--dtypes", "float32", "--format", "onnx", "--out", str(tmp_path)]) == 0
    models = sorted(tmp_path.glob("*.onnx"))
    assert models, "no ONNX model written"
    for path in models:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: np.load(path.with_name(f"{path.stem}_{i.name}.npy"), allow_pickle=False) for i in session.get_inputs()}
        outputs = session.run(None, feed)
        assert all(np.all(np.isfinite(o)) for o in outputs if o.dtype.kind == "f")


def test_console_script_help_is_fast_and_light() -> None:
    """`gauntlet --help` must not import torch or tensorflow."""
    code = "import sys; from fuzz.cli import build_parser; build_parser(); print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False False"
