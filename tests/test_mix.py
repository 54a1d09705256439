"""Mix: budgets to repeat counts, hash rounding, validation never repeated, manifest, determinism."""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter

import orjson
import pytest

from gap_replay.document import Document
from gap_replay.executors import make_executor
from gap_replay.io import ShardWriter
from gap_replay.mix import run_mix
from gap_replay.recipe import load_recipe
from gap_replay.sample.textgen import make_documents
from gap_replay.mix_plan import plan_sources, quality_weight, repeat_count


def test_repeat_count_rounds_by_hash_and_is_unbiased():
    counts = [repeat_count(7, f"doc-{i}", 2.3) for i in range(4000)]
    assert set(counts) == {2, 3}
    assert abs(sum(counts) / len(counts) - 2.3) < 0.03
    assert counts == [repeat_count(7, f"doc-{i}", 2.3) for i in range(4000)]
    assert counts != [repeat_count(8, f"doc-{i}", 2.3) for i in range(4000)]
    assert repeat_count(1, "x", 0.0) == 0 and repeat_count(1, "x", 4.0) == 4


def test_plan_normalises_quality_weights_to_the_budget():
    plan = plan_sources({"papers": 300, "replay": 50},
                        {"papers": {"train_tokens": 100, "weighted_tokens": 150}, "replay": {"train_tokens": 200,
                                                                                             "weighted_tokens": 200}})
    assert plan["papers"]["factor"] == 3.0 and plan["papers"]["multiplier"] == 2.0
    assert plan["replay"]["factor"] == 0.25
    assert quality_weight({}) == 1.0 and quality_weight({"quality_weight": -2}) == 0.0
    assert quality_weight({"quality_weight": "x"}) == 1.0


def _clean_tree(root, n_per_source=60):
    """A clean/ tree as `process` writes it: documents with meta.split."""
    for i, source in enumerate(("papers", "abstracts", "replay")):
        docs = make_documents(n_per_source, seed=100 + i, english_share=1.0, target_chars=400, source=source)
        for j, d in enumerate(docs):
            d.meta["split"] = "validation" if j % 10 == 0 and source != "replay" else "train"
            if source == "papers":
                d.meta["quality_weight"] = 3.0 if j % 2 else 1.0
        for half in (0, 1):
            with ShardWriter(root / "clean" / source / f"part-{half}.jsonl.gz") as w:
                for d in docs[half::2]:
                    w.write(d)


RECIPE = load_recipe(overrides={
    "tokenizer": {"path": "sample:tokenizer.model"}, "scale": 1,
    "sources": {"papers": {"target_tokens": 20000}, "abstracts": {"target_tokens": 3000},
                "replay": {"target_tokens": 1500}, "guidelines": {"target_tokens": 0}},
    "output": {"shards_per_split": {"train": 3, "validation": 2}}})


def _rows(out):
    rows = []
    for path in sorted((out / "shards").rglob("*.jsonl.gz")):
        rows += [orjson.loads(line) for line in gzip.open(path)]
    return rows


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    _clean_tree(root)
    manifest = run_mix(str(root), str(root / "a"), RECIPE, make_executor("local", 1))
    return root, manifest


def test_budgets_are_met_by_up_and_down_sampling(mixed):
    root, manifest = mixed
    train = Counter()
    for row in _rows(root / "a"):
        if row["split"] == "train":
            train[row["source"]] += row["n_tokens"]
    for source, target in (("papers", 20000), ("abstracts", 3000), ("replay", 1500)):
        assert abs(train[source] - target) / target < 0.25, (source, train[source], target)
    plan = orjson.loads((root / "a" / "mix_plan.json").read_bytes())
    assert plan["papers"]["factor"] > 1 > plan["abstracts"]["factor"]


def test_validation_documents_appear_exactly_once_and_weights_shift_repeats(mixed):
    root, _ = mixed
    rows = _rows(root / "a")
    val = Counter(r["id"] for r in rows if r["split"] == "validation")
    assert val and set(val.values()) == {1}
    assert len(val) == 2 * 6  # every validation document of papers and abstracts, once
    paper_repeats = Counter(r["id"] for r in rows if r["source"] == "papers" and r["split"] == "train")
    heavy = [n for i, n in paper_repeats.items() if int(i.rsplit("-", 1)[1]) % 2]
    light = [n for i, n in paper_repeats.items() if not int(i.rsplit("-", 1)[1]) % 2]
    assert sum(heavy) / len(heavy) > 2 * sum(light) / max(len(light), 1)


def test_manifest_matches_the_files_and_a_rerun_in_another_place_is_identical(mixed, tmp_path):
    root, manifest = mixed
    assert set(manifest) == {"recipe", "seed", "tokenizer", "shards", "totals"}
    assert set(manifest["totals"]) == {"documents", "tokens", "tokens_by_source", "target_tokens_by_source",
                                       "restricted_tokens_by_split"}
    assert [s["path"] for s in manifest["shards"]] == [
        "shards/train/shard-00000.jsonl.gz", "shards/train/shard-00001.jsonl.gz",
        "shards/train/shard-00002.jsonl.gz", "shards/validation/shard-00000.jsonl.gz",
        "shards/validation/shard-00001.jsonl.gz"]
    for shard in manifest["shards"]:
        data = (root / "a" / shard["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        rows = [orjson.loads(line) for line in gzip.decompress(data).splitlines()]
        assert len(rows) == shard["documents"] and sum(r["n_tokens"] for r in rows) == shard["tokens"]
        assert shard["documents_by_source"] == dict(sorted(Counter(r["source"] for r in rows).items()))
    again = run_mix(str(root), str(tmp_path / "b"), RECIPE, make_executor("local", 2))
    assert again == manifest
    assert not list((root / "a").rglob("*.tmp-*"))


def test_rows_are_shuffled_across_sources(mixed):
    root, _ = mixed
    sources = [r["source"] for r in _rows(root / "a") if r["split"] == "train"]
    changes = sum(a != b for a, b in zip(sources, sources[1:]))
    assert changes > len(sources) / 4  # not grouped by source as the original combine was


def test_documents_without_split_are_quarantined_not_mixed(tmp_path):
    with ShardWriter(tmp_path / "clean" / "papers" / "p.jsonl.gz") as w:
        w.write(Document(id="p1", source="papers", text="Some text here.", meta={"split": "train"}))
        w.write(Document(id="p2", source="papers", text="No split.", meta={}))
    run_mix(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    ids = {r["id"] for r in _rows(tmp_path)}
    assert ids == {"p1"}
    entries = [orjson.loads(line) for p in (tmp_path / "quarantine").rglob("*.jsonl") for line in p.read_bytes().splitlines()]
    assert len(entries) == 1 and "no meta.split" in entries[0]["reason"]


def test_shard_count_follows_the_planned_tokens_up_to_the_recipe_maximum():
    from gap_replay.mix_plan import MIN_SHARDS, SHARD_TOKENS, shard_counts

    plan = plan_sources({"papers": 10 * SHARD_TOKENS + 1, "replay": 5},
                        {"papers": {"train_tokens": 10, "weighted_tokens": 10, "validation_tokens": 3}})
    assert shard_counts(plan, {"train": 1024, "validation": 32}) == {"train": 11, "validation": MIN_SHARDS}
    assert shard_counts(plan, {"train": 4, "validation": 2}) == {"train": 4, "validation": 2}  # the sample's
    # a source without train tokens writes nothing, so it does not count
    assert shard_counts(plan_sources({"replay": 100 * SHARD_TOKENS}, {}), {"train": 64, "validation": 1}) == {
        "train": MIN_SHARDS, "validation": 1}


def test_a_small_corpus_gets_few_shards_and_mix_keeps_only_markers(tmp_path):
    from gap_replay.mix_plan import MIN_SHARDS

    _clean_tree(tmp_path, n_per_source=20)
    recipe = load_recipe(overrides={**RECIPE.data, "output": {"shards_per_split": {"train": 1024, "validation": 32}}})
    manifest = run_mix(str(tmp_path), str(tmp_path), recipe, make_executor("local", 1))
    assert len(manifest["shards"]) == 2 * MIN_SHARDS == len(list((tmp_path / "shards").rglob("*.jsonl.gz")))
    work = next((tmp_path / "work").iterdir())
    assert sorted(p.name for p in work.iterdir()) == ["markers", "plan.json"]  # tokens, buckets: deleted
    markers = sorted(work.rglob("*.json"))
    assert len(markers) == 1 + 2 * 6 + 2 * MIN_SHARDS  # plan, tokenize + bucket per clean shard, write
    stamps = {p: p.stat().st_mtime_ns for p in markers}
    assert run_mix(str(tmp_path), str(tmp_path), recipe, make_executor("local", 1)) == manifest
    assert {p: p.stat().st_mtime_ns for p in markers if p.name != "plan.json"} == {
        p: t for p, t in stamps.items() if p.name != "plan.json"}  # a rerun after success: nothing redone
    # an output shard deleted after the run: its buckets are gone, so mix makes them again
    shard = tmp_path / manifest["shards"][3]["path"]
    before = shard.read_bytes()
    shard.unlink()
    assert run_mix(str(tmp_path), str(tmp_path), recipe, make_executor("local", 2)) == manifest
    assert shard.read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == ["markers", "plan.json"]
