"""Build a small output directory in the data contract (clean/, shards/, manifest.json, stats.json)
for the operations tests: random but seeded documents, real gzip shards with real sha256s."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from gap_replay.document import Document
from gap_replay.io import ShardWriter

GUIDELINE_TAGS = {  # tag -> redistributable (docs/sources.md §2.0)
    "cco": True, "nice": True, "wikidoc": True, "who": True,
    "aafp": False, "mayo": False, "drugs": False, "rch": False,
}
WORDS = "patient dose therapy trial cohort risk guideline infection fever children adult renal".split()


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def make_out(root: Path, *, seed: int = 0, vocab_size: int = 1000, docs_per_source: int = 12,
             shards_per_split: int = 2) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    clean: dict[str, list[Document]] = {"guidelines": [], "abstracts": [], "papers": [], "replay": []}
    for source in clean:
        for i in range(docs_per_source):
            split = "validation" if (source != "replay" and i % 5 == 0) else "train"
            meta = {"split": split, "license": "CC-BY-4.0"}
            subset = {"abstracts": "pubmed", "papers": "pmc", "replay": "arxiv"}.get(source, "")
            if source == "guidelines":
                subset = list(GUIDELINE_TAGS)[i % len(GUIDELINE_TAGS)]
                meta["redistributable"] = GUIDELINE_TAGS[subset]
                meta["license"] = "open" if GUIDELINE_TAGS[subset] else "all rights reserved"
            clean[source].append(Document(id=f"{source}-{i}", source=source, subset=subset,
                                          title=f"{source} {i}", text=_text(rng, rng.randint(5, 400)),
                                          url=f"https://example.org/{source}/{i}", meta=meta))
    for source, docs in clean.items():
        with ShardWriter(root / "clean" / source / "part-00000.jsonl.gz") as w:
            for d in docs:
                w.write(d)
    shards = []
    totals: dict[str, int] = {}
    for split in ("train", "validation"):
        records = []
        for source, docs in clean.items():
            for d in docs:
                if d.meta["split"] != split:
                    continue
                repeats = 2 if source == "guidelines" and split == "train" else 1
                for _ in range(repeats):
                    n = len(d.text.split()) + 1
                    ids = [rng.randrange(vocab_size) for _ in range(n - 1)] + [vocab_size - 1]
                    records.append({"id": d.id, "source": source, "split": split, "n_tokens": n,
                                    "input_ids": ids})
        rng.shuffle(records)
        for k in range(shards_per_split):
            part = records[k::shards_per_split]
            rel = f"shards/{split}/shard-{k:05d}.jsonl.gz"
            with ShardWriter(root / rel) as w:
                for r in part:
                    w.write(r)
            by_source: dict[str, int] = {}
            for r in part:
                by_source[r["source"]] = by_source.get(r["source"], 0) + r["n_tokens"]
                totals[r["source"]] = totals.get(r["source"], 0) + r["n_tokens"]
            shards.append({"path": rel, "sha256": hashlib.sha256((root / rel).read_bytes()).hexdigest(),
                           "documents": len(part), "tokens": sum(r["n_tokens"] for r in part),
                           "tokens_by_source": by_source})
    manifest = {"recipe": {"name": "test", "sources": {s: {"target_tokens": 1000} for s in clean}},
                "seed": seed, "tokenizer": {"path": "sample.model", "vocab_size": vocab_size},
                "shards": shards,
                "totals": {"documents": sum(s["documents"] for s in shards),
                           "tokens": sum(totals.values()), "tokens_by_source": totals,
                           "target_tokens_by_source": {s: 1000 for s in clean}}}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    stages = {}
    for stage, drop in (("clean", {}), ("filter", {"language": 2, "too_short": 3}),
                        ("dedup", {"duplicate_id": 1, "duplicate_content": 2})):
        stages[stage] = {s: {"in": docs_per_source + sum(drop.values()), "out": docs_per_source,
                             "dropped": dict(drop), "quarantined": 0} for s in clean}
    (root / "stats.json").write_text(json.dumps({"stages": stages}, indent=2))
    return root
