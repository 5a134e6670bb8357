"""The results store: one SQLite row per finished instance.

Why this shape: a batch may be killed at any moment (kill -9, power cut) and started again with
the same command. Each finished instance is written in its own committed transaction (WAL mode),
the instance identity is a UNIQUE key, and a rerun skips the keys already present, so every
instance ends up in the file exactly once. A file written under another schema is refused
before anything is written to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nn2mip.errors import Nn2mipError

SCHEMA_NAME = "nn2mip-adversarial-results"
SCHEMA_VERSION = 1


class StoreError(Nn2mipError):
    """The results file cannot be used (another schema, not SQLite, unreadable)."""


# Identity of an instance: a rerun of the same batch produces the same keys.
KEY_COLUMNS = (
    "model_sha256",
    "dataset",
    "input_id",
    "eps",
    "norm",
    "problem",
    "target",
)

# (name, SQL type) of every result column, in CSV order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("model_path", "TEXT NOT NULL"),
    ("model_id", "TEXT NOT NULL"),
    ("model_sha256", "TEXT NOT NULL"),
    ("model_shape", "TEXT"),
    ("model_weights", "INTEGER"),
    ("model_accuracy", "REAL"),
    ("dataset", "TEXT NOT NULL"),
    ("input_id", "INTEGER NOT NULL"),
    ("label", "INTEGER"),
    ("eps", "REAL NOT NULL"),
    ("norm", "TEXT NOT NULL"),
    ("problem", "TEXT NOT NULL"),
    ("target", "INTEGER NOT NULL"),  # -1 = none; NULL would defeat the UNIQUE key
    ("verdict", "TEXT NOT NULL"),
    ("decided_by", "TEXT"),
    ("margin", "REAL"),
    ("bound", "REAL"),
    ("distortion", "REAL"),
    ("distortion_lower", "REAL"),
    ("found_class", "INTEGER"),
    ("pgd_time", "REAL"),
    ("bounds_time", "REAL"),
    ("build_time", "REAL"),
    ("solve_time", "REAL"),
    ("total_time", "REAL"),
    ("binaries", "INTEGER"),
    ("rows", "INTEGER"),
    ("cols", "INTEGER"),
    ("nonzeros", "INTEGER"),
    ("neurons", "INTEGER"),
    ("stable", "INTEGER"),
    ("unstable", "INTEGER"),
    ("solver_status", "TEXT"),
    ("nodes", "INTEGER"),
    ("mip_solves", "INTEGER"),
    ("time_limit", "REAL"),
    ("threads", "INTEGER"),
    ("witness", "TEXT"),  # JSON list of floats, or NULL
    ("note", "TEXT"),
    ("worker", "TEXT"),
    ("created_at", "TEXT NOT NULL"),
)
COLUMN_NAMES = tuple(c for c, _ in COLUMNS)

_DDL = f"""
CREATE TABLE schema_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{n} {t}" for n, t in COLUMNS)},
    UNIQUE ({", ".join(KEY_COLUMNS)})
);
"""


def instance_key(row: dict[str, object]) -> tuple[object, ...]:
    """The UNIQUE key of a row or instance description."""
    return tuple(row[k] for k in KEY_COLUMNS)


def check_store(path: str | Path) -> bool:
    """Verify that ``path`` is absent, empty, or a results file of this schema, without writing
    to it. Returns whether it already exists as a store; raises ``StoreError`` otherwise."""
    p = Path(path)
    if not p.exists() or (p.is_file() and p.stat().st_size == 0):
        return False
    if not p.is_file():
        raise StoreError(f"{p} is not a file")
    with open(p, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise StoreError(f"{p} is not an SQLite results file (refusing to touch it)")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "schema_info" not in names:
                raise StoreError(
                    f"{p} is an SQLite file from another program (no schema_info table); "
                    "refusing to write to it"
                )
            info = dict(conn.execute("SELECT key, value FROM schema_info").fetchall())
            # Damaged pages otherwise surface later, mid-batch or mid-report, as tracebacks.
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                first = " ".join(problems[0].split())
                raise StoreError(
                    f"{p} is damaged ({first}); restore it from a copy or start a new file "
                    "(nothing was written to it)"
                )
        finally:
            conn.close()
    except (sqlite3.DatabaseError, ValueError) as err:
        raise StoreError(f"cannot read {p} as a results file: {err}") from None
    if info.get("schema") != SCHEMA_NAME or info.get("version") != str(SCHEMA_VERSION):
        raise StoreError(
            f"{p} has schema {info.get('schema')!r} version {info.get('version')!r}; this "
            f"nn2mip reads and writes {SCHEMA_NAME!r} version {SCHEMA_VERSION}"
        )
    return True


class ResultStore:
    """A results file open for reading and appending. Use as a context manager."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as err:
            raise StoreError(f"cannot use {self.path} as a results file: {err}") from None

    def _open(self, readonly: bool) -> None:
        exists = check_store(self.path)
        if readonly:
            if not exists:
                raise StoreError(f"results file not found: {self.path}")
            self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed row survives a killed process.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if not exists:
                with self.transaction():
                    for stmt in _DDL.strip().split(";"):
                        if stmt.strip():
                            self.conn.execute(stmt)
                    self.conn.executemany(
                        "INSERT INTO schema_info VALUES (?, ?)",
                        [
                            ("schema", SCHEMA_NAME),
                            ("version", str(SCHEMA_VERSION)),
                            ("created_at", _now()),
                        ],
                    )
        self.conn.row_factory = sqlite3.Row

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic transaction: all of it is committed, or none of it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def finished_keys(self) -> set[tuple[object, ...]]:
        """Keys of all instances already stored."""
        cols = ", ".join(KEY_COLUMNS)
        with self._errors():
            return {tuple(r) for r in self.conn.execute(f"SELECT {cols} FROM results")}

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite failures (a file damaged or changed under us) as one-line ``StoreError``s."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise  # a malformed row is the caller's bug, not the file's
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: {err}") from None

    def add(self, row: dict[str, object]) -> bool:
        """Insert one finished instance in its own transaction; False if it was already there."""
        data = {k: row.get(k) for k in COLUMN_NAMES}
        data["created_at"] = data["created_at"] or _now()
        if isinstance(data["witness"], list | tuple):
            data["witness"] = json.dumps(list(data["witness"]))
        cols = ", ".join(COLUMN_NAMES)
        marks = ", ".join(f":{c}" for c in COLUMN_NAMES)
        with self._errors(), self.transaction():
            cur = self.conn.execute(
                # ON CONFLICT on the key only: other constraint violations must still raise.
                f"INSERT INTO results ({cols}) VALUES ({marks}) "
                f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO NOTHING",
                data,
            )
        return cur.rowcount == 1

    def rows(self) -> list[dict[str, object]]:
        """All rows as dicts, in insertion order."""
        with self._errors():
            return [dict(r) for r in self.conn.execute("SELECT * FROM results ORDER BY id")]

    def count(self) -> int:
        with self._errors():
            return int(self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def add_rows(store: ResultStore, rows: Iterable[dict[str, object]]) -> int:
    """Insert several rows, one transaction each; returns how many were new."""
    return sum(store.add(r) for r in rows)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
