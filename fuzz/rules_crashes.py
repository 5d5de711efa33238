"""Crashes found while probing: the call a worker died on becomes a standalone reproducer
(its exact tensors as .npy files and a script that needs only NumPy and the framework),
which is run once in a fresh process to confirm the crash."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from generators.rules.trace import Invocation

_HEADER = {
    "torch": ("import torch", "torch.from_numpy(np.load(HERE / '{name}.npy')).to(torch.{dtype})", "torch.{name}"),
    "tensorflow": ("import tensorflow as tf", "tf.cast(tf.constant(np.load(HERE / '{name}.npy')), tf.{dtype})", "tf.{name}"),
}


@dataclass(frozen=True)
class Crash:
    api: str
    symptom: str
    directory: Path
    confirmed: bool  # the reproducer died of a signal in a fresh process
    detail: str


def _array(value: Any) -> np.ndarray:
    """A framework tensor as a NumPy array NumPy can save (bfloat16 widened to float32)."""
    if hasattr(value, "detach"):
        value = value.detach()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return np.asarray(value.numpy())
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array


def _literal(framework: str, arg: Any, value: Any, name: str, files: dict[str, np.ndarray]) -> str:
    if arg.kind == "tensor":
        files[name] = _array(value)
        return _HEADER[framework][1].format(name=name, dtype=arg.dtype)
    if arg.kind == "dtype":
        return _HEADER[framework][2].format(name=arg.value)
    return repr(arg.value)


def write_reproducer(directory: Path, framework: str, version: str, module: ModuleType, invocation: Invocation,
                     seed: int, symptom: str) -> Path:
    """directory/repro.py, its .npy inputs and crash.json for one crashing call."""
    directory.mkdir(parents=True, exist_ok=True)
    args, kwargs = module.materialize(invocation, seed)
    files: dict[str, np.ndarray] = {}
    parts = [_literal(framework, a, v, f"a{i}", files) for i, (a, v) in enumerate(zip(invocation.args, args))]
    parts += [f"{k}={_literal(framework, a, kwargs[k], k, files)}" for k, a in invocation.kwargs]
    for name, array in files.items():
        np.save(directory / f"{name}.npy", array)
    call = f"{invocation.api}({', '.join(parts)})"
    script = f'''"""{invocation.api} ({framework} {version}) {symptom} on this call, found by Gauntlet's probing.
Run: python repro.py (needs numpy and {framework}; the inputs are the .npy files beside it)."""
from pathlib import Path

import numpy as np
{_HEADER[framework][0]}

HERE = Path(__file__).resolve().parent
print({"torch" if framework == "torch" else "tf"}.__version__, flush=True)
out = {call}
print("returned normally")
'''
    path = directory / "repro.py"
    path.write_text(script)
    (directory / "crash.json").write_text(json.dumps({
        "api": invocation.api, "framework": framework, "version": version, "symptom": symptom, "seed": seed,
        "call": invocation.to_json(), "reproducer": "repro.py"}, indent=1))
    return path


def confirm(script: Path, timeout_s: float = 300.0) -> tuple[bool, str]:
    """Run the reproducer in a fresh interpreter: confirmed when it dies of a signal."""
    try:
        proc = subprocess.run([sys.executable, script.name], cwd=script.parent, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"still running after {timeout_s:.0f}s"
    tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
    if proc.returncode < 0:
        return True, f"killed by signal {-proc.returncode}: {tail}"
    return False, f"exit status {proc.returncode}: {tail}"


def record_crash(root: Path, framework: str, version: str, module: ModuleType, invocation: Invocation, seed: int,
                 symptom: str) -> Crash:
    directory = root / invocation.api
    script = write_reproducer(directory, framework, version, module, invocation, seed, symptom)
    confirmed, detail = confirm(script)
    data = json.loads((directory / "crash.json").read_text())
    data.update(confirmed=confirmed, confirmation=detail)
    (directory / "crash.json").write_text(json.dumps(data, indent=1))
    return Crash(invocation.api, symptom, directory, confirmed, detail)
