"""The TensorFlow trace collector (the collector protocol of generators/rules): which public
ops are traced, their docstring and signature-built examples, probe runs with fresh tensors,
and recording a user's command. TensorFlow is imported lazily, inside functions."""

from __future__ import annotations

import functools
import inspect
import math
import os
import types
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generators.errors import GauntletError
from generators.rules import tf_docs
from generators.rules.trace import Arg, Invocation, Trace
from generators.rules.user_command import InstrumentError, command_target, run_recorded  # noqa: F401 - InstrumentError is part of the collector API

FRAMEWORK = "tensorflow"
# The namespaces whose public functions are candidate APIs (tf.sparse, tf.random, tf.io,
# tf.data, tf.strings... are not: sparse and string tensors and randomness have no rules).
MODULES = ("tf", "tf.math", "tf.math.special", "tf.nn", "tf.linalg", "tf.signal", "tf.image",
           "tf.bitwise")
# Shapes a signature-built call gives its tensor parameters (all of them the same shape):
# ranks 0..4, square and not, a last dim of 3 (RGB images, cross products) and not.
SIG_SHAPES: tuple[tuple[int, ...], ...] = ((), (3,), (4,), (3, 4), (4, 3), (4, 4), (2, 3, 4), (2, 4, 3),
                                           (2, 3, 3), (1, 2, 3, 4))
# Dtypes a signature-built call tries, in order, until one gives a valid call (bitwise ops
# want ints, FFTs complex numbers, logical ops bools).
SIG_DTYPES = ("float32", "int32", "complex64", "bool")
MAX_ELEMENTS = 1 << 24  # a probe tensor above this is refused: probing runs real kernels in a bounded worker

# Canonical-name prefixes that are never traced, and why.
_EXCLUDED_PREFIXES = {
    "tf.random.": "random sampling", "tf.io.": "file or image I/O", "tf.debugging.": "debugging/assert op",
    "tf.strings.": "string tensors are not representable", "tf.sparse.": "sparse tensors are not representable",
    "tf.graph_util.": "graph construction, not an op", "tf.data.": "input pipeline",
    "tf.saved_model.": "I/O", "tf.summary.": "I/O", "tf.compat.": "legacy API",
    "tf.autograph.": "control flow taking callables", "tf.config.": "runtime configuration",
}
# Substrings of the last name component that mark random ops.
_RANDOM_WORDS = ("random", "dropout", "candidate_sampler", "sample_distorted_bounding_box")
_EXCLUDED_NAMES = {
    "tf.Variable": "stateful", "tf.print": "printing", "tf.timestamp": "nondeterministic clock",
    "tf.py_function": "runs Python callables", "tf.numpy_function": "runs Python callables",
    "tf.function": "takes a callable", "tf.cond": "control flow taking callables",
    "tf.case": "control flow taking callables", "tf.switch_case": "control flow taking callables",
    "tf.while_loop": "control flow taking callables", "tf.map_fn": "control flow taking callables",
    "tf.foldl": "control flow taking callables", "tf.foldr": "control flow taking callables",
    "tf.scan": "control flow taking callables", "tf.vectorized_map": "control flow taking callables",
    "tf.custom_gradient": "takes a callable", "tf.recompute_grad": "takes a callable",
    "tf.grad_pass_through": "takes a callable", "tf.nondifferentiable_batch_function": "takes a callable",
    "tf.gradients": "graph-mode gradients", "tf.hessians": "graph-mode gradients",
    "tf.control_dependencies": "graph context", "tf.device": "graph context",
    "tf.name_scope": "graph context", "tf.init_scope": "graph context",
    "tf.get_current_name_scope": "graph context", "tf.executing_eagerly": "runtime query",
    "tf.inside_function": "runtime query", "tf.no_op": "no output", "tf.group": "no output",
    "tf.tuple": "takes a list of tensors", "tf.identity_n": "takes a list of tensors",
    "tf.get_logger": "logging", "tf.load_library": "I/O", "tf.load_op_library": "I/O",
    "tf.register_tensor_conversion_function": "global registry", "tf.get_static_value": "not an op",
    "tf.is_tensor": "not an op", "tf.is_symbolic_tensor": "not an op", "tf.make_ndarray": "not an op",
    "tf.make_tensor_proto": "not an op", "tf.type_spec_from_value": "not an op",
    "tf.dtypes.as_dtype": "not an op", "tf.ensure_shape": "debugging/assert op",
    "tf.Assert": "debugging/assert op", "tf.math.is_non_decreasing": "debugging/assert op",
    "tf.math.is_strictly_increasing": "debugging/assert op", "tf.dynamic_partition": "data-dependent list output",
    "tf.check_pinned": "device query", "tf.broadcast_static_shape": "works on static shapes, not tensors",
}


@dataclass
class Collected:
    """Everything examples() learned about one API: traces and counts for the report."""

    traces: list[Trace]
    doc_blocks: int = 0  # docstring example blocks run
    doc_failed: int = 0  # blocks that raised (files, randomness, intentional errors, ...)
    skips: Counter[str] = field(default_factory=Counter)  # calls not recorded, by reason


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the import: keeps C++ logs quiet
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def version() -> str:
    return str(_tf().__version__)


def _resolve(tf: Any, dotted: str) -> Any:
    """The object at a dotted public name (`tf.math.add`), by getattr only; None if absent."""
    parts = dotted.split(".")
    if parts[0] != "tf" or any(p.startswith("_") or not p.isidentifier() for p in parts[1:]):
        return None
    obj = tf
    for part in parts[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@functools.lru_cache(maxsize=1)
def _candidates() -> dict[str, Any]:
    """Canonical name -> function for every public function of MODULES. The canonical name is
    the tf_export name TensorFlow documents it under (tf.add and tf.math.add are the one API
    "tf.math.add"), when that resolves to the same object; otherwise the longest of the names
    it was found under (then the first alphabetically)."""
    tf = _tf()  # first: it sets the log level before TensorFlow loads
    from tensorflow.python.util import tf_export

    found: dict[int, tuple[Any, list[str]]] = {}
    for module_name in MODULES:
        module = _resolve(tf, module_name)
        for name in dir(module):
            obj = getattr(module, name, None)
            if name.startswith("_") or not callable(obj) or inspect.isclass(obj) or isinstance(obj, types.ModuleType):
                continue
            found.setdefault(id(obj), (obj, []))[1].append(f"{module_name}.{name}")
    out: dict[str, Any] = {}
    for obj, paths in found.values():
        exported = tf_export.get_canonical_name_for_symbol(obj, api_name="tensorflow")
        name = f"tf.{exported}" if exported else ""
        if not exported or _resolve(tf, name) is not obj:
            name = min(paths, key=lambda p: (-p.count("."), p))
        out[name] = obj
    return out


def excluded() -> dict[str, str]:
    """Candidate APIs that are never traced, with the reason."""
    return dict(_excluded())


@functools.lru_cache(maxsize=1)
def _excluded() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _candidates():
        reason = _EXCLUDED_NAMES.get(name) or next(
            (r for p, r in _EXCLUDED_PREFIXES.items() if name.startswith(p)), None)
        last = name.rsplit(".", 1)[-1]
        if reason is None and any(w in last for w in _RANDOM_WORDS):
            reason = "random sampling"
        if reason is None and (last.startswith(("assert", "check_numerics")) or "assign" in last):
            reason = "debugging/assert op" if last.startswith(("assert", "check")) else "stateful"
        if reason is not None:
            out[name] = reason
    return out


def _sig_tensor_params(fn: Callable[..., Any]) -> list[str] | None:
    """The tensor parameters a signature-built call fills, or None when the signature cannot be
    filled (a required parameter that is not a tensor, *args, a list-of-tensors parameter)."""
    params = tf_docs.parameters(fn)
    lists = tf_docs.tensor_list_params(fn)
    names: list[str] = []
    for name, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            if p.default is p.empty and p.kind == p.VAR_POSITIONAL:
                return None
            continue
        if name in tf_docs.TENSOR_PARAMS and name not in lists and p.default is p.empty:
            names.append(name)
        elif p.default is p.empty:
            return None
    return names or None


def apis() -> list[str]:
    """Every traced API with an example source: docstring examples or a fillable signature."""
    skip = _excluded()
    return sorted(name for name, fn in _candidates().items()
                  if name not in skip and (tf_docs.doc_blocks(fn) or _sig_tensor_params(fn)))


def collect_examples(api: str) -> Collected:
    """Traces of `api`'s docstring examples ("doc:<api>", duplicates dropped); when they give
    no valid trace, of signature-built calls ("sig:<api>", valid ones only)."""
    tf = _tf()
    fn = _candidates().get(api)
    if fn is None or api in _excluded():
        raise GauntletError(f"{api} is not a traced TensorFlow API (see collect_tf.apis())")
    doc = tf_docs.run_docstring(tf, api, fn)
    result = Collected([], doc.blocks, doc.failed, doc.skips)
    for trace in dict.fromkeys(doc.traces):
        # A recorded dtype can differ from what the op saw (a NumPy float64 array it converted
        # to float32, an explicit padding list): such a trace would teach a wrong dtype rule.
        replay = run(trace.invocation, seed=0) if trace.valid else trace
        if replay.valid or not _representation_error(replay.error):
            result.traces.append(trace)
        else:
            result.skips["not reproducible: " + replay.error.split(":")[0]] += 1
    if any(t.valid for t in result.traces):
        return result
    names = _sig_tensor_params(fn) or []
    for dtype in SIG_DTYPES if names else ():
        built = [Invocation(api, tuple(Arg.tensor(shape, dtype) for _ in names)) for shape in SIG_SHAPES]
        valid = [t for t in (run(inv, seed=k) for k, inv in enumerate(built)) if t.valid]
        result.traces += [Trace(t.invocation, True, t.outputs, source=f"sig:{api}") for t in valid]
        if valid:
            break
    return result


def _representation_error(error: str) -> bool:
    """Whether a replay's error comes from how arguments were recorded (their dtype or kind),
    not from tensor values: replays keep every shape and attribute, so a type or conversion
    error means the recorded call is not the call the op saw."""
    kind = error.split(":")[0]
    return kind in ("TypeError", "ValueError", "AttributeError") or "attr '" in error or \
        "was expected to be" in error


def examples(api: str) -> list[Trace]:
    return collect_examples(api).traces


def _tensor(tf: Any, arg: Arg, rng: np.random.Generator) -> Any:
    """A fresh tensor of the arg's shape and dtype: floats in [-2, 2], ints in [0, 5)."""
    name, shape = str(arg.dtype), arg.shape or ()
    if name not in tf_docs.DTYPES:
        raise GauntletError(f"cannot make a TensorFlow tensor of dtype {name!r}")
    dtype = tf.as_dtype(name)
    if dtype.is_bool:
        return tf.constant(rng.integers(0, 2, shape).astype(bool))
    if dtype.is_integer:
        return tf.constant(rng.integers(0, 5, shape), dtype=dtype)
    values = rng.uniform(-2.0, 2.0, shape)
    if dtype.is_complex:
        values = values + 1j * rng.uniform(-2.0, 2.0, shape)
        return tf.constant(values, dtype=dtype)
    return tf.cast(tf.constant(values, dtype=tf.float64), dtype)  # via float64: numpy has no bfloat16


def _value(tf: Any, arg: Arg, rng: np.random.Generator) -> Any:
    if arg.kind == "tensor":
        return _tensor(tf, arg, rng)
    if arg.kind == "ints":
        return list(arg.value or ())  # type: ignore[arg-type]
    if arg.kind == "dtype":
        return tf.as_dtype(str(arg.value))
    return arg.value


def materialize(invocation: Invocation, seed: int) -> tuple[list[Any], dict[str, Any]]:
    """The arguments run() calls the API with for `seed` (crash reproducers rebuild them)."""
    tf = _tf()
    rng = np.random.default_rng(seed)
    args = [_value(tf, a, rng) for a in invocation.args]
    return args, {k: _value(tf, a, rng) for k, a in invocation.kwargs}


def run(invocation: Invocation, seed: int) -> Trace:
    """Call the API eagerly with fresh tensors of the recorded shapes and dtypes (source
    "probe"): valid with its outputs, or invalid with "ExceptionType: first line" (a tensor
    above MAX_ELEMENTS is refused unrun, "Refused: ...")."""
    tf = _tf()
    fn = _candidates().get(invocation.api)
    if fn is None or invocation.api in _excluded():
        # only traced APIs: a trace file must not be able to call tf.io.write_file
        raise GauntletError(f"{invocation.api} is not a traced TensorFlow API")
    for name, arg in invocation.tensors():
        if math.prod(arg.shape or ()) > MAX_ELEMENTS:  # same refusal text as collect_torch
            return Trace(invocation, False, error=f"Refused: {name} has more than {MAX_ELEMENTS} elements",
                         source="probe")
    args, kwargs = materialize(invocation, seed)
    with tf_docs.quiet():
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            return Trace(invocation, False, error=tf_docs.first_line(exc), source="probe")
        outputs = tf_docs.to_outputs(tf, result)
    if isinstance(outputs, str):
        return Trace(invocation, False, error=f"GauntletError: unrepresentable {outputs}", source="probe")
    return Trace(invocation, True, outputs, source="probe")


@contextmanager
def _patched(tf: Any, recorder: tf_docs.Recorder) -> Iterator[None]:
    """The traced APIs replaced by recording wrappers in every module of MODULES (by each name
    they are exported under); the originals are put back on exit, error or not."""
    traced = {id(fn): (name, fn) for name, fn in _candidates().items() if name not in _excluded()}
    saved: list[tuple[Any, str, Any]] = []
    wrappers: dict[int, Callable[..., Any]] = {}
    try:
        for module_name in MODULES:
            module = _resolve(tf, module_name)
            for attr in dir(module):
                obj = getattr(module, attr, None)
                if attr.startswith("_") or id(obj) not in traced or traced[id(obj)][1] is not obj:
                    continue
                if id(obj) not in wrappers:
                    wrappers[id(obj)] = tf_docs.recording(tf, traced[id(obj)][0], obj, recorder)
                saved.append((module, attr, obj))
                setattr(module, attr, wrappers[id(obj)])
        yield
    finally:
        for module, attr, obj in reversed(saved):
            setattr(module, attr, obj)


def record(argv: list[str]) -> Collected:
    """Run a user's Python command (["script.py", args...] or ["-m", "module", args...]) in this
    process with the traced APIs recording (source "user:<script or module>"), as `python` would
    run it: sys.argv set, the script's folder (or the cwd for -m) importable. Only calls made
    through the public modules are seen (`tf.add`, `tf.nn.relu`, also from libraries such as
    Keras), not TensorFlow's internal calls. SystemExit(0) is success; any other failure raises
    InstrumentError, whose `traces` and `skips` keep what was recorded until then."""
    target, _ = command_target(argv)
    tf = _tf()
    recorder = tf_docs.Recorder(f"user:{target}")
    run_recorded(argv, _patched(tf, recorder), recorder.traces, recorder.skips, tf_docs.first_line)
    return Collected(recorder.traces, skips=recorder.skips)


def instrument(argv: list[str]) -> list[Trace]:
    return record(argv).traces
