"""The `guidelines` CLI (list, scrape, clean) and the `gap-replay download` acquirer."""

from __future__ import annotations

import re
import shutil

import orjson
import pytest
import yaml
from click.testing import CliRunner

from gap_replay.cli.guidelines import cli
from gap_replay.resources import sample_sites_dir, spec_dir
from gap_replay.sample.server import SiteServer
from gap_replay.sources import AcquireContext
from gap_replay.sources.guidelines.acquire import acquire
from gap_replay.sources.guidelines.store import RecordStore
from gap_replay.state import State
from conftest import raw_guideline_records


@pytest.fixture(scope="module")
def server():
    with SiteServer(sample_sites_dir()) as srv:
        yield srv




def test_list_shows_every_spec_with_licence():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["tag", "name", "audience", "license", "redistributable", "documents",
                                 "failures", "last_run"]
    for tag in ("aafp", "cps", "drugs", "gc", "idsa", "magic", "mayo", "rch"):
        row = next(re.split(r"\s{2,}", l.strip()) for l in lines if l.startswith(tag + " "))
        assert row[4] == "no" and row[3].startswith("©"), row


def test_scrape_then_list_documents_and_last_run(server, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["scrape", "--source", "idsa", "--source", "rch", "--output", str(tmp_path),
                                 "--base-url", server.base_url("idsa"), "--rate", "0"])
    # --base-url applies to every selected source: rch's pages are not on the idsa site, so rch
    # is broken: one line names the listing, its status and the spec key, and the exit is 1
    assert result.exit_code == 1, result.output
    assert "idsa: 3 records" in result.output and "rch: 0 records" in result.output
    assert "failed: https://www.rch.org.au/" in result.output      # the failure is reported ...
    assert re.search(r"^BROKEN: rch: listing https://www\.rch\.org\.au/\S+ returned HTTP 404 — "
                     r"check discovery(\[\d\])?\.urls in guidelines/rch\.yaml$", result.output, re.M)
    listing = runner.invoke(cli, ["list", "--output", str(tmp_path), "--json"])
    rows = {r["tag"]: r for r in orjson.loads(listing.output)}
    assert rows["idsa"]["documents"] == 3 and rows["idsa"]["last_run"].endswith("Z")
    assert rows["aafp"]["last_run"] == "never"


@pytest.mark.parametrize("args, message", [
    (["scrape", "--output", "x"], "give --source TAG"),
    (["scrape", "--all", "--source", "idsa", "--output", "x"], "give --source TAG"),
    (["scrape", "--source", "nope", "--output", "x"], "unknown source nope"),
])
def test_scrape_usage_errors(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output


def test_help_has_examples():
    for cmd in ([], ["list"], ["scrape"], ["clean"]):
        result = CliRunner().invoke(cli, cmd + ["--help"])
        assert result.exit_code == 0 and "Examples:" in result.output


def test_clean_rederives_text_without_fetching(server, tmp_path):
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["scrape", "--source", "idsa", "--output", str(out),
                               "--base-url", server.base_url("idsa"), "--rate", "0"]).exit_code == 0
    before = {r["url"]: r for r in raw_guideline_records(out, "idsa")}
    specs = tmp_path / "specs"
    shutil.copytree(spec_dir("guidelines"), specs)
    data = yaml.safe_load((specs / "idsa.yaml").read_text())
    data["clean"]["drop_lines_containing"] = ["fidaxomicin"]
    (specs / "idsa.yaml").write_text(yaml.safe_dump(data))
    server.clear_log()
    result = runner.invoke(cli, ["--specs", str(specs), "clean", "--output", str(out), "--source", "idsa"])
    assert result.exit_code == 0, result.output
    assert "idsa: 3 records, 1 changed, 1 rejected by rules" in result.output
    assert re.search(r"characters removed by rule: .*drop_lines_containing \d+", result.output)
    assert server.requests_to("/") == []                       # nothing fetched
    after = {r["url"]: r for r in raw_guideline_records(out, "idsa")}
    cdi = "https://www.idsociety.org/practice-guideline/clostridioides-difficile-infection"
    assert "fidaxomicin" in before[cdi]["text"] and "fidaxomicin" not in after[cdi]["text"]
    assert after[cdi]["meta"]["raw_text"] == before[cdi]["meta"]["raw_text"]
    assert after[cdi]["id"] == before[cdi]["id"]
    cap = "https://www.idsociety.org/practice-guideline/community-acquired-pneumonia-in-adults"
    assert after[cap] == before[cap]


def test_clean_without_a_scrape_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["clean", "--output", str(tmp_path), "--source", "idsa"])
    assert result.exit_code == 1 and "run `guidelines scrape` first" in result.output


def test_acquire_with_the_sample_server(server, tmp_path):
    ctx = AcquireContext(output=str(tmp_path), recipe={}, sample_url=server.url, workers=2,
                         options={"guideline_sources": ["idsa", "rch"], "progress": False})
    summary = acquire(ctx)
    assert summary["records"] == 6 and summary["failed"] == 0
    assert summary["sources"]["rch"]["records"] == 3
    assert {r["subset"] for r in raw_guideline_records(tmp_path, "rch")} == {"rch"}


def test_several_sources_side_by_side_share_state_and_cache(server, tmp_path):
    from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_sources
    from gap_replay.sources.guidelines.spec import get_spec
    tags = ["idsa", "rch", "drugs", "gc"]
    options = ScrapeOptions(site_urls={t: server.base_url(t) for t in tags}, rate=0, progress=False)
    out = scrape_sources([get_spec(t) for t in tags], tmp_path, options, workers=4)
    assert [(tag, s.records, s.failed) for tag, s in out] == [(t, 3, 0) for t in tags]
    for tag in tags:   # rejected pages (no guideline in them) stay in the state, out of raw
        store = RecordStore(State(tmp_path / "state.sqlite"), tag)
        assert len(raw_guideline_records(tmp_path, tag)) + store.rejected() == 3


def test_workers_with_a_shared_base_url_is_refused():
    result = CliRunner().invoke(cli, ["scrape", "--all", "--output", "x", "--workers", "2",
                                      "--base-url", "http://127.0.0.1:1/x"])
    assert result.exit_code == 2 and "--workers 1" in result.output


def test_hook_after_records_runs_before_shards_are_written(server, tmp_path):
    from gap_replay.document import Document
    from gap_replay.sources.guidelines import hooks
    from gap_replay.sources.guidelines.scrape import ScrapeOptions, reclean_source, scrape_source
    from gap_replay.sources.guidelines.spec import get_spec

    @hooks.register("test_mark_all")
    class MarkAll(hooks.Hook):
        def after_records(self, store):
            for doc in list(store.iter_records()):
                meta = {**doc.meta, "rejected": "marked by the test hook"}
                store.put(Document(doc.id, doc.source, "", doc.subset, doc.title, doc.url, meta))

    try:
        import dataclasses
        spec = dataclasses.replace(get_spec("rch"), hook="test_mark_all")
        scrape_source(spec, tmp_path, ScrapeOptions(base_url=server.base_url("rch"), rate=0, progress=False))
        store = RecordStore(State(tmp_path / "state.sqlite"), "rch")
        assert raw_guideline_records(tmp_path, "rch") == []   # rejected records stay in the state
        assert {d.meta["rejected"] for d in store.iter_records()} == {"marked by the test hook"}
        reclean_source(spec, tmp_path)   # re-cleaning restores text, then the hook marks again
        assert raw_guideline_records(tmp_path, "rch") == [] and store.rejected() == 3
    finally:
        hooks.HOOKS.pop("test_mark_all")
