"""Why a PubMed record is not corpus text, recorded as `meta.drop_reason` (sources/base.py).

The shared `filter` stage (stages/filter.py) drops marked documents under the reason given, so
these records stay in raw/ and stats.json counts them where the rest of the corpus is filtered.

* Retracted publications (`retracted_publication`) and retraction notices (`retraction_notice`),
  from the publication types (MEDLINE, S2), the JATS article type, or the title.
* An abstract whose article has a full text in the corpus (`has_full_text:<pmid|pmcid|doi>`),
  matched by PMID, PMCID or DOI against the ids of the papers written (the original matched by
  corpusid only, and with its arguments reversed). Papers and abstracts arrive in either order,
  so `mark_fulltext_abstracts` re-reads raw/abstracts/ after each acquisition.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from gap_replay.document import Document
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.sources.base import DROP_REASON
from gap_replay.sources.ledger import note_rewrite
from gap_replay.sources.pubmed.diskindex import BatchedIndex

RETRACTED = "Retracted Publication"
RETRACTION_NOTICE = "Retraction of Publication"
_ID_KINDS = ("pmid", "pmcid", "doi")
_IDS_SCHEMA = "CREATE TABLE IF NOT EXISTS ids (kind TEXT, value TEXT, PRIMARY KEY (kind, value));"


class FullTextIndex(BatchedIndex):
    """The identifiers (pmid, pmcid, doi) of every full-text paper, on disk (SQLite)."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path, _IDS_SCHEMA, "INSERT OR IGNORE INTO ids VALUES (?, ?)", 10000)

    def add(self, doc: Document) -> None:
        for kind in _ID_KINDS:
            value = doc.meta.get(kind)
            if value:
                self.queue((kind, str(value).lower()))

    def add_all(self, docs: Iterable[Document]) -> int:
        return self.consume(docs, self.add)

    def match(self, doc: Document) -> str | None:
        """The id kind through which `doc` has a full text, or None."""
        self.flush()
        for kind in _ID_KINDS:
            value = doc.meta.get(kind)
            if value and self.db.execute("SELECT 1 FROM ids WHERE kind=? AND value=?",
                                         (kind, str(value).lower())).fetchone():
                return kind
        return None

    def __len__(self) -> int:
        self.flush()
        return self.db.execute("SELECT COUNT(*) FROM ids").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self.db.close()


def retraction_reason(doc: Document) -> str | None:
    types = {str(t).strip().lower() for t in doc.meta.get("publication_types") or []}
    if RETRACTED.lower() in types:
        return "retracted_publication"
    if RETRACTION_NOTICE.lower() in types or doc.meta.get("article_type") == "retraction":
        return "retraction_notice"
    title = (doc.title or "").strip().lower()
    if title.startswith(("retraction:", "retraction notice", "notice of retraction", "retracted:")):
        return "retraction_notice"
    return None


def mark_retraction(doc: Document) -> Document:
    """Set `meta.drop_reason` on a retraction (an existing mark is kept)."""
    reason = retraction_reason(doc)
    if reason and not doc.meta.get(DROP_REASON):
        doc.meta[DROP_REASON] = reason
    return doc


def fulltext_index_path(output: str | os.PathLike) -> Path:
    return Path(output) / "work" / "pubmed" / "fulltext_ids.sqlite"


def mark_fulltext_abstracts(output: str | os.PathLike) -> dict:
    """Mark the abstracts of `OUT/raw/abstracts/**` that have a full text, rewriting a shard
    atomically only when it gains a mark; returns the new marks by reason.

    Idempotent, so the abstracts and papers acquirers can both call it whatever order
    `download` runs them in."""
    path = fulltext_index_path(output)
    if not path.exists():
        return {}
    index = FullTextIndex(path)
    totals: dict[str, int] = {}
    try:
        for shard in list_shards(Path(output) / "raw" / "abstracts"):
            quarantine = Quarantine()
            marked: dict[str, int] = {}
            tmp = shard + ".marks.jsonl.gz"
            with ShardWriter(tmp) as writer:
                for doc in iter_documents(shard, quarantine, "abstracts"):
                    if doc.source == "abstracts" and not doc.meta.get(DROP_REASON):
                        kind = index.match(doc)
                        if kind:
                            doc.meta[DROP_REASON] = f"has_full_text:{kind}"
                            marked[doc.meta[DROP_REASON]] = marked.get(doc.meta[DROP_REASON], 0) + 1
                    writer.write(doc)
            if marked:
                os.replace(tmp, shard)
                note_rewrite(output, shard, {})  # same documents: the ledger notes the new bytes
            else:
                os.unlink(tmp)
            for reason, count in marked.items():
                totals[reason] = totals.get(reason, 0) + count
    finally:
        index.close()
    return totals
