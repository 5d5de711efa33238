"""Bug identity: normalized error messages, the pre-reduction key and the signature of a
reduced bug (symptom, stage, backends, operator set, normalized message). Pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from fuzz.oracle import Finding

_PATTERNS = (
    (re.compile(r"(?:[A-Za-z]:)?(?:[\w.-]*/)+[\w.-]+"), "<path>"),  # file paths
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hex>"),  # hashes, ids
    (re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"), "N"),  # numbers, shapes, indices
    (re.compile(r"\s+"), " "),
    (re.compile(r"[\[(]N(?:, ?N)*,?[\])]"), "[N]"),  # shapes and indices of any rank
)
# Comparison findings carry numbers only (counts, positions, values): their identity is the
# symptom, the backends and the operators, not the text.
_NUMERIC = frozenset({"wrong_result", "nan_inf", "wrong_shape", "wrong_dtype", "wrong_gradient"})


def normalize_message(text: str) -> str:
    """The first meaningful line of an error text with numbers, addresses and paths
    stripped, so the same failure on different shapes or runs reads the same."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    for pattern, replacement in _PATTERNS:
        line = pattern.sub(replacement, line)
    return line.strip()[:300]


def bug_key(finding: Finding) -> str:
    """What a finding is before its graph is reduced: symptom, stage, backends, message."""
    message = "" if finding.symptom in _NUMERIC else normalize_message(finding.detail)
    return "|".join((finding.symptom, finding.stage, ",".join(sorted(finding.backends)), message))


def signature(key: str, ops: Iterable[str]) -> str:
    """The identity of a reduced bug: its key plus the operator set of the reduced graph."""
    text = key + "|" + ",".join(sorted(set(ops)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def covers(known_ops: Sequence[str], known_dtypes: Sequence[str], ops: Iterable[str], dtypes: Iterable[str]) -> bool:
    """Whether a candidate graph contains the whole reduced graph of a known bug with the
    same key (operators and dtypes): then it is counted as that bug, without reducing it."""
    return set(known_ops) <= set(ops) and set(known_dtypes) <= set(dtypes)
