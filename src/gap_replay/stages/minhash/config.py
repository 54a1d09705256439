"""The recipe's `near_dedup:` section, validated, and the deterministic keep rule."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from gap_replay.hashing import content_hash
from gap_replay.recipe import reject_unknown

DEFAULT_SOURCE_PRIORITY = ("papers", "guidelines", "abstracts", "replay")


KEYS = ("enabled", "ngram", "bands", "rows", "threshold", "seed", "reduce_memory_mb",
        "max_bucket_all_pairs", "keep_priority", "examples")


class NearDedupConfigError(ValueError):
    """A bad `near_dedup:` recipe value; the message names the key."""


def validate_section(value, key: str = "near_dedup") -> None:
    """The recipe's check of this section at load (gap_replay.recipe): the same rules as
    `NearDedupConfig.from_recipe`, so a bad value fails before acquisition, not after."""
    NearDedupConfig.from_recipe({"near_dedup": value})


@dataclass(frozen=True)
class NearDedupConfig:
    enabled: bool = True
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    # Candidate pairs (same bucket in some band) are kept when their estimated Jaccard passes this.
    threshold: float = 0.72
    seed: int = 42
    # Memory the per-band reduce may use for one window of the hash space.
    reduce_memory_mb: int = 256
    # Buckets with up to this many members have every pair verified. In a larger bucket each member
    # is verified against the previous `max_bucket_all_pairs - 1` members (doc-key order) and the
    # bucket's first member, so the pairs stay linear in the bucket size. 1 = star edges only.
    max_bucket_all_pairs: int = 64
    source_priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY
    subset_priority: dict[str, tuple[str, ...]] = field(default_factory=dict)
    examples: int = 10

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def lsh_threshold(self) -> float:
        """The similarity at which a pair becomes a candidate with probability ~1/2: (1/b)^(1/r)."""
        return (1.0 / self.bands) ** (1.0 / self.rows)

    @classmethod
    def from_recipe(cls, recipe: dict) -> "NearDedupConfig":
        section = recipe.get("near_dedup") or {}
        if not isinstance(section, dict):
            raise NearDedupConfigError("near_dedup: must be a mapping")
        reject_unknown(section, KEYS, "near_dedup.", NearDedupConfigError)
        seed = section.get("seed", recipe.get("seed", 42))
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise NearDedupConfigError(f"near_dedup.seed: expected an integer, got {seed!r}")
        kwargs: dict = {"seed": seed}
        for key in ("ngram", "bands", "rows", "reduce_memory_mb", "max_bucket_all_pairs", "examples"):
            if key in section:
                value = section[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise NearDedupConfigError(f"near_dedup.{key}: expected a positive integer, got {value!r}")
                kwargs[key] = value
        if "enabled" in section:
            if not isinstance(section["enabled"], bool):
                raise NearDedupConfigError(f"near_dedup.enabled: expected true/false, got {section['enabled']!r}")
            kwargs["enabled"] = section["enabled"]
        if "threshold" in section:
            value = section["threshold"]
            if not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
                raise NearDedupConfigError(f"near_dedup.threshold: expected a number in (0, 1], got {value!r}")
            kwargs["threshold"] = float(value)
        priority = section.get("keep_priority") or {}
        if not isinstance(priority, dict):
            raise NearDedupConfigError("near_dedup.keep_priority: must be a mapping with sources/subsets")
        reject_unknown(priority, ("sources", "subsets"), "near_dedup.keep_priority.", NearDedupConfigError)
        if "sources" in priority:
            sources = priority["sources"]
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise NearDedupConfigError("near_dedup.keep_priority.sources: expected a list of source names")
            kwargs["source_priority"] = tuple(sources)
        elif isinstance(recipe.get("sources"), dict):  # default: the recipe's exact-dedup priorities
            listed = list(recipe["sources"])
            kwargs["source_priority"] = tuple(sorted(listed, key=lambda s: (
                (recipe["sources"][s] or {}).get("priority", listed.index(s)), listed.index(s))))
        subsets = priority.get("subsets") or {}
        if not isinstance(subsets, dict) or not all(
                isinstance(v, list) and all(isinstance(s, str) for s in v) for v in subsets.values()):
            raise NearDedupConfigError(
                "near_dedup.keep_priority.subsets: expected {source: [subset, ...]} lists")
        kwargs["subset_priority"] = {k: tuple(v) for k, v in subsets.items()}
        return cls(**kwargs)

    def keep_key(self, source: str, subset: str, doc_id: str) -> tuple:
        """Smallest key is kept: listed sources first (full text over abstract), then the listed
        subsets of that source (a guideline's origin site over the sites that copy it), then id."""
        src_rank = self.source_priority.index(source) if source in self.source_priority else len(
            self.source_priority)
        order = self.subset_priority.get(source, ())
        sub_rank = order.index(subset) if subset in order else len(order)
        return (src_rank, sub_rank, doc_id)

    def fingerprint(self) -> str:
        """Identifies the settings that change intermediate files (not reporting-only ones)."""
        data = asdict(self)
        data.pop("examples")
        data.pop("reduce_memory_mb")
        return content_hash(json.dumps(data, sort_keys=True, default=list))[:12]
