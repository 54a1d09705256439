"""Lines of a possibly compressed byte stream, with memory bounded by limits, not by the input.

The one line reader of the project: local shards and ingested files (io.jsonl), S2 dataset
files and RedPajama data files over HTTP (io.stream) all go through `iter_lines`.

- gzip (multi-member) and zstd (multi-frame) are decoded incrementally, so a file that ends
  inside a member, or is corrupt, yields every complete line before the damage and then raises
  `TruncatedInput` saying where it broke.
- Output per decoding step is capped (`DECODE_STEP`), so a decompression bomb is read a few
  megabytes at a time; the total decoded size may be capped too (`max_bytes`).
- A line longer than `max_line` is not accumulated: its first `LONG_LINE_HEAD` bytes are kept
  and the rest is skipped up to the next newline; it is yielded as a `LongLine` for the caller
  to quarantine. Pieces of a long-but-allowed line are joined once, never re-copied per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator

import zstandard
from isal import isal_zlib

from gap_replay import limits

CHUNK = 1 << 16
DECODE_STEP = 4 << 20          # at most this much decompressed output per step (gzip)
ZSTD_FEED = 1 << 10            # zstd input fed per step (its output cannot be capped directly)
LONG_LINE_HEAD = 8 << 10       # kept of a line over the limit
# The line and file limits come from gap_replay.limits (a run config's `limits:`).


class TruncatedInput(OSError):
    """The data ended before its compressed stream or its declared length did."""

    def __init__(self, reason: str, partial: bytes = b"", line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
        self.line = line  # the first line that could not be read whole


@dataclass(frozen=True)
class LongLine:
    """Stands in for a line over the limit: its start and its full size, never its bytes."""

    head: bytes
    size: int
    limit: int

    @property
    def reason(self) -> str:
        return f"line too long: {self.size:,} bytes (limit {self.limit:,}; raise limits.max_line_bytes)"


class _Plain:
    eof = True

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data


class _MultiFrame:
    """Incremental gzip (multi-member) or zstd (multi-frame) decoding that knows when a
    member is left unfinished, which stream readers silently ignore."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started = False
        self._new()

    def _new(self) -> None:
        # ISA-L's inflate (isal): the zlib API, ~3x faster than zlib's on every gzip this reads
        self.dec = (isal_zlib.decompressobj(wbits=47) if self.kind == "gz"
                    else zstandard.ZstdDecompressor().decompressobj())

    @property
    def eof(self) -> bool:
        return not self.started or self.dec.eof

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of `data`, each bounded (see DECODE_STEP, ZSTD_FEED)."""
        while data:
            self.started = True
            if self.kind == "gz":
                yield self.dec.decompress(data, DECODE_STEP)
                data = self.dec.unconsumed_tail
            else:
                yield self.dec.decompress(data[:ZSTD_FEED])
                data = data[ZSTD_FEED:] if not self.dec.eof else self.dec.unused_data + data[ZSTD_FEED:]
            if self.dec.eof:
                data = self.dec.unused_data + data if self.kind == "gz" else data
                self._new()
                self.started = False


def decoder_for(name: str, compression: str | None = None):
    if compression:
        return _MultiFrame(compression)
    base = name.split("?", 1)[0].split("#", 1)[0]
    if base.endswith(".gz"):
        return _MultiFrame("gz")
    if base.endswith(".zst") or base.endswith(".zstd"):
        return _MultiFrame("zst")
    return _Plain()


class _Splitter:
    """Splits decoded pieces into lines without re-copying a growing buffer."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.parts: list[bytes] = []
        self.size = 0
        self.long_head: bytes | None = None

    def push(self, data: bytes) -> Iterator[bytes | LongLine]:
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            yield self._finish(data[start:nl])
            start = nl + 1
        if start < len(data):
            self._hold(data[start:] if start else data)

    def _hold(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.long_head is not None:
            return
        self.parts.append(piece)
        if self.size > self.max_line:
            self.long_head = b"".join(self.parts)[:LONG_LINE_HEAD]
            self.parts = []

    def _finish(self, piece: bytes) -> bytes | LongLine:
        size = self.size + len(piece)
        if self.long_head is not None or size > self.max_line:
            head = self.long_head if self.long_head is not None else (b"".join(self.parts) + piece)[:LONG_LINE_HEAD]
            line: bytes | LongLine = LongLine(head, size, self.max_line)
        else:
            line = b"".join(self.parts) + piece if self.parts else piece
        self.parts, self.size, self.long_head = [], 0, None
        return line

    def tail(self) -> bytes | LongLine | None:
        if not self.size:
            return None
        return self._finish(b"")

    def partial(self) -> bytes:
        return self.long_head if self.long_head is not None else b"".join(self.parts)[:LONG_LINE_HEAD]


def iter_lines(raw: BinaryIO, name: str, stats: dict | None = None, compression: str | None = None,
               *, max_line: int | None = None, max_bytes: int | None = None
               ) -> Iterator[tuple[int, bytes | LongLine]]:
    """(line number from 1, line bytes without the newline, or a LongLine) of a stream.

    Raises TruncatedInput after the last complete line when the compressed data is corrupt,
    ends inside a member/frame, or decodes to more than `max_bytes`; `partial` holds the start
    of the incomplete tail. `stats`, when given, counts bytes "decoded" (decompressed so far)
    and "yielded" (lines handed out, with newlines): the size estimate needs both because
    decoding runs ahead of the lines consumed. `compression` ("gz", "zst") overrides the suffix
    of `name` for files whose URL does not say it.
    """
    max_line = max_line or limits.current().max_line_bytes
    max_bytes = max_bytes or limits.current().max_file_bytes
    stats = stats if stats is not None else {}
    stats.setdefault("decoded", 0)
    stats.setdefault("yielded", 0)
    decoder = decoder_for(name, compression)
    split = _Splitter(max_line)
    lineno = 0
    while True:
        chunk = raw.read(CHUNK)
        if not chunk:
            break
        try:
            for out in decoder.feed(chunk):
                stats["decoded"] += len(out)
                if stats["decoded"] > max_bytes:
                    raise TruncatedInput(f"decompressed size exceeds {max_bytes:,} bytes (raise "
                                         f"limits.max_file_bytes) after line {lineno}",
                                         split.partial(), lineno + 1)
                for line in split.push(out):
                    lineno += 1
                    stats["yielded"] += (line.size if isinstance(line, LongLine) else len(line)) + 1
                    yield lineno, line
        except (isal_zlib.error, zstandard.ZstdError) as exc:
            raise TruncatedInput(f"corrupt compressed data after line {lineno}: {exc}",
                                 split.partial(), lineno + 1) from exc
    if not decoder.eof:
        raise TruncatedInput(f"compressed stream ends early (truncated file) after line {lineno}",
                             split.partial(), lineno + 1)
    last = split.tail()
    if last is not None:
        yield lineno + 1, last
