"""The one ingest driver: a source's raw Documents -> `OUT/raw/<source>/[<subset>/]*.jsonl.gz`.

Every family writes through it (`gap-replay ingest`, `ingest --format redpajama`, the PubMed
downloads: S2Dataset and MedlineBaseline via `run_ingest`, PmcCloud's batches via
`ingest_documents`), so all parse, mark, write, resume and count alike: `run_ingest` takes a
`Source` (sources/base.py) and runs discover -> fetch -> extract, one output shard per fetched
file (named after it), written atomically; a rerun skips inputs already recorded as done in
`OUT/state.sqlite`, and every input's shards, drops and quarantine go into the ledger. PubMed's
own rules it applies (retraction marks, full-text marks) touch only papers/abstracts documents.
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

from gap_replay.document import Document
from gap_replay.io import Quarantine, ShardWriter
from gap_replay.io.paths import remove_stale_temporaries
from gap_replay.sources.base import DROP_REASON, Source
from gap_replay.sources.pubmed.drop_marks import (
    FullTextIndex,
    fulltext_index_path,
    mark_fulltext_abstracts,
    mark_retraction,
)
from gap_replay.sources.pubmed.ingest import (
    ACROSS_FILES,
    FORMAT_SOURCE,
    FORMATS,
    Context,
    PubMedFiles,
)
from gap_replay.state import State

log = logging.getLogger(__name__)


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
            writer = ShardWriter(folder / f"{self.name}.jsonl.gz", fast=True).__enter__()
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
               source: Source | None = None, ctx: Context | None = None) -> IngestReport:
    """discover(`paths`) -> fetch -> extract into `OUT/raw/...`; quarantine under `OUT/quarantine/`.

    `source`: by default the local files of the PubMed format `fmt`; another family's files
    (RedPajamaFiles) or a remote source (acquire.py, `paths` then unused) go through the same
    writers, resume state and ledger. `ctx`: the Context a PubMed source was made with (joins,
    drop counts); by default a new one (`all_records`); closed at the end either way. Resume
    keys, shard and quarantine names come from the fetched local path; a fetch answering None
    failed (the source recorded it) and waits for the next run. Formats in ACROSS_FILES
    (MEDLINE) are fetched whole, then resolved across files."""
    if source is None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output / "raw")
    state = State(output / "state.sqlite")
    report = IngestReport()
    if ctx is None:
        ctx = Context(output, all_records=all_records,
                      source=source.source if source is not None else FORMAT_SOURCE[fmt])
    source = source if source is not None else PubMedFiles(fmt, ctx)
    quarantined = 0
    try:
        items = source.discover(paths)
        ctx.fulltext = FullTextIndex(fulltext_index_path(output))
        wrap = progress or (lambda it: it)

        def fetched(items: Iterable) -> Iterator[str]:
            for item in wrap(items):
                local = source.fetch(item)
                if local is not None:
                    yield str(local)

        def keep_quarantine(quarantine: Quarantine, name: str) -> None:
            """One quarantine file per input (or per joined batch), written before the input is
            marked done: a rerun that skips the input keeps its record of what was bad."""
            nonlocal quarantined
            if len(quarantine):
                quarantine.flush(output / "quarantine" / f"ingest-{fmt}-{name}.jsonl")
            quarantined += len(quarantine)
            for src, n in quarantine.by_source.items():
                ctx.ledger.input_counts(f"ingest-{fmt}-{name}", str(src), quarantined=n)

        if fmt in ACROSS_FILES:
            files = list(fetched(items))
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
            for path in fetched(items):
                key = _file_key(path)
                if not force and state.done(f"ingest:{fmt}", key) is not None:
                    report.skipped_files += 1
                    continue
                quarantine = Quarantine()
                seen = report.records_in
                _ingest_stream(source.extract(path, quarantine), _shard_name(path), output,
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
