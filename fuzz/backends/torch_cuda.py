"""PyTorch eager mode on a CUDA GPU; unavailable without one."""

from __future__ import annotations

from fuzz.backends.torch_eager import TorchEager


class TorchCuda(TorchEager):
    name = "torch_cuda"
    device = "cuda"

    def available(self) -> bool:
        if not super().available():
            return False
        import torch

        return bool(torch.cuda.is_available())

    def version(self) -> str:
        import torch

        return f"torch-{torch.__version__}-cuda-{torch.version.cuda}-{torch.cuda.get_device_name(0)}"
