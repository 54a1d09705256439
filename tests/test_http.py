"""gap_replay.http: a host that cannot be reached stops its source in seconds, not retries; the
polite client retries 429/5xx within bounds, honours robots and ETags, survives a locked or damaged
cache and resumes a truncated download."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests

from conftest import closed_port, run_cli
from gap_replay.http import FetchError, HostUnreachable, PoliteClient, RetryPolicy, unreachable_cause
from gap_replay.sample.server import Fault, SiteServer


def test_connection_refused_fails_fast_and_is_remembered_for_the_host(tmp_path):
    port = closed_port()
    waits: list[float] = []
    client = PoliteClient(base_url=f"http://127.0.0.1:{port}", rate=0, respect_robots=False,
                          retry=RetryPolicy(max_retries=5, backoff=10, timeout=5), sleep=waits.append)
    with pytest.raises(HostUnreachable) as err:
        client.get("https://example.org/a")
    assert f"cannot reach 127.0.0.1:{port} (connection refused; no network?)" in str(err.value)
    assert waits == [1.0]  # one short second chance, not five exponential backoffs
    started = time.monotonic()
    other = PoliteClient(base_url=f"http://127.0.0.1:{port}", rate=0, respect_robots=False,
                         sleep=waits.append)
    with pytest.raises(HostUnreachable):
        other.get("https://example.org/b")  # another client of the process: known, no new wait
    assert time.monotonic() - started < 0.5 and waits == [1.0]


def test_without_retries_a_refused_connection_is_still_named_unreachable():
    """--retries 0: the only attempt fails to connect; the error must say the host cannot be
    reached (the advice is then "check the network/address"), not merely "gave up"."""
    port = closed_port()
    waits: list[float] = []
    client = PoliteClient(base_url=f"http://127.0.0.1:{port}", rate=0, respect_robots=False,
                          retry=RetryPolicy(max_retries=0, backoff=10, timeout=5), sleep=waits.append)
    with pytest.raises(HostUnreachable) as err:
        client.get("https://example.org/a")
    assert f"cannot reach 127.0.0.1:{port} (connection refused; no network?)" in str(err.value)
    assert "gave up" not in str(err.value) and waits == []


def test_robots_of_an_unreachable_host_stops_the_source_instead_of_proceeding():
    client = PoliteClient(base_url=f"http://127.0.0.1:{closed_port()}", rate=0,
                          sleep=lambda s: None)
    with pytest.raises(HostUnreachable, match="robots.txt"):
        client.get("https://example.org/page")


def test_errors_after_connecting_are_still_retried(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "page.html").write_text("<p>hello</p>")
    with SiteServer(tmp_path) as server:
        server.inject("/s/page.html", Fault("reset"), Fault("status", 503))
        client = PoliteClient(base_url=server.base_url("s"), rate=0, respect_robots=False,
                              retry=RetryPolicy(max_retries=3, backoff=0.01, timeout=5),
                              sleep=lambda s: None)
        assert "hello" in client.get_text("https://example.org/page.html")
        with pytest.raises(FetchError) as err:
            server.inject("/s/page.html", *[Fault("status", 404)])
            client.get("https://example.org/page.html")
        assert not isinstance(err.value, HostUnreachable) and err.value.status == 404


def test_unreachable_causes_are_told_apart_from_retryable_errors():
    try:
        requests.get(f"http://127.0.0.1:{closed_port()}/", timeout=5)
    except requests.ConnectionError as exc:
        assert unreachable_cause(exc) == "connection refused"
    assert unreachable_cause(requests.ConnectionError("Connection reset by peer")) is None
    assert unreachable_cause(requests.ReadTimeout("read timed out")) is None


def _recipe_with_sample_tokenizer(tmp_path) -> str:
    """The default recipe, with the bundled tokenizer (preflight checks it loads)."""
    import yaml

    from gap_replay.resources import default_recipe_path

    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["tokenizer"]["path"] = "sample:tokenizer.model"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_download_without_network_ends_in_seconds_with_one_line_per_source(tmp_path):
    started = time.monotonic()
    proc = run_cli("download", "--output", str(tmp_path / "out"), "--recipe",
                   _recipe_with_sample_tokenizer(tmp_path),
                   "--base-url", f"http://127.0.0.1:{closed_port()}", check=False, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert "Traceback" not in proc.stderr
    tail = proc.stderr[proc.stderr.index("acquisition failed"):]
    for source in ("guidelines", "abstracts", "papers", "replay"):
        assert any(line.startswith(f"{source}:") and "cannot reach 127.0.0.1" in line
                   for line in tail.splitlines()), (source, tail)
    assert (tmp_path / "out" / "acquire.json").exists()
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.fixture
def two_hosts(tmp_path):
    """Two real servers on 127.0.0.1 (two hosts to the client), each with a page and robots.txt."""
    for site in ("a", "b"):
        (tmp_path / site / "s").mkdir(parents=True)
        (tmp_path / site / "s" / "page.html").write_text(f"<p>page of {site}</p>")
        (tmp_path / site / "robots.txt").write_text("User-agent: *\nDisallow: /private\n")
    with SiteServer(tmp_path / "a") as a, SiteServer(tmp_path / "b") as b:
        yield a, b


def _plain(**kw) -> PoliteClient:
    return PoliteClient(rate=0, retry=RetryPolicy(max_retries=2, backoff=0.01, timeout=5),
                        sleep=lambda s: None, **kw)


def test_secrets_never_follow_a_redirect_to_another_host(two_hosts):
    a, b = two_hosts
    a.inject("/api", Fault("status", 302, headers={"Location": f"{b.url}/s/page.html"}))
    client = _plain(respect_robots=False)
    client.session.headers["Authorization"] = "Bearer session-secret"
    resp = client.get(f"{a.url}/api", headers={"x-api-key": "k-123", "X-Auth-Token": "t",
                                                "Accept": "text/html"}, cache=False)
    assert "page of b" in resp.text
    sent_to_a = a.requests_to("/api")[0].headers
    assert sent_to_a["x-api-key"] == "k-123" and sent_to_a["Authorization"] == "Bearer session-secret"
    received = {k.lower(): v for k, v in b.requests_to("/s/page.html")[0].headers.items()}
    assert received["accept"] == "text/html"
    assert not {"x-api-key", "x-auth-token", "authorization"} & set(received), received


def test_same_host_redirect_keeps_the_key(two_hosts):
    a, _ = two_hosts
    a.inject("/api", Fault("status", 301, headers={"Location": "/s/page.html"}))
    resp = _plain(respect_robots=False).get(f"{a.url}/api", headers={"x-api-key": "k"}, cache=False)
    assert "page of a" in resp.text
    assert a.requests_to("/s/page.html")[0].headers["x-api-key"] == "k"


def test_cross_host_redirect_is_followed_only_when_allowed_and_robots_of_the_new_host_asked(two_hosts):
    a, b = two_hosts
    moved = Fault("status", 302, headers={"Location": f"{b.url}/s/page.html"})
    a.inject("/s/old.html", moved)
    with pytest.raises(FetchError) as err:
        _plain(follow_redirect=lambda first, other: False).get(f"{a.url}/s/old.html")
    assert f"{a.url}/s/old.html -> {b.url}/s/page.html" in err.value.reason
    assert b.requests_to("/s/page.html") == []
    a.inject("/s/old.html", moved)
    assert "page of b" in _plain(follow_redirect=lambda first, other: True).get_text(f"{a.url}/s/old.html")
    assert b.requests_to("/robots.txt"), "robots.txt of the redirect's host was not asked"
    a.inject("/s/old2.html", Fault("status", 302, headers={"Location": f"{b.url}/private/x"}))
    with pytest.raises(FetchError, match="robots"):
        _plain().get(f"{a.url}/s/old2.html")


def test_redirect_loop_is_a_fetch_error_naming_the_urls(two_hosts):
    a, _ = two_hosts
    a.inject("/s/x", *[Fault("status", 302, headers={"Location": "/s/y"})] * 3)
    a.inject("/s/y", *[Fault("status", 302, headers={"Location": "/s/x"})] * 3)
    with pytest.raises(FetchError) as err:
        _plain(respect_robots=False).get(f"{a.url}/s/x")
    assert err.value.reason == f"redirect loop: {a.url}/s/x -> {a.url}/s/y -> {a.url}/s/x"


@pytest.mark.parametrize("status,allowed", [(503, False), (500, False), (404, True), (403, True)])
def test_robots_txt_5xx_disallows_and_4xx_allows(two_hosts, status, allowed):
    a, _ = two_hosts
    a.inject("/robots.txt", *[Fault("status", status)] * 5)
    client = _plain()
    if allowed:
        assert "page of a" in client.get_text(f"{a.url}/s/page.html")
    else:
        with pytest.raises(FetchError, match=f"robots.txt of {a.url} unreadable"):
            client.get(f"{a.url}/s/page.html")
        assert a.requests_to("/s/page.html") == []


class _Endless:
    """A server on 127.0.0.1 whose page announces 10 GB (or sends chunks without a length)
    and streams zeros until the client hangs up."""

    def __init__(self, announce: bool) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.sent = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                if announce:
                    self.send_header("Content-Length", str(10 << 30))
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                block = b"0" * (1 << 16)
                try:
                    while outer.sent < (10 << 30):
                        self.wfile.write(block if announce else b"%x\r\n%s\r\n" % (len(block), block))
                        outer.sent += len(block)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("announce", [True, False])
@pytest.mark.parametrize("cached", [True, False])
def test_a_huge_page_is_refused_at_its_limit_not_read_into_memory(tmp_path, announce, cached):
    from gap_replay.http import BodyLimits

    server = _Endless(announce)
    try:
        client = _plain(respect_robots=False, body_limits=BodyLimits(page=4 << 20),
                        cache_path=(tmp_path / "cache.sqlite") if cached else None)
        with pytest.raises(FetchError) as err:
            client.get(f"{server.url}/page")
        expected = "announces 10,737,418,240 bytes" if announce else "has more than 4,194,304 bytes"
        assert expected in err.value.reason and "text/html" in err.value.reason
        assert server.sent < (64 << 20)  # stopped near the limit, not after gigabytes
    finally:
        server.close()


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
