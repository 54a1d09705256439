"""`mix`: token budgets to per-document repeat counts, and a shuffle that never holds the corpus.

* Plan: per source, `factor = target / measured train tokens` (below 1 down-samples, above 1
  up-samples). With quality weights (`meta.quality_weight`, default 1) a document's expected
  repeats are `factor_w * weight`, where `factor_w = target / sum(weight * tokens)` so the source
  still meets its budget. Validation documents appear exactly once.
* Rounding: `floor(x)` plus one more when `unit_interval(seed, id) < frac(x)`: a function of the
  document, never of a global RNG or processing order.
* Shuffle: repeat `r` of document `id` goes to output shard `hash(seed, id, r) % N` with sort key
  `hash(seed, id, r)`. Map: each tokenized shard appends lines to per-output-shard bucket files;
  reduce: one output shard's bucket files are sorted in memory and written. Memory is bounded by
  the largest output shard.
* Shard count: `recipe.output.shards_per_split` is the most a split gets; a split gets no more
  than one shard per `SHARD_TOKENS` planned tokens, and never fewer than `MIN_SHARDS` (the write
  phase is one task per shard), so a small corpus is not spread over a thousand tiny files.
"""

from __future__ import annotations

import math
import orjson

from gap_replay.hashing import stable_hash, unit_interval

SHARD_ROW_KEYS = ("id", "source", "split", "n_tokens", "input_ids")
# ~4M tokens: about 25 MB of bucket lines sorted in memory by one write task, ~10 MB of gzip
SHARD_TOKENS = 1 << 22
MIN_SHARDS = 8


def plan_sources(targets: dict[str, int], measured: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Per source: target, measured train tokens, weighted tokens and the repeat multiplier.

    `measured[source]` holds `train_tokens` and `weighted_tokens` (sum of weight * tokens).
    """
    plan = {}
    for source, target in sorted(targets.items()):
        m = measured.get(source, {})
        train = float(m.get("train_tokens", 0))
        weighted = float(m.get("weighted_tokens", 0))
        plan[source] = {
            "target_tokens": int(target),
            "measured_train_tokens": int(train),
            "validation_tokens": int(m.get("validation_tokens", 0)),
            "factor": (target / train) if train else 0.0,
            "multiplier": (target / weighted) if weighted else 0.0,
        }
    return plan


def shard_counts(plan: dict[str, dict], maximum: dict[str, int]) -> dict[str, int]:
    """Output shards per split from the plan's token counts (before bucketing, so every bucket
    task agrees): train is planned at the targets of the sources that have train tokens,
    validation at its measured tokens (it is written once)."""
    planned = {"train": sum(p["target_tokens"] for p in plan.values() if p["multiplier"] > 0),
               "validation": sum(p["validation_tokens"] for p in plan.values())}
    return {split: min(most, max(MIN_SHARDS, -(-planned.get(split, 0) // SHARD_TOKENS)))
            for split, most in maximum.items()}


def quality_weight(meta: dict) -> float:
    """`meta.quality_weight` (set by a source's quality stage), 1.0 when absent; never negative."""
    value = meta.get("quality_weight", 1.0)
    try:
        weight = float(value)
    except (TypeError, ValueError):
        return 1.0
    return weight if weight > 0 and math.isfinite(weight) else 0.0


def repeat_count(seed: int, doc_id: str, expected: float) -> int:
    """`expected` repeats rounded up or down by a hash of (seed, id): unbiased, reproducible."""
    whole = math.floor(expected)
    return whole + (1 if unit_interval(seed, "repeat", doc_id) < expected - whole else 0)


def placement(seed: int, doc_id: str, repeat: int, n_shards: int) -> tuple[int, int]:
    """(output shard, sort key) of one repeat of one document."""
    shard = stable_hash(seed, "shard", doc_id, str(repeat)) % n_shards
    return shard, stable_hash(seed, "order", doc_id, str(repeat))


def shard_row(doc_id: str, source: str, split: str, input_ids: list[int]) -> bytes:
    return orjson.dumps({"id": doc_id, "source": source, "split": split, "n_tokens": len(input_ids),
                         "input_ids": input_ids}, option=orjson.OPT_SORT_KEYS)


def bucket_line(order: int, source: str, n_tokens: int, row: bytes) -> bytes:
    """A bucket line sorts by its order key; source and size ride along for the manifest."""
    return b"%016x\t%s\t%d\t" % (order, source.encode(), n_tokens) + row


def parse_bucket_line(line: bytes) -> tuple[str, int, bytes]:
    _order, source, n_tokens, row = line.rstrip(b"\n").split(b"\t", 3)
    return source.decode(), int(n_tokens), row
