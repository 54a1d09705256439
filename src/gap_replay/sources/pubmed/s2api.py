"""Semantic Scholar Datasets API client: release listings, diffs, filtered streaming downloads.

* `GET /datasets/v1/release/{release}/dataset/{name}` answers `{"files": [pre-signed URLs]}`;
  `GET /datasets/v1/diffs/{start}/to/{end}/{name}` answers `{"diffs": [{"update_files": [...],
  "delete_files": [...]}]}`. The key goes in the `x-api-key` header and is never logged.
* Each gzipped JSON-lines file is streamed through a gzip decompressor and only the rows that
  `keep(row)` accepts are written, so disk use is the PubMed share, not all of S2ORC.
* A dropped connection resumes with an HTTP Range request from the compressed offset already
  consumed (the decompressor state is kept); a pre-signed link that expired (403/400) makes the
  client list the dataset again and continue with the fresh link for the same file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import orjson
import requests
import urllib3

from gap_replay.http import FetchError, PoliteClient
from gap_replay.io import Quarantine, ShardWriter

log = logging.getLogger(__name__)

API_ROOT = "https://api.semanticscholar.org"
DATASETS = ("papers", "abstracts", "s2orc")
EXPIRED_STATUSES = (400, 403)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class S2Error(RuntimeError):
    pass


def load_api_key(api_key_file: str | os.PathLike | None = None) -> str | None:
    """`S2_API_KEY` from the environment, else the key file: plain text or `{"api_key": ...}`."""
    key = os.environ.get("S2_API_KEY", "").strip()
    if key:
        return key
    if api_key_file is None:
        return None
    text = Path(api_key_file).read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise S2Error(f"{api_key_file}: not valid JSON ({exc.msg})") from None
        key = str(data.get("api_key") or "").strip()
        if not key:
            raise S2Error(f"{api_key_file}: no 'api_key' field")
        return key
    return text.splitlines()[0].strip() if text else None


class S2Datasets:
    """The datasets endpoints of one S2 API root (rewritten by the client's base_url)."""

    def __init__(self, client: PoliteClient, api_key: str | None) -> None:
        self.client = client
        self._headers = {"x-api-key": api_key} if api_key else {}

    def _get_json(self, path: str):
        url = f"{API_ROOT}{path}"
        try:
            return self.client.get_json(url, headers=self._headers, cache=False)
        except FetchError as exc:
            if exc.status in (401, 403):
                raise S2Error(f"{url}: {exc.reason} — is the API key valid? (set S2_API_KEY or "
                              "--api-key-file)") from None
            raise

    def latest_release(self) -> str:
        answer = self._get_json("/datasets/v1/release/latest")
        release = answer.get("release_id") if isinstance(answer, dict) else None
        if not release:
            raise S2Error("release/latest answered without release_id")
        return str(release)

    def list_files(self, dataset: str, release: str = "latest") -> list[str]:
        if dataset not in DATASETS:
            raise S2Error(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
        answer = self._get_json(f"/datasets/v1/release/{release}/dataset/{dataset}")
        files = answer.get("files") if isinstance(answer, dict) else None
        if not isinstance(files, list):
            raise S2Error(f"dataset listing for {dataset}@{release} has no 'files' list")
        return [str(f) for f in files]

    def diffs(self, dataset: str, start: str, end: str = "latest") -> list[dict]:
        answer = self._get_json(f"/datasets/v1/diffs/{start}/to/{end}/{dataset}")
        diffs = answer.get("diffs") if isinstance(answer, dict) else None
        if not isinstance(diffs, list):
            raise S2Error(f"diffs answer for {dataset} {start}→{end} has no 'diffs' list")
        return diffs


def file_key(url: str) -> str:
    """A pre-signed URL without its signature: stable across re-listings."""
    return urlsplit(url).path


def stream_filtered(client: PoliteClient, url: str, dest: str | os.PathLike,
                    keep: Callable[[dict], bool], quarantine: Quarantine, *,
                    relist: Callable[[], str] | None = None, max_relists: int = 2,
                    source: str = "papers", chunk_size: int = 1 << 16) -> dict:
    """Stream one gzipped JSON-lines file from `url`, writing the rows `keep` accepts to
    `dest` (a .jsonl.gz shard, atomic). Returns counts {rows, kept, bytes}."""
    state = {"consumed": 0, "total": None, "relists": 0, "attempts": 0}
    dec = zlib.decompressobj(wbits=31)
    pending = b""
    counts = {"rows": 0, "kept": 0, "bytes": 0}
    name = file_key(url)

    def handle_lines(data: bytes, writer: ShardWriter) -> None:
        nonlocal pending
        pending += data
        if b"\n" not in pending:
            return
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _one_line(line, writer)

    def _one_line(line: bytes, writer: ShardWriter) -> None:
        if not line.strip():
            return
        counts["rows"] += 1
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            quarantine.add(file=name, line=counts["rows"], reason=f"malformed JSON: {exc}",
                           raw=line[:4096], source=source)
            return
        if isinstance(row, dict) and keep(row):
            writer.write(line.rstrip(b"\r"))
            counts["kept"] += 1

    with ShardWriter(dest) as writer:
        while True:
            consumed = state["consumed"]
            headers = {"Range": f"bytes={consumed}-"} if consumed else None
            try:
                resp = client.get(url, headers=headers, cache=False, stream=True,
                                  ok_statuses=(200, 206))
            except FetchError as exc:
                if exc.status in EXPIRED_STATUSES and relist and state["relists"] < max_relists:
                    state["relists"] += 1
                    log.warning("file link expired (HTTP %s); listing the dataset again", exc.status)
                    url = relist()
                    continue
                raise
            try:
                with resp:
                    skip = 0
                    if resp.status_code == 206:
                        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                        if m and m.group(3) != "*":
                            state["total"] = int(m.group(3))
                        if m and int(m.group(1)) != consumed:
                            skip = consumed - int(m.group(1))
                    else:
                        skip = consumed  # server ignored Range: drop what we already have
                        length = resp.headers.get("Content-Length")
                        state["total"] = int(length) if length and length.isdigit() else None
                    resp.raw.enforce_content_length = False
                    for chunk in resp.iter_content(chunk_size):
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                            if not chunk:
                                continue
                        state["consumed"] += len(chunk)
                        counts["bytes"] += len(chunk)
                        data = dec.decompress(chunk)
                        while dec.eof and dec.unused_data:  # multi-member gzip
                            rest = dec.unused_data
                            dec = zlib.decompressobj(wbits=31)
                            data += dec.decompress(rest)
                        handle_lines(data, writer)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.ProtocolError, requests.Timeout) as exc:
                _count_attempt(client, state, url, f"{type(exc).__name__}: {exc}")
                log.warning("download of %s interrupted at byte %d; resuming", name,
                            state["consumed"])
                continue
            except zlib.error as exc:
                raise FetchError(url, f"corrupt gzip stream at byte {state['consumed']}: {exc}") from exc
            total = state["total"]
            if total is not None and state["consumed"] < total:
                _count_attempt(client, state, url, f"short body: {state['consumed']} of {total} bytes")
                log.warning("download of %s cut at byte %d of %d; resuming", name,
                            state["consumed"], total)
                continue
            if not dec.eof:
                raise FetchError(url, f"gzip stream ended early after {state['consumed']} bytes")
            if pending.strip():
                _one_line(pending, writer)
                pending = b""
            break
    return counts


def _count_attempt(client: PoliteClient, state: dict, url: str, reason: str) -> None:
    state["attempts"] += 1
    if state["attempts"] > client.retry.max_retries:
        raise FetchError(url, f"download failed after {state['attempts']} attempts: {reason}")
    client.sleep(min(client.retry.max_wait, client.retry.backoff * 2 ** (state["attempts"] - 1)))
