"""An n-gram index of benchmark texts: sorted 64-bit n-gram hashes per benchmark, searched with numpy.

Tokens are lower-case word tokens (`\\w+`) of the text; an n-gram's hash is a polynomial over
the tokens' xxh3 hashes, computed for all positions of a text at once. The same function hashes
documents, so a document n-gram hits exactly when its n tokens equal a benchmark n-gram's.
N-grams found in more than `max_item_frequency` items of a benchmark are template phrases
("which of the following is the most likely ...") and are left out of the index.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import xxhash

from gap_replay.decontam.benchmarks import BenchmarkFile, iter_items

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
_BASE = np.uint64(0x100000001B3)  # FNV prime: an odd multiplier for the polynomial


def words(text: str) -> list[str]:
    """Lower-case word tokens (the fast path: one regex pass in C)."""
    return _WORD.findall(text.lower())


def tokens_with_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Tokens with their character spans in `text`, for cutting spans out (the slow path)."""
    tokens, spans = [], []
    for m in _WORD.finditer(text):
        tokens.append(m.group().lower())
        spans.append(m.span())
    return tokens, spans


_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX = 1 << 20  # words repeat (Zipf): a bounded memo saves most of the hashing


def _token_hash(token: str) -> int:
    value = _TOKEN_CACHE.get(token)
    if value is None:
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
            _TOKEN_CACHE.clear()
        value = _TOKEN_CACHE[token] = xxhash.xxh3_64_intdigest(token.encode("utf-8", "surrogatepass"))
    return value


def ngram_hashes(tokens: list[str], n: int) -> np.ndarray:
    """Hash of every n-gram of `tokens` (position i covers tokens i..i+n-1); empty if too short."""
    m = len(tokens) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    th = np.fromiter(map(_token_hash, tokens), dtype=np.uint64, count=len(tokens))
    acc = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc = acc * _BASE + th[j:j + m]
    return acc


@dataclass
class BenchmarkIndex:
    """One benchmark: sorted unique n-gram hashes and, per hash, the first item that has it."""

    name: str
    hashes: np.ndarray
    items: np.ndarray
    item_ids: list[str]
    n_items: int = 0
    n_dropped_common: int = 0

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `hashes` are in this benchmark."""
        if self.hashes.size == 0 or hashes.size == 0:
            return np.zeros(hashes.shape, dtype=bool)
        pos = np.searchsorted(self.hashes, hashes)
        pos[pos == self.hashes.size] = 0
        return self.hashes[pos] == hashes

    def items_of(self, hashes: np.ndarray, limit: int = 3) -> list[str]:
        pos = np.searchsorted(self.hashes, hashes)
        found = sorted({int(self.items[p]) for p in pos.tolist() if p < self.hashes.size})
        return [self.item_ids[i] for i in found[:limit]]


@dataclass
class NgramIndex:
    ngram: int
    benchmarks: dict[str, BenchmarkIndex] = field(default_factory=dict)

    @classmethod
    def build(cls, files: list[BenchmarkFile], ngram: int = 13, max_item_frequency: int = 10) -> "NgramIndex":
        by_name: dict[str, list[BenchmarkFile]] = {}
        for f in files:
            by_name.setdefault(f.name, []).append(f)
        index = cls(ngram)
        for name, group in sorted(by_name.items()):
            parts, owners, item_ids = [], [], []
            for bench in group:
                for item in iter_items(bench):
                    grams = [ngram_hashes(words(text), ngram) for text in item.fields if text]
                    grams = np.unique(np.concatenate(grams)) if grams else np.zeros(0, np.uint64)
                    if grams.size:
                        parts.append(grams)
                        owners.append(np.full(grams.size, len(item_ids), dtype=np.uint32))
                    item_ids.append(item.item_id)
            if parts:
                all_h = np.concatenate(parts)
                all_o = np.concatenate(owners)
                order = np.lexsort((all_o, all_h))
                all_h, all_o = all_h[order], all_o[order]
                uniq, first, counts = np.unique(all_h, return_index=True, return_counts=True)
                keep = counts <= max_item_frequency
                bench_index = BenchmarkIndex(name, uniq[keep], all_o[first][keep], item_ids,
                                             len(item_ids), int((~keep).sum()))
            else:
                bench_index = BenchmarkIndex(name, np.zeros(0, np.uint64), np.zeros(0, np.uint32),
                                             item_ids, len(item_ids))
            log.info("benchmark %s: %d items, %d %d-grams indexed (%d template n-grams left out)",
                     name, bench_index.n_items, bench_index.hashes.size, ngram, bench_index.n_dropped_common)
            index.benchmarks[name] = bench_index
        return index

    def summary(self) -> dict:
        return {name: {"items": b.n_items, "ngrams": int(b.hashes.size),
                       "template_ngrams_ignored": b.n_dropped_common}
                for name, b in self.benchmarks.items()}
