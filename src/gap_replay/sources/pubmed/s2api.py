"""Semantic Scholar Datasets API client: release listings, diffs, filtered streaming downloads.

* `GET /datasets/v1/release/{release}` answers `{"release_id", "README", "datasets": [{"name",
  "description", "README"}]}`: the names a release has (the full text is `s2orc_v2` on recent
  releases, `s2orc` on old ones, both on some 2025 ones; see docs/pubmed.md). A requested name
  is checked against that list.
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
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import orjson

from gap_replay.http import FetchError, PoliteClient
from gap_replay.io import Quarantine, ShardWriter
from gap_replay.io.lines import LongLine, TruncatedInput, iter_lines
from gap_replay.io.stream import HTTPByteStream

log = logging.getLogger(__name__)

API_ROOT = "https://api.semanticscholar.org"
# The full-text dataset's names, newest first: a release lists one of them.
FULLTEXT_NAMES = ("s2orc_v2", "s2orc")


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

    def release_datasets(self, release: str = "latest") -> list[str]:
        """The dataset names `release` lists (`latest` answers like a release)."""
        answer = self._get_json(f"/datasets/v1/release/{release}")
        datasets = answer.get("datasets") if isinstance(answer, dict) else None
        if not isinstance(datasets, list):
            raise S2Error(f"release {release} answered without a 'datasets' list")
        return [str(d.get("name") if isinstance(d, dict) else d) for d in datasets]

    def resolve_dataset(self, requested: str, release: str = "latest") -> str:
        """The name to download for `requested` in `release`: itself when listed; for the full
        text, the other name of it (`s2orc` ↔ `s2orc_v2`) when only that one is listed; else an
        S2Error naming what the release has."""
        available = self.release_datasets(release)
        name = pick_dataset(requested, available)
        if name is None:
            raise S2Error(f"release {release} has no dataset {requested!r}; it lists: "
                          f"{', '.join(sorted(available)) or '(none)'}")
        if name != requested:
            log.info("release %s lists %r, not %r: downloading %r", release, name, requested, name)
        return name

    def list_files(self, dataset: str, release: str = "latest") -> list[str]:
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


def pick_dataset(requested: str, available: list[str]) -> str | None:
    """`requested` if listed; the full text under the name the release uses (`fulltext`,
    `s2orc` or `s2orc_v2` → whichever of `s2orc_v2`, `s2orc` is listed, newest first)."""
    if requested in available:
        return requested
    if requested in FULLTEXT_NAMES + ("fulltext",):
        return next((n for n in FULLTEXT_NAMES if n in available), None)
    return None


def file_key(url: str) -> str:
    """A pre-signed URL without its signature: stable across re-listings."""
    return urlsplit(url).path


def stream_filtered(client: PoliteClient, url: str, dest: str | os.PathLike,
                    keep: Callable[[dict], bool], quarantine: Quarantine, *,
                    relist: Callable[[], str] | None = None, max_relists: int = 2,
                    source: str = "papers") -> dict:
    """Stream one gzipped JSON-lines file from `url`, writing the rows `keep` accepts to
    `dest` (a .jsonl.gz shard, atomic). Returns counts {rows, kept, bytes}.

    The shared HTTPByteStream resumes a dropped connection with Range (bounded by the client's
    retries) and re-lists an expired link; a file that itself ends early is an error, so a
    rerun fetches it again rather than keeping a silently short file.
    """
    counts = {"rows": 0, "kept": 0, "bytes": 0}
    name = file_key(url)
    with HTTPByteStream(client, url, client.retry.max_retries, relist=relist,
                        max_relists=max_relists) as raw, ShardWriter(dest) as writer:
        try:
            for _lineno, line in iter_lines(raw, name, compression="gz"):
                if isinstance(line, LongLine):
                    counts["rows"] += 1
                    quarantine.add(file=name, line=counts["rows"], reason=line.reason, raw=line.head,
                                   source=source)
                    continue
                if not line.strip():
                    continue
                counts["rows"] += 1
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    quarantine.add(file=name, line=counts["rows"], reason=f"malformed JSON: {exc}",
                                   raw=line, source=source)
                    continue
                if isinstance(row, dict) and keep(row):
                    writer.write(line.rstrip(b"\r"))
                    counts["kept"] += 1
        except TruncatedInput as exc:
            raise FetchError(raw.url, f"gzip stream ended early after {raw.position} bytes: "
                                      f"{exc.reason}") from exc
        counts["bytes"] = raw.position
    return counts
