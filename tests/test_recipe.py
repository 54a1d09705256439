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
    data = _default()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, data))
    assert message in str(err.value)
    assert str(tmp_path / "recipe.yaml") in str(err.value)


def test_missing_required_key(tmp_path):
    data = _default()
    del data["sources"]["papers"]["target_tokens"]
    with pytest.raises(RecipeError, match=r"sources\.papers\.target_tokens: is required"):
        load_recipe(_write(tmp_path, data))


def test_sections_owned_by_other_parts_pass_through_and_can_validate_themselves(tmp_path):
    data = _default()
    data["upsampling"] = {"approved_journals": 3.0}
    data["near_dedup"] = {"threshold": 0.8}
    r = load_recipe(_write(tmp_path, data))
    assert r.section("upsampling") == {"approved_journals": 3.0}

    def check_near_dedup(value, key):
        if not 0 < value.get("threshold", 0) <= 1:
            raise RecipeError(f"{key}.threshold: must be in (0, 1], got {value.get('threshold')!r}")

    register_section("near_dedup", check_near_dedup)
    try:
        data["near_dedup"] = {"threshold": 7}
        with pytest.raises(RecipeError, match=r"near_dedup\.threshold: must be in \(0, 1\], got 7"):
            load_recipe(_write(tmp_path, data))
    finally:
        from gap_replay import recipe as recipe_module
        recipe_module._SECTION_VALIDATORS.pop("near_dedup")


def test_scale_and_overrides_keep_shares(tmp_path):
    r = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"}})
    assert r.target_tokens("papers") == 40_700 and r.target_tokens("guidelines") == 107
    assert r.tokenizer["extra_tokens"]  # merged, not replaced
    assert r.tokenizer_path().endswith("sample/tokenizer.model")
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_clean_rules_default_on_and_switch_per_source():
    r = load_recipe()
    assert r.clean_rules("abstracts")["lists"] is False
    assert r.clean_rules("guidelines")["lists"] is False  # the site cleaner applied it, once
    assert r.clean_rules("papers")["headers"] is True
    assert r.clean_rules("abstracts")["nfc"] is True  # unset rules are on
