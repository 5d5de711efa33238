"""Local robustness around samples: L-inf / L2 ball properties, one verify_property call per
sample (optionally a certified-radius bisection and manipulation families), sequential or in a
small process pool. Imports verify and generators, never fuzz.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import torch

from generators.errors import GauntletError
from generators.load.model import LoadedModel, ModelError
from verify.manipulations import Family, ImageLayout, ManipulationResult, image_layout, run_family
from verify.network import Network, linearize
from verify.property import Disjunct, Property
from verify.solve import verify_property
from verify.verdict import Counterexample, Unknown, Verdict, Verified

__all__ = [
    "NORMS",
    "RadiusSearch",
    "RobustnessError",
    "RobustnessResult",
    "SampleRecord",
    "ball",
    "check_samples",
    "distance",
    "l2_ball",
    "linf_ball",
    "unsafe_rows",
]

NORMS = ("linf", "l2")
Domain = tuple[float, float]


class RobustnessError(GauntletError):
    """A robustness request that cannot be carried out as given (bad eps, shapes, labels...)."""


# --- properties -------------------------------------------------------------------------------


def unsafe_rows(label: int, n_outputs: int, margin: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (C, d) per other class j: unsafe when y_label - y_j <= margin, i.e. C = e_label - e_j
    and d = margin. A tie counts as unsafe: the label is then not the model's unique answer."""
    if not 0 <= label < n_outputs:
        raise RobustnessError(f"label {label} is not a class of a model with {n_outputs} outputs")
    rows = []
    for j in range(n_outputs):
        if j == label:
            continue
        c = np.zeros((1, n_outputs))
        c[0, label], c[0, j] = 1.0, -1.0
        rows.append((c, np.array([float(margin)])))
    return rows


def _box(x0: np.ndarray, eps: float, domain: Domain | None) -> tuple[np.ndarray, np.ndarray]:
    if not (np.isfinite(eps) and eps >= 0):
        raise RobustnessError(f"eps must be a finite number >= 0, got {eps}")
    lower, upper = x0 - eps, x0 + eps
    if domain is not None:
        lo, hi = domain
        if np.any(x0 < lo) or np.any(x0 > hi):
            raise RobustnessError(f"the sample lies outside the input domain [{lo}, {hi}]")
        lower, upper = np.maximum(lower, lo), np.minimum(upper, hi)
    return lower, upper


def linf_ball(
    x0: np.ndarray, eps: float, label: int, domain: Domain | None, n_outputs: int, *, margin: float = 0.0
) -> Property:
    """The label changes (or its margin drops to `margin`) somewhere in ||x - x0||_inf <= eps,
    clipped to the domain: one disjunct per other class."""
    x0 = np.ravel(np.asarray(x0, dtype=np.float64))
    lower, upper = _box(x0, eps, domain)
    disjuncts = tuple(Disjunct(lower, upper, c, d) for c, d in unsafe_rows(label, n_outputs, margin))
    what = "label unchanged" if margin == 0 else f"margin > {margin:g}"
    return Property(x0.size, n_outputs, disjuncts, f"linf ball eps={eps:g} around a sample of class {label}: {what}")


def l2_ball(
    x0: np.ndarray, eps: float, label: int, domain: Domain | None, n_outputs: int, *, margin: float = 0.0
) -> Property:
    """As linf_ball for the Euclidean ball: the box is the ball's bounding box clipped to the
    domain, and every disjunct carries the ball itself."""
    x0 = np.ravel(np.asarray(x0, dtype=np.float64))
    lower, upper = _box(x0, eps, domain)
    disjuncts = tuple(
        Disjunct(lower, upper, c, d, l2_center=x0, l2_radius=float(eps))
        for c, d in unsafe_rows(label, n_outputs, margin)
    )
    what = "label unchanged" if margin == 0 else f"margin > {margin:g}"
    return Property(x0.size, n_outputs, disjuncts, f"l2 ball eps={eps:g} around a sample of class {label}: {what}")


def ball(
    norm: str, x0: np.ndarray, eps: float, label: int, domain: Domain | None, n_outputs: int, margin: float = 0.0
) -> Property:
    if norm == "linf":
        return linf_ball(x0, eps, label, domain, n_outputs, margin=margin)
    if norm == "l2":
        return l2_ball(x0, eps, label, domain, n_outputs, margin=margin)
    raise RobustnessError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")


def distance(norm: str, a: np.ndarray, b: np.ndarray) -> float:
    delta = np.ravel(np.asarray(a, dtype=np.float64)) - np.ravel(np.asarray(b, dtype=np.float64))
    return float(np.abs(delta).max(initial=0.0)) if norm == "linf" else float(np.linalg.norm(delta))


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RadiusStep:
    eps: float
    status: str
    seconds: float


@dataclass(frozen=True, eq=False)
class RadiusSearch:
    """The certified radius bracket: every point within `lower` is verified; a counterexample
    lies at distance `upper` (None: none found). `undecided` is the smallest eps whose check
    ended unknown (None: none did); `stop` says why the bisection stopped."""

    lower: float
    upper: float | None
    undecided: float | None
    steps: tuple[RadiusStep, ...]
    stop: str


@dataclass(frozen=True, eq=False)
class SampleRecord:
    """One sample's outcome. `status` is "verified" (the ball and every manipulation family),
    "counterexample" (of either), "unknown", or "misclassified" (not checked: the model's own
    answer on the sample differs from its label). `verdict` is the eps-ball verdict."""

    index: int
    x: np.ndarray
    label: int
    predicted: int
    output: np.ndarray
    status: str
    verdict: Verdict | None
    seconds: float
    radius: RadiusSearch | None = None
    manipulations: tuple[ManipulationResult, ...] = ()
    norm: str = "linf"

    def ball_distance(self) -> float | None:
        """Distance of the ball counterexample from the sample, if there is one."""
        if isinstance(self.verdict, Counterexample):
            return distance(self.norm, self.verdict.x, self.x)
        return None

    def summary(self) -> str:
        """One line of evidence, for progress output and assertion messages."""
        if self.status == "misclassified":
            return f"misclassified: the model predicts {self.predicted}, the label is {self.label}"
        parts = []
        v = self.verdict
        if isinstance(v, Verified):
            parts.append(f"verified by {v.method} (margin {v.margin:.4g})")
        elif isinstance(v, Counterexample):
            cls = int(np.argmax(v.y))
            parts.append(
                f"counterexample by {v.method} at distance {self.ball_distance():.4g}: "
                f"class {cls}, outputs {_short_vector(v.y)}"
            )
        elif isinstance(v, Unknown):
            parts.append(f"unknown ({v.reason})")
        for m in self.manipulations:
            parts.append(f"{m.spec}: {m.message}")
        if self.radius is not None:
            upper = "none found" if self.radius.upper is None else f"{self.radius.upper:.4g}"
            parts.append(
                f"radius in [{self.radius.lower:.4g}, {upper}] after {len(self.radius.steps)} steps"
            )
        return "; ".join(parts) or self.status


def _short_vector(y: np.ndarray, limit: int = 10) -> str:
    flat = np.ravel(y)
    text = ", ".join(f"{v:.4g}" for v in flat[:limit])
    return f"[{text}{', ...' if flat.size > limit else ''}]"


@dataclass(frozen=True, eq=False)
class RobustnessResult:
    records: tuple[SampleRecord, ...]
    eps: float | None
    norm: str
    domain: Domain | None
    margin: float
    timeout_per_sample: float
    radius: bool
    families: tuple[Family, ...]
    model_description: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layout: ImageLayout | None
    workers: int
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {"verified": 0, "counterexample": 0, "unknown": 0, "misclassified": 0}
        for r in self.records:
            out[r.status] += 1
        return out

    @property
    def exit_code(self) -> int:
        """0: every sample verified; 1: some counterexample; 3: only unknowns remain (2 is
        the command line's code for a usage error). A
        misclassified sample is not verified: it counts as a counterexample (the sample itself)."""
        counts = self.counts()
        if counts["counterexample"] or counts["misclassified"]:
            return 1
        return 3 if counts["unknown"] else 0


# --- checking one sample ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Settings:
    eps: float | None
    norm: str
    domain: Domain | None
    margin: float
    timeout: float
    radius: bool
    radius_steps: int
    radius_rtol: float
    families: tuple[Family, ...]
    layout: ImageLayout | None


def _check_one(model: LoadedModel, net: Network | None, s: _Settings, index: int, x: np.ndarray, label: int | None) -> SampleRecord:
    start = time.monotonic()
    x = np.asarray(x, dtype=np.float64).reshape(model.input_type.shape)
    y0 = np.asarray(model.run_real(x), dtype=np.float64)
    n_out = y0.size
    predicted = int(np.argmax(y0))
    label = predicted if label is None else int(label)
    if not 0 <= label < n_out:
        raise RobustnessError(f"sample {index}: label {label} is not a class of a model with {n_out} outputs")
    if predicted != label:
        return SampleRecord(index, x, label, predicted, y0, "misclassified", None, time.monotonic() - start, norm=s.norm)
    verdict: Verdict | None = None
    if s.eps is not None:
        if net is None:
            raise ModelError("the eps-ball check needs a model the verifier can represent")
        prop = ball(s.norm, x, s.eps, label, s.domain, n_out, s.margin)
        verdict = verify_property(model, prop, s.timeout, net=net, seed=index)
        verdict = _recheck(model, prop, verdict)
    radius = None
    if s.radius and s.eps is not None and verdict is not None:
        radius = _certified_radius(model, net, s, x, label, n_out, s.eps, verdict, seed=index)

    def verify_box(e: float) -> Verdict:
        prop = linf_ball(x, e, label, s.domain, n_out, margin=s.margin)
        return _recheck(model, prop, verify_property(model, prop, s.timeout, net=net, seed=index))

    found = tuple(
        run_family(
            family, model, net, x, label, domain=s.domain, margin=s.margin, layout=s.layout,
            verify_ball=verify_box if net is not None else None,
        )
        for family in s.families
    )
    statuses = [] if verdict is None else [verdict.status]
    statuses += ["counterexample" if m.status == "adversarial" else m.status for m in found]
    statuses = ["verified" if st == "robust" else st for st in statuses]
    if "counterexample" in statuses:
        status = "counterexample"
    elif "unknown" in statuses:
        status = "unknown"
    else:
        status = "verified"
    return SampleRecord(index, x, label, predicted, y0, status, verdict, time.monotonic() - start, radius, found, s.norm)


def _recheck(model: LoadedModel, prop: Property, verdict: Verdict) -> Verdict:
    """The pipeline already replays counterexamples on the real model; checking once more here
    costs one forward pass and guards the report against ever showing a false one."""
    if isinstance(verdict, Counterexample):
        y = np.asarray(model.run_real(verdict.x), dtype=np.float64)
        if not prop.violated_by(np.asarray(verdict.x, dtype=np.float64), y):
            return Unknown("a counterexample did not reproduce on the real model", verdict.seconds, verdict.stats)
    return verdict


def _certified_radius(
    model: LoadedModel,
    net: Network | None,
    s: _Settings,
    x0: np.ndarray,
    label: int,
    n_outputs: int,
    eps: float,
    first: Verdict,
    seed: int = 0,
) -> RadiusSearch:
    """Bisection over eps from the verdict at `eps`: below the largest verified eps every
    point is safe; the nearest counterexample bounds the radius from above. Expands by
    doubling while nothing but verified is known. Each step gets an equal share of what is left
    of a budget of `s.timeout`."""
    lower, upper, undecided = 0.0, None, None
    steps: list[RadiusStep] = []

    def record(e: float, v: Verdict) -> None:
        nonlocal lower, upper, undecided
        if isinstance(v, Verified):
            lower = max(lower, e)
        elif isinstance(v, Counterexample):
            d = distance(s.norm, v.x, x0)
            upper = d if upper is None else min(upper, d)
        else:
            undecided = e if undecided is None else min(undecided, e)

    record(eps, first)
    # Beyond `cap` the ball covers the whole domain: a larger eps asks nothing new.
    cap = None
    if s.domain is not None:
        reach = np.maximum(np.ravel(x0) - s.domain[0], s.domain[1] - np.ravel(x0))
        cap = float(reach.max(initial=0.0)) if s.norm == "linf" else float(np.linalg.norm(reach))
    budget_end = time.monotonic() + s.timeout
    stop = f"{s.radius_steps} steps done"
    for k in range(s.radius_steps):
        tops = [v for v in (upper, undecided) if v is not None]
        if tops:
            top = min(tops)
            if top - lower <= s.radius_rtol * top:
                stop = f"bracket within {s.radius_rtol:g} relative"
                break
            candidate = (lower + top) / 2
        else:
            if cap is not None and lower >= cap:
                stop = "verified on the whole domain"
                break
            candidate = 2 * lower if lower > 0 else eps
            if cap is not None:
                candidate = min(candidate, cap)
        remaining = budget_end - time.monotonic()
        if remaining <= 0:
            stop = "radius budget spent"
            break
        prop = ball(s.norm, x0, candidate, label, s.domain, n_outputs, s.margin)
        v = _recheck(model, prop, verify_property(model, prop, remaining / (s.radius_steps - k), net=net, seed=seed + k + 1))
        record(candidate, v)
        steps.append(RadiusStep(candidate, v.status, v.seconds))
    return RadiusSearch(lower, upper, undecided, tuple(steps), stop)


# --- many samples -----------------------------------------------------------------------------

Progress = Callable[[SampleRecord, int, int], None]

# Set in each pool worker by _worker_init: the rebuilt model and the settings.
_WORKER: tuple[LoadedModel, Network | None, _Settings] | RobustnessError | None = None


def _worker_init(recipe: bytes, settings: _Settings, probe: np.ndarray, expected: np.ndarray) -> None:
    global _WORKER
    # One thread per worker: the pool already spreads samples over the cores.
    torch.set_num_threads(1)
    rebuild: Callable[[], LoadedModel] = pickle.loads(recipe)  # bytes this process's parent pickled just now
    model = rebuild()
    got = np.asarray(model.run_real(probe), dtype=np.float64)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-6, atol=1e-9):
        # Raised from the first task rather than here: an initializer's exception only breaks the pool.
        _WORKER = RobustnessError(
            "the model rebuilt in a worker process computes different outputs than the original (does its "
            "factory load fixed weights?); run with one worker"
        )
        return
    _WORKER = (model, _network(model, settings), settings)


def _worker_check(index: int, x: np.ndarray, label: int | None) -> SampleRecord:
    if isinstance(_WORKER, RobustnessError):
        raise _WORKER
    assert _WORKER is not None, "worker not initialized"
    model, net, settings = _WORKER
    return _check_one(model, net, settings, index, x, label)


def _network(model: LoadedModel, s: _Settings) -> Network | None:
    try:
        return linearize(model)
    except ModelError:
        # Finite manipulation families still work on the real model alone; a ball does not.
        if s.eps is not None:
            raise
        return None


def _layout(model: LoadedModel, families: Sequence[Family]) -> ImageLayout | None:
    try:
        return image_layout(model.input_type.shape)
    except GauntletError:
        if any(f.needs_image for f in families):
            raise
        return None


def check_samples(
    model: LoadedModel,
    xs: np.ndarray,
    labels: Sequence[int] | np.ndarray | None,
    eps: float | None,
    norm: str = "linf",
    domain: Domain | None = None,
    timeout_per_sample: float = 10.0,
    manipulations: Sequence[Family] = (),
    radius: bool = False,
    progress: Progress | None = None,
    *,
    margin: float = 0.0,
    radius_steps: int = 8,
    radius_rtol: float = 0.01,
    workers: int = 1,
    rebuild: Callable[[], LoadedModel] | None = None,
    threads: int | None = 1,
) -> RobustnessResult:
    """Checks every sample of `xs` ([N, *input shape] or [N, *input shape without its leading 1]).
    `labels` default to the model's own predictions. `eps=None` skips the ball (manipulations
    only). With `workers > 1` and a picklable `rebuild` (a function returning the same model),
    samples run in that many spawned processes (one torch thread each); otherwise sequentially,
    with torch limited to `threads` for the call (None: unchanged). Parallelism goes across
    samples, not inside one: the verifier's many small tensor operations run 10-20x slower on
    two intra-op threads than on one when the cores are shared. `progress(record, done, total)`
    is called in this process as each sample finishes."""
    start = time.monotonic()
    if norm not in NORMS:
        raise RobustnessError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")
    if domain is not None and not domain[0] < domain[1]:
        raise RobustnessError(f"the domain [{domain[0]}, {domain[1]}] is empty")
    if eps is None and not manipulations:
        raise RobustnessError("nothing to check: give eps, manipulations, or both")
    if radius and not (eps is not None and eps > 0):
        raise RobustnessError("the certified radius needs an eps > 0 to start from")
    samples = _as_samples(model, xs)
    label_list = _labels(labels, len(samples))
    settings = _Settings(
        eps, norm, domain, float(margin), float(timeout_per_sample), radius, radius_steps, radius_rtol,
        tuple(manipulations), _layout(model, manipulations),
    )
    net = _network(model, settings)
    records: list[SampleRecord | None] = [None] * len(samples)
    done = 0

    def finish(record: SampleRecord) -> None:
        nonlocal done
        records[record.index] = record
        done += 1
        if progress is not None:
            progress(record, done, len(samples))

    use_pool = workers > 1 and rebuild is not None and len(samples) > 1
    if use_pool:
        assert rebuild is not None
        context = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
        # Pickled here with the plain pickler: multiprocessing's own would move any tensor in the
        # recipe (a module's parameters) to shared memory in place, which frees the buffer that
        # NumPy views of those parameters (a LoadedModel's weights) still point to.
        recipe = pickle.dumps(rebuild)
        probe = samples[0]
        expected = np.asarray(model.run_real(probe), dtype=np.float64)
        with ProcessPoolExecutor(
            min(workers, len(samples)), mp_context=context, initializer=_worker_init,
            initargs=(recipe, settings, probe, expected),
        ) as pool:
            futures = [pool.submit(_worker_check, i, x, lab) for i, (x, lab) in enumerate(zip(samples, label_list))]
            for future in as_completed(futures):
                finish(future.result())
    else:
        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            for i, (x, lab) in enumerate(zip(samples, label_list)):
                finish(_check_one(model, net, settings, i, x, lab))
        finally:
            torch.set_num_threads(previous)
    return RobustnessResult(
        tuple(r for r in records if r is not None),
        eps,
        norm,
        domain,
        float(margin),
        float(timeout_per_sample),
        radius,
        tuple(manipulations),
        model.description,
        tuple(model.input_type.shape),
        tuple(model.output_type.shape),
        settings.layout,
        min(workers, len(samples)) if use_pool else 1,
        time.monotonic() - start,
    )


def _as_samples(model: LoadedModel, xs: np.ndarray) -> list[np.ndarray]:
    shape = tuple(model.input_type.shape)
    array = np.asarray(xs, dtype=np.float64)
    if array.ndim == 0 or array.shape[0] == 0:
        raise RobustnessError("no samples given")
    per = array.shape[1:]
    fits = per == shape or (shape[:1] == (1,) and per == shape[1:]) or per == (model.input_size,)
    if not fits:
        raise RobustnessError(
            f"samples of shape {per} do not fit the model's input shape {shape} (give an array [N, *input shape])"
        )
    if not np.all(np.isfinite(array)):
        raise RobustnessError("the samples contain NaN or infinite values")
    return [array[i].reshape(shape) for i in range(array.shape[0])]


def _labels(labels: Sequence[int] | np.ndarray | None, n: int) -> list[int | None]:
    if labels is None:
        return [None] * n
    array = np.asarray(labels)
    if array.shape != (n,):
        raise RobustnessError(f"expected {n} labels (one per sample), got an array of shape {array.shape}")
    if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise RobustnessError("labels must be integer class indices")
    return [int(v) for v in array]
