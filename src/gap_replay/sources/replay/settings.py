"""The recipe's `replay:` section as typed settings, and human token sizes (420M, 1.5B)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URL_LISTS = "https://data.together.xyz/redpajama-data-1T/v1.0.0/urls.txt"
# The original's "Llama-2 subset" without `book`: the book subset (PG-19 + Books3) was taken
# down for copyright (HF card: "Defunct"; its files 404 and urls.txt no longer lists them
# since spring 2024, see docs/replay.md), so it is no longer a default.
DEFAULT_SUBSETS = ("wikipedia", "arxiv", "stackexchange")
# What a chosen subset with no data files at run time does: "respread" gives its budget to the
# other chosen subsets by weight (the total is still reached), "fail" stops the run.
MISSING_SUBSET_POLICIES = ("respread", "fail")
# Published RedPajama-1T subset sizes in billions of (LLaMA) tokens: sampling in proportion
# to them is the same as sampling uniformly over the union of the chosen subsets.
PUBLISHED_BILLION_TOKENS = {"common_crawl": 878, "c4": 175, "github": 59, "arxiv": 28,
                            "book": 26, "wikipedia": 24, "stackexchange": 20}
DEFAULT_TARGET_TOKENS = 420_000_000
# Documented fallback when no tokenizer is given: LLaMA-2 averages about 4 characters per
# token on English prose (fewer on LaTeX and code, which this slightly under-counts).
DEFAULT_CHARS_PER_TOKEN = 4.0

# The recipe's `replay:` keys, each with its rule (checked at recipe load and after CLI overrides).
KEYS = ("url_lists", "subsets", "missing_subsets", "weights", "chars_per_token", "tokenizer",
        "probe_documents", "read_multiplier", "docs_per_shard", "rate", "max_resumes", "hub",
        "text_field")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_RULES: dict[str, tuple[Any, str]] = {
    "url_lists": (lambda v: isinstance(v, str) and bool(v.strip()), "a URL, template or folder"),
    "subsets": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) and s for s in v),
                "a list of RedPajama subset names"),
    "missing_subsets": (lambda v: v in MISSING_SUBSET_POLICIES,
                        f"one of {', '.join(MISSING_SUBSET_POLICIES)}"),
    "weights": (lambda v: isinstance(v, dict) and all(_is_number(w) and w >= 0 for w in v.values()),
                "a mapping of subset to a weight >= 0"),
    "chars_per_token": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "tokenizer": (lambda v: isinstance(v, str), "a tokenizer file path or null"),
    "probe_documents": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "read_multiplier": (lambda v: _is_number(v) and v >= 1, "a number >= 1"),
    "docs_per_shard": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "rate": (lambda v: _is_number(v) and v >= 0, "requests per second, a number >= 0"),
    "max_resumes": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "hub": (lambda v: isinstance(v, dict) and all(isinstance(p, str) for p in v.values()),
            "a mapping of subset to a parquet folder or glob"),
    "text_field": (lambda v: isinstance(v, str) and bool(v), "a field name"),
}


def _check(values: dict[str, Any], prefix: str = "replay.") -> None:
    for key, value in values.items():
        ok, what = _RULES[key]
        if value is not None and not ok(value):
            raise ValueError(f"{prefix}{key}: must be {what}, got {value!r}")


def validate_section(section: Any, key: str = "replay") -> None:
    """The recipe's check of `replay:` at load (gap_replay.recipe): known keys, types, ranges."""
    from gap_replay.recipe import reject_unknown

    if section is None:
        return
    if not isinstance(section, dict):
        raise ValueError(f"{key}: must be a mapping, got {section!r}")
    reject_unknown(section, KEYS, f"{key}.", ValueError)
    _check(section, f"{key}.")


_SIZE = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_size(value: str | int | float) -> int:
    """'420M' -> 420_000_000, '1.5B' -> 1_500_000_000, '2k' -> 2000, '420_000_000' as is."""
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 420M, 1.5B, 1000000)")
    number = float(match.group(1).replace("_", "").replace(",", ""))
    result = int(round(number * _UNITS[match.group(2).lower()]))
    if result <= 0:
        raise ValueError(f"size must be positive: {value!r}")
    return result


@dataclass
class ReplaySettings:
    """Everything the sampler needs; built from the recipe, overridden by the CLI."""

    target_tokens: int = DEFAULT_TARGET_TOKENS
    subsets: tuple[str, ...] = DEFAULT_SUBSETS
    weights: dict[str, float] = field(default_factory=lambda: dict(PUBLISHED_BILLION_TOKENS))
    url_lists: str = DEFAULT_URL_LISTS
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
    tokenizer: str | None = None
    probe_documents: int = 200
    read_multiplier: float = 10.0
    docs_per_shard: int = 10_000
    rate: float = 1.0
    max_resumes: int = 5
    hub: dict[str, str] = field(default_factory=dict)
    text_field: str = "text"
    missing_subsets: str = "respread"
    seed: int = 0

    def budgets(self, available: tuple[str, ...] | None = None) -> dict[str, int]:
        """Token budget per subset: target x weight / sum of the weights of the chosen subsets
        (of `available` ones only, when given: a missing subset's share is re-spread)."""
        chosen = self.subsets if available is None else tuple(
            s for s in self.subsets if s in available)
        weights = {s: float(self.weights.get(s, 1.0)) for s in chosen}
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("replay weights of the chosen subsets sum to zero")
        return {s: int(round(self.target_tokens * w / total)) for s, w in weights.items()}

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any] | None, **overrides: Any) -> "ReplaySettings":
        recipe = recipe or {}
        validate_section(recipe.get("replay"))
        section = dict(recipe.get("replay") or {})
        kwargs: dict[str, Any] = {}
        target = ((recipe.get("sources") or {}).get("replay") or {}).get("target_tokens")
        if target is not None:
            kwargs["target_tokens"] = parse_size(target)
        if "seed" in recipe:
            kwargs["seed"] = int(recipe["seed"])
        for key in ("url_lists", "chars_per_token", "tokenizer", "probe_documents",
                    "read_multiplier", "docs_per_shard", "rate", "max_resumes", "text_field",
                    "missing_subsets"):
            if section.get(key) is not None:
                kwargs[key] = section[key]
        if section.get("subsets"):
            kwargs["subsets"] = tuple(section["subsets"])
        if section.get("weights"):
            kwargs["weights"] = {str(k): float(v) for k, v in section["weights"].items()}
        if section.get("hub"):
            kwargs["hub"] = {str(k): str(v) for k, v in section["hub"].items()}
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(kwargs.get("subsets"), str):
            kwargs["subsets"] = tuple(kwargs["subsets"].split(","))
        if "target_tokens" in kwargs:
            kwargs["target_tokens"] = parse_size(kwargs["target_tokens"])
        _check({k: v for k, v in kwargs.items() if k in _RULES})  # CLI overrides obey the same rules
        settings = cls(**kwargs)
        settings.subsets = tuple(dict.fromkeys(s.strip() for s in settings.subsets if s.strip()))
        if not settings.subsets:
            raise ValueError("replay.subsets: no replay subsets chosen")
        return settings
