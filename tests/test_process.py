"""`process` in-process on small raw trees: global exact dedup, split stability, stats, quarantine."""

from __future__ import annotations

import orjson

from gap_replay.document import Document
from gap_replay.executors import make_executor
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.process import run_process
from gap_replay.recipe import load_recipe
from gap_replay.sample.textgen import make_documents
from gap_replay.stages.split import assign_split

RECIPE = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"},
                                "dedup": {"exact": {"buckets": 3}}})


def _write(path, docs, extra_lines=()):
    with ShardWriter(path) as w:
        for d in docs:
            w.write(d)
        for line in extra_lines:
            w.write(line)


def _clean(out):
    docs = {}
    for path in list_shards(out / "clean"):
        for d in iter_documents(path, Quarantine()):
            docs[d.id] = d
    return docs


def _english(n, seed, source):
    return make_documents(n, seed=seed, english_share=1.0, target_chars=700, source=source)


def test_exact_dedup_is_global_across_shards_and_sources(tmp_path):
    papers = _english(6, 1, "papers")
    abstracts = _english(6, 2, "abstracts")
    # the same id in another shard of the same source, with other text
    same_id = Document(id=abstracts[0].id, source="abstracts", text=abstracts[1].text + " Extra sentence.")
    # papers' text again as an abstract (case/whitespace differ): papers win, listed before abstracts
    copy_text = Document(id="copy-of-paper", source="abstracts", text="  " + papers[2].text.upper() + "\n")
    # an exact duplicate inside replay, and one inside guidelines vs replay
    replay = _english(3, 3, "replay")
    replay_dup = Document(id="zz-replay-dup", source="replay", text=replay[0].text)
    _write(tmp_path / "raw/papers/a.jsonl.gz", papers)
    _write(tmp_path / "raw/abstracts/a.jsonl.gz", abstracts)
    _write(tmp_path / "raw/abstracts/b.jsonl.gz", [same_id, copy_text])
    _write(tmp_path / "raw/replay/x/a.jsonl.gz", [replay_dup] + replay)
    stats = run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    kept = _clean(tmp_path)
    assert "copy-of-paper" not in kept and papers[2].id in kept
    assert kept[abstracts[0].id].text == abstracts[0].text  # the first shard's copy of the id won
    assert replay[0].id in kept and "zz-replay-dup" not in kept  # smallest id wins within a source
    dedup = stats["stages"]["dedup"]
    assert dedup["abstracts"]["dropped"] == {"duplicate_content": 1, "duplicate_id": 1}
    assert dedup["replay"]["dropped"] == {"duplicate_content": 1}
    assert dedup["papers"]["dropped"] == {}


def test_guidelines_dedup_by_title_within_a_site_only(tmp_path):
    texts = [d.text for d in _english(4, 11, "guidelines")]

    def guideline(doc_id, site, title, text):
        return Document(id=doc_id, source="guidelines", subset=site, title=title, text=text)

    docs = [guideline("g1", "nice", "Asthma: diagnosis, monitoring", texts[0]),
            guideline("g2", "nice", "ASTHMA — diagnosis & monitoring ", texts[1]),  # same page, other URL
            guideline("g3", "rch", "Asthma: diagnosis, monitoring", texts[2]),  # another site: kept
            guideline("g4", "nice", "", texts[3])]  # no title: never matched by title
    _write(tmp_path / "raw/guidelines/nice/a.jsonl.gz", docs)
    stats = run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    assert set(_clean(tmp_path)) == {"g1", "g3", "g4"}
    assert stats["stages"]["dedup"]["guidelines"]["dropped"] == {"duplicate_title": 1}


def test_id_winner_and_content_winner_do_not_lose_text(tmp_path):
    # A and B share text; A also shares its id with C (which wins the id). B must survive.
    a = Document(id="x-1", source="abstracts", text=_english(1, 7, "abstracts")[0].text)
    c = Document(id="x-1", source="papers", text=_english(1, 8, "papers")[0].text)
    b = Document(id="y-2", source="abstracts", text=a.text)
    _write(tmp_path / "raw/papers/p.jsonl.gz", [c])
    _write(tmp_path / "raw/abstracts/a.jsonl.gz", [a, b])
    run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    kept = _clean(tmp_path)
    assert set(kept) == {"x-1", "y-2"} and kept["x-1"].source == "papers"


def test_split_never_moves_a_document_when_others_are_added(tmp_path):
    recipe = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"},
                                    "sources": {"abstracts": {"validation_fraction": 0.3}}})
    first = _english(40, 21, "abstracts")
    _write(tmp_path / "one/raw/abstracts/a.jsonl.gz", first)
    run_process(str(tmp_path / "one"), str(tmp_path / "one"), recipe, make_executor("local", 1))
    more = _english(40, 22, "abstracts")
    _write(tmp_path / "two/raw/abstracts/a.jsonl.gz", more[:20] + first[::-1])
    _write(tmp_path / "two/raw/abstracts/b.jsonl.gz", more[20:])
    run_process(str(tmp_path / "two"), str(tmp_path / "two"), recipe, make_executor("local", 1))
    before, after = _clean(tmp_path / "one"), _clean(tmp_path / "two")
    splits = [d.meta["split"] for d in before.values()]
    assert 0 < splits.count("validation") < len(splits)
    assert all(after[i].meta["split"] == d.meta["split"] for i, d in before.items())
    assert all(d.meta["split"] == assign_split(recipe.seed, i, 0.3) for i, d in after.items())


def test_stats_reconcile_and_bad_lines_are_quarantined_with_file_and_line(tmp_path):
    docs = _english(5, 31, "abstracts")
    _write(tmp_path / "raw/abstracts/a.jsonl.gz", docs[:2],
           extra_lines=[b'{"id": "broken", "text": ', b'{"id": "z", "source": "nowhere", "text": "x"}'])
    _write(tmp_path / "raw/abstracts/b.jsonl.gz", docs[2:] + [Document(id="tiny", source="abstracts", text="Short.")])
    stats = run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    stages = stats["stages"]
    assert list(stages) == ["acquire", "read", "clean", "filter", "dedup", "near_dedup", "upsample", "split"]
    # no acquisition ledger here: the acquire stage counts what the raw shards hold
    assert stages["acquire"]["abstracts"] == {"in": 7, "out": 7, "dropped": {}, "quarantined": 0}
    for stage, by_source in stages.items():
        for source, c in by_source.items():
            assert c["in"] == c["out"] + sum(c["dropped"].values()) + c["quarantined"], (stage, source)
    assert stages["read"]["abstracts"] == {"in": 7, "out": 6, "dropped": {}, "quarantined": 1}
    assert stages["read"]["nowhere"]["quarantined"] == 1
    assert stages["filter"]["abstracts"]["dropped"] == {"too_short": 1}
    assert orjson.loads((tmp_path / "stats.json").read_bytes()) == stats
    entries = [orjson.loads(line) for p in sorted((tmp_path / "quarantine").rglob("*.jsonl"))
               for line in p.read_bytes().splitlines()]
    broken = [e for e in entries if "malformed JSON" in e["reason"]]
    assert broken and broken[0]["file"].endswith("raw/abstracts/a.jsonl.gz") and broken[0]["line"] == 3
    assert any("'nowhere' is not in the recipe" in e["reason"] for e in entries)
    assert len(_clean(tmp_path)) == 5


def test_a_document_over_max_chars_is_quarantined_before_any_stage(tmp_path):
    recipe = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"},
                                    "sources": {"papers": {"max_chars": 5_000}}})
    small = _english(3, 7, "papers")
    big = Document(id="big", source="papers", text=small[0].text * 20)
    _write(tmp_path / "raw/papers/a.jsonl.gz", small + [big])
    stats = run_process(str(tmp_path), str(tmp_path), recipe, make_executor("local", 1))
    read = stats["stages"]["read"]["papers"]
    assert (read["in"], read["out"], read["quarantined"]) == (4, 3, 1)
    assert "big" not in _clean(tmp_path)
    (qfile,) = [p for p in (tmp_path / "quarantine").rglob("*.jsonl") if p.stat().st_size]
    entry = orjson.loads(qfile.read_bytes().splitlines()[0])
    assert entry["reason"].startswith(f"document big too large: {len(big.text):,} characters")
    assert "sources.papers.max_chars = 5,000" in entry["reason"]


def test_after_a_run_work_keeps_only_markers_and_a_lost_clean_shard_is_rebuilt(tmp_path):
    papers, abstracts = _english(6, 1, "papers"), _english(6, 2, "abstracts")
    copy_text = Document(id="copy-of-paper", source="abstracts", text=papers[2].text.upper())
    _write(tmp_path / "raw/papers/a.jsonl.gz", papers)
    _write(tmp_path / "raw/abstracts/a.jsonl.gz", abstracts)
    _write(tmp_path / "raw/abstracts/b.jsonl.gz", [copy_text])
    stats = run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    assert stats["stages"]["dedup"]["abstracts"]["dropped"] == {"duplicate_content": 1}
    work = next((tmp_path / "work").iterdir())
    # segment shards, dedup buckets and decisions, near-dedup signatures and pairs: all gone
    assert [p.name for p in work.iterdir()] == ["markers"]
    clean = {p: p.read_bytes() for p in sorted((tmp_path / "clean").rglob("*.jsonl.gz"))}
    markers = {p: p.stat().st_mtime_ns for p in work.rglob("*.json")}
    assert run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1)) == stats
    assert {p: p.stat().st_mtime_ns for p in work.rglob("*.json")} == markers  # nothing redone
    # a clean shard lost after the run needs the dedup decisions, which are gone: all runs again
    lost = next(p for p in clean if "abstracts" in str(p) and p.name.startswith("b"))
    lost.unlink()
    assert run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 2)) == stats
    assert {p: p.read_bytes() for p in sorted((tmp_path / "clean").rglob("*.jsonl.gz"))} == clean
    assert [p.name for p in work.iterdir()] == ["markers"]
