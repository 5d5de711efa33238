"""Graph -> standalone Python program (PyTorch or TensorFlow) that needs no Gauntlet, and its
reusable pieces (the model function, a harness holding weights as the materializers do).

Lowerings are copied by source (with the same-module functions they call), `Call`
lowerings become plain calls; inputs are loaded from .npy files beside the script.
Imports no framework.
"""

from __future__ import annotations

import inspect
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
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


def _call_expr(call: Call, root: str, args: list[str], attrs: Mapping[str, Any]) -> str:
    parts = [args[p] if isinstance(p, int) else repr(attrs[p]) for p in call.layout] if call.layout else list(args)
    parts += [f"{param}={attrs[attr]!r}" for param, attr in call.kwargs]
    parts += [f"{param}={value!r}" for param, value in call.fixed]
    return f"{root}.{call.path.split('.', 1)[1]}({', '.join(p for p in parts if p)})"


def model_source(graph: Graph, framework: ScriptFramework, catalog: Mapping[str, OpSpec]) -> str:
    """`only_output`, the copied lowering helpers and `def model(p0, ..., pN)` (one argument per
    placeholder, weights included; returns the list of graph outputs). The text needs `math`,
    `numpy as np` and the framework (`torch` or `tf`) imported."""
    root = _HEADER[framework][1]
    sources: dict[str, str] = {}
    lines: list[str] = []

    def ref(r: ValueRef) -> str:
        return f"p{r.index}" if isinstance(r, InputRef) else f"v{r.node}_{r.output}"

    for i, node in enumerate(graph.nodes):
        spec = catalog[node.op]
        lowering = spec.torch if framework == "torch" else spec.tf
        if isinstance(lowering, Missing):
            raise GauntletError(f"{node.op} has no {framework} lowering: {lowering.reason}")
        refs = [ref(r) for r in node.inputs]
        args = "[" + ", ".join(refs) + "]"
        if isinstance(lowering, Call):
            expr = _call_expr(lowering, root, refs, node.attr_map)
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
    helpers = "".join(f"{sources[k]}\n\n" for k in sorted(sources))
    params = ", ".join(f"p{i}" for i in range(len(graph.placeholders)))
    body = "\n".join(lines)
    return f"""def only_output(result):
    return result[0] if isinstance(result, (tuple, list)) else result


{helpers}def model({params}):
{body}
"""


_TORCH_HARNESS = """
class Graph(torch.nn.Module):
    def __init__(self, weights):
        super().__init__()
        for name, w in weights.items():
            self.register_buffer(name, w)

    def forward({params}):
        return model({args})


def tensor(name, dtype, device):
    return torch.from_numpy(load(name + ".npy")).to(getattr(torch, dtype)).to(device)


def build(wide=False):
    \"\"\"The module (weights as buffers) and its inputs; `wide`: floats in float64 on the CPU.\"\"\"
    device = "cpu" if wide else DEVICE
    def dtype(d):
        return "float64" if wide and d in FLOATS else d
    module = Graph({{n: tensor(n, dtype(d), device) for n, d in WEIGHTS.items()}}).eval()
    return module, [tensor(n, dtype(d), device) for n, d in INPUTS.items()]


def numpy_of(t):
    t = t.detach().cpu().resolve_conj().resolve_neg()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def dtype_of(t):
    return str(t.dtype).removeprefix("torch.")
"""

_TORCH_VJP = """

def vjp(wide=False):
    \"\"\"d sum_k(output_k * cotangent_k) / d input for every float input (zeros where unused):
    on DEVICE, or (`wide`) in float64 on the CPU.\"\"\"
    module, xs = build(wide)
    wrt = [x.requires_grad_() for x in xs if x.is_floating_point()]
    terms = []
    for k, o in enumerate(module(*xs)):
        if o.is_floating_point():
            c = torch.from_numpy(load(f"cotangent_{k}.npy")).to(o.device)
            terms.append((o * (c.double() if wide else c)).sum())
    if not wrt or not terms:
        return [torch.zeros_like(x) for x in wrt]
    grads = torch.autograd.grad(torch.stack([t.double() for t in terms]).sum(), wrt, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]
"""

_TF_HARNESS = """
def tensor(name, dtype):
    return tf.cast(tf.constant(load(name + ".npy")), getattr(tf, dtype))


def build(wide=False):
    \"\"\"The model (weights as constants) and its inputs; `wide`: floats in float64.\"\"\"
    def dtype(d):
        return "float64" if wide and d in FLOATS else d
    weights = {{n: tensor(n, dtype(d)) for n, d in WEIGHTS.items()}}

    def forward({params}):
        return model({args})

    return forward, [tensor(n, dtype(d)) for n, d in INPUTS.items()]


def numpy_of(t):
    return np.asarray(t.numpy())


def dtype_of(t):
    return t.dtype.name
"""

_TF_VJP = """

def vjp(wide=False):
    \"\"\"d sum_k(output_k * cotangent_k) / d input for every float input (zeros where unused):
    on DEVICE, or (`wide`) in float64 on the CPU.\"\"\"
    with tf.device("/CPU:0" if wide else DEVICE):
        forward, xs = build(wide)
        wrt = [x for x in xs if x.dtype.is_floating]
        with tf.GradientTape() as tape:
            for x in wrt:
                tape.watch(x)
            terms = []
            for k, o in enumerate(forward(*xs)):
                if o.dtype.is_floating:
                    c = load(f"cotangent_{k}.npy")
                    terms.append(tf.cast(tf.reduce_sum(o * tf.constant(c.astype("float64") if wide else c)), tf.float64))
            total = tf.add_n(terms) if terms else None
        if total is None or not wrt:
            return [tf.zeros_like(x) for x in wrt]
        return tape.gradient(total, wrt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
"""


def harness_source(graph: Graph, framework: ScriptFramework, gradients: bool = False) -> str:
    """Standalone text that holds the model as the materializers do (torch: weights as module
    buffers; tf: weights as constants; inputs as arguments): INPUTS/WEIGHTS (placeholder
    name -> dtype; placeholder i is the file p{i}.npy), `build(wide=False)` -> (callable,
    input tensors), `numpy_of(t)`, `dtype_of(t)` and, with `gradients`, `vjp(wide=False)`
    (the materializers' `gradients`, with cotangent_{k}.npy). The text needs `numpy as np`,
    the framework, `load(name)`, `model` (model_source) and a `DEVICE` string."""

    def table(indices: Sequence[int]) -> str:
        return "{" + ", ".join(f'"p{i}": "{graph.placeholders[i].type.dtype.value}"' for i in indices) + "}"

    weight = "self.{}" if framework == "torch" else 'weights["{}"]'
    args = ", ".join(weight.format(f"p{i}") if p.kind == "weight" else f"p{i}" for i, p in enumerate(graph.placeholders))
    inputs = [f"p{i}" for i in graph.input_indices]
    if framework == "torch":
        body = _TORCH_HARNESS.format(params=", ".join(["self", *inputs]), args=args) + (_TORCH_VJP if gradients else "")
    else:
        body = _TF_HARNESS.format(params=", ".join(inputs), args=args) + (_TF_VJP if gradients else "")
    return (
        "# Placeholder -> dtype. Weights are held by the model and inputs fed to it, as Gauntlet does;\n"
        "# p{i}.npy holds placeholder i (bfloat16 as float32, exact).\n"
        f"INPUTS = {table(graph.input_indices)}\n"
        f"WEIGHTS = {table(graph.weight_indices)}\n"
        'FLOATS = ("float16", "bfloat16", "float32", "float64")\n\n' + body
    )


def write_script(
    graph: Graph,
    framework: ScriptFramework,
    catalog: Mapping[str, OpSpec],
    input_files: Mapping[int, str],
    title: str = "",
) -> str:
    """The program's text. `input_files[i]` is the .npy file name of placeholder i."""
    import_line, root = _HEADER[framework]
    source = model_source(graph, framework, catalog)
    loads = []
    for i, p in enumerate(graph.placeholders):
        loads.append(f"    p{i} = to_tensor(load({input_files[i]!r}), {p.type.dtype.value!r})  # {p.kind} {p.type}")
    to_tensor = (
        "def to_tensor(array, dtype):\n    return torch.from_numpy(array).to(getattr(torch, dtype))\n"
        if framework == "torch"
        else "def to_tensor(array, dtype):\n    return tf.cast(tf.constant(array), getattr(tf, dtype))\n"
    )
    to_numpy = "t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()" if framework == "torch" else "t.numpy()"
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

{source}

def main():
{chr(10).join(loads)}
    outputs = model({", ".join(f"p{i}" for i in range(len(graph.placeholders)))})
    for k, t in enumerate(outputs):
        value = {to_numpy}
        print(f"output {{k}}: shape={{list(value.shape)}} dtype={{t.dtype}} sum={{float(np.sum(value.astype(np.float64))):.6g}}")


if __name__ == "__main__":
    main()
'''
