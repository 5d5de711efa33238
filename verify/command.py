"""`gauntlet verify --onnx NET --vnnlib PROP`: one VNN-COMP instance, one word on stdout
(unsat, sat, timeout or unknown) and the counterexample file in the competition format."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from generators.errors import GauntletError


def vnnlib_command(onnx: str, vnnlib: str, timeout: float, cex: str | None = None, verbose: bool = False) -> int:
    """Prints the result word; exit status 0 for any result (user mistakes raise)."""
    if timeout <= 0:
        raise GauntletError("--timeout must be positive")
    start = time.monotonic()
    from generators.load.onnx import load_onnx
    from verify.solve import verify_property
    from verify.verdict import Counterexample, Unknown, Verified
    from verify.vnnlib import load_vnnlib, write_counterexample

    model = load_onnx(onnx)
    prop = load_vnnlib(vnnlib)

    def log(message: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - start:7.2f}s] {message}", file=sys.stderr, flush=True)

    verdict = verify_property(model, prop, max(timeout - (time.monotonic() - start), 0.01), log=log)
    if isinstance(verdict, Verified):
        word = "unsat"
    elif isinstance(verdict, Counterexample):
        word = "sat"
        if cex:
            try:
                write_counterexample(Path(cex), verdict.x, verdict.y)
            except OSError as exc:
                raise GauntletError(f"{cex}: cannot write the counterexample: {exc.strerror}") from None
    else:
        assert isinstance(verdict, Unknown)
        word = "timeout" if "timeout" in verdict.reason else "unknown"
        log(verdict.reason)
    print(word, flush=True)
    return 0
