"""One data file -> its sampled documents in a part file: the unit of parallel work.

A task keeps document (file, line) when unit_interval(seed, "replay-doc", file key, line) is
below the subset's document rate. It writes the kept documents to a part file and a small
stats file, both atomically; a rerun finds the stats file and skips the download.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson

from gap_replay.document import Document
from gap_replay.hashing import unit_interval
from gap_replay.http import FetchError, PoliteClient, RetryPolicy
from gap_replay.io import Quarantine, ShardWriter, atomic_write
from gap_replay.sources.replay import records
from gap_replay.io.stream import HTTPByteStream
from gap_replay.sources.replay.tokens import estimate_tokens
from gap_replay.sources.replay.urllists import DataFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HTTPSettings:
    base_url: str | None = None
    rate: float = 1.0
    max_retries: int = 4
    backoff: float = 0.5
    max_resumes: int = 5
    respect_robots: bool = True


_CLIENTS: dict[HTTPSettings, PoliteClient] = {}


def client_for(http: HTTPSettings) -> PoliteClient:
    """One client per worker process and settings (its rate limiter and robots cache are shared)."""
    if http not in _CLIENTS:
        _CLIENTS[http] = PoliteClient(base_url=http.base_url, rate=http.rate,
                                      retry=RetryPolicy(max_retries=http.max_retries,
                                                        backoff=http.backoff),
                                      respect_robots=http.respect_robots)
    return _CLIENTS[http]


def file_unit(seed: int, key: str) -> float:
    return unit_interval(seed, "replay-file", key)


def doc_unit(seed: int, key: str, line: int) -> float:
    return unit_interval(seed, "replay-doc", key, str(line))


@contextlib.contextmanager
def open_documents(file: DataFile, quarantine: Quarantine, http: HTTPSettings,
                   text_field: str = "text", chunk_size: int | None = None,
                   stats: dict | None = None):
    """Documents of one data file (HTTP or fsspec raw file, or parquet); yields (iterator, stream).

    `stream.position` (raw bytes read), `stream.length` and `stats` (see stream.iter_lines)
    serve the size estimate; parquet files give None for the stream.
    """
    if file.kind == "parquet":
        from gap_replay.sources.replay.hub import iter_parquet_documents

        yield iter_parquet_documents(file, quarantine, text_field), None
        return
    if file.kind == "fsspec":
        stream = FileByteStream(file.url)
    else:
        stream = HTTPByteStream(client_for(http), file.url, max_resumes=http.max_resumes)
    raw = _Chunked(stream, chunk_size) if chunk_size else stream
    try:
        yield records.iter_documents(raw, subset=file.subset, key=file.key, file_url=file.url,
                                     quarantine=quarantine, text_field=text_field,
                                     stats=stats), stream
    finally:
        stream.close()


class FileByteStream:
    """A local or fsspec file with the `position`/`length` the probe's size estimate reads."""

    def __init__(self, url: str) -> None:
        import fsspec

        self._fh = fsspec.open(url, "rb").open()
        self.position = 0
        try:
            self.length: int | None = self._fh.size
        except AttributeError:
            self.length = None
        if self.length is None:
            fs, path = fsspec.core.url_to_fs(url)
            self.length = fs.size(path)

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.position += len(data)
        return data

    def close(self) -> None:
        self._fh.close()


class _Chunked:
    """Caps read sizes so `position` tracks the bytes really needed (used by the probe)."""

    def __init__(self, stream: HTTPByteStream, size: int) -> None:
        self.stream, self.size = stream, size

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(self.size)


@dataclass(frozen=True)
class FileTask:
    file: DataFile
    seed: int
    rate: float
    ratio: float
    work_dir: str
    quarantine_dir: str
    http: HTTPSettings
    text_field: str = "text"
    # Stop reading once this many estimated tokens were kept: the merge never needs more from
    # this file than the subset's remaining budget (a 100 GB single-file subset is not read to
    # the end for a small budget). The kept documents are a prefix of the uncapped ones.
    cap_tokens: float = float("inf")

    @property
    def name(self) -> str:
        digest = hashlib.sha1(orjson.dumps([self.file.key, self.seed, repr(self.rate),
                                            repr(self.ratio)])).hexdigest()[:16]
        stem = Path(self.file.key).name.split(".")[0][:40]
        return f"{stem}-{digest}"

    @property
    def part_path(self) -> Path:
        return Path(self.work_dir) / self.file.subset / f"{self.name}.jsonl.gz"

    @property
    def stats_path(self) -> Path:
        return Path(self.work_dir) / self.file.subset / f"{self.name}.stats.json"

    @property
    def quarantine_path(self) -> Path:
        return Path(self.quarantine_dir) / self.file.subset / f"{self.name}.jsonl"


def sample_file(task: FileTask) -> dict:
    """Stream one file, keep the documents chosen by hash, write them; return counts."""
    if task.stats_path.is_file() and task.part_path.is_file():
        cached = orjson.loads(task.stats_path.read_bytes())
        if not cached.get("stopped_early") or cached["kept_tokens"] >= task.cap_tokens:
            return cached  # complete, or stopped at a cap at least as large as this one
    quarantine = Quarantine()
    seen = kept = 0
    kept_tokens = 0.0
    stopped_early = False
    task.part_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with ShardWriter(task.part_path, fast=True) as writer, \
                open_documents(task.file, quarantine, task.http, task.text_field) as (docs, _):
            for doc in docs:
                seen += 1
                if doc_unit(task.seed, task.file.key, doc.meta["line"]) < task.rate:
                    writer.write(doc)
                    kept += 1
                    kept_tokens += estimate_tokens(doc.text, task.ratio)
                    if kept_tokens >= task.cap_tokens:
                        stopped_early = True
                        break
    except FetchError as exc:  # nothing recorded: a rerun fetches this file again
        log.error("%s: %s", task.file.url, exc.reason)
        return {"file": task.file.url, "key": task.file.key, "error": exc.reason}
    if len(quarantine):
        task.quarantine_path.parent.mkdir(parents=True, exist_ok=True)
        quarantine.flush(task.quarantine_path)
        log.warning("%s: %d bad records quarantined in %s", task.file.url, len(quarantine),
                    task.quarantine_path)
    stats = {"file": task.file.url, "key": task.file.key, "documents": seen, "kept": kept,
             "kept_tokens": kept_tokens, "quarantined": len(quarantine),
             "stopped_early": stopped_early,
             "part": str(task.part_path)}
    with atomic_write(task.stats_path) as fh:
        fh.write(orjson.dumps(stats, option=orjson.OPT_SORT_KEYS))
    return stats


def iter_part(path: str | Path) -> Iterator[Document]:
    """Documents of a part file written by `sample_file` (our own well-formed output)."""
    from gap_replay.io import iter_documents

    quarantine = Quarantine()
    yield from iter_documents(path, quarantine, source="replay")
    if len(quarantine):
        raise RuntimeError(f"part file {path} is damaged ({len(quarantine)} bad lines); "
                           "delete it and rerun")
