"""Deterministic synthetic documents made from the bundled raw sample's sentences.

Used by `scripts/bench_core.py` and the language-agreement test: abstract-sized English
documents (sentences of the bundled abstracts and papers, reshuffled) and documents in the other
languages the sample holds (French, German, Spanish, Italian, Portuguese), reshuffled the same
way. A `random.Random(seed)` drives every choice, so the same seed gives the same documents.
"""

from __future__ import annotations

import gzip
import random
import re
from functools import lru_cache

import orjson

from gap_replay.document import Document
from gap_replay.resources import sample_dir

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-Ý])")


@lru_cache(maxsize=1)
def sentence_pools() -> dict[str, tuple[str, ...]]:
    """Sentences of the bundled raw sample by language ('en' or the replay doc's language)."""
    pools: dict[str, list[str]] = {}
    for path in sorted((sample_dir() / "text").rglob("*.jsonl.gz")):
        with gzip.open(path, "rb") as fh:
            for line in fh:
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                lang = obj.get("meta", {}).get("expected_language") or (
                    "fr" if "language_note" in obj.get("meta", {}) else "en")
                if obj["source"] == "guidelines":
                    continue
                for para in obj["text"].split("\n"):
                    if para.startswith("#") or "[bib_ref]" in para:
                        continue
                    for sent in _SENTENCE.split(para):
                        sent = sent.strip()
                        if 40 <= len(sent) <= 400:
                            pools.setdefault(lang, []).append(sent)
    return {lang: tuple(sorted(set(s))) for lang, s in sorted(pools.items())}


def make_documents(n: int, *, seed: int = 0, english_share: float = 1.0, target_chars: int = 1500,
                   source: str = "abstracts") -> list[Document]:
    """`n` documents of about `target_chars` characters; `english_share` of them English."""
    rng = random.Random(seed)
    pools = sentence_pools()
    others = [lang for lang in pools if lang != "en"]
    docs = []
    for i in range(n):
        lang = "en" if (not others or rng.random() < english_share) else rng.choice(others)
        pool = pools[lang]
        parts: list[str] = []
        size = 0
        while size < target_chars:
            sent = rng.choice(pool)
            parts.append(sent)
            size += len(sent) + 1
        docs.append(Document(id=f"synthetic-{seed}-{i}", source=source, text=" ".join(parts),
                             meta={"expected_language": lang}))
    return docs
