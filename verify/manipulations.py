"""DLV-style manipulation families around one input, searched exhaustively as discrete regions:
brightness, contrast, occlusion and scratches (finite: enumerated on the Network, candidates
re-checked on the real model) and a per-pixel step grid (its enclosing box verified first).
Imports verify's data types, never solve or fuzz: box verification comes in as a callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from generators.errors import GauntletError
from generators.load.model import LoadedModel
from verify.network import Network
from verify.verdict import Counterexample, Verdict, Verified

__all__ = [
    "ENUMERATION_LIMIT",
    "Brightness",
    "Contrast",
    "Family",
    "ImageLayout",
    "ManipulationError",
    "ManipulationResult",
    "Occlusion",
    "PixelGrid",
    "Scratch",
    "image_layout",
    "parse_family",
    "run_family",
]

# The per-pixel grid is enumerated point by point only up to this many points.
ENUMERATION_LIMIT = 1_000_000
BATCH = 1024

Domain = tuple[float, float]
Params = dict[str, Any]
# Verifies "the label is unchanged" over the L-inf ball of the given radius around the sample
# (clipped to the domain); supplied by the caller, which owns the pipeline and its budget.
VerifyBall = Callable[[float], Verdict]


class ManipulationError(GauntletError):
    """A manipulation spec or request that cannot be carried out (bad syntax, not an image...)."""


@dataclass(frozen=True)
class ImageLayout:
    """How a flat input reads as an image: C x H x W, row-major. `guessed` when a flat input of
    s*s elements was read as an s x s single-channel image."""

    channels: int
    height: int
    width: int
    guessed: bool = False

    @property
    def size(self) -> int:
        return self.channels * self.height * self.width

    def describe(self) -> str:
        how = " (a flat input read as a square image)" if self.guessed else ""
        return f"{self.channels}x{self.height}x{self.width}{how}"


def image_layout(shape: tuple[int, ...]) -> ImageLayout:
    """The layout of an input shape: leading 1s (batch) dropped; [H, W] is one channel, [C, H, W]
    is channels-first (the IR is NCHW); a flat input of s*s >= 16 elements is an s x s image."""
    dims = list(shape)
    while len(dims) > 1 and dims[0] == 1:
        dims.pop(0)
    if len(dims) == 1:
        side = math.isqrt(dims[0])
        if side * side == dims[0] and side >= 4:
            return ImageLayout(1, side, side, guessed=True)
        raise ManipulationError(f"an input of shape {shape} is not image-shaped (image manipulations need [C, H, W])")
    if len(dims) == 2:
        return ImageLayout(1, dims[0], dims[1])
    if len(dims) == 3:
        return ImageLayout(dims[0], dims[1], dims[2])
    raise ManipulationError(f"an input of shape {shape} is not image-shaped (image manipulations need [C, H, W])")


# --- families ---------------------------------------------------------------------------------


class Family(Protocol):
    name: str

    @property
    def spec(self) -> str: ...

    @property
    def needs_image(self) -> bool: ...

    def params(self) -> Params: ...


def _clip(x: np.ndarray, domain: Domain | None) -> np.ndarray:
    return x if domain is None else np.clip(x, domain[0], domain[1])


def _check_value(value: float, domain: Domain | None, what: str) -> None:
    if domain is not None and not domain[0] <= value <= domain[1]:
        raise ManipulationError(f"the {what} value {value:g} lies outside the input domain [{domain[0]:g}, {domain[1]:g}]")


@dataclass(frozen=True)
class Brightness:
    """x + b for b on `steps` evenly spaced points of [-bound, bound], clipped to the domain."""

    bound: float
    steps: int = 21
    name = "brightness"
    needs_image = False

    @property
    def spec(self) -> str:
        return f"brightness:{self.bound:g}:{self.steps}"

    def params(self) -> Params:
        return {"bound": self.bound, "steps": self.steps}

    def count(self, layout: ImageLayout | None) -> int:
        return self.steps

    def batches(self, x: np.ndarray, layout: ImageLayout | None, domain: Domain | None) -> Iterator[tuple[np.ndarray, list[Params]]]:
        shifts = np.linspace(-self.bound, self.bound, self.steps)
        for start in range(0, len(shifts), BATCH):
            b = shifts[start : start + BATCH]
            yield _clip(x[None, :] + b[:, None], domain), [{"b": float(v)} for v in b]


@dataclass(frozen=True)
class Contrast:
    """mean + c (x - mean) per channel, for c on `steps` evenly spaced points of [low, high],
    clipped to the domain."""

    low: float
    high: float
    steps: int = 11
    name = "contrast"
    needs_image = True

    @property
    def spec(self) -> str:
        return f"contrast:{self.low:g}:{self.high:g}:{self.steps}"

    def params(self) -> Params:
        return {"low": self.low, "high": self.high, "steps": self.steps}

    def count(self, layout: ImageLayout | None) -> int:
        return self.steps

    def batches(self, x: np.ndarray, layout: ImageLayout | None, domain: Domain | None) -> Iterator[tuple[np.ndarray, list[Params]]]:
        assert layout is not None
        image = x.reshape(layout.channels, -1)
        mean = image.mean(axis=1, keepdims=True)
        factors = np.linspace(self.low, self.high, self.steps)
        for start in range(0, len(factors), BATCH):
            c = factors[start : start + BATCH]
            out = mean[None] + c[:, None, None] * (image - mean)[None]
            yield _clip(out.reshape(len(c), -1), domain), [{"c": float(v)} for v in c]


@dataclass(frozen=True)
class Occlusion:
    """A size x size patch (all channels) set to `value` at every position on a `stride` grid
    (top-left corners 0, stride, ... up to the last one that fits)."""

    size: int
    stride: int = 1
    value: float = 0.0
    name = "occlusion"
    needs_image = True

    @property
    def spec(self) -> str:
        return f"occlusion:{self.size}:{self.stride}:{self.value:g}"

    def params(self) -> Params:
        return {"size": self.size, "stride": self.stride, "value": self.value}

    def positions(self, layout: ImageLayout) -> list[tuple[int, int]]:
        rows = range(0, layout.height - self.size + 1, self.stride)
        return [(r, c) for r in rows for c in range(0, layout.width - self.size + 1, self.stride)]

    def count(self, layout: ImageLayout | None) -> int:
        assert layout is not None
        return len(self.positions(layout))

    def batches(self, x: np.ndarray, layout: ImageLayout | None, domain: Domain | None) -> Iterator[tuple[np.ndarray, list[Params]]]:
        assert layout is not None
        if self.size > min(layout.height, layout.width):
            raise ManipulationError(f"an occlusion patch of {self.size} pixels does not fit a {layout.describe()} image")
        _check_value(self.value, domain, "occlusion")
        positions = self.positions(layout)
        image = x.reshape(layout.channels, layout.height, layout.width)
        for start in range(0, len(positions), BATCH):
            chunk = positions[start : start + BATCH]
            out = np.repeat(image[None], len(chunk), axis=0)
            for i, (r, c) in enumerate(chunk):
                out[i, :, r : r + self.size, c : c + self.size] = self.value
            yield out.reshape(len(chunk), -1), [{"row": r, "col": c} for r, c in chunk]


@dataclass(frozen=True)
class Scratch:
    """A 1-pixel-wide line of `length` pixels (None: as long as the image allows) set to `value`
    in all channels, horizontal, vertical, diagonal and anti-diagonal, at every position."""

    value: float = 1.0
    length: int | None = None
    name = "scratch"
    needs_image = True

    @property
    def spec(self) -> str:
        return f"scratch:{self.value:g}" + ("" if self.length is None else f":{self.length}")

    def params(self) -> Params:
        return {"value": self.value, "length": self.length}

    def lines(self, layout: ImageLayout) -> list[tuple[str, int, int, int]]:
        """(orientation, row, col, length) of every scratch; the pixel k of a line is at
        h: (row, col + k), v: (row + k, col), d: (row + k, col + k), a: (row + k, col - k)."""
        h, w = layout.height, layout.width
        want = self.length if self.length is not None else max(h, w)
        lh, lv, ld = min(want, w), min(want, h), min(want, h, w)
        out = [("h", r, c, lh) for r in range(h) for c in range(w - lh + 1)]
        out += [("v", r, c, lv) for r in range(h - lv + 1) for c in range(w)]
        out += [("d", r, c, ld) for r in range(h - ld + 1) for c in range(w - ld + 1)]
        out += [("a", r, c + ld - 1, ld) for r in range(h - ld + 1) for c in range(w - ld + 1)]
        return out

    def count(self, layout: ImageLayout | None) -> int:
        assert layout is not None
        return len(self.lines(layout))

    def batches(self, x: np.ndarray, layout: ImageLayout | None, domain: Domain | None) -> Iterator[tuple[np.ndarray, list[Params]]]:
        assert layout is not None
        if self.length is not None and self.length < 1:
            raise ManipulationError("a scratch needs a length of at least 1 pixel")
        _check_value(self.value, domain, "scratch")
        lines = self.lines(layout)
        image = x.reshape(layout.channels, layout.height, layout.width)
        steps = {"h": (0, 1), "v": (1, 0), "d": (1, 1), "a": (1, -1)}
        for start in range(0, len(lines), BATCH):
            chunk = lines[start : start + BATCH]
            out = np.repeat(image[None], len(chunk), axis=0)
            for i, (kind, r, c, n) in enumerate(chunk):
                dr, dc = steps[kind]
                k = np.arange(n)
                out[i, :, r + dr * k, c + dc * k] = self.value
            yield (
                out.reshape(len(chunk), -1),
                [{"orientation": kind, "row": r, "col": c, "length": n} for kind, r, c, n in chunk],
            )


@dataclass(frozen=True)
class PixelGrid:
    """Every pixel independently x_i + k_i * tau with |k_i| <= m, clipped to the domain: a
    (2m+1)^n point grid, decided through its enclosing box (see run_family)."""

    tau: float
    m: int = 1
    name = "grid"
    needs_image = False

    @property
    def spec(self) -> str:
        return f"grid:{self.tau:g}:{self.m}"

    def params(self) -> Params:
        return {"tau": self.tau, "m": self.m}


FiniteFamily = Brightness | Contrast | Occlusion | Scratch


# --- parsing ----------------------------------------------------------------------------------

_SYNTAX = {
    "brightness": "brightness:B[:STEPS]  (x + b, b on STEPS points of [-B, B]; default 21)",
    "contrast": "contrast:LOW:HIGH[:STEPS]  (mean + c (x - mean), c on STEPS points of [LOW, HIGH]; default 11)",
    "occlusion": "occlusion:SIZE[:STRIDE[:VALUE]]  (a SIZE x SIZE patch set to VALUE; defaults 1 and 0)",
    "scratch": "scratch[:VALUE[:LENGTH]]  (1-pixel lines set to VALUE; default 1, full length)",
    "grid": "grid:TAU[:M]  (each pixel x + k TAU, |k| <= M; default 1)",
}


def parse_family(spec: str) -> Family:
    """A family from its command-line form, e.g. `brightness:0.2:21` or `occlusion:3:1:0.0`."""
    name, *args = spec.strip().split(":")
    name = name.lower()
    if name not in _SYNTAX:
        raise ManipulationError(
            f"unknown manipulation {name!r} in {spec!r}; the families are:\n  " + "\n  ".join(_SYNTAX.values())
        )

    def number(i: int, what: str, default: float | None = None) -> float:
        if i >= len(args) or args[i] == "":
            if default is None:
                raise ManipulationError(f"{spec!r}: missing {what}; the form is {_SYNTAX[name]}")
            return default
        try:
            value = float(args[i])
        except ValueError:
            raise ManipulationError(f"{spec!r}: {what} must be a number, got {args[i]!r}") from None
        if not math.isfinite(value):
            raise ManipulationError(f"{spec!r}: {what} must be finite")
        return value

    def count(i: int, what: str, default: int | None = None, low: int = 1) -> int:
        value = number(i, what, None if default is None else float(default))
        if value != int(value) or value < low:
            raise ManipulationError(f"{spec!r}: {what} must be an integer >= {low}, got {args[i]!r}")
        return int(value)

    limits = {"brightness": 2, "contrast": 3, "occlusion": 3, "scratch": 2, "grid": 2}
    if len(args) > limits[name]:
        raise ManipulationError(f"{spec!r}: too many fields; the form is {_SYNTAX[name]}")
    if name == "brightness":
        bound = number(0, "the bound B")
        if bound < 0:
            raise ManipulationError(f"{spec!r}: the bound must be >= 0")
        return Brightness(bound, count(1, "the number of steps", 21))
    if name == "contrast":
        low, high = number(0, "LOW"), number(1, "HIGH")
        if low > high:
            raise ManipulationError(f"{spec!r}: LOW must not exceed HIGH")
        return Contrast(low, high, count(2, "the number of steps", 11))
    if name == "occlusion":
        return Occlusion(count(0, "the patch size"), count(1, "the stride", 1), number(2, "the value", 0.0))
    if name == "scratch":
        length = None if len(args) < 2 or args[1] == "" else count(1, "the length")
        return Scratch(number(0, "the value", 1.0), length)
    tau = number(0, "the step TAU")
    if tau <= 0:
        raise ManipulationError(f"{spec!r}: the step must be > 0")
    return PixelGrid(tau, count(1, "M", 1, low=0))


# --- searching --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ManipulationResult:
    """The outcome of one family around one sample. `status`: "robust" (no adversarial example
    in the whole region, which was covered completely), "adversarial" (`example`, re-checked on
    the real model, with its `outputs`, `predicted` class and `manipulation` parameters), or
    "unknown" (`message` says why). `count` is the number of manipulations in the region."""

    family: str
    spec: str
    params: Params
    status: str
    message: str
    count: int
    checked: int
    method: str
    seconds: float
    example: np.ndarray | None = None
    outputs: np.ndarray | None = None
    predicted: int | None = None
    manipulation: Params | None = None


def _gaps(y: np.ndarray, label: int) -> np.ndarray:
    """y_label - max_{j != label} y_j per row: <= margin means the manipulation is adversarial."""
    others = np.delete(y, label, axis=1)
    gaps: np.ndarray = y[:, label] - others.max(axis=1)
    return gaps


def _input_dtype(model: LoadedModel) -> np.dtype[Any]:
    name = model.input_type.dtype.value
    return np.dtype(np.float32 if name in ("bfloat16", "float16") else name)


class _Judge:
    """Batched forward on the Network (float64) to find candidates; every candidate, and every
    near tie (where float32 rounding could flip the answer), is re-checked on the real model."""

    def __init__(self, model: LoadedModel, net: Network | None, label: int, margin: float) -> None:
        self.model, self.net, self.label, self.margin = model, net, label, margin
        self.dtype = _input_dtype(model)
        if net is not None and net.squash == "softmax" and margin != 0:
            raise ManipulationError("a margin on softmax outputs cannot be checked on the logits; use margin 0")

    def real(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        fed = np.asarray(x, dtype=self.dtype).reshape(self.model.input_type.shape)
        y = np.asarray(self.model.run_real(fed), dtype=np.float64)
        adversarial = bool(np.all(np.isfinite(y))) and float(_gaps(y.reshape(1, -1), self.label)[0]) <= self.margin
        return fed, y, adversarial

    def first(self, batch: np.ndarray) -> tuple[int, np.ndarray, np.ndarray] | None:
        """(row, input as fed, real output) of the first adversarial row of the batch."""
        if self.net is None:
            rows: Iterator[int] = iter(range(batch.shape[0]))
        else:
            y = self.net(batch)
            gaps = _gaps(y, self.label)
            tie = 1e-4 * (1.0 + np.abs(y).max(axis=1))
            rows = iter(np.nonzero(gaps <= self.margin + tie)[0].tolist())
        for i in rows:
            fed, y_real, adversarial = self.real(batch[i])
            if adversarial:
                return i, fed, y_real
        return None


def run_family(
    family: Family,
    model: LoadedModel,
    net: Network | None,
    x: np.ndarray,
    label: int,
    *,
    domain: Domain | None = None,
    margin: float = 0.0,
    layout: ImageLayout | None = None,
    verify_ball: VerifyBall | None = None,
) -> ManipulationResult:
    """Searches one family around x (model input shape). Finite families are enumerated
    completely; the grid goes through `verify_ball` (sound for the whole box) and is enumerated
    only when that does not decide it and it has at most ENUMERATION_LIMIT points."""
    start = time.monotonic()
    flat = np.ravel(np.asarray(x, dtype=np.float64))
    judge = _Judge(model, net, label, margin)
    if isinstance(family, PixelGrid):
        return _search_grid(family, judge, flat, domain, verify_ball, start)
    if family.needs_image and (layout is None or layout.size != flat.size):
        raise ManipulationError(f"{family.spec} needs an image-shaped input")
    assert isinstance(family, Brightness | Contrast | Occlusion | Scratch)
    total, checked = family.count(layout), 0
    for batch, params in family.batches(flat, layout, domain):
        hit = judge.first(batch)
        if hit is not None:
            i, fed, y = hit
            return ManipulationResult(
                family.name, family.spec, family.params(), "adversarial",
                f"adversarial example at {_describe(params[i])} (manipulation {checked + i + 1} of {total}): "
                f"class {int(np.argmax(y))}",
                total, checked + i + 1, "enumeration", time.monotonic() - start, fed, y, int(np.argmax(y)), params[i],
            )
        checked += len(params)
    return ManipulationResult(
        family.name, family.spec, family.params(), "robust", f"no adversarial example among {total} manipulations",
        total, checked, "enumeration", time.monotonic() - start,
    )


def _describe(params: Params) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _grid_values(grid: PixelGrid, flat: np.ndarray, domain: Domain | None) -> list[np.ndarray]:
    """The distinct values each pixel takes on the grid (clipping merges some)."""
    steps = np.arange(-grid.m, grid.m + 1) * grid.tau
    values = _clip(flat[:, None] + steps[None, :], domain)
    return [np.unique(row) for row in values]


def _search_grid(
    grid: PixelGrid, judge: _Judge, flat: np.ndarray, domain: Domain | None, verify_ball: VerifyBall | None, start: float
) -> ManipulationResult:
    values = _grid_values(grid, flat, domain)
    total = math.prod(len(v) for v in values)

    def result(status: str, message: str, checked: int, method: str, **found: Any) -> ManipulationResult:
        return ManipulationResult(
            grid.name, grid.spec, grid.params(), status, message, total, checked, method, time.monotonic() - start, **found
        )

    undecided = "no box verification available for this model"
    if verify_ball is not None:
        verdict = verify_ball(grid.m * grid.tau)
        if isinstance(verdict, Verified):
            return result(
                "robust", f"no adversarial example among {_big(total)} grid points (the enclosing box is verified by "
                f"{verdict.method})", 0, f"box verification ({verdict.method})",
            )
        if isinstance(verdict, Counterexample):
            snapped = _snaps(grid, flat, np.ravel(np.asarray(verdict.x, dtype=np.float64)), domain)
            for k, point in enumerate(snapped):
                fed, y, adversarial = judge.real(point)
                if adversarial:
                    ks = np.round((point - flat) / grid.tau).astype(int)
                    return result(
                        "adversarial", f"adversarial grid point (a box counterexample snapped to the grid): "
                        f"class {int(np.argmax(y))}", k + 1, "box counterexample snapped to the grid",
                        example=fed, outputs=y, predicted=int(np.argmax(y)),
                        manipulation={"steps_changed": int(np.count_nonzero(ks)), "max_step": int(np.abs(ks).max(initial=0))},
                    )
            undecided = "the enclosing box has a counterexample off the grid and its grid snaps are not adversarial"
        else:
            undecided = f"the enclosing box is undecided ({verdict.reason})"
    if total > ENUMERATION_LIMIT:
        return result(
            "unknown", f"not decided: {undecided}, and the grid has {_big(total)} points, more than the "
            f"{ENUMERATION_LIMIT:,} that are enumerated", 0, "box verification",
        )
    return _enumerate_grid(grid, judge, values, total, undecided, result)


def _snaps(grid: PixelGrid, flat: np.ndarray, cex: np.ndarray, domain: Domain | None) -> list[np.ndarray]:
    """The grid points nearest to a box counterexample, and those rounding away from the sample
    (a counterexample usually sits on the box's faces, i.e. at whole steps anyway)."""
    ratio = (cex - flat) / grid.tau
    nearest = np.clip(np.round(ratio), -grid.m, grid.m)
    away = np.clip(np.sign(ratio) * np.ceil(np.abs(ratio) - 1e-9), -grid.m, grid.m)
    out = [_clip(flat + nearest * grid.tau, domain)]
    if not np.array_equal(away, nearest):
        out.append(_clip(flat + away * grid.tau, domain))
    return out


def _enumerate_grid(
    grid: PixelGrid,
    judge: _Judge,
    values: list[np.ndarray],
    total: int,
    undecided: str,
    result: Callable[..., ManipulationResult],
) -> ManipulationResult:
    base = np.array([v[0] if len(v) == 1 else 0.0 for v in values])
    varying = [i for i, v in enumerate(values) if len(v) > 1]
    radices = [len(values[i]) for i in varying]
    for first in range(0, total, BATCH):
        index = np.arange(first, min(first + BATCH, total))
        batch = np.repeat(base[None], len(index), axis=0)
        rest = index.copy()
        # Mixed-radix digits, the last varying pixel fastest.
        for i, radix in zip(reversed(varying), reversed(radices)):
            batch[:, i] = values[i][rest % radix]
            rest //= radix
        hit = judge.first(batch)
        if hit is not None:
            row, fed, y = hit
            return result(
                "adversarial", f"adversarial grid point {first + row + 1} of {total:,} (enumerated): class {int(np.argmax(y))}",
                first + row + 1, "grid enumeration", example=fed, outputs=y, predicted=int(np.argmax(y)),
                manipulation={"point": first + row + 1},
            )
    return result(
        "robust", f"no adversarial example among {total:,} grid points (enumerated; {undecided})", total, "grid enumeration"
    )


def _big(n: int) -> str:
    return f"{n:,}" if n < 10**12 else f"about 10^{math.log10(n):.1f}"
