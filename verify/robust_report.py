"""The robustness report: a RobustnessResult as a JSON document (schema 1, docs/verify.md),
its schema check, and writing report.json plus the HTML page (rendered by robust_html)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from generators.errors import GauntletError
from generators.reports import field_problems, make_dir, write_atomic
from verify.manipulations import ManipulationResult
from verify.robust_html import render_html
from verify.robustness import RobustnessResult, SampleRecord
from verify.verdict import Counterexample, Unknown, Verified

__all__ = ["SCHEMA_VERSION", "check_report", "report_dict", "write_json", "write_reports"]

SCHEMA_VERSION = 1
KIND = "gauntlet-robustness"
STATUSES = ("verified", "counterexample", "unknown", "misclassified")


def _num(value: Any) -> float | None:
    """JSON has no inf/nan: they become null (a margin of an empty unsafe set is inf)."""
    number = float(value)
    return number if math.isfinite(number) else None


def _vector(array: Any) -> list[float | None]:
    return [_num(v) for v in np.ravel(np.asarray(array, dtype=np.float64))]


def _plain(value: Any) -> Any:
    """Manipulation parameters as JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        number = int(value)
        return number if abs(number) < 2**53 else float(number)
    return _num(value)


def _ball(record: SampleRecord) -> dict[str, Any] | None:
    v = record.verdict
    if v is None:
        return None
    out: dict[str, Any] = {"status": v.status, "seconds": _num(v.seconds), "method": None, "margin": None,
                           "reason": None, "counterexample": None}
    if isinstance(v, Verified):
        out["method"], out["margin"] = v.method, _num(v.margin)
    elif isinstance(v, Counterexample):
        out["method"] = v.method
        out["counterexample"] = {
            "x": _vector(v.x),
            "y": _vector(v.y),
            "predicted": int(np.argmax(v.y)),
            "distance": _num(record.ball_distance() or 0.0),
        }
    elif isinstance(v, Unknown):
        out["reason"] = v.reason
    return out


def _manipulation(m: ManipulationResult) -> dict[str, Any]:
    example = None
    if m.example is not None and m.outputs is not None:
        example = {
            "x": _vector(m.example),
            "y": _vector(m.outputs),
            "predicted": m.predicted,
            "manipulation": _plain(m.manipulation or {}),
        }
    return {
        "family": m.family,
        "spec": m.spec,
        "status": m.status,
        "message": m.message,
        "count": _plain(m.count),
        "checked": _plain(m.checked),
        "method": m.method,
        "seconds": _num(m.seconds),
        "example": example,
    }


def _sample(record: SampleRecord) -> dict[str, Any]:
    radius = None
    if record.radius is not None:
        r = record.radius
        radius = {
            "lower": _num(r.lower),
            "upper": None if r.upper is None else _num(r.upper),
            "undecided": None if r.undecided is None else _num(r.undecided),
            "stop": r.stop,
            "steps": [{"eps": _num(s.eps), "status": s.status, "seconds": _num(s.seconds)} for s in r.steps],
        }
    broken = isinstance(record.verdict, Counterexample) or any(m.example is not None for m in record.manipulations)
    return {
        "index": record.index,
        "label": record.label,
        "predicted": record.predicted,
        "status": record.status,
        "seconds": _num(record.seconds),
        "summary": record.summary(),
        "output": _vector(record.output),
        # The sample itself only where a counterexample is shown next to it: reports stay small.
        "x": _vector(record.x) if broken or record.status == "misclassified" else None,
        "ball": _ball(record),
        "radius": radius,
        "manipulations": [_manipulation(m) for m in record.manipulations],
    }


def report_dict(result: RobustnessResult, *, command: str | None = None, data: str | None = None) -> dict[str, Any]:
    """The JSON document for one run (schema 1; see docs/verify.md)."""
    counts = result.counts()
    layout = result.layout
    return {
        "schema": SCHEMA_VERSION,
        "kind": KIND,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "data": data,
        "model": {
            "description": result.model_description,
            "input_shape": list(result.input_shape),
            "output_shape": list(result.output_shape),
        },
        "property": {
            "norm": result.norm,
            "eps": None if result.eps is None else _num(result.eps),
            "domain": None if result.domain is None else [_num(result.domain[0]), _num(result.domain[1])],
            "margin": _num(result.margin),
            "timeout_per_sample": _num(result.timeout_per_sample),
        },
        "radius": result.radius,
        "manipulations": [{"family": f.name, "spec": f.spec, "params": _plain(f.params())} for f in result.families],
        "image": None
        if layout is None
        else {"channels": layout.channels, "height": layout.height, "width": layout.width, "guessed": layout.guessed},
        "totals": {"samples": len(result.records), **counts, "seconds": _num(result.seconds), "workers": result.workers},
        "exit_code": result.exit_code,
        "samples": [_sample(r) for r in result.records],
    }


# --- schema check -----------------------------------------------------------------------------

_NUMBER = (int, float)
_TOP: dict[str, tuple[type, ...]] = {
    "schema": (int,), "kind": (str,), "created": (str,), "command": (str, type(None)), "data": (str, type(None)),
    "model": (dict,), "property": (dict,), "radius": (bool,), "manipulations": (list,), "image": (dict, type(None)),
    "totals": (dict,), "exit_code": (int,), "samples": (list,),
}
_SAMPLE: dict[str, tuple[type, ...]] = {
    "index": (int,), "label": (int,), "predicted": (int,), "status": (str,), "seconds": (*_NUMBER, type(None)),
    "summary": (str,), "output": (list,), "x": (list, type(None)), "ball": (dict, type(None)),
    "radius": (dict, type(None)), "manipulations": (list,),
}
_MANIPULATION: dict[str, tuple[type, ...]] = {
    "family": (str,), "spec": (str,), "status": (str,), "message": (str,), "count": _NUMBER, "checked": _NUMBER,
    "method": (str,), "seconds": (*_NUMBER, type(None)), "example": (dict, type(None)),
}




def check_report(report: Any) -> None:
    """Raises GauntletError listing every way `report` departs from schema 1."""
    problems: list[str] = []
    field_problems("report", report, _TOP, problems)
    if problems:
        raise GauntletError("not a robustness report (schema 1): " + "; ".join(problems))
    if report["schema"] != SCHEMA_VERSION or report["kind"] != KIND:
        problems.append(f"schema {report['schema']!r} / kind {report['kind']!r} is not {SCHEMA_VERSION} / {KIND}")
    if report["property"].get("norm") not in ("linf", "l2"):
        problems.append("property.norm must be linf or l2")
    totals = report["totals"]
    for status in STATUSES:
        if not isinstance(totals.get(status), int):
            problems.append(f"totals.{status}: expected an integer")
    samples = report["samples"]
    if totals.get("samples") != len(samples):
        problems.append("totals.samples differs from the number of samples")
    for i, sample in enumerate(samples):
        field_problems(f"samples[{i}]", sample, _SAMPLE, problems)
        if not isinstance(sample, dict):
            continue
        if sample.get("status") not in STATUSES:
            problems.append(f"samples[{i}].status: {sample.get('status')!r} is not one of {', '.join(STATUSES)}")
        for j, m in enumerate(sample.get("manipulations") or []):
            field_problems(f"samples[{i}].manipulations[{j}]", m, _MANIPULATION, problems)
            if isinstance(m, dict) and m.get("status") not in ("robust", "adversarial", "unknown"):
                problems.append(f"samples[{i}].manipulations[{j}].status: {m.get('status')!r}")
    if problems:
        raise GauntletError("the robustness report departs from schema 1: " + "; ".join(problems))


# --- writing ----------------------------------------------------------------------------------


def write_json(report: Mapping[str, Any], path: Path) -> None:
    text = json.dumps(report, indent=1, allow_nan=False) + "\n"
    write_atomic(path, text)


def write_reports(
    result: RobustnessResult, out_dir: Path, *, command: str | None = None, data: str | None = None
) -> tuple[Path, Path]:
    """report.json and report.html in `out_dir` (created); returns their paths."""
    out_dir = make_dir(Path(out_dir))
    report = report_dict(result, command=command, data=data)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    write_json(report, json_path)
    write_atomic(html_path, render_html(report))
    return json_path, html_path
