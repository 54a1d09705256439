"""The PMC Cloud Service acquirer against a real S3 server (moto) on 127.0.0.1.

The bucket is the bundled sample bucket (src/gap_replay/sample/sites/pmc-oa-opendata/: the real
JATS samples, their metadata JSON, two inventory reports) uploaded with boto3; tests change
objects in it (a new article version, a missing or broken XML) and rerun the acquirer.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from gap_replay.http import PoliteClient, RetryPolicy
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import sample_sites_dir
from gap_replay.sample import pmc_bucket
from gap_replay.sources.pubmed import pmc_inventory
from gap_replay.sources.pubmed.pmc_cloud import fetch_pmc_cloud
from gap_replay.state import State

BUCKET = "pmc-oa-opendata"
SITE = sample_sites_dir() / BUCKET
JATS = Path(__file__).parent / "fixtures" / "pubmed" / "pmc_jats"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Bucket:
    """The sample bucket in moto; `put`/`delete` change it, `objects` is what was uploaded."""

    def __init__(self, url: str) -> None:
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        self.url = url
        self.s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        self.s3.create_bucket(Bucket=BUCKET)
        self.objects: dict[str, bytes] = {}
        for path in sorted(SITE.rglob("*")):
            # `@` files are the static ListObjectsV2 answers of the sample server
            if path.is_file() and "@" not in path.name:
                self.put(path.relative_to(SITE).as_posix(), path.read_bytes())

    def put(self, key: str, data: bytes) -> None:
        # world-readable, like the public bucket: the acquirer sends anonymous GETs
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, ACL="public-read")
        self.objects[key] = data

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key)
        self.objects.pop(key, None)

    def new_inventory(self, stamp: str, dates: dict[str, str] | None = None) -> None:
        for key, data in pmc_bucket.inventory_objects(stamp, self.objects, dates or {}).items():
            self.put(key, data)


@pytest.fixture()
def bucket(moto_url):
    return Bucket(moto_url)


def _client(url: str) -> PoliteClient:
    return PoliteClient(base_url=pmc_inventory.base_url_for(url), rate=0, respect_robots=False,
                        retry=RetryPolicy(max_retries=1, backoff=0.01, max_wait=1),
                        sleep=lambda s: None)


def _run(out: Path, bucket: Bucket, **kwargs) -> tuple[dict, PoliteClient]:
    client = _client(bucket.url)
    return fetch_pmc_cloud(out, client=client, **kwargs), client


def _docs(out: Path, source: str = "papers") -> list:
    q = Quarantine()
    return [d for s in list_shards(out / "raw" / source) for d in iter_documents(s, q, source)]


def test_lists_the_latest_inventory_and_fetches_every_open_access_article(bucket, tmp_path):
    summary, client = _run(tmp_path, bucket)
    assert summary["inventory"] == "2026-12-01T01-00Z" and summary["articles"] == 4
    assert summary["written"] == {"papers": 3} and summary["skipped_not_open_access"] == 1
    assert summary["failed"] == 0 and "problems" not in summary
    docs = {d.meta["pmcid"]: d for d in _docs(tmp_path)}
    assert sorted(docs) == ["PMC2329613", "PMC6095483", "PMC9900001"]
    bmc = docs["PMC2329613"]
    assert bmc.id == "pmid:18405359" and bmc.subset == "pmc"
    assert bmc.meta["license"] == "CC BY" and bmc.meta["pmc_version"] == 1
    assert bmc.meta["license_url"] == "http://creativecommons.org/licenses/by/2.0"
    assert bmc.meta["pmc_key"] == "PMC2329613.1/PMC2329613.1.xml"
    scielo = docs["PMC9900001"]  # its XML names no PMCID: the id comes from the metadata JSON
    assert scielo.meta["license"] == "CC BY-NC" and scielo.id.startswith("doi:")
    # one list, one manifest, one inventory file, then metadata + XML per article (none for the
    # manuscript outside the open-access subset beyond its metadata)
    assert client.network_requests == 3 + 4 + 3
    assert sorted(State(tmp_path / "state.sqlite").done_keys("pmc-cloud")) == [
        "PMC2329613", "PMC6095483", "PMC9900001", "PMC9900002"]


def test_a_rerun_fetches_nothing_new(bucket, tmp_path):
    _run(tmp_path, bucket)
    before = sorted(p.name for p in (tmp_path / "raw" / "papers" / "pmc").iterdir())
    summary, client = _run(tmp_path, bucket)
    assert summary["candidates"] == 0 and summary["written"] == {} and summary["reused"]
    assert client.network_requests == 1  # the inventory listing only
    assert sorted(p.name for p in (tmp_path / "raw" / "papers" / "pmc").iterdir()) == before


def test_a_new_version_replaces_the_old_one(bucket, tmp_path):
    _run(tmp_path, bucket)
    xml = (JATS / "PMC6095483.xml").read_bytes()
    revised = xml.replace(b"<article-title>", b"<article-title>[Revised] ", 1)
    assert revised != xml
    for key, data in pmc_bucket.article_objects("PMC6095483", 2, revised,
                                                license_code="CC BY-SA").items():
        bucket.put(key, data)
    bucket.new_inventory("2026-12-02T01-00Z")
    summary, _ = _run(tmp_path, bucket)
    assert summary["inventory"] == "2026-12-02T01-00Z" and summary["articles"] == 4
    assert summary["candidates"] == 1 and summary["replaced"] == 1
    assert summary["written"] == {"papers": 1}
    plos = [d for d in _docs(tmp_path) if d.meta["pmcid"] == "PMC6095483"]
    assert len(plos) == 1
    assert plos[0].meta["pmc_version"] == 2 and plos[0].meta["license"] == "CC BY-SA"
    assert plos[0].title.startswith("[Revised]")
    assert len(_docs(tmp_path)) == 3


def test_since_keeps_only_rows_modified_after_the_date(bucket, tmp_path):
    summary, _ = _run(tmp_path, bucket, since="2026-11-15")
    assert summary["candidates"] == 1
    assert [d.meta["pmcid"] for d in _docs(tmp_path)] == ["PMC6095483"]


def test_limit_then_resume_takes_the_rest(bucket, tmp_path):
    summary, _ = _run(tmp_path, bucket, limit=2)
    assert summary["candidates"] == 2
    assert sorted(d.meta["pmcid"] for d in _docs(tmp_path)) == ["PMC2329613", "PMC6095483"]
    summary, _ = _run(tmp_path, bucket)
    assert summary["candidates"] == 2 and summary["written"] == {"papers": 1}
    assert summary["skipped_not_open_access"] == 1
    assert len(_docs(tmp_path)) == 3


def test_licence_filter(bucket, tmp_path):
    summary, _ = _run(tmp_path, bucket, licenses=["CC BY"])
    assert summary["skipped_license_not_selected"] == 1
    assert sorted(d.meta["license"] for d in _docs(tmp_path)) == ["CC BY", "CC BY"]


def test_a_missing_xml_is_a_failure_naming_the_key_and_is_retried(bucket, tmp_path):
    key = "PMC6095483.1/PMC6095483.1.xml"
    data = bucket.objects[key]
    bucket.delete(key)
    summary, _ = _run(tmp_path, bucket)
    assert summary["failed"] == 1 and summary["written"] == {"papers": 2}
    assert len(summary["problems"]) == 1 and key in summary["problems"][0]
    assert "HTTP 404" in summary["problems"][0]
    failures = State(tmp_path / "state.sqlite").failures("papers")
    assert [(u.endswith(key), status) for u, _, status in failures] == [(True, 404)]
    bucket.put(key, data)
    summary, _ = _run(tmp_path, bucket)
    assert summary["candidates"] == 1 and summary["written"] == {"papers": 1}
    assert summary["failed"] == 0 and len(_docs(tmp_path)) == 3


def test_an_xml_that_does_not_match_its_md5_is_a_failure(bucket, tmp_path):
    bucket.put("PMC2329613.1/PMC2329613.1.xml", b"<article>changed</article>")
    summary, _ = _run(tmp_path, bucket)
    assert summary["failed"] == 1 and "MD5 mismatch" in summary["problems"][0]
    assert "PMC2329613.1/PMC2329613.1.xml" in summary["problems"][0]
    assert summary["written"] == {"papers": 2}


def test_broken_jats_and_metadata_are_quarantined_with_their_url(bucket, tmp_path):
    broken = (JATS / "PMC6095483.xml").read_bytes()[:5000]
    objects = pmc_bucket.article_objects("PMC6095483", 1, broken, license_code="CC BY")
    for key, data in objects.items():
        bucket.put(key, data)
    bucket.put("metadata/PMC9900001.1.json", b'{"pmcid": "PMC9900001", "version": ')
    bucket.new_inventory("2026-12-02T01-00Z")
    summary, _ = _run(tmp_path, bucket)
    assert summary["written"] == {"papers": 1} and summary["quarantined"] == 2
    assert summary["failed"] == 0 and summary["skipped_not_open_access"] == 1
    (qfile,) = [p for p in (tmp_path / "quarantine").iterdir() if p.name.startswith("pmc-cloud-")]
    text = qfile.read_text()
    assert "PMC6095483.1/PMC6095483.1.xml" in text and "JATS" in text
    assert "metadata/PMC9900001.1.json" in text and "does not parse" in text


def test_no_inventory_is_a_loud_error(bucket, tmp_path):
    from gap_replay.http import FetchError

    for key in [k for k in bucket.objects if k.startswith("inventory-reports/")]:
        bucket.delete(key)
    with pytest.raises(FetchError, match="no inventory report found"):
        _run(tmp_path, bucket)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    return subprocess.run([sys.executable, "-m", "gap_replay", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_fetch_oa_with_endpoint_url_and_exit_code_on_failure(bucket, tmp_path):
    r = _cli("pubmed", "fetch-oa", "--help")
    assert r.returncode == 0 and "--endpoint-url" in r.stdout and "--since" in r.stdout
    assert "gap-replay pubmed fetch-oa --output out/" in r.stdout and "--subset" not in r.stdout
    r = _cli("pubmed", "fetch-oa", "--output", str(tmp_path), "--since", "last week")
    assert r.returncode == 2 and "ISO date" in r.stderr
    r = _cli("pubmed", "fetch-oa", "--output", str(tmp_path), "--endpoint-url", bucket.url,
             "--limit", "1")
    assert r.returncode == 0, r.stderr
    assert [d.meta["pmcid"] for d in _docs(tmp_path)] == ["PMC2329613"]
    bucket.delete("PMC6095483.1/PMC6095483.1.xml")
    r = _cli("pubmed", "fetch-oa", "--output", str(tmp_path), "--endpoint-url", bucket.url)
    assert r.returncode == 1 and "1 article version(s) failed" in r.stderr


def test_ingest_of_a_local_oa_bulk_dump_still_works(tmp_path):
    pkg = tmp_path / "oa_comm_xml.PMC00xxxxxx.baseline.2024-06-18.tar.gz"
    with tarfile.open(pkg, "w:gz") as tar:
        for f in sorted(JATS.iterdir()):
            tar.add(f, arcname=f"PMC00xxxxxx/{f.name}")
    r = _cli("ingest", "--format", "jats", str(pkg), "--output", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert len(_docs(tmp_path / "out")) == 3


def test_download_uses_the_pmc_cloud_for_papers_without_an_s2_key(bucket, tmp_path, monkeypatch):
    from gap_replay.sources import AcquireContext, acquirer

    monkeypatch.delenv("S2_API_KEY", raising=False)
    ctx = AcquireContext(output=str(tmp_path), recipe={},
                         options={"pmc_endpoint_url": bucket.url})
    summary = acquirer("papers")(ctx)
    assert summary["route"] == "ncbi" and "s2orc" not in summary
    assert summary["pmc_cloud"]["written"] == {"papers": 3} and "problems" not in summary
    bucket.delete("PMC2329613.1/PMC2329613.1.xml")
    bucket.put("metadata/PMC2329613.1.json", bucket.objects["metadata/PMC2329613.1.json"] + b" ")
    bucket.new_inventory("2026-12-02T01-00Z")
    summary = acquirer("papers")(ctx)
    (problem,) = summary["problems"]
    assert "PMC2329613.1/PMC2329613.1.xml" in problem
    kept = [d for d in _docs(tmp_path) if d.meta["pmcid"] == "PMC2329613"]
    assert len(kept) == 1  # the failed refresh keeps the old copy
