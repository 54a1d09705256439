"""Issue 15: the PubMed formatters only extract (URLs stay in the raw text) and the `clean` stage
removes URLs for abstracts and papers. The cleaned text of every sample is the one the formatters
gave when they removed URLs themselves (pinned before the move), and the structure decisions
that used to see URL-free text (empty sections, header levels, citation titles, the 12-word
budgets) still ignore URLs."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from lxml import etree

from gap_replay.document import Document
from gap_replay.recipe import load_recipe
from gap_replay.sources.pubmed import jats
from gap_replay.sources.pubmed.s2orc import format_s2orc
from gap_replay.sources.pubmed.textutil import short_caption, truncate_words
from gap_replay.stages.clean import CleanStage
from pubmed_url_cases import PINNED, _span, cases

URL = re.compile(r"://|www\.", re.I)
# The one cleaned text that differs from the pin, on purpose: a URL opening a line of an S2
# abstract used to leave " ," ("at\nhttps://x," → "at\n," → "at ,"); the text is squashed before
# the stage removes the URL now, so the comma attaches ("at,") as everywhere else.
EXPLAINED = {"synthetic/s2_abstract": ("The code is at ,", "The code is at,"),
             "synthetic/s2_abstract+paper": ("The code is at ,", "The code is at,")}


def _stage() -> CleanStage:
    return CleanStage.from_recipe(load_recipe())


def _cleaned(stage: CleanStage, doc: Document) -> str:
    """The stage's text for a copy of `doc` (the stage rewrites the document it is given)."""
    out = stage.process(Document.from_dict(doc.to_dict()))
    return out.text if out is not None else ""


@pytest.fixture(scope="module")
def all_cases() -> list[tuple[str, Document | None]]:
    return list(cases())


def test_the_default_recipe_removes_urls_in_the_clean_stage_except_for_replay():
    recipe = load_recipe()
    assert recipe.clean_rules("abstracts")["urls"] is True
    assert recipe.clean_rules("papers")["urls"] is True
    assert recipe.clean_rules("guidelines")["urls"] is True
    assert recipe.clean_rules("replay")["urls"] is False  # the original never removed them


def test_every_sample_cleans_to_the_text_pinned_before_urls_moved_to_the_clean_stage(all_cases):
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert [name for name, _ in all_cases] == list(pinned)  # no case lost or added unseen
    stage = _stage()
    for name, doc in all_cases:
        if doc is None:
            assert pinned[name] is None, name
            continue
        assert doc.source == pinned[name]["source"], name
        text = _cleaned(stage, doc)
        if name in EXPLAINED:
            old, new = EXPLAINED[name]
            assert old in pinned[name]["text"] and new in text
            assert text == pinned[name]["text"].replace(old, new)
            continue
        assert hashlib.sha256(text.encode()).hexdigest() == pinned[name]["sha256"], name


def test_formatters_keep_urls_and_the_clean_stage_removes_them(all_cases):
    stage = _stage()
    with_urls = {name: doc for name, doc in all_cases if doc is not None and URL.search(doc.text)}
    # every synthetic record (MEDLINE, S2 abstract, JATS, S2ORC v2) and the legacy S2ORC sample
    assert {n for n in with_urls if n.startswith("synthetic/")} == {
        "synthetic/medline", "synthetic/s2_abstract", "synthetic/s2_abstract+paper",
        "synthetic/jats", "synthetic/s2orc_v2"}
    assert "fixtures/s2orc/legacy_v2020_example_paper.json#0" in with_urls
    for name, doc in with_urls.items():
        assert not URL.search(_cleaned(stage, doc)), name
    # the title is metadata: the stage cleans the text's title line, never Document.title
    medline = dict(all_cases)["synthetic/medline"]
    assert medline.title == "Trial registry at www.isrctn.com: a protocol"
    assert _cleaned(stage, medline).startswith("Trial registry at: a protocol\n")


def _row(text: str, **ann) -> dict:
    return {"corpusid": 1, "externalids": {"pubmed": "5"},
            "content": {"text": text, "annotations": {k: json.dumps(v) for k, v in ann.items()}}}


def test_s2orc_structure_is_decided_without_urls():
    text = ("Title\nResults https://zenodo.org/r/1\nFirst para.\nhttps://only.url/header\n"
            "Links\nhttps://only.url/para\nDiscussion\nSee [1] and [2].\n"
            "https://www.who.int/report. WHO.\nA trial of drug X. Lee.\n")
    out, info = format_s2orc(_row(
        text, title=[_span(text, "Title")],
        sectionheader=[_span(text, "Results https://zenodo.org/r/1"),
                       _span(text, "https://only.url/header"), _span(text, "Links"),
                       _span(text, "Discussion")],
        paragraph=[_span(text, "First para."), _span(text, "https://only.url/para"),
                   _span(text, "See [1] and [2].")],
        bibref=[_span(text, "[1]", ref_id="b0"), _span(text, "[2]", ref_id="b1")],
        bibentry=[_span(text, "https://www.who.int/report. WHO.", id="b0"),
                  _span(text, "A trial of drug X. Lee.", id="b1")],
        bibtitle=[_span(text, "https://www.who.int/report"), _span(text, "A trial of drug X")],
        bibauthorlastname=[_span(text, "WHO"), _span(text, "Lee")]))
    # a main header stays main with a URL after it; a header of URLs only is no header; a
    # section holding only URLs is empty (its header goes, the URL stays for the stage); a
    # cited title of URLs only gives no token
    assert out == ("Title\n\n# Results https://zenodo.org/r/1\n\nFirst para.\n"
                   "https://only.url/para\n\n# Discussion\n\n"
                   "See and [bib_ref] A trial of drug X, Lee [/bib_ref].")
    assert info["bib_refs"] == 1
    doc = _stage().process(Document(id="x", source="papers", text=out))
    assert doc.text == "Title\n\n# Results\n\nFirst para.\n\n# Discussion\n\nSee and [bib_ref] A trial of drug X, Lee [/bib_ref]."


def test_jats_sections_and_articles_of_urls_only_are_empty():
    article = (b'<article><front><article-meta><article-id pub-id-type="pmid">9</article-id>'
               b"<title-group><article-title>T</article-title></title-group></article-meta>"
               b"</front><body>%s</body></article>")
    body = (b"<sec><title>Methods</title><p>Done.</p></sec>"
            b"<sec><title>Links</title><p>https://only.url/a www.b.org</p></sec>")
    (doc,) = jats.iter_bytes(article % body, "a.xml")
    assert doc.text == "T\n\n# Methods\n\nDone.\n\nhttps://only.url/a www.b.org"
    (err,) = jats.iter_bytes(article % b"<sec><title>Links</title><p>https://x.org/a</p></sec>",
                             "b.xml")
    assert isinstance(err, jats.JatsError) and "without body and abstract text" in str(err)


def test_word_budgets_do_not_count_urls():
    def words(a: int, b: int) -> str:
        return " ".join(f"w{i}" for i in range(a, b + 1))

    assert truncate_words(words(1, 13)) == words(1, 12) + "..."
    assert truncate_words(f"w1 https://a.org/x w2 (www.b.org) {words(3, 13)}") == (
        f"w1 https://a.org/x w2 (www.b.org) {words(3, 12)}...")
    assert truncate_words("a https://x.org, b", 2) == "a https://x.org, b"  # nothing cut
    assert short_caption("Scan at https://img.org/a of the whole brain and spine in patients "
                         "with the disease") == (
        "Scan at https://img.org/a of the whole brain and spine in patients with the...")
