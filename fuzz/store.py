"""The campaign database: one SQLite file (WAL) per campaign directory holding the
configuration, every executed test, every bug with its duplicates, pending reductions,
internal failures and statistics over time. Every write commits at once, so `kill -9` at
any moment loses at most the tests that were still running. Imports no framework.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generators.dtypes import DType
from generators.errors import GauntletError

DB_NAME = "campaign.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tests (
    seed INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    verdict TEXT NOT NULL,          -- pass, bug, rejected, ..., no_stable_inputs, internal
    ops TEXT NOT NULL,              -- JSON list of operator names, in node order
    seconds REAL NOT NULL,          -- worker time spent on the test
    elapsed REAL NOT NULL,          -- campaign clock when it finished
    session INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bugs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,              -- symptom, stage, backends, normalized message (before reduction)
    signature TEXT,                 -- key + operator set of the reduced graph; NULL until reduced
    symptom TEXT NOT NULL,
    stage TEXT NOT NULL,
    backends TEXT NOT NULL,         -- JSON list
    message TEXT NOT NULL,          -- normalized one-line message
    detail TEXT NOT NULL,           -- the raw finding detail
    first_seed INTEGER NOT NULL,
    first_seen REAL NOT NULL,       -- unix time
    duplicates INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,            -- reducing (found, bug dir written unreduced) | reported
    ops TEXT NOT NULL,              -- JSON list: operator set (of the reduced graph once reported)
    dtypes TEXT NOT NULL,           -- JSON list
    dir TEXT NOT NULL,              -- bug directory, relative to the campaign directory
    reduction TEXT,                 -- JSON: nodes_before, nodes_after, checks, complete
    finding TEXT NOT NULL,          -- JSON: the Finding
    witness TEXT NOT NULL DEFAULT '',
    graph TEXT NOT NULL,            -- graph JSON (reduced once reported)
    arrays BLOB NOT NULL            -- the placeholders' arrays (npz, no pickle)
);
CREATE UNIQUE INDEX IF NOT EXISTS bugs_signature ON bugs(signature) WHERE signature IS NOT NULL;
CREATE TABLE IF NOT EXISTS occurrences (bug INTEGER NOT NULL, seed INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS timeline (
    elapsed REAL NOT NULL, tests INTEGER NOT NULL, unique_bugs INTEGER NOT NULL, bug_tests INTEGER NOT NULL,
    tests_per_s REAL NOT NULL, ops_covered INTEGER NOT NULL, coverage_lines INTEGER
);
CREATE TABLE IF NOT EXISTS internal_failures (seed INTEGER NOT NULL, symptom TEXT NOT NULL, stage TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS coverage (line INTEGER PRIMARY KEY);  -- --coverage: framework line ids reached
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, started REAL NOT NULL, ended REAL, status TEXT NOT NULL);
"""


def pack_arrays(arrays: Sequence[np.ndarray]) -> bytes:
    """Arrays as an .npz blob (bfloat16 stored as its float32 widening plus a marker)."""
    from generators.materialize.script import npy_array

    buffer = io.BytesIO()
    named = {f"a{i}": npy_array(a) for i, a in enumerate(arrays)}
    named["_bf16"] = np.asarray([i for i, a in enumerate(arrays) if a.dtype.name == "bfloat16"], np.int64)
    np.savez(buffer, **named)  # type: ignore[arg-type]
    return buffer.getvalue()


def unpack_arrays(blob: bytes) -> tuple[np.ndarray, ...]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        bf16 = set(int(i) for i in data["_bf16"])
        count = len([k for k in data.files if k.startswith("a")])
        out = []
        for i in range(count):
            a = data[f"a{i}"]
            if i in bf16:
                a = a.astype(DType.bfloat16.numpy())
            out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class BugRow:
    id: int
    key: str
    signature: str | None
    symptom: str
    stage: str
    backends: tuple[str, ...]
    message: str
    detail: str
    first_seed: int
    first_seen: float
    duplicates: int
    state: str
    ops: tuple[str, ...]
    dtypes: tuple[str, ...]
    dir: str
    reduction: dict[str, Any] | None
    finding: dict[str, Any]
    witness: str
    graph: str
    arrays: bytes

    @property
    def label(self) -> str:
        return f"B{self.id:04d}"


class CampaignStore:
    """The database of one campaign directory. Use from one thread (the campaign driver)."""

    def __init__(self, directory: Path, create: bool = True) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        if not self.path.exists() and not create:
            raise GauntletError(f"{directory} is not a campaign directory (no {DB_NAME})")
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process (not a power cut) and keeps commits cheap.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise GauntletError(f"{self.path}: not a usable campaign database ({exc})") from None
        version = self.get_meta("schema")
        if version is None:
            self.set_meta("schema", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise GauntletError(f"{self.path}: campaign database schema {version}, this Gauntlet reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta ----------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def start_session(self) -> int:
        cur = self.db.execute("INSERT INTO sessions (started, status) VALUES (?, 'running')", (time.time(),))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def end_session(self, session: int, status: str) -> None:
        self.db.execute("UPDATE sessions SET ended = ?, status = ? WHERE id = ?", (time.time(), status, session))

    def sessions(self) -> list[tuple[int, float, float | None, str]]:
        return list(self.db.execute("SELECT id, started, ended, status FROM sessions ORDER BY id"))

    # --- tests ---------------------------------------------------------------------------

    def record_test(self, seed: int, digest: str, verdict: str, ops: Sequence[str], seconds: float, elapsed: float, session: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO tests VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seed, digest, verdict, json.dumps(list(ops)), seconds, elapsed, session),
        )

    def done_seeds(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT seed FROM tests")}

    def test_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM tests").fetchone()[0])

    def verdict_counts(self) -> dict[str, int]:
        return {v: n for v, n in self.db.execute("SELECT verdict, COUNT(*) FROM tests GROUP BY verdict")}

    def op_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per operator: tests using it, and tests with a bug verdict using it."""
        tests: dict[str, int] = {}
        bugs: dict[str, int] = {}
        for ops, verdict in self.db.execute("SELECT ops, verdict FROM tests"):
            for op in set(json.loads(ops)):
                tests[op] = tests.get(op, 0) + 1
                if verdict == "bug":
                    bugs[op] = bugs.get(op, 0) + 1
        return tests, bugs

    def elapsed(self) -> float:
        """The campaign clock: the latest elapsed value recorded."""
        row = self.db.execute("SELECT MAX(e) FROM (SELECT MAX(elapsed) AS e FROM tests UNION ALL SELECT MAX(elapsed) FROM timeline)").fetchone()
        return float(row[0] or 0.0)

    def record_internal_failure(self, seed: int, symptom: str, stage: str, detail: str) -> None:
        self.db.execute("INSERT INTO internal_failures VALUES (?, ?, ?, ?)", (seed, symptom, stage, detail))

    def internal_failures(self) -> list[dict[str, Any]]:
        return [dict(seed=s, symptom=y, stage=t, detail=d) for s, y, t, d in self.db.execute("SELECT * FROM internal_failures")]

    def add_lines(self, line_ids: Sequence[int]) -> None:
        if line_ids:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR IGNORE INTO coverage VALUES (?)", ((i,) for i in line_ids))

    def lines(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT line FROM coverage")}

    # --- statistics over time ----------------------------------------------------------

    def record_sample(self, elapsed: float, tests: int, unique_bugs: int, bug_tests: int, tests_per_s: float,
                      ops_covered: int, coverage_lines: int | None) -> None:
        self.db.execute("INSERT INTO timeline VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (elapsed, tests, unique_bugs, bug_tests, tests_per_s, ops_covered, coverage_lines))

    def timeline(self) -> list[dict[str, Any]]:
        cols = ("t", "tests", "unique_bugs", "bug_tests", "tests_per_s", "ops_covered", "coverage_lines")
        return [dict(zip(cols, row)) for row in self.db.execute("SELECT * FROM timeline ORDER BY elapsed")]

    # --- bugs ----------------------------------------------------------------------------

    def add_bug(self, key: str, finding: dict[str, Any], message: str, seed: int, ops: Sequence[str], dtypes: Sequence[str],
                witness: str, graph_json: str, arrays: Sequence[np.ndarray]) -> BugRow:
        """A new bug, committed before any reduction work (state `reducing`)."""
        cur = self.db.execute(
            "INSERT INTO bugs (key, symptom, stage, backends, message, detail, first_seed, first_seen, state, ops, dtypes,"
            " dir, finding, witness, graph, arrays) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'reducing', ?, ?, '', ?, ?, ?, ?)",
            (key, finding["symptom"], finding["stage"], json.dumps(list(finding["backends"])), message, finding["detail"], seed,
             time.time(), json.dumps(sorted(set(ops))), json.dumps(sorted(set(dtypes))), json.dumps(finding), witness,
             graph_json, pack_arrays(arrays)),
        )
        assert cur.lastrowid is not None
        bug_id = cur.lastrowid
        self.db.execute("UPDATE bugs SET dir = ? WHERE id = ?", (f"bugs/B{bug_id:04d}", bug_id))
        self.db.execute("INSERT INTO occurrences VALUES (?, ?, ?)", (bug_id, seed, time.time()))
        return self.bug(bug_id)

    def finish_bug(self, bug_id: int, signature: str, ops: Sequence[str], dtypes: Sequence[str], graph_json: str,
                   arrays: Sequence[np.ndarray], reduction: dict[str, Any], finding: dict[str, Any] | None = None) -> BugRow:
        """Record the reduced graph and signature. If another bug already has this
        signature, this one is merged into it (its count added) and the other is returned."""
        existing = self.db.execute("SELECT id FROM bugs WHERE signature = ? AND id != ?", (signature, bug_id)).fetchone()
        if existing is not None:
            self.merge(bug_id, int(existing[0]))
            return self.bug(int(existing[0]))
        with self.db:
            self.db.execute("BEGIN")
            if finding is not None:
                self.db.execute("UPDATE bugs SET finding = ?, detail = ? WHERE id = ?", (json.dumps(finding), finding["detail"], bug_id))
            self.db.execute(
                "UPDATE bugs SET signature = ?, ops = ?, dtypes = ?, graph = ?, arrays = ?, reduction = ?, state = 'reported' WHERE id = ?",
                (signature, json.dumps(sorted(set(ops))), json.dumps(sorted(set(dtypes))), graph_json, pack_arrays(arrays),
                 json.dumps(reduction), bug_id),
            )
        return self.bug(bug_id)

    def merge(self, duplicate: int, into: int) -> None:
        """`duplicate` turned out to be `into` after reduction: one more duplicate of it."""
        with self.db:
            self.db.execute("BEGIN")
            dup = self.bug(duplicate)
            self.db.execute("UPDATE bugs SET duplicates = duplicates + 1 + ? WHERE id = ?", (dup.duplicates, into))
            self.db.execute("UPDATE occurrences SET bug = ? WHERE bug = ?", (into, duplicate))
            self.db.execute("DELETE FROM bugs WHERE id = ?", (duplicate,))

    def count_duplicate(self, bug_id: int, seed: int) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE bugs SET duplicates = duplicates + 1 WHERE id = ?", (bug_id,))
            self.db.execute("INSERT INTO occurrences VALUES (?, ?, ?)", (bug_id, seed, time.time()))

    def bug(self, bug_id: int) -> BugRow:
        row = self.db.execute(f"SELECT {_BUG_COLUMNS} FROM bugs WHERE id = ?", (bug_id,)).fetchone()
        if row is None:
            raise KeyError(bug_id)
        return _bug_row(row)

    def bugs(self, state: str | None = None) -> list[BugRow]:
        query = f"SELECT {_BUG_COLUMNS} FROM bugs" + (" WHERE state = ?" if state else "") + " ORDER BY id"
        return [_bug_row(r) for r in self.db.execute(query, (state,) if state else ())]

    def bug_for_dir(self, directory: str) -> BugRow | None:
        row = self.db.execute(f"SELECT {_BUG_COLUMNS} FROM bugs WHERE dir = ?", (directory,)).fetchone()
        return None if row is None else _bug_row(row)

    def occurrences(self) -> Iterator[tuple[int, int]]:
        yield from self.db.execute("SELECT bug, seed FROM occurrences")


_BUG_COLUMNS = ("id, key, signature, symptom, stage, backends, message, detail, first_seed, first_seen, duplicates, state, ops,"
                " dtypes, dir, reduction, finding, witness, graph, arrays")


def _bug_row(row: Sequence[Any]) -> BugRow:
    (id_, key, signature, symptom, stage, backends, message, detail, first_seed, first_seen, duplicates, state, ops, dtypes,
     directory, reduction, finding, witness, graph, arrays) = row
    return BugRow(
        id_, key, signature, symptom, stage, tuple(json.loads(backends)), message, detail, first_seed, first_seen, duplicates,
        state, tuple(json.loads(ops)), tuple(json.loads(dtypes)), directory, json.loads(reduction) if reduction else None,
        json.loads(finding), witness, graph, bytes(arrays),
    )
