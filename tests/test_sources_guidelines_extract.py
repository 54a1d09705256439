"""DOM → text: headings by level, paragraphs, real bullets, tables, citations, start/stop rules."""

from __future__ import annotations

from gap_replay.sources.guidelines.extract import extract_page
from gap_replay.sources.guidelines.spec import Article

PAGE = """<html lang="en-GB"><head><title>T | Site</title><link rel="canonical" href="/a/b"></head><body>
<nav><p>Menu</p></nav>
<main>
<p>Intro before the key points.</p>
<h2 id="start">Key points</h2>
<p>Dose 5 mg<sup>1,2</sup> daily<br>or 10 mg weekly.</p>
<ol><li>First <b>step</b><ul><li>sub a</li><li>sub b</li></ul></li><li>Second</li></ol>
<table><tr><th>Drug</th><th>Dose</th></tr><tr><td>X</td><td>5 mg</td></tr></table>
<h3>Detail</h3><div>Loose text in a div <a href="/x">with a link</a>.</div>
<script>var x = 1;</script>
<h2>References</h2><p>Smith 2020.</p>
</main></body></html>"""


def test_structure_from_the_dom():
    page = extract_page(PAGE, "https://site.org/a/b?x=1", Article(content=("main",), title=("title",),
                                                                   title_strip=(r" \| Site$",)))
    assert page.title == "T" and page.language == "en-gb" and page.canonical == "https://site.org/a/b"
    assert page.text == (
        "Intro before the key points.\n\n## Key points\n\nDose 5 mg daily\nor 10 mg weekly.\n\n"
        "- First step\n  - sub a\n  - sub b\n- Second\n\n### Detail\n\nLoose text in a div with a link.\n\n"
        "## References\n\nSmith 2020.")


def test_tables_flatten_and_start_stop_rules():
    rules = Article(content=("main",), tables="flatten", start_at="#start", stop_at_heading=("^References$",))
    text = extract_page(PAGE, "https://site.org/a/b", rules).text
    assert text.startswith("## Key points")
    assert "Drug; Dose\nX; 5 mg" in text
    assert "Intro before" not in text and "Smith 2020" not in text and "var x" not in text


def test_stop_at_text_and_numbering():
    html = "<main><h2>1.2 Scope</h2><p>3.1 Adults only.</p><p>Last updated 2023</p><p>Tail</p></main>"
    text = extract_page(html, "https://s.org/", Article(content=("main",), strip_numbering=True,
                                                        stop_at_text=("^Last updated",))).text
    assert text == "## Scope\n\nAdults only."


def test_no_content_selector_match_gives_empty_text():
    assert extract_page("<html><body><p>x</p></body></html>", "https://s.org/",
                        Article(content=("article.guideline",))).text == ""
