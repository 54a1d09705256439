"""PubMed / S2 files → raw Documents: the format → parser table and `PubMedFiles`.

The parsers (jats, medline, s2orc, s2-papers, s2-abstracts) and the Context they share (papers
index for joins, drop counter, ledger). `gap-replay ingest` and the acquirers' sources
(acquire.py, pmc_cloud.py) extract through them; the shared driver in `sources/ingest.py`
writes the shards (`OUT/raw/{papers,abstracts}/<subset>/*.jsonl.gz`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator

import orjson
from lxml import etree

from gap_replay.document import Document
from gap_replay.io import Quarantine, iter_records
from gap_replay.sources.base import files_below
from gap_replay.sources.ledger import Ledger
from gap_replay.sources.pubmed import jats, medline
from gap_replay.sources.pubmed.drop_marks import FullTextIndex
from gap_replay.sources.pubmed.joins import PaperIndex
from gap_replay.sources.pubmed.s2records import (
    RecordError,
    abstract_document,
    external_ids,
    is_pubmed_row,
    paper_meta,
    s2orc_document,
)
from gap_replay.sources.pubmed.xmlsafe import HostileXML

log = logging.getLogger(__name__)

_JSON_SINGLE_LIMIT = 256 << 20


class Context:
    """What a per-file parser may need: the papers index (joins), the drop counter, options."""

    def __init__(self, output: Path, all_records: bool = False, source: str = "papers") -> None:
        self.output = output
        self.source = source  # the source a parser's drops (ctx.dropped) are counted under
        self.ledger = Ledger(output)
        self.fulltext: FullTextIndex | None = None  # ids of full texts, added as written
        self.all_records = all_records
        self.dropped: Counter = Counter()
        index_path = papers_index_path(output)
        self.papers = PaperIndex(index_path) if index_path.exists() else None

    def close(self) -> None:
        self.ledger.close()
        if self.papers is not None:
            self.papers.close()
        if self.fulltext is not None:
            self.fulltext.close()


def papers_index_path(output: str | os.PathLike) -> Path:
    return Path(output) / "work" / "pubmed" / "papers_index.sqlite"


# -- per-format parsers: (path, quarantine, ctx) -> Documents -------------------------------------

def _json_rows(path: str, quarantine: Quarantine, source: str) -> Iterator[tuple[int, dict]]:
    """JSON lines (plain or gzip), or one pretty-printed JSON object in a `.json` file."""
    if path.endswith(".json") and not path.endswith(".jsonl"):
        size = os.path.getsize(path)
        if size > _JSON_SINGLE_LIMIT:
            quarantine.add(file=path, line=None, reason=f"single JSON file too large ({size} bytes)",
                           source=source)
            return
        data = Path(path).read_bytes()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            yield from iter_records(path, quarantine, source)  # JSON lines named .json
            return
        if isinstance(obj, dict):
            yield 1, obj
        elif isinstance(obj, list):
            for i, item in enumerate(obj, 1):
                if isinstance(item, dict):
                    yield i, item
                else:
                    quarantine.add(file=path, line=i, reason="array item is not an object",
                                   raw=orjson.dumps(item), source=source)
        else:
            quarantine.add(file=path, line=1, reason="JSON value is not an object", source=source)
        return
    yield from iter_records(path, quarantine, source)


def iter_s2orc(path: str, quarantine: Quarantine, ctx: Context) -> Iterator[Document]:
    for lineno, row in _json_rows(path, quarantine, "papers"):
        if not ctx.all_records and "paper_id" not in row and not is_pubmed_row(row):
            ctx.dropped["not_pubmed"] += 1
            continue
        ids = external_ids(row)
        paper = ctx.papers.get(ids["corpusid"]) if ctx.papers is not None else None
        try:
            yield s2orc_document(row, paper)
        except RecordError as exc:
            quarantine.add(file=path, line=lineno, reason=str(exc), raw=orjson.dumps(row)[:4096],
                           source="papers")


def iter_s2_abstracts(path: str, quarantine: Quarantine, ctx: Context) -> Iterator[Document]:
    for lineno, row in _json_rows(path, quarantine, "abstracts"):
        ids = external_ids(row)
        paper = ctx.papers.get(ids["corpusid"]) if ctx.papers is not None else None
        # Abstracts rows carry no PMID: a row is PubMed when its corpusid is a PubMed paper
        # (the papers index) or it links a PMC id (docs/sources.md §5.3, bug 7).
        if not ctx.all_records and paper is None and not ids["pmcid"]:
            ctx.dropped["not_pubmed"] += 1
            continue
        try:
            yield abstract_document(row, paper)
        except RecordError as exc:
            if "without an abstract" in str(exc):
                ctx.dropped["no_abstract"] += 1
            else:
                quarantine.add(file=path, line=lineno, reason=str(exc), raw=orjson.dumps(row),
                               source="abstracts")


def iter_s2_papers(path: str, quarantine: Quarantine, ctx: Context) -> Iterator[Document]:
    """papers rows are metadata: they go into the on-disk index that s2orc/abstracts join."""
    if ctx.papers is None:
        ctx.papers = PaperIndex(papers_index_path(ctx.output))
    for _lineno, row in _json_rows(path, quarantine, "papers"):
        if not ctx.all_records and not is_pubmed_row(row):
            ctx.dropped["not_pubmed"] += 1
            continue
        meta = paper_meta(row)
        if meta.get("corpusid"):
            ctx.papers.add(meta["corpusid"], meta)
            ctx.dropped["indexed_metadata_only"] += 1
    ctx.papers.flush()
    return
    yield  # a generator that writes no documents


def iter_jats(path: str, quarantine: Quarantine, ctx: Context) -> Iterator[Document]:
    for name, item in jats.iter_file(path):
        if isinstance(item, Exception):
            quarantine.add(file=name, line=None, reason=f"JATS: {item}", source="papers")
        else:
            yield item


def iter_medline_files(paths: list[str], quarantine: Quarantine, ctx: Context
                       ) -> Iterator[tuple[str, Iterator[Document]]]:
    """All MEDLINE files together, in name order (baseline before updates): pass 1 records every
    candidate (PMID, file, position, Version) and deletion in SQLite; pass 2 re-reads each file
    and yields (path, its winning documents), so neither pass holds records in memory and each
    input file still gets its own output shard. Consume each file's documents before the next."""
    workdir = ctx.output / "work" / "pubmed"
    db_path = workdir / f"medline-resolve-{os.getpid()}.sqlite"
    db_path.unlink(missing_ok=True)
    resolver = medline.MedlineResolver(db_path)
    ordered = sorted(paths, key=lambda p: (Path(p).name, p))
    readable: list[int] = []
    try:
        for file_no, path in enumerate(ordered):
            try:
                for pos, rec in enumerate(medline.iter_file(path)):
                    if isinstance(rec, medline.Deletion):
                        resolver.delete(rec.pmids, file_no, pos)
                    elif isinstance(rec, medline.Citation):
                        resolver.add(rec.pmid, file_no, pos, rec.version)
                readable.append(file_no)
            except HostileXML as exc:
                quarantine.add(file=path, line=None, reason=f"MEDLINE file refused: {exc}",
                               source="abstracts")
            except medline.NotThisFormat as exc:
                quarantine.add(file=path, line=None, reason=str(exc), source="abstracts")
            except (etree.XMLSyntaxError, OSError, EOFError) as exc:
                # the records before the damage count (pass 2 stops at the same point)
                quarantine.add(file=path, line=None, reason=f"MEDLINE file damaged: {exc}",
                               source="abstracts")
                readable.append(file_no)
        resolver.finish()
        for file_no in readable:
            yield ordered[file_no], _medline_winners(ordered[file_no], file_no, resolver, quarantine, ctx)
    finally:
        resolver.close()
        db_path.unlink(missing_ok=True)
        for extra in ("-wal", "-shm"):
            Path(str(db_path) + extra).unlink(missing_ok=True)


def _medline_winners(path: str, file_no: int, resolver: medline.MedlineResolver,
                     quarantine: Quarantine, ctx: Context) -> Iterator[Document]:
    try:
        for pos, rec in enumerate(medline.iter_file(path)):
            if isinstance(rec, medline.MedlineError):
                quarantine.add(file=path, line=None, reason=f"MEDLINE record: {rec}",
                               source="abstracts")
            elif isinstance(rec, medline.Deletion):
                # every PMID a DeleteCitation names is a record of the file, applied in pass 1
                ctx.dropped["delete_citation"] += len(rec.pmids)
            elif isinstance(rec, medline.Citation):
                if not resolver.is_winner(rec.pmid, file_no, pos):
                    ctx.dropped["superseded_or_deleted"] += 1
                elif rec.doc is None:
                    ctx.dropped[rec.reason.replace(" ", "_")] += 1
                else:
                    yield rec.doc
    except (etree.XMLSyntaxError, OSError, EOFError):
        pass  # already quarantined in pass 1


# The one format → parser table (per-file parsers, except MEDLINE which resolves across files).
FORMATS: dict[str, Callable] = {
    "jats": iter_jats,
    "medline": iter_medline_files,
    "s2orc": iter_s2orc,
    "s2-abstracts": iter_s2_abstracts,
    "s2-papers": iter_s2_papers,
}
ACROSS_FILES = {"medline"}
# the source each format's records belong to (what a parser drops or quarantines is counted there)
FORMAT_SOURCE = {"jats": "papers", "medline": "abstracts", "s2orc": "papers",
                 "s2-abstracts": "abstracts", "s2-papers": "papers"}
SUFFIXES = {
    "jats": (".nxml", ".xml", ".tar.gz", ".tgz"),
    "medline": (".xml", ".xml.gz"),
    "s2orc": (".jsonl", ".jsonl.gz", ".gz", ".json"),
    "s2-abstracts": (".jsonl", ".jsonl.gz", ".gz", ".json"),
    "s2-papers": (".jsonl", ".jsonl.gz", ".gz", ".json"),
}


def expand_inputs(paths: Iterable[str], fmt: str) -> list[str]:
    """Files as given, plus the matching files below any directory, sorted."""
    return files_below(paths, SUFFIXES[fmt])


class PubMedFiles:
    """Local PubMed / S2 files of one format behind the source interface (sources/base.py).
    MEDLINE resolves versions across files, so the driver (sources/ingest.py) reads a batch of
    it through FORMATS whole; `extract` of one MEDLINE file resolves it on its own."""

    def __init__(self, fmt: str, ctx: Context) -> None:
        self.name = fmt
        self.source = FORMAT_SOURCE[fmt]
        self.ctx = ctx

    def discover(self, inputs: Iterable[str]) -> list[str]:
        return expand_inputs(inputs, self.name)

    def fetch(self, item: str) -> str:
        return item  # local already

    def extract(self, path: str | os.PathLike, quarantine: Quarantine) -> Iterator[Document]:
        if self.name in ACROSS_FILES:
            return (doc for _path, docs in FORMATS[self.name]([str(path)], quarantine, self.ctx)
                    for doc in docs)
        return FORMATS[self.name](str(path), quarantine, self.ctx)
