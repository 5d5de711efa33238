"""A campaign's report: `report.json` (schema in docs/report-schema.md) assembled from the
campaign store, and `report.html` rendered from the same data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fuzz.store import CampaignStore
from generators.spec import OpSpec

SCHEMA = 1


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def build_report(store: CampaignStore, catalog: Mapping[str, OpSpec], status: str) -> dict[str, Any]:
    config = store.get_meta("config", {})
    sessions = store.sessions()
    verdicts = store.verdict_counts()
    tests = sum(verdicts.values())
    timeline = store.timeline()
    elapsed = store.elapsed()
    op_tests, op_bugs = store.op_counts()
    bugs = store.bugs()
    valid = sum(n for v, n in verdicts.items() if v in ("pass", "bug", "reference_suspect", "unstable"))
    backends = list(config.get("backends", []))
    symptoms = sorted({b.symptom for b in bugs})
    counts = [[sum(1 for b in bugs if b.symptom == s and be in b.backends) for s in symptoms] for be in backends]
    bug_entries = []
    for bug in bugs:
        directory = store.directory / bug.dir
        repro = directory / "repro.py"
        issue = directory / "issue.md"
        bug_entries.append({
            "id": bug.label,
            "signature": bug.signature or "",
            "state": bug.state,
            "symptom": bug.symptom,
            "stage": bug.stage,
            "backends": list(bug.backends),
            "ops": list(bug.ops),
            "dtypes": list(bug.dtypes),
            "duplicates": bug.duplicates,
            "first_seen": _iso(bug.first_seen),
            "first_seed": bug.first_seed,
            "message": bug.message,
            "detail": bug.detail,
            "reduction": bug.reduction,
            "dir": bug.dir,
            "repro": f"{bug.dir}/repro.py" if repro.exists() else None,
            "issue": f"{bug.dir}/issue.md" if issue.exists() else None,
            "repro_source": repro.read_text() if repro.exists() else None,
        })
    rate = timeline[-1]["tests_per_s"] if timeline else 0.0
    return {
        "schema": SCHEMA,
        "campaign": {
            "out": str(store.directory),
            "status": status,
            "started": _iso(sessions[0][1]) if sessions else None,
            "updated": _iso(time.time()),
            "elapsed_s": round(elapsed, 2),
            "seed": config.get("seed", 0),
            "backends": backends,
            "versions": store.get_meta("versions", {}),
            "options": {k: config.get(k) for k in ("max_nodes", "ops", "exclude_ops", "dtypes", "max_elements", "batch",
                                                   "time_s", "max_tests", "reduce", "coverage")},
            "command": store.get_meta("command", ""),
            "workers": config.get("workers"),
            "ray": config.get("ray"),
            "sessions": len(sessions),
        },
        "totals": {
            "tests": tests,
            "verdicts": verdicts,
            "valid_pct": round(100.0 * valid / tests, 2) if tests else 0.0,
            "tests_per_s": rate,
            "unique_bugs": len(bugs),
            "duplicates": sum(b.duplicates for b in bugs),
            "ops_covered": len(op_tests),
            "ops_total": len(catalog),
            "internal_failures": len(store.internal_failures()),
        },
        "timeline": timeline,
        "operators": [{"op": op, "tests": op_tests.get(op, 0), "bug_tests": op_bugs.get(op, 0)} for op in sorted(catalog)],
        "matrix": {"backends": backends, "symptoms": symptoms, "counts": counts},
        "bugs": bug_entries,
        "internal_failures": store.internal_failures(),
        "coverage": store.get_meta("coverage"),
    }


def write_report(directory: Path, store: CampaignStore, catalog: Mapping[str, OpSpec], status: str) -> tuple[Path, Path]:
    """report.json and report.html in the campaign directory (written atomically)."""
    from fuzz.report_html import render_html

    report = build_report(store, catalog, status)
    json_path = directory / "report.json"
    html_path = directory / "report.html"
    for path, text in ((json_path, json.dumps(report, indent=2) + "\n"), (html_path, render_html(report))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return json_path, html_path
