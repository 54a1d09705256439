"""JSON-lines shards, plain or gzip/zstd compressed, read with quarantine and written atomically."""

from __future__ import annotations

import gzip
import os
import zlib
from typing import IO, Any, Iterable, Iterator

import fsspec
import orjson
import zstandard

from gap_replay.document import Document, InvalidDocument
from gap_replay.io.paths import atomic_write, filesystem
from gap_replay.io.quarantine import Quarantine

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json")


def _open_decompressed(raw: IO[bytes], path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if path.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return raw


def _lines(stream: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Lines of a (decompressed) byte stream, read in small chunks so that the records before a
    truncation are still yielded when the decompressor fails."""
    pending = b""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def parse_json_lines(lines: Iterable[tuple[int, bytes]], quarantine: Quarantine, *, file: str,
                     source: str = "unknown") -> Iterator[tuple[int, Any]]:
    """(line number, JSON value) for each well-formed line of `lines`; blank lines are skipped,
    invalid UTF-8 and malformed JSON are quarantined with `file`:line. Shared by every reader of
    JSON lines, local shards or HTTP streams."""
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            quarantine.add(file=file, line=lineno, reason=f"invalid UTF-8 at byte {exc.start}",
                           raw=line, source=source)
            continue
        try:
            yield lineno, orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            quarantine.add(file=file, line=lineno, reason=f"malformed JSON: {exc}", raw=line,
                           source=source)


def iter_records(path: str | os.PathLike, quarantine: Quarantine, source: str = "unknown"
                 ) -> Iterator[tuple[int, dict]]:
    """Yield (line number, JSON object) from a shard; every bad line goes to `quarantine`.

    Invalid UTF-8, malformed JSON, a non-object line, and a truncated or corrupt compressed
    stream are quarantined with file and line; the records before the damage are kept.
    """
    path = str(path)
    read = [0]  # lines read so far, bad ones included: where a truncation is reported

    def numbered(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
        for read[0], line in enumerate(_lines(stream), start=1):
            yield read[0], line

    with fsspec.open(path, "rb") as raw:
        try:
            for lineno, obj in parse_json_lines(numbered(_open_decompressed(raw, path)), quarantine,
                                                file=path, source=source):
                if not isinstance(obj, dict):
                    quarantine.add(file=path, line=lineno, reason="JSON line is not an object",
                                   raw=orjson.dumps(obj), source=source)
                    continue
                yield lineno, obj
        except (EOFError, OSError, zlib.error, zstandard.ZstdError) as exc:
            quarantine.add(file=path, line=read[0] + 1,
                           reason=f"truncated or corrupt compressed stream after line {read[0]}: {exc}",
                           source=source)


def iter_documents(path: str | os.PathLike, quarantine: Quarantine, source: str = "unknown"
                   ) -> Iterator[Document]:
    """Yield Documents from a shard; records missing required fields are quarantined."""
    for lineno, obj in iter_records(path, quarantine, source):
        try:
            yield Document.from_dict(obj)
        except InvalidDocument as exc:
            quarantine.add(file=str(path), line=lineno, reason=f"invalid document: {exc}",
                           raw=orjson.dumps(obj), source=obj.get("source") or source)


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
    so the same records always give the same bytes.
    """

    def __init__(self, path: str | os.PathLike, compresslevel: int = 6) -> None:
        self.path = str(path)
        self.compresslevel = compresslevel
        self.count = 0
        self._ctx = None
        self._raw: IO[bytes] | None = None
        self._out = None

    def __enter__(self) -> "ShardWriter":
        self._ctx = atomic_write(self.path, keep_identical=True)
        self._raw = self._ctx.__enter__()
        if self.path.endswith(".gz"):
            self._out = gzip.GzipFile(filename="", fileobj=self._raw, mode="wb",
                                      compresslevel=self.compresslevel, mtime=0)
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
