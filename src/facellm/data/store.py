"""The resumable QA store: one SQLite file (WAL mode) per run, one row per (image, aspect, prompt version, teacher).

The row key is built from the image's content hash, so renaming or moving images does not redo work, and the
primary key makes a duplicate impossible. Every answer is committed as soon as it arrives: a process killed at
any moment (even SIGKILL) loses only the requests in flight, and SQLite's journal keeps the file consistent.
A `done` row is never overwritten by a later failure.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from facellm.errors import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS qa (
    key TEXT PRIMARY KEY,
    image_hash TEXT NOT NULL,
    image TEXT NOT NULL,
    root TEXT NOT NULL,
    aspect TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    teacher TEXT NOT NULL,
    mode TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    status TEXT NOT NULL,
    error TEXT,
    known TEXT NOT NULL,
    measured TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    image_bytes INTEGER NOT NULL DEFAULT 0,
    flags TEXT NOT NULL DEFAULT '[]',
    cause TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS qa_status ON qa(status);
CREATE TABLE IF NOT EXISTS skipped (image TEXT PRIMARY KEY, reason TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unusable (
    image_hash TEXT NOT NULL, image TEXT NOT NULL, teacher TEXT NOT NULL, mode TEXT NOT NULL, text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost REAL NOT NULL, updated REAL NOT NULL
);
"""


@dataclass
class QARecord:
    """One question/answer pair (or its failure), as stored."""

    key: str
    image_hash: str
    image: str
    root: str
    aspect: str
    prompt_version: str
    teacher: str
    mode: str
    question: str
    answer: str | None = None
    status: str = "done"  # done | failed | batched
    error: str | None = None
    known: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    image_bytes: int = 0
    flags: list[str] = field(default_factory=list)
    cause: str | None = None  # a failed row's Cause value


def record_key(image_hash: str, aspect: str, prompt_version: str, teacher: str) -> str:
    return f"{image_hash}|{aspect}|{prompt_version}|{teacher}"


def image_hash(path: Path) -> str:
    """Content hash of an image file (first 32 hex digits of SHA-256)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


class QAStore:
    """Open (or create) `RUN/qa.sqlite`. Use from one thread; every write commits."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "qa.sqlite"
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            if "cause" not in {row[1] for row in self.db.execute("PRAGMA table_info(qa)")}:  # a store from before
                self.db.execute("ALTER TABLE qa ADD COLUMN cause TEXT")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot open the run store {self.path}: {exc}", "choose a new --out folder") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> QAStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, record: QARecord) -> None:
        """Insert or update a row; a `done` row stays done (a later failure or batch marker does not replace it)."""
        row = asdict(record)
        for name in ("known", "measured", "flags"):
            row[name] = json.dumps(row[name], ensure_ascii=False)
        row["updated"] = time.time()
        columns = ", ".join(row)
        placeholders = ", ".join(f":{c}" for c in row)
        updates = ", ".join(f"{c}=excluded.{c}" for c in row if c != "key")
        self.db.execute(
            f"INSERT INTO qa ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT(key) DO UPDATE SET {updates} WHERE qa.status != 'done' OR excluded.status = 'done'",
            row,
        )

    def put_unusable(self, record: QARecord, text: str) -> None:
        """Keep a paid-for reply that could not be used (a per-image reply whose JSON failed), with its cost."""
        self.db.execute(
            "INSERT INTO unusable VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.image_hash,
                record.image,
                record.teacher,
                record.mode,
                text,
                record.prompt_tokens,
                record.completion_tokens,
                record.cost,
                time.time(),
            ),
        )

    def unusable(self) -> list[dict]:
        cursor = self.db.execute("SELECT * FROM unusable ORDER BY updated")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values)) for values in cursor]

    def statuses(self) -> dict[str, str]:
        """Key -> status for every row."""
        return dict(self.db.execute("SELECT key, status FROM qa"))

    def records(self, status: str | None = None) -> list[QARecord]:
        query = "SELECT * FROM qa" + (" WHERE status = ?" if status else "") + " ORDER BY image, aspect"
        cursor = self.db.execute(query, (status,) if status else ())
        names = [d[0] for d in cursor.description]
        out = []
        for values in cursor:
            row = dict(zip(names, values))
            row.pop("updated")
            for name in ("known", "measured", "flags"):
                row[name] = json.loads(row[name])
            out.append(QARecord(**row))
        return out

    def set_flags(self, flags: dict[str, list[str]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE qa SET flags = ? WHERE key = ?", [(json.dumps(f), k) for k, f in flags.items()])

    def skip(self, image: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO skipped VALUES (?, ?, ?) ON CONFLICT(image) DO UPDATE SET reason=excluded.reason, "
            "updated=excluded.updated",
            (image, reason, time.time()),
        )

    def unskip(self, image: str) -> None:
        self.db.execute("DELETE FROM skipped WHERE image = ?", (image,))

    def skipped(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT image, reason FROM skipped ORDER BY image"))

    def set_meta(self, name: str, value: dict) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (name, json.dumps(value)),
        )

    def meta(self, name: str) -> dict | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None


def open_existing(run_dir: str | Path) -> QAStore:
    """A store that must already exist (for export, stats, filter)."""
    if not (Path(run_dir) / "qa.sqlite").is_file():
        raise InputError(f"no dataset run in {run_dir} (qa.sqlite missing)", "run `facellm data build --out` first")
    return QAStore(run_dir)
