"""PyTorch 2 compiled mode (inductor, Triton kernels) on a CUDA GPU; unavailable without one."""

from __future__ import annotations

from fuzz.backends.torch_compile import TorchCompile
from fuzz.backends.torch_cuda import TorchCuda


class TorchCompileCuda(TorchCompile):
    name = "torch_compile_cuda"
    device = "cuda"

    def available(self) -> bool:
        return TorchCuda().available()

    def version(self) -> str:
        return TorchCuda().version()
