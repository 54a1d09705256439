"""Streaming metadata joins: an on-disk SQLite index of `papers` metadata keyed by corpusid.

The original loaded every PubMed paper into a Python dict before joining (tens of GB). Here the
papers rows are streamed into SQLite once; s2orc and abstracts rows then look their corpusid up
one at a time, so memory stays flat whatever the release size.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import orjson

from gap_replay.sources.pubmed.diskindex import BatchedIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS papers (corpusid INTEGER PRIMARY KEY, meta BLOB NOT NULL);
"""


class PaperIndex(BatchedIndex):
    """corpusid → papers metadata (a dict), on disk."""

    def __init__(self, path: str | os.PathLike, batch: int = 5000) -> None:
        super().__init__(path, _SCHEMA, "INSERT OR REPLACE INTO papers VALUES (?, ?)", batch)

    def add(self, corpusid: str | int, meta: dict) -> None:
        self.queue((int(corpusid), orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)))

    def add_many(self, items: Iterable[tuple[str | int, dict]]) -> int:
        return self.consume(items, lambda item: self.add(*item))

    def delete(self, corpusid: str | int) -> None:
        self.flush()
        with self.db:
            self.db.execute("DELETE FROM papers WHERE corpusid=?", (int(corpusid),))

    def get(self, corpusid: str | int | None) -> dict | None:
        if corpusid is None:
            return None
        try:
            key = int(corpusid)
        except (TypeError, ValueError):
            return None
        self.flush()
        row = self.db.execute("SELECT meta FROM papers WHERE corpusid=?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def __contains__(self, corpusid) -> bool:
        return self.get(corpusid) is not None

    def __len__(self) -> int:
        self.flush()
        return self.db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]

    def items(self) -> Iterator[tuple[int, dict]]:
        self.flush()
        for key, meta in self.db.execute("SELECT corpusid, meta FROM papers ORDER BY corpusid"):
            yield key, orjson.loads(meta)

    def close(self) -> None:
        self.flush()
        self.db.close()

    def __enter__(self) -> "PaperIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
