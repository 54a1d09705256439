"""Scraping under faults, resume after a kill, and identical reruns, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gap_replay.http import PoliteClient, RetryPolicy
from gap_replay.resources import sample_sites_dir
from gap_replay.sample.server import Fault, SiteServer
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source
from gap_replay.sources.guidelines.spec import get_spec, parse_spec
from gap_replay.state import State
from conftest import raw_guideline_records

CAP = "/idsa/practice-guideline/community-acquired-pneumonia-in-adults/"
CDI = "/idsa/practice-guideline/clostridioides-difficile-infection/"
LISTING = "/idsa/practice-guideline/all-practice-guidelines/"
FAST = RetryPolicy(max_retries=2, backoff=0.01, max_wait=5, timeout=0.5)
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def server():
    with SiteServer(sample_sites_dir()) as srv:
        yield srv




def shard_bytes(out, tag):
    return {p.name: p.read_bytes() for p in sorted((Path(out) / "raw" / "guidelines" / tag).glob("*.gz"))}


def scrape(server, out, tag="idsa", **kw):
    kw.setdefault("retry", FAST)
    return scrape_source(get_spec(tag), out, ScrapeOptions(base_url=server.base_url(tag), rate=0,
                                                           progress=False, **kw))


def statuses(server, path, expect: int = 0):
    """Statuses logged for `path`; a hung request is logged when its handler finishes, so wait
    (briefly) until `expect` entries are there."""
    deadline = time.monotonic() + 5
    while len(server.requests_to(path)) < expect and time.monotonic() < deadline:
        time.sleep(0.05)
    return [r.status for r in server.requests_to(path)]


@pytest.mark.parametrize("path, fault, logged", [
    (CAP, Fault("status", 500), [500, 200]),
    (CDI, Fault("hang", seconds=1.5), [0, 200]),          # client timeout 0.5 s, then retried
    (CAP, Fault("reset"), [0, 200]),
    (CDI, Fault("truncate", keep_bytes=300), [200, 200]),  # body cut short: retried, not kept half
    (LISTING, Fault("truncate", keep_bytes=200), [200, 200]),
    (LISTING, Fault("status", 503), [503, 200]),
])
def test_transient_faults_are_retried_and_nothing_is_lost(server, tmp_path, path, fault, logged):
    server.inject(path, fault)
    summary = scrape(server, tmp_path)
    assert sorted(statuses(server, path, len(logged))) == sorted(logged)  # log order = completion order
    records = raw_guideline_records(tmp_path, "idsa")   # the in-development page is rejected: state only
    assert len(records) == 2 and len({r["id"] for r in records}) == 2
    assert summary.failed == 0 and State(tmp_path / "state.sqlite").failures() == []
    cdi = next(r for r in records if "clostridioides" in r["url"])
    assert cdi["text"].endswith("acceptable alternative for an initial episode.")  # complete body


def test_429_retry_after_is_honoured(server, tmp_path):
    server.inject(CAP, Fault("status", 429, headers={"Retry-After": "1"}))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = PoliteClient(base_url=server.base_url("idsa"), rate=0, retry=FAST, sleep=sleep,
                          cache_path=tmp_path / "cache" / "http.sqlite")
    started = time.monotonic()
    scrape_source(get_spec("idsa"), tmp_path, ScrapeOptions(progress=False), client=client)
    assert statuses(server, CAP) == [429, 200]
    assert waits == [1.0] and time.monotonic() - started >= 1.0
    assert len(raw_guideline_records(tmp_path, "idsa")) == 2   # and the rejected in-development page


def test_persistent_failure_is_bounded_recorded_and_retried_next_run(server, tmp_path):
    server.inject(CAP, *[Fault("status", 500)] * 10)
    summary = scrape(server, tmp_path)
    assert statuses(server, CAP) == [500, 500, 500]          # max_retries=2: three attempts, no more
    assert summary.failed == 1
    failures = State(tmp_path / "state.sqlite").failures("idsa")
    assert failures == [("https://www.idsociety.org/practice-guideline/community-acquired-pneumonia-in-adults/",
                         "gave up after 3 attempts: HTTP 500", 500)]
    assert len(raw_guideline_records(tmp_path, "idsa")) == 1            # the other two are recorded; one
                                                              # is rejected (state only)

    server.faults.clear()
    server.clear_log()
    summary = scrape(server, tmp_path)
    assert statuses(server, CAP) == [200]
    assert statuses(server, CDI) == []                        # already done: not fetched again
    assert summary.failed == 0 and State(tmp_path / "state.sqlite").failures() == []
    assert len(raw_guideline_records(tmp_path, "idsa")) == 2   # and the rejected in-development page


def test_failed_listing_page_is_recorded_not_fatal(server, tmp_path):
    server.inject(LISTING, *[Fault("status", 500)] * 3)
    summary = scrape(server, tmp_path)
    assert summary.records == 0
    assert State(tmp_path / "state.sqlite").failures("idsa:listing")[0][2] == 500
    server.faults.clear()
    assert scrape(server, tmp_path).records == 3
    assert State(tmp_path / "state.sqlite").failures() == []


def test_unchanged_site_rerun_gets_304s_and_identical_shards(server, tmp_path):
    scrape(server, tmp_path)
    first = shard_bytes(tmp_path, "idsa")
    time.sleep(1.1)  # a new fetched_at would differ by a second
    server.clear_log()
    plain = scrape(server, tmp_path)                         # resume semantics: done pages skipped
    assert plain.skipped == 3 and plain.scraped == 0
    assert statuses(server, LISTING) == [304]
    assert statuses(server, CAP) == []
    assert shard_bytes(tmp_path, "idsa") == first

    server.clear_log()
    refreshed = scrape(server, tmp_path, refresh=True)      # revalidate every article
    assert statuses(server, CAP) == [304] and statuses(server, CDI) == [304]
    assert refreshed.unchanged == 3 and refreshed.scraped == 0
    assert shard_bytes(tmp_path, "idsa") == first


def test_limit_then_resume(server, tmp_path):
    assert scrape(server, tmp_path, limit=1).records == 1
    summary = scrape(server, tmp_path)
    assert summary.skipped == 1 and summary.scraped == 2 and summary.records == 3


def _acme_site(root: Path) -> dict:
    site = root / "acme"
    (site / "g").mkdir(parents=True)
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (site / "list").write_text(
        '<html><body><ul id="l"><li><a href="/g/a">A</a></li><li><a href="/g/a-print">A (print)</a></li>'
        '<li><a href="/g/broken">Broken</a></li><li><a href="/private/x">Private</a></li></ul></body></html>')
    body = ("<html lang='en'><head><title>Gout</title>{canon}</head><body><article><h1>Gout</h1>"
            "<p>Colchicine 0.5 mg two to four times daily (max 2 mg/day) treats acute flares.</p>"
            "<h2>Long-term</h2><p>Allopurinol is started at 100 mg daily and titrated to a urate below 0.36 mmol/L.</p>"
            "</article></body></html>")
    canon = "<link rel='canonical' href='https://acme.org/g/a'>"
    (site / "g" / "a").write_text(body.format(canon=canon))
    (site / "g" / "a-print").write_text(body.format(canon=canon))
    # malformed: no </head>, unclosed tags, a stray </div>, an unterminated attribute, no </html>
    (site / "g" / "broken").write_text(
        "<html><head><title>Broken page</title><body><article><h1>Broken page<h2>Dose</h1>"
        "<p>Take 5 mg <b>twice daily</div> with food<p>Avoid grapefruit juice.<ul><li>Item one<li>Item two"
        "<p class='x>Trailing")
    return parse_spec({
        "tag": "acme", "name": "ACME", "audience": "doctor", "license": "test", "redistributable": True,
        "base_url": "https://acme.org",
        "discovery": [{"urls": ["https://acme.org/list"], "links": "#l a"}],
        "article": {"content": ["article"], "title": ["title"]},
    }, "<string>")


def test_one_article_at_two_urls_and_malformed_html(tmp_path):
    spec = _acme_site(tmp_path / "sites")
    with SiteServer(tmp_path / "sites") as srv:
        opts = ScrapeOptions(base_url=srv.base_url("acme"), rate=0, progress=False, retry=FAST)
        summary = scrape_source(spec, tmp_path / "out", opts)
        assert srv.requests_to("/acme/private/") == []          # robots.txt honoured
    records = raw_guideline_records(tmp_path / "out", "acme")
    assert [r["url"] for r in records] == ["https://acme.org/g/a", "https://acme.org/g/broken"]
    assert summary.duplicates == 1 and summary.failed == 0 and summary.disallowed == 1
    broken = records[1]
    assert "Take 5 mg twice daily with food" in broken["text"]
    assert "Avoid grapefruit juice." in broken["text"] and "- Item two" in broken["text"]
    gout = records[0]
    assert "(max 2 mg/day)" in gout["text"] and gout["meta"]["redistributable"] is True
    state = State(tmp_path / "out" / "state.sqlite")
    assert state.done("guidelines/acme/alias", "https://acme.org/g/a-print") == "https://acme.org/g/a"


def test_killed_scrape_resumes_without_refetching_completed_pages(server, tmp_path):
    metformin = "/drugs/dosage/metformin.html"
    server.inject(metformin, Fault("hang", seconds=15))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gap_replay.cli.guidelines", "scrape", "--source", "drugs",
           "--output", str(out), "--base-url", server.base_url("drugs"), "--rate", "0", "--timeout", "30"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline:
            if (out / "state.sqlite").exists():
                done = State(out / "state.sqlite").execute(
                    "SELECT COUNT(*) FROM completed WHERE kind='guidelines/drugs'")[0][0]
                if done == 2 and any(r.path == "/drugs/dosage-m.html" for r in server.requests_to("/drugs/")):
                    break
            time.sleep(0.05)
        time.sleep(0.3)  # now hanging on metformin
        assert done == 2 and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "raw" / "guidelines" / "drugs").exists() or not raw_guideline_records(out, "drugs")
    server.clear_log()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "3 records (1 new/changed" in rerun.stdout and "2 already done" in rerun.stdout
    fetched = [r.path for r in server.requests_to("/drugs/dosage/") if r.path.endswith(".html")]
    assert fetched == [metformin]                  # the two completed pages were not fetched again
    assert [r["title"] for r in raw_guideline_records(out, "drugs")] == ["Amoxicillin Dosage", "Atorvastatin Dosage",
                                                               "Metformin Dosage"]


def test_sitemap_index_discovery_and_hostile_xml_is_not_resolved(tmp_path):
    site = tmp_path / "sites" / "smap"
    (site / "g").mkdir(parents=True)
    ns = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
    (site / "sitemap.xml").write_text(
        f'<?xml version="1.0"?><sitemapindex {ns}><sitemap><loc>https://smap.org/s1.xml</loc></sitemap>'
        f'<sitemap><loc>https://smap.org/evil.xml</loc></sitemap></sitemapindex>')
    (site / "s1.xml").write_text(
        f'<?xml version="1.0"?><urlset {ns}><url><loc>https://smap.org/g/one</loc></url>'
        f'<url><loc>https://smap.org/about</loc></url></urlset>')
    (site / "evil.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f'<urlset {ns}><url><loc>https://smap.org/g/&x;</loc></url></urlset>')
    (site / "g" / "one").write_text("<html><body><main><h1>One</h1><p>Guideline text about sepsis bundles "
                                    "and early antibiotics within one hour.</p></main></body></html>")
    spec = parse_spec({
        "tag": "smap", "name": "S", "audience": "both", "license": "t", "redistributable": False,
        "base_url": "https://smap.org",
        "discovery": [{"urls": ["https://smap.org/sitemap.xml"], "format": "sitemap", "include": ["/g/"]}],
    }, "<string>")
    with SiteServer(tmp_path / "sites") as srv:
        opts = ScrapeOptions(base_url=srv.base_url("smap"), rate=0, progress=False, retry=FAST)
        summary = scrape_source(spec, tmp_path / "out", opts)
        fetched = [r.path for r in srv.requests_to("/smap/g/")]
    assert [r["url"] for r in raw_guideline_records(tmp_path / "out", "smap")] == ["https://smap.org/g/one"]
    assert fetched == ["/smap/g/one"]                    # no entity expanded into a URL
    assert summary.failed == 0
    [(url, error, _status)] = State(tmp_path / "out" / "state.sqlite").failures("smap:listing")
    assert url == "https://smap.org/evil.xml" and "DTD" in error


def test_refresh_picks_up_a_changed_page_and_keeps_unchanged_ones(tmp_path):
    spec = _acme_site(tmp_path / "sites")
    out = tmp_path / "out"
    with SiteServer(tmp_path / "sites") as srv:
        opts = ScrapeOptions(base_url=srv.base_url("acme"), rate=0, progress=False, retry=FAST, refresh=True)
        scrape_source(spec, out, opts)
        before = {r["url"]: r for r in raw_guideline_records(out, "acme")}
        page = tmp_path / "sites" / "acme" / "g" / "a"
        page.write_text(page.read_text().replace("0.36 mmol/L", "0.30 mmol/L in tophaceous gout"))
        time.sleep(1.1)
        summary = scrape_source(spec, out, opts)
    after = {r["url"]: r for r in raw_guideline_records(out, "acme")}
    assert summary.scraped == 1 and summary.unchanged == 1
    gout, broken = "https://acme.org/g/a", "https://acme.org/g/broken"
    assert "0.30 mmol/L in tophaceous gout" in after[gout]["text"]
    assert after[gout]["id"] == before[gout]["id"]
    assert after[gout]["meta"]["fetched_at"] > before[gout]["meta"]["fetched_at"]
    assert after[broken] == before[broken]


def test_site_server_serves_over_long_query_variants(tmp_path):
    import hashlib
    import json
    import urllib.parse

    import requests

    from gap_replay.sample.server import variant_name
    query = "f=" + json.dumps({"range": {"start": 0, "limit": 20}, "term": "x" * 250})
    assert variant_name("index.html", "page=2") == "index.html@page=2"
    assert variant_name("index.html", query) == \
        "index.html@sha1-" + hashlib.sha1(query.encode()).hexdigest()[:16]
    site = tmp_path / "s"
    site.mkdir()
    (site / variant_name("index.html", query)).write_text("<p>long variant</p>")
    (site / "index.html@page=2").write_text("<p>page 2</p>")
    with SiteServer(tmp_path) as srv:
        long_url = srv.base_url("s") + "/?" + "f=" + urllib.parse.quote(query[2:], safe="")
        assert requests.get(long_url, timeout=5).text == "<p>long variant</p>"
        assert requests.get(srv.base_url("s") + "/?page=2", timeout=5).text == "<p>page 2</p>"
        assert requests.get(srv.base_url("s") + "/?page=3", timeout=5).status_code == 404


def test_limit_stops_discovery_early(server, tmp_path):
    summary = scrape(server, tmp_path, tag="drugs", limit=1)
    assert summary.records == 1
    assert server.requests_to("/drugs/dosage-m.html") == []   # the next index page is never fetched


def test_cross_host_redirects_follow_the_spec_and_ask_the_other_hosts_robots(tmp_path):
    """A listed page moved to another host: recorded as a failure naming both URLs, unless the
    spec lists the host in redirect_hosts; then it is followed after that host's robots.txt."""
    import dataclasses

    spec = _acme_site(tmp_path / "sites")
    other_root = tmp_path / "other"
    (other_root / "moved").mkdir(parents=True)
    (other_root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    (other_root / "moved" / "a").write_text((tmp_path / "sites" / "acme" / "g" / "a").read_text())
    with SiteServer(tmp_path / "sites") as srv, SiteServer(other_root) as other:
        moved = f"{other.url}/moved/a"
        opts = ScrapeOptions(base_url=srv.base_url("acme"), rate=0, progress=False, retry=FAST)
        srv.inject("/acme/g/a", Fault("status", 301, headers={"Location": moved}))
        summary = scrape_source(spec, tmp_path / "out", opts)
        assert other.requests_to("/moved/") == [] and summary.failed == 1
        (failure,) = State(tmp_path / "out" / "state.sqlite").execute(
            "SELECT url, error FROM failures WHERE url LIKE '%/g/a'")
        assert failure[0] == "https://acme.org/g/a"
        assert f"{srv.base_url('acme')}/g/a -> {moved}" in failure[1] and "another host" in failure[1]

        allowed = dataclasses.replace(spec, redirect_hosts=(urlsplit(other.url).netloc,))
        srv.inject("/acme/g/a", Fault("status", 301, headers={"Location": moved}))
        scrape_source(allowed, tmp_path / "out2", opts)
        assert other.requests_to("/robots.txt") and other.requests_to("/moved/a")
    urls = [r["url"] for r in raw_guideline_records(tmp_path / "out2", "acme")]
    assert "https://acme.org/g/a" in urls  # recorded under the listed URL, from the new host
