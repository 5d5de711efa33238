"""Backends: discovery (built-ins, entry points, module:attr and file.py:Class specs),
every available backend against the reference on real graphs, GPU variants skipping
cleanly, and the protocol errors a plug-in author sees."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from fuzz.backends import BUILTIN, CPU_DEFAULT, Model, known, load
from fuzz.oracle import expectations, judge
from fuzz.stability import reference
from generators.errors import GauntletError
from generators.graph_gen import GenOptions, GraphGenerator
from generators.ops import catalog
from generators.values import make_feed

ROOT = Path(__file__).resolve().parents[2]
CPU = ("torch_eager", "torch_compile", "tf_eager", "tf_xla", "onnxruntime")
GPU = ("torch_cuda", "torch_compile_cuda", "tf_gpu")


def test_builtins_are_known_and_named_as_listed() -> None:
    assert set(CPU + GPU) == set(BUILTIN) and set(CPU_DEFAULT) <= set(BUILTIN)
    for name in BUILTIN:
        backend = load(name)
        assert backend.name == name
        assert backend.lowering in ("torch", "tensorflow", "onnx")


def graphs_with_feeds(count: int, seed: int = 0):  # type: ignore[no-untyped-def]
    gen = GraphGenerator(catalog(), GenOptions(max_nodes=5, ops=("add", "mul", "tanh", "exp", "matmul", "reshape", "relu", "softmax", "conv2d", "sum")))
    found = 0
    s = seed
    while found < count:
        graph = gen.generate(s)
        feed = make_feed(graph, np.random.default_rng(s), catalog())
        s += 1
        if feed is not None:
            found += 1
            yield s - 1, graph, feed


@pytest.mark.parametrize("name", CPU + GPU)
def test_each_available_backend_agrees_with_the_reference(name: str) -> None:
    backend = load(name)
    if not backend.available():
        pytest.skip(f"{name} is not available on this machine")
    count = 2 if "compile" in name else 6
    for seed, graph, feed in graphs_with_feeds(count):
        inputs = feed.inputs(graph)
        outputs = backend.run(backend.prepare(Model(graph, feed.weights(graph), tuple(inputs), catalog())), inputs)
        ref = reference(graph, feed.arrays, catalog(), seed)
        from fuzz.oracle import Outcome

        verdict = judge([Outcome(name, "ok", "", tuple(outputs))], ref.outputs, ref.spread, expectations(graph, catalog()))
        assert verdict.kind == "pass", (seed, verdict)
    assert backend.version()


@pytest.mark.parametrize("name", GPU)
def test_gpu_backends_report_unavailable_without_a_device(name: str) -> None:
    backend = load(name)
    torch_cuda = False
    try:
        import torch

        torch_cuda = torch.cuda.is_available()
    except ImportError:
        pass
    if torch_cuda:
        pytest.skip("a GPU is present: the agreement test runs this backend for real")
    if name == "tf_gpu":
        import tensorflow as tf

        assert backend.available() == bool(tf.config.list_physical_devices("GPU"))
    else:
        assert backend.available() is False


def test_a_backend_from_a_file_spec_runs() -> None:
    spec = f"{ROOT / 'examples' / 'torch_export_backend.py'}:TorchExport"
    backend = load(spec)
    assert backend.name == "torch_export"
    ((seed, graph, feed),) = list(graphs_with_feeds(1, seed=3))
    out = backend.run(backend.prepare(Model(graph, feed.weights(graph), tuple(feed.inputs(graph)), catalog())), feed.inputs(graph))
    ref = reference(graph, feed.arrays, catalog(), seed)
    from fuzz.oracle import Outcome

    assert judge([Outcome("torch_export", "ok", "", tuple(out))], ref.outputs, ref.spread, expectations(graph, catalog())).kind == "pass"


def test_a_backend_from_a_module_spec_and_from_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "acme_compiler"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from fuzz.backends.torch_eager import TorchEager\n\n"
        "class Acme(TorchEager):\n    name = 'acme'\n"
    )
    dist = tmp_path / "acme_compiler-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-compiler\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[gauntlet.backends]\nacme = acme_compiler:Acme\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load("acme_compiler:Acme").name == "acme"
    assert known()["acme"] == "acme_compiler:Acme"
    assert load("acme").name == "acme"
    sys.modules.pop("acme_compiler", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonexistent_backend", "unknown backend"),
        ("no_such_module_xyz:Thing", "cannot import backend module"),
        ("fuzz.backends.torch_eager:Nope", "has no attribute"),
        ("fuzz.backends.base:Model", "is not a Gauntlet backend"),
        ("missing/file.py:Backend", "does not exist"),
        (":x", "must look like"),
    ],
)
def test_bad_specs_are_clear_user_errors(spec: str, message: str) -> None:
    with pytest.raises(GauntletError, match=message):
        load(spec)
