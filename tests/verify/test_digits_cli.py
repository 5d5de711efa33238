"""Models trained here on scikit-learn's digits, verified end to end through both forms of
`gauntlet verify`: an exported ONNX MLP with VNN-LIB properties, and a CNN with max pooling
given as `file.py:factory` with samples, balls and a report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fuzz.cli import main
from tests.verify.test_robustness import digits, held_out, train, trained_mlp
from verify.vnnlib import parse_counterexample


def label_vnnlib(x: np.ndarray, label: int, eps: float) -> str:
    """The VNN-COMP MNIST form: the L-inf box clipped to [0, 1], unsafe if any other logit
    reaches the label's."""
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(10)]
    for i, v in enumerate(np.ravel(x).astype(np.float64)):
        lines.append(f"(assert (>= X_{i} {float(max(v - eps, 0.0))!r}))")
        lines.append(f"(assert (<= X_{i} {float(min(v + eps, 1.0))!r}))")
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label)
    lines.append(f"(assert (or {others}))")
    return "\n".join(lines) + "\n"


def export(module: nn.Module, shape: tuple[int, ...], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module, (torch.zeros(shape),), str(path), dynamo=False, input_names=["x"], output_names=["y"])


def test_onnx_mlp_through_vnnlib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = tmp_path / "mlp.onnx"
    export(trained_mlp(), (1, 64), net)
    x, y = held_out(6)
    words = {}
    for eps in (0.005, 0.3):
        for k in range(len(x)):
            prop = tmp_path / f"p{k}_{eps}.vnnlib"
            prop.write_text(label_vnnlib(x[k], int(y[k]), eps))
            cex = tmp_path / f"cex{k}_{eps}.txt"
            assert main(["verify", "--onnx", str(net), "--vnnlib", str(prop), "--timeout", "60", "--cex", str(cex)]) == 0
            word = capsys.readouterr().out.strip()
            words[(k, eps)] = word
            if word == "sat":
                cx, cy = parse_counterexample(cex.read_text())
                assert np.all(np.abs(cx - x[k]) <= eps + 1e-6) and cy[int(y[k])] <= np.delete(cy, int(y[k])).max()
    with torch.no_grad():
        predicted = trained_mlp()(torch.from_numpy(x)).argmax(1).numpy()
    correct = [k for k in range(len(x)) if predicted[k] == y[k]]
    assert [words[(k, 0.005)] for k in correct] == ["unsat"] * len(correct)
    assert [words[(k, 0.3)] for k in correct] == ["sat"] * len(correct)


FACTORY = '''
import numpy as np
import torch
from torch import nn


def build():
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)
    )
    weights = np.load(__file__.replace("factory.py", "weights.npz"), allow_pickle=False)
    module.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files})
    return module.eval()
'''


def test_cnn_with_max_pooling_through_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = digits()
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    train(module, x[:1500].reshape(-1, 1, 8, 8), y[:1500], 120)
    np.savez(tmp_path / "weights.npz", **{k: v.detach().numpy() for k, v in module.state_dict().items()})
    (tmp_path / "factory.py").write_text(FACTORY)
    xs, ys = held_out(5)
    with torch.no_grad():
        keep = module(torch.from_numpy(xs.reshape(-1, 1, 8, 8))).argmax(1).numpy() == ys
    np.savez(tmp_path / "samples.npz", x=xs[keep].reshape(-1, 1, 8, 8), y=ys[keep])
    out = tmp_path / "report"
    status = main([
        "verify", f"{tmp_path / 'factory.py'}:build", "--data", str(tmp_path / "samples.npz"), "--eps", "0.005",
        "--domain", "0:1", "--timeout", "30", "--out", str(out), "--quiet",
    ])
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report["totals"]
    assert report["totals"]["verified"] == int(keep.sum())
    assert (out / "report.html").exists()
    status = main([
        "verify", f"{tmp_path / 'factory.py'}:build", "--data", str(tmp_path / "samples.npz"), "--eps", "0.4",
        "--domain", "0:1", "--timeout", "30", "--out", str(out), "--quiet",
    ])
    capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert status == 1 and report["totals"]["counterexample"] == int(keep.sum())
