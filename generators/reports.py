"""Reports on disk: the schema check and atomic writes the report writers share, and the
tolerant readers the HTML renderers use (a hand-edited or truncated report renders, never crashes)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from generators.errors import GauntletError

__all__ = ["as_list", "as_map", "as_number", "escape", "field_problems", "make_dir", "write_atomic"]


def field_problems(where: str, value: Any, spec: Mapping[str, tuple[type, ...]], problems: list[str]) -> None:
    """Appends to `problems` every key of `spec` that `value` lacks or holds with another type
    (a bool is not a number unless `bool` is listed)."""
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object")
        return
    for key, types in spec.items():
        if key not in value:
            problems.append(f"{where}: missing {key!r}")
        elif not isinstance(value[key], types) or (isinstance(value[key], bool) and bool not in types):
            problems.append(f"{where}.{key}: unexpected {type(value[key]).__name__}")


def escape(value: Any, default: str = "-") -> str:
    return html.escape(default if value is None else str(value), quote=True)


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str | bytes) else []


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > 1e300:
        return None  # huge JSON integers would overflow float()
    return float(value) if math.isfinite(value) else None


def make_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GauntletError(f"cannot create {path}: {err.strerror}") from err
    return path


def write_atomic(path: Path, text: str) -> None:
    """Writes through a temporary file, so a reader never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise GauntletError(f"cannot write {path}: {err.strerror}") from err
