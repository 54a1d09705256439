"""Bytes of a remote data file with resume, and its lines decompressed by suffix.

Shared by every source that streams big files instead of storing them (RedPajama data files,
S2 dataset files filtered to PubMed on the fly). `HTTPByteStream` reads a response body through
the PoliteClient; when the connection drops or the body ends short of Content-Length it
re-requests the rest with `Range: bytes=N-` (bounded resumes, with the client's backoff), and a
pre-signed link that has expired (HTTP 400/403) is replaced through a `relist` callback, so a
100 GB file never restarts from zero. `iter_lines` decompresses gzip/zstd with
incremental decoders so a file that *itself* ends early (a truncated upload) is detected: the
complete lines before the damage are yielded, then `TruncatedInput` says where it broke.
"""

from __future__ import annotations

import logging
import re
import zlib
from typing import BinaryIO, Callable, Iterator

import requests
import urllib3
import zstandard

from gap_replay.http import FetchError, PoliteClient

log = logging.getLogger(__name__)

CHUNK = 1 << 16
EXPIRED_STATUSES = (400, 403)  # a pre-signed link past its lifetime
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class TruncatedInput(OSError):
    """The data ended before its compressed stream or its declared length did."""

    def __init__(self, reason: str, partial: bytes = b"", line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
        self.line = line  # the first line that could not be read whole


class HTTPByteStream:
    """A read()-able body of `url` that resumes with HTTP Range after a dropped connection.

    `position` counts raw (still compressed) bytes delivered; `length` is the full size when
    the server declared it. Raises FetchError after `max_resumes` resumes (a network failure
    is retried by a rerun; only damage inside the file itself is quarantined).
    """

    def __init__(self, client: PoliteClient, url: str, max_resumes: int = 5, *,
                 relist: Callable[[], str] | None = None, max_relists: int = 2) -> None:
        self.client = client
        self.url = url
        self.max_resumes = max_resumes
        self.relist = relist
        self.max_relists = max_relists
        self.relists = 0
        self.position = 0
        self.length: int | None = None
        self.resumes = 0
        self._resp: requests.Response | None = None
        self._open()

    def _open(self) -> None:
        # identity: byte offsets must be those of the file (for Range), and compression is
        # chosen by the file's suffix, never by an on-the-fly Content-Encoding
        headers = {"Accept-Encoding": "identity"}
        if self.position:
            headers["Range"] = f"bytes={self.position}-"
        while True:
            try:
                resp = self.client.get(self.url, headers=headers, cache=False, stream=True,
                                       ok_statuses=(200, 206))
                break
            except FetchError as exc:
                if exc.status not in EXPIRED_STATUSES or self.relist is None \
                        or self.relists >= self.max_relists:
                    raise
                self.relists += 1
                log.warning("file link expired (HTTP %s); listing again", exc.status)
                self.url = self.relist()
        resp.raw.decode_content = False  # decompression is chosen by file suffix, not headers
        resp.raw.enforce_content_length = False  # a short body is detected and resumed below
        if resp.status_code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if match and match.group(3) != "*":
                self.length = int(match.group(3))
        else:
            declared = resp.headers.get("Content-Length")
            self.length = int(declared) if declared and declared.isdigit() else None
            skip = self.position  # the server ignored Range: drop what we already have
            while skip > 0:
                got = resp.raw.read(min(skip, CHUNK))
                if not got:
                    break
                skip -= len(got)
        self._resp = resp

    def read(self, size: int = CHUNK) -> bytes:
        while True:
            try:
                data = self._resp.raw.read(size) if self._resp is not None else b""
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                self._resume(f"{type(exc).__name__}: {exc}")
                continue
            if data:
                self.position += len(data)
                return data
            if self.length is not None and self.position < self.length:
                self._resume(f"body ended at byte {self.position} of {self.length}")
                continue
            return b""

    def _resume(self, reason: str) -> None:
        self.close()
        self.resumes += 1
        if self.resumes > self.max_resumes:
            raise FetchError(self.url, f"connection lost at byte {self.position} after "
                                       f"{self.max_resumes} resumes: {reason}")
        log.warning("%s: %s; resuming at byte %d", self.url, reason, self.position)
        retry = self.client.retry
        self.client.sleep(min(retry.max_wait, retry.backoff * 2 ** (self.resumes - 1)))
        self._open()

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def __enter__(self) -> "HTTPByteStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Plain:
    eof = True

    def feed(self, data: bytes) -> bytes:
        return data


class _MultiFrame:
    """Incremental gzip (multi-member) or zstd (multi-frame) decoding that knows when a
    member is left unfinished, which stream readers silently ignore."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started = False
        self._new()

    def _new(self) -> None:
        self.dec = (zlib.decompressobj(wbits=47) if self.kind == "gz"
                    else zstandard.ZstdDecompressor().decompressobj())

    @property
    def eof(self) -> bool:
        return not self.started or self.dec.eof

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self.started = True
            out.append(self.dec.decompress(data))
            if not self.dec.eof:
                break
            data = self.dec.unused_data
            self._new()
            self.started = False
        return b"".join(out)


def decoder_for(name: str):
    base = name.split("?", 1)[0].split("#", 1)[0]
    if base.endswith(".gz"):
        return _MultiFrame("gz")
    if base.endswith(".zst") or base.endswith(".zstd"):
        return _MultiFrame("zst")
    return _Plain()


def iter_lines(raw: BinaryIO, name: str, stats: dict | None = None, compression: str | None = None
               ) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line bytes without the newline) of a possibly compressed stream.

    Raises TruncatedInput after the last complete line when the compressed data is corrupt or
    ends inside a member/frame; `partial` holds the incomplete tail. `stats`, when given, counts
    bytes "decoded" (decompressed so far) and "yielded" (lines handed out, with newlines): the
    size estimate needs both because decoding runs ahead of the lines consumed. `compression`
    ("gz", "zst") overrides the suffix of `name` for files whose URL does not say it.
    """
    stats = stats if stats is not None else {}
    stats.setdefault("decoded", 0)
    stats.setdefault("yielded", 0)
    decoder = _MultiFrame(compression) if compression else decoder_for(name)
    pending = b""
    lineno = 0
    while True:
        chunk = raw.read(CHUNK)
        if not chunk:
            break
        try:
            out = decoder.feed(chunk)
            stats["decoded"] += len(out)
            pending += out
        except (zlib.error, zstandard.ZstdError) as exc:
            for line in pending.split(b"\n")[:-1]:
                lineno += 1
                yield lineno, line
            raise TruncatedInput(f"corrupt compressed data after line {lineno}: {exc}",
                                 pending.rsplit(b"\n", 1)[-1], lineno + 1) from exc
        *complete, pending = pending.split(b"\n")
        for line in complete:
            lineno += 1
            stats["yielded"] += len(line) + 1
            yield lineno, line
    if not decoder.eof:
        raise TruncatedInput(f"compressed stream ends early (truncated file) after line {lineno}",
                             pending, lineno + 1)
    if pending:
        yield lineno + 1, pending
