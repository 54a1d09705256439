"""Local PubMed files → raw document shards (`OUT/raw/{papers,abstracts}/<subset>/*.jsonl.gz`).

Used by `gap-replay ingest` and by the acquirers after a download, so both paths parse, filter
and write identically. One output shard per input file (named after it), written atomically;
a rerun skips inputs already recorded as done in `OUT/state.sqlite`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import orjson
from lxml import etree

from gap_replay.document import Document
from gap_replay.io import Quarantine, ShardWriter, iter_records
from gap_replay.io.paths import remove_stale_temporaries
from gap_replay.sources.ledger import Ledger
from gap_replay.sources.pubmed import jats, medline
from gap_replay.sources.pubmed.joins import PaperIndex
from gap_replay.sources.base import DROP_REASON, Source, files_below
from gap_replay.sources.pubmed.drop_marks import (
    FullTextIndex,
    fulltext_index_path,
    mark_fulltext_abstracts,
    mark_retraction,
)
from gap_replay.sources.pubmed.s2records import (
    RecordError,
    abstract_document,
    external_ids,
    is_pubmed_row,
    paper_meta,
    s2orc_document,
)
from gap_replay.sources.pubmed.xmlsafe import HostileXML
from gap_replay.state import State

log = logging.getLogger(__name__)

_JSON_SINGLE_LIMIT = 256 << 20


@dataclass
class IngestReport:
    """Counts that reconcile: records in = written + dropped (by reason) + quarantined; `marked`
    and `fulltext_dedup` count written documents the `filter` stage will drop (drop_marks.py)."""

    files: int = 0
    skipped_files: int = 0
    records_in: int = 0
    written: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    marked: Counter = field(default_factory=Counter)  # written with meta.drop_reason, by reason
    quarantined: int = 0
    shards: list[str] = field(default_factory=list)
    fulltext_dedup: dict = field(default_factory=dict)
    empty_files: list[str] = field(default_factory=list)  # no record at all: quarantined, not done

    def to_dict(self) -> dict:
        return {"files": self.files, "skipped_files": self.skipped_files,
                "records_in": self.records_in, "written": dict(sorted(self.written.items())),
                "dropped": dict(sorted(self.dropped.items())),
                "marked": dict(sorted(self.marked.items())), "quarantined": self.quarantined,
                "shards": len(self.shards), "fulltext_dedup": dict(sorted(self.fulltext_dedup.items())),
                "empty_files": list(self.empty_files)}


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
    """Local PubMed / S2 files of one format behind the source interface (sources/base.py);
    MEDLINE resolves versions across files, so `run_ingest` reads it through FORMATS whole."""

    def __init__(self, fmt: str, ctx: Context) -> None:
        self.name = fmt
        self.source = FORMAT_SOURCE[fmt]
        self.ctx = ctx

    def discover(self, inputs: Iterable[str]) -> list[str]:
        return expand_inputs(inputs, self.name)

    def fetch(self, item: str) -> str:
        return item  # local already

    def extract(self, path: str | os.PathLike, quarantine: Quarantine) -> Iterator[Document]:
        return FORMATS[self.name](str(path), quarantine, self.ctx)


def _shard_name(path: str) -> str:
    base = Path(path).name
    for suffix in (".jsonl.gz", ".xml.gz", ".tar.gz", ".jsonl.zst", ".jsonl", ".json", ".nxml",
                   ".xml", ".gz", ".tgz", ".zst"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def _file_key(path: str) -> str:
    st = os.stat(path)
    return f"{os.path.abspath(path)}:{st.st_size}:{int(st.st_mtime)}"


class _Writers:
    """One atomic shard per (source, subset) for one input; opened on first document."""

    def __init__(self, output: Path, name: str) -> None:
        self.output = output
        self.name = name
        self.open: dict[tuple[str, str], ShardWriter] = {}
        self.counts: Counter = Counter()

    def write(self, doc: Document) -> None:
        key = (doc.source, doc.subset or "")
        writer = self.open.get(key)
        if writer is None:
            folder = self.output / "raw" / doc.source
            if doc.subset:
                folder = folder / doc.subset
            writer = ShardWriter(folder / f"{self.name}.jsonl.gz").__enter__()
            self.open[key] = writer
        writer.write(doc)
        self.counts[key] += 1

    def close(self, exc: BaseException | None = None) -> list[str]:
        paths = []
        for writer in self.open.values():
            writer.__exit__(type(exc) if exc else None, exc, None)
            paths.append(writer.path)
        return paths


def run_ingest(fmt: str, paths: Iterable[str], output: str | os.PathLike, *,
               all_records: bool = False, force: bool = False, recipe: dict | None = None,
               progress: Callable[[Iterable], Iterable] | None = None,
               source: Source | None = None) -> IngestReport:
    """Parse `paths` as `fmt` into `OUT/raw/...`; quarantine under `OUT/quarantine/`.

    `source` reads another family's files (e.g. the replay family's RedPajama files) through
    the same writers, resume state and ledger; by default the PubMed format `fmt`."""
    if source is None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output / "raw")
    state = State(output / "state.sqlite")
    report = IngestReport()
    ctx = Context(output, all_records=all_records,
                  source=source.source if source is not None else FORMAT_SOURCE[fmt])
    source = source if source is not None else PubMedFiles(fmt, ctx)
    files = source.discover(paths)
    ctx.fulltext = FullTextIndex(fulltext_index_path(output))
    wrap = progress or (lambda it: it)
    quarantined = 0

    def keep_quarantine(quarantine: Quarantine, name: str) -> None:
        """One quarantine file per input (or per joined batch), written before the input is
        marked done: a rerun that skips the input keeps its record of what was bad."""
        nonlocal quarantined
        if len(quarantine):
            quarantine.flush(output / "quarantine" / f"ingest-{fmt}-{name}.jsonl")
        quarantined += len(quarantine)
        for source, n in quarantine.by_source.items():
            ctx.ledger.input_counts(f"ingest-{fmt}-{name}", str(source), quarantined=n)

    try:
        if fmt in ACROSS_FILES:
            key = "|".join(_file_key(p) for p in sorted(files))
            if not force and state.done(f"ingest:{fmt}", key) is not None:
                report.skipped_files = len(files)
            else:
                quarantine = Quarantine()
                for path, docs in FORMATS[fmt](files, quarantine, ctx):
                    _ingest_stream(docs, _shard_name(path), output, report, ctx,
                                   ledger_name=f"ingest-{fmt}-{_shard_name(path)}")
                report.files = len(files)
                keep_quarantine(quarantine, hashlib.sha1(key.encode()).hexdigest()[:8])
                state.mark_done(f"ingest:{fmt}", key, orjson.dumps(report.to_dict()).decode())
        else:
            for path in wrap(files):
                key = _file_key(path)
                if not force and state.done(f"ingest:{fmt}", key) is not None:
                    report.skipped_files += 1
                    continue
                quarantine = Quarantine()
                seen = report.records_in
                _ingest_stream(source.extract(source.fetch(path), quarantine), _shard_name(path), output,
                               report, ctx, ledger_name=f"ingest-{fmt}-{_shard_name(path)}")
                report.files += 1
                log.info("%s: %d quarantined", path, len(quarantine))
                if report.records_in == seen and not len(quarantine):
                    # nothing read, nothing refused: an empty or foreign file is reported (and
                    # retried next run), never marked done as if it had been ingested
                    quarantine.add(file=path, line=None, source=source.source,
                                   reason=f"no {fmt} records in this file (empty, or another format)")
                    report.empty_files.append(path)
                    log.warning("%s: no %s records in this file", path, fmt)
                    keep_quarantine(quarantine, _shard_name(path))
                    continue
                keep_quarantine(quarantine, _shard_name(path))
                state.mark_done(f"ingest:{fmt}", key)
    finally:
        ctx.close()
    report.quarantined = quarantined
    report.records_in += report.quarantined
    # Abstracts already on disk (this run's or earlier runs') that now have a full text.
    report.fulltext_dedup = mark_fulltext_abstracts(output)
    return report


def ingest_documents(batches: Iterable[tuple[str, Iterator[Document]]], output: str | os.PathLike,
                     *, on_written: Callable[[str], None] | None = None) -> IngestReport:
    """Documents an acquirer parsed itself (e.g. one JATS object per HTTP GET), one shard per
    named batch, through the same retraction marks, writers and full-text marks as run_ingest.
    `on_written(name)` runs once a batch's shard is safely on disk (for resume markers)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output / "raw")
    report = IngestReport()
    ctx = Context(output)
    ctx.fulltext = FullTextIndex(fulltext_index_path(output))
    try:
        for name, docs in batches:
            _ingest_stream(docs, name, output, report, ctx)
            report.files += 1
            if on_written is not None:
                on_written(name)
    finally:
        ctx.close()
    report.fulltext_dedup = mark_fulltext_abstracts(output)
    return report


def _ingest_stream(docs: Iterator[Document], name: str, output: Path, report: IngestReport,
                   ctx: Context, ledger_name: str | None = None) -> None:
    """Write one input's documents; its shards and its drops by source go into the ledger
    (under `ledger_name`, default the shard name) for stats.json's `acquire` stage."""
    # Quality up-sampling is not applied here: `process` runs it from the current recipe, so a
    # recipe change needs no re-acquisition.
    # PubMed retractions are written with `meta.drop_reason` (drop_marks.py): the `filter`
    # stage drops them, and a marked paper gives no abstract a full text.
    writers = _Writers(output, name)
    dropped_before = Counter(ctx.dropped)
    error: BaseException | None = None
    try:
        for doc in docs:
            report.records_in += 1
            if doc.source in ("papers", "abstracts"):  # PubMed's rule, not another family's
                mark_retraction(doc)
            if doc.meta.get(DROP_REASON):
                report.marked[doc.meta[DROP_REASON]] += 1
            writers.write(doc)
            report.written[doc.source] += 1
            if doc.source == "papers" and ctx.fulltext is not None and not doc.meta.get(DROP_REASON):
                ctx.fulltext.add(doc)
    except BaseException as exc:
        error = exc
        raise
    finally:
        report.shards += writers.close(error)
    for (source, _subset), writer in writers.open.items():
        ctx.ledger.shard_written(writer.path, source, writers.counts[(source, _subset)])
    dropped_by_source: dict[str, Counter] = {}
    parser_drops = ctx.dropped - dropped_before
    for reason, n in parser_drops.items():
        report.dropped[reason] += n
        report.records_in += n
        dropped_by_source.setdefault(ctx.source, Counter())[reason] += n
    for source in sorted(set(dropped_by_source) | {ctx.source}):  # a rerun resets the counts
        ctx.ledger.input_counts(ledger_name or name, source,
                                dropped=dict(dropped_by_source.get(source, {})))
