"""`gauntlet verify --onnx --vnnlib` on the VNN-COMP `test/` instances with known answers:
one word on stdout, a counterexample file that the real network confirms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from fuzz.cli import main
from verify.vnnlib import load_vnnlib, parse_counterexample

TEST = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "vnncomp" / "test"
pytestmark = pytest.mark.skipif(not TEST.exists(), reason="VNN-COMP benchmark folder not present")
EXPECTED = {
    ("test_nano.onnx", "test_nano.vnnlib"): "unsat",
    ("test_tiny.onnx", "test_tiny.vnnlib"): "unsat",
    ("test_small.onnx", "test_small.vnnlib"): "unsat",
    ("test_sat.onnx", "test_prop.vnnlib"): "sat",
    ("test_unsat.onnx", "test_prop.vnnlib"): "unsat",
}


@pytest.mark.parametrize(("onnx", "vnnlib"), sorted(EXPECTED))
def test_known_answers(onnx: str, vnnlib: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cex = tmp_path / "cex.txt"
    status = main(["verify", "--onnx", str(TEST / onnx), "--vnnlib", str(TEST / vnnlib), "--timeout", "60", "--cex", str(cex)])
    assert status == 0
    word = capsys.readouterr().out.strip()
    assert word == EXPECTED[(onnx, vnnlib)]
    if word == "sat":
        x, y = parse_counterexample(cex.read_text())
        session = ort.InferenceSession(str(TEST / onnx), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        out = session.run(None, {feed.name: x.astype(np.float32).reshape([d if isinstance(d, int) else 1 for d in feed.shape])})[0]
        assert np.allclose(out.ravel(), y, rtol=1e-6, atol=1e-7)
        assert load_vnnlib(TEST / vnnlib).violated_by(x, out.ravel())
    else:
        assert not cex.exists()


def test_user_mistakes_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--onnx", str(tmp_path / "missing.onnx"), "--vnnlib", str(TEST / "test_prop.vnnlib")]) == 2
    assert "missing.onnx" in capsys.readouterr().err
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(assert (<= X_0")
    assert main(["verify", "--onnx", str(TEST / "test_nano.onnx"), "--vnnlib", str(bad)]) == 2
    assert "bad.vnnlib" in capsys.readouterr().err
    assert main(["verify", "--vnnlib", str(TEST / "test_prop.vnnlib")]) == 2
    assert "--onnx" in capsys.readouterr().err
    # A property over the wrong number of inputs for the network.
    assert main(["verify", "--onnx", str(TEST / "test_nano.onnx"), "--vnnlib", str(TEST / "test_prop.vnnlib")]) == 2
    assert "inputs" in capsys.readouterr().err
