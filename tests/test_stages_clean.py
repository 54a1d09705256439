"""Cleaning rules one by one, including what must survive, and the fast ftfy path's equivalence."""

from __future__ import annotations

import gzip
import random
import re
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401
import orjson
import pytest
from ftfy import chardata

from gap_replay.document import Document
from gap_replay.resources import sample_dir
from gap_replay.stages import clean as clean_module
from gap_replay.stages.clean import (CleanStage, clean_text, fix_encoding, normalize_headers,
                                     normalize_lists, normalize_unicode, normalize_whitespace,
                                     remove_citations, remove_urls, rule_chain)


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


def test_no_composition_pairs_an_ascii_char_or_curly_quote_with_a_starter():
    # why fix_encoding may check NFC on the non-ASCII stretches alone
    firsts = {chr(c) for c in range(128)} | {chr(c) for c in (0x02BC, *range(0x2018, 0x2020))}
    pairs = []
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = [chr(int(x, 16)) for x in decomposition.split()]
            if len(parts) == 2 and not unicodedata.combining(parts[1]):
                pairs.append(parts)
    assert len(pairs) > 40  # Indic vowel signs and length marks
    assert [p for p in pairs if p[0] in firsts] == []
    assert fix_encoding("x\u1100\u1161 and “\u1100\u1161”") == ftfy.fix_text("x\u1100\u1161 and “\u1100\u1161”")


def test_ftfy_output_is_nfc_so_the_chain_composes_once():
    # the nfc rule runs only when ftfy is off: fix_encoding's output is NFC on every path
    assert [n for n, _ in rule_chain(None)][:2] == ["ftfy", "urls"]
    assert [n for n, _ in rule_chain({"ftfy": False})][:2] == ["nfc", "urls"]
    # a segment ftfy cuts inside a long line may start with a combining mark
    long_line = "x" * 999_999 + "e\u0301 &amp; e\u0301"
    for text in ("cafe\u0301", "e\u0301 &amp; x", "cafÃ© e\u0301", long_line, "“e\u0301”"):
        assert unicodedata.is_normalized("NFC", fix_encoding(text))
        assert clean_text(text) == clean_text(text, {"ftfy": True, "nfc": True})


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


def _fast_path_chars() -> list[list[str]]:
    """The non-ASCII chars the ftfy gate lets through, grouped by 256-code-point page."""
    pages: dict[int, list[str]] = {}
    for cp in (*range(0xA0, 0x40000), *range(0xE0000, 0xE1000)):
        if not clean_module._NEEDS_FTFY.match(chr(cp)):
            pages.setdefault(cp >> 8, []).append(chr(cp))
    return list(pages.values())


def _decoded(byte_values, encodings=chardata.CHARMAP_ENCODINGS) -> list[str]:
    return sorted({c for enc in encodings for b in byte_values
                   for c in bytes([b]).decode(enc, errors="ignore")})


def test_the_ftfy_gate_lets_symbols_and_scripts_through_and_nothing_ftfy_or_nfc_acts_on():
    allowed = {c for page in _fast_path_chars() for c in page}
    assert len(allowed) > 100_000
    for c in "♥✓⌀◆→∑中ἀ𝑥😀€µ±°é—–…":  # misc symbols, dingbats, technical, shapes, CJK, math, emoji
        assert c in allowed
    for c in ("\u212b", "\u2126", "\u037e", "\u0301", "\ue000", "\uf8ff", "\ufdd0", "\uffff",
              "\U0010fffd", "\u0378", "\ufb01", "\uff21", "\u3000", "\u2028", "\ufeff", "\ufffd",
              "\x85", "\x9d", "\u206a", "\ufffc"):  # NFC-changed, combining, private, nonchar,
        assert c not in allowed  # unassigned, ligature, width, separator, BOM, U+FFFD, C1, control
    assert all(unicodedata.normalize("NFC", c) == c and not unicodedata.combining(c) for c in allowed)
    # decode_inconsistent_utf8 looks for ftfy's UTF8_CLUES: all are the gate's leads and continuations
    def in_clue(name: str) -> set[str]:  # the clue strings are regex class bodies ("\x80-¿")
        return {chr(c) for c in range(0x20, 0x3000) if re.fullmatch(f"[{chardata.UTF8_CLUES[name]}]", chr(c))}

    firsts = in_clue("utf8_first_of_2") | in_clue("utf8_first_of_3") | in_clue("utf8_first_of_4")
    assert len(firsts) > 150 and firsts <= set(_decoded(range(0xC0, 0xF5)))
    continuations = in_clue("utf8_continuation") - {" "}
    assert len(continuations) > 150 and continuations <= set(_decoded(range(0x80, 0xC0)))


def _random_texts(n: int, seed: int) -> list[str]:
    """Texts mixing ASCII words with chars of every page the gate allows and the chars, pairs and
    sequences ftfy acts on: mojibake lead and continuation chars of every codepage, a lead before
    a space (lost A0), "?", entities, quotes, controls, ligatures, combining marks, jamo."""
    rng = random.Random(seed)
    pages = _fast_path_chars()
    leads, conts = _decoded(range(0xC0, 0xF5)), _decoded(range(0x80, 0xC0))
    space_leads = _decoded([0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9, 0xE0, 0xE1, 0xE2, 0xE3, 0xF0])
    words = "the cell of p value and in to a was HbA1c TGF mg kΩ r x".split()
    acted = ["\u2028", "\u2029", "\x85", "\ufeff", "\ufffd", "\ufb01", "\uff21", "\u3000", "\x07",
             "\x1b[1m", "\r\n", "\u0301", "\u0338", "\u1161", "\u11a8", "\u212b", "\u2126", "\u037e",
             "\ue000", "\ufdd0", "\u0378", "\x9d", "\u206a", "\ud83d\ude00", "\ud800", "<b>"]
    entities = ["&amp;", "&#233;", "&eacute;", "&lt;", "&#x2019;", "&amp", "&nTILDE;", "R&D", " & "]
    quotes = ["\u201c", "\u201d", "\u2018", "\u2019", "\u02bc", "\u201b", "\u201e"]

    def mojibake() -> str:
        good = rng.choice(rng.choice(pages))
        bad = good.encode("utf-8").decode(rng.choice(chardata.CHARMAP_ENCODINGS), errors="replace")
        return bad.replace("\u00a0", " ") if rng.random() < 0.3 else bad

    kinds = [(lambda: rng.choice(words), 30), (lambda: " ", 20), (lambda: rng.choice(rng.choice(pages)), 25),
             (lambda: rng.choice(leads), 4), (lambda: rng.choice(conts), 4),
             (lambda: rng.choice(space_leads) + " ", 3), (lambda: "?", 2), (lambda: rng.choice(quotes), 3),
             (lambda: "\n", 2), (mojibake, 2), (lambda: rng.choice(acted), 1), (lambda: rng.choice(entities), 1)]
    makers, weights = zip(*kinds)
    texts = []
    for _ in range(n):
        plain_only = rng.random() < 0.5  # half the texts use only what the gate may let through
        pool = [(m, w) for m, w in zip(makers, weights)
                if not plain_only or m not in (makers[9], makers[10], makers[11])]
        ms, ws = zip(*pool)
        texts.append("".join(m() for m in rng.choices(ms, ws, k=rng.randint(1, 40))))
    return texts


def test_fast_ftfy_path_equals_ftfy_on_random_mixes_of_every_allowed_block(monkeypatch):
    texts = _random_texts(6000, seed=16)
    reference = ftfy.fix_text
    expected = [reference(t) for t in texts]
    slow = []
    monkeypatch.setattr(ftfy, "fix_text", lambda t, *a, **k: slow.append(t) or reference(t, *a, **k))
    mismatches = [(t, e) for t, e in zip(texts, expected) if fix_encoding(t) != e]
    assert mismatches == []
    changed = sum(t != e for t, e in zip(texts, expected))
    assert len(slow) > 1000 and len(texts) - len(slow) > 1000  # both paths taken, often
    assert changed > 500 and sum(t != e for t, e in zip(texts, expected) if t not in slow) > 100


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
