"""Replay sampler against real loopback servers: RedPajama-shaped sites, faults, budgets."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gap_replay.hashing import stable_hash
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import default_recipe_path, sample_sites_dir
from gap_replay.sample.server import Fault, SiteServer
from gap_replay.sources import AcquireContext
from gap_replay.sources.replay.acquire import acquire
from gap_replay.sources.replay.ingest import iter_redpajama_file
from gap_replay.sources.replay.records import normalise_meta, to_document
from gap_replay.sources.replay.sampler import order_files, run_sample
from gap_replay.sources.replay.settings import ReplaySettings, parse_size
from gap_replay.sources.replay.file_task import HTTPSettings
from gap_replay.sources.replay.urllists import DataFile

from replay_site import BASE, SiteSpec, all_text, build_site

SRC = Path(__file__).resolve().parent.parent / "src"
DATA = "/redpajama/redpajama-data-1T/v1.0.0"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def _http(server: SiteServer) -> HTTPSettings:
    return HTTPSettings(base_url=server.base_url("redpajama"), rate=0.0, backoff=0.05)


def _settings(**kw) -> ReplaySettings:
    base = dict(seed=11, target_tokens=20_000, probe_documents=20, docs_per_shard=50)
    base.update(kw)
    return ReplaySettings(**base)


def _raw_docs(out: Path, subset: str | None = None):
    q = Quarantine()
    folder = out / "raw" / "replay" / (subset or "")
    docs = [d for shard in list_shards(folder) for d in iter_documents(shard, q)]
    assert len(q) == 0
    return docs


def _digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "raw" / "replay").rglob("*")) if p.is_file()}


def _data_gets(server: SiteServer) -> list[str]:
    return [r.path for r in server.requests_to(DATA) if "/urls" not in r.path]


# -- pure parts -------------------------------------------------------------------------------
def test_parse_size_accepts_human_sizes():
    assert parse_size("420M") == 420_000_000
    assert parse_size("1.5B") == 1_500_000_000
    assert parse_size("1M") == 1_000_000 and parse_size("2k") == 2000
    assert parse_size("420_000_000") == 420_000_000 and parse_size(7) == 7
    for bad in ("", "12X", "-3M", "M"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_meta_normalisation_for_every_raw_shape():
    assert normalise_meta({"text": "t", "meta": {"a": 1}}) == ({"a": 1}, "dict")
    assert normalise_meta({"text": "t", "meta": '{"a": 1}'}) == ({"a": 1}, "json")
    assert normalise_meta({"text": "t", "meta": "not json"}) == ({"unparsed": "not json"}, "unparsed")
    # a dict stored as a Python repr (hub exports with a string `meta` column): parsed, never run
    assert normalise_meta({"text": "t", "meta": "{'title': 'X', 'n': (1, 2), 'ok': True}"}) == (
        {"title": "X", "n": [1, 2], "ok": True}, "python")
    assert normalise_meta({"text": "t", "meta": "{'a': __import__('os')}"})[1] == "unparsed"
    assert normalise_meta({"text": "t"}) == ({}, "none")
    assert normalise_meta({"text": "t", "pred_label": "wiki", "red_pajama_subset": "cc"}) == (
        {"pred_label": "wiki"}, "flattened")
    doc = to_document({"text": "Hello", "meta": '{"title": "T", "language": "de", "url": "u"}'},
                      subset="wikipedia", key="wikipedia/wiki.jsonl", file_url=f"{BASE}/wikipedia/wiki.jsonl",
                      line=3)
    assert doc.id == "redpajama:wikipedia:wiki.jsonl:3" and doc.source == "replay"
    assert doc.url == f"{BASE}/wikipedia/wiki.jsonl#L3" and doc.title == "T"
    assert doc.meta["language"] == "de" and doc.meta["redpajama_meta"]["url"] == "u"
    assert doc.meta["source_url"] == "u" and doc.meta["line"] == 3


def test_file_order_is_a_prefix_stable_function_of_the_seed():
    files = [DataFile("arxiv", f"{BASE}/arxiv/a{i}.jsonl", f"arxiv/a{i}.jsonl") for i in range(30)]
    order = order_files(files, 5)
    assert order == order_files(list(reversed(files)), 5)
    assert order != order_files(files, 6)
    # adding files never reorders the ones already there
    extra = files + [DataFile("arxiv", f"{BASE}/arxiv/b{i}", f"arxiv/b{i}") for i in range(5)]
    assert [f for f in order_files(extra, 5) if f in files] == order


# -- the bundled sample, through `gap-replay download`'s acquirer ----------------------------
def test_bundled_sample_through_acquire(tmp_path):
    recipe = yaml.safe_load(default_recipe_path().read_text())
    with SiteServer(sample_sites_dir()) as server:
        summary = acquire(AcquireContext(output=str(tmp_path), recipe=recipe, seed=42,
                                         sample_url=server.url))
    assert set(summary["subsets"]) == {"wikipedia", "arxiv", "stackexchange"}  # book: gone
    docs = _raw_docs(tmp_path)
    assert summary["documents"] == len(docs) == 19 and summary["quarantined"] == 0
    # 420M tokens from a 19-document site: every subset is short, and says so loudly
    assert len(summary["problems"]) == 3 and all("short" in p for p in summary["problems"])
    assert summary["notes"] == [] and not summary["plan"]["respread"]
    assert {d.meta["meta_format"] for d in docs} == {"dict", "json", "flattened", "none"}
    assert {d.meta.get("language") for d in docs if d.subset == "wikipedia"} >= {"en", "de", "fr", "es"}
    suffixes = {d.meta["redpajama_file"].rsplit(".", 1)[-1] for d in docs}
    assert suffixes == {"jsonl", "gz", "zst"}
    assert all(d.url.startswith("https://data.together.xyz/") for d in docs)  # original URLs
    assert all(len(d.text) >= 200 for d in docs)


# -- faults: 503, dropped connection, truncated file, malformed lines -------------------------
def test_faults_are_retried_resumed_or_quarantined(tmp_path):
    spec = SiteSpec(files_per_subset=2, docs_per_file=30, subsets=("wikipedia", "arxiv"),
                    malformed={"wikipedia/wikipedia_0001.jsonl": 5},
                    bad_utf8={"wikipedia/wikipedia_0000.jsonl": 7},
                    truncate={"arxiv/arxiv_0001.jsonl.gz"})
    build_site(tmp_path / "site", spec)
    settings = _settings(subsets=("wikipedia", "arxiv"), target_tokens=10**9,
                         url_lists=f"{BASE}/urls/{{subset}}.txt")
    with SiteServer(tmp_path / "site") as server:
        server.inject(f"{DATA}/arxiv/arxiv_0000.jsonl.gz", Fault("status", 503))
        wiki0 = f"{DATA}/wikipedia/wikipedia_0000.jsonl"
        size = (tmp_path / "site" / wiki0.lstrip("/")).stat().st_size
        # the probe reads the first file first, so the reset/truncation hits the sampling read
        order = [p for p in _paths_in_order(settings, server)]
        target = next(p for p in order if p.startswith(f"{DATA}/wikipedia/") and p != wiki0)
        server.inject(target, Fault("truncate", keep_bytes=size // 3))
        summary = run_sample(settings, tmp_path / "out", http=_http(server))
        ranged = [r for r in server.requests_to(target) if "Range" in r.headers]
        statuses = [r.status for r in server.requests_to(f"{DATA}/arxiv/arxiv_0000.jsonl.gz")]
        data_requests = server.requests_to(f"{DATA}/wikipedia/")
    assert data_requests and all(r.headers.get("Accept-Encoding") == "identity"
                                 for r in data_requests)  # raw bytes, so Range offsets hold
    assert ranged and ranged[0].status == 206          # the dropped body resumed with Range
    assert statuses[0] == 503 and 200 in statuses      # 503 then success
    entries = [json.loads(line) for p in sorted((tmp_path / "out" / "quarantine").rglob("*.jsonl"))
               for line in p.read_text().splitlines()]
    reasons = {(e["file"].rsplit("/", 1)[-1], e["line"], e["reason"].split(":")[0]) for e in entries}
    assert ("wikipedia_0001.jsonl", 5, "malformed JSON") in reasons
    assert any(f == "wikipedia_0000.jsonl" and line == 7 and r.startswith("invalid UTF-8")
               for f, line, r in reasons)
    assert all(e["file"].startswith("https://data.together.xyz/") for e in entries)
    trunc = [e for e in entries if e["reason"].startswith("truncated")]
    assert len(trunc) == 1 and trunc[0]["file"].endswith("arxiv_0001.jsonl.gz")
    docs = _raw_docs(tmp_path / "out")
    kept_trunc = sorted(d.meta["line"] for d in docs if d.meta["redpajama_file"].endswith("arxiv_0001.jsonl.gz"))
    assert kept_trunc and kept_trunc == list(range(1, len(kept_trunc) + 1)) and len(kept_trunc) < 30
    assert trunc[0]["line"] == len(kept_trunc) + 1  # where the damage starts
    wiki_target = [d for d in docs if target.endswith(d.meta["redpajama_file"].rsplit("/", 1)[-1])]
    assert len(wiki_target) == 30 - (1 if target.endswith("0001.jsonl") else 0)
    s = summary["subsets"]
    assert summary["quarantined"] == 3
    assert s["wikipedia"]["documents_seen"] + 2 == 60 and s["wikipedia"]["documents"] == 58


def _paths_in_order(settings: ReplaySettings, server: SiteServer) -> list[str]:
    from gap_replay.sources.replay.sampler import list_files
    from gap_replay.urls import rewrite_base_url

    files = list_files(settings, _http(server))
    out = []
    for subset in settings.subsets:
        for f in order_files(files[subset], settings.seed):
            out.append("/" + rewrite_base_url(f.url, server.base_url("redpajama")).split("/", 3)[3])
    return out


# -- determinism, budget, requests -------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    build_site(root, SiteSpec(files_per_subset=8, docs_per_file=30))
    return root


def test_same_seed_same_bytes_whatever_the_worker_count(site, tmp_path):
    settings = _settings(read_multiplier=2.0)
    with SiteServer(site) as server:
        run_sample(settings, tmp_path / "w1", http=_http(server), workers=1)
        run_sample(settings, tmp_path / "w2", http=_http(server), workers=2)
        run_sample(settings, tmp_path / "again", http=_http(server), workers=1)
        other = _settings(read_multiplier=2.0, seed=12)
        run_sample(other, tmp_path / "seed12", http=_http(server), workers=1)
    d1 = _digest(tmp_path / "w1")
    assert d1 and d1 == _digest(tmp_path / "w2") == _digest(tmp_path / "again")
    assert _digest(tmp_path / "seed12") != d1
    ids = [d.id for d in _raw_docs(tmp_path / "w1")]
    assert len(ids) == len(set(ids))


def test_budget_met_and_files_beyond_it_never_requested(site, tmp_path):
    # 75k over three subsets (book is gone): per-subset budgets where the 1/read_multiplier
    # floor of the document rate binds
    settings = _settings(target_tokens=75_000, read_multiplier=2.0)
    with SiteServer(site) as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server), workers=2)
        requested = _data_gets(server)
        order = _paths_in_order(settings, server)
    assert abs(summary["estimated_tokens"] - 75_000) / 75_000 < 0.02
    for subset, s in summary["subsets"].items():
        assert not s["short"] and abs(s["estimated_tokens"] - s["budget_tokens"]) / s["budget_tokens"] < 0.02
        assert s["document_rate"] == 0.5 and s["files_read"] < s["files_listed"]
        in_order = [p for p in order if f"/{subset}/" in p]
        needed, beyond = in_order[:s["files_read"]], in_order[s["files_fetched"]:]
        assert set(needed) <= set(requested)
        assert not set(beyond) & set(requested), f"{subset}: read files beyond the budget"
        assert s["files_fetched"] - s["files_read"] <= 1
    # a rerun resumes from completed files: no data file is fetched again
    with SiteServer(site) as server:
        again = run_sample(settings, tmp_path / "out", http=_http(server), workers=1)
        assert _data_gets(server) == []
    assert again == summary


def test_budget_within_two_percent_with_a_real_tokenizer(site, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([all_text(site)], trainers.BpeTrainer(vocab_size=800,
                                                                  special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    settings = _settings(target_tokens=100_000, tokenizer=str(path), probe_documents=30)
    with SiteServer(site) as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server))
    real = sum(len(tok.encode(d.text).ids) for d in _raw_docs(tmp_path / "out"))
    assert summary["subsets"]["wikipedia"]["tokens_per_char"] != 0.25  # measured, not the constant
    assert abs(real - 100_000) / 100_000 < 0.02, real


def test_larger_budget_extends_the_same_sample(site, tmp_path):
    with SiteServer(site) as server:
        run_sample(_settings(target_tokens=10_000, read_multiplier=2.0, docs_per_shard=10), tmp_path / "small",
                   http=_http(server))
        run_sample(_settings(target_tokens=20_000, read_multiplier=2.0, docs_per_shard=10), tmp_path / "large",
                   http=_http(server))
        large_before = {d.id for d in _raw_docs(tmp_path / "large")}
        shards_before = len(list_shards(tmp_path / "large" / "raw"))
        # the same output folder with the smaller budget: no stale shards of the larger run
        shrunk = run_sample(_settings(target_tokens=10_000, read_multiplier=2.0, docs_per_shard=10),
                            tmp_path / "large", http=_http(server))
    small = [d.id for d in _raw_docs(tmp_path / "small")]
    large = {d.id for d in _raw_docs(tmp_path / "large")}
    assert small and set(small) < large_before and large == set(small)
    shards = len(list_shards(tmp_path / "large" / "raw"))
    assert shards == sum(s["shards"] for s in shrunk["subsets"].values()) and shards < shards_before


# -- hub alternative: parquet through datasets streaming ---------------------------------------
def test_parquet_mirror_through_datasets_streaming(tmp_path):
    folder = tmp_path / "hub" / "wikipedia"
    folder.mkdir(parents=True)
    for f in range(3):
        rows = [{"text": f"Parquet document {f}-{i}. " * 5,
                 "meta": json.dumps({"title": f"P{f}-{i}", "language": "en"}),
                 "red_pajama_subset": "wikipedia"} for i in range(60)]
        pq.write_table(pa.Table.from_pylist(rows), folder / f"train-{f:05d}.parquet")
    settings = _settings(subsets=("wikipedia",), target_tokens=2_000,
                         hub={"wikipedia": str(folder)})
    summary = run_sample(settings, tmp_path / "out", http=HTTPSettings())
    again = run_sample(settings, tmp_path / "out2", http=HTTPSettings())
    docs = _raw_docs(tmp_path / "out")
    assert summary["subsets"]["wikipedia"]["files_listed"] == 3
    assert abs(summary["estimated_tokens"] - 2_000) / 2_000 < 0.02
    assert docs[0].id.startswith("redpajama:wikipedia:train-") and docs[0].meta["meta_format"] == "json"
    assert "red_pajama_subset" not in docs[0].meta["redpajama_meta"]
    assert _digest(tmp_path / "out") == _digest(tmp_path / "out2") and again == summary


# -- local files for `gap-replay ingest --format redpajama` -----------------------------------
def test_ingest_local_files_with_quarantine(tmp_path):
    sample = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    q = Quarantine()
    docs = [d for p in sorted(sample.glob("*/*.jsonl*")) for d in iter_redpajama_file(p, q)]
    assert len(docs) == 19 and len(q) == 0
    assert {d.subset for d in docs} == {"wikipedia", "arxiv", "stackexchange"}
    bad = tmp_path / "arxiv_x.jsonl.gz"
    good = b'{"text": "fine", "meta": {"a": 1}}\n'
    varied = b"".join(b'{"text": "line %d %x"}\n' % (i, stable_hash(1, str(i)))
                      for i in range(200))
    bad.write_bytes(gzip.compress(good + b'{"text": \n' + good + b'{"meta": {}}\n' + varied,
                                  mtime=0)[:-40])
    q = Quarantine()
    got = list(iter_redpajama_file(bad, q))
    reasons = [orjson.loads(e)["reason"] for e in q.entries]
    assert got[0].subset == "arxiv" and got[0].id.endswith("/arxiv_x.jsonl.gz:1")
    assert reasons[0].startswith("malformed JSON") and "invalid record" in reasons[1]
    assert reasons[-1].startswith("truncated") and 150 < len(got) < 202


# -- the CLI, as a subprocess, against a server laid out like the published URL lists ----------
def test_cli_sample_1m_tokens(tmp_path):
    build_site(tmp_path / "site", SiteSpec(files_per_subset=16, docs_per_file=100))
    recipe = yaml.safe_load(default_recipe_path().read_text())
    recipe["replay"].update(read_multiplier=2, rate=0, url_lists=f"{BASE}/urls/{{subset}}.txt")
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    with SiteServer(tmp_path / "site") as server:
        proc = subprocess.run(
            [sys.executable, "-m", "gap_replay", "replay", "sample", "--target-tokens", "1M",
             "--base-url", server.base_url("redpajama"), "--output", str(tmp_path / "out"),
             "--recipe", str(recipe_path), "--workers", "2", "--seed", "3"],
            capture_output=True, text=True, timeout=240, env=_env())
        requested = set(_data_gets(server))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "work" / "replay" / "summary.json").read_text())
    assert abs(summary["estimated_tokens"] - 1_000_000) / 1_000_000 < 0.02
    assert "total" in proc.stdout and f"{summary['documents']:,}" in proc.stdout
    assert 0 < summary["subsets"]["wikipedia"]["files_read"] < 16
    fetched = sum(s["files_fetched"] for s in summary["subsets"].values())
    assert len(requested) == fetched < 64   # files beyond the budget were never requested
    assert len(_raw_docs(tmp_path / "out")) == summary["documents"]


def test_cli_help_and_bad_size():
    env = _env()
    help_ = subprocess.run([sys.executable, "-m", "gap_replay", "replay", "sample", "--help"],
                           capture_output=True, text=True, env=env)
    assert help_.returncode == 0 and "--target-tokens 420M" in help_.stdout
    bad = subprocess.run([sys.executable, "-m", "gap_replay", "replay", "sample",
                          "--target-tokens", "12X", "--output", "/tmp/never"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "not a size" in bad.stderr


def test_single_file_subset_is_not_read_to_the_end(tmp_path):
    build_site(tmp_path / "site", SiteSpec(files_per_subset=1, docs_per_file=600,
                                           subsets=("wikipedia",)))
    settings = _settings(subsets=("wikipedia",), target_tokens=20_000)
    with SiteServer(tmp_path / "site") as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server))
        again = run_sample(settings, tmp_path / "out", http=_http(server))
        assert len(_data_gets(server)) == 2  # probe + sampling; the rerun reuses the part
    s = summary["subsets"]["wikipedia"]
    assert s["document_rate"] < 0.15 and not s["short"] and again == summary
    assert s["documents_seen"] < 600  # stopped once the budget was kept
    assert abs(s["estimated_tokens"] - 20_000) / 20_000 < 0.02


def test_cli_reports_a_missing_url_list_and_unknown_subsets(tmp_path):
    env = _env()
    (tmp_path / "site" / "redpajama").mkdir(parents=True)
    with SiteServer(tmp_path / "site") as server:
        missing = subprocess.run(
            [sys.executable, "-m", "gap_replay", "replay", "sample", "--target-tokens", "1k",
             "--base-url", server.base_url("redpajama"), "--output", str(tmp_path / "out")],
            capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1 and "urls.txt" in missing.stderr and "404" in missing.stderr
    with SiteServer(sample_sites_dir()) as server:
        unknown = subprocess.run(
            [sys.executable, "-m", "gap_replay", "replay", "sample", "--target-tokens", "1k",
             "--base-url", server.base_url("redpajama"), "--output", str(tmp_path / "out"),
             "--subsets", "github,c4"], capture_output=True, text=True, env=env, timeout=60)
    assert unknown.returncode == 1 and "no data files for github, c4" in unknown.stderr
