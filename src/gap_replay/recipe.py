"""The recipe: which sources make the corpus, their token budgets, splits and per-source rules.

A recipe is YAML data (see `gap_replay/recipe.yaml`). It is validated on load, and every error
names the key and the problem, e.g. ``sources.papers.validation_fraction: must be in [0, 1),
got 1.5``. Every key at every level must be known (``sead: unknown key; did you mean 'seed'?``):
a typo found at load costs seconds, found after acquisition it costs days. The core validates
the sections it owns (`name`, `seed`, `scale`, `tokenizer`, `output`, `sources`, `dedup`);
every other top-level section is validated by the part of the project that reads it, registered
with `register_section` (the built-in ones as "module:function", imported on first use).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import orjson
import yaml

from gap_replay.resources import default_recipe_path

CLEAN_RULES = ("ftfy", "nfc", "urls", "html_tags", "citations", "lists", "symbols", "headers",
               "whitespace")
CLEAN_OFF_BY_DEFAULT = ("html_tags", "symbols")   # on only where a source's recipe says so
# keyword options a rule takes as `rule: {option: value}` (gap_replay.textrules)
CLEAN_OPTIONS = {"urls": ("keep_link_text",), "citations": ("author_year",),
                 "lists": ("pdf_bullets", "numbered"), "headers": ("max_level",),
                 "whitespace": ("attach_punct", "headers_apart")}
SPLITS = ("train", "validation")


class RecipeError(ValueError):
    """A recipe that cannot be used: `problems` holds one line per problem, each naming the key
    (validation reports every section's and source's first problem, not only the first one)."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems = [str(p) for p in problems]

    def __str__(self) -> str:
        return "\n".join(self.problems)

    # the recipe as merged, when it was a mapping: preflight still checks what it can of it
    data: dict[str, Any] | None = None
    origin: str | None = None

    def prefixed(self, prefix: str, suffix: str = "") -> "RecipeError":
        """The same problems, each line with `prefix` in front (e.g. the recipe file)."""
        err = RecipeError(*(f"{prefix}{p}{suffix}" for p in self.problems))
        err.data, err.origin = self.data, self.origin
        return err


SectionValidator = Callable[[Any, str], None]
CORE_SECTIONS = ("name", "seed", "scale", "tokenizer", "output", "sources", "dedup")
TOKENIZER_KEYS = ("path", "extra_tokens", "append_eod")
SOURCE_KEYS = ("priority", "target_tokens", "validation_fraction", "min_chars", "max_chars",
               "languages", "clean")
# Per-source sections any source may have, validated by the part that reads them ("module:function").
SOURCE_SECTIONS = {"upsampling": "gap_replay.stages.upsample:validate_section"}
# Top-level sections other parts own, validated by their own code (one place per section's rules).
_SECTION_VALIDATORS: dict[str, SectionValidator | str] = {
    "replay": "gap_replay.sources.replay.settings:validate_section",
    "near_dedup": "gap_replay.stages.minhash.config:validate_section",
    "decontamination": "gap_replay.stages.decontaminate:validate_section",
}


def register_section(name: str, validator: SectionValidator | str) -> None:
    """Let another part of the project validate its own top-level section.

    `validator(value, key)` (or "module:function" naming it) raises RecipeError or ValueError
    (use `key` as the message prefix) when the section is wrong. A top-level key that no one
    registered is rejected as unknown.
    """
    _SECTION_VALIDATORS[name] = validator


def _resolve(validator: SectionValidator | str) -> SectionValidator:
    if isinstance(validator, str):
        module, _, attr = validator.partition(":")
        return getattr(importlib.import_module(module), attr)
    return validator


def reject_unknown(mapping: Mapping[str, Any], known: Iterable[str], prefix: str = "",
                   error: type[Exception] | None = None) -> None:
    """Raise `error` (RecipeError) for the first key of `mapping` not in `known`, naming the
    closest known key: `near_dedup.thresold: unknown key; did you mean 'threshold'?`."""
    known = [str(k) for k in known]
    for name in mapping:
        if str(name) in known:
            continue
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
        raise (error or RecipeError)(f"{prefix}{name}: unknown key; {hint}")


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
    reject_unknown(tok, TOKENIZER_KEYS, "tokenizer.")
    if "path" not in tok:
        _fail("tokenizer.path", "is required (a SentencePiece .model, a tokenizer.json or a Hub id "
                                "like hf:meta-llama/Llama-2-7b-hf)")
    _expect(tok["path"], str, "tokenizer.path", "a string")
    from gap_replay.tokenizer_source import spelling_problem

    if spelling_problem(tok["path"]):
        _fail("tokenizer.path", f"{tok['path']!r}: {spelling_problem(tok['path'])}")
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
    reject_unknown(out, ("shards_per_split",), "output.")
    shards = out.get("shards_per_split", {})
    _expect(shards, dict, "output.shards_per_split", "a mapping of split to shard count")
    for split, n in shards.items():
        if split not in SPLITS:
            _fail(f"output.shards_per_split.{split}", f"unknown split; use one of {', '.join(SPLITS)}")
        _number(n, f"output.shards_per_split.{split}", minimum=1, integer=True)


def _validate_source(name: str, src: Any) -> None:
    key = f"sources.{name}"
    _expect(src, dict, key, "a mapping")
    reject_unknown(src, SOURCE_KEYS + tuple(SOURCE_SECTIONS), f"{key}.")
    if "target_tokens" not in src:
        _fail(f"{key}.target_tokens", "is required (train tokens after the shared stages)")
    _number(src["target_tokens"], f"{key}.target_tokens", minimum=0)
    frac = src.get("validation_fraction", 0.0)
    _expect(frac, (int, float), f"{key}.validation_fraction", "a number in [0, 1)")
    if not 0 <= frac < 1:
        _fail(f"{key}.validation_fraction", f"must be in [0, 1), got {frac!r}")
    _number(src.get("min_chars", 0), f"{key}.min_chars", minimum=0, integer=True)
    _number(src.get("max_chars", DEFAULT_MAX_CHARS), f"{key}.max_chars", minimum=1, integer=True)
    if src.get("min_chars", 0) > src.get("max_chars", DEFAULT_MAX_CHARS):
        _fail(f"{key}.min_chars", f"must be <= {key}.max_chars "
              f"({src.get('max_chars', DEFAULT_MAX_CHARS)}), got {src['min_chars']!r}")
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
        if isinstance(on, dict):
            for option in on:
                if option not in CLEAN_OPTIONS.get(rule, ()):
                    _fail(f"{key}.clean.{rule}.{option}", "unknown option; use one of "
                          f"{', '.join(CLEAN_OPTIONS.get(rule, ())) or 'none (true or false)'}")
        else:
            _expect(on, bool, f"{key}.clean.{rule}", "true, false or a mapping of its options")
    _number(src.get("priority", 0), f"{key}.priority", integer=True)
    for extra, validator in SOURCE_SECTIONS.items():
        if extra in src:
            _call(validator, src[extra], f"{key}.{extra}")


def _call(validator: SectionValidator | str, value: Any, key: str) -> None:
    """Run a section's own validator; its ValueError becomes a RecipeError with the same text."""
    try:
        _resolve(validator)(value, key)
    except RecipeError:
        raise
    except (ValueError, TypeError) as exc:
        raise RecipeError(str(exc)) from None


def _validate_dedup(dedup: Any) -> None:
    _expect(dedup, dict, "dedup", "a mapping")
    reject_unknown(dedup, ("exact",), "dedup.")
    exact = dedup.get("exact", {})
    _expect(exact, dict, "dedup.exact", "a mapping")
    reject_unknown(exact, ("by_id", "by_content", "by_title", "buckets"), "dedup.exact.")
    # exact dedup hashes documents into this many buckets (one task each; process.py)
    _number(exact.get("buckets", 16), "dedup.exact.buckets", minimum=1, integer=True)
    for flag in ("by_id", "by_content"):
        _expect(exact.get(flag, True), bool, f"dedup.exact.{flag}", "true or false")
    titles = _expect(exact.get("by_title", []), list, "dedup.exact.by_title", "a list of sources")
    for i, source in enumerate(titles):
        _expect(source, str, f"dedup.exact.by_title[{i}]", "a source name")


def validate(data: Any) -> None:
    """Raise RecipeError listing every problem: the first one of each part (an unknown top-level
    key, each plain setting, each section, each source), so one run names all of them; sections
    other parts own are checked by their registered validators."""
    _expect(data, dict, "recipe", "a mapping (YAML document)")
    problems: list[str] = []

    def check(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except RecipeError as exc:
            problems.extend(exc.problems)

    known = CORE_SECTIONS + tuple(_SECTION_VALIDATORS)
    for key in data:
        check(reject_unknown, {key: None}, known)
    check(lambda: _expect(data.get("name", "recipe"), str, "name", "a string"))
    check(_number, data.get("seed", 0), "seed", integer=True)
    check(_validate_scale, data.get("scale", 1))
    check(_validate_tokenizer, data.get("tokenizer"))
    check(_validate_output, data.get("output", {}))
    sources = data.get("sources")
    check(_expect, sources, dict, "sources", "a mapping of source name to its settings")
    if isinstance(sources, dict):
        if not sources:
            check(_fail, "sources", "must name at least one source")
        for name, src in sources.items():
            check(_validate_source, str(name), src)
    check(_validate_dedup, data.get("dedup", {}))
    for section, validator in _SECTION_VALIDATORS.items():
        if section in data:
            check(_call, validator, data[section], section)
    if problems:
        raise RecipeError(*problems)


def _validate_scale(scale: Any) -> None:
    _number(scale, "scale", minimum=0)
    if scale == 0:
        _fail("scale", "must be > 0, got 0")


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
        try:
            validate(data)
        except RecipeError as exc:
            exc.data, exc.origin = (data if isinstance(data, dict) else None), origin
            raise
        self.data = data
        self.origin = origin

    @classmethod
    def unchecked(cls, data: dict[str, Any], origin: str | None = None) -> "Recipe":
        """A recipe that failed validation, for preflight to check what it can (the tokenizer)
        besides its problems; never run anything with it."""
        recipe = cls.__new__(cls)
        recipe.data, recipe.origin = data, origin
        return recipe

    def tokenizer_problems(self) -> list[str]:
        """The problems of the `tokenizer` section alone, [] when it is valid (preflight loads
        the tokenizer of an otherwise invalid recipe only then)."""
        try:
            _validate_tokenizer(self.data.get("tokenizer"))
        except RecipeError as exc:
            return exc.problems
        return []

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

    def clean_rules(self, name: str) -> dict[str, Any]:
        """Every cleaning rule for this source: false, true or its options (a mapping: on).
        Unset rules are on, except CLEAN_OFF_BY_DEFAULT."""
        rules = self.source(name).get("clean", {})
        return {rule: (dict(rules[rule]) if isinstance(rules.get(rule), dict)
                       else bool(rules.get(rule, rule not in CLEAN_OFF_BY_DEFAULT)))
                for rule in CLEAN_RULES}

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

    def tokenizer_base_dir(self) -> str | None:
        """Where relative `tokenizer.path` files are looked up first: beside the recipe file."""
        return str(Path(self.origin).parent) if self.origin else None

    def tokenizer_path(self) -> str:
        """The local file `tokenizer.path` names (gap_replay.tokenizer_source: a file, beside the
        recipe first; `sample:NAME`; `hf:ORG/NAME[@REV]`, downloaded into the Hub cache)."""
        from gap_replay.tokenizer_source import resolve

        return resolve(self.tokenizer["path"], self.tokenizer_base_dir()).path

    # --- identity ---------------------------------------------------------------------------
    def to_json(self) -> bytes:
        return orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)

    def fingerprint(self) -> str:
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_recipe(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                defaults: Mapping[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe file (default: the 48.1B recipe): `defaults` fill only what
    the file does not set, `overrides` replace what it sets; the merged result is validated.

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
    try:
        if defaults or overrides:
            _expect(data, dict, "recipe", "a mapping (YAML document)")
        if defaults:
            data = deep_merge(defaults, data)
        if overrides:
            data = deep_merge(data, overrides)
        return Recipe(data, origin=str(path))
    except RecipeError as exc:
        raise exc.prefixed(f"{path}: ") from None


def recipe_from_dict(data: dict[str, Any], origin: str | None = None) -> Recipe:
    return Recipe(data, origin=origin)
