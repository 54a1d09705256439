"""The source interface (sources/base.py): the families implement it, download / refresh /
ingest go through it, and no source transforms. The PubMed download sources run against the
bundled sample sites served on 127.0.0.1 (S2 API, NCBI file server, PMC Cloud bucket)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import yaml
from click.testing import CliRunner

from gap_replay.cli.main import cli
from gap_replay.http import PoliteClient, RetryPolicy
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import default_recipe_path, sample_sites_dir
from gap_replay.sample.server import SiteServer
from gap_replay.sources import AcquireContext, acquirer
from gap_replay.sources.base import Source, files_below
from gap_replay.sources.pubmed import pmc_cloud
from gap_replay.sources.pubmed.acquire import (
    MedlineBaseline,
    S2Dataset,
    refresh_dataset,
)
from gap_replay.sources.pubmed.ingest import Context, PubMedFiles
from gap_replay.sources.pubmed.pmc_cloud import PmcCloud
from gap_replay.sources.pubmed.pmc_inventory import LatestVersions
from gap_replay.sources.pubmed.s2api import S2Datasets
from gap_replay.state import State
from gap_replay.recipe import load_recipe
from gap_replay.sources.replay.ingest import RedPajamaFiles, iter_redpajama_file
from gap_replay.sources.replay.settings import ReplaySettings
from gap_replay.sources.replay.source import RedPajamaRelease
from gap_replay.sources.replay.file_task import HTTPSettings

SOURCES = Path(__file__).parent.parent / "src" / "gap_replay" / "sources"
FIX = Path(__file__).parent / "fixtures" / "pubmed"
REDPAJAMA = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
RELEASE = "2023-08-29"  # an older S2 release of the sample: full text as `s2orc`, with diffs


@pytest.fixture()
def server():
    with SiteServer(sample_sites_dir()) as srv:
        yield srv


def _client(base_url: str) -> PoliteClient:
    return PoliteClient(base_url=base_url, rate=0, respect_robots=False,
                        retry=RetryPolicy(max_retries=2, backoff=0.01, max_wait=1),
                        sleep=lambda s: None)


@pytest.fixture()
def calls(monkeypatch):
    """Every discover/fetch/extract call of the source classes, as (class, method, detail):
    fetch records what it returned, extract the id of each document it yielded."""
    seen: list[tuple[str, str, object]] = []
    for cls in (S2Dataset, MedlineBaseline, PmcCloud, PubMedFiles, RedPajamaFiles):
        for method in ("discover", "fetch", "extract"):
            original = cls.__dict__.get(method)
            if original is None:  # inherited: recorded through the parent under the caller's name
                continue

            def spy(self, *args, _original=original, _method=method, **kwargs):
                result = _original(self, *args, **kwargs)
                name = type(self).__name__
                if _method == "extract":
                    return _record(seen, name, result)
                seen.append((name, _method, result if _method == "fetch" else None))
                return result

            monkeypatch.setattr(cls, method, spy)
    return seen


def _record(seen, name, docs):
    seen.append((name, "extract", None))
    for doc in docs:
        seen.append((name, "extracted", doc.id))
        yield doc


def _raw_ids(out: Path, source: str, skip: str = "\0") -> set[str]:
    q = Quarantine()
    return {d.id for shard in list_shards(out / "raw" / source) if skip not in Path(shard).name
            for d in iter_documents(shard, q, source)}


def test_the_families_implement_the_interface(tmp_path):
    ctx = Context(tmp_path)
    try:
        jats = PubMedFiles("jats", ctx)
        assert isinstance(jats, Source) and isinstance(RedPajamaFiles(), Source)
        files = jats.discover([str(FIX / "pmc_jats")])
        assert files and files == sorted(files)
        docs = [d for f in files for d in jats.extract(jats.fetch(f), Quarantine())]
        assert len(docs) == 3 and {d.source for d in docs} == {"papers"}
    finally:
        ctx.close()


def test_redpajama_files_extract_what_the_parser_reads():
    folder = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    source = RedPajamaFiles()
    files = source.discover([str(folder)])
    assert len(files) == len(list(folder.glob("*/*.jsonl*"))) > 0
    got = [d.id for f in files for d in source.extract(source.fetch(f), Quarantine())]
    want = [d.id for f in files for d in iter_redpajama_file(f, Quarantine())]
    assert got == want and len(got) == 19


def test_the_release_discovers_and_extracts_what_ingest_reads():
    """download's side of the replay family (discover the data files, extract their documents)
    agrees with ingest's side (local files) on the same files."""
    folder = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    settings = ReplaySettings.from_recipe(load_recipe().data, url_lists=str(folder))
    release = RedPajamaRelease(settings, HTTPSettings(rate=0))
    assert isinstance(release, Source)
    files = release.discover(settings.subsets)
    assert {f.subset for f in files} == {"wikipedia", "arxiv", "stackexchange"}
    q = Quarantine()
    got = sorted((d.id, d.text) for f in files for d in release.extract(release.fetch(f), q))
    local = RedPajamaFiles()
    want = sorted((d.id, d.text) for f in local.discover([str(folder)])
                  for d in local.extract(local.fetch(f), Quarantine()))
    assert got == want and len(got) == 19 and len(q) == 0


def test_files_below_names_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: no such file"):
        files_below([str(tmp_path / "nope")], (".jsonl",))


def test_no_source_defines_or_runs_stages():
    """Sources fetch and extract; every transformation is a Stage in stages/ run by `process`."""
    offenders = []
    for path in sorted(SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "gap_replay.stages.base":
                offenders.append(f"{path.relative_to(SOURCES)}: imports {node.module}")
    assert offenders == []


def test_the_pubmed_download_steps_are_sources(server, tmp_path):
    """S2 dataset, NCBI baseline and PMC Cloud each discover (the listing), fetch (to a local
    file, or the article's bytes) and extract (the format's parser) on their own."""
    ctx = Context(tmp_path, all_records=True)
    versions = LatestVersions(tmp_path / "work" / "pubmed" / "pmc_cloud.sqlite")
    try:
        s2 = S2Dataset(ctx, S2Datasets(_client(server.base_url("s2api")), "k"), "s2orc", RELEASE,
                       tmp_path, Quarantine())
        baseline = MedlineBaseline(ctx, _client(server.base_url("ncbi")), tmp_path,
                                   updates=True, limit=None)
        pmc = PmcCloud(pmc_cloud.make_client(endpoint_url=server.url, rate=0), tmp_path,
                       State(tmp_path / "state.sqlite"), versions, Quarantine(),
                       licenses=None, open_access_only=True)
        assert all(isinstance(s, Source) for s in (s2, baseline, pmc))

        (file,) = s2.discover()
        local = s2.fetch(file)
        assert local == tmp_path / "downloads" / "s2" / RELEASE / "s2orc" / "s2orc_0000.jsonl.gz"
        assert (s2.totals["rows"], s2.totals["kept"]) == (2, 1)  # the PubMed row only
        assert [d.id for d in s2.extract(local, Quarantine())] == ["pmid:90000001"]
        server.clear_log()
        assert s2.fetch(file) == local and not server.requests_to("/s2api/staging/")  # resumed

        urls = baseline.discover()
        assert [u.rsplit("/", 1)[-1] for u in urls] == ["pubmed20n1016.xml.gz", "pubmed20n1400.xml.gz"]
        update = baseline.fetch(urls[1])
        assert update.exists() and baseline.failed == []
        revised = [d for d in baseline.extract(update, Quarantine()) if d.id == "pmid:30913216"]
        assert len(revised) == 1 and revised[0].title.startswith("[Revised]")

        rows = list(pmc.discover())
        assert rows and pmc.candidates == len(rows)
        docs = [d for row in rows for a in [pmc.fetch(row)] if a for d in pmc.extract(a, Quarantine())]
        assert "pmcid:PMC6095483" in {d.id for d in docs}
        assert pmc.counts["documents"] == len(docs) and not pmc.failures
    finally:
        versions.close()
        ctx.close()


def test_download_refresh_and_ingest_run_through_the_sources(server, tmp_path, calls):
    """Every document the PubMed acquirers write came out of a source's extract (MEDLINE, whose
    versions resolve across files, is read whole by the driver); refresh discovers and fetches
    the diffs through S2Dataset; `ingest` reads local files through PubMedFiles/RedPajamaFiles."""
    out = tmp_path / "out"
    recipe = yaml.safe_load(default_recipe_path().read_text())
    ctx = AcquireContext(output=str(out), recipe=recipe, sample_url=server.url)
    acquirer("abstracts")(ctx)
    acquirer("papers")(ctx)
    used = {(c, m) for c, m, _ in calls}
    assert {(c, m) for c in ("S2Dataset", "PmcCloud") for m in ("discover", "fetch", "extract")
            } | {("MedlineBaseline", "discover"), ("MedlineBaseline", "fetch")} <= used
    extracted = {detail for _, m, detail in calls if m == "extracted"}
    written = _raw_ids(out, "papers") | _raw_ids(out, "abstracts", skip="pubmed20n")
    assert written and written <= extracted
    assert _raw_ids(out, "abstracts") - written  # the MEDLINE shards are there too

    calls.clear()
    refresh_dataset(out, "abstracts", "2023-08-01", api_key="k", release=RELEASE,
                    client=_client(server.base_url("s2api")), recipe=recipe)
    fetched = [d for c, m, d in calls if (c, m) == ("S2Dataset", "fetch")]
    assert fetched and all(f"diff-2023-08-01-{RELEASE}" in str(p) for p in fetched)
    assert ("S2Dataset", "discover") in {(c, m) for c, m, _ in calls}
    assert ("PubMedFiles", "extract") in {(c, m) for c, m, _ in calls}  # the fetched updates

    calls.clear()
    for fmt, path in (("jats", FIX / "pmc_jats"), ("redpajama", REDPAJAMA)):
        result = CliRunner().invoke(cli, ["ingest", "--format", fmt, str(path), "--output",
                                          str(tmp_path / "ingested")])
        assert result.exit_code == 0, result.output
    assert {(c, m) for c in ("PubMedFiles", "RedPajamaFiles")
            for m in ("discover", "fetch", "extract")} <= {(c, m) for c, m, _ in calls}


def test_the_pubmed_commands_run_through_the_sources(server, tmp_path, calls, monkeypatch):
    monkeypatch.setenv("S2_API_KEY", "k")
    out = str(tmp_path / "out")
    for args in (["download", "--dataset", "s2orc", "--release", RELEASE, "--rate", "0",
                  "--base-url", server.base_url("s2api")],
                 ["fetch-baseline", "--limit", "1", "--base-url", server.base_url("ncbi")],
                 ["fetch-oa", "--limit", "2", "--rate", "0", "--endpoint-url", server.url]):
        result = CliRunner().invoke(cli, ["pubmed", *args, "--output", out])
        assert result.exit_code == 0, result.output
    fetched = {c: [d for c2, m, d in calls if c2 == c and m == "fetch"]
               for c in ("S2Dataset", "MedlineBaseline", "PmcCloud")}
    assert len(fetched["S2Dataset"]) == 1 and len(fetched["MedlineBaseline"]) == 1
    assert len(fetched["PmcCloud"]) == 2
