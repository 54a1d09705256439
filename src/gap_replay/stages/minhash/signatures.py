"""Word n-gram shingles and MinHash signatures (datasketch), plus the per-band bucket hashes.

Permutations come from the seed, shingles are hashed with xxh32, so a document has the same
signature on every machine and in every run.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash
from datasketch import MinHash

from gap_replay.stages.minhash.config import NearDedupConfig

_WORD = re.compile(r"\w+")
SCHEME = "affine32"
BATCH = 1024  # shingles per datasketch update_batch call


def words(text: str) -> list[str]:
    """Lower-case word tokens of NFKC text: spacing and punctuation edits do not change shingles."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def shingles(text: str, n: int) -> list[bytes]:
    """Distinct word n-grams; a text shorter than n words is one shingle; empty text has none."""
    tokens = words(text)
    if not tokens:
        return []
    if len(tokens) < n:
        return [" ".join(tokens).encode()]
    # n shifted views zipped: no list slice per position; distinct before encoding
    return [gram.encode() for gram in set(map(" ".join, zip(*(tokens[k:] for k in range(n)))))]


class Signer:
    """MinHash signatures with the recipe's permutations; one instance per task, reused per doc."""

    def __init__(self, config: NearDedupConfig) -> None:
        self.config = config
        template = MinHash(num_perm=config.num_perm, seed=config.seed, scheme=SCHEME,
                           hashfunc=xxhash.xxh32_intdigest)
        self._permutations = template.permutations

    def signature(self, text: str) -> np.ndarray | None:
        grams = shingles(text, self.config.ngram)
        if not grams:
            return None
        mh = MinHash(num_perm=self.config.num_perm, seed=self.config.seed, scheme=SCHEME,
                     hashfunc=xxhash.xxh32_intdigest, permutations=self._permutations)
        # in chunks: the (shingles x permutations) matrix of a 60 KB paper is megabytes, and a
        # chunk that stays in cache is ~3x faster; a minimum of minima is the same minimum
        for start in range(0, len(grams), BATCH):
            mh.update_batch(grams[start:start + BATCH])
        return np.asarray(mh.hashvalues, dtype=np.uint32)

    def band_hashes(self, signature: np.ndarray) -> np.ndarray:
        """One 64-bit hash per band of `rows` signature values: equal bands collide exactly."""
        rows = self.config.rows
        out = np.empty(self.config.bands, dtype=np.uint64)
        for band in range(self.config.bands):
            out[band] = xxhash.xxh3_64_intdigest(signature[band * rows:(band + 1) * rows].tobytes(),
                                                 seed=band)
        return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise fraction of equal MinHash values (vectorised over pairs)."""
    return (sig_a == sig_b).mean(axis=-1)
