"""PyTorch 2 compiled mode on the CPU: torch.compile with the inductor backend (graphs
are compiled whole, with static shapes, so a graph break is a failure to compile)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from fuzz.backends.base import Model
from fuzz.backends.torch_eager import TorchEager


class TorchCompile(TorchEager):
    name = "torch_compile"
    # Compiling every operator x dtype up front would take many minutes: probe a pair
    # only when a graph using it fails.
    probe_lazily = True
    # Compilation dominates: the runner compiles several test graphs side by side at once
    # (a finding is re-checked on its graph alone before it is reported).
    batchable = True
    differentiable = False  # the gradient oracle covers the eager backends
    device = "cpu"

    def prepare(self, model: Model) -> Any:
        import torch
        import torch._inductor.config

        from generators.materialize import torch as mt

        # The sandbox runs one worker per core; inductor's pool of compile processes would
        # only compete with the other workers for the same cores.
        torch._inductor.config.compile_threads = 1

        # Every graph module shares one forward() code object, and dynamo caches compiled
        # frames per code object: start each graph from an empty cache.
        torch._dynamo.reset()
        module = model.torch_module(self.device)
        compiled = torch.compile(module, backend="inductor", fullgraph=True, dynamic=False)
        # Compilation is lazy; run the example once so compile errors belong to this stage.
        with self._scheduling(model):
            mt.run(compiled, model.example_inputs, self.device)  # type: ignore[arg-type]
        return compiled

    def _scheduling(self, model: Model) -> AbstractContextManager[Any]:
        """For a union of several test graphs on the CPU: order kernels by extern depth, so
        g++ builds one file per depth rather than one per extern call (about 0.6 s each).
        This only reorders independent work; a single graph, and so every reported finding's
        re-check, compiles with inductor's defaults."""
        if model.parts < 2 or self.device != "cpu":
            return nullcontext()
        import torch._inductor.config

        from fuzz.backends.inductor_grouping import group_by_extern_depth

        if not hasattr(torch._inductor.config, "_post_fusion_custom_pass"):  # a private hook: torch may drop it
            return nullcontext()
        # The memory-driven reordering runs after every custom pass and would undo it.
        patch: AbstractContextManager[Any] = torch._inductor.config.patch(
            _post_fusion_custom_pass=group_by_extern_depth, reorder_for_peak_memory=False
        )
        return patch
