"""`gauntlet inputs` (generate a mix of hard inputs, write inputs.npz / inputs.json / image grids)
and `gauntlet supervise` (score supervisors against nominal data, write report.json / report.html):
loading, checks, progress on stderr, the summary on stdout. User code is imported, never unpickled."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from generators.errors import GauntletError
from generators.inputs.adapter import ModelAdapter, adapt
from generators.inputs.result import CATEGORIES, HardInputs
from generators.load.user import load_samples, model_factory, parse_domain

__all__ = ["inputs_command", "load_adapter", "load_inputs", "parse_bounds", "parse_shape", "supervise_command", "write_inputs"]

INPUTS_SCHEMA = 1
GRID_LIMIT = 100  # inputs shown per category grid


# --- loading ----------------------------------------------------------------------------------


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """`1,8,8` or `1x8x8` -> (1, 8, 8); None stays None."""
    if text is None or not text.strip():
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise GauntletError(f"--shape {text!r}: give one sample's dimensions, e.g. 1,8,8") from None
    if any(d <= 0 for d in shape):
        raise GauntletError(f"--shape {text!r}: dimensions must be positive")
    return shape


def parse_bounds(text: str) -> tuple[float, float]:
    """`LO:HI` (or `LO,HI`) -> (lo, hi), the range every raw input value lies in."""
    bounds = parse_domain(text, "--bounds")
    if bounds is None:
        raise GauntletError("--bounds: give two numbers LO:HI (e.g. 0:1)")
    return bounds


def load_adapter(
    model: str,
    shape: Sequence[int],
    bounds: tuple[float, float],
    *,
    probabilities: bool = False,
    feature_layer: str | None = None,
) -> ModelAdapter:
    """An adapter for an .onnx file or a `file.py:factory` / `package.module:factory` returning a
    torch.nn.Module or a Keras model."""
    if model.lower().endswith(".onnx"):
        if not Path(model).is_file():
            raise GauntletError(f"model {model}: no such file")
        return adapt(model, shape, bounds=bounds, probabilities=probabilities, feature_layer=feature_layer, description=model)
    factory = model_factory(model)
    try:
        built = factory()
    except Exception as err:
        raise GauntletError(f"model {model!r}: the factory raised {type(err).__name__}: {err}") from err
    return adapt(built, shape, bounds=bounds, probabilities=probabilities, feature_layer=feature_layer, description=model)


def _labelled(path: str, what: str, shape: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_samples(path)
    if y is None:
        raise GauntletError(f"{what} {path}: needs integer labels 'y' next to 'x' (the model's accuracy is checked on them)")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
            raise GauntletError(f"{what} {path}: samples of shape {x.shape[1:]} do not fit --shape {tuple(shape)}")
        x = x.reshape(len(x), *shape)
    return x.astype(np.float32), y.astype(np.int64)


def _prepare(
    model: str, data: str, shape: str | None, bounds: str, probabilities: bool, feature_layer: str | None, say: Callable[[str], None]
) -> tuple[ModelAdapter, np.ndarray, np.ndarray]:
    box = parse_bounds(bounds)
    wanted = parse_shape(shape)
    x, y = _labelled(data, "data", wanted)
    adapter = load_adapter(model, wanted or x.shape[1:], box, probabilities=probabilities, feature_layer=feature_layer)
    accuracy = adapter.check(x, y)
    say(f"model {adapter.description}: input {adapter.input_shape} in [{box[0]:g}, {box[1]:g}], {adapter.num_classes} "
        f"classes; clean accuracy {accuracy:.1%} on {len(x)} samples of {data}")
    return adapter, x, y


def _out_dir(out: str) -> Path:
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GauntletError(f"cannot create the output directory {path}: {err.strerror}") from None
    return path


# --- inputs.npz -------------------------------------------------------------------------------


def write_inputs(out_dir: Path, sets: Sequence[HardInputs], adapter: ModelAdapter, meta: dict[str, Any]) -> list[Path]:
    """inputs.npz (x, category, method, set, source, labels with NaN rows where none, predicted),
    inputs.json (meta and each set's parameters) and, for images, one PNG grid per category."""
    from generators.inputs.supervise_html import image_grid, image_layout
    from generators.inputs.supervise_report import plain
    from generators.png import png

    classes = adapter.num_classes
    rows = list(sets)
    x = np.concatenate([h.x for h in rows]).astype(np.float32) if rows else np.zeros((0, *adapter.input_shape), np.float32)
    labels = [np.full((len(h), classes), np.nan) if h.labels is None else np.asarray(h.labels, np.float64) for h in rows]
    arrays = {
        "x": x.reshape(len(x), *adapter.input_shape),
        "category": np.array([h.category for h in rows for _ in range(len(h))], dtype="U16"),
        "method": np.array([h.method for h in rows for _ in range(len(h))], dtype="U32"),
        "set": np.array([i for i, h in enumerate(rows) for _ in range(len(h))], dtype=np.int64),
        "source": np.concatenate([np.asarray(h.source, np.int64) for h in rows]) if rows else np.zeros(0, np.int64),
        "labels": np.concatenate(labels) if rows else np.zeros((0, classes)),
        "predicted": np.concatenate([np.asarray(h.predicted, np.float64) for h in rows]) if rows else np.zeros((0, classes)),
    }
    npz, meta_path = out_dir / "inputs.npz", out_dir / "inputs.json"
    try:
        np.savez_compressed(npz, **arrays)  # type: ignore[arg-type]
        document = {
            "schema": INPUTS_SCHEMA,
            "kind": "gauntlet-inputs",
            **plain(meta),
            "sets": [{"set": i, "category": h.category, "method": h.method, "count": len(h), "params": plain(h.params)} for i, h in enumerate(rows)],
        }
        meta_path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        written = [npz, meta_path]
        if image_layout(adapter.input_shape) is not None:
            height = adapter.input_shape[1] if image_layout(adapter.input_shape) == "CHW" else adapter.input_shape[0]
            scale = max(1, min(8, math.ceil(32 / height)))
            for category in dict.fromkeys(h.category for h in rows):
                shown = arrays["x"][arrays["category"] == category][:GRID_LIMIT]
                if len(shown):
                    path = out_dir / f"{category}.png"
                    path.write_bytes(png(image_grid(shown, adapter.bounds, scale=scale)))
                    written.append(path)
    except OSError as err:
        raise GauntletError(f"cannot write to {out_dir}: {err.strerror}") from None
    return written


def load_inputs(path: str | os.PathLike[str], adapter: ModelAdapter) -> list[HardInputs]:
    """The sets of an inputs.npz written by `gauntlet inputs` (parameters from the inputs.json
    beside it, when present), read without pickle and checked against the model."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GauntletError(f"inputs {path}: no such file") from None
    except (OSError, ValueError) as err:
        raise GauntletError(f"inputs {path}: not a NumPy .npz file without objects ({err})") from None
    if isinstance(loaded, np.ndarray):
        raise GauntletError(f"inputs {path}: expected an .npz written by `gauntlet inputs`, got a bare array")
    with loaded:
        missing = [k for k in ("x", "category", "method", "source", "predicted") if k not in loaded.files]
        if missing:
            raise GauntletError(f"inputs {path}: missing {', '.join(missing)}; write it with `gauntlet inputs`")
        try:
            arrays = {k: loaded[k] for k in loaded.files}
        except ValueError as err:
            raise GauntletError(f"inputs {path}: {err}") from None
    n = len(arrays["x"])
    if any(len(arrays[k]) != n for k in arrays):
        raise GauntletError(f"inputs {path}: the arrays have different numbers of rows")
    x = arrays["x"]
    if x.shape[1:] != adapter.input_shape and math.prod(x.shape[1:]) == math.prod(adapter.input_shape):
        x = x.reshape(n, *adapter.input_shape)
    x = adapter.as_batch(x)
    predicted = arrays["predicted"]
    if predicted.ndim != 2 or predicted.shape[1] != adapter.num_classes:
        raise GauntletError(f"inputs {path}: 'predicted' has shape {predicted.shape}; the model has {adapter.num_classes} classes")
    unknown = sorted(set(str(c) for c in arrays["category"]) - set(CATEGORIES))
    if unknown:
        raise GauntletError(f"inputs {path}: unknown categories {', '.join(unknown)}")
    params: dict[int, Any] = {}
    meta = path.with_suffix(".json")
    if meta.is_file():
        try:
            params = {int(s["set"]): s.get("params", {}) for s in json.loads(meta.read_text(encoding="utf-8")).get("sets", [])}
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise GauntletError(f"{meta}: not a readable inputs.json ({err})") from None
    groups = arrays["set"] if "set" in arrays else np.unique(np.char.add(arrays["category"], arrays["method"]), return_inverse=True)[1]
    sets = []
    for index in dict.fromkeys(int(g) for g in groups):
        rows = np.flatnonzero(groups == index)
        labels = arrays["labels"][rows] if "labels" in arrays else None
        sets.append(HardInputs(
            category=str(arrays["category"][rows[0]]),
            method=str(arrays["method"][rows[0]]),
            x=x[rows],
            source=arrays["source"][rows].astype(np.int64),
            labels=None if labels is None or np.isnan(labels).all() else labels,
            predicted=arrays["predicted"][rows],
            params=params.get(index, {}),
        ))
    return sets


# --- the commands -----------------------------------------------------------------------------


def _sayers(stream: TextIO | None, progress: TextIO | None, quiet: bool) -> tuple[Callable[[str], None], Callable[[str], None]]:
    out = stream if stream is not None else sys.stdout
    err = progress if progress is not None else sys.stderr

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    def note(line: str) -> None:
        if not quiet:
            print(line, file=err, flush=True)

    return say, note


def _meta(model: str, data: str, adapter: ModelAdapter, seed: int, mix: dict[str, Any]) -> dict[str, Any]:
    from generators.inputs.supervise_report import versions

    return {"model": model, "data": data, "input_shape": list(adapter.input_shape), "bounds": list(adapter.bounds),
            "seed": seed, "mix": mix, "versions": versions(), "command": " ".join(sys.argv)}


def inputs_command(
    model: str,
    data: str,
    out: str,
    *,
    shape: str | None = None,
    bounds: str = "0:1",
    mix: str | None = None,
    seed: int = 0,
    probabilities: bool = False,
    quiet: bool = False,
    stream: TextIO | None = None,
    progress: TextIO | None = None,
) -> int:
    """`gauntlet inputs MODEL --data SAMPLES.npz --out DIR`: generates the mix from the samples
    and writes DIR/inputs.npz, DIR/inputs.json and a PNG grid per category of images."""
    from generators.inputs.mix import DEFAULT_MIX, generate_mix, resolve_mix

    say, note = _sayers(stream, progress, quiet)
    resolved = resolve_mix(mix or DEFAULT_MIX)
    adapter, x, y = _prepare(model, data, shape, bounds, probabilities, None, note)
    out_dir = _out_dir(out)
    sets = generate_mix(adapter, x, y, resolved, seed=seed, progress=note)
    written = write_inputs(out_dir, sets, adapter, _meta(model, data, adapter, seed, resolved))
    say(f"{'category':<12}{'method':<12}{'inputs':>8}{'seconds':>9}")
    for h in sets:
        seconds = h.params.get("seconds")
        shown = f"{seconds:.1f}" if isinstance(seconds, int | float) else "-"
        say(f"{h.category:<12}{h.method:<12}{len(h):>8}{shown:>9}")
    say(f"{sum(len(h) for h in sets)} inputs; wrote {', '.join(str(p) for p in written)}")
    return 0


def supervise_command(
    model: str,
    data: str,
    out: str,
    *,
    train: str | None = None,
    inputs: str | None = None,
    mix: str | None = None,
    supervisors: Sequence[str] | None = None,
    shape: str | None = None,
    bounds: str = "0:1",
    seed: int = 0,
    probabilities: bool = False,
    feature_layer: str | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
    progress: TextIO | None = None,
) -> int:
    """`gauntlet supervise MODEL --data NOMINAL.npz --out DIR`: scores each supervisor against the
    nominal samples on hard inputs (from --inputs, or generated from --mix, default DEFAULT_MIX)
    and writes DIR/report.json and DIR/report.html; prints the AUC table."""
    from generators.inputs.mix import DEFAULT_MIX, generate_mix, resolve_mix
    from generators.inputs.supervise import score_supervisors
    from generators.inputs.supervise_html import thumbnails
    from generators.inputs.supervise_report import report_dict, write_reports
    from generators.inputs.supervisors import BUILTIN_NAMES, build_supervisors

    say, note = _sayers(stream, progress, quiet)
    if inputs and mix:
        raise GauntletError("give either --inputs (inputs.npz from `gauntlet inputs`) or --mix, not both")
    names = list(supervisors) if supervisors else None
    for name in names or ():
        if name not in BUILTIN_NAMES and ":" not in name:
            raise GauntletError(f"unknown supervisor {name!r}: choose from {', '.join(BUILTIN_NAMES)}, or name your own "
                                "callable as file.py:function or package.module:function")
    if names is not None and "mahalanobis" in names and train is None:  # fail before the slow steps
        raise GauntletError("supervisor mahalanobis is fitted on nominal training data; none was given (--train TRAIN.npz)")
    resolved = None if inputs else resolve_mix(mix or DEFAULT_MIX)
    if inputs and not Path(inputs).is_file():
        raise GauntletError(f"inputs {inputs}: no such file")
    adapter, x, y = _prepare(model, data, shape, bounds, probabilities, feature_layer, note)
    training = None
    if train is not None:
        tx, ty = _labelled(train, "train", adapter.input_shape)
        accuracy = adapter.check(tx, ty)
        note(f"training data {train}: {len(tx)} samples, clean accuracy {accuracy:.1%}")
        training = (tx, ty)
    out_dir = _out_dir(out)
    note("fitting supervisors" if training is not None else "building supervisors")
    built, unavailable = build_supervisors(names, adapter, train=training, seed=seed)
    if names is not None and unavailable:
        raise GauntletError("; ".join(f"supervisor {k} is unavailable: {v}" for k, v in unavailable.items()))
    if inputs:
        sets = load_inputs(inputs, adapter)
        note(f"{sum(len(h) for h in sets)} hard inputs from {inputs}")
    else:
        assert resolved is not None
        sets = generate_mix(adapter, x, y, resolved, seed=seed, progress=note)
        write_inputs(out_dir, sets, adapter, _meta(model, data, adapter, seed, resolved))
    result = score_supervisors(adapter, x, sets, built, nominal_y=y, unavailable=unavailable, progress=note)
    report = report_dict(
        result,
        input_shape=adapter.input_shape,
        bounds=adapter.bounds,
        num_classes=adapter.num_classes,
        seed=seed,
        data={"nominal": data, "train": train, "inputs": inputs},
        parameters={"mix": resolved, "supervisors": list(built), "requested": names or "all built-ins"},
        sets=sets,
        command=" ".join(sys.argv),
    )
    json_path, html_path = write_reports(report, out_dir, thumbnails(sets, adapter.bounds))
    for line in result.table():
        say(line)
    say(f"{result.nominal_count} nominal inputs, {sum(c.count for c in result.categories)} hard inputs; "
        f"report {json_path} and {html_path}")
    return 0
