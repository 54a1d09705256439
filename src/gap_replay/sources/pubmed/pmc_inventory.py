"""The PMC Cloud Service bucket (`pmc-oa-opendata`): addressing, ListObjectsV2, the inventory.

NCBI publishes a daily Amazon S3 Inventory of the per-article-version metadata objects
(`metadata/PMC<id>.<version>.json`) under `inventory-reports/pmc-oa-opendata/metadata/`:
one `<YYYY-MM-DDTHH-MMZ>/manifest.json` per day naming gzipped CSV data files (no header;
Bucket, Key, LastModifiedDate, ETag). About 8M article versions: the rows are streamed into an
SQLite table on disk that keeps the highest version per PMCID, never into memory.
Sources and dates: docs/pubmed.md, "PMC Cloud Service".

Everything goes over plain HTTPS GETs through the project's PoliteClient (anonymous; the
bucket is world-readable): virtual-hosted `https://pmc-oa-opendata.s3.amazonaws.com/<key>` by
default, path-style `{endpoint}/pmc-oa-opendata/<key>` for another S3 endpoint (moto, MinIO).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

import orjson
from lxml import etree

from gap_replay.http import FetchError, PoliteClient

log = logging.getLogger(__name__)

BUCKET = "pmc-oa-opendata"
BUCKET_URL = f"https://{BUCKET}.s3.amazonaws.com"
INVENTORY_PREFIX = f"inventory-reports/{BUCKET}/metadata/"
DEFAULT_SCHEMA = ("Bucket", "Key", "LastModifiedDate", "ETag")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z$")
_METADATA_KEY = re.compile(r"^metadata/PMC(\d+)\.(\d+)\.json$")
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False)


def base_url_for(endpoint_url: str | None) -> str | None:
    """The PoliteClient base URL addressing the bucket path-style at `endpoint_url` (None:
    the public bucket, virtual-hosted)."""
    if not endpoint_url:
        return None
    return f"{endpoint_url.rstrip('/')}/{BUCKET}"


def object_url(key: str) -> str:
    return f"{BUCKET_URL}/{key}"


def key_of_s3_url(url: str) -> tuple[str, str | None]:
    """`s3://pmc-oa-opendata/<key>?md5=<hex>` (as in the metadata JSON) → (key, md5 or None)."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "https") or (parts.scheme == "s3" and parts.netloc != BUCKET):
        raise ValueError(f"not an object of s3://{BUCKET}: {url!r}")
    md5 = None
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if name == "md5" and re.fullmatch(r"[0-9a-fA-F]{32}", value):
            md5 = value.lower()
    return unquote(parts.path.lstrip("/")), md5


def list_prefixes(client: PoliteClient, prefix: str) -> list[str]:
    """The CommonPrefixes under `prefix` (delimiter `/`), following continuation tokens."""
    found: list[str] = []
    token: str | None = None
    while True:
        params = {"list-type": "2", "prefix": prefix, "delimiter": "/"}
        if token:
            params["continuation-token"] = token
        resp = client.get(f"{BUCKET_URL}/", params=params, cache=False)
        try:
            root = etree.fromstring(resp.content, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise FetchError(resp.url, f"ListObjectsV2 answer is not XML: {exc}") from exc
        found += [p.text for p in root.iter(f"{_S3_NS}Prefix", "Prefix")
                  if p.text and p.getparent() is not None
                  and etree.QName(p.getparent()).localname == "CommonPrefixes"]
        truncated = root.findtext(f"{_S3_NS}IsTruncated") or root.findtext("IsTruncated")
        token = root.findtext(f"{_S3_NS}NextContinuationToken") or root.findtext(
            "NextContinuationToken")
        if (truncated or "").lower() != "true" or not token:
            return found


def latest_inventory(client: PoliteClient) -> str:
    """The newest inventory stamp (`2026-01-18T01-00Z`); `data/` and `hive/` are skipped."""
    names = [p[len(INVENTORY_PREFIX):].rstrip("/") for p in list_prefixes(client, INVENTORY_PREFIX)]
    stamps = sorted(s for s in names if _STAMP.match(s))
    if not stamps:
        raise FetchError(object_url(INVENTORY_PREFIX),
                         "no inventory report found (expected <YYYY-MM-DDTHH-MMZ>/manifest.json "
                         f"under s3://{BUCKET}/{INVENTORY_PREFIX})")
    return stamps[-1]


@dataclass(frozen=True)
class InventoryFile:
    key: str
    md5: str | None
    size: int | None


def read_manifest(client: PoliteClient, stamp: str) -> tuple[tuple[str, ...], list[InventoryFile]]:
    """(column names, data files) of one inventory's `manifest.json`."""
    url = object_url(f"{INVENTORY_PREFIX}{stamp}/manifest.json")
    manifest = client.get_json(url, cache=False)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise FetchError(url, "manifest.json has no 'files' list")
    if (manifest.get("fileFormat") or "CSV").upper() != "CSV":
        raise FetchError(url, f"inventory format {manifest.get('fileFormat')!r} is not CSV")
    schema = tuple(c.strip() for c in (manifest.get("fileSchema") or "").split(",") if c.strip())
    files = [InventoryFile(f["key"], (f.get("MD5checksum") or None), f.get("size"))
             for f in manifest["files"] if isinstance(f, dict) and f.get("key")]
    return schema or DEFAULT_SCHEMA, files


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class InventoryRow:
    pmcid: str
    version: int
    key: str
    etag: str
    last_modified: str


def iter_rows(path: Path, schema: tuple[str, ...], bad: list[str]) -> Iterator[InventoryRow]:
    """Metadata-object rows of one gzipped inventory CSV, streamed; other keys are ignored and
    malformed lines are appended to `bad` as `file:line: reason`."""
    col = {name.lower(): i for i, name in enumerate(schema)}
    k, lm, et = col.get("key", 1), col.get("lastmodifieddate", 2), col.get("etag", 3)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for lineno, fields in enumerate(csv.reader(fh), 1):
            if not fields:
                continue
            if len(fields) <= max(k, lm, et):
                bad.append(f"{path.name}:{lineno}: {len(fields)} columns, expected {len(schema)}")
                continue
            key = unquote(fields[k])  # S3 Inventory URL-encodes keys
            m = _METADATA_KEY.match(key)
            if not m:
                continue
            yield InventoryRow(f"PMC{m.group(1)}", int(m.group(2)), key, fields[et].strip('"'),
                               fields[lm])


class LatestVersions:
    """SQLite on disk: the highest version per PMCID of one inventory, with its ETag/date."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE IF NOT EXISTS latest (num INTEGER PRIMARY KEY, version INTEGER, "
            "key TEXT, etag TEXT, last_modified TEXT);")

    def loaded(self) -> str | None:
        row = self.db.execute("SELECT value FROM info WHERE name='complete'").fetchone()
        return row[0] if row else None

    def load(self, stamp: str, files: list[Path], schema: tuple[str, ...]) -> dict:
        """Replace the table with inventory `stamp`; returns row counts and bad lines."""
        bad: list[str] = []
        rows = 0
        with self.db:
            self.db.execute("DELETE FROM latest")
            self.db.execute("DELETE FROM info")
            for path in files:
                batch = []
                for row in iter_rows(path, schema, bad):
                    rows += 1
                    batch.append((int(row.pmcid[3:]), row.version, row.key, row.etag,
                                  row.last_modified))
                    if len(batch) >= 10_000:
                        self._upsert(batch)
                        batch = []
                self._upsert(batch)
            self.db.execute("INSERT INTO info VALUES ('complete', ?)", (stamp,))
        return {"rows": rows, "articles": self.count(), "bad_lines": bad}

    def _upsert(self, batch: list[tuple]) -> None:
        self.db.executemany(
            "INSERT INTO latest VALUES (?, ?, ?, ?, ?) ON CONFLICT(num) DO UPDATE SET "
            "version=excluded.version, key=excluded.key, etag=excluded.etag, "
            "last_modified=excluded.last_modified WHERE excluded.version > latest.version", batch)

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM latest").fetchone()[0]

    def close(self) -> None:
        self.db.close()


def parse_metadata(data: bytes) -> dict:
    """The per-article-version metadata JSON (pmcid, version, license_code, xml_url, ...)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"metadata JSON does not parse: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError("metadata JSON is not an object")
    return obj

