"""The S2 datasets client and the NCBI path against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from gap_replay.http import FetchError, PoliteClient, RetryPolicy
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import default_recipe_path, sample_sites_dir
from gap_replay.sample.server import Fault, SiteServer
from gap_replay.sources import AcquireContext, acquirer
from gap_replay.sources.pubmed import ncbi
from gap_replay.sources.pubmed.acquire import download_dataset, refresh_dataset
from gap_replay.sources.pubmed.s2api import S2Datasets, S2Error, load_api_key, stream_filtered
from gap_replay.sources.pubmed.s2records import is_pubmed_row

RELEASE = "2023-08-29"  # an older release: full text as `s2orc`
LATEST = "2026-11-24"  # the sample's latest release: full text as `s2orc_v2`
S2ORC_FILE = f"/s2api/staging/{RELEASE}/s2orc/20230829_000000_s2orc-part0.jsonl.gz"


@pytest.fixture()
def server():
    with SiteServer(sample_sites_dir()) as srv:
        yield srv


def _client(srv) -> PoliteClient:
    return PoliteClient(base_url=srv.base_url("s2api"), rate=0, respect_robots=False,
                        retry=RetryPolicy(max_retries=4, backoff=0.01, max_wait=2), sleep=lambda s: None)


def _recipe() -> dict:
    return yaml.safe_load(default_recipe_path().read_text())


def _docs(out: Path, source: str) -> list:
    q = Quarantine()
    return [d for s in list_shards(out / "raw" / source) for d in iter_documents(s, q, source)]


def test_listing_sends_the_key_header_and_never_logs_it(server, caplog):
    caplog.set_level(logging.DEBUG)
    api = S2Datasets(_client(server), "very-secret-key")
    assert api.latest_release() == LATEST
    files = api.list_files("s2orc", RELEASE)
    assert files[0].startswith("https://ai2-s2ag.s3.amazonaws.com/staging/") and "Signature=" in files[0]
    (req,) = server.requests_to(f"/s2api/datasets/v1/release/{RELEASE}/dataset/s2orc")
    assert req.headers.get("x-api-key") == "very-secret-key"
    assert "very-secret-key" not in caplog.text
    with pytest.raises(S2Error, match="release 2023-08-29 has no dataset 'nope'; it lists: "
                                      "abstracts, papers, s2orc"):
        api.resolve_dataset("nope", RELEASE)


def test_api_key_from_env_or_file(tmp_path, monkeypatch):
    monkeypatch.delenv("S2_API_KEY", raising=False)
    plain = tmp_path / "k.txt"
    plain.write_text("abc123\n")
    js = tmp_path / "keys.json"
    js.write_text('{"api_key": "fromjson"}')
    assert load_api_key(plain) == "abc123" and load_api_key(js) == "fromjson"
    assert load_api_key(None) is None
    monkeypatch.setenv("S2_API_KEY", "fromenv")
    assert load_api_key(js) == "fromenv"
    bad = tmp_path / "bad.json"
    bad.write_text('{"key": 1}')
    monkeypatch.delenv("S2_API_KEY")
    with pytest.raises(S2Error, match="api_key"):
        load_api_key(bad)


def test_download_filters_pubmed_while_streaming_with_429_and_dropped_connection(server, tmp_path):
    client = _client(server)
    url = S2Datasets(client, "k").list_files("s2orc", RELEASE)[0]
    size = (sample_sites_dir() / S2ORC_FILE.removeprefix("/")).stat().st_size
    server.inject(S2ORC_FILE, Fault("status", 429, headers={"Retry-After": "1"}),
                  Fault("truncate", keep_bytes=size // 3))
    dest = tmp_path / "s2orc.jsonl.gz"
    counts = stream_filtered(client, url, dest, is_pubmed_row, Quarantine())
    assert counts == {"rows": 2, "kept": 1, "bytes": size}
    reqs = server.requests_to(S2ORC_FILE)
    assert [r.status for r in reqs] == [429, 200, 206]
    assert reqs[2].headers["Range"] == f"bytes={size // 3}-"  # resumed, not restarted
    (line,) = gzip.decompress(dest.read_bytes()).splitlines()
    assert orjson.loads(line)["externalids"]["pubmed"] == "90000001"


def test_expired_link_is_listed_again(server, tmp_path):
    client = _client(server)
    api = S2Datasets(client, "k")
    url = api.list_files("s2orc", RELEASE)[0]
    server.inject(S2ORC_FILE, Fault("status", 403))
    relisted = []

    def relist() -> str:
        relisted.append(1)
        return api.list_files("s2orc", RELEASE)[0]

    counts = stream_filtered(client, url, tmp_path / "x.jsonl.gz", is_pubmed_row, Quarantine(),
                             relist=relist)
    assert relisted == [1] and counts["kept"] == 1
    server.inject(S2ORC_FILE, Fault("status", 403), Fault("status", 403), Fault("status", 403))
    with pytest.raises(FetchError) as err:
        stream_filtered(client, url, tmp_path / "y.jsonl.gz", is_pubmed_row, Quarantine(),
                        relist=relist, max_relists=2)
    assert err.value.status == 403 and not (tmp_path / "y.jsonl.gz").exists()


def test_corrupt_gzip_is_an_error_not_a_silent_short_file(tmp_path):
    site = tmp_path / "site" / "s2api" / "f"
    site.mkdir(parents=True)
    (site / "bad.gz").write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:-12])
    with SiteServer(tmp_path / "site") as srv:
        client = _client(srv)
        with pytest.raises(FetchError, match="gzip stream ended early"):
            stream_filtered(client, "https://s3.example/f/bad.gz", tmp_path / "o.jsonl.gz",
                            lambda r: True, Quarantine())


def test_download_datasets_join_metadata_and_dedup_abstracts(server, tmp_path):
    out = tmp_path / "out"
    client = _client(server)
    abstracts = download_dataset(out, "abstracts", api_key="k", client=client, recipe=_recipe())
    assert abstracts["rows"] == 11 and abstracts["kept"] == 4  # papers index fetched first
    papers = download_dataset(out, "s2orc", api_key="k", client=client, recipe=_recipe())
    assert papers["kept"] == 1 and papers["written"] == {"papers": 1}
    assert papers["fulltext_dedup"] == {"has_full_text:pmid": 1}
    (paper,) = _docs(out, "papers")
    assert paper.id == "pmid:90000001" and paper.meta["journal"] == "Proceedings of the CHI Conference"
    assert paper.text.startswith("CiteSee: Augmenting Citations")
    assert "quality_weight" not in paper.meta  # set by `process` from the current recipe
    # the abstract with a full text stays in raw/, marked for the `filter` stage to drop
    docs = _docs(out, "abstracts")
    marked = {d.id: d.meta.get("drop_reason") for d in docs}
    assert len(docs) == 4 and marked.pop("pmid:90000001") == "has_full_text:pmid"
    assert set(marked.values()) == {None}
    assert {d.title for d in docs if d.id != "pmid:90000001"} == {
        "Derived sample paper 2", "Derived sample paper 3", "Derived sample paper 4"}
    # a rerun skips the files already done
    server.clear_log()
    download_dataset(out, "s2orc", api_key="k", client=client, recipe=_recipe())
    assert not server.requests_to("/s2api/staging/")


def test_refresh_applies_release_diffs(server, tmp_path):
    out = tmp_path / "out"
    client = _client(server)
    download_dataset(out, "abstracts", api_key="k", client=client, recipe=_recipe())
    before = {d.id: d for d in _docs(out, "abstracts")}
    summary = refresh_dataset(out, "abstracts", "2023-08-01", api_key="k", client=client,
                              release=RELEASE, recipe=_recipe())
    after = {d.id: d for d in _docs(out, "abstracts")}
    assert summary["removed"] == 2  # one deleted, one superseded by its update
    assert len(before) - len(after) == 1
    updated = [d for d in after.values() if "Updated abstract text" in d.text]
    assert len(updated) == 1


def test_ncbi_listing_and_download_with_md5(server, tmp_path):
    client = PoliteClient(base_url=server.base_url("ncbi"), rate=0, sleep=lambda s: None)
    urls, md5s = ncbi.baseline_urls(client, updates=True)
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["pubmed20n1016.xml.gz", "pubmed20n1400.xml.gz"]
    assert urls[0] == "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/pubmed20n1016.xml.gz"
    assert len(md5s) == 2
    from gap_replay.state import State

    state = State(tmp_path / "state.sqlite")
    size = (sample_sites_dir() / "ncbi/pubmed/baseline/pubmed20n1016.xml.gz").stat().st_size
    server.inject("/ncbi/pubmed/baseline/pubmed20n1016.xml.gz", Fault("truncate", keep_bytes=size // 2))
    files, failed = ncbi.download_listed(client, urls, tmp_path / "dl", state, md5_available=md5s)
    assert not failed and [f.stat().st_size for f in files][0] == size


def test_sample_acquirers_exercise_both_routes(server, tmp_path):
    out = tmp_path / "out"
    ctx = AcquireContext(output=str(out), recipe=_recipe(), sample_url=server.url)
    abstracts = acquirer("abstracts")(ctx)
    papers = acquirer("papers")(ctx)
    assert abstracts["route"] == papers["route"] == "both"
    assert abstracts["medline"]["dropped"]["superseded_or_deleted"] == 2
    ids = {d.id for d in _docs(out, "abstracts")}
    assert "pmid:10658653" not in ids  # deleted by the update file
    revised = [d for d in _docs(out, "abstracts") if d.id == "pmid:30913216"]
    assert len(revised) == 1 and revised[0].title.startswith("[Revised]")
    paper_ids = {d.id for d in _docs(out, "papers")}
    assert {"pmid:90000001", "pmid:18405359", "pmcid:PMC6095483"} <= paper_ids
    assert (out / "quarantine").is_dir()


def test_cli_download_and_fetch_commands(server, tmp_path):
    out = tmp_path / "cli"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parent.parent / "src"),
           "S2_API_KEY": "cli-key"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "gap_replay", *args],  # noqa: E731
                                       capture_output=True, text=True, env=env, timeout=120)
    r = run("pubmed", "download", "--dataset", "s2orc", "--output", str(out),
            "--base-url", server.base_url("s2api"), "--rate", "0")
    assert r.returncode == 0, r.stderr
    assert "cli-key" not in r.stderr + r.stdout
    r = run("pubmed", "fetch-oa", "--output", str(out), "--endpoint-url", server.url)
    assert r.returncode == 0, r.stderr
    r = run("pubmed", "fetch-baseline", "--output", str(out), "--base-url", server.base_url("ncbi"),
            "--limit", "1")
    assert r.returncode == 0, r.stderr
    assert len(_docs(out, "papers")) == 4 and len(_docs(out, "abstracts")) == 23
    env.pop("S2_API_KEY")
    r = run("pubmed", "download", "--dataset", "papers", "--output", str(out))
    assert r.returncode == 2 and "no API key" in r.stderr
