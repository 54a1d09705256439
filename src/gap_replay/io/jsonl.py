"""JSON-lines shards, plain or gzip/zstd compressed, read with quarantine and written atomically."""

from __future__ import annotations

import gzip
import os
from typing import IO, Any, Iterable, Iterator

import fsspec
import orjson
import zstandard
from isal import igzip

from gap_replay.document import Document, InvalidDocument
from gap_replay.io.lines import LongLine, TruncatedInput, iter_lines
from gap_replay.io.paths import atomic_write, filesystem
from gap_replay.io.quarantine import Quarantine

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json")


def parse_json_lines(lines: Iterable[tuple[int, bytes | LongLine]], quarantine: Quarantine, *,
                     file: str, source: str = "unknown") -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) for each well-formed line of `lines`; blank lines are skipped,
    invalid UTF-8, malformed JSON and lines over the size limit are quarantined with
    `file`:line. Shared by every reader of JSON lines, local shards or HTTP streams."""
    for lineno, line in lines:
        if isinstance(line, LongLine):
            quarantine.add(file=file, line=lineno, reason=line.reason, raw=line.head, source=source)
            continue
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)  # bytes: orjson checks the UTF-8 itself (no decoded copy)
        except orjson.JSONDecodeError as exc:
            try:
                line.decode("utf-8")
                reason = f"malformed JSON: {exc}"
            except UnicodeDecodeError as bad:
                reason = f"invalid UTF-8 at byte {bad.start}"
            quarantine.add(file=file, line=lineno, reason=reason, raw=line, source=source)
            continue
        yield lineno, value


def iter_records(path: str | os.PathLike, quarantine: Quarantine, source: str = "unknown", *,
                 max_line: int | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, JSON object) from a shard; every bad line goes to `quarantine`.

    Invalid UTF-8, malformed JSON, a non-object line, a line over `max_line` bytes, and a
    truncated or corrupt compressed stream are quarantined with file and line; every complete
    record before the damage is kept (gzip members and zstd frames are decoded one by one).
    """
    path = str(path)
    with fsspec.open(path, "rb") as raw:
        try:
            for lineno, obj in parse_json_lines(iter_lines(raw, path, max_line=max_line), quarantine,
                                                file=path, source=source):
                if not isinstance(obj, dict):
                    quarantine.add(file=path, line=lineno, reason="JSON line is not an object",
                                   raw=orjson.dumps(obj), source=source)
                    continue
                yield lineno, obj
        except TruncatedInput as exc:
            quarantine.add(file=path, line=exc.line, reason=f"truncated or corrupt: {exc.reason}",
                           raw=exc.partial, source=source)


def iter_documents(path: str | os.PathLike, quarantine: Quarantine, source: str = "unknown"
                   ) -> Iterator[Document]:
    """Yield Documents from a shard; records missing required fields are quarantined."""
    for lineno, obj in iter_records(path, quarantine, source):
        try:
            yield Document.from_dict(obj)
        except InvalidDocument as exc:
            quarantine.add(file=str(path), line=lineno, reason=f"invalid document: {exc}",
                           raw=orjson.dumps(obj), source=obj.get("source") or source)


def shard_key(root: str | os.PathLike, path: str | os.PathLike) -> str:
    """`papers/pmc/name` for `root/papers/pmc/name.jsonl.gz`: a shard's path below `root` (as
    `list_shards(root)` gives it) without its suffix, the name its tasks, markers and ledger row
    go by."""
    rel = str(path)[len(str(root).rstrip("/")) + 1:]
    for suffix in SHARD_SUFFIXES:
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def list_shards(directory: str | os.PathLike) -> list[str]:
    """All shard files below `directory`, sorted, so task order never depends on the filesystem."""
    fs, fs_path = filesystem(directory)
    if not fs.exists(fs_path):
        return []
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    found = [p for p in fs.find(fs_path) if p.endswith(SHARD_SUFFIXES) and ".tmp-" not in p]
    return sorted(prefix + p for p in found)


class ShardWriter:
    """Write one shard of JSON lines atomically; compression chosen by suffix.

    gzip headers carry no timestamp or file name, and zstd frames no dictionary id,
    so the same records always give the same bytes. Shards that are published (mix's shards/)
    use zlib at level 6. `fast=True` is for the shards written on the hot path, read back by the
    next step (`ingest`'s raw/, process's clean/ and segments, mix's work files): ISA-L's igzip
    (isal) at its level 1 compresses ~4x faster than zlib at level 1 (which was a fifth of
    `process` and half of `ingest` on papers at level 6) into a standard gzip of the same size.
    """

    def __init__(self, path: str | os.PathLike, fast: bool = False) -> None:
        self.path = str(path)
        self.fast = fast
        self.count = 0
        self._ctx = None
        self._raw: IO[bytes] | None = None
        self._out = None

    def __enter__(self) -> "ShardWriter":
        self._ctx = atomic_write(self.path, keep_identical=True)
        self._raw = self._ctx.__enter__()
        if self.path.endswith(".gz"):
            if self.fast:
                self._out = igzip.IGzipFile(filename="", fileobj=self._raw, mode="wb",
                                            compresslevel=1, mtime=0)
            else:
                self._out = gzip.GzipFile(filename="", fileobj=self._raw, mode="wb",
                                          compresslevel=6, mtime=0)
        elif self.path.endswith(".zst"):
            cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
            self._out = cctx.stream_writer(self._raw, closefd=False)
        else:
            self._out = self._raw
        return self

    def write(self, record: Document | dict | bytes) -> None:
        if isinstance(record, Document):
            line = record.to_json()
        elif isinstance(record, dict):
            line = orjson.dumps(record)
        else:
            line = record
        self._out.write(line + b"\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._out is not self._raw:
                self._out.close()
        finally:
            self._ctx.__exit__(exc_type, exc, tb)
