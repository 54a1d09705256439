"""Recipe loading: the default 48.1B recipe, errors that name the key, sections owned elsewhere."""

from __future__ import annotations

import pytest
import yaml

from gap_replay.recipe import RecipeError, deep_merge, load_recipe, register_section
from gap_replay.resources import default_recipe_path


def _write(tmp_path, data) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _default() -> dict:
    return yaml.safe_load(default_recipe_path().read_text())


def _default_with(path: tuple, value):
    """The default recipe with the value at `path` replaced (or added)."""
    data = _default()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_default_recipe_has_the_papers_table_1_budgets():
    r = load_recipe()
    assert r.sources == ["guidelines", "abstracts", "papers", "replay"]
    train = {s: r.target_tokens(s) for s in r.sources}
    assert train == {"guidelines": 107_000_000, "abstracts": 5_480_000_000,
                     "papers": 40_700_000_000, "replay": 420_000_000}
    assert sum(train.values()) == 46_707_000_000  # 46.7B train (+1.4B validation = 48.1B)
    assert {s: r.validation_fraction(s) for s in r.sources} == {
        "guidelines": 0.05, "abstracts": 0.03, "papers": 0.03, "replay": 0.0}
    assert r.tokenizer["extra_tokens"][:2] == ["[bib_ref]", "[/bib_ref]"]


@pytest.mark.parametrize("path, value, message", [
    (("sources", "papers", "validation_fraction"), 1.5, "sources.papers.validation_fraction: must be in [0, 1), got 1.5"),
    (("sources", "abstracts", "target_tokens"), "lots", "sources.abstracts.target_tokens: must be a number, got 'lots'"),
    (("sources", "replay", "clean", "emoji"), True, "sources.replay.clean.emoji: unknown cleaning rule"),
    (("sources", "guidelines", "languages"), "en", "sources.guidelines.languages: must be a list"),
    (("output", "shards_per_split", "train"), 0, "output.shards_per_split.train: must be >= 1, got 0"),
    (("tokenizer", "extra_tokens"), ["[a]", "[a]"], "tokenizer.extra_tokens: contains a duplicate token"),
    (("seed",), 1.5, "seed: must be an integer, got 1.5"),
    (("scale",), -1, "scale: must be >= 0, got -1"),
])
def test_errors_name_the_key_and_the_problem(tmp_path, path, value, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, _default_with(path, value)))
    assert message in str(err.value)
    assert str(tmp_path / "recipe.yaml") in str(err.value)


def test_missing_required_key(tmp_path):
    data = _default()
    del data["sources"]["papers"]["target_tokens"]
    with pytest.raises(RecipeError, match=r"sources\.papers\.target_tokens: is required"):
        load_recipe(_write(tmp_path, data))


def test_a_registered_section_validates_itself_and_an_unregistered_one_is_unknown(tmp_path):
    data = _default()
    data["upsampling"] = {"approved_journals": 3.0}  # belongs under sources.papers
    with pytest.raises(RecipeError, match=r"upsampling: unknown key; known keys: decontamination, "):
        load_recipe(_write(tmp_path, data))

    def check_sampling(value, key):
        if not 0 < value.get("rate", 0) <= 1:
            raise RecipeError(f"{key}.rate: must be in (0, 1], got {value.get('rate')!r}")

    register_section("sampling", check_sampling)
    try:
        with pytest.raises(RecipeError, match=r"upsampling: unknown key; did you mean 'sampling'\?"):
            load_recipe(_write(tmp_path, data))
        del data["upsampling"]
        data["sampling"] = {"rate": 0.5}
        assert load_recipe(_write(tmp_path, data)).section("sampling") == {"rate": 0.5}
        data["sampling"] = {"rate": 7}
        with pytest.raises(RecipeError, match=r"sampling\.rate: must be in \(0, 1\], got 7"):
            load_recipe(_write(tmp_path, data))
    finally:
        from gap_replay import recipe as recipe_module
        recipe_module._SECTION_VALIDATORS.pop("sampling")


@pytest.mark.parametrize("path, value, message", [
    (("sead",), 1, "sead: unknown key; did you mean 'seed'?"),
    (("tokenizer", "extra_token"), [], "tokenizer.extra_token: unknown key; did you mean 'extra_tokens'?"),
    (("output", "shard_per_split"), {}, "output.shard_per_split: unknown key; did you mean 'shards_per_split'?"),
    (("sources", "papers", "validation_fration"), 0.1,
     "sources.papers.validation_fration: unknown key; did you mean 'validation_fraction'?"),
    (("sources", "papers", "upsampling", "upfould"), 1,
     "sources.papers.upsampling.upfould: unknown key; did you mean 'upfold'?"),
    (("sources", "abstracts", "upsampling"), {"upfould": 1},  # any source may have one, checked alike
     "sources.abstracts.upsampling.upfould: unknown key; did you mean 'upfold'?"),
    (("dedup", "exact", "by_contents"), True, "dedup.exact.by_contents: unknown key; did you mean 'by_content'?"),
    (("replay", "weigths"), {}, "replay.weigths: unknown key; did you mean 'weights'?"),
    (("near_dedup", "thresold"), 0.5, "near_dedup.thresold: unknown key; did you mean 'threshold'?"),
    (("near_dedup", "keep_priority", "source"), [], "near_dedup.keep_priority.source: unknown key; did you mean 'sources'?"),
    (("decontamination", "benchmark"), [], "decontamination.benchmark: unknown key; did you mean 'benchmarks'?"),
    (("zzz",), 1, "zzz: unknown key; known keys: "),
])
def test_unknown_keys_at_any_level_name_the_closest_known_key(tmp_path, path, value, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, _default_with(path, value)))
    assert message in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / 'recipe.yaml'}: ")


@pytest.mark.parametrize("path, value, message", [
    (("near_dedup", "threshold"), 7.2, "near_dedup.threshold: expected a number in (0, 1], got 7.2"),
    (("near_dedup", "bands"), 0, "near_dedup.bands: expected a positive integer, got 0"),
    (("near_dedup", "seed"), "x", "near_dedup.seed: expected an integer, got 'x'"),
    (("decontamination", "ngram"), 0, "decontamination.ngram: expected a positive integer, got 0"),
    (("replay", "rate"), -1, "replay.rate: must be requests per second, a number >= 0, got -1"),
    (("replay", "read_multiplier"), 0.5, "replay.read_multiplier: must be a number >= 1, got 0.5"),
    (("replay", "missing_subsets"), "ignore", "replay.missing_subsets: must be one of respread, fail"),
    (("dedup", "exact", "buckets"), 0, "dedup.exact.buckets: must be >= 1, got 0"),
    (("sources", "papers", "upsampling", "current_date"), "soon",
     "sources.papers.upsampling.current_date: must be a date like 2023-07-15, got 'soon'"),
    (("sources", "papers", "upsampling", "mesh", "Animals"), "drop",
     "sources.papers.upsampling.mesh.Animals: must be a number, got 'drop'"),
    (("sources", "papers", "upsampling", "approved_journals", "file"), "missing.txt",
     "sources.papers.upsampling.approved_journals.file: missing.txt not found"),
    (("sources", "guidelines", "min_chars"), 20_000_000, "sources.guidelines.min_chars: must be <= "),
])
def test_every_section_checks_its_ranges_at_load(tmp_path, path, value, message):
    """Sections read by process (near_dedup, decontamination) or acquisition (replay) fail at
    load, not days later when their stage runs."""
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, _default_with(path, value)))
    assert message in str(err.value)


def test_explicit_recipe_wins_over_the_run_configs_overrides_and_seed_wins_over_all(tmp_path):
    from gap_replay.cli.core import load_run_config, resolve_recipe

    sample = load_run_config(None, sample=True)  # configs/sample.yaml: recipe_overrides
    data = _default()
    data["sources"]["papers"]["validation_fraction"] = 0.2
    del data["output"]  # R leaves it unset: the config fills it
    r_path = _write(tmp_path, data)
    r = resolve_recipe(r_path, sample, None)
    assert r.validation_fraction("papers") == 0.2  # R's value, not the sample's 0.15
    assert r.target_tokens("papers") == 40_700_000_000  # R's budget
    assert r.shards_per_split("train") == 4  # filled from the config
    assert r.seed == 42 and resolve_recipe(r_path, sample, 7).seed == 7
    own = resolve_recipe(None, sample, None)  # the config's own recipe: overrides on top
    assert own.validation_fraction("papers") == 0.15 and own.target_tokens("papers") == 90_000
    assert resolve_recipe(None, sample, 9).seed == 9


def test_scale_and_overrides_keep_shares(tmp_path):
    r = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"}})
    assert r.target_tokens("papers") == 40_700 and r.target_tokens("guidelines") == 107
    assert r.tokenizer["extra_tokens"]  # merged, not replaced
    assert r.tokenizer_path().endswith("sample/tokenizer.model")
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_clean_rules_default_on_and_switch_per_source():
    r = load_recipe()
    assert r.clean_rules("abstracts")["lists"] is False
    assert r.clean_rules("guidelines")["lists"] is True  # guideline acquisition only extracts
    assert r.clean_rules("guidelines")["whitespace"] == {"attach_punct": True, "headers_apart": True}
    assert r.clean_rules("guidelines")["html_tags"] is True
    assert r.clean_rules("abstracts")["html_tags"] is False  # off unless a source turns it on
    assert r.clean_rules("papers")["headers"] is True
    assert r.clean_rules("abstracts")["nfc"] is True  # unset rules are on


def test_clean_rule_options_are_validated_by_name(tmp_path):
    data = _default()
    data["sources"]["guidelines"]["clean"] = {"whitespace": {"glue": True}}
    with pytest.raises(RecipeError, match="sources.guidelines.clean.whitespace.glue: unknown option; "
                                          "use one of attach_punct, headers_apart"):
        load_recipe(_write(tmp_path, data))


def test_every_problem_is_reported_one_per_line_each_naming_the_file(tmp_path):
    """Validation goes on after the first problem: the first one of each section and each source."""
    data = _default()
    data["sead"] = 1
    data["scale"] = 0
    data["sources"]["papers"]["validation_fraction"] = 1.5
    data["sources"]["papers"]["min_chars"] = -1  # same source: only its first problem is named
    data["sources"]["guidelines"]["clean"] = {"emoji": True}
    data["near_dedup"]["threshold"] = 7.2
    path = _write(tmp_path, data)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert err.value.problems == [
        f"{path}: sead: unknown key; did you mean 'seed'?",
        f"{path}: scale: must be > 0, got 0",
        f"{path}: sources.guidelines.clean.emoji: unknown cleaning rule; use one of "
        "ftfy, nfc, urls, html_tags, citations, lists, symbols, headers, whitespace",
        f"{path}: sources.papers.validation_fraction: must be in [0, 1), got 1.5",
        f"{path}: near_dedup.threshold: expected a number in (0, 1], got 7.2"]
    assert str(err.value) == "\n".join(err.value.problems)
    assert err.value.data["sead"] == 1  # what was read, for preflight's other checks


def test_a_recipe_error_survives_pickling_with_its_problems():
    """Validation may fail in a worker process; the parent must get every line back."""
    import pickle

    err = pickle.loads(pickle.dumps(RecipeError("a: bad", "b: worse")))
    assert err.problems == ["a: bad", "b: worse"] and str(err) == "a: bad\nb: worse"
