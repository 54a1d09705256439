"""SQLite state in the output directory: failed URLs to retry, completed work, key/values.

Sources add their own tables through `State.execute`; the connection is opened per use so
several worker processes can share the file (WAL mode, busy timeout).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    url TEXT PRIMARY KEY, source TEXT, error TEXT, status INTEGER, attempts INTEGER, last_attempt REAL
);
CREATE TABLE IF NOT EXISTS completed (
    kind TEXT, key TEXT, value TEXT, completed_at REAL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT);
"""


def _storage(exc: sqlite3.Error, path: Path) -> Exception | None:
    from gap_replay.errors import StorageError, is_storage_error

    return StorageError(path, f"{exc} (SQLite)") if is_storage_error(exc) else None


class State:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A read-only, full or missing output folder raises StorageError naming this file."""
        try:
            db = sqlite3.connect(self.path, timeout=60)
        except sqlite3.Error as exc:
            if (named := _storage(exc, self.path)) is None:
                raise
            raise named from exc
        try:
            with db:
                yield db
        except sqlite3.Error as exc:
            if (named := _storage(exc, self.path)) is None:
                raise
            raise named from exc
        finally:
            db.close()

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect() as db:
            return db.execute(sql, params).fetchall()

    # failed URLs: recorded with their error, retried on the next run
    def record_failure(self, url: str, source: str, error: str, status: int | None = None) -> None:
        self.execute(
            "INSERT INTO failures(url, source, error, status, attempts, last_attempt) "
            "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT(url) DO UPDATE SET error=excluded.error, "
            "status=excluded.status, attempts=attempts+1, last_attempt=excluded.last_attempt",
            (url, source, error, status, time.time()))

    def clear_failure(self, url: str) -> None:
        self.execute("DELETE FROM failures WHERE url=?", (url,))

    def failures(self, source: str | None = None) -> list[tuple[str, str, int | None]]:
        if source is None:
            return self.execute("SELECT url, error, status FROM failures ORDER BY url")
        return self.execute("SELECT url, error, status FROM failures WHERE source=? ORDER BY url",
                            (source,))

    # completed units of work (pages scraped, files ingested, tasks) with an optional value
    def mark_done(self, kind: str, key: str, value: str = "") -> None:
        self.execute("INSERT OR REPLACE INTO completed VALUES (?, ?, ?, ?)",
                     (kind, key, value, time.time()))

    def done(self, kind: str, key: str) -> str | None:
        rows = self.execute("SELECT value FROM completed WHERE kind=? AND key=?", (kind, key))
        return rows[0][0] if rows else None

    def done_keys(self, kind: str) -> set[str]:
        return {k for (k,) in self.execute("SELECT key FROM completed WHERE kind=?", (kind,))}

    def set(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def get(self, key: str, default: str | None = None) -> str | None:
        rows = self.execute("SELECT value FROM kv WHERE key=?", (key,))
        return rows[0][0] if rows else default
