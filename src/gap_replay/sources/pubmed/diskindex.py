"""A SQLite table filled in batches: the on-disk indexes that keep PubMed joins out of memory."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")


class BatchedIndex:
    """Rows queue in memory up to `batch`, then go in with one executemany (`insert_sql`)."""

    def __init__(self, path: str | os.PathLike, schema: str, insert_sql: str, batch: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(schema)
        self.insert_sql = insert_sql
        self.batch = batch
        self._pending: list[tuple] = []

    def queue(self, row: tuple) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.batch:
            self.flush()

    def consume(self, items: Iterable[T], add: Callable[[T], None]) -> int:
        """`add` every item, flush, and return how many there were."""
        n = 0
        for item in items:
            add(item)
            n += 1
        self.flush()
        return n

    def flush(self) -> None:
        if self._pending:
            with self.db:
                self.db.executemany(self.insert_sql, self._pending)
            self._pending.clear()
