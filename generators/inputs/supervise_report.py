"""The supervisor report: a SuperviseResult as a JSON document (schema 1, docs/inputs.md), its
schema check, and writing report.json plus the HTML page (rendered by supervise_html)."""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from generators.errors import GauntletError
from generators.inputs.result import HardInputs
from generators.inputs.supervise import SuperviseResult
from generators.inputs.supervise_html import render_html
from generators.inputs.supervisors import describe
from generators.reports import field_problems, make_dir, write_atomic

__all__ = ["KIND", "SCHEMA_VERSION", "check_report", "plain", "report_dict", "versions", "write_reports"]

SCHEMA_VERSION = 1
KIND = "gauntlet-supervise"


def _num(value: Any) -> float | None:
    """JSON has no inf/nan: they become null."""
    number = float(value)
    return number if math.isfinite(number) else None


def _rates(values: np.ndarray) -> list[float]:
    """ROC rates to 6 decimals: far below a plot's resolution, and reports stay small."""
    return [round(float(v), 6) for v in values]


def plain(value: Any) -> Any:
    """Any parameter value as JSON: numbers, strings, lists, objects; arrays become lists (small
    ones) or a shape note; anything else its type name, so a report never fails to write."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return plain(value.tolist()) if value.size <= 64 else f"array{list(value.shape)} {value.dtype}"
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        number = int(value)
        return number if abs(number) < 2**53 else float(number)
    if isinstance(value, float | np.floating):
        return _num(value)
    return type(value).__name__


def versions() -> dict[str, str]:
    """Python, NumPy and every framework already imported, with Gauntlet's own version."""
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("torch", "tensorflow", "keras", "onnxruntime"):
        if module in sys.modules:
            found[module] = str(getattr(sys.modules[module], "__version__", "unknown"))
    try:
        found["gauntlet"] = importlib.metadata.version("gauntlet")
    except importlib.metadata.PackageNotFoundError:
        found["gauntlet"] = "unknown"
    return found


def report_dict(
    result: SuperviseResult,
    *,
    input_shape: Sequence[int],
    bounds: Sequence[float],
    num_classes: int,
    seed: int,
    data: Mapping[str, str | None],
    parameters: Mapping[str, Any],
    sets: Sequence[HardInputs] = (),
    command: str | None = None,
) -> dict[str, Any]:
    """The JSON document for one run (schema 1; see docs/inputs.md). `data` names the files
    used (nominal, train, inputs), `parameters` what was asked (mix, supervisors), `sets` the
    hard-input sets with their generators' parameters and generation times."""
    categories = [c.category for c in result.categories]
    generation: dict[str, float] = {}
    for h in sets:
        seconds = h.params.get("seconds")
        if isinstance(seconds, int | float):
            generation[h.category] = generation.get(h.category, 0.0) + float(seconds)
    return {
        "schema": SCHEMA_VERSION,
        "kind": KIND,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "model": {
            "description": result.model,
            "input_shape": [int(d) for d in input_shape],
            "bounds": [_num(bounds[0]), _num(bounds[1])],
            "classes": int(num_classes),
        },
        "data": {str(k): v for k, v in data.items()},
        "parameters": plain(parameters),
        "seed": int(seed),
        "versions": versions(),
        "nominal": {
            "count": result.nominal_count,
            "accuracy": None if result.nominal_accuracy is None else _num(result.nominal_accuracy),
        },
        "categories": [
            {
                "category": c.category,
                "count": c.count,
                "methods": dict(c.methods),
                "accuracy": None if c.accuracy is None else _num(c.accuracy),
                "sets": c.sets,
            }
            for c in result.categories
        ],
        "supervisors": [
            {
                "name": s.name,
                "description": describe(s.name),
                "seconds": _num(s.seconds),
                "per_input_ms": _num(s.per_input_ms),
                "nominal_mean": _num(s.nominal_mean),
                "mean": {c: None if s.categories[c].mean_score is None else _num(s.categories[c].mean_score) for c in categories},
            }
            for s in result.supervisors
        ],
        "unavailable": dict(result.unavailable),
        "auc": {s.name: {c: None if s.categories[c].auc is None else _num(s.categories[c].auc) for c in categories} for s in result.supervisors},
        "roc": {
            c: {s.name: {"fpr": _rates(s.categories[c].fpr), "tpr": _rates(s.categories[c].tpr)} for s in result.supervisors}
            for c in categories
        },
        "sets": [
            {"category": h.category, "method": h.method, "count": len(h), "params": plain(h.params)} for h in sets
        ],
        "timings": {
            "generation": generation,
            "scoring": {s.name: _num(s.seconds) for s in result.supervisors},
            "scoring_total": _num(result.seconds),
        },
    }


# --- schema check -----------------------------------------------------------------------------

_TOP: dict[str, tuple[type, ...]] = {
    "schema": (int,), "kind": (str,), "created": (str,), "command": (str, type(None)), "model": (dict,),
    "data": (dict,), "parameters": (dict,), "seed": (int,), "versions": (dict,), "nominal": (dict,),
    "categories": (list,), "supervisors": (list,), "unavailable": (dict,), "auc": (dict,), "roc": (dict,),
    "sets": (list,), "timings": (dict,),
}  # fmt: skip
_CATEGORY: dict[str, tuple[type, ...]] = {
    "category": (str,), "count": (int,), "methods": (dict,), "accuracy": (int, float, type(None)), "sets": (int,),
}
_SUPERVISOR: dict[str, tuple[type, ...]] = {
    "name": (str,), "description": (str,), "seconds": (int, float, type(None)), "per_input_ms": (int, float, type(None)),
    "nominal_mean": (int, float, type(None)), "mean": (dict,),
}




def check_report(report: Any) -> None:
    """Raises GauntletError listing every way `report` departs from schema 1."""
    problems: list[str] = []
    field_problems("report", report, _TOP, problems)
    if problems:
        raise GauntletError("not a supervisor report (schema 1): " + "; ".join(problems))
    if report["schema"] != SCHEMA_VERSION or report["kind"] != KIND:
        problems.append(f"schema {report['schema']!r} / kind {report['kind']!r} is not {SCHEMA_VERSION} / {KIND}")
    names = []
    for i, c in enumerate(report["categories"]):
        field_problems(f"categories[{i}]", c, _CATEGORY, problems)
        if isinstance(c, dict):
            names.append(c.get("category"))
    for i, s in enumerate(report["supervisors"]):
        field_problems(f"supervisors[{i}]", s, _SUPERVISOR, problems)
        name = s.get("name") if isinstance(s, dict) else None
        row = report["auc"].get(name)
        if not isinstance(row, dict) or set(row) != set(names):
            problems.append(f"auc[{name!r}]: needs one entry per category")
            continue
        for category, auc in row.items():
            count = next((c.get("count") for c in report["categories"] if isinstance(c, dict) and c.get("category") == category), None)
            if auc is None and count:
                problems.append(f"auc[{name!r}][{category!r}]: null although the category has inputs")
            if auc is not None and (not isinstance(auc, int | float) or not 0.0 <= auc <= 1.0):
                problems.append(f"auc[{name!r}][{category!r}]: {auc!r} is not in [0, 1]")
            curve = report["roc"].get(category, {}).get(name)
            if not isinstance(curve, dict) or len(curve.get("fpr", ())) != len(curve.get("tpr", ())):
                problems.append(f"roc[{category!r}][{name!r}]: needs fpr and tpr of equal length")
    if problems:
        raise GauntletError("the supervisor report departs from schema 1: " + "; ".join(problems))


# --- writing ----------------------------------------------------------------------------------


def write_reports(
    report: Mapping[str, Any], out_dir: Path, thumbnails: Mapping[str, Sequence[str]] | None = None
) -> tuple[Path, Path]:
    """report.json and report.html in `out_dir` (created); `thumbnails` (category -> PNG data
    URIs) go into the page only. Returns the two paths."""
    out_dir = make_dir(Path(out_dir))
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    write_atomic(json_path, json.dumps(report, indent=1, allow_nan=False) + "\n")
    write_atomic(html_path, render_html(report, thumbnails))
    return json_path, html_path
