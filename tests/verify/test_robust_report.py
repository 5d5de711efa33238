"""verify.robust_report / robust_html and the `gauntlet verify MODEL --data` command function:
the JSON report follows its schema, the HTML page is self-contained and escaped, the images
decode, and the command loads models (ONNX, factory files) and data, prints and exits right."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from generators.errors import GauntletError
from generators.png import png
from tests.verify.test_robustness import DOMAIN, held_out, mlp_model, trained_mlp
from verify.api import load_model, load_samples, parse_domain, robustness_command
from verify.manipulations import parse_family
from verify.robust_html import render_html
from verify.robust_report import check_report, report_dict, write_reports
from verify.robustness import RobustnessResult, check_samples


def _result() -> RobustnessResult:
    x, y = held_out(4)
    y = y.copy()
    y[3] = (y[3] + 1) % 10  # one wrong label: reported as misclassified
    families = [parse_family("occlusion:2:1:0"), parse_family("brightness:0.3:7")]
    return check_samples(mlp_model(), x, y, 0.02, "linf", DOMAIN, 1.0, families, radius=True, radius_steps=3)


_RESULT: list[RobustnessResult] = []


def result() -> RobustnessResult:
    if not _RESULT:
        _RESULT.append(_result())
    return _RESULT[0]


# --- JSON ---------------------------------------------------------------------------------------


def test_report_follows_the_schema() -> None:
    res = result()
    report = report_dict(res, command="gauntlet verify m.onnx", data="s.npz")
    check_report(report)
    again = json.loads(json.dumps(report, allow_nan=False))
    check_report(again)
    assert again["totals"]["samples"] == 4 and again["totals"]["misclassified"] == 1
    assert sum(again["totals"][k] for k in ("verified", "counterexample", "unknown", "misclassified")) == 4
    assert again["image"] == {"channels": 1, "height": 8, "width": 8, "guessed": True}
    assert again["property"] == {"norm": "linf", "eps": 0.02, "domain": [0.0, 1.0], "margin": 0.0, "timeout_per_sample": 1.0}
    assert [m["spec"] for m in again["manipulations"]] == ["occlusion:2:1:0", "brightness:0.3:7"]
    for sample, record in zip(again["samples"], res.records):
        assert sample["status"] == record.status and sample["label"] == record.label
        if record.status == "misclassified":
            assert sample["ball"] is None and sample["x"] is not None
            continue
        assert len(sample["manipulations"]) == 2 and sample["radius"]["steps"]
        cex = sample["ball"]["counterexample"]
        if cex is not None:
            assert len(cex["x"]) == 64 and len(cex["y"]) == 10 and sample["x"] is not None
            assert cex["predicted"] == int(np.argmax(cex["y"]))
            assert cex["y"][record.label] <= max(v for j, v in enumerate(cex["y"]) if j != record.label)


def test_check_report_names_what_is_wrong() -> None:
    report = json.loads(json.dumps(report_dict(result())))
    broken = dict(report, samples=report["samples"][:2])
    with pytest.raises(GauntletError, match="totals.samples"):
        check_report(broken)
    bad_status = json.loads(json.dumps(report))
    bad_status["samples"][0]["status"] = "fine"
    with pytest.raises(GauntletError, match=r"samples\[0\].status"):
        check_report(bad_status)
    with pytest.raises(GauntletError, match="missing 'totals'"):
        check_report({k: v for k, v in report.items() if k != "totals"})
    with pytest.raises(GauntletError, match="expected an object"):
        check_report([1, 2])


# --- HTML ---------------------------------------------------------------------------------------


def _pngs(page: str) -> list[bytes]:
    import base64

    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def _decode_png(data: bytes) -> np.ndarray:
    """A strict reader for what `png` writes: checks the signature and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = 3 if colour == 2 else 1
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * (width * channels + 1) : (r + 1) * (width * channels + 1)] for r in range(height)]
    assert all(row[0] == 0 for row in rows) and depth == 8
    pixels = np.frombuffer(b"".join(row[1:] for row in rows), dtype=np.uint8)
    return pixels.reshape(height, width, channels) if channels == 3 else pixels.reshape(height, width)


def test_png_round_trip() -> None:
    grey = np.arange(35, dtype=np.uint8).reshape(5, 7)
    np.testing.assert_array_equal(_decode_png(png(grey)), grey)
    rgb = np.random.default_rng(0).integers(0, 256, (4, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_decode_png(png(rgb)), rgb)


def test_html_is_self_contained_with_images_and_histogram(tmp_path: Path) -> None:
    res = result()
    json_path, html_path = write_reports(res, tmp_path / "out", data="s.npz")
    assert json.loads(json_path.read_text())["schema"] == 1
    page = html_path.read_text(encoding="utf-8")
    # Nothing is fetched: no URL scheme anywhere, every src/href is a data URI or an anchor.
    assert not re.search(r"(?i)(https?|ftp|file):", page)
    assert "url(" not in page and "@import" not in page
    for target in re.findall(r'(?i)(?:src|href)\s*=\s*"([^"]*)"', page):
        assert target.startswith(("data:image/png;base64,", "#sample-"))
    examples = sum(
        (r.verdict is not None and r.verdict.status == "counterexample") + sum(m.example is not None for m in r.manipulations)
        for r in res.records
    )
    images = _pngs(page)
    assert examples >= 1 and len(images) == 3 * examples  # original, counterexample, difference
    # The first image of the first card is its sample, scaled from the domain [0, 1] to 0..255.
    first = next(r for r in res.records if r.status == "counterexample")
    np.testing.assert_array_equal(_decode_png(images[0]), np.round(first.x.reshape(8, 8) * 255).astype(np.uint8))
    # The histogram has one bar per bin and counts every sample with a radius.
    assert 'aria-label="certified radii"' in page
    counts = [int(n) for n in re.findall(r"<title>(\d+) samples with radius in", page)]
    assert sum(counts) == sum(r.radius is not None for r in res.records)


def test_html_escapes_every_string() -> None:
    report: dict[str, Any] = json.loads(json.dumps(report_dict(result())))
    evil = '<script>alert("x")</script>'
    report["model"]["description"] = evil
    report["command"] = evil
    report["data"] = evil
    for sample in report["samples"]:
        sample["summary"] = evil
        for m in sample["manipulations"]:
            m["spec"] = m["message"] = evil
    report["manipulations"][0]["spec"] = evil
    page = render_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    # A report missing its optional parts still renders.
    assert "<html" in render_html({"schema": 1})


# --- the command ------------------------------------------------------------------------------

FACTORY = '''
import numpy as np
import torch
from torch import nn


def build():
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    weights = np.load({path!r}, allow_pickle=False)
    net.load_state_dict({{k: torch.from_numpy(weights[k]) for k in weights.files}})
    return net


def not_a_module():
    return 42
'''


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    weights = tmp_path / "weights.npz"
    np.savez(weights, **{k: v.detach().numpy() for k, v in trained_mlp().state_dict().items()})
    factory = tmp_path / "digits_model.py"
    factory.write_text(FACTORY.format(path=str(weights)))
    x, y = held_out(5)
    samples = tmp_path / "samples.npz"
    np.savez(samples, x=x, y=y)
    robust = tmp_path / "robust.npz"
    np.savez(robust, x=x[2:5])
    return {"factory": factory, "samples": samples, "robust": robust, "dir": tmp_path}


def _onnx_mlp(path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    state = {k: v.detach().numpy() for k, v in trained_mlp().state_dict().items()}
    inits = [numpy_helper.from_array(v, name) for name, v in state.items()]
    nodes = [
        helper.make_node("Gemm", ["x", "0.weight", "0.bias"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "2.weight", "2.bias"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_command_with_a_factory_file(files: dict[str, Path]) -> None:
    out = io.StringIO()
    code = robustness_command(
        f"{files['factory']}:build", str(files["samples"]), 0.02, "linf", "0,1", ["occlusion:2:1:0"], True,
        str(files["dir"] / "report"), 1.0, False, workers=1, stream=out,
    )
    text = out.getvalue()
    report = json.loads((files["dir"] / "report" / "report.json").read_text())
    check_report(report)
    assert (files["dir"] / "report" / "report.html").is_file()
    assert code == report["exit_code"] == (1 if report["totals"]["counterexample"] + report["totals"]["misclassified"] else 0)
    assert "[1/5] sample 0" in text and "[5/5]" in text
    assert "status" in text and "certified radius (linf)" in text and "occlusion:2:1:0: adversarial for" in text
    assert str(files["dir"] / "report" / "report.json") in text.splitlines()[-1]


def test_command_exit_codes_with_an_onnx_model(files: dict[str, Path]) -> None:
    model = files["dir"] / "digits.onnx"
    _onnx_mlp(model)
    out = io.StringIO()

    def run(data: Path, eps: float, timeout: float, name: str, stream: io.StringIO) -> int:
        return robustness_command(
            str(model), str(data), eps, "linf", "0,1", [], False, str(files["dir"] / name), timeout, True, stream=stream
        )

    assert run(files["robust"], 0.003, 5.0, "a", out) == 0
    text = out.getvalue()
    assert "[1/3]" not in text and "model " not in text  # quiet: no header, no per-sample lines
    assert text.splitlines()[-1].startswith("3 verified") and "verified                3" in text
    # No time at all: the attack finds nothing on robust samples and nothing is proved.
    assert run(files["robust"], 0.003, 1e-6, "b", io.StringIO()) == 3
    assert run(files["samples"], 0.2, 5.0, "c", io.StringIO()) == 1


def test_command_input_errors(files: dict[str, Path], tmp_path: Path) -> None:
    def run(model: str, data: str, **changes: Any) -> int:
        options: dict[str, Any] = {"eps": 0.01, "norm": "linf", "domain": "0,1", "manipulations": [], "radius": False,
                                   "out": str(tmp_path / "o"), "timeout": 1.0, "quiet": True, "stream": io.StringIO()}
        options.update(changes)
        return robustness_command(model, data, **options)

    factory, samples = f"{files['factory']}:build", str(files["samples"])
    with pytest.raises(GauntletError, match="no such file"):
        run(factory, str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "nox.npz", data=np.zeros((2, 64)))
    with pytest.raises(GauntletError, match="array named 'x'"):
        run(factory, str(tmp_path / "nox.npz"))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(GauntletError, match="objects|pickle"):
        run(factory, str(tmp_path / "objects.npz"))
    np.savez(tmp_path / "badlabels.npz", x=np.zeros((2, 64)), y=np.array([0.5, 1.5]))
    with pytest.raises(GauntletError, match="integer label"):
        run(factory, str(tmp_path / "badlabels.npz"))
    with pytest.raises(GauntletError, match="LO < HI"):
        run(factory, samples, domain="1,0")
    with pytest.raises(GauntletError, match="unknown manipulation"):
        run(factory, samples, manipulations=["blur:1"])
    with pytest.raises(GauntletError, match="--norm"):
        run(factory, samples, norm="l1")
    with pytest.raises(GauntletError, match="no file"):
        run(str(tmp_path / "nothing.py") + ":build", samples)
    with pytest.raises(GauntletError, match="not a torch.nn.Module"):
        run(f"{files['factory']}:not_a_module", samples)
    with pytest.raises(GauntletError, match="has no function"):
        run(f"{files['factory']}:missing", samples)
    with pytest.raises(GauntletError, match="cannot import module"):
        run("no_such_package.models:build", samples)
    with pytest.raises(GauntletError, match="give an .onnx file"):
        run("model.pt", samples)
    with pytest.raises(GauntletError, match="no such file"):
        run(str(tmp_path / "missing.onnx"), samples)


def test_loading_helpers(files: dict[str, Path]) -> None:
    x, y = load_samples(files["samples"])
    assert x.shape == (5, 64) and x.dtype == np.float64 and y is not None and y.shape == (5,)
    assert load_samples(files["robust"])[1] is None
    assert parse_domain("0:1") == parse_domain("0,1") == (0.0, 1.0) and parse_domain(None) is None
    model = load_model(f"{files['factory']}:build", x[:1])
    with torch.no_grad():
        expected = trained_mlp()(torch.from_numpy(x[:1].astype(np.float32))).numpy()
    np.testing.assert_allclose(model.run_real(x[:1].astype(np.float32)), expected, rtol=1e-6)
