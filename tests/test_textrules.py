"""The shared text rules (gap_replay.textrules): what each removes and what must survive.

The "must survive" strings are the real abstract and paper fragments issue #13 found damaged.
"""

from __future__ import annotations

import pytest

from gap_replay.textrules import (
    normalize_headers,
    normalize_lists,
    normalize_whitespace,
    remove_citations,
    remove_urls,
)

MUST_SURVIVE = [
    "median [IQR] age, 74 [66-82] years",
    "55% [33-72] vs 12% [2-30]",
    "(3 [1] vs 1 [1] [P < 0.0001])",
    "cucurbit[7]uril (CB[7])",
    "Pyrimido [1, 2]benzimidazole",
    "P = .004",
    "odds ratio 1.8 [95% CI 1.2-3.4]",
    "uptake of [3H]thymidine and [14C]glucose",
    "intracellular [Ca2+]i rose",
    "[18F]FDG PET",
    "the [1,2,4]triazole ring",
    "a median of 74 years [66-82] in",
    "HbA1c 7.2 mmol [6.8-7.9]",
    "see [bib_ref]Smith et al.[/bib_ref] and [fig_ref]Figure 1[/fig_ref]",
    "the [sic] remark",
    "p < 0.05 in A and B > C",
    "[1] Smith J. A trial. Lancet 2019.",
    "enrolled (March 2019) and followed (Spring 2020)",
    "as listed (Table 2, 2019)",
    "x = [2]",
]


@pytest.mark.parametrize("text", MUST_SURVIVE)
def test_citation_rule_never_touches_data(text):
    assert remove_citations(text) == text


@pytest.mark.parametrize("text, expected", [
    ("Shown before [1].", "Shown before."),
    ("as reported [1-3], and", "as reported, and"),
    ("trials [1, 4, 7] found", "trials found"),
    ("in children [12–15].", "in children."),
    ("see [2,3; 7]", "see"),
    ("in children[7]. Next", "in children. Next"),
    ("technique [2], [3], [4]. The", "technique. The"),
    ("technique [2][3]. The", "technique. The"),
    ("is common (Smith et al., 2019).", "is common."),
    ("is common (Smith and Jones 2018; Lee et al. 2020a), but", "is common, but"),
    ("was reported (WHO, 2021).", "was reported."),
    ("P = .004 in trials [3].", "P = .004 in trials."),
    ("BMI >30 kg/m2 [12].", "BMI >30 kg/m2."),
    ("during COVID-19 [3, 5].", "during COVID-19."),
    ("as discussed.[4] Next", "as discussed. Next"),
])
def test_citation_markers_are_removed(text, expected):
    assert remove_citations(text) == expected


def test_author_year_is_an_option():
    text = "is common (Smith et al., 2019)."
    assert remove_citations(text, author_year=False) == text


@pytest.mark.parametrize("text, expected", [
    ("See https://a.org/p?q=1#frag~x now.", "See now."),
    ("Data at http://osf.io/abc.", "Data at."),
    ("ftp://z.com:21/f and www.who.int/x today", " and today"),
    ("Registered at the Open Science Framework (https://osf.io/x).",
     "Registered at the Open Science Framework."),
    ("Registration: [https://clinicaltrials.gov/ct2/show/NCT01],", "Registration:,"),
    ("(see: https://a.org/x)", ""),
    ("Read [NICE NG28](https://www.nice.org.uk/guidance/ng28).", "Read NICE NG28."),
    ("https://en.wikipedia.org/wiki/Foo_(bar), then", ", then"),
    ("a (not a link) stays", "a (not a link) stays"),
    ("no links here", "no links here"),
])
def test_urls_are_removed_whole_without_empty_brackets(text, expected):
    assert remove_urls(text) == expected


def test_markdown_link_text_can_go_too():
    assert remove_urls("Read [NICE](https://nice.org.uk) now.", keep_link_text=False) == "Read now."


def test_lists_rewrite_real_bullets_only():
    text = "• metformin\n∙ insulin\n\uf0b7 diet\n* exercise\n+ rest\noften\n5 * 3 = 15\no Twice daily"
    assert normalize_lists(text) == ("- metformin\n- insulin\n- diet\n- exercise\n- rest\noften\n"
                                     "5 * 3 = 15\no Twice daily")
    assert normalize_lists(text, pdf_bullets=True).endswith("often\n5 * 3 = 15\n- Twice daily")


def test_headers_shift_and_cap():
    assert normalize_headers("## T\n#### A\n##### B\n#1 cause") == "# T\n### A\n### B\n#1 cause"


@pytest.mark.parametrize("text, kwargs, expected", [
    ("P = .004 and  x", {"attach_punct": True}, "P = .004 and x"),
    ("word , word ; end .", {"attach_punct": True}, "word, word; end."),
    ("word , word", {}, "word , word"),
    ("a\n# H\nb", {"headers_apart": True}, "a\n\n# H\n\nb"),
    ("  a  \n\n\n\n b\u00a0c", {}, "a\n\nb c"),
    ("- Give:\n  - 6 puffs\n   text", {}, "- Give:\n  - 6 puffs\ntext"),
])
def test_whitespace(text, kwargs, expected):
    assert normalize_whitespace(text, **kwargs) == expected


@pytest.mark.parametrize("rule", [remove_urls, remove_citations, normalize_lists,
                                  normalize_headers, normalize_whitespace])
@pytest.mark.parametrize("text", MUST_SURVIVE[:6] + [
    "See https://a.org/x (https://b.org) [1], [2].\n• item\n## H"])
def test_rules_are_idempotent(rule, text):
    once = rule(text)
    assert rule(once) == once
