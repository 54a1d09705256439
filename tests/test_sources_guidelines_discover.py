"""Engine features over real HTTP on 127.0.0.1: mixed HTML/PDF sources (`article.format: auto`),
JSON keys containing dots (WHO's `@odata.count`), permanent failures given up after N runs,
and articles that disappear from a site's listing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path


from gap_replay.http import RetryPolicy
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import sample_sites_dir
from gap_replay.sample.server import Fault, SiteServer
from gap_replay.sources.guidelines.discover import dotted
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source
from gap_replay.sources.guidelines.spec import get_spec, parse_spec
from gap_replay.state import State

FAST = RetryPolicy(max_retries=1, backoff=0.01, max_wait=2, timeout=3)
SRC = str(Path(__file__).resolve().parents[1] / "src")
PDF = Path(__file__).parent / "fixtures" / "pdf" / "multipage.pdf"


def options(server, tag, **kw):
    return ScrapeOptions(base_url=server.base_url(tag), rate=0, progress=False, retry=FAST, **kw)


def shard_docs(out, tag):
    quarantine = Quarantine()
    docs = {d.url: d for shard in list_shards(Path(out) / "raw" / "guidelines" / tag)
            for d in iter_documents(shard, quarantine, "guidelines")}
    assert len(quarantine) == 0
    return docs


# -- JSON paths ---------------------------------------------------------------------------------
def test_dotted_finds_keys_that_contain_dots():
    data = {"@odata.count": 3, "value": [{"a": {"b.c": 1, "d": 2}}], "x": {"y": 4}}
    assert dotted(data, "@odata.count") == 3            # the literal key, not @odata → count
    assert dotted(data, ["@odata.count"]) == 3          # a list path takes keys literally
    assert dotted(data, "value.0.a.b.c") == 1
    assert dotted(data, "value.0.a.d") == 2 and dotted(data, "x.y") == 4
    assert dotted(data, "x.z") is None and dotted(data, ["x.y"]) is None


def test_who_paging_stops_at_the_odata_count(tmp_path):
    """WHO's API answers 3 of @odata.count 3 on the first page: no request for $skip=100."""
    with SiteServer(sample_sites_dir()) as server:
        summary = scrape_source(get_spec("who"), tmp_path, options(server, "who"))
        api = [r.path for r in server.requests_to("/who/api/hubs/publications")]
    assert summary.records == 3 and summary.failed == 0
    assert len(api) == 1 and ("%24skip=0" in api[0] or "$skip=0" in api[0]), api
    assert summary.listing_pages == 1


def test_json_paths_as_lists_in_a_spec():
    spec = parse_spec({
        "tag": "x", "name": "X", "audience": "doctor", "license": "l", "redistributable": False,
        "base_url": "https://x.org",
        "discovery": [{"urls": ["https://x.org/api?skip=0"], "format": "json",
                       "json": {"items": ["data", "items"], "url": "https://x.org{path}",
                                "total": ["@odata.count"], "fields": {"title": ["meta.title"]}}}]},
        "<string>")
    listing = spec.discovery[0].json
    assert listing.items == ("data", "items") and listing.total == ("@odata.count",)
    assert listing.fields == {"title": ("meta.title",)}


# -- article.format: auto -----------------------------------------------------------------------
AUTO_SPEC = {
    "tag": "mixed", "name": "Mixed", "audience": "doctor", "license": "open", "redistributable": True,
    "base_url": "https://mixed.example.org",
    "discovery": [{"urls": ["https://mixed.example.org/list"], "links": "ul a", "title": "text"}],
    "article": {"format": "auto", "content": ["main"], "title": ["h1", "hint"]},
    "clean": {"min_chars": 10},
}


def make_mixed_site(root: Path) -> None:
    site = root / "mixed"
    (site / "docs").mkdir(parents=True)
    (site / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    (site / "list").write_text(
        "<html><body><ul><li><a href='/docs/guide.html'>HTML guide</a></li>"
        "<li><a href='/docs/download'>Sepsis bundle (PDF, no extension)</a></li></ul></body></html>")
    (site / "docs" / "guide.html").write_text(
        "<html lang='en'><head><title>t</title></head><body><main><h1>Hypertension guide</h1>"
        "<p>Measure blood pressure in both arms at the first visit and repeat it twice.</p>"
        "</main></body></html>")
    shutil.copy(PDF, site / "docs" / "download")   # a PDF served without a .pdf name


def test_auto_format_reads_pdf_answers_as_pdfs_and_pages_as_html(tmp_path):
    make_mixed_site(tmp_path / "sites")
    spec = parse_spec(AUTO_SPEC, "<string>")
    with SiteServer(tmp_path / "sites") as server:
        summary = scrape_source(spec, tmp_path / "out", options(server, "mixed"))
        fetched = [r.path for r in server.requests_to("/mixed/docs/")]
    assert summary.failed == 0 and summary.records == 2
    docs = shard_docs(tmp_path / "out", "mixed")
    html = docs["https://mixed.example.org/docs/guide.html"]
    assert html.title == "Hypertension guide" and "both arms" in html.text
    assert "pdf_url" not in html.meta
    pdf = docs["https://mixed.example.org/docs/download"]
    assert pdf.title == "Sepsis bundle (PDF, no extension)"     # title kept from the listing
    assert pdf.url == pdf.meta["pdf_url"] == "https://mixed.example.org/docs/download"
    assert pdf.meta["pdf_pages"] >= 2 and pdf.text and "%PDF" not in pdf.meta["raw_text"]
    assert sorted(fetched) == ["/mixed/docs/download", "/mixed/docs/guide.html"]   # one GET each


def test_auto_format_is_a_valid_spec_value_and_cma_uses_it():
    assert get_spec("cma").article.format == "auto"
    assert not any("pdf" in p for p in get_spec("cma").discovery[1].exclude)


# -- permanent failures -------------------------------------------------------------------------
IDSA = "/idsa/practice-guideline/"
CDI = IDSA + "clostridioides-difficile-infection/"
CAP = IDSA + "community-acquired-pneumonia-in-adults/"
CDI_URL = "https://www.idsociety.org/practice-guideline/clostridioides-difficile-infection/"
CAP_URL = "https://www.idsociety.org/practice-guideline/community-acquired-pneumonia-in-adults/"


def copy_site(tmp_path, tag):
    root = tmp_path / "sites"
    shutil.copytree(Path(sample_sites_dir()) / tag, root / tag)
    return root


def test_permanent_404_is_given_up_after_n_runs_transient_5xx_is_not(tmp_path):
    root = copy_site(tmp_path, "idsa")
    shutil.rmtree(root / "idsa/practice-guideline/clostridioides-difficile-infection")  # 404 for good
    out = tmp_path / "out"
    spec = get_spec("idsa")
    with SiteServer(root) as server:
        for run in range(1, 5):
            server.clear_log()
            # the CAP page answers 503 on every attempt of every run (transient)
            server.inject(CAP, Fault("status", 503), Fault("status", 503))
            summary = scrape_source(spec, out, options(server, "idsa"))
            cdi_requests = len(server.requests_to(CDI))
            cap_requests = len(server.requests_to(CAP))
            state = State(out / "state.sqlite")
            statuses = {url: (status, attempts) for url, _s, _e, status, attempts in state.execute(
                "SELECT url, source, error, status, attempts FROM failures")}
            assert cap_requests == 2                       # retried within the run and every run
            if run <= 3:
                assert cdi_requests == 1 and summary.given_up == 0
                assert statuses[CDI_URL] == (404, run)     # recorded with its status each run
            else:
                assert cdi_requests == 0                   # given up: no request at all
                assert summary.given_up == 1 and summary.given_up_urls[0][0] == CDI_URL
                assert statuses[CDI_URL] == (404, 3)       # still recorded, never dropped
            assert statuses[CAP_URL] == (503, run)
        # configurable: 0 = never give up, so the gone page is requested again
        server.clear_log()
        summary = scrape_source(spec, out, options(server, "idsa", give_up_after=0))
        assert len(server.requests_to(CDI)) == 1 and summary.given_up == 0
        assert summary.records == 2   # CAP now answers (no fault injected), Lyme was already done

    listing = subprocess.run(
        [sys.executable, "-m", "gap_replay.cli.guidelines", "list", "--output", str(out), "--json"],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert listing.returncode == 0, listing.stderr
    idsa = next(r for r in json.loads(listing.stdout) if r["tag"] == "idsa")
    assert idsa["failures"] == 1 and idsa["given_up"] == 1       # the 404 URL, 4 runs of 404
    table = subprocess.run(
        [sys.executable, "-m", "gap_replay.cli.guidelines", "list", "--output", str(out)],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert "failures" in table.stdout.splitlines()[0]
    assert "1 (1 given up)" in next(l for l in table.stdout.splitlines() if l.startswith("idsa"))


def test_transient_then_permanent_starts_the_count_over(tmp_path):
    root = copy_site(tmp_path, "idsa")
    out = tmp_path / "out"
    spec = get_spec("idsa")
    with SiteServer(root) as server:
        for _ in range(3):   # three runs of 5xx on CDI: never given up
            server.inject(CDI, Fault("status", 500), Fault("status", 500))
            scrape_source(spec, out, options(server, "idsa", give_up_after=2))
        shutil.rmtree(root / "idsa/practice-guideline/clostridioides-difficile-infection")
        server.clear_log()
        first_404 = scrape_source(spec, out, options(server, "idsa", give_up_after=2))
        assert len(server.requests_to(CDI)) == 1 and first_404.given_up == 0   # 404 run 1 of 2
        scrape_source(spec, out, options(server, "idsa", give_up_after=2))     # 404 run 2 of 2
        server.clear_log()
        third = scrape_source(spec, out, options(server, "idsa", give_up_after=2))
        assert len(server.requests_to(CDI)) == 0 and third.given_up == 1


# -- articles that disappear from the site ------------------------------------------------------
CDI_REC, CAP_REC = CDI_URL.rstrip("/"), CAP_URL.rstrip("/")   # record URLs are canonical


def unlist(root: Path, slug: str) -> str:
    """Remove one guideline's entries from the IDSA listing; returns the original listing."""
    listing = root / "idsa/practice-guideline/all-practice-guidelines/index.html"
    original = listing.read_text(encoding="utf-8")
    edited = re.sub(r"<a [^>]*href=\"[^\"]*" + slug + r"/?[^\"]*\"[^>]*>.*?</a>", "", original,
                    flags=re.S)
    assert edited != original
    listing.write_text(edited, encoding="utf-8")
    return original


def test_article_no_longer_listed_leaves_the_shards_and_comes_back(tmp_path):
    root = copy_site(tmp_path, "idsa")
    out = tmp_path / "out"
    spec = get_spec("idsa")
    listing = root / "idsa/practice-guideline/all-practice-guidelines/index.html"
    with SiteServer(root) as server:
        first = scrape_source(spec, out, options(server, "idsa"))
        assert first.records == 3 and CDI_REC in shard_docs(out, "idsa")
        original = unlist(root, "clostridioides-difficile-infection")

        # --limit: discovery is not the whole listing's verdict; nothing is removed
        limited = scrape_source(spec, out, options(server, "idsa", limit=5))
        assert limited.removed == 0 and CDI_REC in shard_docs(out, "idsa")
        # a listing page that fails: not a full discovery either
        server.inject(IDSA + "all-practice-guidelines/", Fault("status", 500), Fault("status", 500))
        broken = scrape_source(spec, out, options(server, "idsa"))
        assert broken.removed == 0 and CDI_REC in shard_docs(out, "idsa")

        full = scrape_source(spec, out, options(server, "idsa"))
        assert full.removed == 1 and full.records == 2 and full.failed == 0
        docs = shard_docs(out, "idsa")
        assert CDI_REC not in docs and CAP_REC in docs and len(docs) == 1   # + 1 rejected: state only
        again = scrape_source(spec, out, options(server, "idsa"))
        assert again.removed == 0 and again.records == 2     # counted once, stays out

        # listed again: back in the shards from the state, without fetching it
        listing.write_text(original, encoding="utf-8")
        server.clear_log()
        back = scrape_source(spec, out, options(server, "idsa"))
        assert back.restored == 1 and back.records == 3 and CDI_REC in shard_docs(out, "idsa")
        assert server.requests_to(CDI) == []


def test_cli_summary_counts_removed_articles(tmp_path):
    root = copy_site(tmp_path, "idsa")
    out = tmp_path / "out"
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}
    with SiteServer(root) as server:
        cmd = [sys.executable, "-m", "gap_replay.cli.guidelines", "scrape", "--source", "idsa",
               "--output", str(out), "--base-url", server.base_url("idsa"), "--rate", "0"]
        assert subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env).returncode == 0
        unlist(root, "community-acquired-pneumonia-in-adults")
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "idsa: 2 records" in result.stdout and "1 no longer listed" in result.stdout
    assert CAP_REC not in shard_docs(out, "idsa")


def test_a_step_with_start_urls_begins_a_second_discovery_chain():
    from gap_replay.sources.guidelines.discover import Discoverer

    chains = Discoverer(get_spec("cdc"), fetch=None, on_failure=None).chains()
    assert [len(c) for c in chains] == [1, 1]
    assert "cbrowse" in chains[0][0].urls[0] and "health-topics" in chains[1][0].urls[0]
