"""Deterministic hashes: every random choice is a function of (seed, key), never of order."""

from __future__ import annotations

import hashlib

import xxhash

_MAX64 = float(2**64)


def stable_hash(seed: int | str, *parts: str) -> int:
    """A 64-bit hash of (seed, parts) that is the same on every machine and Python run."""
    h = xxhash.xxh3_64()
    h.update(str(seed).encode())
    for part in parts:
        h.update(b"\x1f")
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.intdigest()


def unit_interval(seed: int | str, *parts: str) -> float:
    """A uniform number in [0, 1) derived from (seed, parts)."""
    return stable_hash(seed, *parts) / _MAX64


def content_hash(text: str) -> str:
    """Hex digest used for content identity (exact dedup, ids); collision-safe, not just fast."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def sha1_id(*parts: str) -> str:
    """Stable id from source-derived parts (e.g. guideline source + canonical URL)."""
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
