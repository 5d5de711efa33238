"""The torch trace collector (rules_common protocol): OpInfo sample inputs as examples, probe
runs with fresh tensors, and recording of a user's command under a TorchFunctionMode.
Imports torch lazily (never at import time) and nothing from fuzz or verify."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from generators.errors import GauntletError
from generators.rules.trace import Arg, Invocation, Trace
from generators.rules.user_command import InstrumentError, command_target, run_recorded  # noqa: F401 - InstrumentError is part of the collector API

FRAMEWORK = "torch"

# The dtypes examples are drawn for (when the OpInfo supports them on CPU), in this order.
EXAMPLE_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool",
                  "complex64")
SAMPLES_PER_DTYPE = 40  # OpInfo sample generators can be long; the cap bounds each API's time
ERROR_SAMPLES = 40
MAX_ELEMENTS = 1 << 24  # a probe tensor above this is refused: probing runs real kernels in a bounded worker

# Public namespaces in the order that names an object reachable from several of them
# (torch.conv2d is torch.nn.functional.conv2d: OpInfo calls it nn.functional.conv2d).
NAMESPACES = ("torch.nn.functional", "torch.linalg", "torch.fft", "torch.special", "torch.sparse",
              "torch.signal.windows", "torch.masked", "torch")

# Exact last names never traced, with the reason.
_EXCLUDED_NAMES: Mapping[str, str] = {
    **{n: "random sampling" for n in (
        "bernoulli", "multinomial", "normal", "poisson", "binomial", "rrelu", "gumbel_softmax",
        "fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
        "fractional_max_pool3d_with_indices", "randperm", "seed", "manual_seed", "initial_seed",
        "get_rng_state", "set_rng_state")},
    **{n: "I/O" for n in ("save", "load", "from_file")},
    **{n: "output shape depends on tensor values, not shapes" for n in (
        "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount")},
    "use_deterministic_algorithms": "changes global state",
    "compile": "not an operator: compiles a function",
}


def version() -> str:
    import torch

    return str(torch.__version__).split("+")[0]


def _exclusion(api: str) -> str | None:
    """Why `api` is never traced, or None; by its last name (patterns cover families)."""
    last = api.rsplit(".", 1)[-1]
    if last in _EXCLUDED_NAMES:
        return _EXCLUDED_NAMES[last]
    if last.endswith("_") and not last.startswith("__"):
        return "in-place: mutates its input"
    if last.startswith("rand") or "dropout" in last:
        return "random sampling"
    if last.startswith("empty"):
        return "uninitialized memory: values are meaningless"
    if last.startswith("set_"):
        return "changes global state"
    return None


# ---- naming: dotted public names of torch callables ----

def _module(dotted: str) -> ModuleType | None:
    import torch

    obj: Any = torch
    for part in dotted.split(".")[1:]:
        obj = vars(obj).get(part) if isinstance(obj, ModuleType) else None
    return obj if isinstance(obj, ModuleType) else None


@functools.cache
def _routines() -> tuple[tuple[str, object], ...]:
    """(dotted name, object) of every public routine in NAMESPACES, aliases included. Reads
    module dicts directly: getattr on torch would trigger its lazy imports (dynamo, inductor)."""
    import inspect

    out = []
    for space in NAMESPACES:
        module = _module(space)
        if module is not None:
            out += [(f"{space}.{name}", obj) for name, obj in sorted(vars(module).items())
                    if not name.startswith("_") and inspect.isroutine(obj)]
    return tuple(out)


@functools.cache
def _public_index() -> dict[int, tuple[str, object]]:
    """id -> (the name NAMESPACES order prefers, object)."""
    index: dict[int, tuple[str, object]] = {}
    for name, obj in _routines():
        index.setdefault(id(obj), (name, obj))
    return index


def public_name(func: object) -> str | None:
    """The dotted public name of a torch callable, or None (Tensor methods, private names)."""
    entry = _public_index().get(id(func))
    if entry is not None and entry[1] is func:
        return entry[0]
    module, name = getattr(func, "__module__", None), getattr(func, "__name__", None)
    if not isinstance(module, str) or not isinstance(name, str) or not module.startswith("torch"):
        return None
    dotted = f"{module}.{name}"
    if any(p.startswith("_") for p in dotted.split(".")):
        return None
    try:
        return dotted if resolve(dotted) is func else None
    except GauntletError:
        return None


def resolve(api: str) -> Any:
    """The object a dotted public name denotes, by attribute lookup from torch (never eval)."""
    import torch

    parts = api.split(".")
    if parts[0] != "torch" or any(not p.isidentifier() or p.startswith("_") for p in parts[1:]):
        raise GauntletError(f"{api!r} is not a public torch API name (torch.<name>, no private parts)")
    obj: Any = torch
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise GauntletError(f"torch has no API {api!r}") from None
    return obj


# ---- the OpInfo database ----

@functools.cache
def _opinfos() -> dict[str, tuple[Any, ...]]:
    """Public API name -> its OpInfos (variants merged), for OpInfos whose name resolves to
    the very callable they test; lambdas and Tensor methods would record a different call."""
    import torch.backends

    flags_frozen: Any = torch.backends.flags_frozen  # untyped in torch
    frozen = flags_frozen()
    try:
        with _quiet():
            from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as exc:
        raise GauntletError(f"torch's OpInfo examples could not be loaded ({exc}); they need the "
                            "expecttest package: pip install expecttest") from None
    if not frozen:
        # Importing the test utilities freezes torch.backends flags process-wide (later code
        # setting cudnn/mkldnn flags would raise); the flag lives in the functions' own globals.
        flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    grouped: dict[str, list[Any]] = {}
    for info in op_db:
        name = str(info.name)
        if any(p.startswith("_") for p in name.split(".")) or name.startswith(("torch.", "ops.")):
            continue
        try:
            if resolve(f"torch.{name}") is not info.op:
                continue
        except GauntletError:
            continue
        api = public_name(info.op) or f"torch.{name}"
        grouped.setdefault(api, []).append(info)
    return {api: tuple(infos) for api, infos in sorted(grouped.items())}


def excluded() -> dict[str, str]:
    """API -> reason it is never traced: random, in-place, uninitialized, I/O, global state,
    value-dependent output shapes. Covers every public name (aliases too) and the OpInfo database."""
    names = {name for name, _ in _routines()} | set(_opinfos())
    out = {}
    for api in sorted(names):
        reason = _exclusion(api)
        if reason is not None:
            out[api] = reason
    return out


def apis() -> list[str]:
    """Every API with OpInfo examples, sorted; excluded ones are left out."""
    return [api for api in _opinfos() if _exclusion(api) is None]


# ---- arguments and outputs ----

class Unrepresentable(Exception):
    """A value the trace format cannot hold; the message is the skip reason."""


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def torch_dtype(name: str) -> Any:
    import torch

    dtype = getattr(torch, name, None) if name.isidentifier() else None
    if not isinstance(dtype, torch.dtype):
        raise GauntletError(f"unknown torch dtype {name!r}")
    return dtype


def to_arg(value: object) -> Arg:
    """One argument (or output) as an Arg; raises Unrepresentable with the reason."""
    import torch

    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            raise Unrepresentable(f"tensor subclass {type(value).__name__}")
        if value.layout != torch.strided or value.is_quantized:
            raise Unrepresentable("sparse or quantized tensor")
        return Arg.tensor(value.shape, dtype_name(value.dtype))
    if isinstance(value, bool):
        return Arg("bool", value=value)
    if isinstance(value, (int, np.integer)):
        return Arg("int", value=int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise Unrepresentable("non-finite float")
        return Arg("float", value=float(value))
    if isinstance(value, str):
        return Arg("str", value=value)
    if value is None:
        return Arg("none")
    if isinstance(value, torch.dtype):
        return Arg("dtype", value=dtype_name(value))
    if isinstance(value, (list, tuple)):  # torch.Size is a tuple
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return Arg("ints", value=tuple(int(v) for v in value))
        kinds = sorted({"tensor" if isinstance(v, torch.Tensor) else type(v).__name__ for v in value})
        raise Unrepresentable(f"list of {'/'.join(kinds)}")
    if callable(value):
        raise Unrepresentable("callable")
    raise Unrepresentable(f"{type(value).__module__}.{type(value).__name__}")


def to_outputs(result: object) -> tuple[Arg, ...]:
    """A result as output Args: a tensor, a tuple/namedtuple/list of tensors, or scalars."""
    import torch

    items = result if isinstance(result, (tuple, list)) and not isinstance(result, torch.Size) else (result,)
    out = []
    for item in items:
        if isinstance(item, (tuple, list)) and not isinstance(item, torch.Size):
            raise Unrepresentable("nested output")
        try:
            out.append(to_arg(item))
        except Unrepresentable as exc:
            raise Unrepresentable(f"output: {exc}") from None
    return tuple(out)


def error_text(exc: BaseException) -> str:
    """'TypeName: first line of the message'."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0].strip()}" if lines else type(exc).__name__


@contextmanager
def _quiet() -> Iterator[None]:
    """Framework warnings (deprecations, TORCH_WARN) are noise for tracing, not errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def invocation_of(api: str, args: Sequence[object], kwargs: Mapping[str, object]) -> Invocation:
    """The Invocation of a call; raises Unrepresentable for an argument it cannot hold."""
    if "out" in kwargs:
        raise Unrepresentable("out= keyword")
    return Invocation(api, tuple(to_arg(a) for a in args), tuple((k, to_arg(v)) for k, v in kwargs.items()))


def call_trace(invocation: Invocation, fn: Callable[..., object], args: Sequence[object],
               kwargs: Mapping[str, object], source: str) -> Trace:
    """Call `fn` and record the outcome; an exception is an invalid trace. An output it cannot
    hold raises Unrepresentable."""
    try:
        with _quiet():
            result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every framework error is an observation
        return Trace(invocation, False, error=error_text(exc), source=source)
    return Trace(invocation, True, to_outputs(result), source=source)


# ---- examples ----

@dataclass
class Collected:
    """Traces and why calls were skipped (reason -> count)."""

    traces: list[Trace] = field(default_factory=list)
    skips: Counter[str] = field(default_factory=Counter)


def _samples(info: Any, skips: Counter[str]) -> Iterator[Any]:
    """SampleInputs: capped sample inputs per supported dtype, then the error inputs' samples."""
    supported = {dtype_name(d) for d in info.supported_dtypes("cpu")}
    for name in EXAMPLE_DTYPES:
        if name not in supported:
            continue
        try:
            with _quiet():
                samples = list(itertools.islice(info.sample_inputs("cpu", torch_dtype(name)), SAMPLES_PER_DTYPE))
        except Exception as exc:  # noqa: BLE001 - a broken sample generator costs its dtype only
            skips[f"sample_inputs raised {type(exc).__name__}"] += 1
            continue
        yield from samples
    if info.error_inputs_func is None:
        return
    try:
        with _quiet():
            errors = list(itertools.islice(info.error_inputs("cpu"), ERROR_SAMPLES))
    except Exception as exc:  # noqa: BLE001
        skips[f"error_inputs raised {type(exc).__name__}"] += 1
        return
    yield from (e.sample_input for e in errors)


def collect_examples(api: str) -> Collected:
    """Traces of every OpInfo sample input of `api` (float32 ... complex64 where supported on
    CPU, plus error inputs), source `opinfo:<name>`; duplicates dropped, skips counted."""
    import torch

    infos = _opinfos().get(api)
    if infos is None:
        raise GauntletError(f"no OpInfo examples for {api!r}")
    out = Collected()
    seen: set[Trace] = set()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # sample values are random; examples are reproducible
        for info in infos:
            source = f"opinfo:{info.name}"
            for sample in _samples(info, out.skips):
                args = [sample.input, *sample.args]
                try:
                    invocation = invocation_of(api, args, sample.kwargs)
                    trace = call_trace(invocation, info.op, args, sample.kwargs, source)
                except Unrepresentable as exc:
                    out.skips[str(exc)] += 1
                    continue
                if trace not in seen:
                    seen.add(trace)
                    out.traces.append(trace)
    return out


def examples(api: str) -> list[Trace]:
    return collect_examples(api).traces


# ---- probing ----

def make_value(arg: Arg, rng: np.random.Generator) -> object:
    """A fresh value for an Arg: floats uniform in [-2, 2], ints in [0, 5), random bools and
    complex numbers; non-tensor kinds are their recorded value."""
    import torch

    if arg.kind == "tensor":
        dtype, shape = torch_dtype(arg.dtype or "float32"), tuple(arg.shape or ())
        if dtype.is_complex:
            data: np.ndarray = rng.uniform(-2, 2, shape) + 1j * rng.uniform(-2, 2, shape)
        elif dtype.is_floating_point:
            data = rng.uniform(-2, 2, shape)
        elif dtype == torch.bool:
            data = rng.integers(0, 2, shape).astype(bool)
        else:
            data = rng.integers(0, 5, shape)
        return torch.from_numpy(np.array(data)).to(dtype)  # np.array keeps rank 0
    if arg.kind == "dtype":
        return torch_dtype(str(arg.value))
    return arg.value


def materialize(invocation: Invocation, seed: int) -> tuple[list[object], dict[str, object]]:
    """The arguments run() calls the API with for `seed` (crash reproducers rebuild them)."""
    rng = np.random.default_rng(seed)
    args = [make_value(a, rng) for a in invocation.args]
    return args, {k: make_value(a, rng) for k, a in invocation.kwargs}


def run(invocation: Invocation, seed: int) -> Trace:
    """Execute `invocation` with fresh tensors from `seed` (source `probe`). A framework
    exception is an invalid trace; so is an output the format cannot hold ("Unrepresentable:")
    and a tensor above MAX_ELEMENTS ("Refused:"), so generated calls steer clear of both."""
    fn = resolve(invocation.api)
    for name, arg in invocation.tensors():
        if math.prod(arg.shape or ()) > MAX_ELEMENTS:
            return Trace(invocation, False, error=f"Refused: {name} has more than {MAX_ELEMENTS} elements",
                         source="probe")
    args, kwargs = materialize(invocation, seed)
    try:
        return call_trace(invocation, fn, args, kwargs, "probe")
    except Unrepresentable as exc:
        return Trace(invocation, False, error=f"Unrepresentable: {exc}", source="probe")


# ---- recording a user's command ----

def _recorder(collected: Collected, source: str) -> Any:
    """A TorchFunctionMode recording each top-level call of a nameable public torch function
    (calls made inside it run with the mode off, so only the user's own calls are seen)."""
    import torch

    class Recorder(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Iterable[type], args: Sequence[object] = (),
                               kwargs: Mapping[str, object] | None = None) -> object:
            kwargs = kwargs or {}
            api = public_name(func)
            if api is None or _exclusion(api) is not None:
                return func(*args, **kwargs)
            try:
                invocation = invocation_of(api, args, kwargs)
            except Unrepresentable as exc:
                collected.skips[str(exc)] += 1
                return func(*args, **kwargs)
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                collected.traces.append(Trace(invocation, False, error=error_text(exc), source=source))
                raise
            try:
                collected.traces.append(Trace(invocation, True, to_outputs(result), source=source))
            except Unrepresentable as exc:
                collected.skips[str(exc)] += 1
            return result

    return Recorder()


def record(argv: Sequence[str]) -> Collected:
    """Run a Python command (`["script.py", args...]` or `["-m", "module", args...]`) in this
    process under recording; SystemExit(0) ends it normally. Any other failure raises
    InstrumentError carrying the traces recorded so far."""
    target, _ = command_target(argv)
    collected = Collected()
    run_recorded(list(argv), _recorder(collected, f"user:{target}"), collected.traces, collected.skips, error_text)
    return collected


def instrument(argv: list[str]) -> list[Trace]:
    return record(argv).traces
