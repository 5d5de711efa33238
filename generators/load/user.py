"""What users name on a command line: a model factory (`path/file.py:factory` or
`package.module:factory`, imported, never unpickled), a samples file (.npz / .npy without
objects) and an input domain `LO,HI`."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from generators.errors import GauntletError

__all__ = ["import_object", "is_torch_module", "load_samples", "model_factory", "parse_domain"]


def is_torch_module(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def import_object(spec: str, what: str = "object") -> Callable[..., Any]:
    """The callable a `path/file.py:name` or `package.module:name` spec names (imported, never
    unpickled); `what` names it in error messages."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise GauntletError(f"{what} {spec!r}: give `path/file.py:name` or `package.module:name`")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise GauntletError(f"{what} {spec!r}: no file {target}")
        module_name = "_gauntlet_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise GauntletError(f"{what} {spec!r}: cannot import {target}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise GauntletError(f"{what} {spec!r}: importing {target} failed: {type(err).__name__}: {err}") from err
    else:
        if not all(part.isidentifier() for part in target.split(".")):
            raise GauntletError(f"{what} {spec!r}: {target!r} is neither a .py file nor a module name")
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise GauntletError(f"{what} {spec!r}: cannot import module {target}: {err}") from err
    value = getattr(module, name, None)
    if not callable(value):
        raise GauntletError(f"{what} {spec!r}: {target} has no function {name}")
    return value  # type: ignore[no-any-return]


def model_factory(spec: str) -> Callable[..., Any]:
    """The factory a `path/file.py:factory` or `package.module:factory` spec names."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise GauntletError(
            f"model {spec!r}: give an .onnx file, `path/file.py:factory` or `package.module:factory` "
            "(a function returning the model)"
        )
    return import_object(spec, "model")


def load_samples(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """`x` (N, ...) and the optional integer labels `y` (N,) of an .npz file (or a bare .npy
    of x), read without pickle."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GauntletError(f"samples {path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise GauntletError(f"samples {path}: not a NumPy .npz/.npy file without objects ({err})") from None
    if isinstance(loaded, np.ndarray):
        x, y = loaded, None
    else:
        with loaded:
            if "x" not in loaded.files:
                raise GauntletError(f"samples {path}: needs an array named 'x' (found {', '.join(loaded.files) or 'none'})")
            try:
                x = loaded["x"]
                y = loaded["y"] if "y" in loaded.files else None
            except ValueError as err:
                raise GauntletError(f"samples {path}: {err}") from None
    if x.dtype.kind not in "fiu" or x.ndim < 2:
        raise GauntletError(f"samples {path}: 'x' must be a numeric array [N, ...], got {x.dtype} {x.shape}")
    if y is not None and (y.dtype.kind not in "iu" or y.shape != (x.shape[0],)):
        raise GauntletError(f"samples {path}: 'y' must hold one integer label per sample, got {y.dtype} {y.shape}")
    return x.astype(np.float64), y


def parse_domain(text: str | None, option: str = "--domain") -> tuple[float, float] | None:
    """`LO,HI` (or `LO:HI`) -> (lo, hi); None stays None. `option` names it in errors."""
    if text is None or text == "":
        return None
    parts = text.replace(":", ",").split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise GauntletError(f"{option} {text!r}: give two numbers LO:HI (e.g. 0:1)") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise GauntletError(f"{option} {text!r}: needs finite LO < HI")
    return lo, hi
