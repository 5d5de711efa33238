"""Recording TensorFlow calls as traces: Python values -> trace Args, the recording wrapper
(arguments normalized by the API's signature), and running an API's docstring examples with a
recording `tf` proxy. Imports TensorFlow only through the objects it is handed."""

from __future__ import annotations

import builtins
import contextlib
import doctest
import functools
import inspect
import io
import re
import types
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generators.rules.trace import Arg, Invocation, Trace

# Dtypes a trace may carry; strings, resources, variants and quantized types are skipped.
DTYPES = frozenset({"float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
                    "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128"})

# Parameter names that take a tensor: a Python number or list passed to one is recorded as the
# tensor the op converts it to, elsewhere as an int/float/ints attribute (axis, shape, perm, ...).
# Names, not the docstrings: those call many int attributes "A `Tensor` of type int32" (axis,
# shape), and rules need those as int symbols. Tensors and arrays are tensors wherever they go.
TENSOR_PARAMS = frozenset({
    "x", "y", "z", "a", "b", "t", "input", "input_tensor", "tensor", "logits", "labels", "features",
    "value", "values", "data", "params", "images", "image", "indices", "segment_ids", "filters",
    "filter", "bias", "weights", "condition", "diagonal", "matrix", "matrices", "rhs", "lhs", "arr",
    "arg", "predictions", "targets", "boxes", "scores", "inputs", "signals", "signal", "real",
    "imag", "updates", "tensor_a", "tensor_b", "x1", "x2", "image1", "image2", "img1", "img2",
    "mean", "variance", "diag", "chol", "coeffs", "input_x", "input_y", "sorted_sequence",
    "spectrogram", "stfts", "frames", "ids", "clip_value_min", "clip_value_max", "vec",
    "superdiag", "subdiag", "input_a", "input_b", "grads", "sp_ids",
})
# Tensor parameters holding indices or labels: integers whatever the other operands are.
INDEX_PARAMS = frozenset({"indices", "segment_ids", "ids", "sp_ids", "labels", "box_indices"})
_TENSOR_LIST_DOC = re.compile(r"(list|tuple) of (at least \d+ |\d+ |)`?(tf\.)?(tensor|tf\.tensor)", re.I)
_ARG_LINE = re.compile(r"^\s{2,}\*{0,2}(\w+)(?: \([^)]*\))?:\s*(.*)$")


@dataclass
class Recorder:
    """Where recording wrappers put their traces, and what they skipped (reason -> count)."""

    source: str
    traces: list[Trace] = field(default_factory=list)
    skips: Counter[str] = field(default_factory=Counter)
    depth: int = 0  # > 0 while a recorded call runs: calls it makes are the framework's, not ours


@functools.cache
def parameters(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return types.MappingProxyType(dict(inspect.signature(fn).parameters))
    except (TypeError, ValueError):
        return types.MappingProxyType({})


@functools.cache
def tensor_list_params(fn: Callable[..., Any]) -> frozenset[str]:
    """Parameters whose docstring says they take a list of tensors (concat's values, add_n's
    inputs): a Python list there is several tensors, which traces cannot hold."""
    return frozenset(n for n, d in _arg_docs(fn).items() if _TENSOR_LIST_DOC.search(d))


@functools.cache
def _arg_docs(fn: Callable[..., Any]) -> Mapping[str, str]:
    """The first line of each parameter's entry in the docstring's `Args:` section."""
    out: dict[str, str] = {}
    in_args = False
    for line in (inspect.getdoc(fn) or "").splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args and line and not line.startswith(" "):
            break
        match = _ARG_LINE.match(line) if in_args else None
        if match and len(line) - len(line.lstrip()) <= 2:
            out[match.group(1)] = match.group(2)
    return types.MappingProxyType(out)


def tensor_arg(tf: Any, value: Any) -> Arg | str:
    """A tensor-like value (Tensor, Variable, ndarray) as an Arg, or why it cannot be one."""
    if isinstance(value, np.ndarray):
        try:
            name = tf.as_dtype(value.dtype).name
        except TypeError:  # float128, objects, strings: nothing TensorFlow computes with
            name = str(value.dtype)
        shape: tuple[int | None, ...] = value.shape
    else:
        name, shape = value.dtype.name, tuple(value.shape)
    if name not in DTYPES:
        return f"dtype {name}"
    if any(d is None for d in shape):
        return "unknown shape"
    return Arg.tensor([int(d) for d in shape], name)  # type: ignore[arg-type]


def _is_tensor_like(tf: Any, value: Any) -> bool:
    return isinstance(value, (np.ndarray, tf.Tensor, tf.Variable))


def _contains_tensor(tf: Any, value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_contains_tensor(tf, v) for v in value)
    return _is_tensor_like(tf, value)


def to_arg(tf: Any, value: Any, is_tensor: bool, is_list: bool, hint: Any) -> Arg | str:
    """One argument as an Arg (Python numbers and lists at a tensor parameter become the tensor
    TensorFlow converts them to, with the dtype of the call's first tensor as the hint, as ops
    convert their operands), or the reason it cannot be recorded."""
    if value is None:
        return Arg("none")
    if _is_tensor_like(tf, value):
        return tensor_arg(tf, value)
    if isinstance(value, (tf.SparseTensor, tf.RaggedTensor, tf.IndexedSlices)):
        return "sparse or ragged tensor"
    if isinstance(value, tf.DType):
        return Arg("dtype", value=value.name)
    if isinstance(value, type) or isinstance(value, np.dtype):
        try:
            return Arg("dtype", value=tf.as_dtype(value).name)
        except TypeError:
            return f"type {value!r}"
    if isinstance(value, tf.TensorShape):
        if not value.is_fully_defined():
            return "partial TensorShape"
        return Arg("ints", value=tuple(int(d) for d in value.as_list()))
    if isinstance(value, str):
        return Arg("str", value=value)
    if isinstance(value, (list, tuple)):
        if is_list or _contains_tensor(tf, value):
            return "list of tensors"
        flat_ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        if flat_ints and not is_tensor:
            return Arg("ints", value=tuple(int(v) for v in value))
    elif isinstance(value, (bool, np.bool_)):
        if not is_tensor:
            return Arg("bool", value=bool(value))
    elif isinstance(value, (int, np.integer)):
        if not is_tensor:
            return Arg("int", value=int(value))
    elif isinstance(value, (float, np.floating)):
        if not is_tensor:
            return Arg("float", value=float(value))
    elif callable(value):
        return "callable"
    else:
        return f"type {type(value).__name__}"
    try:
        return tensor_arg(tf, tf.convert_to_tensor(value, dtype_hint=hint))
    except Exception:  # a ragged list or mixed types: not a tensor the op would see either
        return "not convertible to a tensor"


def to_outputs(tf: Any, result: Any) -> tuple[Arg, ...] | str:
    """A call's result as output Args: a tensor, a (named) tuple or list of them, or scalars."""
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    out: list[Arg] = []
    for item in items:
        if _is_tensor_like(tf, item) or isinstance(item, tf.TensorShape) or item is None:
            arg = to_arg(tf, item, False, False, None)
        elif isinstance(item, (bool, int, float, np.generic, tf.DType)):
            arg = to_arg(tf, item, False, False, None)
        else:
            return f"output {type(item).__name__}"
        if isinstance(arg, str):
            return f"output {arg}"
        out.append(arg)
    return tuple(out)


def _same_default(value: Any, default: Any) -> bool:
    simple = (type(None), bool, int, float, str)
    return isinstance(value, simple) and type(value) is type(default) and value == default


def invocation(tf: Any, api: str, fn: Callable[..., Any], args: tuple[Any, ...],
               kwargs: Mapping[str, Any]) -> Invocation | str:
    """The call as an Invocation in one normal form, or why it cannot be recorded. Normal form:
    required parameters positional, the others by keyword, `name` and arguments equal to their
    default dropped, so `reduce_sum(x, 1)` and `reduce_sum(x, axis=1)` share one signature.
    Functions with *args/**kwargs keep the form they were called with."""
    params = parameters(fn)
    tensors, lists = TENSOR_PARAMS, tensor_list_params(fn)
    variadic = any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values())
    positional: list[tuple[str, Any]] = []
    keywords: list[tuple[str, Any]] = []
    if params and not variadic:
        try:
            bound = inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as exc:
            return f"bad call: {exc}"
        for pname, value in bound.arguments.items():
            param = params[pname]
            if pname == "name" or _same_default(value, param.default):
                continue
            if param.default is param.empty and param.kind != param.KEYWORD_ONLY:
                positional.append((pname, value))
            else:
                keywords.append((pname, value))
    else:
        positional = [("", v) for v in args]
        keywords = [(k, v) for k, v in kwargs.items() if k != "name"]
    # Ops convert a Python operand to the dtype of the other operands (or of an explicit dtype
    # argument, as tf.constant does); index operands keep their own integer type.
    hint = next((v.dtype for _, v in positional + keywords if isinstance(v, (tf.Tensor, tf.Variable))),
                None)
    if hint is None:
        hint = next((v for k, v in keywords if k == "dtype" and isinstance(v, tf.DType)), None)
    converted: list[tuple[str, Arg]] = []
    for pname, value in positional + keywords:
        arg = to_arg(tf, value, pname in tensors or (not pname and not isinstance(value, str)),
                     pname in lists, None if pname in INDEX_PARAMS else hint)
        if isinstance(arg, str):
            return arg
        converted.append((pname, arg))
    n = len(positional)
    return Invocation(api, tuple(a for _, a in converted[:n]), tuple(converted[n:]))


def first_line(exc: BaseException) -> str:
    """`TypeName: first line`, without TensorFlow's `{{function_node ...}}` prefix."""
    text = str(exc).strip()
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip()


def recording(tf: Any, api: str, fn: Callable[..., Any], recorder: Recorder) -> Callable[..., Any]:
    """`fn` wrapped so each eager call is recorded in `recorder` under `api` (a raising call as
    an invalid trace, then re-raised); the real result is returned unchanged."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if recorder.depth or not tf.executing_eagerly():
            if not recorder.depth:
                recorder.skips["graph mode"] += 1
            return fn(*args, **kwargs)
        try:
            inv: Invocation | str = invocation(tf, api, fn, args, kwargs)
        except Exception as exc:  # recording must never break the call it watches
            inv = f"unrecordable: {type(exc).__name__}"
        recorder.depth += 1
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if isinstance(inv, Invocation):
                recorder.traces.append(Trace(inv, False, error=first_line(exc), source=recorder.source))
            else:
                recorder.skips[inv] += 1
            raise
        finally:
            recorder.depth -= 1
        outputs = to_outputs(tf, result) if isinstance(inv, Invocation) else inv
        if isinstance(inv, str) or isinstance(outputs, str):
            recorder.skips[str(outputs)] += 1
        else:
            recorder.traces.append(Trace(inv, True, outputs, source=recorder.source))
        return result

    return wrapper


class TfProxy:
    """Stands for a TensorFlow module in a docstring's namespace: submodules are proxies too,
    the documented function is its recording wrapper, everything else is the real object."""

    def __init__(self, module: types.ModuleType, target: Any, wrapper: Callable[..., Any]) -> None:
        self._module, self._target, self._wrapper = module, target, wrapper

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._module, name)
        if real is self._target:
            return self._wrapper
        if isinstance(real, types.ModuleType):
            return TfProxy(real, self._target, self._wrapper)
        return real


@dataclass
class DocRun:
    """What running one docstring gave: traces, example blocks run/failed, skipped calls."""

    traces: list[Trace]
    blocks: int
    failed: int
    skips: Counter[str]


def doc_blocks(fn: Callable[..., Any]) -> list[str]:
    """The sources of the `>>>` examples in `fn`'s docstring, in order."""
    try:
        return [e.source for e in doctest.DocTestParser().get_examples(inspect.getdoc(fn) or "")]
    except ValueError:  # malformed doctest markup: no usable examples
        return []


def run_docstring(tf: Any, api: str, fn: Callable[..., Any]) -> DocRun:
    """Execute the docstring examples of `fn` in order in one namespace (`tf` a recording proxy,
    `np` NumPy) and return the calls of `fn` they made. A block that raises is counted and the
    rest still run (later blocks may fail in turn when they needed its names)."""
    recorder = Recorder(f"doc:{api}")
    wrapper = recording(tf, api, fn, recorder)
    proxy = TfProxy(tf, fn, wrapper)

    def importer(name: str, *args: Any, **kwargs: Any) -> Any:
        # `import tensorflow as tf` in an example must not bypass the proxy
        return proxy if name == "tensorflow" else __import__(name, *args, **kwargs)

    namespace: dict[str, Any] = {"tf": proxy, "np": np, "__name__": f"doc_{api.replace('.', '_')}",
                                 "__builtins__": {**vars(builtins), "__import__": importer}}
    short = api.rsplit(".", 1)[-1]
    if not hasattr(builtins, short):  # some examples call the op by its bare name: `repeat(...)`
        namespace[short] = wrapper
    blocks = doc_blocks(fn)
    failed = 0
    with quiet():
        for number, source in enumerate(blocks):
            try:
                # exec runs TensorFlow's own shipped docstring examples (the framework's test
                # data, read from the installed package), never text from a user or a file.
                code = compile(source, f"<doc:{api}:{number}>", "exec")
                exec(code, namespace)  # noqa: S102
            except Exception:
                failed += 1
    return DocRun(recorder.traces, len(blocks), failed, recorder.skips)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Examples print their results and TensorFlow warns about deprecations: keep both quiet."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
