"""The refresh's document index: id -> (source, fingerprint of the raw document), one SQLite
file per version, and the delta (new, changed, removed ids) against the previous version."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

import orjson

from gap_replay.document import Document
from gap_replay.hashing import content_hash

VOLATILE_META = ("fetched_at", "retrieved_at", "crawl_time", "http")


def fingerprint(doc: Document) -> str:
    """Content identity of a raw document; fields that change on every fetch are left out."""
    meta = {k: v for k, v in doc.meta.items() if k not in VOLATILE_META}
    payload = orjson.dumps([doc.source, doc.subset, doc.title, doc.text, doc.url, meta],
                           option=orjson.OPT_SORT_KEYS)
    return content_hash(payload.decode("utf-8", "surrogatepass"))


class DocIndex:
    """SQLite map id -> (source, fingerprint), one per version (`<version>/index.sqlite`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, source TEXT, hash TEXT)")
        self.db.execute("CREATE TEMP TABLE delta (id TEXT PRIMARY KEY, source TEXT, kind TEXT)")

    def put_many(self, rows: list[tuple[str, str, str]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", rows)

    def diff(self, previous: Path | None, carry_sources: set[str]) -> dict[str, int]:
        """Fill the `delta` table: new, changed and removed ids against the previous index.

        Documents of `carry_sources` (a source whose fetch had failures) that are missing now are
        carried over, not removed: a failed fetch must not delete documents from the corpus.
        """
        self.db.commit()
        if previous is None or not previous.exists():
            self.db.execute("INSERT INTO delta SELECT id, source, 'new' FROM docs")
        else:
            self.db.execute("ATTACH DATABASE ? AS prev", (str(previous),))
            self.db.execute("INSERT INTO delta SELECT n.id, n.source, CASE WHEN p.id IS NULL THEN 'new' "
                            "ELSE 'changed' END FROM docs n LEFT JOIN prev.docs p ON n.id = p.id "
                            "WHERE p.id IS NULL OR p.hash != n.hash")
            marks = ",".join("?" * len(carry_sources)) or "''"
            self.db.execute("INSERT INTO delta SELECT p.id, p.source, 'removed' FROM prev.docs p "
                            f"LEFT JOIN docs n ON n.id = p.id WHERE n.id IS NULL AND p.source NOT IN ({marks})",
                            tuple(sorted(carry_sources)))
            # carried-over documents stay in the index so the next refresh still knows them
            self.db.execute("INSERT INTO docs SELECT p.id, p.source, p.hash FROM prev.docs p "
                            f"LEFT JOIN docs n ON n.id = p.id WHERE n.id IS NULL AND p.source IN ({marks})",
                            tuple(sorted(carry_sources)))
            self.db.commit()
            self.db.execute("DETACH DATABASE prev")
        counts = dict(self.db.execute("SELECT kind, COUNT(*) FROM delta GROUP BY kind").fetchall())
        return {k: counts.get(k, 0) for k in ("new", "changed", "removed")}

    def in_delta(self, ids: list[str], kinds: tuple[str, ...] = ("new", "changed", "removed")) -> set[str]:
        found: set[str] = set()
        kind_marks = ",".join("?" * len(kinds))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(
                f"SELECT id FROM delta WHERE id IN ({marks}) AND kind IN ({kind_marks})", (*chunk, *kinds)))
        return found

    def delta_rows(self) -> Iterator[tuple[str, str, str]]:
        yield from self.db.execute("SELECT id, source, kind FROM delta ORDER BY kind, id")

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def close(self) -> None:
        self.db.commit()
        self.db.close()
