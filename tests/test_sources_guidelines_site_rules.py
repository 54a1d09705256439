"""Guideline text: every defect of the original cleaner (docs/guidelines.md), fed the text it
mangled. The site rules (site_rules.py) run at extraction; the shared rules are the `clean`
stage with the recipe's guideline options (`stage_text`)."""

from __future__ import annotations

from gap_replay.recipe import load_recipe
from gap_replay.sources.guidelines.extract import extract_page
from gap_replay.sources.guidelines.site_rules import apply_site_rules, clean_options, drop_sections, truncate
from gap_replay.sources.guidelines.spec import Article, CleanRules
from gap_replay.sources.guidelines.wikidoc import wikidoc_overview_title, wikidoc_superseded
from gap_replay.stages.clean import clean_text, rule_chain
from gap_replay.textrules import (
    normalize_headers as normalize_headings,
    normalize_lists as normalize_bullets,
    remove_citations,
    remove_html_tags,
    remove_urls,
)

GUIDELINE_RULES = load_recipe().clean_rules("guidelines")


def stage_text(text: str, rules: CleanRules = CleanRules()) -> str:
    """What the `clean` stage makes of a guideline text (the recipe's options, the spec's)."""
    for _name, rule in rule_chain(GUIDELINE_RULES, clean_options(rules)):
        text = rule(text)
    return text


common_clean = stage_text


def normalize_spacing(text: str) -> str:
    return clean_text(text, {"whitespace": GUIDELINE_RULES["whitespace"]} |
                      {r: False for r in GUIDELINE_RULES if r != "whitespace"})


def clean_article(raw: str, title: str, rules: CleanRules):
    """The site rules, then the shared stage: the text `process` writes to clean/."""
    result = apply_site_rules(raw, title, rules)
    if result.text:
        result.text = stage_text(result.text, rules)
    return result


# -- defect 1: the list cleaner ------------------------------------------------------------------
def test_lines_starting_with_o_are_not_rewritten():
    # The original turned "\no" into "\n-": "often" -> "-ften", "obesity" -> "-besity".
    text = "Intro line.\noften the cause is unknown.\nobesity increases risk.\nor use a spacer.\nother options exist."
    assert normalize_bullets(text) == text
    assert normalize_bullets(text, pdf_bullets=True) == text


def test_only_real_bullets_followed_by_space_become_dashes():
    text = "• Take with food\n▪ Avoid alcohol\n\uf0b7 Check renal function\n* Monitor INR\n+ Review at 6 weeks"
    assert normalize_bullets(text) == ("- Take with food\n- Avoid alcohol\n- Check renal function\n"
                                       "- Monitor INR\n- Review at 6 weeks")


def test_asterisk_inside_a_line_is_not_a_bullet():
    # The original rewrote "* " anywhere: "5 * 3 " and "p* " were damaged.
    text = "The dose is 5 * 3 mg and p* values were adjusted."
    assert normalize_bullets(text) == text


def test_pdf_sub_bullets_only_before_a_capital_or_digit():
    text = "o Take twice daily\nq 500 mg at night\noften seen in winter"
    assert normalize_bullets(text, pdf_bullets=True) == "- Take twice daily\n- 500 mg at night\noften seen in winter"


# -- defect 2: the reference remover ------------------------------------------------------------
def test_inequalities_survive_reference_removal():
    # The original's <...> rule turned "p < 0.05 in A and B > C" into "p  C".
    text = "Significant at p < 0.05 in A and B > C; age <65 years and BMI >30 kg/m2 [12]."
    out = common_clean(text)
    assert "p < 0.05 in A and B > C" in out
    assert "age <65 years and BMI >30 kg/m2." in out
    assert "[12]" not in out


def test_chemical_brackets_and_link_text_survive():
    # The original deleted "[3H]" ("[3H]thymidine" -> "thymidine") and "[Ca2+]i" -> "i".
    text = "Uptake of [3H]thymidine rose as [Ca2+]i increased [1, 3] and [4–6]."
    assert remove_citations(text) == "Uptake of [3H]thymidine rose as [Ca2+]i increased and."


def test_html_tags_removed_by_name_only():
    assert remove_html_tags("a <b>bold</b> move") == "a bold move"
    assert remove_html_tags("if x<y and z>w") == "if x<y and z>w"


def test_urls_removed_whole_including_fragment_and_www():
    # The original left "#frag~x" behind and never removed "www." URLs.
    text = "See https://a.org/p?q=1#frag~x, or www.who.int/x. Also ftp://z.com/f."
    assert remove_urls(text) == "See, or. Also."  # the space before a URL goes with it


# -- defect 3: truncate -------------------------------------------------------------------------
AAFP_STARTERS = ["key recommendations", "clinical preventive service recommendation", "recommendation"]
AAFP_STOPPERS = ["references", "related content", "sources", "more about choosing wisely"]


def test_stopper_before_the_starter_does_not_truncate():
    # docs/sources.md §3.1: "Menu / Sources of funding / Key recommendations / …" returned just "Menu".
    text = "Menu\nSources of funding\n## Key recommendations\nScreen adults for hypertension yearly.\n## References\n1. A."
    out = truncate(text, AAFP_STARTERS, [], AAFP_STOPPERS)
    assert out == "## Key recommendations\nScreen adults for hypertension yearly."


def test_stoppers_match_whole_headings_not_prefixes():
    # "notes" matched "Notes on dosing"; "references" matched "References to the tables".
    text = ("Introduction\nThe guideline covers dosing of vancomycin in adults with normal renal function.\n"
            "### Notes on dosing\nGive 15 mg/kg every 12 hours.\nReferences to the tables are in the appendix.\n"
            "## Notes\nFunding statement.")
    out = truncate(text, ["introduction"], [], ["notes", "references"])
    assert "Give 15 mg/kg every 12 hours." in out
    assert "References to the tables are in the appendix." in out
    assert "Funding statement." not in out


def test_toc_lines_near_the_top_do_not_end_the_text():
    text = ("Contents\nReferences\nAcknowledgements\n"
            "Hypertension affects one in three adults and is the leading modifiable risk factor.\n"
            "## Acknowledgements\nThanks.")
    out = truncate(text, [], [], ["references", "acknowledgements"])
    assert "Hypertension affects one in three adults" in out
    assert "Thanks." not in out


def test_truncate_keeps_paragraph_breaks_and_numeric_lines():
    # defect 4: every blank line and every line without letters was removed.
    text = "First paragraph here.\n\nSecond paragraph.\n≥ 140/90\n2.5\n---\nEnd."
    assert truncate(text) == "First paragraph here.\n\nSecond paragraph.\n≥ 140/90\n2.5\nEnd."


def test_numeric_lines_and_paragraphs_survive_common_clean():
    text = "Blood pressure target:\n\n≥ 140/90\n\n2.5\n\n\n\nNext paragraph."
    assert common_clean(text) == "Blood pressure target:\n\n≥ 140/90\n\n2.5\n\nNext paragraph."


# -- defect 8: headers ---------------------------------------------------------------------------
def test_first_line_header_counts_for_level_normalisation():
    # "# T\n## A" became "# T\n# A" because the first line was left out of the minimum.
    assert normalize_headings("## T\n### A\ntext") == "# T\n## A\ntext"
    assert normalize_headings("# T\n## A") == "# T\n## A"


def test_hash_without_space_is_not_a_header():
    assert normalize_headings("## Top\n#1 cause of death") == "# Top\n#1 cause of death"


def test_headers_are_never_glued_to_the_previous_line():
    # concatenate_sections glued "…do this.# Context"; the DOM extractor starts every heading
    # block on its own line, and spacing puts a blank line around it.
    html = "<main><p>Do this.</p><h2>Context</h2><p>Because.</p><h3>Sub</h3>text</main>"
    page = extract_page(html, "https://x.org/a", Article(content=("main",)))
    assert page.text == "Do this.\n\n## Context\n\nBecause.\n\n### Sub\n\ntext"
    assert normalize_spacing("Do this.\n# Context\nBecause.") == "Do this.\n\n# Context\n\nBecause."


# -- defect 10: parentheses, " ," and title lines ------------------------------------------------
def test_doses_in_parentheses_and_commas_survive():
    rules = CleanRules(drop_title_lines=True)
    raw = ("Amoxicillin 500 mg every 8 hours (or 875 mg every 12 hours) , max 4 g/day (max 4 g/day) .\n"
           "Asthma control is assessed at every visit.")
    out = clean_article(raw, "Asthma", rules).text
    assert "(or 875 mg every 12 hours), max 4 g/day (max 4 g/day)." in out
    # A sentence mentioning the title stays (the original dropped every line containing it).
    assert "Asthma control is assessed at every visit." in out


def test_title_only_lines_are_dropped_when_asked():
    rules = CleanRules(drop_title_lines=True)
    out = clean_article("Hypertension in Adults\nScreen every year from age 40 onwards.", "Hypertension in Adults",
                        rules).text
    assert out == "Screen every year from age 40 onwards."


# -- per-source rules ------------------------------------------------------------------------------
def test_drop_sections_removes_heading_and_body_only():
    text = "# G\n## Members\nDr A\n### Chair\nDr B\n## Treatment\nGive X.\n## Funding\nNone."
    assert drop_sections(text, ["^members", "^funding"]) == "# G\n## Treatment\nGive X."


def test_rejections_carry_a_reason():
    rules = CleanRules(reject_if_contains=("currently in development",), min_lines=2)
    assert clean_article("This guideline is currently in development.", "T", rules).rejected \
        == "contains 'currently in development'"
    assert clean_article("One line only.", "T", rules).rejected == "fewer than 2 lines"
    assert clean_article("Line one here.\nLine two here.", "T", rules).rejected is None


def test_clean_is_deterministic_and_idempotent():
    rules = CleanRules(starters=("introduction",), stoppers=("references",), title_heading=True)
    raw = "Menu\n## Introduction\nText • with bullet.\n• Item one\n## References\nX"
    first = clean_article(raw, "Title", rules).text
    assert first == clean_article(raw, "Title", rules).text
    assert first == "# Title\n\n## Introduction\n\nText • with bullet.\n- Item one"
    assert common_clean(first) == first


# -- defect 9: WikiDoc duplicates ------------------------------------------------------------------
def test_wikidoc_overview_supersedes_only_its_microchapters():
    names = ["Asthma overview", "Asthma causes", "Asthma pathophysiology", "Asthma medical therapy",
             "Asthmatic bronchitis", "Asthma in pregnancy", "Asthma", "Diabetes causes"]
    assert wikidoc_superseded(names) == {"Asthma causes", "Asthma pathophysiology", "Asthma medical therapy"}


def test_wikidoc_overview_title():
    assert wikidoc_overview_title("Asthma overview") == "Asthma"
    assert wikidoc_overview_title("Overview") == "Overview"


def test_removed_characters_are_reported_per_rule():
    rules = CleanRules(starters=("introduction",), stoppers=("references",), drop_lines_containing=("|",))
    raw = "Menu bar\n## Introduction\nKeep this sentence.\nA | B table row\n## References\n1. Smith."
    result = clean_article(raw, "T", rules)
    assert result.text == "# Introduction\n\nKeep this sentence."
    assert result.removed["truncate"] == len("Menu bar\n") + len("\n## References\n1. Smith.")
    assert result.removed["drop_lines_containing"] == len("\nA | B table row")


def test_numbered_items_become_bullets_in_the_shared_stage_only():
    # "1. Text" → "- Text" is a list rule: the spec asks for it, the `clean` stage applies it;
    # a decimal ("2.5 mg") and a number alone on its line stay.
    rules = CleanRules(numbered_bullets=True)
    site = apply_site_rules("Doses:\n1. Give 2.5 mg daily.\n12) Review.\n3.\nEnd.", "T", rules)
    assert site.text == "Doses:\n1. Give 2.5 mg daily.\n12) Review.\n3.\nEnd."
    assert stage_text(site.text, rules) == "Doses:\n- Give 2.5 mg daily.\n- Review.\n3.\nEnd."
    assert stage_text(site.text) == site.text   # a spec without the option: unchanged
