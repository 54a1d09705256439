"""The recipe: which sources make the corpus, their token budgets, splits and per-source rules.

A recipe is YAML data (see `gap_replay/recipe.yaml`). It is validated on load, and every error
names the key and the problem, e.g. ``sources.papers.validation_fraction: must be in [0, 1),
got 1.5``. The core validates the sections it owns (`name`, `seed`, `scale`, `tokenizer`,
`output`, `sources`, `dedup`); any other top-level section belongs to another part of the
project and passes through untouched, unless that part registered a validator with
`register_section`.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping

import orjson
import yaml

from gap_replay.resources import default_recipe_path, sample_dir

CLEAN_RULES = ("ftfy", "nfc", "urls", "citations", "lists", "headers", "whitespace")
SPLITS = ("train", "validation")


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the key and the problem."""


SectionValidator = Callable[[Any, str], None]
_SECTION_VALIDATORS: dict[str, SectionValidator] = {}


def register_section(name: str, validator: SectionValidator) -> None:
    """Let another part of the project validate its own top-level section.

    `validator(value, key)` raises RecipeError (use `key` as the message prefix) when the
    section is wrong. Unregistered sections are accepted as they are.
    """
    _SECTION_VALIDATORS[name] = validator


# Longest document text `process` takes (characters); per-document work (cleaning, language
# ID, shingling) stays under ~0.3 GB of memory at this size. Real papers are far shorter.
DEFAULT_MAX_CHARS = 16_000_000


def _fail(key: str, problem: str) -> None:
    raise RecipeError(f"{key}: {problem}")


def _expect(value: Any, types: type | tuple[type, ...], key: str, what: str) -> Any:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        _fail(key, f"must be {what}, got {value!r}")
    if not isinstance(value, types):
        _fail(key, f"must be {what}, got {value!r}")
    return value


def _number(value: Any, key: str, *, minimum: float | None = None, below: float | None = None,
            integer: bool = False) -> float:
    what = "an integer" if integer else "a number"
    _expect(value, int if integer else (int, float), key, what)
    if minimum is not None and value < minimum:
        _fail(key, f"must be >= {minimum}, got {value!r}")
    if below is not None and not value < below:
        _fail(key, f"must be < {below}, got {value!r}")
    return value


def _validate_tokenizer(tok: Any) -> None:
    _expect(tok, dict, "tokenizer", "a mapping")
    if "path" not in tok:
        _fail("tokenizer.path", "is required (a SentencePiece .model or a tokenizer.json)")
    _expect(tok["path"], str, "tokenizer.path", "a string")
    extra = tok.get("extra_tokens", [])
    _expect(extra, list, "tokenizer.extra_tokens", "a list of strings")
    for i, t in enumerate(extra):
        if not isinstance(t, str) or not t:
            _fail(f"tokenizer.extra_tokens[{i}]", f"must be a non-empty string, got {t!r}")
    if len(set(extra)) != len(extra):
        _fail("tokenizer.extra_tokens", "contains a duplicate token")
    _expect(tok.get("append_eod", True), bool, "tokenizer.append_eod", "true or false")


def _validate_output(out: Any) -> None:
    _expect(out, dict, "output", "a mapping")
    shards = out.get("shards_per_split", {})
    _expect(shards, dict, "output.shards_per_split", "a mapping of split to shard count")
    for split, n in shards.items():
        if split not in SPLITS:
            _fail(f"output.shards_per_split.{split}", f"unknown split; use one of {', '.join(SPLITS)}")
        _number(n, f"output.shards_per_split.{split}", minimum=1, integer=True)


def _validate_source(name: str, src: Any) -> None:
    key = f"sources.{name}"
    _expect(src, dict, key, "a mapping")
    if "target_tokens" not in src:
        _fail(f"{key}.target_tokens", "is required (train tokens after the shared stages)")
    _number(src["target_tokens"], f"{key}.target_tokens", minimum=0)
    frac = src.get("validation_fraction", 0.0)
    _expect(frac, (int, float), f"{key}.validation_fraction", "a number in [0, 1)")
    if not 0 <= frac < 1:
        _fail(f"{key}.validation_fraction", f"must be in [0, 1), got {frac!r}")
    _number(src.get("min_chars", 0), f"{key}.min_chars", minimum=0, integer=True)
    _number(src.get("max_chars", DEFAULT_MAX_CHARS), f"{key}.max_chars", minimum=1, integer=True)
    langs = src.get("languages")
    if langs is not None:
        _expect(langs, list, f"{key}.languages", "a list of language codes or null (keep all)")
        for i, lang in enumerate(langs):
            if not isinstance(lang, str) or not lang:
                _fail(f"{key}.languages[{i}]", f"must be a language code like 'en', got {lang!r}")
    clean = src.get("clean", {})
    _expect(clean, dict, f"{key}.clean", f"a mapping of rule to true/false ({', '.join(CLEAN_RULES)})")
    for rule, on in clean.items():
        if rule not in CLEAN_RULES:
            _fail(f"{key}.clean.{rule}", f"unknown cleaning rule; use one of {', '.join(CLEAN_RULES)}")
        _expect(on, bool, f"{key}.clean.{rule}", "true or false")
    _number(src.get("priority", 0), f"{key}.priority", integer=True)


def _validate_dedup(dedup: Any) -> None:
    _expect(dedup, dict, "dedup", "a mapping")
    exact = dedup.get("exact", {})
    _expect(exact, dict, "dedup.exact", "a mapping")
    for flag in ("by_id", "by_content"):
        _expect(exact.get(flag, True), bool, f"dedup.exact.{flag}", "true or false")
    titles = _expect(exact.get("by_title", []), list, "dedup.exact.by_title", "a list of sources")
    for i, source in enumerate(titles):
        _expect(source, str, f"dedup.exact.by_title[{i}]", "a source name")


def validate(data: Any) -> None:
    """Raise RecipeError naming the first bad key; sections other parts own pass through."""
    _expect(data, dict, "recipe", "a mapping (YAML document)")
    _expect(data.get("name", "recipe"), str, "name", "a string")
    _number(data.get("seed", 0), "seed", integer=True)
    scale = data.get("scale", 1)
    _number(scale, "scale", minimum=0)
    if scale == 0:
        _fail("scale", "must be > 0, got 0")
    _validate_tokenizer(data.get("tokenizer"))
    _validate_output(data.get("output", {}))
    sources = data.get("sources")
    _expect(sources, dict, "sources", "a mapping of source name to its settings")
    if not sources:
        _fail("sources", "must name at least one source")
    for name, src in sources.items():
        _validate_source(str(name), src)
    _validate_dedup(data.get("dedup", {}))
    for section, validator in _SECTION_VALIDATORS.items():
        if section in data:
            validator(data[section], section)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`; mappings merge key by key, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Recipe:
    """A validated recipe with accessors; `data` is the plain dict (picklable, JSON-able)."""

    def __init__(self, data: dict[str, Any], origin: str | None = None) -> None:
        validate(data)
        self.data = data
        self.origin = origin

    # --- plain settings ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.data.get("name", "recipe")

    @property
    def seed(self) -> int:
        return int(self.data.get("seed", 0))

    @property
    def scale(self) -> float:
        return float(self.data.get("scale", 1))

    @property
    def sources(self) -> list[str]:
        return list(self.data["sources"])

    def source(self, name: str) -> dict[str, Any]:
        try:
            return self.data["sources"][name]
        except KeyError:
            raise RecipeError(f"sources.{name}: not in this recipe "
                              f"(it has {', '.join(self.sources)})") from None

    def target_tokens(self, name: str) -> int:
        """Train-token budget of a source, times the recipe's `scale`."""
        return int(round(self.source(name)["target_tokens"] * self.scale))

    def validation_fraction(self, name: str) -> float:
        return float(self.source(name).get("validation_fraction", 0.0))

    def min_chars(self, name: str) -> int:
        return int(self.source(name).get("min_chars", 0))

    def max_chars(self, name: str) -> int:
        """Documents longer than this are quarantined as too large when read (memory bound)."""
        return int(self.source(name).get("max_chars", DEFAULT_MAX_CHARS))

    def languages(self, name: str) -> list[str] | None:
        return self.source(name).get("languages")

    def clean_rules(self, name: str) -> dict[str, bool]:
        """Every cleaning rule with its on/off switch for this source (unset rules are on)."""
        rules = self.source(name).get("clean", {})
        return {rule: bool(rules.get(rule, True)) for rule in CLEAN_RULES}

    def priority(self, name: str) -> int:
        """Who wins an exact-duplicate tie: lower first, then the order sources are listed."""
        return int(self.source(name).get("priority", self.sources.index(name)))

    def shards_per_split(self, split: str) -> int:
        default = {"train": 8, "validation": 1}[split]
        return int(self.data.get("output", {}).get("shards_per_split", {}).get(split, default))

    @property
    def dedup(self) -> dict[str, Any]:
        exact = self.data.get("dedup", {}).get("exact", {})
        return {"by_id": bool(exact.get("by_id", True)), "by_content": bool(exact.get("by_content", True)),
                "by_title": list(exact.get("by_title", []))}

    def section(self, name: str, default: Any = None) -> Any:
        """Any top-level section, including ones other parts of the project own."""
        return self.data.get(name, default)

    # --- tokenizer --------------------------------------------------------------------------
    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.data["tokenizer"]

    def tokenizer_path(self) -> str:
        """Resolve `tokenizer.path`: `sample:NAME` is a file of the bundled sample, a relative
        path is looked up next to the recipe file, then in the current directory."""
        path = self.tokenizer["path"]
        if path.startswith("sample:"):
            return str(sample_dir() / path[len("sample:"):])
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and self.origin:
            beside = Path(self.origin).parent / candidate
            if beside.exists():
                return str(beside)
        return str(candidate)

    # --- identity ---------------------------------------------------------------------------
    def to_json(self) -> bytes:
        return orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)

    def fingerprint(self) -> str:
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_recipe(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe file (default: the 48.1B recipe), with optional overrides.

    A `.json` file (e.g. `OUT/recipe.json` written by `process`) is read as JSON.
    """
    path = Path(path) if path else default_recipe_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file {path} not found") from None
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, orjson.JSONDecodeError) as exc:
        raise RecipeError(f"{path}: not valid YAML/JSON: {exc}") from None
    if overrides:
        _expect(data, dict, "recipe", "a mapping (YAML document)")
        data = deep_merge(data, overrides)
    try:
        return Recipe(data, origin=str(path))
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None


def recipe_from_dict(data: dict[str, Any], origin: str | None = None) -> Recipe:
    return Recipe(data, origin=origin)
