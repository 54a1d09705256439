"""A small PMC Cloud Service bucket (`pmc-oa-opendata`) in the real layout, as {key: bytes}.

Shared by `scripts/build_pmc_cloud_sample.py` (the bundled sample site, served path-style by
the sample server) and the tests (uploaded into a moto S3 server). Layout, field names and the
inventory shape follow the bucket's README.txt (see docs/pubmed.md, "PMC Cloud Service"):
`PMC<id>.<v>/PMC<id>.<v>.{xml,json}`, `metadata/PMC<id>.<v>.json`, and an S3 Inventory of the
metadata objects (`inventory-reports/pmc-oa-opendata/metadata/<stamp>/manifest.json` naming
gzipped, header-less CSV files under `.../metadata/data/`). Byte-stable (gzip mtime 0).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path
from xml.sax.saxutils import escape

BUCKET = "pmc-oa-opendata"
INVENTORY_PREFIX = f"inventory-reports/{BUCKET}/metadata/"
FILE_SCHEMA = "Bucket, Key, LastModifiedDate, ETag"


def _gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def article_objects(pmcid: str, version: int, xml: bytes, *, license_code: str,
                    pmid: int | None = None, doi: str | None = None, title: str = "",
                    citation: str = "", is_pmc_openaccess: bool = True,
                    is_manuscript: bool = False, is_retracted: bool = False,
                    with_xml: bool = True) -> dict[str, bytes]:
    """The objects of one article version: XML, its JSON, and the JSON under `metadata/`."""
    name = f"{pmcid}.{version}"
    meta = {"pmcid": pmcid, "version": version, "pmid": pmid, "doi": doi, "title": title,
            "citation": citation, "is_pmc_openaccess": is_pmc_openaccess,
            "is_manuscript": is_manuscript, "is_historical_ocr": False,
            "is_retracted": is_retracted, "license_code": license_code,
            "xml_url": f"s3://{BUCKET}/{name}/{name}.xml?md5={hashlib.md5(xml).hexdigest()}",
            "media_urls": []}
    body = (json.dumps(meta, indent=2) + "\n").encode()
    objects = {f"{name}/{name}.json": body, f"metadata/{name}.json": body}
    if with_xml:
        objects[f"{name}/{name}.xml"] = xml
    return objects


def inventory_objects(stamp: str, objects: dict[str, bytes], last_modified: dict[str, str],
                      default_date: str = "2026-11-02T10:00:00.000Z") -> dict[str, bytes]:
    """An inventory report `stamp` (e.g. `2026-12-01T01-00Z`) of the `metadata/` objects."""
    rows = []
    for key in sorted(k for k in objects if k.startswith("metadata/")):
        etag = hashlib.md5(objects[key]).hexdigest()
        rows.append(f'"{BUCKET}","{key}","{last_modified.get(key, default_date)}","{etag}"\n')
    data = _gz("".join(rows).encode())
    data_key = f"{INVENTORY_PREFIX}data/{hashlib.sha1(data).hexdigest()[:8]}-{stamp}.csv.gz"
    manifest = {"sourceBucket": BUCKET, "destinationBucket": f"arn:aws:s3:::{BUCKET}",
                "version": "2016-11-30", "creationTimestamp": "1764550800000",
                "fileFormat": "CSV", "fileSchema": FILE_SCHEMA,
                "files": [{"key": data_key, "size": len(data),
                           "MD5checksum": hashlib.md5(data).hexdigest()}]}
    manifest_key = f"{INVENTORY_PREFIX}{stamp}/manifest.json"
    return {data_key: data, manifest_key: (json.dumps(manifest, indent=2) + "\n").encode()}


def list_objects_v2(prefix: str, keys: list[str], delimiter: str = "/") -> bytes:
    """The ListObjectsV2 XML answer for `prefix` + `delimiter` over `keys` (one page)."""
    prefixes = sorted({prefix + k[len(prefix):].split(delimiter, 1)[0] + delimiter
                       for k in keys if k.startswith(prefix) and delimiter in k[len(prefix):]})
    contents = sorted(k for k in keys if k.startswith(prefix) and delimiter not in k[len(prefix):])
    parts = [f"<Name>{BUCKET}</Name><Prefix>{escape(prefix)}</Prefix>"
             f"<KeyCount>{len(prefixes) + len(contents)}</KeyCount><MaxKeys>1000</MaxKeys>"
             f"<Delimiter>{escape(delimiter)}</Delimiter><IsTruncated>false</IsTruncated>"]
    parts += [f"<Contents><Key>{escape(k)}</Key></Contents>" for k in contents]
    parts += [f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
            'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + "".join(parts)
            + "</ListBucketResult>").encode()


def write_static_site(root: Path, objects: dict[str, bytes]) -> None:
    """Write the bucket as files under `root` (the sample server's `pmc-oa-opendata/` site),
    plus the ListObjectsV2 answer the acquirer asks for as a query variant of `index.html`."""
    from gap_replay.sample.server import variant_name

    for key, data in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    query = f"list-type=2&prefix={INVENTORY_PREFIX}&delimiter=/"
    (root / variant_name("index.html", query)).write_bytes(
        list_objects_v2(INVENTORY_PREFIX, list(objects)))
