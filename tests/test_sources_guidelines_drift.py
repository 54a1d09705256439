"""Site drift is loud: selector-hit counts in state and summary, the trafilatura fallback, a
non-zero exit with one line naming the spec key, and `guidelines check` — all over real HTTP on
127.0.0.1 against the bundled fixture sites and deliberately changed copies of one of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from gap_replay.cli.guidelines import cli
from gap_replay.http import RetryPolicy
from gap_replay.resources import sample_sites_dir
from gap_replay.sample.server import SiteServer
from gap_replay.sources import AcquireContext, AcquireError, run_acquirers
from gap_replay.sources.guidelines.acquire import acquire
from gap_replay.sources.guidelines.drift import RunLog
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source
from gap_replay.sources.guidelines.spec import get_spec
from gap_replay.state import State
from conftest import raw_guideline_records

FAST = RetryPolicy(max_retries=0, backoff=0.01, max_wait=1, timeout=3)
ARTICLES = ("amoxicillin", "atorvastatin", "metformin")
LISTING_URL = "https://www.drugs.com/dosage/"


def site_copy(tmp_path: Path, tag: str = "drugs") -> Path:
    """A copy of one bundled fixture site under tmp_path/sites/<tag>, to change in a test."""
    root = tmp_path / "sites"
    shutil.copytree(sample_sites_dir() / tag, root / tag)
    return root


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path} no longer has {old!r}: update this test's site change"
    path.write_text(text.replace(old, new), encoding="utf-8")


def rename_content_root(root: Path) -> None:
    """A redesign: the article pages' content root `#content` is now `#page-body`."""
    for page in sorted((root / "drugs" / "dosage").glob("*.html")):
        if page.name != "index.html":
            rewrite(page, 'id="content"', 'id="page-body"')


def drop_listing_lists(root: Path) -> None:
    """A redesign: the dosage index lists its letters in <div>s, so `ul li a` finds nothing."""
    page = root / "drugs" / "dosage" / "index.html"
    rewrite(page, "<ul", "<div")
    rewrite(page, "</ul>", "</div>")
    rewrite(page, "<li>", "<span>")
    rewrite(page, "</li>", "</span>")


def records(out: Path, tag: str = "drugs") -> list[dict]:
    return raw_guideline_records(out, tag)


def run_scrape(server: SiteServer, out: Path, *extra: str, tag: str = "drugs"):
    return CliRunner().invoke(cli, ["scrape", "--source", tag, "--output", str(out), "--base-url",
                                    server.base_url(tag), "--rate", "0", "--retries", "0", *extra])


def broken_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("BROKEN: ", "warning: "))]


def test_a_working_source_counts_its_selector_hits_in_state_and_summary(tmp_path):
    with SiteServer(sample_sites_dir()) as server:
        result = run_scrape(server, tmp_path)
    assert result.exit_code == 0, result.output
    assert ("selectors: 3 listing pages, 3 links, 3 articles fetched, 3 content selector hits, "
            "0 fallback extractions, 0 later alternatives, 3 documents") in result.output
    assert broken_lines(result.output) == []
    assert {r["meta"]["extraction"] for r in records(tmp_path)} == {"selector"}
    [run] = RunLog(State(tmp_path / "state.sqlite")).runs("drugs")
    assert (run["listing_pages"], run["listing_links"], run["articles_fetched"], run["content_hits"],
            run["fallback_extractions"], run["documents"], run["ok"], run["complete"]) == (3, 3, 3, 3, 0, 3, 1, 1)


def test_content_selector_that_matches_nothing_falls_back_keeps_documents_and_exits_1(tmp_path):
    root = site_copy(tmp_path)
    rename_content_root(root)
    out = tmp_path / "out"
    with SiteServer(root) as server:
        result = run_scrape(server, out)
    assert result.exit_code == 1, result.output
    assert broken_lines(result.output) == [
        "BROKEN: drugs: content selector '#content | div.contentBox' (article.content) matched "
        "nothing on 3 of 3 pages; their text came from the fallback extractor "
        "(meta.extraction: fallback) — update article.content in guidelines/drugs.yaml"]
    docs = records(out)
    assert len(docs) == 3                                     # kept, not lost
    assert {d["meta"]["extraction"] for d in docs} == {"fallback"}
    amoxicillin = next(d for d in docs if d["url"].endswith("amoxicillin.html"))
    assert "The higher dose is recommended for severe infections." in amoxicillin["meta"]["raw_text"]
    [run] = RunLog(State(out / "state.sqlite")).runs("drugs")
    assert (run["content_hits"], run["fallback_extractions"], run["ok"]) == (0, 3, 0)


def test_one_page_of_another_shape_is_a_note_not_a_failure(tmp_path):
    root = site_copy(tmp_path)
    rewrite(root / "drugs" / "dosage" / "metformin.html", 'id="content"', 'id="page-body"')
    out = tmp_path / "out"
    with SiteServer(root) as server:
        result = run_scrape(server, out)
    assert result.exit_code == 0, result.output
    assert broken_lines(result.output) == []
    assert ("note: drugs: content selector '#content | div.contentBox' (article.content) matched "
            "nothing on 1 of 3 pages") in result.output
    assert sorted(d["meta"]["extraction"] for d in records(out)) == ["fallback", "selector", "selector"]


def test_allow_partial_turns_the_problem_into_a_warning(tmp_path):
    root = site_copy(tmp_path)
    rename_content_root(root)
    with SiteServer(root) as server:
        result = run_scrape(server, tmp_path / "out", "--allow-partial")
    assert result.exit_code == 0, result.output
    [line] = broken_lines(result.output)
    assert line.startswith("warning: drugs: content selector '#content | div.contentBox'")


def test_listing_selector_that_finds_no_links_names_the_step_and_its_selector(tmp_path):
    root = site_copy(tmp_path)
    drop_listing_lists(root)
    with SiteServer(root) as server:
        result = run_scrape(server, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert broken_lines(result.output) == [
        f"BROKEN: drugs: selector 'ul li a' (discovery[0].links) found 0 links on {LISTING_URL} "
        "— update it in guidelines/drugs.yaml"]


def test_listing_http_404_fails_the_run_and_the_summary_counts_it(tmp_path):
    """`scrape --source X` that fetched nothing used to print "0 failed" and exit 0."""
    root = site_copy(tmp_path)
    (root / "drugs" / "dosage" / "index.html").unlink()
    out = tmp_path / "out"
    with SiteServer(root) as server:
        result = run_scrape(server, out)
    assert result.exit_code == 1, result.output
    assert "drugs: 0 records (" in result.output and "1 listing pages failed" in result.output
    assert broken_lines(result.output) == [
        f"BROKEN: drugs: listing {LISTING_URL} returned HTTP 404 — check discovery[0].urls in "
        "guidelines/drugs.yaml"]
    listed = CliRunner().invoke(cli, ["list", "--output", str(out), "--json"])
    row = next(r for r in orjson.loads(listed.output) if r["tag"] == "drugs")
    assert row["failures"] == 1                                # list and scrape now agree
    assert row["problems"] == [broken_lines(result.output)[0].removeprefix("BROKEN: ")]
    table = CliRunner().invoke(cli, ["list", "--output", str(out)]).output
    assert next(line for line in table.splitlines() if line.startswith("drugs ")).endswith("Z BROKEN")


def test_fewer_than_half_of_the_previous_good_run_fails(tmp_path):
    root = site_copy(tmp_path)
    out = tmp_path / "out"
    with SiteServer(root) as server:
        assert run_scrape(server, out).exit_code == 0
        # the letter pages now link two of the three articles under a path the spec misses
        rewrite(root / "drugs" / "dosage-a.html", "/dosage/atorvastatin.html", "/dosage-guide/atorvastatin")
        rewrite(root / "drugs" / "dosage-m.html", "/dosage/metformin.html", "/dosage-guide/metformin")
        result = run_scrape(server, out)
    assert result.exit_code == 1, result.output
    [line] = broken_lines(result.output)
    assert line == ("BROKEN: drugs: 1 documents, fewer than half of the previous run's 3: the listing "
                    "gave 1 article links — check discovery[1].links / discovery[1].include in "
                    "guidelines/drugs.yaml")


def test_the_acquirer_reports_problems_and_download_fails(tmp_path):
    root = site_copy(tmp_path)
    drop_listing_lists(root)
    with SiteServer(root) as server:
        ctx = AcquireContext(output=str(tmp_path / "a"), recipe={}, sample_url=server.url,
                             options={"guideline_sources": ["drugs"], "progress": False})
        summary = acquire(ctx)
    assert summary["problems"] == [
        f"drugs: selector 'ul li a' (discovery[0].links) found 0 links on {LISTING_URL} "
        "— update it in guidelines/drugs.yaml"]
    assert summary["sources"]["drugs"]["drift"]["listing_links"] == 0
    with pytest.raises(AcquireError, match=r"guidelines: drugs: selector 'ul li a'"):
        run_acquirers(["guidelines"], str(tmp_path / "b"), {}, sample_sites=root,
                      options={"guideline_sources": ["drugs"], "progress": False})


def test_limit_zero_is_not_judged(tmp_path):
    with SiteServer(sample_sites_dir()) as server:
        summary = scrape_source(get_spec("drugs"), tmp_path, ScrapeOptions(
            base_url=server.base_url("drugs"), rate=0, progress=False, limit=0, retry=FAST))
    assert summary.problems == [] and summary.records == 0


def test_check_against_the_fixture_sites_finds_every_source_working():
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["source", "reachable", "listing"]
    rows = [line.split() for line in lines[1:17]]
    assert len(rows) == 16 and all(r[1] == "yes" for r in rows), result.output
    assert all(r[-1] in ("ok", "note") for r in rows), result.output
    drugs = next(line for line in lines if line.startswith("drugs "))
    assert " hit " in drugs and "Amoxicillin" in drugs


@pytest.mark.parametrize("change, diagnosis", [
    (rename_content_root,
     "BROKEN: drugs: content selector '#content | div.contentBox' (article.content) matched nothing "
     "on 1 of 1 pages"),
    (drop_listing_lists,
     f"BROKEN: drugs: selector 'ul li a' (discovery[0].links) found 0 links on {LISTING_URL} "
     "— update it in guidelines/drugs.yaml"),
])
def test_check_flags_a_changed_site_with_a_one_line_diagnosis(tmp_path, change, diagnosis):
    root = site_copy(tmp_path)
    change(root)
    with SiteServer(root) as server:
        result = CliRunner().invoke(cli, ["check", "--source", "drugs", "--base-url",
                                          server.base_url("drugs")])
        assert len(server.requests_to("/")) <= 6              # a few requests, not a crawl
    assert result.exit_code == 1, result.output
    row = result.output.splitlines()[1].split()
    assert row[0] == "drugs" and row[-1] == "BROKEN"
    [line] = broken_lines(result.output)
    assert line.startswith(diagnosis), line


def test_check_unreachable_host_is_broken_not_a_traceback():
    result = CliRunner().invoke(cli, ["check", "--source", "drugs", "--base-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[1].split()[:2] == ["drugs", "no"]
    [line] = broken_lines(result.output)
    assert line.startswith("BROKEN: drugs: cannot reach 127.0.0.1:9") and "base_url" in line
