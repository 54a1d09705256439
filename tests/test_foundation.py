"""The shared foundation: shard I/O with quarantine, stage counting, the polite client, the site server."""

from __future__ import annotations

import gzip
import sqlite3
import threading
import time

import pytest

from gap_replay.document import Document
from gap_replay.http import FetchError, PoliteClient, RetryPolicy
from gap_replay.io import Quarantine, ShardWriter, iter_documents
from gap_replay.sample.server import Fault, SiteServer
from gap_replay.stages.base import Pipeline, Stage
from gap_replay.urls import rewrite_base_url


def _doc(i: int, source: str = "abstracts") -> Document:
    return Document(id=f"d{i}", source=source, text=f"text {i}", meta={"k": i})


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_shard_roundtrip_is_byte_stable(tmp_path, suffix):
    paths = [tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"]
    for path in paths:
        with ShardWriter(path) as w:
            for i in range(50):
                w.write(_doc(i))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    q = Quarantine()
    docs = list(iter_documents(paths[0], q))
    assert [d.id for d in docs] == [f"d{i}" for i in range(50)] and len(q) == 0
    assert not list(tmp_path.glob("*.tmp-*"))


def test_bad_lines_are_quarantined_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = _doc(1).to_json()
    path.write_bytes(good + b"\n{not json\n" + b'{"id": "x", "source": "papers", "text": "\xff\xfe"}\n'
                     + b'[1, 2]\n{"id": "y"}\n' + good + b"\n")
    q = Quarantine()
    docs = list(iter_documents(path, q, source="papers"))
    assert len(docs) == 2
    reasons = [e.decode() for e in q.entries]
    assert len(reasons) == 4
    assert '"line":2' in reasons[0] and "malformed JSON" in reasons[0]
    assert '"line":3' in reasons[1] and "invalid UTF-8" in reasons[1]
    assert "not an object" in reasons[2]
    assert "field 'source'" in reasons[3]


def test_truncated_gzip_keeps_earlier_records_and_quarantines_the_rest(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    with ShardWriter(path) as w:
        for i in range(2000):
            w.write(Document(id=f"d{i}", source="replay", text=f"word {i} " * 50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    q = Quarantine()
    docs = list(iter_documents(path, q))
    assert 0 < len(docs) < 2000
    assert len(q) == 1 and b"truncated" in q.entries[0]
    with pytest.raises(EOFError):
        gzip.decompress(path.read_bytes())


class _DropOdd(Stage):
    name = "drop_odd"

    def process(self, doc):
        if int(doc.id[1:]) % 2:
            self.drop(doc, "odd")
            return None
        return doc


def test_pipeline_counts_reconcile():
    pipe = Pipeline([_DropOdd()])
    out = list(pipe.run(_doc(i) for i in range(11)))
    assert len(out) == 6
    stats = pipe.stats()["drop_odd"]["abstracts"]
    assert stats == {"in": 11, "out": 6, "dropped": {"odd": 5}, "quarantined": 0}


def test_rewrite_base_url_keeps_path_and_query():
    assert rewrite_base_url("https://www.who.int/a/b?x=1#f", "http://127.0.0.1:9/who") == \
        "http://127.0.0.1:9/who/a/b?x=1"


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "sites"
    (root / "s" / "p").mkdir(parents=True)
    (root / "s" / "robots.txt").write_text("User-agent: *\nDisallow: /private\n")
    (root / "s" / "p" / "page.html").write_text("<html><body>hello</body></html>")
    (root / "s" / "p" / "list@page=2").write_text('{"page": 2}')
    (root / "s" / "p" / "list").write_text('{"page": 1}')
    (root / "s" / "big.bin").write_bytes(bytes(range(256)) * 400)
    with SiteServer(root) as server:
        yield server


def _client(server, tmp_path, **kw):
    return PoliteClient(base_url=server.base_url("s"), rate=0, cache_path=tmp_path / "cache.sqlite",
                        retry=RetryPolicy(max_retries=3, backoff=0.01, timeout=5), **kw)


def test_client_retries_429_honouring_retry_after(site, tmp_path):
    waits = []
    client = _client(site, tmp_path, sleep=waits.append)
    site.inject("/s/p/page.html", Fault("status", 429, headers={"Retry-After": "2"}),
                Fault("status", 500))
    assert "hello" in client.get_text("https://example.org/p/page.html")
    assert waits[0] == 2.0 and len(waits) == 2


def test_client_gives_up_after_bounded_retries(site, tmp_path):
    client = _client(site, tmp_path, sleep=lambda s: None)
    site.inject("/s/p/page.html", *[Fault("status", 503)] * 10)
    with pytest.raises(FetchError) as err:
        client.get("https://example.org/p/page.html")
    assert err.value.status == 503
    assert len(site.requests_to("/s/p/page.html")) == 4


def test_client_survives_timeout_and_reset(site, tmp_path):
    client = _client(site, tmp_path, sleep=lambda s: None)
    site.inject("/s/p/page.html", Fault("hang", seconds=6), Fault("reset"))
    assert "hello" in client.get_text("https://example.org/p/page.html")


def test_client_honours_robots_and_query_variants(site, tmp_path):
    client = _client(site, tmp_path)
    with pytest.raises(FetchError, match="robots"):
        client.get("https://example.org/private/x")
    assert client.get_json("https://example.org/p/list", params={"page": 2}) == {"page": 2}
    assert client.get_json("https://example.org/p/list") == {"page": 1}


def test_client_revalidates_with_etag(site, tmp_path):
    client = _client(site, tmp_path)
    client.get_text("https://example.org/p/page.html")
    resp = client.get("https://example.org/p/page.html")
    assert resp.from_cache
    last = site.requests_to("/s/p/page.html")[-1]
    assert last.status == 304 and "If-None-Match" in last.headers


def test_a_cache_locked_longer_than_sqlite_waits_by_default_still_gives_the_page(site, tmp_path):
    """Guideline sources scraped side by side share the cache file; a writer holding it past
    sqlite's default 5 s once made a page fetch raise and the page drop out of the run."""
    client = _client(site, tmp_path)
    held = threading.Event()

    def hold_the_write_lock():
        db = sqlite3.connect(tmp_path / "cache.sqlite", isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(5.5)
        db.execute("COMMIT")
        db.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    held.wait(5)
    try:
        assert "hello" in client.get_text("https://example.org/p/page.html")
    finally:
        holder.join()
    assert client.get("https://example.org/p/page.html").from_cache  # and it was cached


def test_a_damaged_cache_file_is_bypassed_not_fatal(site, tmp_path, caplog):
    client = _client(site, tmp_path)
    client.get_text("https://example.org/p/page.html")
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:  # damaged mid-run
        db.execute("DROP TABLE responses")
    assert "hello" in client.get_text("https://example.org/p/page.html")
    assert "HTTP cache unusable (OperationalError: no such table: responses)" in caplog.text
    (tmp_path / "cache.sqlite").unlink()
    for stale in tmp_path.glob("cache.sqlite-*"):  # the WAL and its index
        stale.unlink()
    (tmp_path / "cache.sqlite").write_bytes(b"not a database " * 500)
    again = _client(site, tmp_path)  # damaged before the run
    assert "hello" in again.get_text("https://example.org/p/page.html")
    assert "is unreadable" in caplog.text and "delete the file" in caplog.text


def test_download_resumes_after_truncated_body(site, tmp_path):
    client = _client(site, tmp_path, sleep=lambda s: None)
    site.inject("/s/big.bin", Fault("truncate", keep_bytes=30_000))
    dest = client.download("https://example.org/big.bin", tmp_path / "big.bin", expected_size=102_400)
    assert dest.read_bytes() == bytes(range(256)) * 400
    ranges = [r.headers.get("Range") for r in site.requests_to("/s/big.bin")]
    assert ranges[0] is None and len(ranges) >= 2
    resumed_from = int(ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= 30_000


def test_rewriting_an_unchanged_shard_keeps_the_file(tmp_path):
    import os

    path = tmp_path / "s.jsonl.gz"

    def write(text):
        with ShardWriter(path) as w:
            w.write(Document(id="a", source="replay", text=text))

    write("same")
    os.utime(path, ns=(1, 1))
    write("same")
    assert os.stat(path).st_mtime_ns == 1  # identical bytes: the old file is left untouched
    write("changed")
    assert os.stat(path).st_mtime_ns != 1
    assert not list(tmp_path.glob("*.tmp-*"))
