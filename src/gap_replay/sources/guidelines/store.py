"""Scraped records live in the SQLite state (one row per canonical URL) until they are written
out as shards; shards are always rewritten from the state in URL order, so an interrupted and
resumed scrape produces the same bytes as an uninterrupted one.

State rows (table `completed` of gap_replay.state):
  kind `guidelines/<tag>`        key canonical URL  value the record's JSON line
  kind `guidelines/<tag>/alias`  key a fetched URL  value the canonical URL it resolved to
  kind `guidelines/<tag>/removed` key canonical URL  value when a full discovery stopped listing it

A removed record stays in the state (so it is restored, without a request, if the site lists it
again) but is left out of the shards and of `count()`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from gap_replay.document import Document
from gap_replay.io import ShardWriter
from gap_replay.state import State

RECORDS_PER_PART = 1000


def record_kind(tag: str) -> str:
    return f"guidelines/{tag}"


def alias_kind(tag: str) -> str:
    return f"guidelines/{tag}/alias"


def removed_kind(tag: str) -> str:
    return f"guidelines/{tag}/removed"


class RecordStore:
    def __init__(self, state: State, tag: str) -> None:
        self.state = state
        self.tag = tag

    def done_urls(self) -> set[str]:
        """Canonical URLs and their aliases that already have a record."""
        return self.state.done_keys(record_kind(self.tag)) | self.state.done_keys(alias_kind(self.tag))

    def record_urls(self) -> set[str]:
        """Canonical URLs with a record (removed ones included)."""
        return self.state.done_keys(record_kind(self.tag))

    def canonical_of(self) -> dict[str, str]:
        """alias URL -> canonical URL."""
        return dict(self.state.execute("SELECT key, value FROM completed WHERE kind=?",
                                       (alias_kind(self.tag),)))

    def removed_urls(self) -> set[str]:
        return self.state.done_keys(removed_kind(self.tag))

    def mark_removed(self, urls: set[str], when: str) -> None:
        with self.state.connect() as db:
            db.executemany("INSERT OR REPLACE INTO completed VALUES (?, ?, ?, strftime('%s','now'))",
                           [(removed_kind(self.tag), url, when) for url in sorted(urls)])

    def restore(self, urls: set[str]) -> None:
        with self.state.connect() as db:
            db.executemany("DELETE FROM completed WHERE kind=? AND key=?",
                           [(removed_kind(self.tag), url) for url in sorted(urls)])

    def alias_urls(self) -> set[str]:
        return self.state.done_keys(alias_kind(self.tag)) - self.state.done_keys(record_kind(self.tag))

    def get(self, url: str) -> Document | None:
        value = self.state.done(record_kind(self.tag), url)
        if value is None:
            canonical = self.state.done(alias_kind(self.tag), url)
            value = self.state.done(record_kind(self.tag), canonical) if canonical else None
        return Document.from_json(value) if value else None

    def put(self, doc: Document, aliases: tuple[str, ...] = ()) -> None:
        self.state.mark_done(record_kind(self.tag), doc.url, doc.to_json().decode("utf-8"))
        for alias in aliases:
            if alias != doc.url:
                self.add_alias(alias, doc.url)

    def add_alias(self, alias: str, canonical: str) -> None:
        self.state.mark_done(alias_kind(self.tag), alias, canonical)

    _LISTED = ("kind=? AND key NOT IN (SELECT key FROM completed WHERE kind=?)")

    def count(self) -> int:
        """Records still listed by the site (removed ones excluded)."""
        return self.state.execute(f"SELECT COUNT(*) FROM completed WHERE {self._LISTED}",
                                  (record_kind(self.tag), removed_kind(self.tag)))[0][0]

    def iter_records(self, include_removed: bool = False) -> Iterator[Document]:
        """Records in canonical-URL order, streamed from SQLite (memory stays flat); records the
        site no longer lists are left out unless `include_removed`."""
        where, params = (("kind=?", (record_kind(self.tag),)) if include_removed else
                         (self._LISTED, (record_kind(self.tag), removed_kind(self.tag))))
        with self.state.connect() as db:
            cursor = db.execute(f"SELECT value FROM completed WHERE {where} ORDER BY key", params)
            for (value,) in cursor:
                yield Document.from_json(value)

    def write_shards(self, folder: str | os.PathLike, per_part: int = RECORDS_PER_PART) -> list[Path]:
        """Rewrite `folder/part-NNNNN.jsonl.gz` from the state; stale higher parts are removed.
        Rejected records (`meta.rejected`: no guideline in the page) stay in the state only."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        writer: ShardWriter | None = None
        try:
            for doc in self.iter_records():
                if doc.meta.get("rejected"):
                    continue
                if writer is None or writer.count >= per_part:
                    if writer is not None:
                        writer.__exit__(None, None, None)
                    path = folder / f"part-{len(written):05d}.jsonl.gz"
                    writer = ShardWriter(path).__enter__()
                    written.append(path)
                writer.write(doc)
        except BaseException as exc:
            if writer is not None:
                writer.__exit__(type(exc), exc, None)
            raise
        if writer is not None:
            writer.__exit__(None, None, None)
        keep = {p.name for p in written}
        for old in folder.glob("part-*.jsonl.gz"):
            if old.name not in keep:
                old.unlink()
        return written

    def rejected(self) -> int:
        """Listed records with no guideline (`meta.rejected`), left out of the raw shards."""
        return sum(1 for doc in self.iter_records() if doc.meta.get("rejected"))
