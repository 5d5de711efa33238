"""Backends: the engines under test, one file each, and how Gauntlet finds them.

Built-in backends are listed below as "module:Class" data; third-party ones come from the
`gauntlet.backends` entry-point group, or from a "module:attr" / "path/to/file.py:Class"
spec on the command line. Loading a backend imports its module only, never a framework.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fuzz.backends.base import Backend, GradientBackend, Model
from generators.errors import GauntletError

__all__ = [
    "BUILTIN",
    "CPU_DEFAULT",
    "Backend",
    "GradientBackend",
    "Model",
    "available_names",
    "known",
    "load",
]

BUILTIN: Mapping[str, str] = {
    "torch_eager": "fuzz.backends.torch_eager:TorchEager",
    "torch_compile": "fuzz.backends.torch_compile:TorchCompile",
    "tf_eager": "fuzz.backends.tf_eager:TfEager",
    "tf_xla": "fuzz.backends.tf_xla:TfXla",
    "onnxruntime": "fuzz.backends.onnxruntime:OnnxRuntime",
    "torch_cuda": "fuzz.backends.torch_cuda:TorchCuda",
    "torch_compile_cuda": "fuzz.backends.torch_compile_cuda:TorchCompileCuda",
    "tf_gpu": "fuzz.backends.tf_gpu:TfGpu",
}

# What a campaign runs when the user names no backends: the fast local CPU engines.
CPU_DEFAULT = ("torch_eager", "tf_eager", "onnxruntime")
# Rule-backed operators run in one framework: its eager and compiled CPU backends form the pair.
RULE_BACKENDS = {"torch": ("torch_eager", "torch_compile"), "tensorflow": ("tf_eager", "tf_xla")}

ENTRY_POINT_GROUP = "gauntlet.backends"


def known() -> dict[str, str]:
    """Backend name -> "module:attr" for built-ins and installed entry points (an entry
    point may not shadow a built-in)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise GauntletError(f"backend file {path} does not exist")
    module_name = f"gauntlet_user_backend_{abs(hash(str(path.resolve())))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise GauntletError(f"cannot import backend file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _resolve(target: str) -> Any:
    """The object a "module:attr" or "file.py:attr" spec names."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise GauntletError(f"backend spec {target!r} must look like module:Class or path/to/file.py:Class")
    try:
        module = _import_file(Path(where)) if where.endswith(".py") else importlib.import_module(where)
    except ImportError as exc:
        raise GauntletError(f"cannot import backend module {where!r}: {exc}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise GauntletError(f"{where} has no attribute {attr!r}") from None
    return obj


def load(spec: str) -> Backend:
    """A backend instance from a name (built-in or entry point) or a module/file spec."""
    table = known()
    target = table.get(spec)
    if target is None and ":" not in spec:
        raise GauntletError(f"unknown backend {spec!r}; known: {', '.join(sorted(table))} (or module:Class, file.py:Class)")
    obj = _resolve(target or spec)
    try:
        backend = obj() if isinstance(obj, type) else obj
    except TypeError as exc:
        raise GauntletError(f"{spec} is not a Gauntlet backend: it cannot be created without arguments ({exc})") from None
    missing = [m for m in ("name", "lowering", "available", "version", "prepare", "run") if not hasattr(backend, m)]
    if missing:
        raise GauntletError(f"{spec} is not a Gauntlet backend: it lacks {', '.join(missing)} (see README, 'Add a backend')")
    if backend.lowering not in ("torch", "tensorflow", "onnx"):
        raise GauntletError(f"{spec}: lowering must be 'torch', 'tensorflow' or 'onnx', not {backend.lowering!r}")
    return backend  # type: ignore[no-any-return]


def available_names(names: tuple[str, ...] | None = None) -> list[str]:
    """Which of `names` (default: every known backend) can run on this machine."""
    result = []
    for name in names if names is not None else tuple(known()):
        try:
            if load(name).available():
                result.append(name)
        except GauntletError:
            continue
    return result
