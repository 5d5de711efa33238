"""`gauntlet inputs` and `gauntlet supervise` end to end through fuzz.cli.main, on the digits MLP
loaded by a factory file (its weights saved with torch.save and loaded with weights_only=True),
and the user mistakes that must end in one message and exit 2."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fuzz.cli import main
from generators.inputs.supervise_report import check_report
from tests.generators.inputs.digits import CLASSES, digits
from tests.generators.inputs.test_supervisors import one_thread, one_thread_mlp

FACTORY = """
import torch
from torch import nn

def mlp():
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    model.load_state_dict(torch.load({weights!r}, weights_only=True))
    return model.eval()

def broken():
    raise RuntimeError("no weights here")
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    weights = root / "mlp.pt"
    torch.save(one_thread_mlp().state_dict(), weights)
    (root / "model.py").write_text(FACTORY.format(weights=str(weights)))
    x_train, y_train, x_test, y_test = digits()
    np.savez(root / "test.npz", x=x_test, y=y_test)
    np.savez(root / "train.npz", x=x_train[:600], y=y_train[:600])
    np.savez(root / "shuffled.npz", x=x_test, y=np.roll(y_test, 1))
    (root / "fn.py").write_text("import numpy as np\n\ndef darkness(adapter, x):\n    return -np.asarray(x).reshape(len(x), -1).mean(axis=1)\n")
    return {"model": f"{root / 'model.py'}:mlp", "broken": f"{root / 'model.py'}:broken", "test": str(root / "test.npz"),
            "train": str(root / "train.npz"), "shuffled": str(root / "shuffled.npz"), "fn": f"{root / 'fn.py'}:darkness"}


def test_inputs_then_supervise(files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "inputs"
    status = main(["inputs", files["model"], "--data", files["test"], "--mix", "adversarial=10,corrupted=8,fooling=2",
                   "--seed", "4", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "clean accuracy" in captured.err and "adversarial: generating" in captured.err
    assert "wrote" in captured.out and "inputs.npz" in captured.out
    with np.load(out / "inputs.npz", allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    assert set(arrays) == {"x", "category", "method", "set", "source", "labels", "predicted"}
    n = len(arrays["x"])
    assert arrays["x"].shape == (n, 1, 8, 8) and arrays["labels"].shape == arrays["predicted"].shape == (n, CLASSES)
    fooling = arrays["category"] == "fooling"
    assert fooling.sum() == 2 and np.isnan(arrays["labels"][fooling]).all() and (arrays["source"][fooling] == -1).all()
    assert not np.isnan(arrays["labels"][~fooling]).any()
    assert set(arrays["category"]) == {"adversarial", "corrupted", "fooling"}
    meta = json.loads((out / "inputs.json").read_text())
    assert meta["seed"] == 4 and meta["mix"]["adversarial"]["eps"] == 0.1 and len(meta["sets"]) == 6
    assert all((out / f"{c}.png").read_bytes().startswith(b"\x89PNG") for c in ("adversarial", "corrupted", "fooling"))

    report_dir = tmp_path / "report"
    status = main(["supervise", files["model"], "--data", files["test"], "--train", files["train"], "--inputs",
                   str(out / "inputs.npz"), "--out", str(report_dir), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == ""  # --quiet
    assert "AUC-ROC" in captured.out and "mahalanobis" in captured.out and "mc_dropout_entropy" in captured.out
    report = json.loads((report_dir / "report.json").read_text())
    check_report(report)
    assert report["data"]["inputs"] == str(out / "inputs.npz") and report["sets"][0]["params"]["eps"] == 0.1
    assert set(report["auc"]) == {"max_softmax", "entropy", "deepgini", "mc_dropout", "mc_dropout_entropy", "mahalanobis"}
    assert all(0.5 < report["auc"]["max_softmax"][c] <= 1 for c in ("adversarial", "fooling"))
    page = (report_dir / "report.html").read_text()
    assert "<svg" in page and "<table>" in page and "data:image/png" in page


def test_supervise_generates_a_mix_with_a_user_supervisor(files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    status = main(["supervise", files["model"], "--data", files["test"], "--mix", "adversarial=6,corrupted=4:families=noise",
                   "--supervisors", f"deepgini,mc_dropout,{files['fn']}", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["supervisors"]] == ["deepgini", "mc_dropout", files["fn"]]
    assert report["parameters"]["mix"]["corrupted"]["families"] == "noise"
    assert [c["category"] for c in report["categories"]] == ["adversarial", "corrupted"]
    assert (out / "inputs.npz").is_file() and (out / "report.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inputs", "{model}", "--data", "{missing}", "--out", "{out}"], "no such file"),
        (["inputs", "{model}", "--data", "{test}", "--mix", "adversarial=5,oops=3", "--out", "{out}"], "unknown category 'oops'"),
        (["inputs", "{model}", "--data", "{test}", "--mix", "adversarial=many", "--out", "{out}"], "not a whole number"),
        (["supervise", "{model}", "--data", "{test}", "--supervisors", "max_softmax,vibes", "--out", "{out}"], "unknown supervisor 'vibes'"),
        (["supervise", "{model}", "--data", "{test}", "--supervisors", "mahalanobis", "--out", "{out}"], "none was given (--train TRAIN.npz)"),
        (["supervise", "{model}", "--data", "{shuffled}", "--out", "{out}"], "clean accuracy"),
        (["inputs", "{model}", "--data", "{test}", "--bounds", "0:0.5", "--out", "{out}"], "declared input bounds are [0, 0.5]"),
        (["inputs", "{model}", "--data", "{test}", "--bounds", "1:0", "--out", "{out}"], "needs finite LO < HI"),
        (["supervise", "{model}", "--data", "{test}", "--inputs", "{missing}", "--out", "{out}"], "no such file"),
        (["supervise", "{model}", "--data", "{test}", "--inputs", "{test}", "--mix", "fooling=1", "--out", "{out}"], "not both"),
        (["inputs", "{broken}", "--data", "{test}", "--out", "{out}"], "factory raised RuntimeError: no weights here"),
        (["inputs", "{model}", "--data", "{test}", "--shape", "1,9,9", "--out", "{out}"], "do not fit --shape"),
    ],
)
def test_user_mistakes_exit_2(args: list[str], message: str, files: dict[str, str], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    values = {**files, "missing": str(tmp_path / "missing.npz"), "out": str(tmp_path / "out")}
    status = main([a.format(**values) for a in args])
    captured = capsys.readouterr()
    assert status == 2
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err and captured.err.splitlines()[-1].startswith("gauntlet: error:")


def test_full_default_mix_end_to_end(files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole supervisor table with the default mix (every generator, every built-in
    supervisor). Measured on 2 cores busy with other jobs: 10-16 s on one torch thread, 4 min on
    two competing threads; the ambiguous generator's autoencoders take almost all of it."""
    started = time.perf_counter()
    with one_thread():
        status = main(["supervise", files["model"], "--data", files["test"], "--train", files["train"], "--out", str(tmp_path)])
    seconds = time.perf_counter() - started
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    check_report(report)
    assert [c["category"] for c in report["categories"]] == ["adversarial", "fooling", "ambiguous", "corrupted"]
    assert not report["unavailable"] and seconds < 600
    print(f"full mix end to end: {seconds:.0f} s; generation {report['timings']['generation']}")


def test_supervise_an_onnx_model(files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = tmp_path / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(one_thread_mlp(), (torch.zeros(1, 1, 8, 8),), str(onnx), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    status = main(["supervise", str(onnx), "--data", files["test"], "--train", files["train"], "--mix",
                   "adversarial=8,fooling=2", "--out", str(tmp_path / "report")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [s["name"] for s in report["supervisors"]] == ["max_softmax", "entropy", "deepgini"]
    # an exported graph has no dropout and no feature layer: said, not hidden
    assert "no dropout layer" in report["unavailable"]["mc_dropout"]
    assert "no feature layer" in report["unavailable"]["mahalanobis"]
    assert "mahalanobis: unavailable" in captured.out
