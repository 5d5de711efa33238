"""torch.lu_unpack (torch 2.13.0) segfault on this call, found by Gauntlet's probing.
Run: python repro.py (needs numpy and torch; the inputs are the .npy files beside it)."""
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
print(torch.__version__, flush=True)
out = torch.lu_unpack(torch.from_numpy(np.load(HERE / 'a0.npy')).to(torch.complex64), torch.from_numpy(np.load(HERE / 'a1.npy')).to(torch.int32))
print("returned normally")
