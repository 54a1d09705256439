"""Spec loading: every bundled spec validates; a broken spec names its file and key."""

from __future__ import annotations

import pytest
import yaml

from gap_replay.sources.guidelines.spec import SpecError, get_spec, load_spec, load_specs

GOOD = {
    "tag": "acme", "name": "ACME", "audience": "doctor", "license": "©", "redistributable": False,
    "base_url": "https://acme.org",
    "discovery": [{"urls": ["https://acme.org/list?page=1"], "links": "h3 a",
                   "paginate": {"param": "page", "start": 1, "step": 1}}],
    "article": {"content": ["article"], "title": ["h1"]},
    "clean": {"starters": ["introduction"], "stoppers": ["references"], "min_lines": 3},
}

MINE = ("aafp", "cps", "drugs", "gc", "idsa", "magic", "mayo", "rch")


def _write(tmp_path, data, name="acme.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_specs_load():
    specs = load_specs()
    for tag in MINE:
        spec = specs[tag]
        assert spec.tag == tag and spec.redistributable is False
        assert spec.audience in ("doctor", "patient", "both") and spec.license


def test_a_good_spec_loads(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.discovery[0].paginate.param == "page"
    assert spec.clean.min_lines == 3 and spec.article.content == ("article",)


@pytest.mark.parametrize("mutate, key, message", [
    (lambda d: d.pop("license"), "license", "is required"),
    (lambda d: d.update(audience="nurses"), "audience", "must be one of"),
    (lambda d: d["discovery"][0].update(links="a["), "discovery[0].links", "invalid CSS selector"),
    (lambda d: d["clean"].update(stopers=["x"]), "clean.stopers", "unknown key"),
    (lambda d: d["discovery"][0]["paginate"].update(next="a.next"), "discovery[0].paginate.next",
     "exactly one of"),
    (lambda d: d["discovery"][0].update(include=["(unclosed"]), "discovery[0].include[0]",
     "invalid regular expression"),
    (lambda d: d.update(hook="nope"), "hook", "unknown hook"),
    (lambda d: d.update(redistributable="yes"), "redistributable", "true or false"),
    (lambda d: d.update(tag="other"), "tag", "does not match the file name"),
])
def test_errors_name_file_and_key(tmp_path, mutate, key, message):
    import copy
    data = copy.deepcopy(GOOD)
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: {key}: ")
    assert message in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "acme.yaml"
    path.write_text("tag: acme\nname: [unclosed\n")
    with pytest.raises(SpecError, match=r"acme.yaml: line \d+: invalid YAML"):
        load_spec(path)


def test_unknown_tag_lists_known_ones(tmp_path):
    _write(tmp_path, GOOD)
    with pytest.raises(KeyError, match="known: acme"):
        get_spec("nope", tmp_path)
