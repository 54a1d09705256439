"""Replay against RedPajama as it is today: no `book` (budget re-spread or a clear failure),
the -Sample JSONL layout, ids unique by construction, `redpajama_meta` always a dict.

Real loopback servers (SiteServer) and real files; no patching.
"""

from __future__ import annotations

import gzip
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

from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import default_recipe_path
from gap_replay.sample.server import SiteServer
from gap_replay.sources.replay.ingest import iter_redpajama_file
from gap_replay.sources.replay.sampler import ReplayError, run_sample
from gap_replay.sources.replay.settings import DEFAULT_SUBSETS, ReplaySettings
from gap_replay.sources.replay.file_task import HTTPSettings

from replay_site import BASE, SAMPLE_BASE, SiteSpec, build_sample_layout, build_site

SRC = Path(__file__).resolve().parent.parent / "src"
OLD_DEFAULT = ("wikipedia", "arxiv", "book", "stackexchange")  # recipes written before 2024


def _http(server: SiteServer, site: str = "redpajama") -> HTTPSettings:
    return HTTPSettings(base_url=server.base_url(site), rate=0.0, backoff=0.05)


def _settings(**kw) -> ReplaySettings:
    base = dict(seed=5, target_tokens=30_000, probe_documents=20, docs_per_shard=50,
                read_multiplier=2.0)
    base.update(kw)
    return ReplaySettings(**base)


def _docs(out: Path):
    q = Quarantine()
    docs = [d for shard in list_shards(out / "raw" / "replay") for d in iter_documents(shard, q)]
    assert len(q) == 0
    return docs


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The release layout as it is today: no book/ files, book absent from every list."""
    root = tmp_path_factory.mktemp("site")
    build_site(root, SiteSpec(files_per_subset=6, docs_per_file=30))
    top = root / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    assert not (top / "book").exists() and not (top / "urls" / "book.txt").exists()
    assert "/book/" not in (top / "urls.txt").read_text()
    return root


def test_default_subsets_no_longer_name_book():
    assert "book" not in DEFAULT_SUBSETS
    recipe = yaml.safe_load(default_recipe_path().read_text())
    assert "book" not in recipe["replay"]["subsets"]
    assert recipe["replay"]["missing_subsets"] == "respread"
    with pytest.raises(ValueError, match="missing_subsets"):
        ReplaySettings.from_recipe({"replay": {"missing_subsets": "ignore"}})


@pytest.mark.parametrize("lists", ["urls.txt", "urls/{subset}.txt"])
def test_book_absent_budget_respread_and_reached(site, tmp_path, lists):
    """An old recipe still asking for book: its share goes to the others, the total is met."""
    settings = _settings(subsets=OLD_DEFAULT, url_lists=f"{BASE}/{lists}")
    with SiteServer(site) as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server))
        book_gets = server.requests_to("/redpajama/redpajama-data-1T/v1.0.0/book")
    assert book_gets == []  # nothing to fetch: book is not listed
    assert abs(summary["estimated_tokens"] - 30_000) / 30_000 <= 0.05
    assert set(summary["subsets"]) == {"wikipedia", "arxiv", "stackexchange"}
    plan = summary["plan"]
    checked = f"{BASE}/{lists}".format(subset="book")
    assert plan["respread"] and plan["subsets_missing"] == {"book": checked}
    assert sum(plan["budgets"].values()) == pytest.approx(30_000, abs=2)
    # shares by weight among the three left: 24:28:20 of 72
    assert plan["budgets"]["arxiv"] == round(30_000 * 28 / 72)
    assert plan["budgets"]["arxiv"] > plan["budgets_without_respread"]["arxiv"]
    assert len(summary["notes"]) == 1 and "book" in summary["notes"][0]
    assert checked in summary["notes"][0] and "re-spread" in summary["notes"][0]
    assert summary["problems"] == []
    recorded = json.loads((tmp_path / "out" / "work" / "replay" / "summary.json").read_text())
    assert recorded["plan"] == plan and recorded["notes"] == summary["notes"]


def test_default_run_reaches_its_budget_without_book(site, tmp_path):
    settings = ReplaySettings.from_recipe(yaml.safe_load(default_recipe_path().read_text()),
                                          seed=5, target_tokens=30_000, probe_documents=20,
                                          read_multiplier=2.0, url_lists=f"{BASE}/urls.txt")
    with SiteServer(site) as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server), workers=2)
    assert abs(summary["estimated_tokens"] - 30_000) / 30_000 <= 0.05
    assert summary["notes"] == [] and summary["problems"] == []
    assert not summary["plan"]["respread"]


def test_missing_subset_fails_when_asked_to(site, tmp_path):
    settings = _settings(subsets=OLD_DEFAULT, missing_subsets="fail",
                         url_lists=f"{BASE}/urls/{{subset}}.txt")
    with SiteServer(site) as server:
        with pytest.raises(ReplayError) as exc:
            run_sample(settings, tmp_path / "out", http=_http(server))
        data_gets = [r for r in server.requests_to("/redpajama/redpajama-data-1T")
                     if "/urls" not in r.path]
    message = str(exc.value)
    assert "'book'" in message and f"{BASE}/urls/book.txt" in message
    assert "missing_subsets" in message and data_gets == []  # failed before any download


def test_cli_fail_policy_and_shortfall_exit_1(site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    common = [sys.executable, "-m", "gap_replay", "replay", "sample", "--seed", "5"]
    with SiteServer(site) as server:
        failed = subprocess.run(
            common + ["--target-tokens", "10k", "--subsets", ",".join(OLD_DEFAULT),
                      "--missing-subsets", "fail", "--base-url", server.base_url("redpajama"),
                      "--output", str(tmp_path / "a")],
            capture_output=True, text=True, env=env, timeout=120)
        short = subprocess.run(
            common + ["--target-tokens", "10M", "--subsets", "wikipedia",
                      "--base-url", server.base_url("redpajama"), "--output", str(tmp_path / "b")],
            capture_output=True, text=True, env=env, timeout=120)
    assert failed.returncode == 1 and "'book'" in failed.stderr
    assert f"{BASE}/urls.txt" in failed.stderr
    assert short.returncode == 1, short.stderr[-2000:]
    assert "problem: subset 'wikipedia'" in short.stderr and "% short" in short.stderr
    summary = json.loads((tmp_path / "b" / "work" / "replay" / "summary.json").read_text())
    assert len(summary["problems"]) == 1 and summary["subsets"]["wikipedia"]["short"]


# -- the RedPajama-Data-1T-Sample layout: <subset>_*.jsonl at one folder's root ----------------
@pytest.fixture(scope="module")
def sample_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    folder = root / "hf" / SAMPLE_BASE.split("://", 1)[1].split("/", 1)[1]
    build_sample_layout(folder, SiteSpec(files_per_subset=3, docs_per_file=40))
    return root, folder


def test_sample_layout_over_http_is_deterministic(sample_site, tmp_path):
    root, folder = sample_site
    settings = _settings(target_tokens=12_000, url_lists=f"{SAMPLE_BASE}/urls.txt")
    own_list = _settings(target_tokens=12_000, url_lists=str(folder / "urls.txt"))
    with SiteServer(root) as server:
        one = run_sample(settings, tmp_path / "w1", http=_http(server, "hf"), workers=1)
        two = run_sample(settings, tmp_path / "w2", http=_http(server, "hf"), workers=2)
        # your own list of the hub URLs, kept as a local file, reads the same files over HTTP
        run_sample(own_list, tmp_path / "own", http=_http(server, "hf"), workers=2)
        run_sample(_settings(target_tokens=12_000, url_lists=f"{SAMPLE_BASE}/urls.txt",
                              seed=6), tmp_path / "s6", http=_http(server, "hf"))
    assert one == two and one["problems"] == [] and one["notes"] == []
    assert {s: v["files_listed"] for s, v in one["subsets"].items()} == {
        "wikipedia": 3, "arxiv": 3, "stackexchange": 3}
    assert abs(one["estimated_tokens"] - 12_000) / 12_000 <= 0.05
    a, b = _docs(tmp_path / "w1"), _docs(tmp_path / "w2")
    assert [d.to_dict() for d in a] == [d.to_dict() for d in b]
    assert [d.to_dict() for d in a] == [d.to_dict() for d in _docs(tmp_path / "own")]
    assert [d.id for d in a] != [d.id for d in _docs(tmp_path / "s6")]
    assert all(d.id.startswith(f"redpajama:{d.subset}:{d.subset}_sample_") for d in a)
    assert all(d.meta["redpajama_file"].startswith(SAMPLE_BASE) for d in a)


def test_sample_layout_from_a_local_folder_picks_the_same_documents(sample_site, tmp_path):
    root, folder = sample_site
    (folder / "notes.txt").write_text("not a data file\n")
    local = _settings(target_tokens=12_000, url_lists=str(folder))
    one = run_sample(local, tmp_path / "w1", http=HTTPSettings(), workers=1)
    two = run_sample(local, tmp_path / "w2", http=HTTPSettings(), workers=2)
    assert one == two and one["problems"] == []
    with SiteServer(root) as server:
        run_sample(_settings(target_tokens=12_000, url_lists=f"{SAMPLE_BASE}/urls.txt"),
                   tmp_path / "http", http=_http(server, "hf"))
    local_docs = _docs(tmp_path / "w1")
    # the same keys (subset + name at the root), so the same documents whichever way it is read
    assert [d.id for d in local_docs] == [d.id for d in _docs(tmp_path / "http")]
    assert [d.to_dict() for d in local_docs] == [d.to_dict() for d in _docs(tmp_path / "w2")]
    assert local_docs[0].meta["redpajama_file"].startswith(str(folder))


# -- ids unique by construction; redpajama_meta always a dict -----------------------------------
def test_alike_file_names_in_different_folders_never_share_ids(tmp_path):
    """Per-subset lists naming `wiki_00.jsonl` in two mirror folders (no `wikipedia/` segment)."""
    site = tmp_path / "site" / "mirror"
    lines = [json.dumps({"text": f"Document number {i} of a mirror. " * 8}) for i in range(30)]
    urls = []
    for folder in ("dump-a", "dump-b"):
        (site / folder).mkdir(parents=True)
        (site / folder / "wiki_00.jsonl").write_text("\n".join(lines) + "\n")
        urls.append(f"https://mirror.example.org/{folder}/wiki_00.jsonl")
    (site / "lists").mkdir()
    (site / "lists" / "wikipedia.txt").write_text("\n".join(urls) + "\n")
    settings = _settings(subsets=("wikipedia",), target_tokens=10**9,
                         url_lists="https://mirror.example.org/lists/{subset}.txt")
    with SiteServer(tmp_path / "site") as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server, "mirror"))
    ids = [d.id for d in _docs(tmp_path / "out")]
    assert summary["documents"] == len(ids) == 60 == len(set(ids))
    assert {i.rsplit(":", 1)[0] for i in ids} == {"redpajama:wikipedia:dump-a/wiki_00.jsonl",
                                                  "redpajama:wikipedia:dump-b/wiki_00.jsonl"}
    # the same through `gap-replay ingest --format redpajama`
    local = [d.id for f in ("dump-a", "dump-b")
             for d in iter_redpajama_file(site / f / "wiki_00.jsonl", Quarantine())]
    assert len(local) == 60 == len(set(local))


def test_redpajama_meta_is_a_dict_even_from_a_python_repr_string(tmp_path):
    folder = tmp_path / "hub" / "arxiv"
    folder.mkdir(parents=True)
    rows = [{"text": f"Parquet arxiv document {i}. " * 6,
             "meta": str({"arxiv_id": f"2101.{i:05d}", "language": "en", "yymm": "2101"})}
            for i in range(40)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "train-00000.parquet")
    raw = tmp_path / "arxiv_repr.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    settings = _settings(subsets=("arxiv",), target_tokens=10**9, hub={"arxiv": str(folder)})
    run_sample(settings, tmp_path / "out", http=HTTPSettings())
    docs = _docs(tmp_path / "out") + list(iter_redpajama_file(raw, Quarantine()))
    assert len(docs) == 43
    for doc in docs:
        assert isinstance(doc.meta["redpajama_meta"], dict) and doc.meta["meta_format"] == "python"
        assert doc.meta["redpajama_meta"]["yymm"] == "2101" and doc.meta["language"] == "en"
    # and as JSON on disk (an object, not a string)
    shard = Path(list_shards(tmp_path / "out" / "raw" / "replay")[0])
    first = orjson.loads(gzip.decompress(shard.read_bytes()).splitlines()[0])
    assert isinstance(first["meta"]["redpajama_meta"], dict)


def test_list_lines_name_their_subset_and_key():
    from gap_replay.sources.replay.urllists import subset_of

    master = f"{BASE}/urls.txt"
    assert subset_of(f"{BASE}/arxiv/arxiv_0a.jsonl", master) == ("arxiv", "arxiv/arxiv_0a.jsonl")
    assert subset_of(f"{BASE}/common_crawl/2023-06/en_head_0000.json.gz", master) == (
        "common_crawl", "common_crawl/2023-06/en_head_0000.json.gz")
    sample = f"{SAMPLE_BASE}/urls.txt"
    assert subset_of(f"{SAMPLE_BASE}/cc_2023-06_sample.jsonl", sample) == (
        "common_crawl", "common_crawl/cc_2023-06_sample.jsonl")
    # a local copy of either list: its lines are elsewhere, the same subsets and keys
    local = "/home/me/lists/urls.txt"
    assert subset_of(f"{BASE}/common_crawl/2023-06/en_head_0000.json.gz", local) == (
        "common_crawl", "common_crawl/2023-06/en_head_0000.json.gz")
    assert subset_of(f"{SAMPLE_BASE}/wikipedia_sample.jsonl", local) == (
        "wikipedia", "wikipedia/wikipedia_sample.jsonl")
    assert subset_of(f"{SAMPLE_BASE}/README.md", sample) is None


def test_a_subset_read_whole_at_a_low_rate_and_still_short_is_read_again(tmp_path, caplog):
    """The probe overestimates (long first documents, then short ones with much metadata), so
    the rate is too low; the second pass at rate 1 reaches the budget, and the bad line is
    quarantined once, not once per pass."""
    top = tmp_path / "site" / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    (top / "wikipedia").mkdir(parents=True)
    meta = {"title": "t", "note": "x" * 120}
    lines = [json.dumps({"text": f"Long opening article {i}. " + "word " * 400, "meta": meta})
             for i in range(5)]
    lines += [json.dumps({"text": f"Stub {i} here.", "meta": meta}) for i in range(300)]
    lines.insert(100, '{"text": "broken')
    (top / "wikipedia" / "wiki.jsonl").write_text("\n".join(lines) + "\n")
    (top / "urls.txt").write_text(f"{BASE}/wikipedia/wiki.jsonl\n")
    settings = _settings(subsets=("wikipedia",), target_tokens=3_000, probe_documents=5,
                         read_multiplier=10.0, url_lists=f"{BASE}/urls.txt")
    caplog.set_level("INFO", logger="gap_replay.sources.replay.sampler")
    with SiteServer(tmp_path / "site") as server:
        summary = run_sample(settings, tmp_path / "out", http=_http(server))
    assert "reading them again keeping every document" in caplog.text  # the first pass was short
    s = summary["subsets"]["wikipedia"]
    assert s["document_rate"] == 1.0 and not s["short"] and summary["problems"] == []
    assert abs(s["estimated_tokens"] - 3_000) / 3_000 <= 0.05
    entries = [line for p in (tmp_path / "out" / "quarantine").rglob("*.jsonl")
               for line in p.read_text().splitlines()]
    assert len(entries) == 1 == s["quarantined"] and json.loads(entries[0])["line"] == 101
