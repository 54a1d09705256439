"""Bytes of a remote data file with resume, and its lines decompressed by suffix.

Shared by every source that streams big files instead of storing them (RedPajama data files,
S2 dataset files filtered to PubMed on the fly). `HTTPByteStream` reads a response body through
the PoliteClient; when the connection drops or the body ends short of Content-Length it
re-requests the rest with `Range: bytes=N-` (bounded resumes, with the client's backoff), and a
pre-signed link that has expired (HTTP 400/403) is replaced through a `relist` callback, so a
100 GB file never restarts from zero. Its lines are read with `gap_replay.io.lines.iter_lines`,
which also detects a file that *itself* ends early.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

import requests
import urllib3

from gap_replay.http import FetchError, PoliteClient
from gap_replay.io.lines import CHUNK

log = logging.getLogger(__name__)

EXPIRED_STATUSES = (400, 403)  # a pre-signed link past its lifetime
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_TOTAL = re.compile(r"bytes\s+\*/(\d+)")


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
                                       ok_statuses=(200, 206, 416) if self.position else (200, 206))
                break
            except FetchError as exc:
                if exc.status not in EXPIRED_STATUSES or self.relist is None \
                        or self.relists >= self.max_relists:
                    raise
                self.relists += 1
                log.warning("file link expired (HTTP %s); listing again", exc.status)
                self.url = self.relist()
        if resp.status_code == 416:  # nothing after `position`: the file is shorter than declared
            match = _CONTENT_RANGE_TOTAL.match(resp.headers.get("Content-Range", ""))
            log.warning("%s: the server has no bytes after %d (file size %s, declared %s)", self.url,
                        self.position, match.group(1) if match else "unknown", self.length)
            resp.close()
            self.length = self.position  # read() now ends; a compressed file reports it is cut
            return
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
