"""Selector alternatives: specs may list several selectors; the first that matches wins and says
which one it was (so drift can be counted), in specs, on pages and in listings."""

from __future__ import annotations

import copy
import json

import pytest

from gap_replay.sources.guidelines.discover import Discoverer
from gap_replay.sources.guidelines.extract import extract_page, parse_html
from gap_replay.sources.guidelines.selectors import describe, select_alternatives
from gap_replay.sources.guidelines.spec import SpecError, get_spec, parse_spec

GOOD = {
    "tag": "acme", "name": "ACME", "audience": "doctor", "license": "©", "redistributable": False,
    "base_url": "https://acme.org",
    "discovery": [{"urls": ["https://acme.org/list"], "links": ["div.new a.item", "ul.old a"],
                   "paginate": {"next": ["a.next-page", "a[rel=next]"], "max_pages": 5}}],
    "article": {"content": ["article.v2", "div.v1"], "title": ["h1#page-title", "h1"],
                "pdf_link": ["div.figure a[href]", "a.download-url"],
                "overview": [".description > p", ".body > p"], "start_at": ["#key-points", "#summary"],
                "sections": {"links": ["nav.tabs a", "div.tabs a"]}},
}


def spec_with(**article):
    data = copy.deepcopy(GOOD)
    data["article"].update(article)
    return parse_spec(data, "acme.yaml")


# -- the spec -------------------------------------------------------------------------------------
def test_every_selector_key_takes_a_string_or_a_list_of_alternatives():
    spec = parse_spec(copy.deepcopy(GOOD), "acme.yaml")
    step, art = spec.discovery[0], spec.article
    assert step.links == ("div.new a.item", "ul.old a")
    assert step.paginate.next == ("a.next-page", "a[rel=next]")
    assert art.pdf_link == ("div.figure a[href]", "a.download-url")
    assert art.overview == (".description > p", ".body > p")
    assert art.start_at == ("#key-points", "#summary")
    assert art.sections.links == ("nav.tabs a", "div.tabs a")
    one = spec_with(pdf_link="a.download-url")
    assert one.article.pdf_link == ("a.download-url",)      # a lone string is one alternative
    assert spec_with().article.content == ("article.v2", "div.v1")


@pytest.mark.parametrize("key, value, where", [
    ("pdf_link", ["a.ok", "a[broken"], "article.pdf_link[1]"),
    ("overview", [], "article.overview"),
    ("start_at", ["#ok", 3], "article.start_at[1]"),
])
def test_a_bad_alternative_is_named_by_its_index(key, value, where):
    data = copy.deepcopy(GOOD)
    data["article"][key] = value
    with pytest.raises(SpecError) as err:
        parse_spec(data, "acme.yaml")
    assert err.value.key == where


def test_json_keep_regexes_are_validated():
    data = copy.deepcopy(GOOD)
    data["discovery"] = [{"urls": ["https://acme.org/api"], "format": "json",
                          "json": {"items": "$", "url": "{path}", "keep": {"language": "(en"}}}]
    with pytest.raises(SpecError) as err:
        parse_spec(data, "acme.yaml")
    assert err.value.key == "discovery[0].json.keep.language"


# -- matching -------------------------------------------------------------------------------------
def test_the_first_matching_alternative_wins_and_reports_its_index():
    soup = parse_html("<div class='v1'><a href='/x'>x</a><a>no href</a></div>")
    assert select_alternatives(soup, ("article.v2", "div.v1")).index == 1
    assert select_alternatives(soup, "div.v1").index == 0
    assert select_alternatives(soup, ("article.v2",)) is None
    assert select_alternatives(soup, ()) is None
    # an alternative whose elements are all unusable does not win over a later one
    match = select_alternatives(soup, ("div.v1 a:not([href])", "div.v1 a"), lambda a: a.get("href"))
    assert (match.index, match.selector, match.fallback) == (1, "div.v1 a", True)
    assert describe(("a.x", "b.y")) == "a.x | b.y"


def test_a_page_records_which_alternative_each_key_came_from():
    spec = spec_with()
    new = ("<h1 id='page-title'>New</h1><div class='figure'><a href='/f/content'>Download</a></div>"
           "<div class='description'><p>Lead.</p></div><nav class='tabs'><a href='/t2'>Tab</a></nav>"
           "<article class='v2'><p>intro</p><h2 id='key-points'>Key points</h2><p>Body.</p></article>")
    page = extract_page(new, "https://acme.org/a", spec.article)
    assert page.matched == {"title": 0, "pdf_link": 0, "overview": 0, "sections.links": 0,
                            "content": 0, "start_at": 0}
    assert (page.title, page.pdf_link, page.overview) == ("New", "https://acme.org/f/content", "Lead.")
    assert page.text == "## Key points\n\nBody." and page.links == [("https://acme.org/t2", "Tab")]
    old = ("<h1>Old</h1><a class='download-url' href='/f.pdf'>Download</a><div class='body'><p>Old lead.</p>"
           "</div><div class='tabs'><a href='/t'>Tab</a></div><div class='v1'><h2 id='summary'>S</h2><p>x</p></div>")
    page = extract_page(old, "https://acme.org/a", spec.article)
    assert page.matched == {"title": 1, "pdf_link": 1, "overview": 1, "sections.links": 1,
                            "content": 1, "start_at": 1}
    assert (page.title, page.pdf_link, page.overview) == ("Old", "https://acme.org/f.pdf", "Old lead.")
    nothing = extract_page("<p>nothing</p>", "https://acme.org/a", spec.article)
    assert nothing.matched == {} and nothing.text == "" and nothing.pdf_link == ""


class _Resp:
    def __init__(self, body):
        self.content = body.encode() if isinstance(body, str) else body

    def json(self):
        return json.loads(self.content)


def test_a_listing_counts_the_alternatives_it_used():
    pages = {
        "https://acme.org/list": "<ul class='old'><a href='/a1'>1</a></ul><a rel='next' href='/list2'>n</a>",
        "https://acme.org/list2": "<div class='new'><a class='item' href='/a2'>2</a></div>",
    }
    spec = parse_spec(copy.deepcopy(GOOD), "acme.yaml")
    failures = []
    disc = Discoverer(spec, lambda url: _Resp(pages[url]), lambda url, exc: failures.append(url))
    assert [l.url for l in disc.links()] == ["https://acme.org/a1", "https://acme.org/a2"]
    assert disc.matched == {("links", 1): 1, ("paginate.next", 1): 1, ("links", 0): 1}
    assert failures == []


def test_a_json_catalogue_that_is_a_bare_list_and_keep_filters():
    data = copy.deepcopy(GOOD)
    data["discovery"] = [{"urls": ["https://api.acme.org/v1/guidelines"], "format": "json",
                          "json": {"items": "$", "url": "{jsonPath}", "fields": {"title": "name"},
                                   "keep": {"language": "^en"}}}]
    spec = parse_spec(data, "acme.yaml")
    catalogue = [
        {"name": "English", "language": "en-gb", "jsonPath": "https://files.acme.org/g/1.json"},
        {"name": "Dutch", "language": "nl", "jsonPath": "https://files.acme.org/g/2.json"},
        {"name": "Unpublished", "language": "en", "jsonPath": ""},   # no URL: not an article
        {"name": "No language", "jsonPath": "https://files.acme.org/g/3.json"},
    ]
    disc = Discoverer(spec, lambda url: _Resp(json.dumps(catalogue)), lambda url, exc: None)
    assert [(l.url, l.title) for l in disc.links()] == [("https://files.acme.org/g/1.json", "English")]


def test_the_2026_specs_list_current_shapes_first_and_old_ones_after():
    assert get_spec("who").article.pdf_link[-1] == "a.download-url"
    assert get_spec("mayo").discovery[0].links[-1] == "div.cmp-back-to-top-container div.cmp-result-name div.cmp-link a"
    assert get_spec("idsa").discovery[0].links == ("div.alpha-listing a.list-pages__link", ".rtln_body_content a")
    assert get_spec("cps").article.content == ("div.statement-wrapper", "div.cell.main-body")
    assert get_spec("rch").article.content == ("#rch-primary", "div.widgetBody")
    assert get_spec("magic").discovery[0].urls == ("https://api.magicapp.org/api/v1/guidelines?limit=5000",)
