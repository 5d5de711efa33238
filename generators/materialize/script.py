"""Graph -> standalone Python program (PyTorch or TensorFlow) that needs no Gauntlet.

Lowerings are copied by source (with the same-module functions they call), `Call`
lowerings become plain calls; inputs are loaded from .npy files beside the script.
Imports no framework.
"""

from __future__ import annotations

import inspect
import textwrap
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from generators.errors import GauntletError
from generators.ir import Graph, InputRef, ValueRef
from generators.spec import Call, Missing, OpSpec

ScriptFramework = Literal["torch", "tensorflow"]

_HEADER = {
    "torch": ("import torch", "torch"),
    "tensorflow": ("import tensorflow as tf", "tf"),
}


def npy_array(array: np.ndarray) -> np.ndarray:
    """What a script's .npy file holds: bfloat16 is stored as float32 (exact), because a
    plain NumPy cannot load bfloat16 .npy files; the script casts it back."""
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array


def _referenced_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _referenced_names(const)
    return names


def function_sources(fn: Callable[..., Any]) -> dict[str, str]:
    """The source of `fn` and of every same-module function or constant it uses, by name."""
    out: dict[str, str] = {}
    pending = [fn]
    while pending:
        f = pending.pop()
        if f.__name__ in out:
            continue
        out[f.__name__] = textwrap.dedent(inspect.getsource(f))
        for name in sorted(_referenced_names(f.__code__)):
            value = f.__globals__.get(name)
            if inspect.isfunction(value) and value.__module__ == f.__module__ and name not in out:
                pending.append(value)
            elif isinstance(value, (int, float, str, tuple, frozenset)) and not isinstance(value, bool):
                out.setdefault(name, f"{name} = {value!r}\n")
    return out


def _call_expr(call: Call, root: str, args: str, attrs: Mapping[str, Any]) -> str:
    parts = [args[1:-1]] if args != "[]" else []
    parts += [f"{param}={attrs[attr]!r}" for param, attr in call.kwargs]
    parts += [f"{param}={value!r}" for param, value in call.fixed]
    return f"{root}.{call.path.split('.', 1)[1]}({', '.join(p for p in parts if p)})"


def write_script(
    graph: Graph,
    framework: ScriptFramework,
    catalog: Mapping[str, OpSpec],
    input_files: Mapping[int, str],
    title: str = "",
) -> str:
    """The program's text. `input_files[i]` is the .npy file name of placeholder i."""
    import_line, root = _HEADER[framework]
    sources: dict[str, str] = {}
    lines: list[str] = []

    def ref(r: ValueRef) -> str:
        return f"p{r.index}" if isinstance(r, InputRef) else f"v{r.node}_{r.output}"

    for i, node in enumerate(graph.nodes):
        spec = catalog[node.op]
        lowering = spec.torch if framework == "torch" else spec.tf
        if isinstance(lowering, Missing):
            raise GauntletError(f"{node.op} has no {framework} lowering: {lowering.reason}")
        args = "[" + ", ".join(ref(r) for r in node.inputs) + "]"
        if isinstance(lowering, Call):
            expr = _call_expr(lowering, root, args, node.attr_map)
        else:
            for name, src in function_sources(lowering).items():
                if sources.setdefault(name, src) != src:
                    raise GauntletError(f"two different lowering helpers are named {name!r}")
            expr = f"{lowering.__name__}({root}, {args}, {node.attr_map!r})"
        outs = [f"v{i}_{k}" for k in range(len(node.outputs))]
        target = outs[0] if len(outs) == 1 else ", ".join(outs)
        wrap = "only_output" if len(outs) == 1 else "list"
        lines.append(f"    {target} = {wrap}({expr})  # {node.op} -> {', '.join(map(str, node.outputs))}")
    lines.append("    return [" + ", ".join(ref(r) for r in graph.outputs) + "]")

    loads = []
    for i, p in enumerate(graph.placeholders):
        loads.append(f"    p{i} = to_tensor(load({input_files[i]!r}), {p.type.dtype.value!r})  # {p.kind} {p.type}")
    to_tensor = (
        "def to_tensor(array, dtype):\n    return torch.from_numpy(array).to(getattr(torch, dtype))\n"
        if framework == "torch"
        else "def to_tensor(array, dtype):\n    return tf.cast(tf.constant(array), getattr(tf, dtype))\n"
    )
    to_numpy = "t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()" if framework == "torch" else "t.numpy()"
    body = "\n".join(lines)
    helpers = "\n\n".join(sources[k] for k in sorted(sources))
    return f'''"""{title or "A graph written by Gauntlet"} ({framework}).

Standalone: needs only numpy and {root}. Inputs are the .npy files beside this script.
"""

from __future__ import annotations

import math
import os

import numpy as np
{import_line}

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    return np.load(os.path.join(HERE, name), allow_pickle=False)


{to_tensor}

def only_output(result):
    return result[0] if isinstance(result, (tuple, list)) else result


{helpers}


def model({", ".join(f"p{i}" for i in range(len(graph.placeholders)))}):
{body}


def main():
{chr(10).join(loads)}
    outputs = model({", ".join(f"p{i}" for i in range(len(graph.placeholders)))})
    for k, t in enumerate(outputs):
        value = {to_numpy}
        print(f"output {{k}}: shape={{list(value.shape)}} dtype={{t.dtype}} sum={{float(np.sum(value.astype(np.float64))):.6g}}")


if __name__ == "__main__":
    main()
'''
