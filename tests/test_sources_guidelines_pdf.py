"""PDF text extraction on the committed, generated PDFs (scripts/make_guideline_pdfs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gap_replay.resources import sample_sites_dir
from gap_replay.sources.guidelines.pdf import PdfError, extract_pdf

FIXTURES = Path(__file__).parent / "fixtures" / "pdf"
URL = "https://example.org/guideline.pdf"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_headings_paragraphs_and_lists_are_kept():
    doc = extract_pdf(_read("multipage.pdf"), URL)
    assert doc.pages == 3
    assert doc.title == "Management of community-acquired pneumonia"
    blocks = doc.text.split("\n\n")
    # The 20 pt title and 15 pt section headings become level 1 and 2; 12.5 pt becomes level 3.
    assert blocks[0] == "# Management of community-acquired pneumonia"
    assert "## Assessment" in blocks and "## Antibiotic therapy" in blocks and "## Follow-up" in blocks
    assert "### Investigations" in blocks
    # A wrapped paragraph is one block; the next paragraph is a separate block.
    assessment = blocks[blocks.index("## Assessment") + 1]
    assert assessment.startswith("Assess severity with the CURB-65 score")
    assert assessment.endswith("can usually be treated at home.")
    # Bullets become adjacent "- " items.
    assert ("- Reassess at 48 to 72 hours.\n- Switch to oral therapy once the patient is afebrile "
            "for 48 hours.") in doc.text


def test_hyphenated_line_breaks_are_joined():
    text = extract_pdf(_read("multipage.pdf"), URL).text
    assert "local resistance patterns" in text and "resis-" not in text
    # A compound word split at its own hyphen keeps it.
    assert "out-of-hospital treatment" in text


def test_inequalities_and_numbers_survive():
    text = extract_pdf(_read("multipage.pdf"), URL).text
    assert "p < 0.05 was the threshold" in text and "BMI > 30 a risk factor" in text


def test_page_numbers_and_running_headers_are_dropped():
    text = extract_pdf(_read("multipage.pdf"), URL).text
    assert "Page 1" not in text and "Page 3" not in text
    assert "Pneumonia guideline" not in text  # the running header on every page
    # Pages are joined: the section on page 3 follows page 2's list.
    assert text.index("- Switch to oral therapy") < text.index("## Follow-up")


def test_title_falls_back_to_first_heading_without_metadata():
    doc = extract_pdf(_read("no_title_metadata.pdf"), URL)
    assert doc.title == "Prevention of venous thromboembolism in surgical patients"
    assert doc.pages == 1


def test_word_processor_metadata_title_is_ignored():
    data = (sample_sites_dir() / "spor" / "docs" / "diabetes-canada-pharmacotherapy-t2d.pdf").read_bytes()
    doc = extract_pdf(data, URL)
    assert doc.title == "Pharmacologic glycemic management of type 2 diabetes in adults"


def test_dingbat_bullets_become_list_items():
    # The CDC fixture draws its bullets in ZapfDingbats (the Wingdings "q" problem of the original).
    data = (sample_sites_dir() / "cdc" / "view" / "cdc" / "133668" / "cdc_133668_DS1.pdf").read_bytes()
    text = extract_pdf(data, URL).text
    assert "- Doxycycline 100 mg orally 2 times/day for 7 days" in text
    assert "■" not in text and "\nq " not in text


def test_sub_bullet_o_is_a_list_item_but_words_starting_with_o_are_not():
    data = (sample_sites_dir() / "cco" / "sites" / "ccocancercare" / "files" / "guidelines" / "full"
            / "pebc1-21f.pdf").read_bytes()
    text = extract_pdf(data, URL).text
    assert "\n  - Combination chemoimmunotherapy is an acceptable alternative.\n- Patients" in text
    assert "offered pembrolizumab monotherapy" in text


def test_encrypted_pdf_raises_a_clear_error():
    with pytest.raises(PdfError, match="encrypted") as info:
        extract_pdf(_read("encrypted.pdf"), URL)
    assert info.value.url == URL and URL in str(info.value)


@pytest.mark.parametrize("data, reason", [
    (b"<!DOCTYPE html><html><body>Access denied</body></html>", "not a PDF"),
    (b"", "not a PDF"),
])
def test_non_pdf_bodies_raise(data, reason):
    with pytest.raises(PdfError, match=reason):
        extract_pdf(data, URL)


def test_truncated_pdf_raises_a_clear_error():
    data = _read("multipage.pdf")
    with pytest.raises(PdfError, match=r"broken PDF|no text layer|no pages") as info:
        extract_pdf(data[:600], URL)
    assert URL in str(info.value)


def _generator():
    import importlib.util

    script = Path(__file__).parent.parent / "scripts" / "make_guideline_pdfs.py"
    spec = importlib.util.spec_from_file_location("make_guideline_pdfs", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_is_deterministic_and_committed_pdfs_are_current():
    gen = _generator()
    for path, doc in gen.targets().items():
        data = gen.render(doc)
        assert gen.render(doc) == data, path  # invariant mode: same content, same bytes
        committed = path.read_bytes()
        if committed == data:
            continue
        if doc.get("encrypt"):
            with pytest.raises(PdfError, match="encrypted"):
                extract_pdf(committed, URL)
            continue
        # Another reportlab version may lay bytes out differently; the content must still match.
        assert extract_pdf(committed, URL).text == extract_pdf(data, URL).text, f"{path} is stale"


def test_bold_body_size_lines_are_headings_but_bold_paragraphs_are_not():
    doc = extract_pdf(_read("bold_headings.pdf"), URL)
    blocks = doc.text.split("\n\n")
    assert blocks[0] == "# Management of acute otitis media in children"
    assert blocks[1] == "## Key points" and blocks[4] == "## Dosing"
    # a two-line bold sentence stays one paragraph
    assert blocks[3].startswith("Children younger than six months, and children with otorrhoea")
    assert blocks[3].endswith("should receive antibiotics without delay.")
    assert blocks[5].startswith("Amoxicillin 90 mg/kg/day")


def test_a_damaged_page_does_not_lose_the_other_pages():
    import re

    data = _read("multipage.pdf")
    stream = [m.end() for m in re.finditer(rb"stream\r?\n", data)][2]  # page 2's content stream
    damaged = data[:stream] + b"\x00" * 20 + data[stream + 20:]
    doc = extract_pdf(damaged, URL)
    assert doc.pages == 3
    assert "## Assessment" in doc.text and "## Follow-up" in doc.text
    assert "Antibiotic therapy" not in doc.text


def test_symbol_font_threshold_is_text_but_bullets_are_items():
    text = extract_pdf(_read("symbol_glyphs.pdf"), URL).text
    assert "≥ 140/90 mmHg on two occasions confirms hypertension in adults." in text
    assert "- 140/90" not in text
    assert "- Repeat the measurement after five minutes of rest.\n- Use a validated automated device." in text
