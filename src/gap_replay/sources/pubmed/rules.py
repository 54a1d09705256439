"""Corpus rules for PubMed documents: full-text/abstract dedup, retractions, declared language.

* An abstract whose article has a full text in the corpus is removed, matched by PMID, PMCID
  or DOI (the original matched by corpusid only, and with its arguments reversed).
* Retracted publications and retraction notices are dropped, each with its own reason.
* Non-English records are flagged through `meta.language` (MEDLINE/JATS declare it); the
  `DeclaredLanguage` stage drops them with reason `language:<code>` for callers that filter here
  rather than in the core's language stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from gap_replay.document import Document
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.sources.ledger import note_rewrite
from gap_replay.sources.pubmed.diskindex import BatchedIndex
from gap_replay.stages.base import Pipeline, Stage

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


class FullTextDedup(Stage):
    """Drop abstracts that have a full text (reason `has_full_text:<pmid|pmcid|doi>`)."""

    name = "fulltext_dedup"

    def __init__(self, index: FullTextIndex) -> None:
        super().__init__()
        self.index = index

    def process(self, doc: Document) -> Document | None:
        if doc.source == "abstracts":
            kind = self.index.match(doc)
            if kind:
                self.drop(doc, f"has_full_text:{kind}")
                return None
        return doc


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


class Retractions(Stage):
    """Drop retracted publications and retraction notices, counted by reason."""

    name = "retractions"

    def process(self, doc: Document) -> Document | None:
        reason = retraction_reason(doc)
        if reason:
            self.drop(doc, reason)
            return None
        return doc


class DeclaredLanguage(Stage):
    """Drop records whose declared `meta.language` is not allowed (undeclared ones pass: the
    core's language stage detects them)."""

    name = "declared_language"

    def __init__(self, languages: Iterable[str] | None = ("en",)) -> None:
        super().__init__()
        self.languages = set(languages) if languages else None

    def process(self, doc: Document) -> Document | None:
        lang = doc.meta.get("language")
        if self.languages and lang and lang not in ("und", "mul") and lang not in self.languages:
            self.drop(doc, f"language:{lang}")
            return None
        return doc


def fulltext_index_path(output: str | os.PathLike) -> Path:
    return Path(output) / "work" / "pubmed" / "fulltext_ids.sqlite"


def index_papers(output: str | os.PathLike) -> int:
    """(Re)build the full-text id index from `OUT/raw/papers/**`."""
    path = fulltext_index_path(output)
    index = FullTextIndex(path)
    quarantine = Quarantine()
    n = 0
    try:
        for shard in list_shards(Path(output) / "raw" / "papers"):
            n += index.add_all(iter_documents(shard, quarantine, "papers"))
    finally:
        index.close()
    return n


def apply_fulltext_dedup(output: str | os.PathLike) -> dict:
    """Filter `OUT/raw/abstracts/**` against the full-text index, rewriting shards atomically.

    Idempotent, so the abstracts and papers acquirers can both call it whatever order
    `download` runs them in; returns per-reason counts."""
    path = fulltext_index_path(output)
    if not path.exists():
        return {}
    index = FullTextIndex(path)
    totals: dict[str, int] = {}
    try:
        for shard in list_shards(Path(output) / "raw" / "abstracts"):
            quarantine = Quarantine()
            stage = FullTextDedup(index)
            pipeline = Pipeline([stage])
            tmp = shard + ".dedup.jsonl.gz"
            with ShardWriter(tmp) as writer:
                for doc in pipeline.run(iter_documents(shard, quarantine, "abstracts")):
                    writer.write(doc)
            dropped = stage.stats.to_dict().get("abstracts", {}).get("dropped", {})
            if dropped:
                os.replace(tmp, shard)
                note_rewrite(output, shard, dropped)  # the acquire stage counts what left
            else:
                os.unlink(tmp)
            for reason, count in dropped.items():
                totals[reason] = totals.get(reason, 0) + count
    finally:
        index.close()
    return totals
