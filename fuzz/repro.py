"""Bug directories: a finding's graph, inputs and judged outputs on disk, a standalone
`repro.py` (numpy and the backend's framework only) and an `issue.md` draft for upstream.
Imports no framework (onnx only, lazily, to export the model for onnxruntime).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fuzz.gradients import GRADIENT_SLACK, cotangents_for
from fuzz.oracle import TOLERANCE, Finding, allowed_error, expectations
from generators.dtypes import DType
from generators.errors import GauntletError
from generators.ir import Graph, format_graph
from generators.materialize.script import harness_source, model_source, npy_array
from generators.spec import OpSpec

__all__ = ["BugCase", "standalone_backends", "write_bug_dir", "write_inputs"]


@dataclass(frozen=True)
class BugCase:
    """One finding with everything a reproducer needs."""

    graph: Graph
    arrays: tuple[np.ndarray, ...]  # one per placeholder
    finding: Finding  # the bug; its first backend is the one the reproducer runs
    reference: tuple[np.ndarray, ...] | None  # float64 reference outputs; None when not computed
    # Per output: the allowed |actual - expected| per element (inf: not judged); a None entry
    # is an exact comparison; None: the oracle's dtype tolerance without spread.
    allowed: tuple[np.ndarray | None, ...] | None
    versions: Mapping[str, str]  # backend name -> version (and anything else worth printing)
    seed: int
    # One per graph output, for wrong_gradient; None: the gradient oracle's own for `seed`.
    cotangents: tuple[np.ndarray, ...] | None = None
    threads: int = 1  # framework threads of the worker that found it (some kernels depend on it)


@dataclass(frozen=True)
class _Engine:
    framework: Literal["torch", "tensorflow", "onnx"]
    device: str
    compiled: bool
    label: str  # how an issue title names it
    how: str  # how the backend runs a model, in words


_ENGINES: Mapping[str, _Engine] = {
    "torch_eager": _Engine("torch", "cpu", False, "PyTorch", "torch eager mode on the CPU"),
    "torch_compile": _Engine(
        "torch", "cpu", True, "torch.compile", 'torch.compile(backend="inductor", fullgraph=True, dynamic=False) on the CPU'
    ),
    "torch_cuda": _Engine("torch", "cuda", False, "PyTorch CUDA", "torch eager mode on a CUDA GPU"),
    "torch_compile_cuda": _Engine(
        "torch", "cuda", True, "torch.compile CUDA", 'torch.compile(backend="inductor", fullgraph=True, dynamic=False) on a CUDA GPU'
    ),
    "tf_eager": _Engine("tensorflow", "/CPU:0", False, "TensorFlow", "TensorFlow eager mode on the CPU"),
    "tf_xla": _Engine("tensorflow", "/CPU:0", True, "TensorFlow XLA", "tf.function(jit_compile=True, autograph=False) on the CPU"),
    "tf_gpu": _Engine("tensorflow", "/GPU:0", False, "TensorFlow GPU", "TensorFlow eager mode on a GPU"),
    "onnxruntime": _Engine(
        "onnx", "cpu", False, "ONNX Runtime", "onnxruntime, CPUExecutionProvider, ORT_ENABLE_ALL, on Gauntlet's own ONNX export"
    ),
}

_COMPARED = frozenset({"wrong_result", "nan_inf"})
_TYPED = {"wrong_shape": "shape", "wrong_dtype": "dtype"}
_PHRASE = {
    "wrong_result": "wrong result", "nan_inf": "NaN/Inf in the output", "wrong_shape": "wrong output shape",
    "wrong_dtype": "wrong output dtype", "wrong_gradient": "wrong gradient", "rejection": "raises an error",
    "segfault": "segmentation fault", "abort": "abort", "hang": "hang", "oom": "out of memory",
    "killed": "process killed", "exit": "process exits",
}
# Significand bits per float dtype: the `ulps` term of a tolerance counts spacings of these.
_DIGITS: Mapping[DType, int] = {DType.float16: 11, DType.bfloat16: 8, DType.float32: 24, DType.float64: 53}
_INLINE_LIMIT = 16  # inputs and references up to this many elements are also printed in issue.md


def standalone_backends() -> frozenset[str]:
    """The backends `write_bug_dir` can write a standalone repro.py for."""
    return frozenset(_ENGINES)


def write_inputs(directory: Path, graph: Graph, arrays: Sequence[np.ndarray]) -> None:
    """graph.json and p{i}.npy (bfloat16 stored as float32, exact): enough for `gauntlet replay`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "graph.json").write_text(graph.to_json() + "\n")
    for i, array in enumerate(arrays):
        np.save(directory / f"p{i}.npy", npy_array(np.asarray(array)), allow_pickle=False)


def write_bug_dir(directory: Path, case: BugCase, catalog: Mapping[str, OpSpec]) -> None:
    """The bug directory: graph.json, p{i}.npy, expected_{k}.npy/allowed_{k}.npy (judged
    outputs), cotangent_{k}.npy (wrong_gradient), model.onnx (onnxruntime), repro.py and
    issue.md. Raises GauntletError, before writing anything, when no standalone reproducer
    can be written (a third-party backend, a missing lowering, a missing reference)."""
    graph, finding = case.graph, case.finding
    if len(case.arrays) != len(graph.placeholders):
        raise GauntletError(f"{len(case.arrays)} arrays for {len(graph.placeholders)} placeholders")
    if not finding.backends:
        raise GauntletError("the finding names no backend")
    backend = finding.backends[0]
    engine = _ENGINES.get(backend)
    if engine is None:
        raise GauntletError(
            f"no standalone reproducer for backend {backend} (it is not built in); keep graph.json and the "
            f"inputs and reproduce it with `gauntlet replay`"
        )
    judged = _judged_outputs(case, catalog)
    cotangents: list[np.ndarray] = []
    if finding.symptom == "wrong_gradient":
        if engine.framework == "onnx" or engine.compiled:
            raise GauntletError(f"{backend} does not take part in the gradient oracle: no gradient reproducer")
        cotangents = cotangents_for(graph, case.seed) if case.cotangents is None else list(case.cotangents)
        if len(cotangents) != len(graph.outputs):
            raise GauntletError("a wrong_gradient reproducer needs one cotangent per graph output")
    onnx_model = _onnx_bytes(case, catalog) if engine.framework == "onnx" else None
    script = _script(case, backend, engine, catalog, sorted(judged))

    write_inputs(directory, graph, case.arrays)
    for k, (expected, allowed) in judged.items():
        np.save(directory / f"expected_{k}.npy", npy_array(expected), allow_pickle=False)
        np.save(directory / f"allowed_{k}.npy", allowed, allow_pickle=False)
    for k, c in enumerate(cotangents):
        np.save(directory / f"cotangent_{k}.npy", npy_array(np.asarray(c)), allow_pickle=False)
    if onnx_model is not None:
        (directory / "model.onnx").write_bytes(onnx_model)
    (directory / "repro.py").write_text(script)
    (directory / "issue.md").write_text(_issue(case, backend, engine, script, judged, onnx_model))


# --- what goes to disk ---------------------------------------------------------------------


def _judged_outputs(case: BugCase, catalog: Mapping[str, OpSpec]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Output k -> (float64/int64 reference, allowed |error| per element) for the outputs a
    wrong_result/nan_inf finding is about; empty for other symptoms."""
    if case.finding.symptom not in _COMPARED:
        return {}
    if case.reference is None or len(case.reference) != len(case.graph.outputs):
        raise GauntletError(f"a {case.finding.symptom} reproducer needs the reference of every graph output")
    wants = expectations(case.graph, catalog)
    ks = _finding_outputs(case)
    out = {}
    for k in ks:
        expected = np.asarray(case.reference[k])
        given = case.allowed[k] if case.allowed is not None else None
        if case.allowed is not None and given is None:
            allowed = np.zeros(expected.shape)  # exact
        elif given is not None:
            allowed = np.asarray(given, dtype=np.float64)
        else:  # the judge's own tolerance, without the reference's spread (not recorded)
            default = allowed_error(expected, np.zeros(expected.shape), wants[k])
            allowed = np.zeros(expected.shape) if default is None else default
        if allowed.shape != expected.shape:
            raise GauntletError(f"output {k}: allowed has shape {list(allowed.shape)}, the reference {list(expected.shape)}")
        out[k] = (expected, allowed)
    return out


def _finding_outputs(case: BugCase) -> list[int]:
    """The outputs a finding is about: its own, or all of them."""
    n, k = len(case.graph.outputs), case.finding.output
    if k is not None and not 0 <= k < n:
        raise GauntletError(f"the finding names output {k}; the graph has {n}")
    return list(range(n)) if k is None else [k]


def _onnx_bytes(case: BugCase, catalog: Mapping[str, OpSpec]) -> bytes:
    from generators.materialize.onnx import to_onnx

    weights = {i: case.arrays[i] for i in case.graph.weight_indices}
    try:
        model = to_onnx(case.graph, weights, catalog, bfloat16_io_as_float32=True)
    except NotImplementedError as exc:
        raise GauntletError(f"cannot export the graph to ONNX: {exc}") from None
    return bytes(model.SerializeToString())


# --- repro.py ------------------------------------------------------------------------------


def _py(value: object) -> str:
    """A literal for the script (its strings are names and dtypes: no quotes inside)."""
    return repr(value).replace("'", '"')


def _round(x: float) -> float:
    """1e-05, not 9.999999999999999e-06, in the script's tolerance table."""
    return float(f"{x:.12g}")


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _short(text: str, lines: int = 8, chars: int = 800) -> str:
    kept = "\n".join(text.strip().splitlines()[:lines])
    return kept if len(kept) <= chars else kept[:chars] + " ..."


def _dies(symptom: str) -> str:
    if symptom in _COMPARED | set(_TYPED) | {"rejection", "wrong_gradient"}:
        return ""
    return "; a hang never returns" if symptom == "hang" else "; a crash kills the process"


def _script(case: BugCase, backend: str, engine: _Engine, catalog: Mapping[str, OpSpec], judged: list[int]) -> str:
    finding = case.finding
    package = {"torch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}[engine.framework]
    versions = "; ".join(f"{k} {v}" for k, v in case.versions.items()) or "not recorded"
    where = f"output {finding.output}, " if finding.output is not None else ""
    reads = "model.onnx and the .npy files" if engine.framework == "onnx" else "the .npy files"
    header = f'''"""Reproducer: {_PHRASE.get(finding.symptom, finding.symptom)} on {backend} ({finding.symptom}, {where}{finding.stage or "?"} stage).

{_docstring_safe(_short(finding.detail)) or "(no detail recorded)"}

Backend:  {backend}: {engine.how}
Versions: {_docstring_safe(versions)}
Found by: Gauntlet, seed {case.seed} (graph.json holds the graph).

Run: python repro.py   (needs numpy and {package}; reads {reads} beside it)
Exit status 1: the bug reproduced; 0: it did not{_dies(finding.symptom)}.
"""

from __future__ import annotations

{"" if engine.framework == "onnx" else "import math" + chr(10)}import os
import sys
'''
    parts = [header]
    if engine.framework == "torch":
        parts.append(_torch_part(case, engine, catalog))
    elif engine.framework == "tensorflow":
        parts.append(_tf_part(case, engine, catalog))
    else:
        parts.append(_onnx_part(case, backend))
    parts.append(_check_part(case, backend, judged))
    parts.append('\n\nif __name__ == "__main__":\n    check()\n')
    return "".join(parts)


_LOAD = """HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    return np.load(os.path.join(HERE, name), allow_pickle=False)
"""


def _torch_part(case: BugCase, engine: _Engine, catalog: Mapping[str, OpSpec]) -> str:
    if engine.compiled:
        run_body = """    import torch._inductor.config

    torch._inductor.config.compile_threads = 1  # as Gauntlet's workers do
    module, inputs = build()
    compiled = torch.compile(module, backend="inductor", fullgraph=True, dynamic=False)
    with torch.no_grad():
        compiled(*inputs)  # Gauntlet compiles on a first call, then runs
        return list(compiled(*inputs))"""
    else:
        run_body = """    module, inputs = build()
    with torch.no_grad():
        return list(module(*inputs))"""
    return f"""
import numpy as np
import torch

DEVICE = "{engine.device}"
torch.set_num_threads({case.threads})  # Gauntlet's worker thread count

{_LOAD}

{model_source(case.graph, "torch", catalog)}

{harness_source(case.graph, "torch", case.finding.symptom == "wrong_gradient")}

def run():
    \"\"\"The graph outputs as {case.finding.backends[0]} computes them.\"\"\"
{run_body}
"""


def _tf_part(case: BugCase, engine: _Engine, catalog: Mapping[str, OpSpec]) -> str:
    compile_line = (
        "        forward = tf.function(forward, jit_compile=True, reduce_retracing=False, autograph=False)\n"
        "        forward(*inputs)  # Gauntlet compiles on a first call, then runs\n"
        if engine.compiled else ""
    )
    return f"""
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

DEVICE = "{engine.device}"
tf.config.threading.set_intra_op_parallelism_threads({case.threads})  # Gauntlet's worker thread count
tf.config.threading.set_inter_op_parallelism_threads({case.threads})

{_LOAD}

{model_source(case.graph, "tensorflow", catalog)}

{harness_source(case.graph, "tensorflow", case.finding.symptom == "wrong_gradient")}

def run():
    \"\"\"The graph outputs as {case.finding.backends[0]} computes them.\"\"\"
    with tf.device(DEVICE):
        forward, inputs = build()
{compile_line}        return list(forward(*inputs))
"""


def _onnx_part(case: BugCase, backend: str) -> str:
    feeds = "{" + ", ".join(f'"in{i}": "p{i}"' for i in case.graph.input_indices) + "}"
    return f"""
import numpy as np
import onnxruntime as ort

{_LOAD}
# ONNX input -> placeholder; weights are initializers inside model.onnx. bfloat16 inputs and
# outputs cross the model boundary as float32 (exact Casts inside), as Gauntlet feeds them.
FEEDS = {feeds}


def run():
    \"\"\"The graph outputs as {backend} computes them.\"\"\"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1  # as Gauntlet's onnxruntime backend
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.path.join(HERE, "model.onnx"), options, providers=["CPUExecutionProvider"])
    return session.run(None, {{name: load(p + ".npy") for name, p in FEEDS.items()}})


def numpy_of(t):
    return np.asarray(t)


def dtype_of(t):
    return t.dtype.name
"""


_MISMATCH = '''

def mismatch(label, actual, expected, allowed):
    """Prints how `actual` compares; True where a judged element (finite `allowed`) is off by
    more than `allowed` or is NaN."""
    if actual.shape != expected.shape:
        print(f"{label}: shape {list(actual.shape)}, expected {list(expected.shape)}")
        return True
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if expected.dtype.kind in "iub":  # exact, in integers
            error = np.abs(actual.astype(np.int64) - expected.astype(np.int64)).astype(np.float64)
        else:
            error = np.abs(a - e)
        bad = np.isfinite(allowed) & ~(error <= allowed)
        judged = int(np.isfinite(allowed).sum())
        if not bad.any():
            print(f"{label}: all {judged} judged element(s) within tolerance")
            return False
        excess = np.where(bad, np.nan_to_num(error / np.maximum(allowed, 1e-300), nan=np.inf), 0.0)
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
    print(
        f"{label}: {int(bad.sum())} of {judged} judged element(s) outside tolerance; worst at "
        f"{[int(i) for i in worst]}: actual {a[worst].item()!r}, expected {e[worst].item()!r}, "
        f"|error| {error[worst].item():.6g} > allowed {allowed[worst].item():.6g}"
    )
    return True
'''


def _check_part(case: BugCase, backend: str, judged: list[int]) -> str:
    symptom = case.finding.symptom
    what = f"{symptom} on {backend}"
    if symptom in _COMPARED:
        return _MISMATCH + f'''

# Output k -> expected_{{k}}.npy (float64 reference) and allowed_{{k}}.npy (allowed |error| per
# element; inf: not judged, 0: exact).
JUDGED = {_py(judged)}


def check():
    outputs = run()
    failed = False
    for k in JUDGED:
        expected, allowed = load(f"expected_{{k}}.npy"), load(f"allowed_{{k}}.npy")
        failed |= mismatch(f"output {{k}}", numpy_of(outputs[k]), expected, allowed)
    if failed:
        print("reproduced: {what}")
        sys.exit(1)
    print("not reproduced: every judged element is within tolerance")
'''
    if symptom in _TYPED:
        return _typed_check(case, backend, _TYPED[symptom])
    if symptom == "rejection":
        return f'''

def check():
    try:
        run()
    except Exception:
        import traceback

        traceback.print_exc()
        print("reproduced: {what} (the backend raised; the NumPy reference and other backends ran)")
        sys.exit(1)
    print("not reproduced: ran without an exception")
'''
    if symptom == "wrong_gradient":
        return _gradient_check(case, what)
    return f'''

def check():
    run()  # {symptom}: the process should die here
    print("not reproduced: ran to completion (expected: {symptom})")
'''


def _typed_check(case: BugCase, backend: str, kind: str) -> str:
    graph = case.graph
    ks = _finding_outputs(case)
    declared = []
    for ref in graph.outputs:
        t = graph.type_of(ref)
        # onnxruntime's Python API fetches bfloat16 as float32 (the exported model casts).
        dtype = "float32" if backend == "onnxruntime" and t.dtype is DType.bfloat16 else t.dtype.value
        declared.append((t.shape, dtype))
    count = '''    if len(outputs) != len(DECLARED):
        problems.append(f"{len(outputs)} outputs, expected {len(DECLARED)}")
''' if kind == "shape" else ""
    compare = (
        'tuple(int(d) for d in outputs[k].shape) != DECLARED[k][0]' if kind == "shape" else "dtype_of(outputs[k]) != DECLARED[k][1]"
    )
    got = "list(outputs[k].shape)" if kind == "shape" else "dtype_of(outputs[k])"
    want = "list(DECLARED[k][0])" if kind == "shape" else "DECLARED[k][1]"
    return f'''

# Shape and dtype of each graph output, as the graph declares them.
DECLARED = {_py(declared)}
CHECKED = {_py(ks)}


def check():
    outputs = run()
    problems = []
{count}    for k in CHECKED:
        if k < len(outputs) and {compare}:
            problems.append(f"output {{k}}: {kind} {{{got}}}, expected {{{want}}}")
    for p in problems:
        print(p)
    if problems:
        print("reproduced: wrong_{kind} on {backend}")
        sys.exit(1)
    print("not reproduced: every output has the declared {kind}")
'''


def _gradient_check(case: BugCase, what: str) -> str:
    graph = case.graph
    floats = {f"p{i}": graph.placeholders[i].type.dtype for i in graph.input_indices if graph.placeholders[i].type.dtype.is_float}
    table = {
        d.value: (_round(TOLERANCE[d].rtol * GRADIENT_SLACK), _round(TOLERANCE[d].atol * GRADIENT_SLACK), TOLERANCE[d].ulps, _DIGITS[d])
        for d in sorted(set(floats.values()), key=lambda d: d.value)
    }
    return _MISMATCH + f'''

# Float inputs (the gradients' order) and, per dtype, Gauntlet's tolerance widened by its
# gradient slack: |error| <= atol + rtol * |expected| + ulps * spacing(expected), with
# (rtol, atol, ulps, significand bits).
FLOAT_INPUTS = {_py({n: d.value for n, d in floats.items()})}
TOLERANCE = {_py(table)}


def check():
    got, want = vjp(), vjp(wide=True)
    failed = False
    for (name, dtype), g, e in zip(FLOAT_INPUTS.items(), got, want):
        rtol, atol, ulps, digits = TOLERANCE[dtype]
        e = numpy_of(e).astype(np.float64)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            spacing = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(e), 1e-300))) - (digits - 1))
            allowed = np.where(np.isfinite(e), atol + rtol * np.abs(e) + ulps * spacing, np.inf)
        failed |= mismatch(f"gradient w.r.t. {{name}}", numpy_of(g), e, allowed)
    if failed:
        print("reproduced: {what} (against the float64 eager gradient)")
        sys.exit(1)
    print("not reproduced: every gradient agrees with the float64 eager gradient")
'''


# --- issue.md ------------------------------------------------------------------------------


def _literal(array: np.ndarray) -> str:
    stored = npy_array(np.asarray(array))
    return f"np.array({stored.tolist()!r}, dtype=np.{stored.dtype.name})"


def _title(case: BugCase, engine: _Engine) -> str:
    ops = list(dict.fromkeys(case.graph.op_names()))
    named = ", ".join(f"`{op}`" for op in ops[:3]) + (f" and {len(ops) - 3} more" if len(ops) > 3 else "")
    dtypes = "/".join(sorted({p.type.dtype.value for p in case.graph.placeholders}))
    phrase = _PHRASE.get(case.finding.symptom, case.finding.symptom)
    return f"[{engine.label}] {phrase} for {named or 'a graph'} on {dtypes or 'no inputs'}"


def _issue(
    case: BugCase, backend: str, engine: _Engine, script: str, judged: Mapping[int, tuple[np.ndarray, np.ndarray]],
    onnx_model: bytes | None,
) -> str:
    graph, finding = case.graph, case.finding
    lines = [f"# {_title(case, engine)}", "", "## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in case.versions.items()]
    lines += [
        f"- Python {platform.python_version()}, NumPy {np.__version__}, {platform.platform()}",
        f"- backend: {engine.how}; {case.threads} framework thread(s)",
        "", "## Minimal reproducer", "",
        "`python repro.py` in a directory holding the attached files; it needs only NumPy and the framework, "
        "and exits with status 1 when the bug reproduces. The inputs are attached as `.npy` files "
        "(load with `np.load(name, allow_pickle=False)`; bfloat16 is stored as float32, exactly):", "",
    ]
    for i, (p, array) in enumerate(zip(graph.placeholders, case.arrays)):
        note = f" = `{_literal(array)}`" if np.asarray(array).size <= _INLINE_LIMIT else ""
        inside = "; inside model.onnx, not fed" if onnx_model is not None and p.kind == "weight" else ""
        lines.append(f"- `p{i}.npy`: {p.type} ({p.kind}{inside}){note}")
    if onnx_model is not None:
        lines.append("- `model.onnx`: the model (weights inside), exported by Gauntlet's own ONNX exporter")
    if finding.symptom == "wrong_gradient":
        lines.append("- `cotangent_{k}.npy`: the cotangent of each graph output")
    lines += ["", "```python", script.rstrip(), "```", ""]
    if onnx_model is not None:
        text = _onnx_text(onnx_model)
        if text is not None:
            lines += ["The ONNX model in text form:", "", "```", text, "```", ""]
    lines += ["## Expected vs actual", "", "Actual (as Gauntlet recorded it):", "", "```"]
    lines += [finding.detail.strip() or "(no detail recorded)", "```", "", *_expected_lines(case, judged)]
    lines += [
        "", "## How it was found", "",
        f"Gauntlet (differential testing of generated graphs against a float64 NumPy reference), seed {case.seed}, "
        f"symptom `{finding.symptom}` at the {finding.stage or 'unknown'} stage. The graph:", "",
        "```", format_graph(graph), "```", "",
    ]
    return "\n".join(lines)


def _expected_lines(case: BugCase, judged: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    symptom, graph = case.finding.symptom, case.graph
    if symptom in _TYPED:
        return [f"Expected: output {k} is {graph.type_of(ref)} (as the graph declares)" for k, ref in enumerate(graph.outputs)]
    if symptom == "wrong_gradient":
        return ["Expected: the gradient the same framework computes in float64 eager mode (repro.py computes both)."]
    if symptom not in _COMPARED:
        return ["Expected: the graph runs to completion (the float64 NumPy reference computed it)."]
    lines = []
    for k, (expected, _) in sorted(judged.items()):
        e = expected.astype(np.float64)
        with np.errstate(all="ignore"):
            values = f"`{expected.tolist()!r}`" if expected.size <= _INLINE_LIMIT else (
                f"shape {list(e.shape)}, min {np.nanmin(e):.6g}, max {np.nanmax(e):.6g}, mean {np.nanmean(e):.6g}")
        lines.append(f"Expected output {k} (float64 reference, in expected_{k}.npy): {values}")
    return lines


def _onnx_text(model: bytes, max_lines: int = 60) -> str | None:
    """The model in ONNX's text syntax when short enough to read in an issue."""
    try:
        import onnx
        from onnx import printer

        text = str(printer.to_text(onnx.load_from_string(model)))
    except Exception:  # an onnx without the printer, or one that cannot print this model: the attachment suffices
        return None
    return text if len(text.splitlines()) <= max_lines else None
