"""The `differential` fixture: `assert_backends_agree(target, inputs)` runs a Gauntlet graph on
sandboxed backends (judged by the oracle against the float64 reference), or a user's own torch /
Keras function eagerly and compiled against a float64 run of itself. Frameworks load on use."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fuzz.pytest_plugin.summary import BugRecord, TestRecord

__all__ = ["BackendsDisagree", "Differential"]

Problem = tuple[str, tuple[str, ...], str]  # symptom, backends, detail

# Eager first: it is the baseline the compiled variants are compared with.
TORCH_BACKENDS = ("torch_eager", "torch_compile", "torch_cuda")
TF_BACKENDS = ("tf_eager", "tf_xla")
GRAPH_DEFAULT = ("torch_eager", "tf_eager", "onnxruntime")


class BackendsDisagree(AssertionError):
    """Backends disagree on the same computation (or one of them failed on it)."""


def _safe(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[-120:] or "test"


class Differential:
    """Bound to one test: its record, its output directory, the session's runners and the
    backends chosen on the command line (which win over the call's own)."""

    def __init__(self, record: TestRecord, out: Path, runners: dict[tuple[str, ...], Any],
                 backends: tuple[str, ...] | None, seed: int) -> None:
        self.record = record
        self.out = out
        self._runners = runners
        self._backends = backends
        self.seed = seed

    # --- graphs -------------------------------------------------------------------------------

    def _runner(self, backends: tuple[str, ...]) -> Any:
        runner = self._runners.get(backends)
        if runner is None:
            from fuzz.runner import DifferentialRunner

            runner = DifferentialRunner(backends, workers=1)
            runner.start()
            self._runners[backends] = runner
        return runner

    def _graph(self, graph: Any, inputs: Sequence[np.ndarray] | None, backends: tuple[str, ...]) -> None:
        from fuzz.execute import GraphJob
        from fuzz.sandbox import Died

        if inputs is None:
            from generators.ops import catalog
            from generators.values import make_feed

            feed = make_feed(graph, np.random.default_rng(self.seed), catalog())
            if feed is None:
                raise ValueError("no inputs keep this graph's reference finite and stable; pass the inputs")
            arrays = feed.arrays
        else:
            arrays = tuple(np.asarray(a) for a in inputs)
        if len(arrays) != len(graph.placeholders):
            raise ValueError(f"the graph has {len(graph.placeholders)} placeholders (inputs and weights, in order); "
                             f"{len(arrays)} arrays given")
        runner = self._runner(backends)
        self.record.backends = tuple(sorted({*self.record.backends, *runner.names}))
        job = GraphJob(self.seed, graph.to_json(), arrays, runner.names, runner.capability_json)
        answer = runner.pool.run([job])[0]
        self.record.graphs += 1
        if isinstance(answer, Died):
            problems: list[Problem] = [(f"{answer.symptom} in {answer.stage or 'a worker'}", tuple(runner.names), answer.detail.splitlines()[0])]
        elif answer.verdict is None or answer.verdict.kind != "bug":
            return
        else:
            problems = [(f.symptom, f.backends, f.detail) for f in answer.verdict.findings]
        directory = self._save_graph(graph, arrays)
        self._fail(problems, tuple(graph.op_names()), directory / "repro.py")

    def _save_graph(self, graph: Any, arrays: Sequence[np.ndarray]) -> Path:
        from fuzz.repro import write_inputs
        from generators.materialize.script import write_script
        from generators.ops import catalog

        directory = self.out / f"graph-{graph.digest()}"
        write_inputs(directory, graph, arrays)
        files = {i: f"p{i}.npy" for i in range(len(graph.placeholders))}
        (directory / "repro.py").write_text(
            write_script(graph, "torch", catalog(), files, title=f"Gauntlet differential check, seed {self.seed}"))
        return directory

    # --- user functions -------------------------------------------------------------------------

    def _callable(self, fn: Callable[..., Any], inputs: Sequence[Any], backends: tuple[str, ...] | None) -> None:
        framework = _framework(fn, inputs, backends)
        names = backends or (TORCH_BACKENDS if framework == "torch" else TF_BACKENDS)
        runs = {name: _runner_for(name, framework, fn) for name in names}
        usable = {name: run for name, run in runs.items() if run is not None}
        self.record.backends = tuple(sorted({*self.record.backends, *usable}))
        arrays = [np.asarray(_to_numpy(x)) for x in inputs]
        reference = _reference(fn, framework, arrays)
        problems: list[Problem] = []
        for name, run in usable.items():
            try:
                outputs = _flatten(run(arrays))
            except Exception as error:  # a backend rejecting what eager float64 ran is a finding
                problems.append(("rejection", (name,), f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"))
                continue
            problems += _compare(name, outputs, reference)
        self.record.graphs += 1
        if problems:
            directory = self.out / f"{getattr(fn, '__name__', type(fn).__name__)}-{self.seed}"
            directory.mkdir(parents=True, exist_ok=True)
            np.savez(directory / "inputs.npz", *arrays)
            self._fail(problems, (), directory / "inputs.npz")

    # --- shared -----------------------------------------------------------------------------------

    def _fail(self, problems: list[Problem], ops: tuple[str, ...], repro: Path) -> None:
        lines = []
        for symptom, backends, detail in problems:
            bug = BugRecord(f"{symptom}-{'-'.join(backends)}", symptom, backends, ops, str(repro), self.seed, detail)
            self.record.bugs.append(bug)
            lines.append(f"{symptom} on {', '.join(backends)}: {detail}")
        raise BackendsDisagree("backends disagree:\n  " + "\n  ".join(lines) + f"\nreproducer: {repro} (seed {self.seed})")

    def assert_backends_agree(self, target: Any, inputs: Sequence[Any] | None = None,
                              backends: Sequence[str] | None = None) -> None:
        """`target` is a Gauntlet `Graph` (inputs: one array per placeholder, weights included;
        None draws them from the seed), run on `backends` (default torch_eager, tf_eager,
        onnxruntime) in sandboxed workers and judged by the oracle; or a function / nn.Module /
        Keras model of torch or TensorFlow tensors, run eagerly and compiled (torch_eager,
        torch_compile[, torch_cuda]; tf_eager, tf_xla) and compared with a float64 eager run.
        `--gauntlet-backends` replaces `backends`."""
        from generators.ir import Graph

        chosen = self._backends or (tuple(backends) if backends else None)
        if isinstance(target, Graph):
            self._graph(target, inputs, chosen or GRAPH_DEFAULT)
        elif callable(target):
            if inputs is None:
                raise ValueError("give the inputs of the function to compare")
            self._callable(target, list(inputs), chosen)
        else:
            raise TypeError(f"assert_backends_agree takes a Graph or a callable, not {type(target).__name__}")


# --- running a user's function per backend ----------------------------------------------------


def _framework(fn: Any, inputs: Sequence[Any], backends: tuple[str, ...] | None) -> str:
    if backends and all(b in TORCH_BACKENDS for b in backends):
        return "torch"
    if backends and all(b in TF_BACKENDS for b in backends):
        return "tensorflow"
    module = type(fn).__module__ + " " + " ".join(type(x).__module__ for x in inputs)
    if "torch" in module:
        return "torch"
    if "keras" in module or "tensorflow" in module:
        return "tensorflow"
    raise TypeError("assert_backends_agree: pass torch or TensorFlow tensors, an nn.Module or Keras model, or "
                    "name the backends (torch_* or tf_*)")


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x.numpy() if hasattr(x, "numpy") else x


def _flatten(value: Any) -> list[np.ndarray]:
    if isinstance(value, list | tuple):
        return [a for v in value for a in _flatten(v)]
    if isinstance(value, dict):
        return [a for k in sorted(value) for a in _flatten(value[k])]
    return [np.asarray(_to_numpy(value))]


def _runner_for(name: str, framework: str, fn: Callable[..., Any]) -> Callable[[list[np.ndarray]], Any] | None:
    """How backend `name` runs `fn` on NumPy inputs, or None where it is not available here."""
    if framework == "torch":
        import torch

        if name not in TORCH_BACKENDS:
            raise ValueError(f"backend {name} cannot run a torch function; use {', '.join(TORCH_BACKENDS)}")
        if name == "torch_cuda" and not torch.cuda.is_available():
            return None
        device = "cuda" if name == "torch_cuda" else "cpu"
        target = fn.to(device) if isinstance(fn, torch.nn.Module) else fn
        compiled = torch.compile(target) if name == "torch_compile" else target

        def run_torch(arrays: list[np.ndarray]) -> Any:
            with torch.no_grad():
                return compiled(*[torch.from_numpy(a).to(device) for a in arrays])

        return run_torch
    import tensorflow as tf

    if name not in TF_BACKENDS:
        raise ValueError(f"backend {name} cannot run a TensorFlow function; use {', '.join(TF_BACKENDS)}")
    wrapped = tf.function(fn, jit_compile=True) if name == "tf_xla" else fn
    return lambda arrays: wrapped(*[tf.constant(a) for a in arrays])


def _reference(fn: Callable[..., Any], framework: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """A float64 eager run (floating inputs and parameters widened), the yardstick for every
    backend; where float64 cannot run, the eager run itself."""
    wide = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    try:
        if framework == "torch":
            import copy

            import torch

            target = copy.deepcopy(fn).double() if isinstance(fn, torch.nn.Module) else fn
            with torch.no_grad():
                return _flatten(target(*[torch.from_numpy(a) for a in wide]))
        import tensorflow as tf

        return _flatten(fn(*[tf.constant(a) for a in wide]))
    except Exception:  # float64 unsupported by the function: fall back to its own precision
        run = _runner_for("torch_eager" if framework == "torch" else "tf_eager", framework, fn)
        assert run is not None
        return _flatten(run(arrays))


def _compare(name: str, outputs: list[np.ndarray], reference: list[np.ndarray]) -> list[Problem]:
    from fuzz.oracle import TOLERANCE
    from generators.dtypes import DType

    if len(outputs) != len(reference):
        return [("wrong_shape", (name,), f"{len(outputs)} outputs, expected {len(reference)}")]
    problems: list[Problem] = []
    for k, (actual, expected) in enumerate(zip(outputs, reference)):
        if actual.shape != expected.shape:
            problems.append(("wrong_shape", (name,), f"output {k}: shape {actual.shape}, expected {expected.shape}"))
            continue
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(e)) or not np.array_equal(np.isinf(a) & (a > 0), np.isinf(e) & (e > 0)):
            problems.append(("nan_inf", (name,), f"output {k}: NaN/Inf positions differ"))
            continue
        tol = TOLERANCE.get(DType.from_numpy(actual.dtype)) if actual.dtype.kind == "f" else None
        finite = np.isfinite(e)
        allowed = np.zeros_like(e) if tol is None else tol.atol + tol.rtol * np.abs(e) + tol.ulps * np.spacing(
            np.abs(e).astype(actual.dtype)).astype(np.float64)
        error = np.where(finite, np.abs(a - e), 0.0)
        bad = error > allowed
        if bad.any():
            worst = np.unravel_index(int(np.argmax(np.where(bad, error - allowed, -np.inf))), e.shape)
            problems.append(("wrong_result", (name,), f"output {k}: {int(bad.sum())} of {e.size} element(s) outside "
                             f"tolerance; worst at {list(map(int, worst))}: {a[worst]!r}, expected {e[worst]!r}"))
    return problems
