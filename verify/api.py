"""User-facing robustness entry points: `assert_robust` for test suites and `robustness_command`
behind `gauntlet verify MODEL --data` (model and data loading, progress lines, summary, exit
code). Loads user code only by importing a named factory; never unpickles anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from generators.errors import GauntletError
from generators.load.model import LoadedModel
from generators.load.user import is_torch_module, load_samples, model_factory, parse_domain
from verify.manipulations import Family, parse_family
from verify.robust_report import write_reports
from verify.robustness import NORMS, RobustnessResult, SampleRecord, check_samples

__all__ = [
    "assert_robust",
    "auto_workers",
    "load_model",
    "load_samples",
    "parse_domain",
    "parse_manipulations",
    "robustness_command",
]


# --- loading ----------------------------------------------------------------------------------


def load_model(spec: str | os.PathLike[str], example: np.ndarray) -> LoadedModel:
    """An .onnx file, or a factory returning an nn.Module (loaded with `example`, one input
    with its batch dimension, as the input shape)."""
    text = os.fspath(spec)
    if text.lower().endswith(".onnx"):
        from generators.load.onnx import load_onnx

        if not Path(text).is_file():
            raise GauntletError(f"model {text}: no such file")
        return load_onnx(text)
    factory = model_factory(text)
    try:
        module = factory()
    except Exception as err:
        raise GauntletError(f"model {text!r}: the factory raised {type(err).__name__}: {err}") from err
    if not is_torch_module(module):
        raise GauntletError(f"model {text!r}: the factory returned {type(module).__name__}, not a torch.nn.Module")
    from generators.load.torch import load_torch

    return load_torch(module, example, description=text)


@dataclass(frozen=True)
class _Rebuild:
    """Picklable recipe that loads the same model again in a pool worker."""

    spec: str
    example: np.ndarray

    def __call__(self) -> LoadedModel:
        return load_model(self.spec, self.example)


def parse_manipulations(specs: Sequence[str]) -> list[Family]:
    """Manipulation specs such as `brightness:0.2:21`, `occlusion:3:1:0.0`; see parse_family."""
    return [parse_family(spec) for spec in specs]


# --- assert_robust ----------------------------------------------------------------------------


def _as_model(model: Any, inputs: np.ndarray) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str | os.PathLike):
        if not os.fspath(model).lower().endswith(".onnx"):
            raise GauntletError(f"assert_robust takes an nn.Module, an .onnx path or a LoadedModel, got {model!r}")
        return load_model(model, inputs[:1])
    if is_torch_module(model):
        from generators.load.torch import load_torch

        return load_torch(model, inputs[:1])
    raise GauntletError(f"assert_robust takes an nn.Module, an .onnx path or a LoadedModel, not {type(model).__name__}")


def _numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def assert_robust(
    model: Any,
    inputs: Any,
    labels: Any = None,
    *,
    eps: float,
    norm: str = "linf",
    domain: tuple[float, float] | None = None,
    timeout: float = 10.0,
    allow_unknown: bool = False,
    margin: float = 0.0,
    manipulations: Sequence[str | Family] = (),
) -> RobustnessResult:
    """Raises AssertionError unless every sample of `inputs` ([N, ...], a batch as the model takes
    it) keeps its label (default: the model's own prediction) within the eps-ball. Counterexamples
    are listed with their outputs; an undecided sample fails too unless `allow_unknown`."""
    x = _numpy(inputs)
    if x.ndim < 1 or x.shape[0] == 0:
        raise GauntletError("assert_robust needs a non-empty batch of inputs [N, ...]")
    loaded = _as_model(model, x)
    y = None if labels is None else np.asarray(_numpy(labels)).astype(np.int64)
    families = [parse_family(m) if isinstance(m, str) else m for m in manipulations]
    result = check_samples(loaded, x, y, eps, norm, domain, timeout, families, margin=margin)
    bad = [r for r in result.records if r.status in ("counterexample", "misclassified")]
    unknown = [r for r in result.records if r.status == "unknown"]
    if not bad and (allow_unknown or not unknown):
        return result
    what = f"{norm} eps={eps:g}" + (f", margin {margin:g}" if margin else "")
    lines = []
    if bad:
        lines.append(f"{len(bad)} of {len(result.records)} samples are not robust ({what}):")
        lines += [f"  sample {r.index} (label {r.label}): {r.summary()}" for r in bad]
    if unknown and not allow_unknown:
        lines.append(
            f"{len(unknown)} of {len(result.records)} samples could not be decided within {timeout:g} s each "
            "(unknown is not a pass: raise the timeout, or pass allow_unknown=True):"
        )
        lines += [f"  sample {r.index} (label {r.label}): {r.summary()}" for r in unknown]
    raise AssertionError("\n".join(lines))


# --- the command ------------------------------------------------------------------------------


def _progress_line(record: SampleRecord, done: int, total: int) -> str:
    width = len(str(total))
    return f"[{done:>{width}}/{total}] sample {record.index} label {record.label}: {record.status} ({record.seconds:.2f} s) - {record.summary()}"


def _summary_table(result: RobustnessResult) -> list[str]:
    counts = result.counts()
    total = len(result.records)
    rows = [(status, counts[status]) for status in ("verified", "counterexample", "unknown", "misclassified")]
    out = [f"{'status':<16}{'samples':>9}{'share':>9}"]
    out += [f"{status:<16}{n:>9}{n / total:>9.0%}" for status, n in rows]
    out.append(f"{'total':<16}{total:>9}{'':>9}")
    if result.radius:
        lowers = [r.radius.lower for r in result.records if r.radius is not None]
        if lowers:
            out.append(
                f"certified radius ({result.norm}): median {float(np.median(lowers)):.4g}, "
                f"min {min(lowers):.4g}, max {max(lowers):.4g} over {len(lowers)} samples"
            )
    for family in result.families:
        outcomes = [m for r in result.records for m in r.manipulations if m.spec == family.spec]
        broken = sum(m.status == "adversarial" for m in outcomes)
        undecided = sum(m.status == "unknown" for m in outcomes)
        out.append(f"{family.spec}: adversarial for {broken} of {len(outcomes)} samples, undecided for {undecided}")
    out.append(f"time {result.seconds:.1f} s with {result.workers} worker(s)")
    return out


def auto_workers(samples: int) -> int:
    """Two processes when there are 8+ samples and a second core is actually idle. Measured on a
    2-core machine shared with other jobs (load ~4), the pool gained nothing (30 digits samples:
    sequential 6.1 s, pool 18.1 s with the spawn cost; with radii 65 s vs 73 s), so it is
    used only where the load average leaves a core free."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1
    return 2 if samples >= 8 and cores >= 2 and cores - load >= 1.0 else 1


def robustness_command(
    model: str,
    data: str,
    eps: float,
    norm: str,
    domain: str | None,
    manipulations: list[str],
    radius: bool,
    out: str,
    timeout: float,
    quiet: bool,
    *,
    workers: int | None = None,
    margin: float = 0.0,
    stream: TextIO | None = None,
) -> int:
    """`gauntlet verify MODEL --data SAMPLES.npz`: checks every sample, writes report.json and
    report.html under `out`, and returns 0 (all verified), 1 (a counterexample or a misclassified
    sample) or 2 (only unknowns remain). `workers=None` chooses with auto_workers."""
    stream = stream if stream is not None else sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    if norm not in NORMS:
        raise GauntletError(f"--norm {norm!r}: choose from {', '.join(NORMS)}")
    if not (np.isfinite(eps) and eps >= 0):
        raise GauntletError(f"--eps must be a finite number >= 0, got {eps}")
    if not timeout > 0:
        raise GauntletError(f"--timeout must be > 0, got {timeout}")
    box = parse_domain(domain)
    families = parse_manipulations(manipulations)
    x, y = load_samples(data)
    example = x[:1]
    loaded = load_model(model, example)
    if workers is None:
        workers = auto_workers(x.shape[0])
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GauntletError(f"cannot create the output directory {out_dir}: {err.strerror}") from None
    if not quiet:
        say(f"model {loaded.description}: input {loaded.input_type}, output {loaded.output_type}")
        say(
            f"{x.shape[0]} samples from {data}; {norm} eps={eps:g}"
            + (f" in [{box[0]:g}, {box[1]:g}]" if box else "")
            + (f", manipulations {', '.join(f.spec for f in families)}" if families else "")
            + (", certified radius" if radius else "")
            + f"; {timeout:g} s per sample"
        )
    progress = None if quiet else (lambda r, done, total: say(_progress_line(r, done, total)))
    result = check_samples(
        loaded, x, y, eps, norm, box, timeout, families, radius, progress,
        margin=margin, workers=workers, rebuild=_Rebuild(str(model), example),
    )
    json_path, html_path = write_reports(result, out_dir, command=" ".join(sys.argv), data=str(data))
    if not quiet:
        say("")
    for line in _summary_table(result):
        say(line)
    counts = result.counts()
    say(
        f"{counts['verified']} verified, {counts['counterexample']} counterexample, {counts['unknown']} unknown, "
        f"{counts['misclassified']} misclassified; report {json_path} and {html_path}"
    )
    return result.exit_code
