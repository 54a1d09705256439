"""Cleaning rules one by one, including what must survive, and the fast ftfy path's equivalence."""

from __future__ import annotations

import gzip

import ftfy
import ftfy.bad_codecs  # noqa: F401
import orjson
import pytest
from ftfy import chardata

from gap_replay.document import Document
from gap_replay.resources import sample_dir
from gap_replay.stages.clean import (CleanStage, clean_text, fix_encoding, normalize_headers,
                                     normalize_lists, normalize_unicode, normalize_whitespace,
                                     remove_citations, remove_urls)


@pytest.mark.parametrize("text, expected", [
    ("Shown before [12].", "Shown before."),
    ("as reported [3-5], and", "as reported, and"),
    ("trials [1, 4–6] found", "trials found"),
    ("see [2,3; 7]", "see"),
])
def test_numeric_citations_are_removed(text, expected):
    assert remove_citations(text) == expected


@pytest.mark.parametrize("text", [
    "odds ratio 1.8 [95% CI 1.2-3.4]",
    "uptake of [3H]thymidine",
    "intracellular [Ca2+]i rose",
    "see [bib_ref]Smith et al.[/bib_ref] and [fig_ref]Figure 1[/fig_ref]",
    "[table] a | b [/table] [formula] x [/formula]",
    "the [sic] remark",
    "p < 0.05 in A and B > C",
])
def test_legitimate_brackets_and_inequalities_survive(text):
    assert clean_text(text) == text


def test_urls_are_removed_whole_and_link_text_is_kept():
    text = ("See https://a.org/p?q=1#frag~x now, ftp://z.com:21/f and www.who.int/x today. "
            "Read [NICE NG28](https://www.nice.org.uk/guidance/ng28).")
    assert remove_urls(text) == "See now, and today. Read NICE NG28."  # spaces go with the URL
    assert clean_text(text) == "See now, and today. Read NICE NG28."
    assert remove_urls("no links here") == "no links here"


def test_lists_only_rewrite_real_bullet_glyphs():
    text = "Options:\n• metformin\n▪ insulin\n\uf0b7 diet\n* exercise\n+ rest\noften\nobesity\n5 * 3 = 15"
    assert normalize_lists(text) == ("Options:\n- metformin\n- insulin\n- diet\n- exercise\n- rest\n"
                                     "often\nobesity\n5 * 3 = 15")


def test_headers_shift_to_one_hash_and_cap_at_three_including_the_first_line():
    text = "## Title\n### A\n#### B\n##### C\n#1 cause of death\n#hashtag"
    assert normalize_headers(text) == "# Title\n## A\n### B\n### C\n#1 cause of death\n#hashtag"
    assert normalize_headers("no headers") == "no headers"


def test_whitespace_keeps_paragraph_breaks_and_numeric_lines():
    text = "  First   paragraph\t line.  \r\n\r\n\r\n\nSecond\u00a0paragraph.\n2.5\n≥ 140/90\n   "
    assert normalize_whitespace(text) == "First paragraph line.\n\nSecond paragraph.\n2.5\n≥ 140/90"


def test_unicode_is_composed_and_mojibake_repaired():
    assert normalize_unicode("cafe\u0301") == "café"
    assert fix_encoding("donâ€™t cafÃ© &amp; ﬁnal") == "don't café & final"


def _sample_texts() -> list[str]:
    texts = []
    for path in sorted((sample_dir() / "text").rglob("*.jsonl.gz")):
        for line in gzip.open(path):
            try:
                texts.append(orjson.loads(line)["text"])
            except orjson.JSONDecodeError:
                pass
    return texts


def test_fast_ftfy_path_equals_ftfy_on_the_sample_and_on_mojibake_of_every_codepage():
    texts = _sample_texts()
    variants = []
    for text in texts:
        for enc in chardata.CHARMAP_ENCODINGS:
            for seg in (text[i:i + 400] for i in range(0, min(len(text), 4000), 400)):
                if not seg.isascii():
                    bad = seg.encode("utf-8").decode(enc, errors="replace")
                    variants += [bad, bad.replace("\u00a0", " ")]
    variants += ["“quoted” and ‘single’", "line\u2028break", "\ufeffbom", "ＡＢＣ", "x\x85y", "a\r\nb"]
    assert sum(ftfy.fix_text(v) != v for v in variants) > 100  # the variants really are broken
    mismatches = [v[:80] for v in texts + variants if fix_encoding(v) != ftfy.fix_text(v)]
    assert mismatches == []


def test_rules_switch_per_source_and_empty_documents_are_dropped():
    stage = CleanStage({"abstracts": {"citations": False}, "guidelines": {}})
    kept = list(stage.run([Document(id="a", source="abstracts", text="Result [12]."),
                           Document(id="g", source="guidelines", text="Result [12]."),
                           Document(id="e", source="guidelines", text="  https://only.a/url  ")]))
    assert [d.text for d in kept] == ["Result [12].", "Result."]
    assert stage.stats.to_dict()["guidelines"]["dropped"] == {"empty_after_clean": 1}


def test_cleaning_is_idempotent_so_pre_cleaned_sources_are_not_damaged():
    from gap_replay.sample.textgen import make_documents

    texts = _sample_texts() + [d.text for d in make_documents(100, seed=9, english_share=0.5)]
    texts.append("# T\n\n## A\n\n- a [1]\n\n\n see https://x.org/a.")
    once = [clean_text(t) for t in texts]
    assert [clean_text(t) for t in once] == once


def test_rule_options_from_the_recipe_and_the_document():
    from gap_replay.document import Document

    stage = CleanStage({"guidelines": {"ftfy": True, "html_tags": True, "symbols": True,
                                       "whitespace": {"attach_punct": True}},
                        "papers": {}})
    text = "Take <b>two</b> doses , daily\ue000.\no Twice at night"
    doc = stage.process(Document("a", "guidelines", text, meta={"clean_options": {"lists": {"pdf_bullets": True}}}))
    assert doc.text == "Take two doses, daily.\n- Twice at night"
    # html_tags and symbols stay off where the recipe does not name them
    assert stage.process(Document("b", "papers", text)).text == text
    with pytest.raises(ValueError, match="meta.clean_options.lists: unknown option 'glyphs'"):
        stage.process(Document("c", "guidelines", text, meta={"clean_options": {"lists": {"glyphs": True}}}))
